/*
 * db: the gateway's one SQL layer. Every domain writes its SQL once, with
 * $1..$n placeholders, and runs it through these calls on either backend:
 * SQLite (the embedded default: "sqlite:PATH" or a plain path) or PostgreSQL
 * through libpq ("postgresql://..." or "postgres://..."). The layer hides
 * the drivers, never the SQL: a statement both backends cannot run is a
 * statement the domain must not write (docs/architecture.md lists the
 * dialect we use: INSERT ... ON CONFLICT ... DO UPDATE/NOTHING, RETURNING,
 * CASE, COALESCE; no backend-only functions).
 *
 * Errors. Every call returns 0 (or a count, or 1 for "a row") on success and
 * one of these negative errno classes on failure, which callers can act on:
 *   -EEXIST     unique or primary-key violation
 *   -EBUSY      busy, lock timeout, deadlock or serialization failure: undo
 *               the transaction and run it again
 *   -ENOTCONN   the connection to the server was lost (PostgreSQL); the next
 *               db_begin() outside a transaction reconnects
 *   -ENOSPC     disk full
 *   -EROFS      the database is read-only (or the handle is)
 *   -ENOMEM     out of memory
 *   -EIO        anything else
 * The driver logs each failure once, at this boundary, with the operation
 * and the backend's own text (sqlite3_errmsg, PQerrorMessage); repeats of the
 * same failure are summarised by one throttled logger. -EEXIST is never
 * logged: callers use it as an answer.
 *
 * Threads: a struct db and its statements belong to one thread (the loop).
 *
 * Bound values: text and blobs are borrowed until db_reset() (or the next
 * bind of that parameter); column values returned by db_column_*() are valid
 * until the next db_step() or db_reset() of that statement.
 */
#ifndef PITSTOP_DB_H
#define PITSTOP_DB_H

#include <stddef.h>
#include <stdint.h>

/* Placeholders per statement ($1..$DB_MAX_PARAMS). */
#define DB_MAX_PARAMS 1024

enum db_backend {
	DB_SQLITE = 0,
	DB_POSTGRESQL = 1,
	DB_BACKEND_COUNT,
};

enum db_mode {
	DB_READ_WRITE, /* the gateway: runs migrations */
	DB_READ_ONLY,  /* pitstopctl: never writes; the schema must be current */
};

struct db;
struct db_stmt;

/*
 * Opens the database named by url: "sqlite:PATH" or a plain PATH (SQLite),
 * "postgresql://..." or "postgres://..." (PostgreSQL, a libpq connection
 * URI). Nothing about the schema is checked here: see db_migrate(). On
 * failure writes a one-line reason into err (naming the file or server and
 * the backend's text) and returns -errno.
 */
int db_open(const char *url, enum db_mode mode, struct db **ret_db, char *err, size_t errlen);

/* Rolls back an open transaction, finalizes nothing (statements are the
 * caller's: finalize them first) and closes. Accepts NULL. */
void db_close(struct db *db);

enum db_backend db_backend(const struct db *db);

/*
 * Writes url into buf (size bytes) fit for a log line or an error: a
 * password in the userinfo or a password= parameter reads "***".
 */
void db_url_redact(const char *url, char *buf, size_t size);

/* "sqlite" or "postgresql". */
const char *db_backend_name(enum db_backend b);

/* 1 for a read-only handle. */
int db_read_only(const struct db *db);

/*
 * Prepares sql, whose parameters are written $1..$n (each may appear any
 * number of times, in any order). Returns 0 and *ret_st (free with
 * db_finalize()), or -errno (-EINVAL for a bad placeholder).
 */
int db_prepare(struct db *db, const char *sql, struct db_stmt **ret_st);

/* Frees a statement. Accepts NULL. */
void db_finalize(struct db_stmt *st);

/*
 * Prepares sql[0..n) into st[0..n) (a domain's statement table). On failure
 * finalizes what it prepared, leaves st all NULL and returns the error.
 */
int db_prepare_all(struct db *db, const char *const *sql, size_t n, struct db_stmt **st);

/* Finalizes st[0..n) and sets them NULL. */
void db_finalize_all(struct db_stmt **st, size_t n);

/* Binds parameter $i (1-based). Return 0 or -EINVAL (no such parameter). */
int db_bind_int64(struct db_stmt *st, int i, int64_t v);
int db_bind_null(struct db_stmt *st, int i);
int db_bind_text(struct db_stmt *st, int i, const char *s); /* s borrowed; NULL binds NULL */
int db_bind_blob(struct db_stmt *st, int i, const void *p, size_t n); /* p borrowed */

/* Binds v when present, else NULL. */
int db_bind_opt_int64(struct db_stmt *st, int i, int present, int64_t v);

/*
 * Runs the statement (on the first call after a reset) and moves to the next
 * result row. Returns 1 when a row is available, 0 when there are no (more)
 * rows, or a negative error class.
 */
int db_step(struct db_stmt *st);

/* db_step() until done, then db_reset(): for statements without results.
 * Returns 0 or a negative error class. */
int db_run(struct db_stmt *st);

/* The current row's column col (0-based). A NULL reads as 0, NULL, len 0. */
int db_column_is_null(struct db_stmt *st, int col);
int64_t db_column_int64(struct db_stmt *st, int col);
const char *db_column_text(struct db_stmt *st, int col);
const void *db_column_blob(struct db_stmt *st, int col, size_t *ret_len);

/* Copies text column col into buf ("" for NULL), truncating to size. */
void db_column_copy(struct db_stmt *st, int col, char *buf, size_t size);

/* Makes the statement ready to bind and run again; bindings are cleared. */
void db_reset(struct db_stmt *st);

/*
 * Runs one or more ;-separated statements without parameters or results
 * (schema scripts). Returns 0 or a negative error class.
 */
int db_exec(struct db *db, const char *sql);

/*
 * Multi-row statements: one round trip for many rows, written once for any
 * row count. A struct db_rows describes "head ROW, ROW, ... tail" where each
 * ROW is "($first, ..., $first+ncols-1)" numbered on from row to row (e.g.
 * head "INSERT INTO t(a, b) VALUES", ncols 2, tail "ON CONFLICT DO NOTHING").
 * db_rows_get() hands out the prepared statement for the largest supported
 * row count (1, 2, 4, ... DB_ROWS_MAX) not above `want`, preparing it on
 * first use; the caller binds that many rows, runs it, and goes on with the
 * rest. Parameters $1..$first-1 before the rows are the caller's too.
 */
#define DB_ROWS_MAX 64
#define DB_ROWS_CLASSES 7 /* 1, 2, 4, ..., 64 */

struct db_rows {
	const char *head;		     /* borrowed, static */
	const char *tail;		     /* borrowed, static; "" for none */
	int first;			     /* number of the first row placeholder */
	int ncols;			     /* placeholders per row */
	struct db_stmt *st[DB_ROWS_CLASSES]; /* owned, prepared on demand */
};

/*
 * The statement of rs for min(want, DB_ROWS_MAX) rows rounded down to a
 * power of two, in *ret_st, and that row count in *ret_rows. want >= 1.
 * Returns 0 or an error class.
 */
int db_rows_get(struct db *db, struct db_rows *rs, size_t want, struct db_stmt **ret_st,
		size_t *ret_rows);

/* rs's SQL text for exactly nrows rows (malloc'ed, caller frees; NULL: no memory). */
char *db_rows_sql(const struct db_rows *rs, int nrows);

/* Finalizes what db_rows_get() prepared. */
void db_rows_free(struct db_rows *rs);

/*
 * Transactions. One at a time: db_begin() while one is open is -EBUSY.
 * SQLite takes the write lock at begin (BEGIN IMMEDIATE); PostgreSQL runs
 * READ COMMITTED, so domain SQL that must be right under concurrency is
 * written as single atomic statements (upserts with RETURNING), never as
 * read-then-write. db_rollback() is harmless (0) when none is open; after a
 * commit fails the transaction is rolled back before returning.
 */
int db_begin(struct db *db);
int db_commit(struct db *db);
int db_rollback(struct db *db);
int db_in_tx(const struct db *db);

/*
 * One savepoint level inside a transaction: mark, then release or undo to
 * the mark (which also releases it). -EINVAL outside a transaction. If the
 * backend aborted the whole transaction, db_rollback_to() returns -EIO and
 * the transaction is gone.
 */
int db_savepoint(struct db *db);
int db_release(struct db *db);
int db_rollback_to(struct db *db);

/*
 * Fault injection, for tests: after `skip` more successful calls of kind op,
 * the next `count` calls fail with err (a negative error class) without
 * reaching the backend, as if the backend had failed. count 0 disarms.
 */
enum db_fault_op {
	DB_FAULT_PREPARE,
	DB_FAULT_STEP, /* every db_step() / db_run() / db_exec() */
	DB_FAULT_BEGIN,
	DB_FAULT_COMMIT,
	DB_FAULT_SAVEPOINT, /* db_savepoint() and db_release() */
	DB_FAULT_OP_COUNT,
};
void db_fault_inject(struct db *db, enum db_fault_op op, unsigned skip, unsigned count, int err);

/*
 * One schema migration of one domain: version numbers start at 1 and
 * increase by one per domain; sql holds the script per backend
 * (sql[DB_SQLITE], sql[DB_POSTGRESQL]), usually embedded from
 * gateway/<domain>/schema/<backend>/NNN_<name>.sql.
 */
struct db_migration {
	const char *domain;
	int version;
	const char *name;
	const char *sql[DB_BACKEND_COUNT];
};

/*
 * Brings every domain in list (n entries, each domain's versions in order)
 * up to date, in one transaction that also holds a lock against other
 * gateways migrating the same database at the same time; applied versions
 * are recorded in schema_migrations(domain, version, name, applied_ms). A
 * read-only handle migrates nothing and fails if anything is missing. A
 * database with a version this program does not know (a newer gateway
 * migrated it) is refused. On failure err says which migration and why.
 */
int db_migrate(struct db *db, const struct db_migration *list, size_t n, char *err, size_t errlen);

#endif
