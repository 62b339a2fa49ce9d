/*
 * The backend-independent half of the SQL layer (see db.h): URL dispatch,
 * placeholder checks, transaction and savepoint state, fault injection, the
 * throttled failure logger and the migration runner. The drivers do the
 * rest (db_driver.h).
 */
#include "db.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_driver.h"
#include "log.h"

#define FAIL_LOG_PERIOD_S 10

static int has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

int db_open(const char *url, enum db_mode mode, struct db **ret_db, char *err, size_t errlen)
{
	const struct db_driver *drv = &db_sqlite_driver;
	const char *target = url;
	struct db *db = NULL;
	int r;

	if (!url || !*url) {
		snprintf(err, errlen, "no database given");
		return -EINVAL;
	}
	if (has_prefix(url, "postgresql://") || has_prefix(url, "postgres://")) {
		drv = &db_pg_driver;
	} else if (has_prefix(url, "sqlite:")) {
		target = url + strlen("sqlite:");
	} else if (strstr(url, "://")) {
		snprintf(err, errlen,
			 "unknown database URL scheme in '%s' (use a SQLite path, sqlite:PATH or "
			 "postgresql://...)",
			 url);
		return -ENOTSUP;
	}
	if (!*target) {
		snprintf(err, errlen, "empty SQLite path");
		return -EINVAL;
	}
	r = drv->open(target, mode, &db, err, errlen);
	if (r < 0)
		return r;
	db->drv = drv;
	db->mode = mode;
	*ret_db = db;
	return 0;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	if (db->in_tx)
		db->drv->tx(db, DB_TX_ROLLBACK);
	db->drv->close(db);
}

enum db_backend db_backend(const struct db *db)
{
	return db->drv->backend;
}

void db_url_redact(const char *url, char *buf, size_t size)
{
	const char *scheme = strstr(url, "://"), *at, *colon, *pw;
	size_t n;

	snprintf(buf, size, "%s", url);
	if (!scheme)
		return;
	at = strchr(scheme + 3, '@');
	colon = strchr(scheme + 3, ':');
	if (at && colon && colon < at && !memchr(scheme + 3, '/', (size_t)(at - scheme - 3))) {
		n = (size_t)(colon + 1 - url);
		snprintf(buf, size, "%.*s***%s", (int)n, url, at);
	}
	pw = strstr(buf, "password=");
	if (pw) {
		const char *end = strchr(pw, '&');
		char tail[512];

		snprintf(tail, sizeof(tail), "%s", end ? end : "");
		snprintf(buf + (pw - buf), size - (size_t)(pw - buf), "password=***%s", tail);
	}
}

const char *db_backend_name(enum db_backend b)
{
	return b == DB_POSTGRESQL ? "postgresql" : "sqlite";
}

int db_read_only(const struct db *db)
{
	return db->mode == DB_READ_ONLY;
}

int db_fail(struct db *db, int err, const char *op, const char *detail)
{
	struct db_faillog *fl = &db->faillog;
	time_t now = time(NULL);

	if (err == -EEXIST)
		return err;
	if (err == fl->last_err && op == fl->last_op && now - fl->last_logged < FAIL_LOG_PERIOD_S) {
		fl->suppressed++;
		return err;
	}
	if (fl->suppressed && (err != fl->last_err || op != fl->last_op)) {
		/* The count belongs to the previous failure, not to this one. */
		log_error("db (%s): %s failed %lu more times (%s), not logged", db->drv->name,
			  fl->last_op, fl->suppressed, strerror(-fl->last_err));
		fl->suppressed = 0;
	}
	if (fl->suppressed)
		log_error("db (%s): %s failed: %s; %lu similar failures not logged", db->drv->name,
			  op, detail && *detail ? detail : strerror(-err), fl->suppressed);
	else
		log_error("db (%s): %s failed: %s", db->drv->name, op,
			  detail && *detail ? detail : strerror(-err));
	fl->last_err = err;
	fl->last_op = op;
	fl->last_logged = now;
	fl->suppressed = 0;
	return err;
}

/* 0, or the injected error when a fault of kind op is due now. */
static int fault(struct db *db, enum db_fault_op op)
{
	if (!db->fault[op].count)
		return 0;
	if (db->fault[op].skip) {
		db->fault[op].skip--;
		return 0;
	}
	db->fault[op].count--;
	return db->fault[op].err;
}

void db_fault_inject(struct db *db, enum db_fault_op op, unsigned skip, unsigned count, int err)
{
	assert(op < DB_FAULT_OP_COUNT && err < 0);
	db->fault[op].skip = skip;
	db->fault[op].count = count;
	db->fault[op].err = err;
}

/*
 * The highest $N in sql, skipping string literals and quoted identifiers;
 * -EINVAL for $0, a number over DB_MAX_PARAMS or a '$' without digits.
 */
static int count_params(const char *sql)
{
	int max = 0;

	for (const char *p = sql; *p; p++) {
		if (*p == '\'' || *p == '"') {
			char q = *p;

			for (p++; *p && *p != q; p++)
				;
			if (!*p)
				break;
			continue;
		}
		if (*p != '$')
			continue;
		if (!isdigit((unsigned char)p[1]))
			return -EINVAL;
		int n = 0;

		for (p++; isdigit((unsigned char)*p); p++) {
			n = n * 10 + (*p - '0');
			if (n > DB_MAX_PARAMS)
				return -EINVAL;
		}
		p--;
		if (n == 0)
			return -EINVAL;
		if (n > max)
			max = n;
	}
	return max;
}

int db_prepare(struct db *db, const char *sql, struct db_stmt **ret_st)
{
	int n = count_params(sql), r;

	if (n < 0) {
		log_error("db: bad placeholder in SQL: %.80s", sql);
		return n;
	}
	r = fault(db, DB_FAULT_PREPARE);
	if (r < 0)
		return db_fail(db, r, "prepare (injected)", NULL);
	r = db->drv->prepare(db, sql, n, ret_st);
	if (r < 0)
		return r;
	(*ret_st)->db = db;
	(*ret_st)->nparams = n;
	return 0;
}

void db_finalize(struct db_stmt *st)
{
	if (st)
		st->db->drv->finalize(st);
}

int db_prepare_all(struct db *db, const char *const *sql, size_t n, struct db_stmt **st)
{
	for (size_t i = 0; i < n; i++) {
		int r = db_prepare(db, sql[i], &st[i]);

		if (r < 0) {
			st[i] = NULL;
			db_finalize_all(st, i);
			return r;
		}
	}
	return 0;
}

void db_finalize_all(struct db_stmt **st, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		db_finalize(st[i]);
		st[i] = NULL;
	}
}

/* -EINVAL unless $i exists in st. */
static int check_param(const struct db_stmt *st, int i)
{
	return i >= 1 && i <= st->nparams ? 0 : -EINVAL;
}

int db_bind_int64(struct db_stmt *st, int i, int64_t v)
{
	int r = check_param(st, i);

	return r < 0 ? r : st->db->drv->bind_int64(st, i, v);
}

int db_bind_null(struct db_stmt *st, int i)
{
	int r = check_param(st, i);

	return r < 0 ? r : st->db->drv->bind_null(st, i);
}

int db_bind_text(struct db_stmt *st, int i, const char *s)
{
	int r = check_param(st, i);

	if (r < 0)
		return r;
	return s ? st->db->drv->bind_text(st, i, s) : st->db->drv->bind_null(st, i);
}

int db_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
	int r = check_param(st, i);

	return r < 0 ? r : st->db->drv->bind_blob(st, i, p, n);
}

int db_bind_opt_int64(struct db_stmt *st, int i, int present, int64_t v)
{
	return present ? db_bind_int64(st, i, v) : db_bind_null(st, i);
}

int db_step(struct db_stmt *st)
{
	int r = fault(st->db, DB_FAULT_STEP);

	if (r < 0)
		return db_fail(st->db, r, "statement (injected)", NULL);
	return st->db->drv->step(st);
}

int db_run(struct db_stmt *st)
{
	int r;

	while ((r = db_step(st)) == 1)
		;
	db_reset(st);
	return r;
}

int db_column_is_null(struct db_stmt *st, int col)
{
	return st->db->drv->column_is_null(st, col);
}

int64_t db_column_int64(struct db_stmt *st, int col)
{
	return st->db->drv->column_int64(st, col);
}

const char *db_column_text(struct db_stmt *st, int col)
{
	return st->db->drv->column_text(st, col);
}

const void *db_column_blob(struct db_stmt *st, int col, size_t *ret_len)
{
	return st->db->drv->column_blob(st, col, ret_len);
}

void db_column_copy(struct db_stmt *st, int col, char *buf, size_t size)
{
	const char *t = db_column_text(st, col);

	snprintf(buf, size, "%s", t ? t : "");
}

void db_reset(struct db_stmt *st)
{
	st->db->drv->reset(st);
}

int db_exec(struct db *db, const char *sql)
{
	int r = fault(db, DB_FAULT_STEP);

	if (r < 0)
		return db_fail(db, r, "statement (injected)", NULL);
	return db->drv->exec(db, sql);
}

const char *db_tx_op_name(enum db_tx_op op)
{
	/* Literals: db_fail() throttles by the name's address. */
	static const char *const names[DB_TX_OP_COUNT] = {
		[DB_TX_BEGIN] = "begin",
		[DB_TX_COMMIT] = "commit",
		[DB_TX_ROLLBACK] = "rollback",
		[DB_TX_SAVEPOINT] = "savepoint",
		[DB_TX_RELEASE] = "release savepoint",
		[DB_TX_ROLLBACK_TO] = "rollback to savepoint",
	};

	return (unsigned)op < DB_TX_OP_COUNT ? names[op] : "transaction";
}

int db_begin(struct db *db)
{
	int r;

	if (db->in_tx)
		return -EBUSY;
	r = fault(db, DB_FAULT_BEGIN);
	if (r < 0)
		return db_fail(db, r, "begin (injected)", NULL);
	r = db->drv->tx(db, DB_TX_BEGIN);
	if (r == 0)
		db->in_tx = 1;
	return r;
}

int db_commit(struct db *db)
{
	int r;

	if (!db->in_tx)
		return -EINVAL;
	r = fault(db, DB_FAULT_COMMIT);
	if (r < 0)
		db_fail(db, r, "commit (injected)", NULL);
	else
		r = db->drv->tx(db, DB_TX_COMMIT);
	if (r < 0 && db->drv->tx_alive(db))
		db->drv->tx(db, DB_TX_ROLLBACK);
	db->in_tx = 0;
	db->in_sp = 0;
	return r;
}

int db_rollback(struct db *db)
{
	int r = 0;

	if (!db->in_tx)
		return 0;
	if (db->drv->tx_alive(db))
		r = db->drv->tx(db, DB_TX_ROLLBACK);
	db->in_tx = 0;
	db->in_sp = 0;
	return r;
}

int db_in_tx(const struct db *db)
{
	return db->in_tx;
}

int db_savepoint(struct db *db)
{
	int r;

	if (!db->in_tx || db->in_sp)
		return -EINVAL;
	r = fault(db, DB_FAULT_SAVEPOINT);
	if (r < 0)
		return db_fail(db, r, "savepoint (injected)", NULL);
	r = db->drv->tx(db, DB_TX_SAVEPOINT);
	if (r == 0)
		db->in_sp = 1;
	return r;
}

int db_release(struct db *db)
{
	int r;

	if (!db->in_sp)
		return -EINVAL;
	db->in_sp = 0;
	r = fault(db, DB_FAULT_SAVEPOINT);
	if (r < 0)
		return db_fail(db, r, "release savepoint (injected)", NULL);
	return db->drv->tx(db, DB_TX_RELEASE);
}

int db_rollback_to(struct db *db)
{
	int r;

	if (!db->in_sp)
		return -EINVAL;
	db->in_sp = 0;
	if (!db->drv->tx_alive(db)) {
		/* The backend rolled the whole transaction back on its own. */
		db->in_tx = 0;
		return -EIO;
	}
	r = db->drv->tx(db, DB_TX_ROLLBACK_TO);
	if (r == 0)
		r = db->drv->tx(db, DB_TX_RELEASE);
	return r;
}

/* ---- multi-row statements ---- */

char *db_rows_sql(const struct db_rows *rs, int nrows)
{
	size_t cap = strlen(rs->head) + strlen(rs->tail) + 16 +
		     (size_t)nrows * ((size_t)rs->ncols * 7 + 4);
	char *sql = malloc(cap), *p;
	int k = rs->first;

	if (!sql)
		return NULL;
	p = sql + snprintf(sql, cap, "%s ", rs->head);
	for (int r = 0; r < nrows; r++) {
		p += snprintf(p, cap - (size_t)(p - sql), "%s(", r ? ", " : "");
		for (int c = 0; c < rs->ncols; c++)
			p += snprintf(p, cap - (size_t)(p - sql), "%s$%d", c ? ", " : "", k++);
		p += snprintf(p, cap - (size_t)(p - sql), ")");
	}
	snprintf(p, cap - (size_t)(p - sql), " %s", rs->tail);
	return sql;
}

int db_rows_get(struct db *db, struct db_rows *rs, size_t want, struct db_stmt **ret_st,
		size_t *ret_rows)
{
	int cls = 0, r;
	size_t rows = 1;
	char *sql;

	assert(want >= 1 && rs->ncols >= 1);
	while (cls + 1 < DB_ROWS_CLASSES && rows * 2 <= want &&
	       rs->first - 1 + (int)(rows * 2) * rs->ncols <= DB_MAX_PARAMS) {
		rows *= 2;
		cls++;
	}
	if (!rs->st[cls]) {
		sql = db_rows_sql(rs, (int)rows);
		if (!sql)
			return -ENOMEM;
		r = db_prepare(db, sql, &rs->st[cls]);
		free(sql);
		if (r < 0)
			return r;
	}
	*ret_st = rs->st[cls];
	*ret_rows = rows;
	return 0;
}

void db_rows_free(struct db_rows *rs)
{
	for (int i = 0; i < DB_ROWS_CLASSES; i++) {
		db_finalize(rs->st[i]);
		rs->st[i] = NULL;
	}
}

/* ---- migrations ---- */

static const char migrations_table[] =
	"CREATE TABLE IF NOT EXISTS schema_migrations ("
	" domain TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL,"
	" applied_ms BIGINT NOT NULL, PRIMARY KEY (domain, version))";

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The index in list of (domain, version), or -1. */
static long find_migration(const struct db_migration *list, size_t n, const char *domain,
			   int version)
{
	for (size_t i = 0; i < n; i++)
		if (list[i].version == version && strcmp(list[i].domain, domain) == 0)
			return (long)i;
	return -1;
}

/*
 * Marks in applied[] the entries of list the database has, and fails when it
 * has one list does not know. Returns 0 or -errno with err set.
 */
static int read_applied(struct db *db, const struct db_migration *list, size_t n,
			unsigned char *applied, char *err, size_t errlen)
{
	struct db_stmt *st = NULL;
	int r;

	r = db_prepare(db, "SELECT domain, version, name FROM schema_migrations", &st);
	if (r < 0) {
		snprintf(err, errlen, "cannot read schema_migrations: %s", strerror(-r));
		return r;
	}
	while ((r = db_step(st)) == 1) {
		const char *domain = db_column_text(st, 0);
		int version = (int)db_column_int64(st, 1);
		long i = find_migration(list, n, domain ? domain : "", version);

		if (i < 0) {
			snprintf(err, errlen,
				 "the database has migration %s %d (%s), which this program does "
				 "not know: it was written by a newer gateway",
				 domain ? domain : "?", version, db_column_text(st, 2));
			r = -EPROTO;
			break;
		}
		applied[i] = 1;
	}
	if (r < 0 && !*err)
		snprintf(err, errlen, "cannot read schema_migrations: %s", strerror(-r));
	db_finalize(st);
	return r < 0 ? r : 0;
}

/* Whether schema_migrations exists, without creating it. */
static int have_migrations_table(struct db *db)
{
	static const char *const probe[DB_BACKEND_COUNT] = {
		[DB_SQLITE] = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
			      "'schema_migrations'",
		[DB_POSTGRESQL] = "SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = "
				  "'schema_migrations' AND schemaname = current_schema()",
	};
	struct db_stmt *st = NULL;
	int r = db_prepare(db, probe[db_backend(db)], &st);

	if (r == 0)
		r = db_step(st);
	db_finalize(st);
	return r;
}

int db_migrate(struct db *db, const struct db_migration *list, size_t n, char *err, size_t errlen)
{
	enum db_backend b = db_backend(db);
	unsigned char *applied = calloc(n ? n : 1, 1);
	struct db_stmt *ins = NULL;
	int r;

	*err = '\0';
	if (!applied) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (db_read_only(db)) {
		r = have_migrations_table(db);
		if (r == 0) {
			snprintf(err, errlen,
				 "not a gateway database (no schema_migrations table): start the "
				 "gateway on it once");
			r = -EPROTO;
		}
		if (r == 1)
			r = read_applied(db, list, n, applied, err, errlen);
		for (size_t i = 0; r == 0 && i < n; i++)
			if (!applied[i]) {
				snprintf(err, errlen,
					 "the database lacks migration %s %d (%s): start the new "
					 "gateway on it once to migrate",
					 list[i].domain, list[i].version, list[i].name);
				r = -EPROTO;
			}
		if (r < 0 && !*err)
			snprintf(err, errlen, "cannot read the schema: %s", strerror(-r));
		free(applied);
		return r;
	}

	r = db_begin(db);
	if (r < 0) {
		snprintf(err, errlen, "cannot begin the migration: %s", strerror(-r));
		goto out;
	}
	if (db->drv->migrate_lock_sql) {
		r = db_exec(db, db->drv->migrate_lock_sql);
		if (r < 0) {
			snprintf(err, errlen, "cannot lock for the migration: %s", strerror(-r));
			goto out;
		}
	}
	r = db_exec(db, migrations_table);
	if (r < 0) {
		snprintf(err, errlen, "cannot create schema_migrations: %s", strerror(-r));
		goto out;
	}
	r = read_applied(db, list, n, applied, err, errlen);
	if (r < 0)
		goto out;
	r = db_prepare(db,
		       "INSERT INTO schema_migrations(domain, version, name, applied_ms)"
		       " VALUES($1, $2, $3, $4)",
		       &ins);
	if (r < 0) {
		snprintf(err, errlen, "cannot record migrations: %s", strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const struct db_migration *m = &list[i];

		if (applied[i])
			continue;
		if (m->version > 1 && find_migration(list, n, m->domain, m->version - 1) < 0) {
			snprintf(err, errlen, "migration %s %d has no predecessor", m->domain,
				 m->version);
			r = -EINVAL;
			goto out;
		}
		r = db_exec(db, m->sql[b]);
		if (r == 0) {
			db_bind_text(ins, 1, m->domain);
			db_bind_int64(ins, 2, m->version);
			db_bind_text(ins, 3, m->name);
			db_bind_int64(ins, 4, wall_ms());
			r = db_run(ins);
		}
		if (r < 0) {
			snprintf(err, errlen, "migration %s %d (%s) failed: %s", m->domain,
				 m->version, m->name, strerror(-r));
			goto out;
		}
		log_info("db: applied migration %s %d (%s)", m->domain, m->version, m->name);
	}
	db_finalize(ins);
	ins = NULL;
	r = db_commit(db);
	if (r < 0)
		snprintf(err, errlen, "cannot commit the migration: %s", strerror(-r));
out:
	db_finalize(ins);
	if (r < 0)
		db_rollback(db);
	free(applied);
	return r;
}
