/*
 * Accounts: who may use the gateway's HTTP API and console, and what they
 * may see (issue 8). The accounts domain owns the tables users, fleets,
 * user_fleets, fleet_vehicles, tokens and audit_log
 * (gateway/accounts/schema/); no other module touches them.
 *
 * Model (docs/accounts.md):
 *   - a user has a name, one role and optionally a password (PBKDF2-HMAC-
 *     SHA256, salt and iteration count stored per user); a user without one
 *     logs in with API tokens only;
 *   - roles: operator (everything), fleet_manager (the vehicles of their
 *     fleets, at least one fleet), service_advisor (customers, tasks and due
 *     lists of their dealer once dealers exist: no vehicle data until then),
 *     partner (a partner's point of sale: redeems promo codes and nothing
 *     else, enforced by the API's router);
 *   - a fleet groups vehicles; a VIN belongs to at most one fleet (the VIN is
 *     the primary key of fleet_vehicles);
 *   - tokens: "pst_" + base64url(32 random bytes); only SHA-256 of the token
 *     is stored. Kind session (from a login, expires) or api (for scripts,
 *     long-lived, optional expiry, a label);
 *   - every write function records an audit_log row in the same transaction:
 *     actor (a principal, or NULL for the local system operator, recorded as
 *     "local"), time, action, target, JSON detail, gateway instance.
 *
 * Several gateway instances share one database: unique constraints decide
 * races (a duplicate user or fleet name is -EEXIST whoever inserted first).
 *
 * Transactions: a write function opens its own transaction, or joins the
 * caller's if one is open (db_in_tx()). On failure inside the caller's
 * transaction the caller must roll it back (PostgreSQL has aborted it).
 *
 * Threads: a struct accounts belongs to the thread that owns its db (the
 * loop). The only exceptions are accounts_password_hash() and
 * accounts_password_prepare(), pure functions safe on any thread: PBKDF2 at
 * 600,000 iterations takes ~0.3 s, so the API runs them on a worker.
 *
 * Errors: 0 (or a count) on success, else a negative errno: -EINVAL (bad
 * name, role, password, VIN, label), -EEXIST (name taken), -ENOENT (no such
 * user, fleet or token), -EACCES (authentication failed), -E2BIG (a bound
 * below exceeded), -ENOMEM, or a db.h error class (db logged it).
 */
#ifndef PITSTOP_ACCOUNTS_H
#define PITSTOP_ACCOUNTS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* The accounts domain's migrations, for db_migrate() (generated from schema/). */
extern const struct db_migration accounts_migrations[];
extern const size_t accounts_migrations_count;

/* User and fleet names: 1..ACCOUNTS_NAME_MAX chars from [A-Za-z0-9._@-]. */
#define ACCOUNTS_NAME_MAX 64
/* Passwords: at least ACCOUNTS_PASSWORD_MIN bytes, at most ACCOUNTS_PASSWORD_MAX. */
#define ACCOUNTS_PASSWORD_MIN 12
#define ACCOUNTS_PASSWORD_MAX 1024
/* Token labels: 0..ACCOUNTS_LABEL_MAX printable ASCII chars. */
#define ACCOUNTS_LABEL_MAX 64

/* PBKDF2-HMAC-SHA256: default iterations (OWASP 2023), salt and key sizes. */
#define ACCOUNTS_PBKDF2_ITERATIONS 600000u
#define ACCOUNTS_SALT_LEN 16
#define ACCOUNTS_HASH_LEN 32

/* Tokens: "pst_" + 43 base64url chars (32 bytes, no padding). */
#define ACCOUNTS_TOKEN_PREFIX "pst_"
#define ACCOUNTS_TOKEN_LEN (4 + 43)
/* A session token's lifetime unless accounts_set_session_ttl() says otherwise. */
#define ACCOUNTS_SESSION_TTL_MS (12 * 3600 * 1000LL)
/* A token's last_used_ms is written at most this often (no write per request). */
#define ACCOUNTS_LAST_USED_PERIOD_MS 60000

/* The most fleets one user may have (a principal carries them all). */
#define ACCOUNTS_USER_FLEETS_MAX 32
/* VINs one accounts_fleet_assign()/unassign() call takes at most. */
#define ACCOUNTS_ASSIGN_MAX 10000
/* Rows one listing returns at most (a larger limit is cut to this). */
#define ACCOUNTS_LIST_MAX 1000

/* Audit rows: bounds of the stored fields. */
#define ACCOUNTS_ACTION_MAX 48
#define ACCOUNTS_TARGET_MAX 128
#define ACCOUNTS_DETAIL_MAX 2048
#define ACCOUNTS_INSTANCE_MAX 64

enum accounts_role {
	ACCOUNTS_ROLE_OPERATOR,
	ACCOUNTS_ROLE_FLEET_MANAGER,
	ACCOUNTS_ROLE_SERVICE_ADVISOR,
	ACCOUNTS_ROLE_PARTNER, /* a partner's point of sale: redeems promo codes, nothing else */
	ACCOUNTS_ROLE_COUNT,
};

/* "operator", "fleet_manager", "service_advisor"; "?" when out of range. */
const char *accounts_role_name(enum accounts_role role);

/* Parses a role name into *ret. Returns 0 or -EINVAL. */
int accounts_role_parse(const char *s, enum accounts_role *ret);

/* 1 if s is a valid user or fleet name, else 0 (NULL -> 0). */
int accounts_name_valid(const char *s);

/* 1 if password is long enough (and not too long), else 0 (NULL -> 0). */
int accounts_password_valid(const char *password);

enum accounts_token_kind {
	ACCOUNTS_TOKEN_SESSION,
	ACCOUNTS_TOKEN_API,
};

/* "session" or "api"; "?" when out of range. */
const char *accounts_token_kind_name(enum accounts_token_kind kind);

/*
 * Who makes a request: what accounts_authenticate() found for a token.
 * Everything the server checks per request is here; it is a copy, valid
 * until the request ends (a role change shows on the next request).
 */
struct accounts_principal {
	int64_t user_id;
	char name[ACCOUNTS_NAME_MAX + 1];
	enum accounts_role role;
	size_t nfleets;				     /* fleet_manager: >= 1 */
	int64_t fleet_ids[ACCOUNTS_USER_FLEETS_MAX]; /* the first nfleets */
	int64_t token_id; /* the token it came with (a login: the new session) */
	enum accounts_token_kind token_kind;
};

struct accounts;

/*
 * Prepares the statements on db (borrowed; migrated with the accounts
 * domain). Returns 0 and *ret, or -errno.
 */
int accounts_new(struct db *db, struct accounts **ret);

/* Accepts NULL. */
void accounts_free(struct accounts *acc);

/* The gateway instance recorded in audit rows (copied, cut to
 * ACCOUNTS_INSTANCE_MAX); "" until set. */
void accounts_set_instance(struct accounts *acc, const char *instance_id);

/*
 * The PBKDF2 iteration count for passwords hashed from now on (>= 1;
 * default ACCOUNTS_PBKDF2_ITERATIONS). Stored per user, so lowering it
 * (tests) does not weaken existing hashes. Returns 0 or -EINVAL.
 */
int accounts_set_pbkdf2_iterations(struct accounts *acc, uint32_t iterations);
uint32_t accounts_pbkdf2_iterations(const struct accounts *acc);

/* A session token's lifetime (> 0). Returns 0 or -EINVAL. */
int accounts_set_session_ttl(struct accounts *acc, int64_t ttl_ms);

/* ---- Passwords --------------------------------------------------------- */

/*
 * PBKDF2-HMAC-SHA256(password, salt, iterations) into out. Pure and
 * thread-safe: no db, no struct accounts. Returns 0, -EINVAL (NULL password,
 * iterations 0) or -ENOMEM.
 */
int accounts_password_hash(const char *password, const uint8_t salt[ACCOUNTS_SALT_LEN],
			   uint32_t iterations, uint8_t out[ACCOUNTS_HASH_LEN]);

/* A stored password: what a user row keeps. */
struct accounts_secret {
	uint8_t salt[ACCOUNTS_SALT_LEN];
	uint32_t iterations;
	uint8_t hash[ACCOUNTS_HASH_LEN];
};

/*
 * A new secret for password: checks accounts_password_valid(), draws a
 * random salt (getrandom) and hashes with iterations. Pure and thread-safe
 * (run it on a worker: it takes as long as a login). Returns 0, -EINVAL
 * (password too short or too long), -EIO (no randomness) or -ENOMEM.
 */
int accounts_password_prepare(const char *password, uint32_t iterations,
			      struct accounts_secret *ret);

/*
 * Logging in, in three steps so the hash runs off the loop:
 *   1. loop:   accounts_login_begin(acc, name, &lg)
 *   2. worker: accounts_password_hash(password, lg.secret.salt,
 *              lg.secret.iterations, computed)
 *   3. loop:   accounts_login_finish(acc, &lg, computed, now, token, &who)
 * accounts_login() runs all three on the calling thread (pitstopctl, tests).
 */
struct accounts_login {
	int64_t user_id; /* 0: no such user, disabled, or no password */
	char name[ACCOUNTS_NAME_MAX + 1];
	struct accounts_secret secret;
};

/*
 * Step 1: the salt and iteration count to hash the password with. For an
 * unknown or disabled user, or one without a password, it still returns 0
 * with a dummy salt (derived from the name) and the current iteration count,
 * so that the time a login takes does not tell which names exist; step 3
 * then fails. Returns 0, or a db error class.
 */
int accounts_login_begin(struct accounts *acc, const char *name, struct accounts_login *ret);

/*
 * Step 3: compares computed (constant time) with the stored hash, read
 * again (a password changed or a user disabled since step 1 counts), and on
 * success creates a session token: writes it (NUL-terminated, so
 * ACCOUNTS_TOKEN_LEN + 1 bytes) into token_out and fills *ret_principal
 * (may be NULL) as accounts_authenticate() would. Both outcomes are audited
 * ("login", "login_failed"). Returns 0, -EACCES or an error class.
 */
int accounts_login_finish(struct accounts *acc, const struct accounts_login *lg,
			  const uint8_t computed[ACCOUNTS_HASH_LEN], int64_t now_ms,
			  char token_out[ACCOUNTS_TOKEN_LEN + 1],
			  struct accounts_principal *ret_principal);

/* The three steps at once, on this thread (blocks for the hash). */
int accounts_login(struct accounts *acc, const char *name, const char *password, int64_t now_ms,
		   char token_out[ACCOUNTS_TOKEN_LEN + 1],
		   struct accounts_principal *ret_principal);

/* ---- Users ------------------------------------------------------------- */

struct accounts_user {
	int64_t id;
	char name[ACCOUNTS_NAME_MAX + 1];
	enum accounts_role role;
	int disabled;
	int has_password;
	int64_t created_ms;
	size_t nfleets;
	int64_t fleet_ids[ACCOUNTS_USER_FLEETS_MAX];
};

/*
 * Adds user name with role and secret (from accounts_password_prepare(), or
 * NULL for a token-only user). A fleet_manager gets fleets[0..nfleets)
 * (fleet names; at least one, at most ACCOUNTS_USER_FLEETS_MAX); other roles
 * take none (-EINVAL). Audited as "user.add". Returns 0 and *ret_id (may be
 * NULL), -EINVAL, -EEXIST (name taken), -ENOENT (a fleet does not exist),
 * or an error class.
 */
int accounts_user_add(struct accounts *acc, const struct accounts_principal *actor,
		      const char *name, enum accounts_role role,
		      const struct accounts_secret *secret, const char *const *fleets,
		      size_t nfleets, int64_t now_ms, int64_t *ret_id);

/* Fills *ret with user name. Returns 0, -ENOENT or an error class. */
int accounts_user_get(struct accounts *acc, const char *name, struct accounts_user *ret);

/*
 * Users by name after after_name ("" or NULL: from the first), at most
 * limit (cut to ACCOUNTS_LIST_MAX); *ret_more is 1 when more follow (page on
 * with the last name). *ret_rows is malloc'ed (NULL when *ret_n is 0).
 */
int accounts_user_list(struct accounts *acc, const char *after_name, size_t limit,
		       struct accounts_user **ret_rows, size_t *ret_n, int *ret_more);

/*
 * Disables (disabled 1) or enables (0) user name: a disabled user's tokens
 * stop authenticating and they cannot log in. Audited as "user.disable" /
 * "user.enable". Returns 0, -ENOENT or an error class.
 */
int accounts_user_set_disabled(struct accounts *acc, const struct accounts_principal *actor,
			       const char *name, int disabled, int64_t now_ms);

/*
 * Sets (secret) or removes (NULL) user name's password, and revokes the
 * user's session tokens (API tokens stay). Audited as "user.password".
 * Returns 0, -ENOENT or an error class.
 */
int accounts_user_set_password(struct accounts *acc, const struct accounts_principal *actor,
			       const char *name, const struct accounts_secret *secret,
			       int64_t now_ms);

/*
 * Gives fleet_manager `name` fleet `fleet` too (nothing if it has it), or
 * takes it away (-EINVAL if it is their last). Audited as "user.fleet_add" /
 * "user.fleet_remove". Returns 0, -EINVAL (not a fleet_manager, last fleet),
 * -ENOENT, -E2BIG (ACCOUNTS_USER_FLEETS_MAX) or an error class.
 */
int accounts_user_fleet_add(struct accounts *acc, const struct accounts_principal *actor,
			    const char *name, const char *fleet, int64_t now_ms);
int accounts_user_fleet_remove(struct accounts *acc, const struct accounts_principal *actor,
			       const char *name, const char *fleet, int64_t now_ms);

/* ---- Tokens ------------------------------------------------------------ */

/* A token as listed: never its secret. */
struct accounts_token {
	int64_t id;
	int64_t user_id;
	char user[ACCOUNTS_NAME_MAX + 1];
	enum accounts_token_kind kind;
	char label[ACCOUNTS_LABEL_MAX + 1];
	int64_t created_ms;
	int64_t expires_ms;   /* 0: never */
	int64_t last_used_ms; /* 0: never used */
	int64_t revoked_ms;   /* 0: not revoked */
};

/*
 * Creates a token of kind for user name, with label (NULL: "") and expiry
 * expires_ms (0: never for api; a session's 0 means now + the session TTL).
 * Writes the token (ACCOUNTS_TOKEN_LEN + 1 bytes with the NUL) into
 * token_out: it is shown once, only its SHA-256 is stored. Audited as
 * "token.create" (id, kind, label; never the token). Returns 0 and *ret_id
 * (may be NULL), -EINVAL (bad label, expiry not after now), -ENOENT or an
 * error class.
 */
int accounts_token_create(struct accounts *acc, const struct accounts_principal *actor,
			  const char *name, enum accounts_token_kind kind, const char *label,
			  int64_t expires_ms, int64_t now_ms,
			  char token_out[ACCOUNTS_TOKEN_LEN + 1], int64_t *ret_id);

/*
 * Revokes token id (logout: the principal's token_id). Audited as
 * "token.revoke". Returns 0, -ENOENT (no such token, or revoked already) or
 * an error class.
 */
int accounts_token_revoke(struct accounts *acc, const struct accounts_principal *actor,
			  int64_t token_id, int64_t now_ms);

/* Fills *ret with token id (no secret). Returns 0, -ENOENT or an error class. */
int accounts_token_get(struct accounts *acc, int64_t token_id, struct accounts_token *ret);

/*
 * Tokens of user name (NULL: every user's) with id after after_id (0: from
 * the first), oldest first, at most limit (cut to ACCOUNTS_LIST_MAX);
 * revoked ones too. *ret_more, *ret_rows as accounts_user_list().
 */
int accounts_token_list(struct accounts *acc, const char *name, int64_t after_id, size_t limit,
			struct accounts_token **ret_rows, size_t *ret_n, int *ret_more);

/*
 * Who holds token (the bearer string) at now_ms: fills *ret. -EACCES for a
 * malformed, unknown, expired or revoked token or a disabled user (one
 * answer for all: the caller says 401). Writes the token's last_used_ms only
 * when the stored one is ACCOUNTS_LAST_USED_PERIOD_MS old or more; outside a
 * transaction a failure of that write does not fail the call. Returns 0,
 * -EACCES or an error class.
 */
int accounts_authenticate(struct accounts *acc, const char *token, int64_t now_ms,
			  struct accounts_principal *ret);

/* ---- Fleets ------------------------------------------------------------ */

struct accounts_fleet {
	int64_t id;
	char name[ACCOUNTS_NAME_MAX + 1];
	int64_t created_ms;
	int64_t vehicles; /* VINs assigned now */
};

/* Adds fleet name. Audited as "fleet.add". Returns 0 and *ret_id (may be
 * NULL), -EINVAL, -EEXIST or an error class. */
int accounts_fleet_add(struct accounts *acc, const struct accounts_principal *actor,
		       const char *name, int64_t now_ms, int64_t *ret_id);

/* Fills *ret with fleet name. Returns 0, -ENOENT or an error class. */
int accounts_fleet_get(struct accounts *acc, const char *name, struct accounts_fleet *ret);

/* Fills *ret with fleet id. Returns 0, -ENOENT or an error class. */
int accounts_fleet_get_id(struct accounts *acc, int64_t fleet_id, struct accounts_fleet *ret);

/* Fleets by name, paged as accounts_user_list(). */
int accounts_fleet_list(struct accounts *acc, const char *after_name, size_t limit,
			struct accounts_fleet **ret_rows, size_t *ret_n, int *ret_more);

/*
 * Puts vins[0..n) (1..ACCOUNTS_ASSIGN_MAX well-formed VINs) into fleet: a
 * VIN in another fleet moves (a car is in at most one fleet). One
 * transaction; one audit row "fleet.assign" per VIN (target the VIN, detail
 * the fleet and the one it left). Returns how many VINs changed fleet (0..n),
 * -EINVAL (a bad VIN: nothing assigned), -ENOENT (no such fleet), -E2BIG or
 * an error class.
 */
int accounts_fleet_assign(struct accounts *acc, const struct accounts_principal *actor,
			  const char *fleet, const char *const *vins, size_t n, int64_t now_ms);

/*
 * Takes vins[0..n) out of whatever fleet they are in. One audit row
 * "fleet.unassign" per VIN that was in one. Returns how many were, -EINVAL,
 * -E2BIG or an error class.
 */
int accounts_fleet_unassign(struct accounts *acc, const struct accounts_principal *actor,
			    const char *const *vins, size_t n, int64_t now_ms);

/* The fleet vin is in: 1 and *ret_fleet_id, 0 when in none, or an error class. */
int accounts_fleet_of_vin(struct accounts *acc, const char *vin, int64_t *ret_fleet_id);

/*
 * The VINs in fleets fleet_ids[0..nfleets) (1..ACCOUNTS_USER_FLEETS_MAX; a
 * principal's fleet_ids), in VIN order after after_vin ("" or NULL: from
 * the first), at most limit (cut to ACCOUNTS_LIST_MAX). *ret_vins is one
 * malloc'ed array of *ret_n strings of VIN_LEN + 1 bytes, 18 bytes apart
 * (NULL when *ret_n is 0); *ret_more is 1 when more follow.
 */
#define ACCOUNTS_VIN_STRIDE 18
int accounts_vins_of_fleets(struct accounts *acc, const int64_t *fleet_ids, size_t nfleets,
			    const char *after_vin, size_t limit, char **ret_vins, size_t *ret_n,
			    int *ret_more);

/*
 * May p see vehicle vin's data? operator: yes; fleet_manager: when vin is in
 * one of p's fleets; service_advisor: no (until dealers exist). Returns 1,
 * 0 or an error class.
 */
int accounts_may_see_vin(struct accounts *acc, const struct accounts_principal *p, const char *vin);

/* ---- Audit ------------------------------------------------------------- */

/*
 * Records one audit row: actor (NULL: the local system operator, "local"
 * with role "operator"), now_ms, action (1..ACCOUNTS_ACTION_MAX chars),
 * target ("" or NULL for none; cut to ACCOUNTS_TARGET_MAX), detail (a JSON
 * text, NULL for "{}"; must parse, at most ACCOUNTS_DETAIL_MAX bytes) and
 * the instance id. Inside the caller's transaction if one is open. Returns
 * 0, -EINVAL (bad action or detail), -E2BIG (detail too long) or an error
 * class.
 */
int accounts_audit(struct accounts *acc, const struct accounts_principal *actor, const char *action,
		   const char *target, const char *detail_json, int64_t now_ms);

struct accounts_audit_row {
	int64_t id;
	int64_t at_ms;
	char actor[ACCOUNTS_NAME_MAX + 1];
	char actor_role[24];
	char action[ACCOUNTS_ACTION_MAX + 1];
	char target[ACCOUNTS_TARGET_MAX + 1];
	char detail[ACCOUNTS_DETAIL_MAX + 1];
	char instance[ACCOUNTS_INSTANCE_MAX + 1];
};

/* Which audit rows to list; zeroed means all. */
struct accounts_audit_filter {
	const char *actor;  /* NULL: any */
	const char *action; /* NULL: any */
	int64_t since_ms;   /* 0: any; else at_ms >= since_ms */
	int64_t before_id;  /* 0: from the newest; else id < before_id (next page) */
};

/*
 * Audit rows matching f (NULL: all), newest first, at most limit (cut to
 * ACCOUNTS_LIST_MAX); *ret_more is 1 when more follow (page on with
 * before_id = the last row's id). *ret_rows is malloc'ed (NULL when *ret_n
 * is 0).
 */
int accounts_audit_list(struct accounts *acc, const struct accounts_audit_filter *f, size_t limit,
			struct accounts_audit_row **ret_rows, size_t *ret_n, int *ret_more);

#endif
