/*
 * Unit tests of the accounts domain (gateway/accounts/accounts.c) on
 * whichever backend db_test_util.h selects: PBKDF2 against RFC 7914's
 * vectors, logging in (right, wrong, unknown, disabled, changed between the
 * steps), tokens (valid, expired, revoked, disabled user, last_used once a
 * minute, only a digest stored), fleets (a car moves, paging), what each
 * role may see, the audit row of every write, and a failed commit leaving
 * neither the change nor its audit row. accounts.c is included (the chrony
 * way) to reach its PBKDF2 helper with the vectors' 4-byte salts.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../../gateway/accounts/accounts.c"
#include "schema.h"

/* Test iteration count: real hashes, fast enough for many logins. */
#define TEST_ITERATIONS 1000
#define T0 1700000000000LL

static const char PASSWORD[] = "correct horse battery";
static const char VIN_A[] = "WVWZZZ1JZXW000001";
static const char VIN_B[] = "WVWZZZ1JZXW000002";
static const char VIN_C[] = "WVWZZZ1JZXW000003";

struct fixture {
	struct db *db;
	struct accounts *acc;
};

static int setup(void **state)
{
	static struct fixture f;
	char err[512];

	memset(&f, 0, sizeof(f));
	if (db_test_open("accounts", &f.db) < 0)
		return -1;
	if (schema_migrate(f.db, err, sizeof(err)) < 0) {
		fprintf(stderr, "schema_migrate: %s\n", err);
		return -1;
	}
	if (accounts_new(f.db, &f.acc) < 0)
		return -1;
	accounts_set_instance(f.acc, "gw-test");
	assert_int_equal(accounts_set_pbkdf2_iterations(f.acc, TEST_ITERATIONS), 0);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	accounts_free(f->acc);
	db_close(f->db);
	return 0;
}

static void hex_to(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(hex_decode(hex, out, n), 0);
}

/* The newest audit row; fails the test when there is none. */
static struct accounts_audit_row newest_audit(struct accounts *acc)
{
	struct accounts_audit_row *rows = NULL, row;
	size_t n = 0;
	int more = 0;

	assert_int_equal(accounts_audit_list(acc, NULL, 1, &rows, &n, &more), 0);
	assert_int_equal(n, 1);
	row = rows[0];
	free(rows);
	return row;
}

static size_t audit_count(struct accounts *acc, const char *action)
{
	struct accounts_audit_filter f = { .action = action };
	struct accounts_audit_row *rows = NULL;
	size_t n = 0;
	int more = 0;

	assert_int_equal(accounts_audit_list(acc, &f, ACCOUNTS_LIST_MAX, &rows, &n, &more), 0);
	assert_int_equal(more, 0);
	free(rows);
	return n;
}

static void add_user(struct accounts *acc, const char *name, enum accounts_role role,
		     const char *password, const char *fleet)
{
	struct accounts_secret s;
	const char *fleets[1] = { fleet };

	if (password)
		assert_int_equal(accounts_password_prepare(password, TEST_ITERATIONS, &s), 0);
	assert_int_equal(accounts_user_add(acc, NULL, name, role, password ? &s : NULL, fleets,
					   fleet ? 1 : 0, T0, NULL),
			 0);
}

/* accounts_user_add() of a token-only user without fleets, by "local". */
static int add_plain(struct accounts *acc, const char *name, enum accounts_role role)
{
	return accounts_user_add(acc, NULL, name, role, NULL, NULL, 0, T0, NULL);
}

static void test_pbkdf2_vectors(void **state)
{
	/* RFC 7914 section 11, PBKDF2-HMAC-SHA256 */
	uint8_t want[64], got[64], salt[ACCOUNTS_SALT_LEN], h1[32], h2[32];

	(void)state;
	hex_to("55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
	       "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
	       want, 64);
	assert_int_equal(pbkdf2_sha256("passwd", (const uint8_t *)"salt", 4, 1, got, 64), 0);
	assert_memory_equal(got, want, 64);
	hex_to("4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
	       "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d",
	       want, 64);
	assert_int_equal(pbkdf2_sha256("Password", (const uint8_t *)"NaCl", 4, 80000, got, 64), 0);
	assert_memory_equal(got, want, 64);

	/* the public function: 16-byte salt, 32-byte key (Python's hashlib agrees) */
	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)i;
	hex_to("bb06c8c0b1dd5bfd4e40f4e297a2d0e64da7ef94b4b8ec20989021c8b41536ad", want, 32);
	assert_int_equal(accounts_password_hash(PASSWORD, salt, ACCOUNTS_PBKDF2_ITERATIONS, got),
			 0);
	assert_memory_equal(got, want, 32);
	assert_int_equal(accounts_password_hash(PASSWORD, salt, 0, got), -EINVAL);
	assert_int_equal(accounts_password_hash(NULL, salt, 1, got), -EINVAL);

	/* a secret: random salt, so two of one password differ; too short refused */
	{
		struct accounts_secret a, b;

		assert_int_equal(accounts_password_prepare(PASSWORD, 10, &a), 0);
		assert_int_equal(accounts_password_prepare(PASSWORD, 10, &b), 0);
		assert_int_equal(a.iterations, 10);
		assert_memory_not_equal(a.salt, b.salt, sizeof(a.salt));
		assert_memory_not_equal(a.hash, b.hash, sizeof(a.hash));
		assert_int_equal(accounts_password_hash(PASSWORD, a.salt, 10, h1), 0);
		assert_memory_equal(h1, a.hash, 32);
		assert_int_equal(accounts_password_hash("correct horse batterz", a.salt, 10, h2),
				 0);
		assert_memory_not_equal(h2, a.hash, 32);
		assert_int_equal(accounts_password_prepare("elevenchars", 10, &a), -EINVAL);
		assert_int_equal(accounts_password_prepare("twelve chars", 10, &a), 0);
	}
}

static void test_names_roles(void **state)
{
	enum accounts_role r;

	(void)state;
	assert_true(accounts_name_valid("alice.o-b_c@example"));
	assert_false(accounts_name_valid(""));
	assert_false(accounts_name_valid("has space"));
	assert_false(accounts_name_valid("quote\""));
	assert_false(accounts_name_valid(NULL));
	assert_true(accounts_name_valid(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	assert_false(accounts_name_valid(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
	for (int i = 0; i < ACCOUNTS_ROLE_COUNT; i++) {
		assert_int_equal(accounts_role_parse(accounts_role_name(i), &r), 0);
		assert_int_equal(r, i);
	}
	assert_int_equal(accounts_role_parse("root", &r), -EINVAL);
	assert_string_equal(accounts_role_name(ACCOUNTS_ROLE_COUNT), "?");
	assert_string_equal(accounts_role_name(ACCOUNTS_ROLE_FLEET_MANAGER), "fleet_manager");
}

static void test_login(void **state)
{
	struct fixture *f = *state;
	struct accounts_principal p, q;
	struct accounts_login lg;
	struct accounts_secret s;
	uint8_t computed[32];
	char token[ACCOUNTS_TOKEN_LEN + 1];

	add_user(f->acc, "alice", ACCOUNTS_ROLE_OPERATOR, PASSWORD, NULL);
	add_user(f->acc, "robot", ACCOUNTS_ROLE_OPERATOR, NULL, NULL); /* token-only */

	/* right password: a session token that authenticates as alice */
	assert_int_equal(accounts_login(f->acc, "alice", PASSWORD, T0, token, &p), 0);
	assert_int_equal(strlen(token), ACCOUNTS_TOKEN_LEN);
	assert_memory_equal(token, "pst_", 4);
	assert_string_equal(p.name, "alice");
	assert_int_equal(p.role, ACCOUNTS_ROLE_OPERATOR);
	assert_int_equal(p.token_kind, ACCOUNTS_TOKEN_SESSION);
	assert_int_equal(accounts_authenticate(f->acc, token, T0 + 1, &q), 0);
	assert_int_equal(q.user_id, p.user_id);
	assert_int_equal(q.token_id, p.token_id);
	assert_string_equal(newest_audit(f->acc).action, "login");

	/* wrong password, unknown user, token-only user, junk name */
	assert_int_equal(accounts_login(f->acc, "alice", "correct horse batterz", T0, token, NULL),
			 -EACCES);
	assert_string_equal(newest_audit(f->acc).action, "login_failed");
	assert_string_equal(newest_audit(f->acc).target, "alice");
	assert_int_equal(accounts_login(f->acc, "mallory", PASSWORD, T0, token, NULL), -EACCES);
	assert_int_equal(accounts_login(f->acc, "robot", PASSWORD, T0, token, NULL), -EACCES);
	assert_int_equal(accounts_login(f->acc, "bad name\"", PASSWORD, T0, token, NULL), -EACCES);
	assert_string_equal(newest_audit(f->acc).target, "");
	assert_int_equal(audit_count(f->acc, "login_failed"), 4);

	/* an unknown user gets a salt too, the same each time */
	{
		struct accounts_login a, b;

		assert_int_equal(accounts_login_begin(f->acc, "mallory", &a), 0);
		assert_int_equal(accounts_login_begin(f->acc, "mallory", &b), 0);
		assert_int_equal(a.user_id, 0);
		assert_int_equal(a.secret.iterations, TEST_ITERATIONS);
		assert_memory_equal(a.secret.salt, b.secret.salt, sizeof(a.secret.salt));
	}

	/* the split steps, as the API runs them; a password changed between
	 * begin and finish makes the old one fail */
	assert_int_equal(accounts_login_begin(f->acc, "alice", &lg), 0);
	assert_true(lg.user_id > 0);
	assert_int_equal(lg.secret.iterations, TEST_ITERATIONS);
	assert_int_equal(
		accounts_password_hash(PASSWORD, lg.secret.salt, lg.secret.iterations, computed),
		0);
	assert_int_equal(accounts_login_finish(f->acc, &lg, computed, T0, token, NULL), 0);
	assert_int_equal(accounts_password_prepare("another long password", 5, &s), 0);
	assert_int_equal(accounts_user_set_password(f->acc, NULL, "alice", &s, T0 + 2), 0);
	assert_int_equal(accounts_login_finish(f->acc, &lg, computed, T0 + 3, token, NULL),
			 -EACCES);
	/* ...and the sessions from before the change are revoked */
	assert_int_equal(accounts_authenticate(f->acc, token, T0 + 4, &q), -EACCES);
	assert_int_equal(
		accounts_login(f->acc, "alice", "another long password", T0 + 5, token, &p), 0);

	/* a disabled user cannot log in; enabled again, can */
	assert_int_equal(accounts_user_set_disabled(f->acc, NULL, "alice", 1, T0 + 6), 0);
	assert_int_equal(
		accounts_login(f->acc, "alice", "another long password", T0 + 7, token, NULL),
		-EACCES);
	assert_int_equal(accounts_user_set_disabled(f->acc, NULL, "alice", 0, T0 + 8), 0);
	assert_int_equal(
		accounts_login(f->acc, "alice", "another long password", T0 + 9, token, NULL), 0);
	assert_int_equal(accounts_user_set_disabled(f->acc, NULL, "nobody", 1, T0), -ENOENT);
}

/* The value of one column of one row of one query: for looking behind the API. */
static void query_text(struct db *db, const char *sql, int64_t arg, char *buf, size_t size)
{
	struct db_stmt *st = NULL;

	assert_int_equal(db_prepare(db, sql, &st), 0);
	db_bind_int64(st, 1, arg);
	assert_int_equal(db_step(st), 1);
	db_column_copy(st, 0, buf, size);
	db_finalize(st);
}

static void test_tokens(void **state)
{
	struct fixture *f = *state;
	struct accounts_principal p;
	struct accounts_token t, *rows = NULL;
	char api[ACCOUNTS_TOKEN_LEN + 1], expiring[ACCOUNTS_TOKEN_LEN + 1];
	char session[ACCOUNTS_TOKEN_LEN + 1], stored[128], bad[ACCOUNTS_TOKEN_LEN + 1];
	int64_t api_id, exp_id, sess_id;
	size_t n = 0;
	int more = 0;

	add_user(f->acc, "script", ACCOUNTS_ROLE_OPERATOR, NULL, NULL);
	assert_int_equal(accounts_token_create(f->acc, NULL, "script", ACCOUNTS_TOKEN_API,
					       "nightly export", 0, T0, api, &api_id),
			 0);
	assert_string_equal(newest_audit(f->acc).target, "script");
	assert_non_null(strstr(newest_audit(f->acc).detail, "nightly export"));
	assert_null(strstr(newest_audit(f->acc).detail, api + 4)); /* never the secret */
	assert_int_equal(accounts_token_create(f->acc, NULL, "script", ACCOUNTS_TOKEN_API, "short",
					       T0 + 1000, T0, expiring, &exp_id),
			 0);
	assert_int_equal(accounts_token_create(f->acc, NULL, "script", ACCOUNTS_TOKEN_SESSION, NULL,
					       0, T0, session, &sess_id),
			 0);
	assert_string_not_equal(api, expiring);

	/* only the SHA-256 of the token is stored */
	query_text(f->db, "SELECT hash FROM tokens WHERE id = $1", api_id, stored, sizeof(stored));
	assert_int_equal(strlen(stored), 64);
	{
		char digest[65];

		token_digest(api, digest);
		assert_string_equal(stored, digest);
		assert_null(strstr(stored, api + 4));
	}

	/* valid */
	assert_int_equal(accounts_authenticate(f->acc, api, T0 + 10, &p), 0);
	assert_string_equal(p.name, "script");
	assert_int_equal(p.token_id, api_id);
	assert_int_equal(p.token_kind, ACCOUNTS_TOKEN_API);
	assert_int_equal(p.nfleets, 0);
	/* expired: valid before its expiry, not at it */
	assert_int_equal(accounts_authenticate(f->acc, expiring, T0 + 999, &p), 0);
	assert_int_equal(accounts_authenticate(f->acc, expiring, T0 + 1000, &p), -EACCES);
	/* a session lasts 12 hours by default */
	assert_int_equal(accounts_token_get(f->acc, sess_id, &t), 0);
	assert_int_equal(t.expires_ms, T0 + ACCOUNTS_SESSION_TTL_MS);
	assert_int_equal(
		accounts_authenticate(f->acc, session, T0 + ACCOUNTS_SESSION_TTL_MS - 1, &p), 0);
	assert_int_equal(accounts_authenticate(f->acc, session, T0 + ACCOUNTS_SESSION_TTL_MS, &p),
			 -EACCES);
	/* malformed or unknown */
	memcpy(bad, api, sizeof(bad));
	bad[10] = bad[10] == 'A' ? 'B' : 'A';
	assert_int_equal(accounts_authenticate(f->acc, bad, T0, &p), -EACCES);
	assert_int_equal(accounts_authenticate(f->acc, "pst_short", T0, &p), -EACCES);
	assert_int_equal(accounts_authenticate(f->acc, api + 1, T0, &p), -EACCES);
	assert_int_equal(accounts_authenticate(f->acc, "", T0, &p), -EACCES);

	/* last_used is written at most once a minute */
	assert_int_equal(accounts_token_get(f->acc, api_id, &t), 0);
	assert_int_equal(t.last_used_ms, T0 + 10);
	/* within the minute not even the UPDATE runs: a third statement would
	 * meet the armed fault (lookup and fleets are the two allowed) */
	db_fault_inject(f->db, DB_FAULT_STEP, 2, 1, -EIO);
	assert_int_equal(accounts_authenticate(f->acc, api, T0 + 30000, &p), 0);
	db_fault_inject(f->db, DB_FAULT_STEP, 0, 0, -EIO);
	assert_int_equal(accounts_token_get(f->acc, api_id, &t), 0);
	assert_int_equal(t.last_used_ms, T0 + 10);
	assert_int_equal(
		accounts_authenticate(f->acc, api, T0 + 10 + ACCOUNTS_LAST_USED_PERIOD_MS, &p), 0);
	assert_int_equal(accounts_token_get(f->acc, api_id, &t), 0);
	assert_int_equal(t.last_used_ms, T0 + 10 + ACCOUNTS_LAST_USED_PERIOD_MS);
	/* a last_used write that fails (another instance holds the lock) does not
	 * fail the request; the next minute writes it */
	db_fault_inject(f->db, DB_FAULT_STEP, 2, 1, -EBUSY);
	assert_int_equal(
		accounts_authenticate(f->acc, api, T0 + 10 + 2 * ACCOUNTS_LAST_USED_PERIOD_MS, &p),
		0);
	assert_int_equal(accounts_token_get(f->acc, api_id, &t), 0);
	assert_int_equal(t.last_used_ms, T0 + 10 + ACCOUNTS_LAST_USED_PERIOD_MS);

	/* a disabled user's tokens stop working, and work again when enabled */
	assert_int_equal(accounts_user_set_disabled(f->acc, NULL, "script", 1, T0 + 20), 0);
	assert_int_equal(accounts_authenticate(f->acc, api, T0 + 21, &p), -EACCES);
	assert_int_equal(accounts_user_set_disabled(f->acc, NULL, "script", 0, T0 + 22), 0);
	assert_int_equal(accounts_authenticate(f->acc, api, T0 + 23, &p), 0);

	/* revoked */
	assert_int_equal(accounts_token_revoke(f->acc, &p, api_id, T0 + 30), 0);
	assert_string_equal(newest_audit(f->acc).action, "token.revoke");
	assert_string_equal(newest_audit(f->acc).actor, "script");
	assert_int_equal(accounts_authenticate(f->acc, api, T0 + 31, &p), -EACCES);
	assert_int_equal(accounts_token_revoke(f->acc, NULL, api_id, T0 + 32), -ENOENT);
	assert_int_equal(accounts_token_revoke(f->acc, NULL, 999999, T0 + 32), -ENOENT);

	/* listing: all three, oldest first, paged; nobody else's */
	assert_int_equal(accounts_token_list(f->acc, "script", 0, 2, &rows, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_int_equal(more, 1);
	assert_int_equal(rows[0].id, api_id);
	assert_string_equal(rows[0].label, "nightly export");
	assert_int_equal(rows[0].revoked_ms, T0 + 30);
	assert_int_equal(rows[1].expires_ms, T0 + 1000);
	free(rows);
	assert_int_equal(accounts_token_list(f->acc, "script", exp_id, 10, &rows, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_int_equal(more, 0);
	assert_int_equal(rows[0].kind, ACCOUNTS_TOKEN_SESSION);
	free(rows);
	assert_int_equal(accounts_token_list(f->acc, NULL, 0, 10, &rows, &n, &more), 0);
	assert_int_equal(n, 3);
	free(rows);
	assert_int_equal(accounts_token_list(f->acc, "nobody", 0, 10, &rows, &n, &more), 0);
	assert_int_equal(n, 0);
	assert_null(rows);

	/* bad input */
	assert_int_equal(accounts_token_create(f->acc, NULL, "nobody", ACCOUNTS_TOKEN_API, NULL, 0,
					       T0, api, NULL),
			 -ENOENT);
	assert_int_equal(accounts_token_create(f->acc, NULL, "script", ACCOUNTS_TOKEN_API, "tab\t",
					       0, T0, api, NULL),
			 -EINVAL);
	assert_int_equal(accounts_token_create(f->acc, NULL, "script", ACCOUNTS_TOKEN_API, NULL, T0,
					       T0, api, NULL),
			 -EINVAL);
}

static void test_users_fleets(void **state)
{
	struct fixture *f = *state;
	struct accounts_user u, *users = NULL;
	struct accounts_fleet fl;
	const char *none[1] = { "nosuch" };
	const char *two[2] = { "north", "south" };
	size_t n = 0;
	int more = 0;
	int64_t north, south;

	assert_int_equal(accounts_fleet_add(f->acc, NULL, "north", T0, &north), 0);
	assert_int_equal(accounts_fleet_add(f->acc, NULL, "south", T0, &south), 0);
	assert_int_equal(accounts_fleet_add(f->acc, NULL, "north", T0, NULL), -EEXIST);
	assert_int_equal(accounts_fleet_add(f->acc, NULL, "bad name", T0, NULL), -EINVAL);

	/* a fleet_manager needs a fleet, the others take none */
	assert_int_equal(add_plain(f->acc, "fm", ACCOUNTS_ROLE_FLEET_MANAGER), -EINVAL);
	assert_int_equal(accounts_user_add(f->acc, NULL, "op", ACCOUNTS_ROLE_OPERATOR, NULL, two, 1,
					   T0, NULL),
			 -EINVAL);
	assert_int_equal(accounts_user_add(f->acc, NULL, "fm", ACCOUNTS_ROLE_FLEET_MANAGER, NULL,
					   none, 1, T0, NULL),
			 -ENOENT);
	/* ...and a failed add left nothing behind (rolled back) */
	assert_int_equal(accounts_user_get(f->acc, "fm", &u), -ENOENT);
	assert_int_equal(accounts_user_add(f->acc, NULL, "fm", ACCOUNTS_ROLE_FLEET_MANAGER, NULL,
					   two, 2, T0, NULL),
			 0);
	assert_int_equal(accounts_user_add(f->acc, NULL, "fm", ACCOUNTS_ROLE_OPERATOR, NULL, NULL,
					   0, T0, NULL),
			 -EEXIST);
	/* the handle works on after the unique violation (PostgreSQL aborted that tx) */
	assert_int_equal(accounts_user_get(f->acc, "fm", &u), 0);
	assert_int_equal(u.role, ACCOUNTS_ROLE_FLEET_MANAGER);
	assert_int_equal(u.nfleets, 2);
	assert_int_equal(u.has_password, 0);

	/* fleets of a fleet_manager: remove one, not the last; add back */
	assert_int_equal(accounts_user_fleet_remove(f->acc, NULL, "fm", "south", T0), 0);
	assert_int_equal(accounts_user_fleet_remove(f->acc, NULL, "fm", "north", T0), -EINVAL);
	assert_int_equal(accounts_user_get(f->acc, "fm", &u), 0);
	assert_int_equal(u.nfleets, 1);
	assert_int_equal(u.fleet_ids[0], north);
	assert_int_equal(accounts_user_fleet_add(f->acc, NULL, "fm", "south", T0), 0);
	assert_int_equal(accounts_user_fleet_add(f->acc, NULL, "fm", "nosuch", T0), -ENOENT);
	assert_int_equal(accounts_user_get(f->acc, "fm", &u), 0);
	assert_int_equal(u.nfleets, 2);

	/* a car is in at most one fleet: assigning moves it */
	{
		const char *ab[2] = { VIN_A, VIN_B }, *b[1] = { VIN_B },
			   *bad[2] = { VIN_C, "NOTAVIN" };
		int64_t id;

		assert_int_equal(accounts_fleet_assign(f->acc, NULL, "north", ab, 2, T0), 2);
		assert_int_equal(accounts_fleet_assign(f->acc, NULL, "north", ab, 2, T0), 0);
		assert_int_equal(accounts_fleet_assign(f->acc, NULL, "south", b, 1, T0 + 1), 1);
		assert_int_equal(accounts_fleet_of_vin(f->acc, VIN_A, &id), 1);
		assert_int_equal(id, north);
		assert_int_equal(accounts_fleet_of_vin(f->acc, VIN_B, &id), 1);
		assert_int_equal(id, south);
		assert_int_equal(accounts_fleet_of_vin(f->acc, VIN_C, &id), 0);
		assert_non_null(strstr(newest_audit(f->acc).detail, "\"from\":\"north\""));
		assert_string_equal(newest_audit(f->acc).target, VIN_B);
		assert_int_equal(accounts_fleet_get(f->acc, "north", &fl), 0);
		assert_int_equal(fl.vehicles, 1);
		assert_int_equal(accounts_fleet_get_id(f->acc, south, &fl), 0);
		assert_string_equal(fl.name, "south");
		assert_int_equal(fl.vehicles, 1);
		/* one bad VIN: nothing assigned */
		assert_int_equal(accounts_fleet_assign(f->acc, NULL, "north", bad, 2, T0), -EINVAL);
		assert_int_equal(accounts_fleet_of_vin(f->acc, VIN_C, &id), 0);
		assert_int_equal(accounts_fleet_assign(f->acc, NULL, "nosuch", b, 1, T0), -ENOENT);
		assert_int_equal(accounts_fleet_assign(f->acc, NULL, "north", b, 0, T0), -EINVAL);
	}

	/* VINs of a set of fleets, keyset-paged */
	{
		const char *c[1] = { VIN_C };
		int64_t both[2] = { north, south };
		char *vins = NULL;

		assert_int_equal(accounts_fleet_assign(f->acc, NULL, "north", c, 1, T0), 1);
		assert_int_equal(
			accounts_vins_of_fleets(f->acc, both, 2, NULL, 2, &vins, &n, &more), 0);
		assert_int_equal(n, 2);
		assert_int_equal(more, 1);
		assert_string_equal(vins, VIN_A);
		assert_string_equal(vins + ACCOUNTS_VIN_STRIDE, VIN_B);
		free(vins);
		assert_int_equal(
			accounts_vins_of_fleets(f->acc, both, 2, VIN_B, 2, &vins, &n, &more), 0);
		assert_int_equal(n, 1);
		assert_int_equal(more, 0);
		assert_string_equal(vins, VIN_C);
		free(vins);
		assert_int_equal(
			accounts_vins_of_fleets(f->acc, &south, 1, "", 10, &vins, &n, &more), 0);
		assert_int_equal(n, 1);
		assert_string_equal(vins, VIN_B);
		free(vins);
		assert_int_equal(accounts_vins_of_fleets(f->acc, both, 0, "", 10, &vins, &n, &more),
				 -EINVAL);
		/* unassign: out of any fleet */
		assert_int_equal(accounts_fleet_unassign(f->acc, NULL, c, 1, T0), 1);
		assert_int_equal(accounts_fleet_unassign(f->acc, NULL, c, 1, T0), 0);
		assert_int_equal(
			accounts_vins_of_fleets(f->acc, &north, 1, "", 10, &vins, &n, &more), 0);
		assert_int_equal(n, 1);
		free(vins);
	}

	/* listings by name */
	add_user(f->acc, "adam", ACCOUNTS_ROLE_SERVICE_ADVISOR, NULL, NULL);
	assert_int_equal(accounts_user_list(f->acc, NULL, 1, &users, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_int_equal(more, 1);
	assert_string_equal(users[0].name, "adam");
	free(users);
	assert_int_equal(accounts_user_list(f->acc, "adam", 10, &users, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_int_equal(more, 0);
	assert_string_equal(users[0].name, "fm");
	assert_int_equal(users[0].nfleets, 2);
	free(users);
	{
		struct accounts_fleet *fleets = NULL;

		assert_int_equal(accounts_fleet_list(f->acc, NULL, 10, &fleets, &n, &more), 0);
		assert_int_equal(n, 2);
		assert_string_equal(fleets[0].name, "north");
		assert_int_equal(fleets[0].vehicles, 1);
		free(fleets);
	}
}

static void test_may_see_vin(void **state)
{
	struct fixture *f = *state;
	struct accounts_principal op, fm, sa;
	char token[ACCOUNTS_TOKEN_LEN + 1];
	const char *a[1] = { VIN_A }, *b[1] = { VIN_B };

	assert_int_equal(accounts_fleet_add(f->acc, NULL, "north", T0, NULL), 0);
	assert_int_equal(accounts_fleet_add(f->acc, NULL, "south", T0, NULL), 0);
	assert_int_equal(accounts_fleet_assign(f->acc, NULL, "north", a, 1, T0), 1);
	assert_int_equal(accounts_fleet_assign(f->acc, NULL, "south", b, 1, T0), 1);
	add_user(f->acc, "op", ACCOUNTS_ROLE_OPERATOR, NULL, NULL);
	add_user(f->acc, "fm", ACCOUNTS_ROLE_FLEET_MANAGER, NULL, "north");
	add_user(f->acc, "sa", ACCOUNTS_ROLE_SERVICE_ADVISOR, NULL, NULL);
	assert_int_equal(accounts_token_create(f->acc, NULL, "op", ACCOUNTS_TOKEN_API, NULL, 0, T0,
					       token, NULL),
			 0);
	assert_int_equal(accounts_authenticate(f->acc, token, T0, &op), 0);
	assert_int_equal(accounts_token_create(f->acc, NULL, "fm", ACCOUNTS_TOKEN_API, NULL, 0, T0,
					       token, NULL),
			 0);
	assert_int_equal(accounts_authenticate(f->acc, token, T0, &fm), 0);
	assert_int_equal(fm.nfleets, 1);
	assert_int_equal(accounts_token_create(f->acc, NULL, "sa", ACCOUNTS_TOKEN_API, NULL, 0, T0,
					       token, NULL),
			 0);
	assert_int_equal(accounts_authenticate(f->acc, token, T0, &sa), 0);

	assert_int_equal(accounts_may_see_vin(f->acc, &op, VIN_A), 1);
	assert_int_equal(accounts_may_see_vin(f->acc, &op, VIN_C), 1);
	assert_int_equal(accounts_may_see_vin(f->acc, &fm, VIN_A), 1);
	assert_int_equal(accounts_may_see_vin(f->acc, &fm, VIN_B), 0); /* another fleet */
	assert_int_equal(accounts_may_see_vin(f->acc, &fm, VIN_C), 0); /* in none */
	assert_int_equal(accounts_may_see_vin(f->acc, &fm, "junk"), 0);
	assert_int_equal(accounts_may_see_vin(f->acc, &sa, VIN_A), 0);
	assert_int_equal(accounts_may_see_vin(f->acc, &sa, VIN_B), 0);

	/* the car moves to south: the north manager loses it */
	assert_int_equal(accounts_fleet_assign(f->acc, NULL, "south", a, 1, T0), 1);
	assert_int_equal(accounts_may_see_vin(f->acc, &fm, VIN_A), 0);
}

static void test_audit(void **state)
{
	static const char *const expect[] = {
		/* newest first */
		"token.revoke",	  "token.create",   "user.password", "user.enable",
		"user.disable",	  "fleet.unassign", "fleet.assign",  "user.fleet_remove",
		"user.fleet_add", "user.add",	    "fleet.add",     "fleet.add",
	};
	struct fixture *f = *state;
	struct accounts_principal boss;
	struct accounts_audit_row *rows = NULL;
	struct accounts_audit_filter flt = { 0 };
	struct accounts_secret s;
	const char *fleets[1] = { "north" }, *v[1] = { VIN_A };
	char token[ACCOUNTS_TOKEN_LEN + 1];
	int64_t tid;
	size_t n = 0;
	int more = 0;

	memset(&boss, 0, sizeof(boss));
	snprintf(boss.name, sizeof(boss.name), "boss");
	boss.role = ACCOUNTS_ROLE_OPERATOR;

	/* every write, each one row, in order */
	assert_int_equal(accounts_fleet_add(f->acc, NULL, "north", T0 + 1, NULL), 0);
	assert_int_equal(accounts_fleet_add(f->acc, &boss, "south", T0 + 2, NULL), 0);
	assert_int_equal(accounts_user_add(f->acc, &boss, "fm", ACCOUNTS_ROLE_FLEET_MANAGER, NULL,
					   fleets, 1, T0 + 3, NULL),
			 0);
	assert_int_equal(accounts_user_fleet_add(f->acc, &boss, "fm", "south", T0 + 4), 0);
	assert_int_equal(accounts_user_fleet_remove(f->acc, &boss, "fm", "south", T0 + 5), 0);
	assert_int_equal(accounts_fleet_assign(f->acc, &boss, "north", v, 1, T0 + 6), 1);
	assert_int_equal(accounts_fleet_unassign(f->acc, &boss, v, 1, T0 + 7), 1);
	assert_int_equal(accounts_user_set_disabled(f->acc, &boss, "fm", 1, T0 + 8), 0);
	assert_int_equal(accounts_user_set_disabled(f->acc, &boss, "fm", 0, T0 + 9), 0);
	assert_int_equal(accounts_password_prepare(PASSWORD, 3, &s), 0);
	assert_int_equal(accounts_user_set_password(f->acc, &boss, "fm", &s, T0 + 10), 0);
	assert_int_equal(accounts_token_create(f->acc, &boss, "fm", ACCOUNTS_TOKEN_API, "x", 0,
					       T0 + 11, token, &tid),
			 0);
	assert_int_equal(accounts_token_revoke(f->acc, &boss, tid, T0 + 12), 0);
	/* no change, no row */
	assert_int_equal(accounts_user_fleet_add(f->acc, &boss, "fm", "north", T0 + 13), 0);

	assert_int_equal(accounts_audit_list(f->acc, NULL, 100, &rows, &n, &more), 0);
	assert_int_equal(n, sizeof(expect) / sizeof(expect[0]));
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(rows[i].action, expect[i]);
		assert_int_equal(rows[i].at_ms, T0 + 12 - (int64_t)i);
		assert_string_equal(rows[i].instance, "gw-test");
	}
	assert_string_equal(rows[0].actor, "boss");
	assert_string_equal(rows[0].actor_role, "operator");
	assert_string_equal(rows[n - 1].actor, "local"); /* NULL actor */
	assert_string_equal(rows[n - 1].target, "north");
	assert_string_equal(rows[9].target, "fm");
	assert_non_null(strstr(rows[9].detail, "\"role\":\"fleet_manager\""));
	assert_null(strstr(rows[2].detail, "hash"));
	free(rows);

	/* filters and paging */
	flt.actor = "local";
	assert_int_equal(accounts_audit_list(f->acc, &flt, 100, &rows, &n, &more), 0);
	assert_int_equal(n, 1);
	free(rows);
	flt.actor = "boss";
	flt.action = "fleet.add";
	assert_int_equal(accounts_audit_list(f->acc, &flt, 100, &rows, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].target, "south");
	free(rows);
	memset(&flt, 0, sizeof(flt));
	flt.since_ms = T0 + 10;
	assert_int_equal(accounts_audit_list(f->acc, &flt, 2, &rows, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_int_equal(more, 1);
	flt.before_id = rows[1].id;
	free(rows);
	assert_int_equal(accounts_audit_list(f->acc, &flt, 2, &rows, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_int_equal(more, 0);
	assert_string_equal(rows[0].action, "user.password");
	free(rows);

	/* the public call: checked JSON, local actor */
	assert_int_equal(accounts_audit(f->acc, NULL, "offer.send", VIN_A, "{\"n\":1}", T0 + 20),
			 0);
	assert_string_equal(newest_audit(f->acc).detail, "{\"n\":1}");
	assert_int_equal(accounts_audit(f->acc, NULL, "offer.send", VIN_A, NULL, T0 + 21), 0);
	assert_string_equal(newest_audit(f->acc).detail, "{}");
	assert_int_equal(accounts_audit(f->acc, NULL, "x", NULL, "{not json", T0), -EINVAL);
	assert_int_equal(accounts_audit(f->acc, NULL, "", NULL, NULL, T0), -EINVAL);
}

/* A failed commit leaves neither the change nor its audit row. */
static void test_commit_fails(void **state)
{
	struct fixture *f = *state;
	struct accounts_user u;
	size_t before = audit_count(f->acc, "user.add");

	db_fault_inject(f->db, DB_FAULT_COMMIT, 0, 1, -EIO);
	assert_int_equal(add_plain(f->acc, "ghost", ACCOUNTS_ROLE_OPERATOR), -EIO);
	assert_int_equal(accounts_user_get(f->acc, "ghost", &u), -ENOENT);
	assert_int_equal(audit_count(f->acc, "user.add"), before);
	/* a statement failing mid-way (the audit insert) rolls back the user too */
	db_fault_inject(f->db, DB_FAULT_STEP, 1, 1, -EIO);
	assert_int_equal(add_plain(f->acc, "ghost", ACCOUNTS_ROLE_OPERATOR), -EIO);
	assert_int_equal(accounts_user_get(f->acc, "ghost", &u), -ENOENT);
	assert_int_equal(add_plain(f->acc, "ghost", ACCOUNTS_ROLE_OPERATOR), 0);
	assert_int_equal(audit_count(f->acc, "user.add"), before + 1);
}

/* Two instances on one database: the unique constraint decides. */
static void test_two_instances(void **state)
{
	struct fixture *f = *state;
	struct db *db2 = NULL;
	struct accounts *acc2 = NULL;
	char url[512], err[512], token[ACCOUNTS_TOKEN_LEN + 1];
	struct accounts_principal p;

	assert_int_equal(db_test_url("accounts", url, sizeof(url)), 0);
	assert_int_equal(db_open(url, DB_READ_WRITE, &db2, err, sizeof(err)), 0);
	assert_int_equal(accounts_new(db2, &acc2), 0);
	assert_int_equal(accounts_fleet_add(f->acc, NULL, "shared", T0, NULL), 0);
	assert_int_equal(accounts_fleet_add(acc2, NULL, "shared", T0, NULL), -EEXIST);
	add_user(f->acc, "ann", ACCOUNTS_ROLE_OPERATOR, NULL, NULL);
	assert_int_equal(add_plain(acc2, "ann", ACCOUNTS_ROLE_OPERATOR), -EEXIST);
	/* a token made on one instance authenticates on the other */
	assert_int_equal(accounts_token_create(f->acc, NULL, "ann", ACCOUNTS_TOKEN_API, NULL, 0, T0,
					       token, NULL),
			 0);
	assert_int_equal(accounts_authenticate(acc2, token, T0, &p), 0);
	assert_string_equal(p.name, "ann");
	accounts_free(acc2);
	db_close(db2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pbkdf2_vectors),
		cmocka_unit_test(test_names_roles),
		cmocka_unit_test_setup_teardown(test_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users_fleets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_may_see_vin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_instances, setup, teardown),
	};

	fprintf(stderr, "accounts tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
