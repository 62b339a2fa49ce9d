/*
 * Unit tests of the gateway's database as a whole (gateway/app/schema.c) on
 * whichever backend db_test_util.h selects: every domain's tables after one
 * migration, reopening a current database, a read-only opener (pitstopctl)
 * that refuses a database that is not (yet) ours, a database a newer
 * gateway migrated, and URLs that name no backend.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accounts.h"
#include "counters.h"
#include "db.h"
#include "lease.h"
#include "offer_log.h"
#include "poi.h"
#include "profiles.h"
#include "schema.h"
#include "service.h"
#include "telemetry.h"

static int64_t query_int(struct db *db, const char *sql)
{
	struct db_stmt *st = NULL;
	int64_t v;

	assert_int_equal(db_prepare(db, sql, &st), 0);
	assert_int_equal(db_step(st), 1);
	v = db_column_int64(st, 0);
	db_finalize(st);
	return v;
}

static size_t all_migrations(void)
{
	return telemetry_migrations_count + offers_migrations_count + ingest_migrations_count +
	       jobs_migrations_count + accounts_migrations_count + service_migrations_count +
	       poi_migrations_count + profiles_migrations_count;
}

static void test_migrate_all_domains(void **state)
{
	static const char *const tables[] = {
		"telemetry_batches",
		"vehicle_state",
		"telemetry_daily",
		"offers",
		"offer_events",
		"offer_episodes",
		"counters",
		"job_leases",
		"users",
		"fleets",
		"user_fleets",
		"fleet_vehicles",
		"tokens",
		"audit_log",
		"service_imports",
		"service_records",
		"service_overrides",
		"service_odometer_readings",
		"vehicle_profiles",
		"promo_caps",
		"promo_cooldowns",
		"promo_codes",
		"promo_suppressed",
		"promo_visits",
	};
	struct db *db = NULL, *again = NULL;
	char url[512], err[512], sql[128];

	(void)state;
	assert_int_equal(db_test_open("schema", &db), 0);
	assert_int_equal(schema_migrate(db, err, sizeof(err)), 0);
	assert_int_equal(query_int(db, "SELECT COUNT(*) FROM schema_migrations"), all_migrations());
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", tables[i]);
		assert_int_equal(query_int(db, sql), 0);
	}
	/* again: nothing to do */
	assert_int_equal(schema_migrate(db, err, sizeof(err)), 0);
	assert_int_equal(query_int(db, "SELECT COUNT(*) FROM schema_migrations"), all_migrations());

	/* the daemon's and pitstopctl's way in: current, so both open it */
	assert_int_equal(db_test_url("schema", url, sizeof(url)), 0);
	assert_int_equal(schema_open(url, DB_READ_WRITE, &again, err, sizeof(err)), 0);
	assert_int_equal(db_backend(again), db_backend(db));
	db_close(again);
	again = NULL;
	assert_int_equal(schema_open(url, DB_READ_ONLY, &again, err, sizeof(err)), 0);
	assert_true(db_read_only(again));
	db_close(again);
	db_close(db);
}

static void test_refused(void **state)
{
	struct db *db = NULL, *got = NULL;
	char url[512], err[512];

	(void)state;
	/* a database that is not ours is refused read-only, and not created */
	assert_int_equal(db_test_open("schema_empty", &db), 0);
	assert_int_equal(db_test_url("schema_empty", url, sizeof(url)), 0);
	assert_int_equal(schema_open(url, DB_READ_ONLY, &got, err, sizeof(err)), -EPROTO);
	assert_null(got);
	assert_non_null(strstr(err, "schema_migrations"));

	/* a database a newer gateway migrated is refused, read-write too */
	assert_int_equal(schema_migrate(db, err, sizeof(err)), 0);
	assert_int_equal(db_exec(db, "INSERT INTO schema_migrations(domain, version, name,"
				     " applied_ms) VALUES('telemetry', 99, 'future', 1)"),
			 0);
	assert_int_equal(schema_open(url, DB_READ_WRITE, &got, err, sizeof(err)), -EPROTO);
	assert_null(got);
	assert_non_null(strstr(err, "newer"));
	assert_non_null(strstr(err, "telemetry 99"));
	assert_int_equal(schema_migrate(db, err, sizeof(err)), -EPROTO);
	db_close(db);

	if (!db_test_pg_url()) {
		/* read-only never creates a file */
		gw_test_path(url, sizeof(url), "schema_missing.db");
		assert_int_equal(schema_open(url, DB_READ_ONLY, &got, err, sizeof(err)), -ENOENT);
		assert_int_equal(access(url, F_OK), -1);
	}
	assert_int_equal(schema_open("mysql://x", DB_READ_WRITE, &got, err, sizeof(err)), -ENOTSUP);
	assert_int_equal(schema_open("", DB_READ_WRITE, &got, err, sizeof(err)), -EINVAL);
	assert_int_equal(schema_open("sqlite:", DB_READ_WRITE, &got, err, sizeof(err)), -EINVAL);
	assert_null(got);
	db_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrate_all_domains),
		cmocka_unit_test(test_refused),
	};

	fprintf(stderr, "schema tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
