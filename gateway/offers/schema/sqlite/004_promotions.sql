-- The promotion engine's state (gateway/offers/rules.c owns these tables).
-- Every claim is one conditional upsert both backends run, so caps,
-- cooldowns and codes are exact with several gateway instances.

-- Offers per vehicle per period across all rules: period 'd<local day>' or
-- 'w<local ISO week>' (days since 1970-01-01 in the vehicle's time zone);
-- until_ms: when the row can go (the cleanup job).
CREATE TABLE promo_caps (
  vin TEXT NOT NULL,
  period TEXT NOT NULL,
  n INTEGER NOT NULL,
  until_ms INTEGER NOT NULL,
  PRIMARY KEY (vin, period)
) WITHOUT ROWID;
CREATE INDEX promo_caps_by_until ON promo_caps (until_ms);

-- The last offer of a rule to a vehicle (its cooldown); prev_ms undoes a
-- claim whose offer was not sent after all.
CREATE TABLE promo_cooldowns (
  vin TEXT NOT NULL,
  rule TEXT NOT NULL,
  last_ms INTEGER NOT NULL,
  prev_ms INTEGER,
  PRIMARY KEY (vin, rule)
) WITHOUT ROWID;

-- Single-use promo codes: a rule's pool from its code file (state 'free'
-- until claimed) and the generated ones (inserted 'used'). The code is the
-- primary key: unique across rules.
CREATE TABLE promo_codes (
  code TEXT PRIMARY KEY,
  rule TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'free',   -- free, used
  vin TEXT,
  claimed_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX promo_codes_free ON promo_codes (rule, code) WHERE state = 'free';

-- Why a vehicle did not get an offer: at most one row per vehicle, rule and
-- reason per hour (hour = unix hours), deleted after 30 days by the
-- promo_cleanup job, so a car cannot grow it without bound.
CREATE TABLE promo_suppressed (
  vin TEXT NOT NULL,
  rule TEXT NOT NULL,
  reason TEXT NOT NULL,
  hour INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  detail TEXT NOT NULL,
  PRIMARY KEY (vin, rule, reason, hour)
) WITHOUT ROWID;
CREATE INDEX promo_suppressed_by_time ON promo_suppressed (time_ms);
CREATE INDEX promo_suppressed_by_vin ON promo_suppressed (vin, time_ms);

-- driven_since_visit: the odometer at the last visit to a POI category (or
-- when the vehicle was first seen by the rule).
CREATE TABLE promo_visits (
  vin TEXT NOT NULL,
  category TEXT NOT NULL,
  odometer_m INTEGER NOT NULL,
  time_ms INTEGER NOT NULL,
  PRIMARY KEY (vin, category)
) WITHOUT ROWID;
