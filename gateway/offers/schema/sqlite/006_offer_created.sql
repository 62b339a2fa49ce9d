-- Created and sent become two states (docs/offers.md): an offer is written
-- 'created' in the transaction that issued it and becomes 'sent' when the
-- broker acknowledged its publish (PUBACK). Ranks shift up by one: created
-- 0, sent 1, delivered 2, shown 3, accepted, dismissed or rejected 4,
-- redeemed or expired 5. Old rows keep their state and meaning.
UPDATE offers SET state_rank = state_rank + 1;

-- Stage bits shift the same way (1 created, 2 sent, 4 delivered, 8 shown,
-- 16 accepted, 32 dismissed, 64 rejected, 128 redeemed, 256 expired); every
-- existing offer was created (and, in the old meaning, sent).
UPDATE offers SET stages = (stages << 1) | 1;

-- When the broker acknowledged it (gateway clock); NULL: not (yet) known.
-- Old offers were "sent" when they were created.
ALTER TABLE offers ADD COLUMN sent_ms INTEGER;
UPDATE offers SET sent_ms = created_ms;

-- The POI (partner station) the offer was issued for, '' none (service
-- reminders, rules without a station): what the per-station figures group by.
ALTER TABLE offers ADD COLUMN poi_id TEXT NOT NULL DEFAULT '';

-- Every offer counted so far was created.
ALTER TABLE offer_stats ADD COLUMN created INTEGER NOT NULL DEFAULT 0;
UPDATE offer_stats SET created = sent;

-- The per-station figures: the same stage counts as offer_stats, per rule,
-- POI and UTC day of creation, for offers with a POI. Added in the same
-- conditional UPDATE transaction as offer_stats; the expiry job never
-- deletes them. Old offers had no POI: the table starts empty.
CREATE TABLE offer_stats_poi (
  rule TEXT NOT NULL,
  poi_id TEXT NOT NULL,
  day INTEGER NOT NULL,
  created INTEGER NOT NULL, sent INTEGER NOT NULL, delivered INTEGER NOT NULL,
  shown INTEGER NOT NULL, accepted INTEGER NOT NULL, dismissed INTEGER NOT NULL,
  rejected INTEGER NOT NULL, redeemed INTEGER NOT NULL, expired INTEGER NOT NULL,
  PRIMARY KEY (rule, poi_id, day)
);
