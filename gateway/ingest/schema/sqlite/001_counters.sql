-- The ingest domain's counters (gateway/ingest/counters.c owns the table):
-- one row per (gateway instance, counter name), so a new counter needs no
-- migration and `pitstopctl stats` sums over instances.
CREATE TABLE counters (
  instance TEXT NOT NULL,
  name TEXT NOT NULL,
  value INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  PRIMARY KEY (instance, name)
) WITHOUT ROWID;
