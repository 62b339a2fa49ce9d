-- The offer lifecycle (docs/offers.md), as ranks: sent 0, delivered 1,
-- shown 2, accepted, dismissed or rejected 3 (the car's last word), redeemed
-- or expired 4 (final). Old ranks were sent 0, shown 1, the rest 2.
UPDATE offers SET state_rank = CASE state
  WHEN 'sent' THEN 0 WHEN 'shown' THEN 2 WHEN 'expired' THEN 4 ELSE 3 END;

-- The stages an offer reached, one bit each (1 sent, 2 delivered, 4 shown,
-- 8 accepted, 16 dismissed, 32 rejected, 64 redeemed, 128 expired): each
-- is counted in offer_stats once, whatever order the events arrive in.
ALTER TABLE offers ADD COLUMN stages INTEGER NOT NULL DEFAULT 1;
UPDATE offers SET stages = 1
  | CASE WHEN EXISTS (SELECT 1 FROM offer_events e WHERE e.vin = offers.vin
      AND e.offer_id = offers.id AND e.action = 'shown') THEN 4 ELSE 0 END
  | CASE WHEN EXISTS (SELECT 1 FROM offer_events e WHERE e.vin = offers.vin
      AND e.offer_id = offers.id AND e.action = 'accepted') THEN 8 ELSE 0 END
  | CASE WHEN EXISTS (SELECT 1 FROM offer_events e WHERE e.vin = offers.vin
      AND e.offer_id = offers.id AND e.action = 'dismissed') THEN 16 ELSE 0 END
  | CASE WHEN EXISTS (SELECT 1 FROM offer_events e WHERE e.vin = offers.vin
      AND e.offer_id = offers.id AND e.action = 'rejected') THEN 32 ELSE 0 END
  | CASE WHEN state = 'expired' THEN 128 ELSE 0 END;

-- The expiry job finds open offers (rank < 3) past their validity and,
-- later, ended offers to delete: one index on the end of validity for both.
DROP INDEX offers_open_by_expiry;
CREATE INDEX offers_by_valid_until ON offers (valid_until_ms);
-- Redemption looks offers up by their promo code.
CREATE INDEX offers_by_promo_code ON offers (promo_code);

-- What the statistics count: per rule ('' none) and UTC day of the offers'
-- creation (days since 1970-01-01), how many of those offers reached each
-- stage. Incremented (INSERT ... ON CONFLICT DO UPDATE, atomic across
-- instances) in the transaction of each change; the expiry job deletes old
-- offers but never these counts.
CREATE TABLE offer_stats (
  rule TEXT NOT NULL,
  day INTEGER NOT NULL,
  sent INTEGER NOT NULL, delivered INTEGER NOT NULL, shown INTEGER NOT NULL,
  accepted INTEGER NOT NULL, dismissed INTEGER NOT NULL, rejected INTEGER NOT NULL,
  redeemed INTEGER NOT NULL, expired INTEGER NOT NULL,
  PRIMARY KEY (rule, day)
);
INSERT INTO offer_stats (rule, day, sent, delivered, shown, accepted, dismissed, rejected,
                         redeemed, expired)
  SELECT rule, created_ms / 86400000, COUNT(*), 0,
    SUM(CASE WHEN stages & 4 <> 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN stages & 8 <> 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN stages & 16 <> 0 THEN 1 ELSE 0 END),
    SUM(CASE WHEN stages & 32 <> 0 THEN 1 ELSE 0 END), 0,
    SUM(CASE WHEN stages & 128 <> 0 THEN 1 ELSE 0 END)
  FROM offers GROUP BY rule, created_ms / 86400000;
