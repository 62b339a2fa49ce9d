-- Whether the latest odometer reading (odometer_m) is the car's estimate
-- (speed integrated over time, flags bit 5 of its sample) rather than a
-- reading of the car's own odometer: 1 estimated, 0 read. Taken together
-- with odometer_m, from the same sample. Rows from before this migration
-- read 0 (their cars sent no mark).
ALTER TABLE vehicle_state ADD COLUMN odometer_estimated SMALLINT NOT NULL DEFAULT 0;
