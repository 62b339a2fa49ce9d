-- The service domain (gateway/service/service.c owns these tables).
-- Days are day numbers (days since 1970-01-01 UTC), distances metres,
-- times unix milliseconds, money cents.

-- An import of past services or odometer readings (pitstopctl service
-- import / telemetry import), sent in chunks. Its rows are written to
-- service_records / service_odometer_readings with its id, and are read
-- only once committed_ms is set: one UPDATE makes a whole file visible, so
-- a file is never half imported (an abandoned import stays invisible).
CREATE TABLE service_imports (
  id INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,          -- 'services' or 'odometer'
  file TEXT NOT NULL,          -- the file name pitstopctl gave, for the audit trail
  expected_rows INTEGER NOT NULL,
  received_rows INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  committed_ms INTEGER
);

-- A completed service visit.
CREATE TABLE service_records (
  id INTEGER PRIMARY KEY,
  vin TEXT NOT NULL,
  day INTEGER NOT NULL,
  odometer_m INTEGER,          -- NULL: not known
  items TEXT NOT NULL,         -- the plan items done, ';'-separated
  cost_cents INTEGER,
  workshop TEXT NOT NULL DEFAULT '',
  advisories TEXT NOT NULL DEFAULT '', -- work found but not done
  recorded_ms INTEGER NOT NULL,
  source TEXT NOT NULL,        -- 'api' or 'import'
  import_id INTEGER REFERENCES service_imports (id)
);
CREATE INDEX service_records_by_vin ON service_records (vin, day);

-- Per-vehicle intervals that replace the plan's for one item.
CREATE TABLE service_overrides (
  vin TEXT NOT NULL,
  item TEXT NOT NULL,
  every_m INTEGER NOT NULL,    -- 0: no distance criterion
  every_months INTEGER NOT NULL, -- 0: no time criterion
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (vin, item)
);

-- Odometer readings from other systems (telematics, dealer), next to the
-- telemetry domain's own rollups of what the cars report.
CREATE TABLE service_odometer_readings (
  vin TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  odometer_m INTEGER NOT NULL,
  import_id INTEGER NOT NULL REFERENCES service_imports (id),
  PRIMARY KEY (vin, time_ms, import_id)
);
