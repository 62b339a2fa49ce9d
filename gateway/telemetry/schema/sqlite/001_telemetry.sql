-- The telemetry domain (gateway/telemetry/telemetry.c owns these tables).
-- Units are the protocol's: metres, 0.1 %, 1e-7 degrees, cm/s, 0.01 degrees,
-- unix milliseconds.

-- One row per batch: the car's validated, encoded TelemetryBatch as it
-- arrived (columnar, delta-coded: about 13 bytes a sample), identified by
-- (vin, epoch, seq). epoch is the car's random 64-bit queue epoch stored as
-- a signed 64-bit integer (0: a car that sends none). A rowid table, not
-- WITHOUT ROWID: rows arrive in rowid order, so SQLite fills its leaf pages
-- (measured: a WITHOUT ROWID table keyed by (vin, epoch, seq) left 19 % of
-- its pages empty, 3.7 bytes a sample).
CREATE TABLE telemetry_batches (
  id INTEGER PRIMARY KEY,
  vin TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  first_ms INTEGER NOT NULL,   -- earliest sample time in the batch
  last_ms INTEGER NOT NULL,    -- latest sample time in the batch
  n_samples INTEGER NOT NULL,
  received_ms INTEGER NOT NULL,
  data BLOB NOT NULL,
  UNIQUE (vin, epoch, seq)
);
CREATE INDEX telemetry_batches_by_time ON telemetry_batches (vin, last_ms);

-- The latest state of each vehicle: each field is the value of the newest
-- sample (by sample time) that carried it, with that time; status as last
-- reported (by the status's own time).
CREATE TABLE vehicle_state (
  vin TEXT PRIMARY KEY,
  created_ms INTEGER NOT NULL,
  time_ms INTEGER, fix INTEGER,
  odometer_m INTEGER, odometer_ms INTEGER,
  fuel_permille INTEGER, fuel_ms INTEGER,
  lat_e7 INTEGER, lon_e7 INTEGER, position_ms INTEGER,
  speed_cms INTEGER, speed_ms INTEGER,
  heading_cdeg INTEGER, heading_ms INTEGER,
  online INTEGER, status_ms INTEGER, agent_version TEXT, queue_depth INTEGER,
  status_received_ms INTEGER,
  batches INTEGER NOT NULL DEFAULT 0,
  samples INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Per vehicle and UTC day (days since 1970-01-01), folded in at ingest from
-- each new batch: what the service and promotion engines read. Distance is
-- last_odometer_m - first_odometer_m; fuel used is first - last + refuelled
-- (docs/gateway.md says how each is computed and what it misses).
CREATE TABLE telemetry_daily (
  vin TEXT NOT NULL,
  day INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  first_odo_ms INTEGER, first_odometer_m INTEGER,
  last_odo_ms INTEGER, last_odometer_m INTEGER,
  driving_ms INTEGER NOT NULL,          -- time moving (speed >= 1 km/h)
  first_fuel_ms INTEGER, first_fuel_permille INTEGER,
  last_fuel_ms INTEGER, last_fuel_permille INTEGER,
  fuel_refuelled_permille INTEGER NOT NULL, -- rises of >= 5 points
  PRIMARY KEY (vin, day)
) WITHOUT ROWID;
