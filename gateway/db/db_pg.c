/*
 * The PostgreSQL driver of the SQL layer (db.h, db_driver.h), through
 * libpq 15. One connection per struct db, used by one thread, in libpq's
 * blocking mode.
 *
 * What it guarantees:
 *   - Every statement is a server-side prepared statement ("s1", "s2", ...,
 *     unique per connection), prepared at db_prepare() so that a bad
 *     statement fails there. The SQL already uses PostgreSQL's $1..$n.
 *   - After a lost connection is re-established (db_begin() outside a
 *     transaction does that, see pg_tx()), every statement is prepared
 *     again before its next execution: the connection's generation counter
 *     is bumped, and a statement whose generation differs re-prepares.
 *   - Error classes come from the SQLSTATE (table errclass below) or from
 *     the connection's state; every failure is logged once through
 *     db_fail() with libpq's text and the start of the SQL. Passwords never
 *     reach a log line or an error message (redact_password()).
 *   - A COMMIT that the server turned into a ROLLBACK (the transaction had
 *     already failed) is a failure (-EIO), not a success.
 *
 * Values: parameters go as text (int64 in decimal, text as given) except
 * blobs, which go binary (no escaping); results come back as text. The
 * server infers each parameter's type from where it is used: in a spot
 * with no type (`SELECT $1`, `$1 = $2`) it is text, so domain SQL writes
 * CAST($1 AS BIGINT) where it needs a number there.
 *
 * Cost: one round trip per statement execution (PQexecPrepared), and one per
 * BEGIN, COMMIT, SAVEPOINT, RELEASE. An ingest transaction of k statements
 * costs k + 2 round trips. Measured on loopback (2 shared cores, a server
 * with fsync=off): ~12 us per SELECT, ~15 us per INSERT, ~21 us for an
 * empty BEGIN + COMMIT, 40-90 us when the machine is busy; SQLite does the
 * same INSERT in ~1 us. Across a network the round trips dominate. Pipeline
 * mode (libpq 14+) could send a batch's statements at once; it is not used
 * yet.
 *
 * Memory: PQexecPrepared() holds the whole result in memory until the
 * statement is reset, so the number of rows is bounded only by the
 * statement's own LIMIT: every query that can return many rows must have
 * one (the domains' list queries do).
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_driver.h"
#include "log.h"

/* How much of a statement's SQL goes into a failure's log line. */
#define SQL_SNIPPET_CHARS 60

/* The OID of bytea (pg_type.h is a server header; the value is fixed). */
#define BYTEA_OID 17

/*
 * The advisory lock key that serialises migrations between gateways on one
 * database: 0x70697473, "pits" in ASCII. Transaction-scoped, so it is
 * released by the migration's COMMIT or ROLLBACK; a second gateway waits in
 * this statement until the first one's migration is done, and then (READ
 * COMMITTED) reads the versions the first one recorded.
 */
#define MIGRATE_LOCK_SQL "SELECT pg_advisory_xact_lock(1885959283)"

struct pg_stmt;

struct pg_db {
	struct db base;		  /* first: db.c's part */
	PGconn *conn;		  /* owned; never NULL while open */
	unsigned long generation; /* bumped by each reconnect; starts at 1 */
	unsigned long next_name;  /* number of the next statement name */
	struct pg_stmt *stmts;	  /* borrowed: this connection's live statements */
};

struct pg_stmt {
	struct db_stmt base;		   /* first: db.c's part */
	struct pg_stmt *prev, *next;	   /* borrowed: links in pg_db.stmts */
	char *sql;			   /* owned copy, to prepare again and name in logs */
	char name[24];			   /* "s<n>", the server-side name */
	unsigned long generation;	   /* connection generation it was prepared in */
	const char *values[DB_MAX_PARAMS]; /* borrowed (bound by the caller) or into ints */
	int lengths[DB_MAX_PARAMS];	   /* byte lengths of binary values */
	int formats[DB_MAX_PARAMS];	   /* 0 text, 1 binary (blobs) */
	char ints[DB_MAX_PARAMS][24];	   /* owned: int64 parameters as decimal text */
	int executed;			   /* sent since the last reset */
	int err;			   /* the execution's error class, or 0 */
	PGresult *res;			   /* owned: the result rows, until reset */
	int nrows;			   /* rows in res (0 for commands) */
	int row;			   /* the current row, -1 before the first */
	unsigned char **decoded;	   /* owned (PQfreemem each): bytea columns of
					      the current row, decoded; NULL or nfields */
	size_t *decoded_len;		   /* owned: their lengths */
};

/* SQLSTATE codes and classes (two characters) as the error classes of db.h. */
static const struct {
	const char *state;
	int err;
} errclass[] = {
	{ "23505", -EEXIST },	/* unique_violation */
	{ "40001", -EBUSY },	/* serialization_failure */
	{ "40P01", -EBUSY },	/* deadlock_detected */
	{ "55P03", -EBUSY },	/* lock_not_available (lock_timeout, NOWAIT) */
	{ "57014", -EBUSY },	/* query_canceled (statement_timeout) */
	{ "57P01", -ENOTCONN }, /* admin_shutdown */
	{ "57P02", -ENOTCONN }, /* crash_shutdown */
	{ "57P03", -ENOTCONN }, /* cannot_connect_now */
	{ "08", -ENOTCONN },	/* connection_exception, the whole class */
	{ "53100", -ENOSPC },	/* disk_full */
	{ "53200", -ENOMEM },	/* out_of_memory */
	{ "25006", -EROFS },	/* read_only_sql_transaction */
};

static struct pg_db *pg_of(struct db *db)
{
	return (struct pg_db *)db;
}

static struct pg_stmt *stmt_of(struct db_stmt *st)
{
	return (struct pg_stmt *)st;
}

/*
 * The error class of a failed call: from the connection's state (a lost
 * connection is -ENOTCONN whatever the result says), else from res's
 * SQLSTATE; a missing result (libpq could not even allocate one) is
 * -ENOMEM.
 */
static int error_class(PGconn *conn, const PGresult *res)
{
	const char *state;

	if (PQstatus(conn) == CONNECTION_BAD)
		return -ENOTCONN;
	if (!res)
		return -ENOMEM;
	state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (!state)
		return -EIO;
	for (size_t i = 0; i < sizeof(errclass) / sizeof(errclass[0]); i++)
		if (strncmp(state, errclass[i].state, strlen(errclass[i].state)) == 0)
			return errclass[i].err;
	return -EIO;
}

/*
 * Copies libpq's (possibly multi-line) message into buf as one line: each
 * newline and the tabs after it become one space; trailing space goes.
 */
static void one_line(char *buf, size_t size, const char *msg)
{
	size_t n = 0;

	assert(size > 0);
	for (const char *p = msg ? msg : ""; *p && n + 1 < size; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t') {
			if (n > 0 && buf[n - 1] != ' ')
				buf[n++] = ' ';
			continue;
		}
		buf[n++] = *p;
	}
	while (n > 0 && buf[n - 1] == ' ')
		n--;
	buf[n] = '\0';
}

/*
 * Logs a failure of op (a string literal: the throttle compares it by
 * pointer) and returns its error class. The line holds the server's
 * primary message and SQLSTATE, or libpq's own text when the server sent
 * none (a lost connection), and the start of the SQL when given. Never the
 * server's DETAIL: for a constraint violation that is the failing row,
 * VINs and positions included.
 */
static int pg_fail(struct pg_db *pg, const PGresult *res, const char *op, const char *sql)
{
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char msg[384], detail[512];
	int err = error_class(pg->conn, res), n;

	if (primary) {
		one_line(msg, sizeof(msg), primary);
	} else {
		const char *text = res ? PQresultErrorMessage(res) : "";

		one_line(msg, sizeof(msg), *text ? text : PQerrorMessage(pg->conn));
	}
	n = snprintf(detail, sizeof(detail), "%s", msg);
	if (state && n >= 0 && (size_t)n < sizeof(detail))
		n += snprintf(detail + n, sizeof(detail) - (size_t)n, " [SQLSTATE %s]", state);
	if (sql && n >= 0 && (size_t)n < sizeof(detail))
		snprintf(detail + n, sizeof(detail) - (size_t)n, " (SQL: %.*s%s)",
			 SQL_SNIPPET_CHARS, sql, strlen(sql) > SQL_SNIPPET_CHARS ? "..." : "");
	return db_fail(&pg->base, err, op, detail);
}

/*
 * Server NOTICEs (CREATE TABLE IF NOT EXISTS on a table that exists, ...)
 * go to the debug log, WARNINGs to the warning log; libpq would print them
 * on stderr.
 */
static void on_notice(void *arg, const PGresult *res)
{
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

	(void)arg;
	if (!msg)
		return;
	if (sev && strcmp(sev, "WARNING") == 0)
		log_warn("db (postgresql): server warning: %s", msg);
	else
		log_debug("db (postgresql): server %s: %s", sev ? sev : "notice", msg);
}

/*
 * The password of a connection URL ("postgresql://user:PASSWORD@host/..."
 * or "...?password=PASSWORD&..."): *ret_p and *ret_n, or n 0 when none.
 */
static void find_password(const char *url, const char **ret_p, size_t *ret_n)
{
	const char *auth = strstr(url, "://"), *end, *colon, *q;

	*ret_p = NULL;
	*ret_n = 0;
	if (auth) {
		auth += 3;
		end = auth + strcspn(auth, "/?");
		q = memchr(auth, '@', (size_t)(end - auth));
		colon = q ? memchr(auth, ':', (size_t)(q - auth)) : NULL;
		if (colon && q > colon + 1) {
			*ret_p = colon + 1;
			*ret_n = (size_t)(q - colon - 1);
			return;
		}
	}
	q = strstr(url, "password=");
	if (q) {
		q += strlen("password=");
		*ret_p = q;
		*ret_n = strcspn(q, "&");
	}
}

/*
 * Replaces each occurrence of url's password in buf (in place) with "***".
 * libpq does not print passwords, but a message about a malformed URL may
 * quote a piece of it.
 */
static void redact_password(char *buf, size_t size, const char *url)
{
	const char *pw;
	size_t n;
	char *hit;

	find_password(url, &pw, &n);
	if (n == 0)
		return;
	while ((hit = memmem(buf, strlen(buf), pw, n)) != NULL) {
		size_t tail = strlen(hit + n) + 1;

		if (n < 3 && (size_t)(hit - buf) + 3 + tail > size) {
			*hit = '\0'; /* no room to widen: cut the line there */
			break;
		}
		memmove(hit + 3, hit + n, tail);
		memcpy(hit, "***", 3);
	}
}

/*
 * The connection parameters for target: the URL's own, plus defaults for
 * what it leaves unset, plus, for a read-only handle, the session setting
 * that refuses writes (in "options", after the URL's own options, so that
 * it survives a PQreset() without another round trip). Unless the URL says
 * otherwise, a connection attempt gives up after 10 s (libpq would wait
 * forever, and the gateway's loop with it) and the session is named
 * "pitstop" in pg_stat_activity.
 *
 * default_transaction_read_only guards pitstopctl against its own
 * mistakes; it is no access control (BEGIN READ WRITE overrides it): give
 * pitstopctl a read-only role for that.
 *
 * Returns 0 with *ret_opts (free with PQconninfoFree()) and keys/values
 * (borrowed from it and from *options, NULL-terminated, at most
 * max entries), or -errno with err set.
 */
static int conn_params(const char *target, enum db_mode mode, PQconninfoOption **ret_opts,
		       const char **keys, const char **values, size_t max, char *options,
		       size_t options_size, char *err, size_t errlen)
{
	static const char read_only[] = "-c default_transaction_read_only=on";
	static const struct {
		const char *key, *value;
	} defaults[] = {
		{ "connect_timeout", "10" },
		{ "fallback_application_name", "pitstop" },
	};
	char *perr = NULL, msg[384];
	PQconninfoOption *opts = PQconninfoParse(target, &perr);
	size_t n = 0;

	if (!opts) {
		one_line(msg, sizeof(msg), perr ? perr : "out of memory");
		redact_password(msg, sizeof(msg), target);
		snprintf(err, errlen, "postgresql: bad connection URL: %s", msg);
		PQfreemem(perr);
		return perr ? -EINVAL : -ENOMEM;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		const char *v = o->val;

		for (size_t i = 0; !v && i < sizeof(defaults) / sizeof(defaults[0]); i++)
			if (strcmp(o->keyword, defaults[i].key) == 0)
				v = defaults[i].value;
		if (strcmp(o->keyword, "options") == 0 && mode == DB_READ_ONLY) {
			int len = snprintf(options, options_size, "%s%s%s", v ? v : "",
					   v ? " " : "", read_only);

			if (len < 0 || (size_t)len >= options_size) {
				snprintf(err, errlen, "postgresql: the URL's options are too long");
				PQconninfoFree(opts);
				return -EINVAL;
			}
			v = options;
		}
		if (!v)
			continue;
		if (n + 1 >= max) {
			snprintf(err, errlen, "postgresql: too many connection parameters");
			PQconninfoFree(opts);
			return -EINVAL;
		}
		keys[n] = o->keyword;
		values[n++] = v;
	}
	keys[n] = values[n] = NULL;
	*ret_opts = opts;
	return 0;
}

/* Connects to target, a libpq URI, in blocking mode. */
static int pg_open(const char *target, enum db_mode mode, struct db **ret_db, char *err,
		   size_t errlen)
{
	const char *keys[64], *values[64];
	PQconninfoOption *opts = NULL;
	struct pg_db *pg = NULL;
	char options[1024], msg[384];
	int r;

	r = conn_params(target, mode, &opts, keys, values, sizeof(keys) / sizeof(keys[0]), options,
			sizeof(options), err, errlen);
	if (r < 0)
		return r;
	pg = calloc(1, sizeof(*pg));
	if (!pg) {
		snprintf(err, errlen, "postgresql: out of memory");
		r = -ENOMEM;
		goto out;
	}
	pg->conn = PQconnectdbParams(keys, values, 0);
	if (!pg->conn) {
		snprintf(err, errlen, "postgresql: out of memory");
		r = -ENOMEM;
		goto out;
	}
	if (PQstatus(pg->conn) != CONNECTION_OK) {
		one_line(msg, sizeof(msg), PQerrorMessage(pg->conn));
		redact_password(msg, sizeof(msg), target);
		snprintf(err, errlen, "postgresql: %s", msg);
		r = -ENOTCONN;
		goto out;
	}
	PQsetNoticeReceiver(pg->conn, on_notice, pg);
	pg->generation = 1;
	pg->next_name = 1;
	*ret_db = &pg->base;
out:
	PQconninfoFree(opts);
	if (r < 0 && pg) {
		PQfinish(pg->conn);
		free(pg);
	}
	return r;
}

/* The caller has finalized every statement (db.h); db.c rolled back. */
static void pg_close(struct db *db)
{
	struct pg_db *pg = pg_of(db);

	assert(!pg->stmts);
	PQfinish(pg->conn);
	free(pg);
}

/* Prepares st on the current connection. Returns 0 or the error class (logged). */
static int stmt_prepare(struct pg_db *pg, struct pg_stmt *st)
{
	PGresult *res;
	int r = 0;

	/* No parameter types: the server infers them (see the top of the file). */
	res = PQprepare(pg->conn, st->name, st->sql, 0, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = pg_fail(pg, res, "prepare", st->sql);
	else
		st->generation = pg->generation;
	PQclear(res);
	return r;
}

/*
 * Prepares sql on the server at once, as "s<n>", so that a statement the
 * server refuses fails here (a syntax error is -EIO). Returns 0 and
 * *ret_st, or the error class (logged).
 */
static int pg_prepare(struct db *db, const char *sql, int nparams, struct db_stmt **ret_st)
{
	struct pg_db *pg = pg_of(db);
	struct pg_stmt *st = calloc(1, sizeof(*st));
	int r;

	if (!st)
		return db_fail(db, -ENOMEM, "prepare", "out of memory");
	st->sql = strdup(sql);
	if (!st->sql) {
		r = db_fail(db, -ENOMEM, "prepare", "out of memory");
		goto fail;
	}
	snprintf(st->name, sizeof(st->name), "s%lu", pg->next_name++);
	st->row = -1;
	r = stmt_prepare(pg, st);
	if (r < 0)
		goto fail;
	st->base.db = db;
	st->base.nparams = nparams;
	st->next = pg->stmts;
	if (st->next)
		st->next->prev = st;
	pg->stmts = st;
	*ret_st = &st->base;
	return 0;
fail:
	free(st->sql);
	free(st);
	return r;
}

/* Frees the decoded blobs of the current row. */
static void free_decoded(struct pg_stmt *st)
{
	if (!st->decoded)
		return;
	for (int i = 0; i < PQnfields(st->res); i++) {
		PQfreemem(st->decoded[i]);
		st->decoded[i] = NULL;
	}
}

/* Drops the result and the decoded blobs, clears the bindings. */
static void pg_reset(struct db_stmt *base)
{
	struct pg_stmt *st = stmt_of(base);

	free_decoded(st);
	free(st->decoded);
	free(st->decoded_len);
	st->decoded = NULL;
	st->decoded_len = NULL;
	PQclear(st->res);
	st->res = NULL;
	st->executed = 0;
	st->err = 0;
	st->nrows = 0;
	st->row = -1;
	memset(st->values, 0, sizeof(st->values));
	memset(st->lengths, 0, sizeof(st->lengths));
	memset(st->formats, 0, sizeof(st->formats));
}

/*
 * Frees st and, when the server still has it and the session can take a
 * command, deallocates it there (one round trip; statements are prepared
 * once and finalized at shutdown, so this is rare). Inside a failed
 * transaction DEALLOCATE would be refused: the server keeps the statement
 * until the connection closes.
 */
static void pg_finalize(struct db_stmt *base)
{
	struct pg_stmt *st = stmt_of(base);
	struct pg_db *pg = pg_of(base->db);
	PGTransactionStatusType ts = PQtransactionStatus(pg->conn);
	char sql[40];

	pg_reset(base);
	if (st->generation == pg->generation && (ts == PQTRANS_IDLE || ts == PQTRANS_INTRANS)) {
		PGresult *res;

		snprintf(sql, sizeof(sql), "DEALLOCATE %s", st->name);
		res = PQexec(pg->conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			pg_fail(pg, res, "deallocate", st->sql);
		PQclear(res);
	}
	if (st->prev)
		st->prev->next = st->next;
	else
		pg->stmts = st->next;
	if (st->next)
		st->next->prev = st->prev;
	free(st->sql);
	free(st);
}

/*
 * Bindings keep pointers until the reset: text is the caller's string (db.h
 * says it is borrowed until then), int64 goes into st->ints. Return 0.
 */
static int pg_bind_int64(struct db_stmt *base, int i, int64_t v)
{
	struct pg_stmt *st = stmt_of(base);

	snprintf(st->ints[i - 1], sizeof(st->ints[i - 1]), "%" PRId64, v);
	st->values[i - 1] = st->ints[i - 1];
	st->formats[i - 1] = 0;
	return 0;
}

static int pg_bind_null(struct db_stmt *base, int i)
{
	struct pg_stmt *st = stmt_of(base);

	st->values[i - 1] = NULL;
	st->formats[i - 1] = 0;
	return 0;
}

static int pg_bind_text(struct db_stmt *base, int i, const char *s)
{
	struct pg_stmt *st = stmt_of(base);

	st->values[i - 1] = s;
	st->formats[i - 1] = 0;
	return 0;
}

/* -EINVAL for a blob over INT_MAX bytes (libpq's lengths are int). */
static int pg_bind_blob(struct db_stmt *base, int i, const void *p, size_t n)
{
	struct pg_stmt *st = stmt_of(base);

	if (n > INT_MAX)
		return -EINVAL;
	/* A NULL pointer would bind SQL NULL: an empty blob needs some address. */
	st->values[i - 1] = p ? p : "";
	st->lengths[i - 1] = (int)n;
	st->formats[i - 1] = 1;
	return 0;
}

/* Runs st (prepared again first after a reconnect). Returns 0 or the error class. */
static int stmt_execute(struct pg_db *pg, struct pg_stmt *st)
{
	ExecStatusType status;
	int r;

	if (st->generation != pg->generation) {
		r = stmt_prepare(pg, st);
		if (r < 0)
			return r;
	}
	st->res = PQexecPrepared(pg->conn, st->name, st->base.nparams, st->values, st->lengths,
				 st->formats, 0);
	status = PQresultStatus(st->res);
	if (status == PGRES_TUPLES_OK) {
		st->nrows = PQntuples(st->res);
		return 0;
	}
	if (status == PGRES_COMMAND_OK)
		return 0;
	r = pg_fail(pg, st->res, "statement", st->sql);
	PQclear(st->res);
	st->res = NULL;
	return r;
}

/*
 * Executes on the first call after a reset, then walks the rows: 1 while
 * one is current, 0 past the last (and for commands). A failure repeats
 * until the reset.
 */
static int pg_step(struct db_stmt *base)
{
	struct pg_stmt *st = stmt_of(base);

	if (!st->executed) {
		st->executed = 1;
		st->err = stmt_execute(pg_of(base->db), st);
	}
	if (st->err < 0)
		return st->err;
	free_decoded(st);
	if (st->row + 1 < st->nrows) {
		st->row++;
		return 1;
	}
	st->row = st->nrows;
	return 0;
}

/* 1 when col of the current row exists, for the accessors. */
static int have_column(const struct pg_stmt *st, int col)
{
	return st->res && st->row >= 0 && st->row < st->nrows && col >= 0 &&
	       col < PQnfields(st->res);
}

/* A column of no current row, or out of range, reads as NULL. */
static int pg_column_is_null(struct db_stmt *base, int col)
{
	struct pg_stmt *st = stmt_of(base);

	return !have_column(st, col) || PQgetisnull(st->res, st->row, col);
}

/* Integers from their text; booleans 't'/'f' as 1/0; anything else 0. */
static int64_t pg_column_int64(struct db_stmt *base, int col)
{
	struct pg_stmt *st = stmt_of(base);
	const char *s;

	if (pg_column_is_null(base, col))
		return 0;
	s = PQgetvalue(st->res, st->row, col);
	if (s[0] == 't' && !s[1])
		return 1;
	return strtoll(s, NULL, 10);
}

/* Valid until the next step or reset (it points into st->res). */
static const char *pg_column_text(struct db_stmt *base, int col)
{
	struct pg_stmt *st = stmt_of(base);

	if (pg_column_is_null(base, col))
		return NULL;
	return PQgetvalue(st->res, st->row, col);
}

/*
 * A bytea column decoded from its text form ("\x<hex>"), kept until the
 * next step or reset; any other column as its text bytes. NULL (len 0) for
 * a NULL, or when decoding runs out of memory (logged).
 */
static const void *pg_column_blob(struct db_stmt *base, int col, size_t *ret_len)
{
	struct pg_stmt *st = stmt_of(base);
	int nf;

	*ret_len = 0;
	if (pg_column_is_null(base, col))
		return NULL;
	if (PQftype(st->res, col) != BYTEA_OID) {
		*ret_len = (size_t)PQgetlength(st->res, st->row, col);
		return PQgetvalue(st->res, st->row, col);
	}
	nf = PQnfields(st->res);
	if (!st->decoded) {
		st->decoded = calloc((size_t)nf, sizeof(*st->decoded));
		st->decoded_len = calloc((size_t)nf, sizeof(*st->decoded_len));
		if (!st->decoded || !st->decoded_len) {
			free(st->decoded);
			free(st->decoded_len);
			st->decoded = NULL;
			st->decoded_len = NULL;
			db_fail(base->db, -ENOMEM, "read blob", "out of memory");
			return NULL;
		}
	}
	if (!st->decoded[col]) {
		const unsigned char *text =
			(const unsigned char *)PQgetvalue(st->res, st->row, col);

		st->decoded[col] = PQunescapeBytea(text, &st->decoded_len[col]);
		if (!st->decoded[col]) {
			db_fail(base->db, -ENOMEM, "read blob", "out of memory");
			return NULL;
		}
	}
	*ret_len = st->decoded_len[col];
	return st->decoded[col];
}

/* Runs a script of one or more statements (PQexec allows several). */
static int pg_exec(struct db *db, const char *sql)
{
	struct pg_db *pg = pg_of(db);
	PGresult *res = PQexec(pg->conn, sql);
	ExecStatusType status = PQresultStatus(res);
	int r = 0;

	if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
		r = pg_fail(pg, res, "statement", sql);
	PQclear(res);
	return r;
}

/*
 * Re-establishes a lost connection (PQreset: the same parameters) and
 * marks every statement for preparing again. The session settings and
 * the notice receiver survive the reset. Returns 0 or -ENOTCONN (logged).
 */
static int reconnect(struct pg_db *pg)
{
	char msg[384];

	PQreset(pg->conn);
	if (PQstatus(pg->conn) != CONNECTION_OK) {
		one_line(msg, sizeof(msg), PQerrorMessage(pg->conn));
		return db_fail(&pg->base, -ENOTCONN, "reconnect", msg);
	}
	pg->generation++;
	log_warn("db (postgresql): reconnected to PostgreSQL");
	return 0;
}

static const char *const tx_sql[DB_TX_OP_COUNT] = {
	[DB_TX_BEGIN] = "BEGIN",
	[DB_TX_COMMIT] = "COMMIT",
	[DB_TX_ROLLBACK] = "ROLLBACK",
	[DB_TX_SAVEPOINT] = "SAVEPOINT db_sp",
	[DB_TX_RELEASE] = "RELEASE SAVEPOINT db_sp",
	[DB_TX_ROLLBACK_TO] = "ROLLBACK TO SAVEPOINT db_sp",
};

/* Sends one transaction-control statement. Returns 0 or the error class (logged). */
static int tx_send(struct pg_db *pg, enum db_tx_op op)
{
	PGresult *res = PQexec(pg->conn, tx_sql[op]);
	int r = 0;

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		r = pg_fail(pg, res, db_tx_op_name(op), NULL);
	else if (op == DB_TX_COMMIT && strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
		/* The transaction had failed: the server rolled it back. */
		r = db_fail(&pg->base, -EIO, db_tx_op_name(op),
			    "the transaction had failed; COMMIT rolled it back");
	PQclear(res);
	return r;
}

/* The server still has a transaction open (possibly failed, until ROLLBACK [TO]). */
static int pg_tx_alive(struct db *db)
{
	switch (PQtransactionStatus(pg_of(db)->conn)) {
	case PQTRANS_INTRANS:
	case PQTRANS_INERROR:
	case PQTRANS_ACTIVE:
		return 1;
	default:
		return 0;
	}
}

/*
 * db.c's transaction control. BEGIN (outside any transaction, so nothing
 * can be lost) also heals the connection: when it is known to be lost,
 * reconnect first; when BEGIN itself finds it lost (the server restarted
 * while we were idle), reconnect and send BEGIN once more. ROLLBACK of a
 * transaction the server no longer has is a no-op.
 */
static int pg_tx(struct db *db, enum db_tx_op op)
{
	struct pg_db *pg = pg_of(db);
	int r, reconnected = 0;

	if (op == DB_TX_ROLLBACK && !pg_tx_alive(db))
		return 0;
	if (op == DB_TX_BEGIN && PQstatus(pg->conn) == CONNECTION_BAD) {
		r = reconnect(pg);
		if (r < 0)
			return r;
		reconnected = 1;
	}
	r = tx_send(pg, op);
	if (r == -ENOTCONN && op == DB_TX_BEGIN && !reconnected) {
		r = reconnect(pg);
		if (r == 0)
			r = tx_send(pg, op);
	}
	return r;
}

const struct db_driver db_pg_driver = {
	.name = "postgresql",
	.backend = DB_POSTGRESQL,
	.open = pg_open,
	.close = pg_close,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.bind_int64 = pg_bind_int64,
	.bind_null = pg_bind_null,
	.bind_text = pg_bind_text,
	.bind_blob = pg_bind_blob,
	.step = pg_step,
	.reset = pg_reset,
	.column_is_null = pg_column_is_null,
	.column_int64 = pg_column_int64,
	.column_text = pg_column_text,
	.column_blob = pg_column_blob,
	.exec = pg_exec,
	.tx = pg_tx,
	.tx_alive = pg_tx_alive,
	.migrate_lock_sql = MIGRATE_LOCK_SQL,
};
