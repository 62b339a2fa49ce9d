/*
 * A fresh database per test, on either backend of the SQL layer (db.h), for
 * the gateway unit tests (header-only, like gw_test_util.h).
 *
 * Without PITSTOP_TEST_PG_URL, a database is a SQLite file in the run's temp
 * dir (removed at exit). With PITSTOP_TEST_PG_URL set to an admin URL of a
 * PostgreSQL server (ctest's postgres.* tests set it to the fixture server
 * that scripts/pg-test-server started), each database is created on that
 * server as pitstop_t_<pid>_<name> and dropped at exit (WITH (FORCE), so a
 * handle the test leaked does not keep it). A test that crashes leaves its
 * database behind on the throw-away server; the next server start wipes it.
 */
#ifndef PITSTOP_DB_TEST_UTIL_H
#define PITSTOP_DB_TEST_UTIL_H

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "gw_test_util.h"

#define DB_TEST_MAX_DATABASES 64

/* PostgreSQL databases this run created, dropped at exit. */
static char db_test_created[DB_TEST_MAX_DATABASES][64];
static int db_test_ncreated;

/* The admin URL of the test server, or NULL for SQLite. */
static inline const char *db_test_pg_url(void)
{
	const char *u = getenv("PITSTOP_TEST_PG_URL");

	return u && *u ? u : NULL;
}

/* "sqlite" or "postgresql": the backend db_test_open() uses. */
static inline const char *db_test_backend(void)
{
	return db_test_pg_url() ? "postgresql" : "sqlite";
}

/* The PostgreSQL database name for a test's name: pitstop_t_<pid>_<name>,
 * lower case, with anything but letters and digits as '_'. */
static inline void db_test_pg_name(const char *name, char *buf, size_t size)
{
	size_t n;

	if (snprintf(buf, size, "pitstop_t_%ld_%s", (long)getpid(), name) >= (int)size)
		buf[size - 1] = '\0'; /* cut to size: test names are short and distinct early */
	for (n = 0; buf[n]; n++)
		buf[n] =
			isalnum((unsigned char)buf[n]) ? (char)tolower((unsigned char)buf[n]) : '_';
}

/* admin with its path (the database) replaced by dbname; the query stays. */
static inline int db_test_pg_replace_db(const char *admin, const char *dbname, char *buf,
					size_t size)
{
	const char *auth = strstr(admin, "://");
	size_t host_end;
	const char *query;
	int n;

	if (!auth)
		return -EINVAL;
	auth += 3;
	host_end = (size_t)(auth - admin) + strcspn(auth, "/?");
	query = strchr(admin + host_end, '?');
	n = snprintf(buf, size, "%.*s/%s%s", (int)host_end, admin, dbname, query ? query : "");
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/*
 * The URL of test database name, for db_open() (a second handle, a read-only
 * handle, a second gateway): a path in the temp dir, or the PostgreSQL URL.
 * The database exists once db_test_open(name) has run. Returns 0 or -errno.
 */
static inline int db_test_url(const char *name, char *buf, size_t size)
{
	char dbname[64];

	if (!db_test_pg_url()) {
		gw_test_path(buf, size, name);
		return 0;
	}
	db_test_pg_name(name, dbname, sizeof(dbname));
	return db_test_pg_replace_db(db_test_pg_url(), dbname, buf, size);
}

/* Runs one statement on the admin database. Returns 0 or -errno (printed). */
static inline int db_test_admin(const char *sql)
{
	struct db *admin = NULL;
	char err[256];
	int r = db_open(db_test_pg_url(), DB_READ_WRITE, &admin, err, sizeof(err));

	if (r < 0) {
		fprintf(stderr, "db_test: %s\n", err);
		return r;
	}
	r = db_exec(admin, sql);
	if (r < 0)
		fprintf(stderr, "db_test: '%s' failed: %s\n", sql, strerror(-r));
	db_close(admin);
	return r;
}

static inline void db_test_drop_all(void)
{
	char sql[sizeof(db_test_created[0]) + 64];

	for (int i = 0; i < db_test_ncreated; i++) {
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %.63s WITH (FORCE)",
			 db_test_created[i]);
		db_test_admin(sql);
	}
	db_test_ncreated = 0;
}

/* Creates (again, if it exists) PostgreSQL database dbname and registers its drop. */
static inline int db_test_pg_create(const char *dbname)
{
	char sql[128];
	int r, known = 0;

	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %.63s WITH (FORCE)", dbname);
	r = db_test_admin(sql);
	if (r < 0)
		return r;
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", dbname);
	r = db_test_admin(sql);
	if (r < 0)
		return r;
	for (int i = 0; i < db_test_ncreated; i++)
		known |= strcmp(db_test_created[i], dbname) == 0;
	if (known)
		return 0;
	if (db_test_ncreated == DB_TEST_MAX_DATABASES) {
		fprintf(stderr, "db_test: more than %d databases\n", DB_TEST_MAX_DATABASES);
		return -ENOSPC;
	}
	if (db_test_ncreated == 0)
		atexit(db_test_drop_all);
	snprintf(db_test_created[db_test_ncreated++], sizeof(db_test_created[0]), "%s", dbname);
	return 0;
}

/*
 * Opens a fresh, empty database called name read-write: the SQLite file
 * <tempdir>/<name> (removed first if an earlier call left it), or the
 * PostgreSQL database pitstop_t_<pid>_<name> (dropped and created). Returns
 * 0 and *ret_db (close with db_close()), or -errno (printed).
 */
static inline int db_test_open(const char *name, struct db **ret_db)
{
	char url[512], err[256];
	int r = db_test_url(name, url, sizeof(url));

	if (r < 0) {
		fprintf(stderr, "db_test: no URL for %s: %s\n", name, strerror(-r));
		return r;
	}
	if (db_test_pg_url()) {
		char dbname[64];

		db_test_pg_name(name, dbname, sizeof(dbname));
		r = db_test_pg_create(dbname);
		if (r < 0)
			return r;
	} else {
		static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
		char path[600];

		for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
			snprintf(path, sizeof(path), "%s%s", url, suffix[i]);
			unlink(path);
		}
	}
	r = db_open(url, DB_READ_WRITE, ret_db, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "db_test: cannot open %s: %s\n", name, err);
	return r;
}

#endif
