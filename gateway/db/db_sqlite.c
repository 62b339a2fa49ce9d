/*
 * The SQLite driver of the SQL layer (db.h): the embedded default. One
 * connection, owned by the loop thread.
 *
 * Settings of a read-write handle, and why:
 *   journal_mode=WAL     readers (pitstopctl) never block the writer and the
 *                        writer never blocks them; commits append to the WAL.
 *   synchronous=FULL     one fsync per commit, so a commit survives a power
 *                        loss of the gateway host too. It has to: after the
 *                        commit a receipt tells the car to delete the batch.
 *   temp_store=MEMORY    statement journals (a savepoint inside a large
 *                        transaction) stay in memory instead of spilling to
 *                        /var/tmp: that alone almost doubled ingest.
 *   busy_timeout=5000    a reader's checkpoint or a second writer makes us
 *                        wait up to 5 s instead of failing at once.
 *   wal_autocheckpoint=WAL_CHECKPOINT_FRAMES
 *                        the commit that takes the WAL past 10,000 frames
 *                        (40 MB) copies it into the database, not every
 *                        1,000th as by default: under load most pages in
 *                        the WAL are the same few written again (the
 *                        counters, the vehicles' latest rows), so a tenth as
 *                        many checkpoints take little longer each (3 -> 5 ms
 *                        at 1,000 batches/s), and a car's offer waits for one
 *                        ten times less often (docs/performance.md).
 * Files are created 0600 whatever the umask: they hold every car's
 * positions.
 *
 * Placeholders: SQLite reads "$1" as a *named* parameter and numbers named
 * parameters by first appearance, so "$2 ... $1" would bind the wrong way
 * round by index. prepare maps each $N by name (sqlite3_bind_parameter_index)
 * once, and binds go through that map.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_driver.h"

#define WAL_CHECKPOINT_FRAMES "10000"

struct sq_db {
	struct db base; /* must stay first */
	sqlite3 *h;	/* owned */
};

struct sq_stmt {
	struct db_stmt base;	    /* must stay first */
	sqlite3_stmt *st;	    /* owned */
	int map[DB_MAX_PARAMS + 1]; /* $N -> SQLite parameter index (0: unused) */
	int done;		    /* the last step returned SQLITE_DONE */
};

static struct sq_db *to_db(struct db *db)
{
	return (struct sq_db *)db;
}

static struct sq_stmt *to_st(struct db_stmt *st)
{
	return (struct sq_stmt *)st;
}

/* The error class of a SQLite result code (db.h). */
static int classify(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return -EEXIST;
		return -EIO;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_NOMEM:
		return -ENOMEM;
	}
	return -EIO;
}

/* Logs rc for op with SQLite's own text and returns its class. */
static int sq_fail(struct sq_db *q, int rc, const char *op)
{
	char detail[512];

	snprintf(detail, sizeof(detail), "%s (sqlite %d)", sqlite3_errmsg(q->h), rc);
	return db_fail(&q->base, classify(rc), op, detail);
}

/* Creates path 0600 if it does not exist yet, so SQLite never makes it 0644. */
static int precreate(const char *path, char *err, size_t errlen)
{
	int fd;

	if (strcmp(path, ":memory:") == 0)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	close(fd);
	return 0;
}

static int sq_open(const char *path, enum db_mode mode, struct db **ret_db, char *err,
		   size_t errlen)
{
	struct sq_db *q = NULL;
	int flags = SQLITE_OPEN_NOMUTEX;
	struct stat sb;
	int rc, r = 0;

	if (mode == DB_READ_ONLY) {
		if (stat(path, &sb) < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		flags |= SQLITE_OPEN_READONLY;
	} else {
		r = precreate(path, err, errlen);
		if (r < 0)
			goto out;
		flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	rc = sqlite3_open_v2(path, &q->h, flags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
			 q->h ? sqlite3_errmsg(q->h) : sqlite3_errstr(rc));
		r = classify(rc);
		goto out;
	}
	sqlite3_extended_result_codes(q->h, 1);
	sqlite3_busy_timeout(q->h, 5000);
	if (mode == DB_READ_WRITE) {
		/* journal_mode answers with a row; exec() ignores it. */
		rc = sqlite3_exec(q->h,
				  "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				  " PRAGMA temp_store=MEMORY; PRAGMA foreign_keys=ON;"
				  " PRAGMA wal_autocheckpoint=" WAL_CHECKPOINT_FRAMES,
				  NULL, NULL, NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(q->h));
			r = classify(rc);
			goto out;
		}
		/* The WAL and shared-memory files SQLite just made. */
		for (const char *sfx = "-wal"; sfx;
		     sfx = strcmp(sfx, "-wal") == 0 ? "-shm" : NULL) {
			char side[4096];

			snprintf(side, sizeof(side), "%s%s", path, sfx);
			chmod(side, 0600);
		}
	}
	*ret_db = &q->base;
	q = NULL;
out:
	if (q) {
		sqlite3_close(q->h);
		free(q);
	}
	return r;
}

static void sq_close(struct db *db)
{
	struct sq_db *q = to_db(db);

	sqlite3_close(q->h);
	free(q);
}

static int sq_prepare(struct db *db, const char *sql, int nparams, struct db_stmt **ret_st)
{
	struct sq_db *q = to_db(db);
	struct sq_stmt *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	rc = sqlite3_prepare_v3(q->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st, NULL);
	if (rc != SQLITE_OK) {
		free(s);
		return sq_fail(q, rc, "prepare");
	}
	for (int i = 1; i <= nparams; i++) {
		char name[16];

		snprintf(name, sizeof(name), "$%d", i);
		s->map[i] = sqlite3_bind_parameter_index(s->st, name);
	}
	*ret_st = &s->base;
	return 0;
}

static void sq_finalize(struct db_stmt *st)
{
	struct sq_stmt *s = to_st(st);

	sqlite3_finalize(s->st);
	free(s);
}

/* The SQLite index of $i; 0 when $i does not occur in the SQL. */
static int idx(struct db_stmt *st, int i)
{
	return to_st(st)->map[i];
}

/* Binding results: SQLITE_RANGE only for index 0, which we skip. */
static int bind_rc(struct db_stmt *st, int rc)
{
	return rc == SQLITE_OK ? 0 : sq_fail(to_db(st->db), rc, "bind");
}

static int sq_bind_int64(struct db_stmt *st, int i, int64_t v)
{
	return idx(st, i) ? bind_rc(st, sqlite3_bind_int64(to_st(st)->st, idx(st, i), v)) : 0;
}

static int sq_bind_null(struct db_stmt *st, int i)
{
	return idx(st, i) ? bind_rc(st, sqlite3_bind_null(to_st(st)->st, idx(st, i))) : 0;
}

static int sq_bind_text(struct db_stmt *st, int i, const char *s)
{
	if (!idx(st, i))
		return 0;
	return bind_rc(st, sqlite3_bind_text(to_st(st)->st, idx(st, i), s, -1, SQLITE_STATIC));
}

static int sq_bind_blob(struct db_stmt *st, int i, const void *p, size_t n)
{
	if (!idx(st, i))
		return 0;
	if (n > 0x7fffffff)
		return -EMSGSIZE;
	/* A zero-length blob must not bind as NULL: give SQLite a non-NULL pointer. */
	return bind_rc(st, sqlite3_bind_blob(to_st(st)->st, idx(st, i), n ? p : "", (int)n,
					     SQLITE_STATIC));
}

static int sq_step(struct db_stmt *st)
{
	struct sq_stmt *s = to_st(st);
	int rc;

	if (s->done)
		return 0;
	rc = sqlite3_step(s->st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		s->done = 1;
		return 0;
	}
	return sq_fail(to_db(st->db), rc, "statement");
}

static void sq_reset(struct db_stmt *st)
{
	struct sq_stmt *s = to_st(st);

	sqlite3_reset(s->st);
	sqlite3_clear_bindings(s->st);
	s->done = 0;
}

static int sq_column_is_null(struct db_stmt *st, int col)
{
	return sqlite3_column_type(to_st(st)->st, col) == SQLITE_NULL;
}

static int64_t sq_column_int64(struct db_stmt *st, int col)
{
	return sqlite3_column_int64(to_st(st)->st, col);
}

static const char *sq_column_text(struct db_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(to_st(st)->st, col);
}

static const void *sq_column_blob(struct db_stmt *st, int col, size_t *ret_len)
{
	sqlite3_stmt *s = to_st(st)->st;
	const void *p = sqlite3_column_blob(s, col);

	*ret_len = p ? (size_t)sqlite3_column_bytes(s, col) : 0;
	return p;
}

static int sq_exec(struct db *db, const char *sql)
{
	struct sq_db *q = to_db(db);
	int rc = sqlite3_exec(q->h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_fail(q, rc, "statement");
}

static int sq_tx(struct db *db, enum db_tx_op op)
{
	/* Short, parsed in microseconds: not worth prepared statements. */
	static const char *const sql[DB_TX_OP_COUNT] = {
		[DB_TX_BEGIN] = "BEGIN IMMEDIATE", [DB_TX_COMMIT] = "COMMIT",
		[DB_TX_ROLLBACK] = "ROLLBACK",	   [DB_TX_SAVEPOINT] = "SAVEPOINT sp",
		[DB_TX_RELEASE] = "RELEASE sp",	   [DB_TX_ROLLBACK_TO] = "ROLLBACK TO sp",
	};
	struct sq_db *q = to_db(db);
	int rc = sqlite3_exec(q->h, sql[op], NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_fail(q, rc, db_tx_op_name(op));
}

static int sq_tx_alive(struct db *db)
{
	return !sqlite3_get_autocommit(to_db(db)->h);
}

const struct db_driver db_sqlite_driver = {
	.name = "sqlite",
	.backend = DB_SQLITE,
	.open = sq_open,
	.close = sq_close,
	.prepare = sq_prepare,
	.finalize = sq_finalize,
	.bind_int64 = sq_bind_int64,
	.bind_null = sq_bind_null,
	.bind_text = sq_bind_text,
	.bind_blob = sq_bind_blob,
	.step = sq_step,
	.reset = sq_reset,
	.column_is_null = sq_column_is_null,
	.column_int64 = sq_column_int64,
	.column_text = sq_column_text,
	.column_blob = sq_column_blob,
	.exec = sq_exec,
	.tx = sq_tx,
	.tx_alive = sq_tx_alive,
	.migrate_lock_sql = NULL,
};
