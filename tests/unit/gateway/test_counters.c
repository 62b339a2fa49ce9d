/*
 * Unit tests of the counters (gateway/ingest/counters.c) on whichever
 * backend db_test_util.h selects: one list of names (the X-macros), save
 * and load per instance across handles, the listing for pitstopctl stats,
 * counters a newer gateway saved, and saves undone with their transaction.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "counters.h"
#include "db.h"
#include "schema.h"

static struct db *open_migrated(const char *name)
{
	struct db *db = NULL;
	char err[512];

	assert_int_equal(db_test_open(name, &db), 0);
	if (schema_migrate(db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	return db;
}

/* A second handle on test database name, as another process opens it. */
static struct db *open_again(const char *name, enum db_mode mode)
{
	struct db *db = NULL;
	char url[512], err[512];

	assert_int_equal(db_test_url(name, url, sizeof(url)), 0);
	assert_int_equal(db_open(url, mode, &db, err, sizeof(err)), 0);
	assert_int_equal(schema_migrate(db, err, sizeof(err)), 0);
	return db;
}

static void fill(struct counters *a, struct counters *b)
{
	memset(a, 0, sizeof(*a));
	memset(b, 0, sizeof(*b));
	a->received = 10;
	a->stored = 7;
	a->samples_stored = 70;
	a->duplicates = 1;
	a->rejected[REJECT_MALFORMED] = 2;
	a->offers_sent = 3;
	a->offers_failed = 1;
	a->acks_sent = 6;
	a->events = 4;
	a->events_unknown = 2;
	a->status = 5;
	b->received = 1;
	b->rejected[REJECT_STORAGE] = 1;
	b->stored = (uint64_t)1 << 40; /* more than 32 bits */
}

static void test_save_load_list(void **state)
{
	struct db *db = open_migrated("counters");
	struct counters a, b, got;
	struct counters_instance *rows = NULL;
	size_t n = 0;
	int more = -1;

	(void)state;
	fill(&a, &b);
	memset(&got, 0xff, sizeof(got));
	assert_int_equal(counters_load(db, "gw-a", &got), 0); /* unknown: zeroes */
	assert_int_equal(got.received, 0);
	assert_int_equal(got.rejected[REJECT_STORAGE], 0);
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(counters_save(db, "gw-b", &b, 2000), 0);
	assert_int_equal(counters_save(db, "gw-a", &a, 1000), 0);
	assert_int_equal(db_commit(db), 0);
	db_close(db);

	/* another handle (another process, a restart) reads them back */
	db = open_again("counters", DB_READ_WRITE);
	assert_int_equal(counters_load(db, "gw-a", &got), 0);
	assert_memory_equal(&got, &a, sizeof(a));
	assert_int_equal(counters_list(db, &rows, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_int_equal(more, 0);
	assert_string_equal(rows[0].id, "gw-a");
	assert_int_equal(rows[0].updated_at_ms, 1000);
	assert_memory_equal(&rows[0].c, &a, sizeof(a));
	assert_string_equal(rows[1].id, "gw-b");
	assert_int_equal(rows[1].updated_at_ms, 2000);
	assert_memory_equal(&rows[1].c, &b, sizeof(b));
	free(rows);

	/* saving again replaces the values; on its own, without a transaction */
	a.received = 11;
	a.rejected[REJECT_MALFORMED] = 0;
	assert_int_equal(counters_save(db, "gw-a", &a, 3000), 0);
	assert_int_equal(counters_load(db, "gw-a", &got), 0);
	assert_memory_equal(&got, &a, sizeof(a));

	/* a save in a transaction that is rolled back leaves the old values */
	assert_int_equal(db_begin(db), 0);
	b.received = 99;
	assert_int_equal(counters_save(db, "gw-b", &b, 4000), 0);
	assert_int_equal(counters_save(db, "gw-c", &b, 4000), 0);
	assert_int_equal(db_rollback(db), 0);
	assert_int_equal(counters_load(db, "gw-b", &got), 0);
	assert_int_equal(got.received, 1);
	assert_int_equal(counters_list(db, &rows, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].updated_at_ms, 3000);
	free(rows);
	db_close(db);
}

static void test_newer_names_ignored(void **state)
{
	struct db *db = open_migrated("counters_newer");
	struct counters a, b, got;
	struct counters_instance *rows = NULL;
	size_t n = 0;
	int more = -1;

	(void)state;
	fill(&a, &b);
	assert_int_equal(counters_save(db, "gw-a", &a, 1000), 0);
	/* a newer gateway saved a counter this one does not know */
	assert_int_equal(db_exec(db, "INSERT INTO counters(instance, name, value, updated_ms)"
				     " VALUES('gw-a', 'teleported', 5, 1500)"),
			 0);
	assert_int_equal(counters_load(db, "gw-a", &got), 0);
	assert_memory_equal(&got, &a, sizeof(a));
	assert_int_equal(counters_list(db, &rows, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(&rows[0].c, &a, sizeof(a));
	assert_int_equal(rows[0].updated_at_ms, 1500);
	free(rows);

	/* a read-only handle (pitstopctl) lists them too */
	{
		struct db *ro = open_again("counters_newer", DB_READ_ONLY);

		assert_int_equal(counters_load(ro, "gw-a", &got), 0);
		assert_memory_equal(&got, &a, sizeof(a));
		assert_int_equal(counters_save(ro, "gw-a", &a, 2000), -EROFS);
		db_close(ro);
	}
	db_close(db);
}

struct each_ctx {
	char names[64][64];
	uint64_t values[64];
	size_t n;
};

static void collect(const char *name, uint64_t value, void *arg)
{
	struct each_ctx *x = arg;

	assert_true(x->n < 64);
	snprintf(x->names[x->n], sizeof(x->names[0]), "%s", name);
	x->values[x->n++] = value;
}

static void test_names_each_add(void **state)
{
	struct counters a, b;
	struct each_ctx x;
	size_t plain = 0;

	(void)state;
#define X(field, help) plain++;
	COUNTERS_PLAIN(X)
#undef X
	fill(&a, &b);
	memset(&x, 0, sizeof(x));
	counters_each(&a, collect, &x);
	assert_int_equal(x.n, plain + REJECT_COUNT + TELEMETRY_IMPL_COUNT);
	assert_string_equal(x.names[0], "received");
	assert_int_equal(x.values[0], 10);
	assert_string_equal(x.names[1], "stored");
	assert_string_equal(x.names[plain], "rejected.bad_topic");
	assert_string_equal(x.names[plain + REJECT_MALFORMED], "rejected.malformed");
	assert_int_equal(x.values[plain + REJECT_MALFORMED], 2);
	assert_string_equal(x.names[plain + REJECT_COUNT - 1], "rejected.backlog");
	assert_string_equal(x.names[plain + REJECT_COUNT + TELEMETRY_IMPL_FUTURE],
			    "implausible.future");
	assert_string_equal(x.names[x.n - 1], "implausible.odometer_jump");
	for (size_t i = 0; i < x.n; i++)
		for (size_t j = i + 1; j < x.n; j++)
			assert_string_not_equal(x.names[i], x.names[j]);

	counters_add(&a, &b);
	assert_int_equal(a.received, 11);
	assert_int_equal(a.stored, 7 + ((uint64_t)1 << 40));
	assert_int_equal(a.rejected[REJECT_STORAGE], 1);
	assert_int_equal(a.rejected[REJECT_MALFORMED], 2);
	assert_int_equal(a.events_unknown, 2);
	a.implausible[TELEMETRY_IMPL_SPEED] = 3;
	b.implausible[TELEMETRY_IMPL_SPEED] = 4;
	counters_add(&a, &b);
	assert_int_equal(a.implausible[TELEMETRY_IMPL_SPEED], 7);

	assert_string_equal(counters_reject_name(REJECT_BAD_TOPIC), "bad_topic");
	assert_string_equal(counters_reject_name(REJECT_BAD_VIN), "bad_vin");
	assert_string_equal(counters_reject_name(REJECT_OVERSIZED), "oversized");
	assert_string_equal(counters_reject_name(REJECT_STORAGE), "storage");
	assert_null(counters_reject_name(REJECT_COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_save_load_list),
		cmocka_unit_test(test_newer_names_ignored),
		cmocka_unit_test(test_names_each_add),
	};

	fprintf(stderr, "counters tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
