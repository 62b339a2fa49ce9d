/*
 * Unit tests of the SQL layer (gateway/db/db.h) on whichever backend
 * db_test_util.h selects: SQLite by default, PostgreSQL when
 * PITSTOP_TEST_PG_URL is set (ctest's postgres.unit.gateway.test_db).
 * Placeholders, value round trips, error classes, transactions and
 * savepoints, fault injection and the migration runner; on PostgreSQL also
 * lock timeouts and a lost connection. Failures the tests provoke are
 * logged by the layer, as they would be in the gateway.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "db.h"

static int on_pg(void)
{
	return strcmp(db_test_backend(), "postgresql") == 0;
}

static struct db *open_fresh(const char *name)
{
	struct db *db = NULL;

	assert_int_equal(db_test_open(name, &db), 0);
	assert_non_null(db);
	assert_int_equal(db_backend(db), on_pg() ? DB_POSTGRESQL : DB_SQLITE);
	return db;
}

/* A table with one column of each kind (BLOB is BYTEA on PostgreSQL). */
static void make_table(struct db *db)
{
	assert_int_equal(db_exec(db, db_backend(db) == DB_POSTGRESQL
					     ? "CREATE TABLE t (id BIGINT PRIMARY KEY, i BIGINT,"
					       " s TEXT, b BYTEA)"
					     : "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER,"
					       " s TEXT, b BLOB)"),
			 0);
}

static int64_t count_rows(struct db *db, const char *sql)
{
	struct db_stmt *st = NULL;
	int64_t n;

	assert_int_equal(db_prepare(db, sql, &st), 0);
	assert_int_equal(db_step(st), 1);
	n = db_column_int64(st, 0);
	assert_int_equal(db_step(st), 0);
	db_finalize(st);
	return n;
}

/* Inserts (id, NULL, NULL, NULL) through a prepared statement; returns db_run's result. */
static int insert_id(struct db_stmt *ins, int64_t id)
{
	assert_int_equal(db_bind_int64(ins, 1, id), 0);
	return db_run(ins);
}

static void test_placeholders_any_order(void **state)
{
	struct db *db = open_fresh("placeholders");
	struct db_stmt *st = NULL;

	assert_int_equal(db_prepare(db, "SELECT $2, $1, $2", &st), 0);
	assert_int_equal(db_bind_text(st, 1, "one"), 0);
	assert_int_equal(db_bind_text(st, 2, "two"), 0);
	assert_int_equal(db_bind_text(st, 3, "x"), -EINVAL);
	assert_int_equal(db_bind_int64(st, 0, 1), -EINVAL);
	assert_int_equal(db_step(st), 1);
	assert_string_equal(db_column_text(st, 0), "two");
	assert_string_equal(db_column_text(st, 1), "one");
	assert_string_equal(db_column_text(st, 2), "two");
	assert_int_equal(db_step(st), 0);

	/* Reset clears the bindings; the statement runs again. */
	db_reset(st);
	assert_int_equal(db_bind_text(st, 1, "a"), 0);
	assert_int_equal(db_bind_text(st, 2, "b"), 0);
	assert_int_equal(db_step(st), 1);
	assert_string_equal(db_column_text(st, 0), "b");
	assert_string_equal(db_column_text(st, 1), "a");
	db_finalize(st);

	/* Numbers, and a comparison read as an integer (PostgreSQL's 't'). */
	assert_int_equal(db_prepare(db,
				    "SELECT CAST($1 AS BIGINT) + CAST($2 AS BIGINT),"
				    " CAST($2 AS BIGINT) = 5, CAST($1 AS BIGINT) = 5",
				    &st),
			 0);
	assert_int_equal(db_bind_int64(st, 1, 37), 0);
	assert_int_equal(db_bind_int64(st, 2, 5), 0);
	assert_int_equal(db_step(st), 1);
	assert_int_equal(db_column_int64(st, 0), 42);
	assert_int_equal(db_column_int64(st, 1), 1);
	assert_int_equal(db_column_int64(st, 2), 0);
	db_finalize(st);

	/* Placeholders the layer refuses before the backend sees them. */
	assert_int_equal(db_prepare(db, "SELECT $0", &st), -EINVAL);
	{
		char over[32];

		snprintf(over, sizeof(over), "SELECT $%d", DB_MAX_PARAMS + 1);
		assert_int_equal(db_prepare(db, over, &st), -EINVAL);
	}
	assert_int_equal(db_prepare(db, "SELECT $x", &st), -EINVAL);
	db_close(db);
}

static void test_values_round_trip(void **state)
{
	static const unsigned char blob[] = { 0x00, 0x01, 0xff, 0x00, 0x5c, 0x78, 0x00 };
	struct db *db = open_fresh("values");
	struct db_stmt *ins = NULL, *sel = NULL;
	const unsigned char *p;
	size_t len = 99;

	make_table(db);
	assert_int_equal(db_prepare(db, "INSERT INTO t(id, i, s, b) VALUES($1, $2, $3, $4)", &ins),
			 0);
	/* 1: all NULL */
	db_bind_int64(ins, 1, 1);
	db_bind_null(ins, 2);
	db_bind_text(ins, 3, NULL);
	db_bind_null(ins, 4);
	assert_int_equal(db_run(ins), 0);
	/* 2: the extremes, text with UTF-8 and quotes, a blob with NULs */
	db_bind_int64(ins, 1, 2);
	db_bind_int64(ins, 2, INT64_MIN);
	db_bind_text(ins, 3, "h\xc3\xa9llo 'quoted' \\x00");
	db_bind_blob(ins, 4, blob, sizeof(blob));
	assert_int_equal(db_run(ins), 0);
	/* 3: INT64_MAX, empty text, empty blob */
	db_bind_int64(ins, 1, 3);
	db_bind_opt_int64(ins, 2, 1, INT64_MAX);
	db_bind_text(ins, 3, "");
	db_bind_blob(ins, 4, NULL, 0);
	assert_int_equal(db_run(ins), 0);
	/* 4: an absent optional */
	db_bind_int64(ins, 1, 4);
	db_bind_opt_int64(ins, 2, 0, 12345);
	assert_int_equal(db_run(ins), 0);
	db_finalize(ins);

	assert_int_equal(db_prepare(db, "SELECT id, i, s, b FROM t ORDER BY id", &sel), 0);
	assert_int_equal(db_step(sel), 1);
	assert_int_equal(db_column_int64(sel, 0), 1);
	for (int col = 1; col <= 3; col++)
		assert_true(db_column_is_null(sel, col));
	assert_int_equal(db_column_int64(sel, 1), 0);
	assert_null(db_column_text(sel, 2));
	assert_null(db_column_blob(sel, 3, &len));
	assert_int_equal(len, 0);

	assert_int_equal(db_step(sel), 1);
	assert_int_equal(db_column_int64(sel, 0), 2);
	assert_false(db_column_is_null(sel, 1));
	assert_true(db_column_int64(sel, 1) == INT64_MIN);
	assert_string_equal(db_column_text(sel, 2), "h\xc3\xa9llo 'quoted' \\x00");
	p = db_column_blob(sel, 3, &len);
	assert_int_equal(len, sizeof(blob));
	assert_memory_equal(p, blob, sizeof(blob));
	/* Read twice: the same bytes (the first pointer stays valid until the next step). */
	assert_ptr_equal(db_column_blob(sel, 3, &len), p);

	assert_int_equal(db_step(sel), 1);
	assert_int_equal(db_column_int64(sel, 0), 3);
	assert_true(db_column_int64(sel, 1) == INT64_MAX);
	assert_false(db_column_is_null(sel, 2));
	assert_string_equal(db_column_text(sel, 2), "");
	assert_false(db_column_is_null(sel, 3));
	db_column_blob(sel, 3, &len);
	assert_int_equal(len, 0);

	assert_int_equal(db_step(sel), 1);
	assert_int_equal(db_column_int64(sel, 0), 4);
	assert_true(db_column_is_null(sel, 1));

	assert_int_equal(db_step(sel), 0);
	assert_int_equal(db_step(sel), 0);
	db_finalize(sel);
	db_close(db);
}

static void test_unique_violation_is_eexist(void **state)
{
	struct db *db = open_fresh("unique");
	struct db_stmt *ins = NULL;

	make_table(db);
	assert_int_equal(db_prepare(db, "INSERT INTO t(id) VALUES($1)", &ins), 0);
	assert_int_equal(insert_id(ins, 1), 0);
	assert_int_equal(insert_id(ins, 1), -EEXIST);
	/* The statement is usable after the failure. */
	assert_int_equal(insert_id(ins, 2), 0);
	db_finalize(ins);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 2);

	/* A syntax error is -EIO, at prepare. */
	assert_int_equal(db_prepare(db, "SELEKT 1", &ins), -EIO);
	db_close(db);
}

static void test_commit_and_rollback(void **state)
{
	struct db *db = open_fresh("tx");
	struct db_stmt *ins = NULL;

	make_table(db);
	assert_int_equal(db_prepare(db, "INSERT INTO t(id) VALUES($1)", &ins), 0);
	assert_int_equal(db_commit(db), -EINVAL);
	assert_int_equal(db_rollback(db), 0);

	assert_int_equal(db_begin(db), 0);
	assert_true(db_in_tx(db));
	assert_int_equal(db_begin(db), -EBUSY);
	assert_int_equal(insert_id(ins, 1), 0);
	assert_int_equal(db_rollback(db), 0);
	assert_false(db_in_tx(db));
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 0);

	assert_int_equal(db_begin(db), 0);
	assert_int_equal(insert_id(ins, 1), 0);
	assert_int_equal(insert_id(ins, 2), 0);
	assert_int_equal(db_commit(db), 0);
	assert_false(db_in_tx(db));
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 2);

	/*
	 * A failed statement outside a savepoint: PostgreSQL aborts the whole
	 * transaction, and its COMMIT must not report success; SQLite undoes
	 * the one statement and commits the rest. Domains use savepoints.
	 */
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(insert_id(ins, 3), 0);
	assert_int_equal(insert_id(ins, 1), -EEXIST);
	if (on_pg()) {
		assert_int_equal(db_commit(db), -EIO);
		assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 2);
	} else {
		assert_int_equal(db_commit(db), 0);
		assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 3);
	}
	assert_false(db_in_tx(db));
	db_finalize(ins);
	db_close(db);
}

static void test_savepoint_undoes_one_statement(void **state)
{
	struct db *db = open_fresh("savepoint");
	struct db_stmt *ins = NULL;

	make_table(db);
	assert_int_equal(db_prepare(db, "INSERT INTO t(id) VALUES($1)", &ins), 0);
	assert_int_equal(db_savepoint(db), -EINVAL); /* outside a transaction */

	assert_int_equal(db_begin(db), 0);
	assert_int_equal(insert_id(ins, 1), 0);
	assert_int_equal(db_savepoint(db), 0);
	assert_int_equal(db_savepoint(db), -EINVAL); /* one level */
	assert_int_equal(insert_id(ins, 2), 0);
	assert_int_equal(db_rollback_to(db), 0);
	assert_int_equal(db_rollback_to(db), -EINVAL); /* released by the undo */

	/* A failed statement inside a savepoint: undo it, the transaction goes on. */
	assert_int_equal(db_savepoint(db), 0);
	assert_int_equal(insert_id(ins, 1), -EEXIST);
	assert_int_equal(db_rollback_to(db), 0);

	assert_int_equal(db_savepoint(db), 0);
	assert_int_equal(insert_id(ins, 3), 0);
	assert_int_equal(db_release(db), 0);
	assert_int_equal(db_release(db), -EINVAL);
	assert_int_equal(db_commit(db), 0);

	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 2);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t WHERE id = 2"), 0);
	db_finalize(ins);
	db_close(db);
}

static void test_fault_injection(void **state)
{
	struct db *db = open_fresh("faults");
	struct db_stmt *ins = NULL, *st = NULL;

	make_table(db);
	assert_int_equal(db_prepare(db, "INSERT INTO t(id) VALUES($1)", &ins), 0);

	/* Step: one more success, then two failures, then normal again. */
	db_fault_inject(db, DB_FAULT_STEP, 1, 2, -EIO);
	assert_int_equal(insert_id(ins, 1), 0);
	assert_int_equal(insert_id(ins, 2), -EIO);
	assert_int_equal(db_exec(db, "DELETE FROM t WHERE id = 99"), -EIO);
	assert_int_equal(insert_id(ins, 3), 0);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t"), 2);

	/* Commit: fails once with the given class, rolled back; then works. */
	db_fault_inject(db, DB_FAULT_COMMIT, 0, 1, -ENOSPC);
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(insert_id(ins, 4), 0);
	assert_int_equal(db_commit(db), -ENOSPC);
	assert_false(db_in_tx(db));
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t WHERE id = 4"), 0);
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(insert_id(ins, 4), 0);
	assert_int_equal(db_commit(db), 0);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM t WHERE id = 4"), 1);

	/* Begin, savepoint and prepare. */
	db_fault_inject(db, DB_FAULT_BEGIN, 0, 1, -EBUSY);
	assert_int_equal(db_begin(db), -EBUSY);
	assert_false(db_in_tx(db));
	assert_int_equal(db_begin(db), 0);
	db_fault_inject(db, DB_FAULT_SAVEPOINT, 0, 1, -ENOMEM);
	assert_int_equal(db_savepoint(db), -ENOMEM);
	assert_int_equal(db_savepoint(db), 0);
	assert_int_equal(db_release(db), 0);
	assert_int_equal(db_rollback(db), 0);
	db_fault_inject(db, DB_FAULT_PREPARE, 0, 1, -ENOTCONN);
	assert_int_equal(db_prepare(db, "SELECT 1", &st), -ENOTCONN);
	assert_int_equal(db_prepare(db, "SELECT 1", &st), 0);
	db_finalize(st);

	/* count 0 disarms. */
	db_fault_inject(db, DB_FAULT_STEP, 0, 1, -EIO);
	db_fault_inject(db, DB_FAULT_STEP, 0, 0, -EIO);
	assert_int_equal(insert_id(ins, 5), 0);
	db_finalize(ins);
	db_close(db);
}

/* Two domains; alpha has two versions. The scripts are not idempotent
 * (plain CREATE TABLE): running one twice would fail. */
static const struct db_migration migrations[] = {
	{ "alpha",
	  1,
	  "first",
	  { "CREATE TABLE alpha_a (x INTEGER)", "CREATE TABLE alpha_a (x INTEGER)" } },
	{ "beta",
	  1,
	  "only",
	  { "CREATE TABLE beta_a (y TEXT); CREATE TABLE beta_b (z TEXT)",
	    "CREATE TABLE beta_a (y TEXT); CREATE TABLE beta_b (z TEXT)" } },
	{ "alpha",
	  2,
	  "second",
	  { "ALTER TABLE alpha_a ADD COLUMN w TEXT", "ALTER TABLE alpha_a ADD COLUMN w TEXT" } },
};
#define NMIG (sizeof(migrations) / sizeof(migrations[0]))

static void test_migrate_once(void **state)
{
	struct db *db = open_fresh("migrate");
	char err[512];

	assert_int_equal(db_migrate(db, migrations, NMIG, err, sizeof(err)), 0);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM schema_migrations"), 3);
	assert_int_equal(db_exec(db, "INSERT INTO alpha_a(x, w) VALUES(1, 'w')"), 0);
	assert_int_equal(db_exec(db, "INSERT INTO beta_b(z) VALUES('z')"), 0);

	/* Again: nothing to do (running a script twice would fail). */
	assert_int_equal(db_migrate(db, migrations, NMIG, err, sizeof(err)), 0);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM schema_migrations"), 3);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM alpha_a"), 1);

	/* A second handle (a second gateway) finds the database current. */
	{
		struct db *db2 = NULL;
		char url[512];

		assert_int_equal(db_test_url("migrate", url, sizeof(url)), 0);
		assert_int_equal(db_open(url, DB_READ_WRITE, &db2, err, sizeof(err)), 0);
		assert_int_equal(db_migrate(db2, migrations, NMIG, err, sizeof(err)), 0);
		assert_int_equal(count_rows(db2, "SELECT COUNT(*) FROM schema_migrations"), 3);
		db_close(db2);
	}
	db_close(db);
}

static void test_migrate_step_by_step(void **state)
{
	struct db *db = open_fresh("migrate_steps");
	char err[512];

	/* An older program knew alpha 1 and beta 1 only. */
	assert_int_equal(db_migrate(db, migrations, 2, err, sizeof(err)), 0);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM schema_migrations"), 2);
	assert_int_equal(db_migrate(db, migrations, NMIG, err, sizeof(err)), 0);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM schema_migrations"), 3);
	assert_int_equal(
		count_rows(db, "SELECT COUNT(*) FROM schema_migrations WHERE domain = 'alpha' AND "
			       "version = 2 AND name = 'second' AND applied_ms > 0"),
		1);
	db_close(db);
}

static void test_migrate_refuses_newer_database(void **state)
{
	struct db *db = open_fresh("migrate_newer");
	char err[512];

	assert_int_equal(db_migrate(db, migrations, NMIG, err, sizeof(err)), 0);
	assert_int_equal(db_exec(db, "INSERT INTO schema_migrations(domain, version, name, "
				     "applied_ms) VALUES('alpha', 3, 'future', 1)"),
			 0);
	assert_int_equal(db_migrate(db, migrations, NMIG, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "alpha 3"));
	assert_non_null(strstr(err, "newer"));
	assert_false(db_in_tx(db));
	db_close(db);
}

static void test_migrate_failure_rolls_back(void **state)
{
	static const struct db_migration bad[] = {
		{ "alpha",
		  1,
		  "first",
		  { "CREATE TABLE alpha_a (x INTEGER)", "CREATE TABLE alpha_a (x INTEGER)" } },
		{ "alpha",
		  2,
		  "broken",
		  { "CREATE TABLE alpha_a (x INTEGER)", "CREATE TABLE alpha_a (x INTEGER)" } },
	};
	struct db *db = open_fresh("migrate_fail");
	char err[512];

	assert_int_equal(db_migrate(db, bad, 2, err, sizeof(err)), -EIO);
	assert_non_null(strstr(err, "alpha 2 (broken)"));
	assert_false(db_in_tx(db));
	/* All or nothing: alpha 1 was undone too. */
	assert_int_equal(db_migrate(db, migrations, 1, err, sizeof(err)), 0);
	assert_int_equal(count_rows(db, "SELECT COUNT(*) FROM schema_migrations"), 1);
	db_close(db);
}

static void test_read_only_handle(void **state)
{
	struct db *db = open_fresh("readonly"), *ro = NULL;
	char url[512], err[512];

	assert_int_equal(db_test_url("readonly", url, sizeof(url)), 0);

	/* Not migrated at all yet. */
	assert_int_equal(db_open(url, DB_READ_ONLY, &ro, err, sizeof(err)), 0);
	assert_true(db_read_only(ro));
	assert_int_equal(db_migrate(ro, migrations, NMIG, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "schema_migrations"));
	db_close(ro);

	/* Migrated by an older gateway: a version is missing, and ro adds nothing. */
	assert_int_equal(db_migrate(db, migrations, 2, err, sizeof(err)), 0);
	assert_int_equal(db_open(url, DB_READ_ONLY, &ro, err, sizeof(err)), 0);
	assert_int_equal(db_migrate(ro, migrations, NMIG, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "lacks migration alpha 2"));
	assert_int_equal(count_rows(ro, "SELECT COUNT(*) FROM schema_migrations"), 2);

	/* Current: accepted; reads work, writes are refused. */
	assert_int_equal(db_migrate(db, migrations, NMIG, err, sizeof(err)), 0);
	assert_int_equal(db_migrate(ro, migrations, NMIG, err, sizeof(err)), 0);
	assert_int_equal(count_rows(ro, "SELECT COUNT(*) FROM schema_migrations"), 3);
	assert_int_equal(db_exec(ro, "INSERT INTO alpha_a(x) VALUES(1)"), -EROFS);
	db_close(ro);
	db_close(db);
}

/* PostgreSQL: a row lock held by another connection past lock_timeout is -EBUSY. */
/*
 * The gateway's SQLite file and its WAL and shared-memory files hold every
 * car's positions: 0600 whatever the umask (on PostgreSQL the server owns
 * its files).
 */
static void test_sqlite_files_private(void **state)
{
	char path[512], side[600], err[256];
	struct db *db = NULL;
	struct stat sb;
	mode_t old;

	(void)state;
	if (on_pg())
		skip();
	gw_test_path(path, sizeof(path), "private.db");
	old = umask(0);
	assert_int_equal(db_open(path, DB_READ_WRITE, &db, err, sizeof(err)), 0);
	assert_int_equal(db_exec(db, "CREATE TABLE t (x INTEGER)"), 0);
	umask(old);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(side, sizeof(side), "%s-wal", path);
	assert_int_equal(stat(side, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(side, sizeof(side), "%s-shm", path);
	assert_int_equal(stat(side, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	db_close(db);
}

/*
 * The WAL is checkpointed every WAL_CHECKPOINT_FRAMES frames, not at
 * SQLite's default of 1,000 (docs/performance.md): 1,500 one-frame commits
 * are all still in the WAL, and every row is there.
 */
static void test_sqlite_checkpoint_interval(void **state)
{
	struct db *db = open_fresh("checkpoint.db");
	struct db_stmt *ins = NULL, *st = NULL;
	const int64_t commits = 1500;

	(void)state;
	if (on_pg()) {
		db_close(db);
		skip();
	}
	make_table(db);
	assert_int_equal(db_prepare(db, "INSERT INTO t(id) VALUES($1)", &ins), 0);
	for (int64_t i = 0; i < commits; i++) {
		assert_int_equal(db_begin(db), 0);
		assert_int_equal(insert_id(ins, i), 0);
		assert_int_equal(db_commit(db), 0);
	}
	db_finalize(ins);
	/* (busy, frames in the WAL, frames checkpointed): this checkpoint reports the WAL's size. */
	assert_int_equal(db_prepare(db, "PRAGMA wal_checkpoint(PASSIVE)", &st), 0);
	assert_int_equal(db_step(st), 1);
	assert_true(db_column_int64(st, 1) >= commits);
	assert_true(db_column_int64(st, 1) < 10000);
	db_finalize(st);
	assert_int_equal(count_rows(db, "SELECT count(*) FROM t"), commits);
	db_close(db);
}

static void test_pg_lock_timeout_is_busy(void **state)
{
	struct db *a, *b = NULL;
	struct db_stmt *upd = NULL;
	char url[512], err[256];

	if (!on_pg())
		skip(); /* SQLite's write lock is the begin's; its driver's busy timeout decides */
	a = open_fresh("busy");
	make_table(a);
	assert_int_equal(db_exec(a, "INSERT INTO t(id, i) VALUES(1, 0)"), 0);
	assert_int_equal(db_test_url("busy", url, sizeof(url)), 0);
	assert_int_equal(db_open(url, DB_READ_WRITE, &b, err, sizeof(err)), 0);
	assert_int_equal(db_exec(b, "SET lock_timeout = '100ms'"), 0);

	assert_int_equal(db_begin(a), 0);
	assert_int_equal(db_exec(a, "UPDATE t SET i = 1 WHERE id = 1"), 0);
	assert_int_equal(db_prepare(b, "UPDATE t SET i = $1 WHERE id = 1", &upd), 0);
	assert_int_equal(db_begin(b), 0);
	assert_int_equal(db_bind_int64(upd, 1, 2), 0);
	assert_int_equal(db_run(upd), -EBUSY);
	assert_int_equal(db_rollback(b), 0);
	assert_int_equal(db_commit(a), 0);

	/* Once a is done, b's update goes through. */
	assert_int_equal(db_bind_int64(upd, 1, 2), 0);
	assert_int_equal(db_run(upd), 0);
	assert_int_equal(count_rows(a, "SELECT i FROM t WHERE id = 1"), 2);
	db_finalize(upd);
	db_close(b);
	db_close(a);
}

/*
 * PostgreSQL: the server ends our session (as a restart would). Statements
 * fail with -ENOTCONN; the next db_begin() reconnects, and the statements
 * prepared before are prepared again on their next use.
 */
static void test_pg_reconnect(void **state)
{
	struct db *a, *b = NULL;
	struct db_stmt *ins = NULL, *kill = NULL;
	char url[512], err[256];
	int64_t pid;

	if (!on_pg())
		skip();
	a = open_fresh("reconnect");
	make_table(a);
	assert_int_equal(db_prepare(a, "INSERT INTO t(id) VALUES($1)", &ins), 0);
	assert_int_equal(insert_id(ins, 1), 0);
	pid = count_rows(a, "SELECT pg_backend_pid()");

	assert_int_equal(db_test_url("reconnect", url, sizeof(url)), 0);
	assert_int_equal(db_open(url, DB_READ_WRITE, &b, err, sizeof(err)), 0);
	assert_int_equal(db_prepare(b, "SELECT pg_terminate_backend(CAST($1 AS INTEGER))", &kill),
			 0);
	assert_int_equal(db_bind_int64(kill, 1, pid), 0);
	assert_int_equal(db_step(kill), 1);
	assert_int_equal(db_column_int64(kill, 0), 1);
	db_finalize(kill);
	db_close(b);

	assert_int_equal(insert_id(ins, 2), -ENOTCONN);
	assert_int_equal(db_begin(a), 0);
	assert_int_equal(insert_id(ins, 3), 0);
	assert_int_equal(db_commit(a), 0);
	assert_int_equal(count_rows(a, "SELECT COUNT(*) FROM t"), 2);
	assert_true(count_rows(a, "SELECT pg_backend_pid()") != pid);
	db_finalize(ins);
	db_close(a);
}

/* Opening a server that is not there fails with one line naming it, no password. */
static void test_pg_open_failure(void **state)
{
	struct db *db = NULL;
	char err[512];

	if (!on_pg())
		skip();
	assert_int_equal(db_open("postgresql://pitstop:s3cret@127.0.0.1:1/x?connect_timeout=2",
				 DB_READ_WRITE, &db, err, sizeof(err)),
			 -ENOTCONN);
	assert_null(db);
	assert_non_null(strstr(err, "postgresql: "));
	assert_non_null(strstr(err, "127.0.0.1"));
	assert_null(strstr(err, "s3cret"));
	assert_null(strchr(err, '\n'));
	assert_int_equal(db_open("postgresql://pitstop:s3cret@127.0.0.1:1/x?bogus=1", DB_READ_WRITE,
				 &db, err, sizeof(err)),
			 -EINVAL);
	assert_null(strstr(err, "s3cret"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_placeholders_any_order),
		cmocka_unit_test(test_values_round_trip),
		cmocka_unit_test(test_unique_violation_is_eexist),
		cmocka_unit_test(test_commit_and_rollback),
		cmocka_unit_test(test_savepoint_undoes_one_statement),
		cmocka_unit_test(test_fault_injection),
		cmocka_unit_test(test_migrate_once),
		cmocka_unit_test(test_migrate_step_by_step),
		cmocka_unit_test(test_migrate_refuses_newer_database),
		cmocka_unit_test(test_migrate_failure_rolls_back),
		cmocka_unit_test(test_read_only_handle),
		cmocka_unit_test(test_sqlite_files_private),
		cmocka_unit_test(test_sqlite_checkpoint_interval),
		cmocka_unit_test(test_pg_lock_timeout_is_busy),
		cmocka_unit_test(test_pg_reconnect),
		cmocka_unit_test(test_pg_open_failure),
	};

	fprintf(stderr, "test_db: backend %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
