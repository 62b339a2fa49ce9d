-- The profiles domain (gateway/profiles/profiles.c owns the table): what
-- the promotion rules need to know about a vehicle that telemetry does not
-- tell: make and model (audience), its time zone (quiet hours, local days),
-- the owner's dealer (a POI id, for service_due) and the driver's opt-out.
-- '' means unknown / not set.
CREATE TABLE vehicle_profiles (
  vin TEXT PRIMARY KEY,
  make TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  time_zone TEXT NOT NULL DEFAULT '',
  dealer_poi_id TEXT NOT NULL DEFAULT '',
  offers_opt_out INTEGER NOT NULL DEFAULT 0,
  updated_ms BIGINT NOT NULL
);
