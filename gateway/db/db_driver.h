/*
 * What a db backend implements (db_sqlite.c, db_pg.c) and the parts of
 * struct db and struct db_stmt that db.c shares with them. Only db.c and the
 * drivers include this header; domains see db.h alone.
 *
 * db.c does what is the same for every backend: URL dispatch, transaction
 * state, fault injection, the migration runner and argument checks. A driver
 * translates one call to its library and its error codes to the classes in
 * db.h, logging each failure through db_fail() (throttled, with the
 * backend's text).
 */
#ifndef PITSTOP_DB_DRIVER_H
#define PITSTOP_DB_DRIVER_H

#include <time.h>

#include "db.h"

/* Transaction control statements a driver runs for db.c. */
enum db_tx_op {
	DB_TX_BEGIN,
	DB_TX_COMMIT,
	DB_TX_ROLLBACK,
	DB_TX_SAVEPOINT,
	DB_TX_RELEASE,
	DB_TX_ROLLBACK_TO,
	DB_TX_OP_COUNT,
};

/* "begin", "commit", ...: the operation names failures are logged under. */
const char *db_tx_op_name(enum db_tx_op op);

struct db_driver {
	const char *name; /* "sqlite", "postgresql" */
	enum db_backend backend;

	/* Opens target (the URL with any "sqlite:" prefix removed). */
	int (*open)(const char *target, enum db_mode mode, struct db **ret_db, char *err,
		    size_t errlen);
	void (*close)(struct db *db);

	/* nparams: the highest $N in sql (db.c has checked 1..DB_MAX_PARAMS). */
	int (*prepare)(struct db *db, const char *sql, int nparams, struct db_stmt **ret_st);
	void (*finalize)(struct db_stmt *st);

	/* i is 1..nparams (checked by db.c). */
	int (*bind_int64)(struct db_stmt *st, int i, int64_t v);
	int (*bind_null)(struct db_stmt *st, int i);
	int (*bind_text)(struct db_stmt *st, int i, const char *s);
	int (*bind_blob)(struct db_stmt *st, int i, const void *p, size_t n);

	int (*step)(struct db_stmt *st);
	void (*reset)(struct db_stmt *st);

	int (*column_is_null)(struct db_stmt *st, int col);
	int64_t (*column_int64)(struct db_stmt *st, int col);
	const char *(*column_text)(struct db_stmt *st, int col);
	const void *(*column_blob)(struct db_stmt *st, int col, size_t *ret_len);

	int (*exec)(struct db *db, const char *sql);
	int (*tx)(struct db *db, enum db_tx_op op);

	/*
	 * 1 when the backend still has the transaction open (after a failed
	 * statement SQLite may have rolled back on its own, PostgreSQL keeps
	 * it open but aborted until ROLLBACK [TO]).
	 */
	int (*tx_alive)(struct db *db);

	/*
	 * SQL run inside the migration transaction, before anything is read,
	 * that keeps other gateways from migrating at the same time (NULL: the
	 * begin already locks, as SQLite's BEGIN IMMEDIATE does).
	 */
	const char *migrate_lock_sql;
};

/* The throttled failure logger's state (one per connection). */
struct db_faillog {
	int last_err;
	const char *last_op; /* borrowed string literal */
	time_t last_logged;
	unsigned long suppressed;
};

/* Every driver's struct db starts with this. */
struct db {
	const struct db_driver *drv; /* borrowed, static */
	enum db_mode mode;
	int in_tx; /* a db_begin() is open */
	int in_sp; /* a savepoint is open */
	struct {
		unsigned skip, count;
		int err;
	} fault[DB_FAULT_OP_COUNT];
	struct db_faillog faillog;
};

/* Every driver's struct db_stmt starts with this. */
struct db_stmt {
	struct db *db; /* borrowed */
	int nparams;
};

/*
 * Logs a failed operation once (the same op and class repeating within 10 s
 * is counted, and the count printed with the next line that gets out) and
 * returns err. detail is the backend's text; -EEXIST is never logged.
 */
int db_fail(struct db *db, int err, const char *op, const char *detail);

extern const struct db_driver db_sqlite_driver;
extern const struct db_driver db_pg_driver;

#endif
