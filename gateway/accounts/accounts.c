/*
 * Users, roles, fleets, tokens and the audit trail; see accounts.h and
 * docs/accounts.md. Every write runs in one transaction with its audit row;
 * every race between gateway instances is decided by a unique constraint
 * or by one atomic statement (a VIN's fleet is an upsert on the VIN), and
 * changes to one user's fleets first update the user's row, which
 * serialises them on PostgreSQL (a row lock) as BEGIN IMMEDIATE does on
 * SQLite.
 *
 * Secrets: passwords are kept as PBKDF2-HMAC-SHA256 (salt, iterations,
 * key; hex), tokens as the SHA-256 of the token string (hex). Neither is
 * logged nor audited.
 */
#include "accounts.h"

#include "grow.h"
#include "vin.h"

#include <errno.h>
#include <jansson.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

enum stmt_id {
	ST_USER_INSERT,
	ST_USER_GET,
	ST_USER_LIST,
	ST_USER_SECRET,
	ST_USER_SECRET_ID,
	ST_USER_SET_DISABLED,
	ST_USER_SET_PASSWORD,
	ST_USER_TOUCH,
	ST_USER_FLEETS,
	ST_USER_FLEET_INSERT,
	ST_USER_FLEET_DELETE,
	ST_SESSIONS_REVOKE,
	ST_TOKEN_INSERT,
	ST_TOKEN_AUTH,
	ST_TOKEN_TOUCH,
	ST_TOKEN_REVOKE,
	ST_TOKEN_GET,
	ST_TOKEN_LIST,
	ST_FLEET_INSERT,
	ST_FLEET_GET,
	ST_FLEET_GET_ID,
	ST_FLEET_LIST,
	ST_VIN_FLEET,
	ST_VIN_ASSIGN,
	ST_VIN_UNASSIGN,
	ST_VINS_OF_FLEETS,
	ST_AUDIT_INSERT,
	ST_AUDIT_LIST,
	ST_COUNT,
};

#define USER_COLS \
	"id, name, role, disabled, CASE WHEN pw_hash IS NULL THEN 0 ELSE 1 END, created_ms"
#define TOKEN_COLS                                                              \
	"t.id, t.user_id, u.name, t.kind, t.label, t.created_ms, t.expires_ms," \
	" t.last_used_ms, t.revoked_ms"
#define FLEET_COLS                    \
	"f.id, f.name, f.created_ms," \
	" (SELECT COUNT(*) FROM fleet_vehicles v WHERE v.fleet_id = f.id)"
#define AUDIT_COLS "id, at_ms, actor, actor_role, action, target, detail, instance"

/* $1..$32: fleet ids (unused ones bound NULL, which matches nothing). */
#define FLEET_IN_LIST                                                                       \
	"($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18," \
	" $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)"
_Static_assert(ACCOUNTS_USER_FLEETS_MAX == 32, "FLEET_IN_LIST has 32 placeholders");

/* clang-format off */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_USER_INSERT] =
		"INSERT INTO users(name, role, disabled, pw_salt, pw_iterations, pw_hash,"
		" created_ms, changed_ms) VALUES($1, $2, 0, $3, $4, $5, $6, $6) RETURNING id",
	[ST_USER_GET] = "SELECT " USER_COLS " FROM users WHERE name = $1",
	[ST_USER_LIST] = "SELECT " USER_COLS " FROM users WHERE name > $1 ORDER BY name LIMIT $2",
	[ST_USER_SECRET] =
		"SELECT id, disabled, pw_salt, pw_iterations, pw_hash FROM users WHERE name = $1",
	[ST_USER_SECRET_ID] =
		"SELECT id, disabled, pw_salt, pw_iterations, pw_hash, name, role"
		" FROM users WHERE id = $1",
	[ST_USER_SET_DISABLED] =
		"UPDATE users SET disabled = $2, changed_ms = $3 WHERE name = $1 RETURNING id",
	[ST_USER_SET_PASSWORD] =
		"UPDATE users SET pw_salt = $2, pw_iterations = $3, pw_hash = $4, changed_ms = $5"
		" WHERE name = $1 RETURNING id",
	/* Also the row lock that serialises changes to one user's fleets. */
	[ST_USER_TOUCH] = "UPDATE users SET changed_ms = $2 WHERE name = $1 RETURNING id, role",
	[ST_USER_FLEETS] =
		"SELECT fleet_id FROM user_fleets WHERE user_id = $1 ORDER BY fleet_id LIMIT $2",
	[ST_USER_FLEET_INSERT] =
		"INSERT INTO user_fleets(user_id, fleet_id) VALUES($1, $2) ON CONFLICT DO NOTHING",
	[ST_USER_FLEET_DELETE] = "DELETE FROM user_fleets WHERE user_id = $1 AND fleet_id = $2",
	[ST_SESSIONS_REVOKE] =
		"UPDATE tokens SET revoked_ms = $2"
		" WHERE user_id = $1 AND kind = 'session' AND revoked_ms IS NULL",
	[ST_TOKEN_INSERT] =
		"INSERT INTO tokens(user_id, kind, hash, label, created_ms, expires_ms)"
		" VALUES($1, $2, $3, $4, $5, $6) RETURNING id",
	[ST_TOKEN_AUTH] =
		"SELECT t.id, t.kind, t.last_used_ms, u.id, u.name, u.role"
		" FROM tokens t JOIN users u ON u.id = t.user_id"
		" WHERE t.hash = $1 AND t.revoked_ms IS NULL"
		" AND (t.expires_ms IS NULL OR t.expires_ms > $2) AND u.disabled = 0",
	[ST_TOKEN_TOUCH] =
		"UPDATE tokens SET last_used_ms = $2"
		" WHERE id = $1 AND (last_used_ms IS NULL OR last_used_ms <= $3)",
	[ST_TOKEN_REVOKE] =
		"UPDATE tokens SET revoked_ms = $2 WHERE id = $1 AND revoked_ms IS NULL"
		" RETURNING kind, (SELECT name FROM users u WHERE u.id = tokens.user_id)",
	[ST_TOKEN_GET] =
		"SELECT " TOKEN_COLS " FROM tokens t JOIN users u ON u.id = t.user_id"
		" WHERE t.id = $1",
	[ST_TOKEN_LIST] =
		"SELECT " TOKEN_COLS " FROM tokens t JOIN users u ON u.id = t.user_id"
		" WHERE (u.name = $1 OR $2 = 1) AND t.id > $3 ORDER BY t.id LIMIT $4",
	[ST_FLEET_INSERT] = "INSERT INTO fleets(name, created_ms) VALUES($1, $2) RETURNING id",
	[ST_FLEET_GET] = "SELECT " FLEET_COLS " FROM fleets f WHERE f.name = $1",
	[ST_FLEET_GET_ID] = "SELECT " FLEET_COLS " FROM fleets f WHERE f.id = $1",
	[ST_FLEET_LIST] =
		"SELECT " FLEET_COLS " FROM fleets f WHERE f.name > $1 ORDER BY f.name LIMIT $2",
	[ST_VIN_FLEET] =
		"SELECT v.fleet_id, f.name FROM fleet_vehicles v JOIN fleets f ON f.id = v.fleet_id"
		" WHERE v.vin = $1",
	/* A row comes back only when the VIN's fleet changed (or it had none). */
	[ST_VIN_ASSIGN] =
		"INSERT INTO fleet_vehicles AS v(vin, fleet_id, assigned_ms) VALUES($1, $2, $3)"
		" ON CONFLICT(vin) DO UPDATE SET fleet_id = excluded.fleet_id,"
		" assigned_ms = excluded.assigned_ms WHERE v.fleet_id <> excluded.fleet_id"
		" RETURNING vin",
	[ST_VIN_UNASSIGN] = "DELETE FROM fleet_vehicles WHERE vin = $1 RETURNING fleet_id",
	[ST_VINS_OF_FLEETS] =
		"SELECT vin FROM fleet_vehicles WHERE fleet_id IN " FLEET_IN_LIST
		" AND vin > $33 ORDER BY vin LIMIT $34",
	[ST_AUDIT_INSERT] =
		"INSERT INTO audit_log(at_ms, actor, actor_role, action, target, detail, instance)"
		" VALUES($1, $2, $3, $4, $5, $6, $7)",
	/* $1/$3: filter on actor/action when $2/$4 is 1. */
	[ST_AUDIT_LIST] =
		"SELECT " AUDIT_COLS " FROM audit_log"
		" WHERE ($2 = 0 OR actor = $1) AND ($4 = 0 OR action = $3)"
		" AND at_ms >= $5 AND id < $6 ORDER BY id DESC LIMIT $7",
};
/* clang-format on */

struct accounts {
	struct db *db;				  /* borrowed */
	struct db_stmt *st[ST_COUNT];		  /* owned */
	char instance[ACCOUNTS_INSTANCE_MAX + 1]; /* audit rows' instance id */
	uint32_t iterations;			  /* PBKDF2 for new hashes */
	int64_t session_ttl_ms;
};

/* The actor of writes made without a principal (pitstopctl on the host). */
static const char LOCAL_ACTOR[] = "local";

static const char *const role_names[ACCOUNTS_ROLE_COUNT] = {
	[ACCOUNTS_ROLE_OPERATOR] = "operator",
	[ACCOUNTS_ROLE_FLEET_MANAGER] = "fleet_manager",
	[ACCOUNTS_ROLE_SERVICE_ADVISOR] = "service_advisor",
	[ACCOUNTS_ROLE_PARTNER] = "partner",
};

static const char *const kind_names[] = {
	[ACCOUNTS_TOKEN_SESSION] = "session",
	[ACCOUNTS_TOKEN_API] = "api",
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *accounts_role_name(enum accounts_role role)
{
	return (unsigned)role < ACCOUNTS_ROLE_COUNT ? role_names[role] : "?";
}

int accounts_role_parse(const char *s, enum accounts_role *ret)
{
	for (size_t i = 0; s && i < ACCOUNTS_ROLE_COUNT; i++)
		if (strcmp(s, role_names[i]) == 0) {
			*ret = (enum accounts_role)i;
			return 0;
		}
	return -EINVAL;
}

const char *accounts_token_kind_name(enum accounts_token_kind kind)
{
	return (unsigned)kind < N_KINDS ? kind_names[kind] : "?";
}

/* A stored kind name; unknown text reads as session (the shorter-lived). */
static enum accounts_token_kind kind_parse(const char *s)
{
	return s && strcmp(s, "api") == 0 ? ACCOUNTS_TOKEN_API : ACCOUNTS_TOKEN_SESSION;
}

/* A stored role name; unknown text (a newer gateway's role) reads as the
 * role that sees least. */
static enum accounts_role role_from_db(const char *s)
{
	enum accounts_role r;

	return accounts_role_parse(s, &r) == 0 ? r : ACCOUNTS_ROLE_SERVICE_ADVISOR;
}

int accounts_name_valid(const char *s)
{
	size_t n;

	if (!s)
		return 0;
	for (n = 0; s[n]; n++) {
		char c = s[n];

		if (n == ACCOUNTS_NAME_MAX)
			return 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '@'))
			return 0;
	}
	return n > 0;
}

int accounts_password_valid(const char *password)
{
	size_t n;

	if (!password)
		return 0;
	n = strnlen(password, ACCOUNTS_PASSWORD_MAX + 1);
	return n >= ACCOUNTS_PASSWORD_MIN && n <= ACCOUNTS_PASSWORD_MAX;
}

/* 1 for a token label: at most ACCOUNTS_LABEL_MAX printable ASCII chars. */
static int label_valid(const char *s)
{
	size_t n;

	for (n = 0; s[n]; n++)
		if (n == ACCOUNTS_LABEL_MAX || s[n] < 0x20 || s[n] > 0x7e)
			return 0;
	return 1;
}

int accounts_new(struct db *db, struct accounts **ret)
{
	struct accounts *acc = calloc(1, sizeof(*acc));
	int r;

	if (!acc)
		return -ENOMEM;
	acc->db = db;
	acc->iterations = ACCOUNTS_PBKDF2_ITERATIONS;
	acc->session_ttl_ms = ACCOUNTS_SESSION_TTL_MS;
	r = db_prepare_all(db, stmt_sql, ST_COUNT, acc->st);
	if (r < 0) {
		accounts_free(acc);
		return r;
	}
	*ret = acc;
	return 0;
}

void accounts_free(struct accounts *acc)
{
	if (!acc)
		return;
	db_finalize_all(acc->st, ST_COUNT);
	free(acc);
}

void accounts_set_instance(struct accounts *acc, const char *instance_id)
{
	snprintf(acc->instance, sizeof(acc->instance), "%s", instance_id ? instance_id : "");
}

int accounts_set_pbkdf2_iterations(struct accounts *acc, uint32_t iterations)
{
	if (iterations == 0)
		return -EINVAL;
	acc->iterations = iterations;
	return 0;
}

uint32_t accounts_pbkdf2_iterations(const struct accounts *acc)
{
	return acc->iterations;
}

int accounts_set_session_ttl(struct accounts *acc, int64_t ttl_ms)
{
	if (ttl_ms <= 0)
		return -EINVAL;
	acc->session_ttl_ms = ttl_ms;
	return 0;
}

/* ---- Small helpers ------------------------------------------------------ */

/* Fills buf with n random bytes from the kernel. Returns 0 or -EIO. */
static int random_bytes(uint8_t *buf, size_t n)
{
	while (n > 0) {
		ssize_t got = getrandom(buf, n, 0);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -EIO;
		}
		buf += got;
		n -= (size_t)got;
	}
	return 0;
}

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes exactly n bytes from hex text s. Returns 0 or -EINVAL. */
static int hex_decode(const char *s, uint8_t *out, size_t n)
{
	if (!s || strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* Compares n bytes in time that does not depend on where they differ. */
static int equal_ct(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t diff = 0;

	for (size_t i = 0; i < n; i++)
		diff |= a[i] ^ b[i];
	return diff == 0;
}

/* SHA-256 of a token string, as stored: 64 hex chars + NUL. */
static void token_digest(const char *token, char out[2 * 32 + 1])
{
	uint8_t d[32];

	mbedtls_sha256_ret((const unsigned char *)token, strlen(token), d, 0);
	hex_encode(d, sizeof(d), out);
}

/* A new token string: the prefix and base64url (no padding) of 32 random
 * bytes. Returns 0 or -EIO. */
static int token_generate(char out[ACCOUNTS_TOKEN_LEN + 1])
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t raw[33]; /* 32 random bytes and a zero pad: 11 groups of 3 */
	size_t o = strlen(ACCOUNTS_TOKEN_PREFIX);
	int r = random_bytes(raw, 32);

	if (r < 0)
		return r;
	raw[32] = 0;
	memcpy(out, ACCOUNTS_TOKEN_PREFIX, o);
	for (size_t i = 0; i < sizeof(raw); i += 3) {
		uint32_t v = (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];

		out[o++] = b64[v >> 18 & 63];
		out[o++] = b64[v >> 12 & 63];
		out[o++] = b64[v >> 6 & 63];
		if (i + 3 < sizeof(raw))
			out[o++] = b64[v & 63];
	}
	out[o] = '\0';
	mbedtls_platform_zeroize(raw, sizeof(raw));
	return 0;
}

/* 1 if s has the shape of a token (prefix, length, alphabet). */
static int token_well_formed(const char *s)
{
	size_t p = strlen(ACCOUNTS_TOKEN_PREFIX);

	if (!s || strncmp(s, ACCOUNTS_TOKEN_PREFIX, p) != 0 ||
	    strnlen(s, ACCOUNTS_TOKEN_LEN + 1) != ACCOUNTS_TOKEN_LEN)
		return 0;
	for (size_t i = p; i < ACCOUNTS_TOKEN_LEN; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/*
 * Transactions: open one unless the caller has one open (*own says which);
 * tx_end() commits or rolls back what tx_begin() opened and passes r on.
 */
static int tx_begin(struct accounts *acc, int *own)
{
	*own = !db_in_tx(acc->db);
	return *own ? db_begin(acc->db) : 0;
}

static int tx_end(struct accounts *acc, int own, int r)
{
	int c;

	if (!own)
		return r;
	if (r < 0) {
		db_rollback(acc->db);
		return r;
	}
	c = db_commit(acc->db);
	return c < 0 ? c : r;
}

/* tx_end() for a write that made row id: stored in *ret_id (may be NULL)
 * when it committed. */
static int tx_end_id(struct accounts *acc, int own, int r, int64_t id, int64_t *ret_id)
{
	r = tx_end(acc, own, r);
	if (r == 0 && ret_id)
		*ret_id = id;
	return r;
}

/* Steps st for one row and resets it unless a row came: returns 1 (the row
 * is there, the caller resets), -ENOENT (none) or an error class. */
static int step_one(struct db_stmt *st)
{
	int r = db_step(st);

	if (r != 1)
		db_reset(st);
	return r == 0 ? -ENOENT : r;
}

/*
 * The one loop of every listing: steps st (bound, LIMIT limit + 1) and
 * reads each row with read(st, row) into a grown array of elem-byte rows.
 */
static int list_rows(struct db_stmt *st, size_t limit, size_t elem,
		     void (*read)(struct db_stmt *, void *), void **ret_rows, size_t *ret_n,
		     int *ret_more)
{
	char *rows = NULL;
	size_t n = 0, cap = 0;
	int r;

	*ret_more = 0;
	while ((r = db_step(st)) == 1) {
		if (n == limit) {
			*ret_more = 1;
			break;
		}
		r = grow_for((void **)&rows, &cap, n, elem, 16, ACCOUNTS_LIST_MAX);
		if (r < 0)
			break;
		read(st, rows + n * elem);
		n++;
	}
	db_reset(st);
	if (r < 0 || !n) {
		free(rows);
		rows = NULL;
	}
	if (r < 0)
		return r;
	*ret_rows = rows;
	*ret_n = n;
	return 0;
}

/* ---- Audit -------------------------------------------------------------- */

/* Inserts an audit row as actor_name/actor_role; detail borrowed, valid JSON. */
static int audit_insert(struct accounts *acc, const char *actor_name, const char *actor_role,
			const char *action, const char *target, const char *detail, int64_t now_ms)
{
	struct db_stmt *st = acc->st[ST_AUDIT_INSERT];
	char cut[ACCOUNTS_TARGET_MAX + 1];

	snprintf(cut, sizeof(cut), "%s", target ? target : "");
	db_bind_int64(st, 1, now_ms);
	db_bind_text(st, 2, actor_name);
	db_bind_text(st, 3, actor_role);
	db_bind_text(st, 4, action);
	db_bind_text(st, 5, cut);
	db_bind_text(st, 6, detail);
	db_bind_text(st, 7, acc->instance);
	return db_run(st);
}

static int action_valid(const char *action)
{
	size_t n = action ? strnlen(action, ACCOUNTS_ACTION_MAX + 1) : 0;

	return n > 0 && n <= ACCOUNTS_ACTION_MAX;
}

/* The audit row of a write: detail is a JSON object this file built (stolen,
 * NULL on out of memory). */
static int audit_json(struct accounts *acc, const struct accounts_principal *actor,
		      const char *action, const char *target, json_t *detail, int64_t now_ms)
{
	char *text;
	int r;

	if (!detail)
		return -ENOMEM;
	text = json_dumps(detail, JSON_COMPACT);
	json_decref(detail);
	if (!text)
		return -ENOMEM;
	if (strlen(text) > ACCOUNTS_DETAIL_MAX) {
		free(text);
		return -E2BIG;
	}
	r = audit_insert(acc, actor ? actor->name : LOCAL_ACTOR,
			 accounts_role_name(actor ? actor->role : ACCOUNTS_ROLE_OPERATOR), action,
			 target, text, now_ms);
	free(text);
	return r;
}

int accounts_audit(struct accounts *acc, const struct accounts_principal *actor, const char *action,
		   const char *target, const char *detail_json, int64_t now_ms)
{
	json_t *j;

	if (!action_valid(action))
		return -EINVAL;
	if (!detail_json)
		detail_json = "{}";
	if (strnlen(detail_json, ACCOUNTS_DETAIL_MAX + 1) > ACCOUNTS_DETAIL_MAX)
		return -E2BIG;
	j = json_loads(detail_json, JSON_DECODE_ANY, NULL);
	if (!j)
		return -EINVAL;
	json_decref(j);
	return audit_insert(acc, actor ? actor->name : LOCAL_ACTOR,
			    accounts_role_name(actor ? actor->role : ACCOUNTS_ROLE_OPERATOR),
			    action, target, detail_json, now_ms);
}

static void column_audit(struct db_stmt *st, void *p)
{
	struct accounts_audit_row *row = p;

	memset(row, 0, sizeof(*row));
	row->id = db_column_int64(st, 0);
	row->at_ms = db_column_int64(st, 1);
	db_column_copy(st, 2, row->actor, sizeof(row->actor));
	db_column_copy(st, 3, row->actor_role, sizeof(row->actor_role));
	db_column_copy(st, 4, row->action, sizeof(row->action));
	db_column_copy(st, 5, row->target, sizeof(row->target));
	db_column_copy(st, 6, row->detail, sizeof(row->detail));
	db_column_copy(st, 7, row->instance, sizeof(row->instance));
}

int accounts_audit_list(struct accounts *acc, const struct accounts_audit_filter *f, size_t limit,
			struct accounts_audit_row **ret_rows, size_t *ret_n, int *ret_more)
{
	static const struct accounts_audit_filter all = { 0 };
	struct db_stmt *st = acc->st[ST_AUDIT_LIST];

	if (!f)
		f = &all;
	if (limit > ACCOUNTS_LIST_MAX)
		limit = ACCOUNTS_LIST_MAX;
	db_bind_text(st, 1, f->actor ? f->actor : "");
	db_bind_int64(st, 2, f->actor != NULL);
	db_bind_text(st, 3, f->action ? f->action : "");
	db_bind_int64(st, 4, f->action != NULL);
	db_bind_int64(st, 5, f->since_ms);
	db_bind_int64(st, 6, f->before_id > 0 ? f->before_id : INT64_MAX);
	db_bind_int64(st, 7, (int64_t)limit + 1);
	return list_rows(st, limit, sizeof(**ret_rows), column_audit, (void **)ret_rows, ret_n,
			 ret_more);
}

/* ---- Passwords ---------------------------------------------------------- */

/* PBKDF2-HMAC-SHA256 with any salt and key length (the RFC 7914 test
 * vectors use 4-byte salts and 64-byte keys). Returns 0, -EINVAL or -ENOMEM. */
static int pbkdf2_sha256(const char *password, const uint8_t *salt, size_t salt_len,
			 uint32_t iterations, uint8_t *out, size_t out_len)
{
	mbedtls_md_context_t md;
	int r;

	if (!password || iterations == 0)
		return -EINVAL;
	mbedtls_md_init(&md);
	r = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
	if (r == 0)
		r = mbedtls_pkcs5_pbkdf2_hmac(&md, (const unsigned char *)password,
					      strlen(password), salt, salt_len, iterations,
					      (uint32_t)out_len, out);
	mbedtls_md_free(&md);
	/* The only failures left are allocation (setup) and bad input. */
	return r == 0 ? 0 : r == MBEDTLS_ERR_MD_ALLOC_FAILED ? -ENOMEM : -EINVAL;
}

int accounts_password_hash(const char *password, const uint8_t salt[ACCOUNTS_SALT_LEN],
			   uint32_t iterations, uint8_t out[ACCOUNTS_HASH_LEN])
{
	return pbkdf2_sha256(password, salt, ACCOUNTS_SALT_LEN, iterations, out, ACCOUNTS_HASH_LEN);
}

int accounts_password_prepare(const char *password, uint32_t iterations,
			      struct accounts_secret *ret)
{
	struct accounts_secret s;
	int r;

	if (!accounts_password_valid(password) || iterations == 0)
		return -EINVAL;
	s.iterations = iterations;
	r = random_bytes(s.salt, sizeof(s.salt));
	if (r == 0)
		r = accounts_password_hash(password, s.salt, iterations, s.hash);
	if (r == 0)
		*ret = s;
	mbedtls_platform_zeroize(&s, sizeof(s));
	return r;
}

/* Binds secret (or NULLs) to $first..$first+2: salt, iterations, hash. */
static void bind_secret(struct db_stmt *st, int first, const struct accounts_secret *s,
			char salt_hex[2 * ACCOUNTS_SALT_LEN + 1],
			char hash_hex[2 * ACCOUNTS_HASH_LEN + 1])
{
	if (!s) {
		db_bind_null(st, first);
		db_bind_null(st, first + 1);
		db_bind_null(st, first + 2);
		return;
	}
	hex_encode(s->salt, sizeof(s->salt), salt_hex);
	hex_encode(s->hash, sizeof(s->hash), hash_hex);
	db_bind_text(st, first, salt_hex);
	db_bind_int64(st, first + 1, s->iterations);
	db_bind_text(st, first + 2, hash_hex);
}

static int secret_valid(const struct accounts_secret *s)
{
	return !s || s->iterations > 0;
}

/* Reads columns first.. (salt, iterations, hash) into *ret: 1 when the user
 * has a password, 0 when not (or it does not decode). */
static int column_secret(struct db_stmt *st, int first, struct accounts_secret *ret)
{
	int64_t it = db_column_int64(st, first + 1);

	if (db_column_is_null(st, first + 2) || it <= 0 || it > UINT32_MAX)
		return 0;
	ret->iterations = (uint32_t)it;
	return hex_decode(db_column_text(st, first), ret->salt, sizeof(ret->salt)) == 0 &&
	       hex_decode(db_column_text(st, first + 2), ret->hash, sizeof(ret->hash)) == 0;
}

/* ---- Principals and tokens ---------------------------------------------- */

/* Reads user_id's fleets into ids (ACCOUNTS_USER_FLEETS_MAX room). Returns
 * the count or an error class (-E2BIG: more than fit, never stored so). */
static int load_fleets(struct accounts *acc, int64_t user_id, int64_t *ids)
{
	struct db_stmt *st = acc->st[ST_USER_FLEETS];
	int r, n = 0;

	db_bind_int64(st, 1, user_id);
	db_bind_int64(st, 2, ACCOUNTS_USER_FLEETS_MAX + 1);
	while ((r = db_step(st)) == 1) {
		if (n == ACCOUNTS_USER_FLEETS_MAX) {
			r = -E2BIG;
			break;
		}
		ids[n++] = db_column_int64(st, 0);
	}
	db_reset(st);
	return r < 0 ? r : n;
}

static int principal_fill(struct accounts *acc, int64_t user_id, const char *name,
			  enum accounts_role role, int64_t token_id, enum accounts_token_kind kind,
			  struct accounts_principal *ret)
{
	struct accounts_principal p;
	int r;

	memset(&p, 0, sizeof(p));
	p.user_id = user_id;
	snprintf(p.name, sizeof(p.name), "%s", name);
	p.role = role;
	p.token_id = token_id;
	p.token_kind = kind;
	r = load_fleets(acc, user_id, p.fleet_ids);
	if (r < 0)
		return r;
	p.nfleets = (size_t)r;
	*ret = p;
	return 0;
}

/* Inserts a token for user_id; writes the token string. In the caller's
 * transaction; audits "token.create" with target user name. */
static int token_insert(struct accounts *acc, const struct accounts_principal *actor,
			int64_t user_id, const char *name, enum accounts_token_kind kind,
			const char *label, int64_t expires_ms, int64_t now_ms,
			char token_out[ACCOUNTS_TOKEN_LEN + 1], int64_t *ret_id)
{
	struct db_stmt *st = acc->st[ST_TOKEN_INSERT];
	char token[ACCOUNTS_TOKEN_LEN + 1], digest[65];
	int64_t id;
	int r = token_generate(token);

	if (r < 0)
		return r;
	token_digest(token, digest);
	db_bind_int64(st, 1, user_id);
	db_bind_text(st, 2, accounts_token_kind_name(kind));
	db_bind_text(st, 3, digest);
	db_bind_text(st, 4, label);
	db_bind_int64(st, 5, now_ms);
	db_bind_opt_int64(st, 6, expires_ms != 0, expires_ms);
	r = step_one(st);
	if (r < 0)
		goto out;
	id = db_column_int64(st, 0);
	db_reset(st);
	r = audit_json(acc, actor, "token.create", name,
		       json_pack("{sI,ss,ss,sI}", "token_id", (json_int_t)id, "kind",
				 accounts_token_kind_name(kind), "label", label, "expires_ms",
				 (json_int_t)expires_ms),
		       now_ms);
	if (r < 0)
		goto out;
	memcpy(token_out, token, sizeof(token));
	*ret_id = id;
out:
	mbedtls_platform_zeroize(token, sizeof(token));
	return r;
}

int accounts_token_create(struct accounts *acc, const struct accounts_principal *actor,
			  const char *name, enum accounts_token_kind kind, const char *label,
			  int64_t expires_ms, int64_t now_ms,
			  char token_out[ACCOUNTS_TOKEN_LEN + 1], int64_t *ret_id)
{
	struct accounts_user u;
	int64_t id = 0;
	int own, r;

	if (!label)
		label = "";
	if ((unsigned)kind >= N_KINDS || !label_valid(label) || expires_ms < 0 ||
	    (expires_ms != 0 && expires_ms <= now_ms))
		return -EINVAL;
	if (kind == ACCOUNTS_TOKEN_SESSION && expires_ms == 0)
		expires_ms = now_ms + acc->session_ttl_ms;
	r = accounts_user_get(acc, name, &u);
	if (r < 0)
		return r;
	r = tx_begin(acc, &own);
	if (r < 0)
		return r;
	r = token_insert(acc, actor, u.id, u.name, kind, label, expires_ms, now_ms, token_out, &id);
	return tx_end_id(acc, own, r, id, ret_id);
}

int accounts_authenticate(struct accounts *acc, const char *token, int64_t now_ms,
			  struct accounts_principal *ret)
{
	struct db_stmt *st = acc->st[ST_TOKEN_AUTH];
	char digest[65], name[ACCOUNTS_NAME_MAX + 1];
	int64_t token_id, user_id;
	enum accounts_token_kind kind;
	enum accounts_role role;
	int r, stale;

	if (!token_well_formed(token))
		return -EACCES;
	token_digest(token, digest);
	db_bind_text(st, 1, digest);
	db_bind_int64(st, 2, now_ms);
	r = step_one(st);
	if (r < 0)
		return r == -ENOENT ? -EACCES : r;
	token_id = db_column_int64(st, 0);
	kind = kind_parse(db_column_text(st, 1));
	stale = db_column_is_null(st, 2) ||
		db_column_int64(st, 2) <= now_ms - ACCOUNTS_LAST_USED_PERIOD_MS;
	user_id = db_column_int64(st, 3);
	db_column_copy(st, 4, name, sizeof(name));
	role = role_from_db(db_column_text(st, 5));
	db_reset(st);

	r = principal_fill(acc, user_id, name, role, token_id, kind, ret);
	if (r < 0 || !stale)
		return r;
	/* At most once a minute per token; a lost race writes the same minute. */
	st = acc->st[ST_TOKEN_TOUCH];
	db_bind_int64(st, 1, token_id);
	db_bind_int64(st, 2, now_ms);
	db_bind_int64(st, 3, now_ms - ACCOUNTS_LAST_USED_PERIOD_MS);
	r = db_run(st);
	/* The token is good whether or not its last_used could be written (db
	 * logged why; the next minute tries again), unless a transaction of the
	 * caller's saw the failure: PostgreSQL has aborted it. */
	return r < 0 && db_in_tx(acc->db) ? r : 0;
}

int accounts_token_revoke(struct accounts *acc, const struct accounts_principal *actor,
			  int64_t token_id, int64_t now_ms)
{
	struct db_stmt *st = acc->st[ST_TOKEN_REVOKE];
	char user[ACCOUNTS_NAME_MAX + 1], kind[16];
	int own, r = tx_begin(acc, &own);

	if (r < 0)
		return r;
	db_bind_int64(st, 1, token_id);
	db_bind_int64(st, 2, now_ms);
	r = step_one(st);
	if (r == 1) {
		db_column_copy(st, 0, kind, sizeof(kind));
		db_column_copy(st, 1, user, sizeof(user));
		db_reset(st);
		r = audit_json(acc, actor, "token.revoke", user,
			       json_pack("{sI,ss}", "token_id", (json_int_t)token_id, "kind", kind),
			       now_ms);
	}
	return tx_end(acc, own, r);
}

/* Reads a TOKEN_COLS row. */
static void column_token(struct db_stmt *st, struct accounts_token *t)
{
	memset(t, 0, sizeof(*t));
	t->id = db_column_int64(st, 0);
	t->user_id = db_column_int64(st, 1);
	db_column_copy(st, 2, t->user, sizeof(t->user));
	t->kind = kind_parse(db_column_text(st, 3));
	db_column_copy(st, 4, t->label, sizeof(t->label));
	t->created_ms = db_column_int64(st, 5);
	t->expires_ms = db_column_int64(st, 6);
	t->last_used_ms = db_column_int64(st, 7);
	t->revoked_ms = db_column_int64(st, 8);
}

int accounts_token_get(struct accounts *acc, int64_t token_id, struct accounts_token *ret)
{
	struct db_stmt *st = acc->st[ST_TOKEN_GET];
	int r;

	db_bind_int64(st, 1, token_id);
	r = step_one(st);
	if (r < 0)
		return r;
	column_token(st, ret);
	db_reset(st);
	return 0;
}

static void read_token(struct db_stmt *st, void *row)
{
	column_token(st, row);
}

int accounts_token_list(struct accounts *acc, const char *name, int64_t after_id, size_t limit,
			struct accounts_token **ret_rows, size_t *ret_n, int *ret_more)
{
	struct db_stmt *st = acc->st[ST_TOKEN_LIST];

	if (limit > ACCOUNTS_LIST_MAX)
		limit = ACCOUNTS_LIST_MAX;
	db_bind_text(st, 1, name ? name : "");
	db_bind_int64(st, 2, name == NULL);
	db_bind_int64(st, 3, after_id);
	db_bind_int64(st, 4, (int64_t)limit + 1);
	return list_rows(st, limit, sizeof(**ret_rows), read_token, (void **)ret_rows, ret_n,
			 ret_more);
}

/* ---- Logging in --------------------------------------------------------- */

int accounts_login_begin(struct accounts *acc, const char *name, struct accounts_login *ret)
{
	struct db_stmt *st = acc->st[ST_USER_SECRET];
	struct accounts_login lg;
	int r = -ENOENT;

	memset(&lg, 0, sizeof(lg));
	snprintf(lg.name, sizeof(lg.name), "%s", name ? name : "");
	if (accounts_name_valid(name)) {
		db_bind_text(st, 1, name);
		r = step_one(st);
		if (r == 1) {
			if (db_column_int64(st, 1) == 0 && column_secret(st, 2, &lg.secret))
				lg.user_id = db_column_int64(st, 0);
			db_reset(st);
			r = 0;
		}
	}
	if (r < 0 && r != -ENOENT)
		return r;
	if (lg.user_id == 0) {
		/* A salt that does not change between attempts, so nobody can tell a
		 * made-up user from the dummy's salt; the hash to compare is none. */
		static const char pepper[] = "pitstop accounts: no such user ";
		uint8_t d[32];
		mbedtls_sha256_context c;

		mbedtls_sha256_init(&c);
		mbedtls_sha256_starts_ret(&c, 0);
		mbedtls_sha256_update_ret(&c, (const unsigned char *)pepper, sizeof(pepper) - 1);
		mbedtls_sha256_update_ret(&c, (const unsigned char *)lg.name, strlen(lg.name));
		mbedtls_sha256_finish_ret(&c, d);
		mbedtls_sha256_free(&c);
		memcpy(lg.secret.salt, d, sizeof(lg.secret.salt));
		lg.secret.iterations = acc->iterations;
		memset(lg.secret.hash, 0, sizeof(lg.secret.hash));
	}
	*ret = lg;
	return 0;
}

/* Audits a failed login for name, which may be anything a client sent. */
static int login_failed(struct accounts *acc, const char *name, int64_t now_ms)
{
	int own, r = tx_begin(acc, &own);

	if (r < 0)
		return r;
	r = audit_insert(acc, accounts_name_valid(name) ? name : "?", "", "login_failed",
			 accounts_name_valid(name) ? name : "", "{}", now_ms);
	r = tx_end(acc, own, r);
	return r < 0 ? r : -EACCES;
}

int accounts_login_finish(struct accounts *acc, const struct accounts_login *lg,
			  const uint8_t computed[ACCOUNTS_HASH_LEN], int64_t now_ms,
			  char token_out[ACCOUNTS_TOKEN_LEN + 1],
			  struct accounts_principal *ret_principal)
{
	struct db_stmt *st = acc->st[ST_USER_SECRET_ID];
	struct accounts_principal p;
	struct accounts_secret stored;
	char name[ACCOUNTS_NAME_MAX + 1];
	enum accounts_role role;
	int64_t token_id = 0;
	int own, r, ok;

	if (lg->user_id == 0)
		return login_failed(acc, lg->name, now_ms);
	/* Read again: disabled, or a new password, since login_begin() counts. */
	db_bind_int64(st, 1, lg->user_id);
	r = step_one(st);
	if (r == -ENOENT)
		return login_failed(acc, lg->name, now_ms);
	if (r < 0)
		return r;
	ok = db_column_int64(st, 1) == 0 && column_secret(st, 2, &stored);
	db_column_copy(st, 5, name, sizeof(name));
	role = role_from_db(db_column_text(st, 6));
	db_reset(st);
	ok = ok && stored.iterations == lg->secret.iterations &&
	     equal_ct(stored.salt, lg->secret.salt, sizeof(stored.salt)) &&
	     equal_ct(stored.hash, computed, sizeof(stored.hash));
	mbedtls_platform_zeroize(&stored, sizeof(stored));
	if (!ok)
		return login_failed(acc, lg->name, now_ms);

	r = principal_fill(acc, lg->user_id, name, role, 0, ACCOUNTS_TOKEN_SESSION, &p);
	if (r < 0)
		return r;
	r = tx_begin(acc, &own);
	if (r < 0)
		return r;
	r = token_insert(acc, &p, p.user_id, name, ACCOUNTS_TOKEN_SESSION, "login",
			 now_ms + acc->session_ttl_ms, now_ms, token_out, &token_id);
	if (r == 0)
		r = audit_json(acc, &p, "login", name,
			       json_pack("{sI}", "token_id", (json_int_t)token_id), now_ms);
	r = tx_end(acc, own, r);
	if (r < 0)
		return r;
	p.token_id = token_id;
	if (ret_principal)
		*ret_principal = p;
	return 0;
}

int accounts_login(struct accounts *acc, const char *name, const char *password, int64_t now_ms,
		   char token_out[ACCOUNTS_TOKEN_LEN + 1], struct accounts_principal *ret_principal)
{
	struct accounts_login lg;
	uint8_t computed[ACCOUNTS_HASH_LEN];
	int r = accounts_login_begin(acc, name, &lg);

	if (r < 0)
		return r;
	r = accounts_password_hash(password ? password : "", lg.secret.salt, lg.secret.iterations,
				   computed);
	if (r == 0)
		r = accounts_login_finish(acc, &lg, computed, now_ms, token_out, ret_principal);
	mbedtls_platform_zeroize(computed, sizeof(computed));
	mbedtls_platform_zeroize(&lg, sizeof(lg));
	return r;
}

/* ---- Users -------------------------------------------------------------- */

/* Reads a USER_COLS row (fleets not yet). */
static void column_user(struct db_stmt *st, void *row)
{
	struct accounts_user *u = row;

	memset(u, 0, sizeof(*u));
	u->id = db_column_int64(st, 0);
	db_column_copy(st, 1, u->name, sizeof(u->name));
	u->role = role_from_db(db_column_text(st, 2));
	u->disabled = db_column_int64(st, 3) != 0;
	u->has_password = db_column_int64(st, 4) != 0;
	u->created_ms = db_column_int64(st, 5);
}

static int user_load_fleets(struct accounts *acc, struct accounts_user *u)
{
	int r = load_fleets(acc, u->id, u->fleet_ids);

	if (r < 0)
		return r;
	u->nfleets = (size_t)r;
	return 0;
}

int accounts_user_get(struct accounts *acc, const char *name, struct accounts_user *ret)
{
	struct db_stmt *st = acc->st[ST_USER_GET];
	struct accounts_user u;
	int r;

	if (!accounts_name_valid(name))
		return -ENOENT;
	db_bind_text(st, 1, name);
	r = step_one(st);
	if (r < 0)
		return r;
	column_user(st, &u);
	db_reset(st);
	r = user_load_fleets(acc, &u);
	if (r == 0)
		*ret = u;
	return r;
}

int accounts_user_list(struct accounts *acc, const char *after_name, size_t limit,
		       struct accounts_user **ret_rows, size_t *ret_n, int *ret_more)
{
	struct db_stmt *st = acc->st[ST_USER_LIST];
	struct accounts_user *rows = NULL;
	size_t n = 0;
	int r;

	if (limit > ACCOUNTS_LIST_MAX)
		limit = ACCOUNTS_LIST_MAX;
	db_bind_text(st, 1, after_name ? after_name : "");
	db_bind_int64(st, 2, (int64_t)limit + 1);
	r = list_rows(st, limit, sizeof(*rows), column_user, (void **)&rows, &n, ret_more);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = user_load_fleets(acc, &rows[i]);
	if (r < 0) {
		free(rows);
		return r;
	}
	*ret_rows = rows;
	*ret_n = n;
	return 0;
}

/* Looks fleet name up: its id, -ENOENT or an error class. */
static int fleet_id_of(struct accounts *acc, const char *name, int64_t *ret_id)
{
	struct accounts_fleet f;
	int r = accounts_fleet_get(acc, name, &f);

	if (r == 0)
		*ret_id = f.id;
	return r;
}

int accounts_user_add(struct accounts *acc, const struct accounts_principal *actor,
		      const char *name, enum accounts_role role,
		      const struct accounts_secret *secret, const char *const *fleets,
		      size_t nfleets, int64_t now_ms, int64_t *ret_id)
{
	struct db_stmt *st = acc->st[ST_USER_INSERT];
	char salt_hex[2 * ACCOUNTS_SALT_LEN + 1], hash_hex[2 * ACCOUNTS_HASH_LEN + 1];
	json_t *detail, *jf;
	int64_t id = 0;
	int own, r;

	if (!accounts_name_valid(name) || (unsigned)role >= ACCOUNTS_ROLE_COUNT ||
	    !secret_valid(secret))
		return -EINVAL;
	if (role == ACCOUNTS_ROLE_FLEET_MANAGER ? nfleets == 0 : nfleets != 0)
		return -EINVAL;
	if (nfleets > ACCOUNTS_USER_FLEETS_MAX)
		return -E2BIG;
	r = tx_begin(acc, &own);
	if (r < 0)
		return r;
	db_bind_text(st, 1, name);
	db_bind_text(st, 2, accounts_role_name(role));
	bind_secret(st, 3, secret, salt_hex, hash_hex);
	db_bind_int64(st, 6, now_ms);
	r = step_one(st);
	if (r < 0)
		goto out;
	id = db_column_int64(st, 0);
	db_reset(st);
	jf = json_array();
	for (size_t i = 0; r >= 0 && i < nfleets; i++) {
		int64_t fid = 0;

		r = fleet_id_of(acc, fleets[i], &fid);
		if (r < 0)
			break;
		st = acc->st[ST_USER_FLEET_INSERT];
		db_bind_int64(st, 1, id);
		db_bind_int64(st, 2, fid);
		r = db_run(st);
		if (r == 0)
			json_array_append_new(jf, json_string(fleets[i]));
	}
	if (r < 0) {
		json_decref(jf);
		goto out;
	}
	detail = json_pack("{ss,sb,so}", "role", accounts_role_name(role), "password",
			   secret != NULL, "fleets", jf);
	r = audit_json(acc, actor, "user.add", name, detail, now_ms);
out:
	mbedtls_platform_zeroize(hash_hex, sizeof(hash_hex));
	return tx_end_id(acc, own, r, id, ret_id);
}

int accounts_user_set_disabled(struct accounts *acc, const struct accounts_principal *actor,
			       const char *name, int disabled, int64_t now_ms)
{
	struct db_stmt *st = acc->st[ST_USER_SET_DISABLED];
	int own, r;

	if (!accounts_name_valid(name))
		return -ENOENT;
	r = tx_begin(acc, &own);
	if (r < 0)
		return r;
	db_bind_text(st, 1, name);
	db_bind_int64(st, 2, disabled != 0);
	db_bind_int64(st, 3, now_ms);
	r = step_one(st);
	if (r == 1) {
		db_reset(st);
		r = audit_json(acc, actor, disabled ? "user.disable" : "user.enable", name,
			       json_object(), now_ms);
	}
	return tx_end(acc, own, r);
}

int accounts_user_set_password(struct accounts *acc, const struct accounts_principal *actor,
			       const char *name, const struct accounts_secret *secret,
			       int64_t now_ms)
{
	struct db_stmt *st = acc->st[ST_USER_SET_PASSWORD];
	char salt_hex[2 * ACCOUNTS_SALT_LEN + 1], hash_hex[2 * ACCOUNTS_HASH_LEN + 1];
	int64_t id;
	int own, r;

	if (!accounts_name_valid(name))
		return -ENOENT;
	if (!secret_valid(secret))
		return -EINVAL;
	r = tx_begin(acc, &own);
	if (r < 0)
		return r;
	db_bind_text(st, 1, name);
	bind_secret(st, 2, secret, salt_hex, hash_hex);
	db_bind_int64(st, 5, now_ms);
	r = step_one(st);
	if (r < 0)
		goto out;
	id = db_column_int64(st, 0);
	db_reset(st);
	st = acc->st[ST_SESSIONS_REVOKE];
	db_bind_int64(st, 1, id);
	db_bind_int64(st, 2, now_ms);
	r = db_run(st);
	if (r == 0)
		r = audit_json(acc, actor, "user.password", name,
			       json_pack("{sb}", "password", secret != NULL), now_ms);
out:
	mbedtls_platform_zeroize(hash_hex, sizeof(hash_hex));
	return tx_end(acc, own, r);
}

/*
 * Changes fleet_manager name's fleets: add (1) or remove (0) fleet. The
 * user's row is updated first (the lock that orders concurrent changes).
 */
static int user_fleet_change(struct accounts *acc, const struct accounts_principal *actor,
			     const char *name, const char *fleet, int add, int64_t now_ms)
{
	int64_t ids[ACCOUNTS_USER_FLEETS_MAX], user_id = 0, fleet_id = 0;
	struct db_stmt *st = acc->st[ST_USER_TOUCH];
	int own, r, n, has = 0;

	if (!accounts_name_valid(name))
		return -ENOENT;
	r = tx_begin(acc, &own);
	if (r < 0)
		return r;
	db_bind_text(st, 1, name);
	db_bind_int64(st, 2, now_ms);
	r = step_one(st);
	if (r < 0)
		goto out;
	user_id = db_column_int64(st, 0);
	r = role_from_db(db_column_text(st, 1)) == ACCOUNTS_ROLE_FLEET_MANAGER ? 0 : -EINVAL;
	db_reset(st);
	if (r == 0)
		r = fleet_id_of(acc, fleet, &fleet_id);
	if (r < 0)
		goto out;
	r = n = load_fleets(acc, user_id, ids);
	if (r < 0)
		goto out;
	for (int i = 0; i < n; i++)
		has |= ids[i] == fleet_id;
	r = 0;
	if (add == has)
		goto out; /* nothing to change, nothing to audit */
	if (add && n == ACCOUNTS_USER_FLEETS_MAX) {
		r = -E2BIG;
		goto out;
	}
	if (!add && n == 1) {
		r = -EINVAL; /* a fleet_manager keeps at least one fleet */
		goto out;
	}
	st = acc->st[add ? ST_USER_FLEET_INSERT : ST_USER_FLEET_DELETE];
	db_bind_int64(st, 1, user_id);
	db_bind_int64(st, 2, fleet_id);
	r = db_run(st);
	if (r == 0)
		r = audit_json(acc, actor, add ? "user.fleet_add" : "user.fleet_remove", name,
			       json_pack("{ss}", "fleet", fleet), now_ms);
out:
	return tx_end(acc, own, r);
}

int accounts_user_fleet_add(struct accounts *acc, const struct accounts_principal *actor,
			    const char *name, const char *fleet, int64_t now_ms)
{
	return user_fleet_change(acc, actor, name, fleet, 1, now_ms);
}

int accounts_user_fleet_remove(struct accounts *acc, const struct accounts_principal *actor,
			       const char *name, const char *fleet, int64_t now_ms)
{
	return user_fleet_change(acc, actor, name, fleet, 0, now_ms);
}

/* ---- Fleets ------------------------------------------------------------- */

int accounts_fleet_add(struct accounts *acc, const struct accounts_principal *actor,
		       const char *name, int64_t now_ms, int64_t *ret_id)
{
	struct db_stmt *st = acc->st[ST_FLEET_INSERT];
	int64_t id = 0;
	int own, r;

	if (!accounts_name_valid(name))
		return -EINVAL;
	r = tx_begin(acc, &own);
	if (r < 0)
		return r;
	db_bind_text(st, 1, name);
	db_bind_int64(st, 2, now_ms);
	r = step_one(st);
	if (r == 1) {
		id = db_column_int64(st, 0);
		db_reset(st);
		r = audit_json(acc, actor, "fleet.add", name,
			       json_pack("{sI}", "fleet_id", (json_int_t)id), now_ms);
	}
	return tx_end_id(acc, own, r, id, ret_id);
}

static void column_fleet(struct db_stmt *st, void *row)
{
	struct accounts_fleet *f = row;

	memset(f, 0, sizeof(*f));
	f->id = db_column_int64(st, 0);
	db_column_copy(st, 1, f->name, sizeof(f->name));
	f->created_ms = db_column_int64(st, 2);
	f->vehicles = db_column_int64(st, 3);
}

/* Runs a one-row fleet query st (bound) into *ret. */
static int fleet_one(struct db_stmt *st, struct accounts_fleet *ret)
{
	int r = step_one(st);

	if (r < 0)
		return r;
	column_fleet(st, ret);
	db_reset(st);
	return 0;
}

int accounts_fleet_get(struct accounts *acc, const char *name, struct accounts_fleet *ret)
{
	if (!accounts_name_valid(name))
		return -ENOENT;
	db_bind_text(acc->st[ST_FLEET_GET], 1, name);
	return fleet_one(acc->st[ST_FLEET_GET], ret);
}

int accounts_fleet_get_id(struct accounts *acc, int64_t fleet_id, struct accounts_fleet *ret)
{
	db_bind_int64(acc->st[ST_FLEET_GET_ID], 1, fleet_id);
	return fleet_one(acc->st[ST_FLEET_GET_ID], ret);
}

int accounts_fleet_list(struct accounts *acc, const char *after_name, size_t limit,
			struct accounts_fleet **ret_rows, size_t *ret_n, int *ret_more)
{
	struct db_stmt *st = acc->st[ST_FLEET_LIST];

	if (limit > ACCOUNTS_LIST_MAX)
		limit = ACCOUNTS_LIST_MAX;
	db_bind_text(st, 1, after_name ? after_name : "");
	db_bind_int64(st, 2, (int64_t)limit + 1);
	return list_rows(st, limit, sizeof(**ret_rows), column_fleet, (void **)ret_rows, ret_n,
			 ret_more);
}

/* The fleet vin is in: 1 with its id and name (name may be NULL), 0, or an
 * error class. */
static int vin_fleet(struct accounts *acc, const char *vin, int64_t *ret_id,
		     char name[ACCOUNTS_NAME_MAX + 1])
{
	struct db_stmt *st = acc->st[ST_VIN_FLEET];
	int r;

	db_bind_text(st, 1, vin);
	r = step_one(st);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	*ret_id = db_column_int64(st, 0);
	if (name)
		db_column_copy(st, 1, name, ACCOUNTS_NAME_MAX + 1);
	db_reset(st);
	return 1;
}

static int vins_valid(const char *const *vins, size_t n)
{
	if (n == 0)
		return -EINVAL;
	if (n > ACCOUNTS_ASSIGN_MAX)
		return -E2BIG;
	for (size_t i = 0; i < n; i++)
		if (!vin_valid(vins[i]))
			return -EINVAL;
	return 0;
}

int accounts_fleet_assign(struct accounts *acc, const struct accounts_principal *actor,
			  const char *fleet, const char *const *vins, size_t n, int64_t now_ms)
{
	int64_t fleet_id = 0;
	int own, r = vins_valid(vins, n), moved = 0;

	if (r < 0)
		return r;
	r = tx_begin(acc, &own);
	if (r < 0)
		return r;
	r = fleet_id_of(acc, fleet, &fleet_id);
	for (size_t i = 0; r >= 0 && i < n; i++) {
		struct db_stmt *st = acc->st[ST_VIN_ASSIGN];
		char from[ACCOUNTS_NAME_MAX + 1] = "";
		int64_t from_id = 0;

		r = vin_fleet(acc, vins[i], &from_id, from);
		if (r < 0)
			break;
		db_bind_text(st, 1, vins[i]);
		db_bind_int64(st, 2, fleet_id);
		db_bind_int64(st, 3, now_ms);
		r = step_one(st);
		if (r == -ENOENT) {
			r = 0; /* in this fleet already */
			continue;
		}
		if (r < 0)
			break;
		db_reset(st);
		moved++;
		r = audit_json(acc, actor, "fleet.assign", vins[i],
			       from_id ? json_pack("{ss,ss}", "fleet", fleet, "from", from)
				       : json_pack("{ss,sn}", "fleet", fleet, "from"),
			       now_ms);
	}
	r = tx_end(acc, own, r);
	return r < 0 ? r : moved;
}

int accounts_fleet_unassign(struct accounts *acc, const struct accounts_principal *actor,
			    const char *const *vins, size_t n, int64_t now_ms)
{
	int own, r = vins_valid(vins, n), removed = 0;

	if (r < 0)
		return r;
	r = tx_begin(acc, &own);
	if (r < 0)
		return r;
	for (size_t i = 0; r >= 0 && i < n; i++) {
		char from[ACCOUNTS_NAME_MAX + 1] = "";
		int64_t from_id = 0;

		r = vin_fleet(acc, vins[i], &from_id, from);
		if (r <= 0)
			continue; /* in no fleet (r 0), or an error ends the loop */
		db_bind_text(acc->st[ST_VIN_UNASSIGN], 1, vins[i]);
		r = db_run(acc->st[ST_VIN_UNASSIGN]);
		if (r < 0)
			break;
		removed++;
		r = audit_json(acc, actor, "fleet.unassign", vins[i],
			       json_pack("{ss}", "from", from), now_ms);
	}
	r = tx_end(acc, own, r);
	return r < 0 ? r : removed;
}

int accounts_fleet_of_vin(struct accounts *acc, const char *vin, int64_t *ret_fleet_id)
{
	if (!vin_valid(vin))
		return 0;
	return vin_fleet(acc, vin, ret_fleet_id, NULL);
}

static void column_vin(struct db_stmt *st, void *row)
{
	db_column_copy(st, 0, row, ACCOUNTS_VIN_STRIDE);
}

int accounts_vins_of_fleets(struct accounts *acc, const int64_t *fleet_ids, size_t nfleets,
			    const char *after_vin, size_t limit, char **ret_vins, size_t *ret_n,
			    int *ret_more)
{
	struct db_stmt *st = acc->st[ST_VINS_OF_FLEETS];

	if (nfleets == 0 || nfleets > ACCOUNTS_USER_FLEETS_MAX)
		return -EINVAL;
	if (limit > ACCOUNTS_LIST_MAX)
		limit = ACCOUNTS_LIST_MAX;
	for (size_t i = 0; i < ACCOUNTS_USER_FLEETS_MAX; i++)
		db_bind_opt_int64(st, (int)i + 1, i < nfleets, i < nfleets ? fleet_ids[i] : 0);
	db_bind_text(st, 33, after_vin ? after_vin : "");
	db_bind_int64(st, 34, (int64_t)limit + 1);
	return list_rows(st, limit, ACCOUNTS_VIN_STRIDE, column_vin, (void **)ret_vins, ret_n,
			 ret_more);
}

int accounts_may_see_vin(struct accounts *acc, const struct accounts_principal *p, const char *vin)
{
	int64_t fleet_id = 0;
	int r;

	switch (p->role) {
	case ACCOUNTS_ROLE_OPERATOR:
		return 1;
	case ACCOUNTS_ROLE_FLEET_MANAGER:
		r = accounts_fleet_of_vin(acc, vin, &fleet_id);
		if (r <= 0)
			return r;
		for (size_t i = 0; i < p->nfleets && i < ACCOUNTS_USER_FLEETS_MAX; i++)
			if (p->fleet_ids[i] == fleet_id)
				return 1;
		return 0;
	case ACCOUNTS_ROLE_SERVICE_ADVISOR: /* no vehicle data until dealers exist */
	case ACCOUNTS_ROLE_PARTNER:	    /* redeems codes; sees no vehicle */
	case ACCOUNTS_ROLE_COUNT:
		break;
	}
	return 0;
}
