-- The offers domain (gateway/offers/offer_log.c and rules.c own these tables).

-- Every offer issued to a car, with the furthest state the car reported.
CREATE TABLE offers (
  id TEXT PRIMARY KEY,
  vin TEXT NOT NULL,
  kind INTEGER NOT NULL,
  title TEXT NOT NULL, body TEXT NOT NULL, promo_code TEXT NOT NULL,
  valid_from_ms INTEGER NOT NULL, valid_until_ms INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  state TEXT NOT NULL,   -- sent, shown, accepted, dismissed, rejected, expired
  state_rank INTEGER NOT NULL,   -- 0 sent, 1 shown, 2 final: states only advance
  state_ms INTEGER NOT NULL
);
CREATE INDEX offers_by_vehicle ON offers (vin, created_ms);
-- What the offers_expire job looks for: open offers by end of validity.
CREATE INDEX offers_open_by_expiry ON offers (valid_until_ms) WHERE state_rank < 2;

-- What the car said about its offers; a redelivered event is kept once.
CREATE TABLE offer_events (
  vin TEXT NOT NULL,
  offer_id TEXT NOT NULL,
  action TEXT NOT NULL,
  reason TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  PRIMARY KEY (vin, offer_id, action, time_ms)
);

-- Rule episodes ("low fuel is open for this car"): a rule issues one offer
-- per episode, and the episode survives restarts and other instances.
CREATE TABLE offer_episodes (
  vin TEXT NOT NULL,
  rule TEXT NOT NULL,
  open INTEGER NOT NULL,
  changed_ms INTEGER NOT NULL,
  PRIMARY KEY (vin, rule)
) WITHOUT ROWID;
