-- The telemetry domain (gateway/telemetry/telemetry.c owns these tables).
-- Units are the protocol's: metres, 0.1 %, 1e-7 degrees, cm/s, 0.01 degrees,
-- unix milliseconds.

-- One row per batch: the car's validated, encoded TelemetryBatch as it
-- arrived (columnar, delta-coded: about 13 bytes a sample), identified by
-- (vin, epoch, seq). epoch is the car's random 64-bit queue epoch stored as
-- a signed 64-bit integer (0: a car that sends none).
CREATE TABLE telemetry_batches (
  vin TEXT NOT NULL,
  epoch BIGINT NOT NULL,
  seq BIGINT NOT NULL,
  first_ms BIGINT NOT NULL,   -- earliest sample time in the batch
  last_ms BIGINT NOT NULL,    -- latest sample time in the batch
  n_samples INTEGER NOT NULL,
  received_ms BIGINT NOT NULL,
  data BYTEA NOT NULL,
  PRIMARY KEY (vin, epoch, seq)
);
CREATE INDEX telemetry_batches_by_time ON telemetry_batches (vin, last_ms);

-- The latest state of each vehicle: each field is the value of the newest
-- sample (by sample time) that carried it, with that time; status as last
-- reported (by the status's own time).
CREATE TABLE vehicle_state (
  vin TEXT PRIMARY KEY,
  created_ms BIGINT NOT NULL,
  time_ms BIGINT, fix SMALLINT,
  odometer_m BIGINT, odometer_ms BIGINT,
  fuel_permille BIGINT, fuel_ms BIGINT,
  lat_e7 BIGINT, lon_e7 BIGINT, position_ms BIGINT,
  speed_cms BIGINT, speed_ms BIGINT,
  heading_cdeg BIGINT, heading_ms BIGINT,
  online SMALLINT, status_ms BIGINT, agent_version TEXT, queue_depth BIGINT,
  status_received_ms BIGINT,
  batches BIGINT NOT NULL DEFAULT 0,
  samples BIGINT NOT NULL DEFAULT 0
);

-- Per vehicle and UTC day (days since 1970-01-01), folded in at ingest from
-- each new batch: what the service and promotion engines read. Distance is
-- last_odometer_m - first_odometer_m; fuel used is first - last + refuelled
-- (docs/gateway.md says how each is computed and what it misses).
CREATE TABLE telemetry_daily (
  vin TEXT NOT NULL,
  day INTEGER NOT NULL,
  samples BIGINT NOT NULL,
  first_odo_ms BIGINT, first_odometer_m BIGINT,
  last_odo_ms BIGINT, last_odometer_m BIGINT,
  driving_ms BIGINT NOT NULL,          -- time moving (speed >= 1 km/h)
  first_fuel_ms BIGINT, first_fuel_permille BIGINT,
  last_fuel_ms BIGINT, last_fuel_permille BIGINT,
  fuel_refuelled_permille BIGINT NOT NULL, -- rises of >= 5 points
  PRIMARY KEY (vin, day)
);
