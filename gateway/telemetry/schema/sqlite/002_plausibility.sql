-- Samples set apart as implausible (dated far ahead, a clock never set,
-- impossible speed, an odometer running backwards or jumping): the batch is
-- kept whole, but those samples are never folded into the latest state, the
-- rollups or the rules. implausible is a bitmap over the batch's samples
-- (bit i of byte i / 8: sample i), NULL when none; implausible_reasons the
-- reasons found (telemetry.h, TELEMETRY_IMPLAUSIBLE).
ALTER TABLE telemetry_batches ADD COLUMN implausible BLOB;
ALTER TABLE telemetry_batches ADD COLUMN implausible_reasons INTEGER NOT NULL DEFAULT 0;
