-- The accounts domain (gateway/accounts/accounts.c owns these tables):
-- users, roles, fleets, tokens and the audit trail (docs/accounts.md).
-- Unique constraints decide races between gateway instances.

-- A user: one role; a password (PBKDF2-HMAC-SHA256, hex salt and key, the
-- iteration count it was hashed with) or none (token-only).
CREATE TABLE users (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('operator', 'fleet_manager', 'service_advisor')),
  disabled SMALLINT NOT NULL DEFAULT 0,
  pw_salt TEXT,
  pw_iterations INTEGER,
  pw_hash TEXT,
  created_ms INTEGER NOT NULL,
  changed_ms INTEGER NOT NULL
);

CREATE TABLE fleets (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_ms INTEGER NOT NULL
);

-- A fleet_manager's fleets.
CREATE TABLE user_fleets (
  user_id INTEGER NOT NULL REFERENCES users(id),
  fleet_id INTEGER NOT NULL REFERENCES fleets(id),
  PRIMARY KEY (user_id, fleet_id)
);

-- A car is in at most one fleet: the VIN is the key.
CREATE TABLE fleet_vehicles (
  vin TEXT PRIMARY KEY,
  fleet_id INTEGER NOT NULL REFERENCES fleets(id),
  assigned_ms INTEGER NOT NULL
);
CREATE INDEX fleet_vehicles_by_fleet ON fleet_vehicles (fleet_id, vin);

-- Bearer tokens: only the SHA-256 (hex) of the token string is kept.
CREATE TABLE tokens (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users(id),
  kind TEXT NOT NULL CHECK (kind IN ('session', 'api')),
  hash TEXT NOT NULL UNIQUE,
  label TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER,     -- NULL: never
  last_used_ms INTEGER,   -- written at most once a minute
  revoked_ms INTEGER
);
CREATE INDEX tokens_by_user ON tokens (user_id, id);

-- Who did what, when, on which instance; never updated or deleted here.
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY,
  at_ms INTEGER NOT NULL,
  actor TEXT NOT NULL,
  actor_role TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  detail TEXT NOT NULL,  -- JSON
  instance TEXT NOT NULL
);
CREATE INDEX audit_log_by_actor ON audit_log (actor, id);
CREATE INDEX audit_log_by_action ON audit_log (action, id);
