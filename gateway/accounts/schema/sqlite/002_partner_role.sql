-- The partner role (docs/accounts.md): a partner's point of sale may only
-- redeem promo codes. SQLite cannot change a CHECK constraint in place, so
-- users is rebuilt; its children (user_fleets, tokens) reference it and are
-- rebuilt after it, their rows kept in temporary copies meanwhile.
CREATE TEMP TABLE user_fleets_copy AS SELECT * FROM user_fleets;
CREATE TEMP TABLE tokens_copy AS SELECT * FROM tokens;
DROP TABLE user_fleets;
DROP TABLE tokens;

CREATE TABLE users_new (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL
    CHECK (role IN ('operator', 'fleet_manager', 'service_advisor', 'partner')),
  disabled SMALLINT NOT NULL DEFAULT 0,
  pw_salt TEXT,
  pw_iterations INTEGER,
  pw_hash TEXT,
  created_ms INTEGER NOT NULL,
  changed_ms INTEGER NOT NULL
);
INSERT INTO users_new SELECT id, name, role, disabled, pw_salt, pw_iterations, pw_hash,
  created_ms, changed_ms FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- As in 001.
CREATE TABLE user_fleets (
  user_id INTEGER NOT NULL REFERENCES users(id),
  fleet_id INTEGER NOT NULL REFERENCES fleets(id),
  PRIMARY KEY (user_id, fleet_id)
);
INSERT INTO user_fleets SELECT user_id, fleet_id FROM user_fleets_copy;
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
INSERT INTO tokens SELECT id, user_id, kind, hash, label, created_ms, expires_ms, last_used_ms,
  revoked_ms FROM tokens_copy;
CREATE INDEX tokens_by_user ON tokens (user_id, id);
DROP TABLE user_fleets_copy;
DROP TABLE tokens_copy;
