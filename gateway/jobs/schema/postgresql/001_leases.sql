-- The jobs domain (gateway/jobs/lease.c owns the table): who runs a
-- scheduled job, so that with several gateway instances each job runs once.
CREATE TABLE job_leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_ms BIGINT NOT NULL
);
