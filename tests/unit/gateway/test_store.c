/*
 * Unit tests of the SQLite store (gateway/store_sqlite.c) through the store
 * interface: dedup of (VIN, seq), latest state by sample time, history
 * order, status, episodes, offers and their events, counters, savepoints,
 * read-only mode and backend selection. Each test uses its own database file
 * in a temp dir that is removed at exit.
 */
#include "gw_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"

static const char VIN1[] = "WDB1234561A000001";
static const char VIN2[] = "WDB1234561A000002";

static struct store *open_rw(const char *name)
{
	char path[512], err[256];
	struct store *s = NULL;

	gw_test_path(path, sizeof(path), name);
	assert_int_equal(store_open(path, STORE_READ_WRITE, &s, err, sizeof(err)), 0);
	return s;
}

/* Stores one batch in its own transaction; returns the duplicate flag. */
static int put(struct store *s, const char *vin, uint64_t seq, const struct sample *x, size_t n)
{
	int dup = -1;

	assert_int_equal(s->ops->begin(s), 0);
	assert_int_equal(s->ops->put_batch(s, vin, seq, x, n, 1, &dup), 0);
	if (!dup)
		assert_int_equal(s->ops->update_latest(s, vin, x, n), 0);
	assert_int_equal(s->ops->commit(s), 0);
	return dup;
}

static void test_duplicate_batch_stored_once(void **state)
{
	struct store *s = open_rw("dup.db");
	struct sample x[3] = { gw_sample(1000, 500, 0, 0), gw_sample(2000, 490, 0, 0),
			       gw_sample(3000, 480, 0, 0) };
	struct store_history_row *rows = NULL;
	size_t n = 0;

	assert_int_equal(put(s, VIN1, 7, x, 3), 0);
	assert_int_equal(put(s, VIN1, 7, x, 3), 1);
	assert_int_equal(put(s, VIN1, 7, x, 1), 1);	/* same (VIN, seq), other content */
	assert_int_equal(put(s, VIN2, 7, x, 3), 0);	/* same seq, other car */
	assert_int_equal(s->ops->vehicle_history(s, VIN1, 0, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].seq, 7);
	free(rows);
	store_close(s);
}

static void test_latest_not_overwritten_by_older(void **state)
{
	struct store *s = open_rw("latest.db");
	struct sample newer[2] = { gw_sample(5000, 300, 480000000, 110000000),
				   gw_sample(6000, 290, 480000100, 110000100) };
	struct sample older[1] = { gw_sample(1000, 900, 470000000, 100000000) };
	struct sample fuel_only = gw_sample(7000, 200, 0, 0);
	struct store_vehicle v;

	assert_int_equal(put(s, VIN1, 2, newer, 2), 0);
	assert_int_equal(put(s, VIN1, 1, older, 1), 0);	/* redelivered late */
	assert_int_equal(s->ops->vehicle_get(s, VIN1, &v), 0);
	assert_true(v.has_sample);
	assert_int_equal(v.time_ms, 6000);
	assert_int_equal(v.fuel_permille, 290);
	assert_int_equal(v.lat_e7, 480000100);
	assert_int_equal(v.online, STORE_ONLINE_UNKNOWN);

	/* A newer sample without position keeps the last known position. */
	fuel_only.present = SAMPLE_FUEL;
	assert_int_equal(put(s, VIN1, 3, &fuel_only, 1), 0);
	assert_int_equal(s->ops->vehicle_get(s, VIN1, &v), 0);
	assert_int_equal(v.time_ms, 7000);
	assert_int_equal(v.fuel_permille, 200);
	assert_true(v.present & SAMPLE_POSITION);
	assert_int_equal(v.lat_e7, 480000100);
	assert_int_equal(v.odometer_m, 60);	/* from t=6000 */
	assert_false(v.present & SAMPLE_SPEED);

	assert_int_equal(s->ops->vehicle_get(s, VIN2, &v), -ENOENT);
	store_close(s);
}

static void test_history_order_and_limit(void **state)
{
	struct store *s = open_rw("history.db");
	struct sample b1[2] = { gw_sample(3000, 300, 0, 0), gw_sample(4000, 290, 0, 0) };
	struct sample b2[2] = { gw_sample(1000, 500, 0, 0), gw_sample(2000, 400, 0, 0) };
	struct sample b3[1] = { gw_sample(5000, 280, 0, 0) };
	struct store_history_row *rows = NULL;
	size_t n = 0;

	put(s, VIN1, 2, b1, 2);
	put(s, VIN1, 1, b2, 2);
	put(s, VIN1, 3, b3, 1);
	assert_int_equal(s->ops->vehicle_history(s, VIN1, 0, &rows, &n), 0);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rows[i].s.time_ms, 1000 * (int64_t)(i + 1));
	assert_int_equal(rows[0].seq, 1);
	assert_int_equal(rows[2].seq, 2);
	assert_int_equal(rows[4].seq, 3);
	assert_int_equal(rows[0].s.fix, FIX_3D);
	assert_true(rows[0].s.present & SAMPLE_FUEL);
	assert_false(rows[0].s.present & SAMPLE_POSITION);
	free(rows);

	/* limit: the newest N, still oldest first */
	assert_int_equal(s->ops->vehicle_history(s, VIN1, 2, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].s.time_ms, 4000);
	assert_int_equal(rows[1].s.time_ms, 5000);
	free(rows);

	assert_int_equal(s->ops->vehicle_history(s, VIN2, 0, &rows, &n), -ENOENT);
	store_close(s);
}

static void test_status(void **state)
{
	struct store *s = open_rw("status.db");
	struct agent_status st = { .state = AGENT_ONLINE, .time_ms = 2000 };
	struct store_vehicle v;

	snprintf(st.agent_version, sizeof(st.agent_version), "1.2.3");
	assert_int_equal(s->ops->begin(s), 0);
	assert_int_equal(s->ops->put_status(s, VIN1, &st, 1), 0);
	st.state = AGENT_OFFLINE;
	st.time_ms = 1000;	/* older: ignored */
	assert_int_equal(s->ops->put_status(s, VIN1, &st, 2), 0);
	assert_int_equal(s->ops->commit(s), 0);
	assert_int_equal(s->ops->vehicle_get(s, VIN1, &v), 0);
	assert_false(v.has_sample);
	assert_int_equal(v.online, STORE_ONLINE);
	assert_string_equal(v.agent_version, "1.2.3");

	st.time_ms = 3000;
	assert_int_equal(s->ops->begin(s), 0);
	assert_int_equal(s->ops->put_status(s, VIN1, &st, 3), 0);
	assert_int_equal(s->ops->commit(s), 0);
	assert_int_equal(s->ops->vehicle_get(s, VIN1, &v), 0);
	assert_int_equal(v.online, STORE_OFFLINE);
	store_close(s);
}

static void test_episodes(void **state)
{
	struct store *s = open_rw("episodes.db");
	int open = -1;

	assert_int_equal(s->ops->episode_get(s, VIN1, "low_fuel", &open), 0);
	assert_int_equal(open, 0);
	assert_int_equal(s->ops->begin(s), 0);
	assert_int_equal(s->ops->episode_set(s, VIN1, "low_fuel", 1, 10), 0);
	assert_int_equal(s->ops->commit(s), 0);
	assert_int_equal(s->ops->episode_get(s, VIN1, "low_fuel", &open), 0);
	assert_int_equal(open, 1);
	assert_int_equal(s->ops->episode_get(s, VIN1, "other", &open), 0);
	assert_int_equal(open, 0);
	store_close(s);

	/* persisted */
	s = open_rw("episodes.db");
	assert_int_equal(s->ops->episode_get(s, VIN1, "low_fuel", &open), 0);
	assert_int_equal(open, 1);
	store_close(s);
}

static struct offer make_offer(const char *id, const char *vin)
{
	struct offer o;

	memset(&o, 0, sizeof(o));
	snprintf(o.id, sizeof(o.id), "%s", id);
	snprintf(o.vin, sizeof(o.vin), "%s", vin);
	o.kind = OFFER_REFUEL;
	snprintf(o.title, sizeof(o.title), "Fuel low");
	snprintf(o.promo_code, sizeof(o.promo_code), "FUEL-ABC234");
	o.valid_from_ms = 1000;
	o.valid_until_ms = 3601000;
	return o;
}

static enum store_offer_state offer_state(struct store *s, const char *vin, const char *id)
{
	struct store_offer_row *rows = NULL;
	size_t n = 0;
	enum store_offer_state st = (enum store_offer_state)-1;

	assert_int_equal(s->ops->offer_list(s, vin, &rows, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].id, id) == 0)
			st = rows[i].state;
	free(rows);
	return st;
}

static void test_offers_and_events(void **state)
{
	struct store *s = open_rw("offers.db");
	struct offer o1 = make_offer("aa01", VIN1), o2 = make_offer("aa02", VIN1);
	struct offer_event ev = { .time_ms = 5000, .action = OFFER_ACTION_SHOWN };
	struct store_offer_row *rows = NULL;
	size_t n = 0;

	assert_int_equal(s->ops->begin(s), 0);
	assert_int_equal(s->ops->offer_put(s, &o1, 100), 0);
	assert_int_equal(s->ops->offer_put(s, &o2, 200), 0);
	assert_int_equal(s->ops->offer_put(s, &o1, 300), -EEXIST);
	assert_int_equal(s->ops->commit(s), 0);

	assert_int_equal(s->ops->offer_list(s, VIN1, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, "aa01");
	assert_int_equal(rows[0].kind, OFFER_REFUEL);
	assert_string_equal(rows[0].promo_code, "FUEL-ABC234");
	assert_int_equal(rows[0].valid_until_ms, 3601000);
	assert_int_equal(rows[0].created_ms, 100);
	assert_int_equal(rows[0].state, STORE_OFFER_SENT);
	free(rows);

	assert_int_equal(s->ops->begin(s), 0);
	snprintf(ev.offer_id, sizeof(ev.offer_id), "aa01");
	assert_int_equal(s->ops->offer_event(s, VIN1, &ev, 1), 0);
	assert_int_equal(s->ops->offer_event(s, VIN1, &ev, 2), 0);	/* redelivered */
	assert_int_equal(offer_state(s, VIN1, "aa01"), STORE_OFFER_SHOWN);
	ev.action = OFFER_ACTION_ACCEPTED;
	ev.time_ms = 6000;
	assert_int_equal(s->ops->offer_event(s, VIN1, &ev, 3), 0);
	assert_int_equal(offer_state(s, VIN1, "aa01"), STORE_OFFER_ACCEPTED);
	/* a late "shown" does not move it back */
	ev.action = OFFER_ACTION_SHOWN;
	ev.time_ms = 5500;
	assert_int_equal(s->ops->offer_event(s, VIN1, &ev, 4), 0);
	assert_int_equal(offer_state(s, VIN1, "aa01"), STORE_OFFER_ACCEPTED);
	/* rejected with a reason */
	snprintf(ev.offer_id, sizeof(ev.offer_id), "aa02");
	ev.action = OFFER_ACTION_REJECTED;
	snprintf(ev.reason, sizeof(ev.reason), "bad signature");
	assert_int_equal(s->ops->offer_event(s, VIN1, &ev, 5), 0);
	assert_int_equal(offer_state(s, VIN1, "aa02"), STORE_OFFER_REJECTED);
	/* unknown offer, or another car's offer */
	snprintf(ev.offer_id, sizeof(ev.offer_id), "nope");
	assert_int_equal(s->ops->offer_event(s, VIN1, &ev, 6), -ENOENT);
	snprintf(ev.offer_id, sizeof(ev.offer_id), "aa01");
	assert_int_equal(s->ops->offer_event(s, VIN2, &ev, 7), -ENOENT);
	assert_int_equal(s->ops->commit(s), 0);
	assert_int_equal(offer_state(s, VIN1, "aa01"), STORE_OFFER_ACCEPTED);
	store_close(s);
}

static void test_counters_save_load(void **state)
{
	struct store *s = open_rw("counters.db");
	struct store_counters a, b, got;
	struct store_instance *rows = NULL;
	size_t n = 0;

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.received = 10;
	a.stored = 7;
	a.samples_stored = 70;
	a.duplicates = 1;
	a.rejected[STORE_REJECT_MALFORMED] = 2;
	a.offers_sent = 3;
	a.offers_failed = 1;
	a.events = 4;
	a.status = 5;
	b.received = 1;
	b.rejected[STORE_REJECT_STORAGE] = 1;

	assert_int_equal(s->ops->counters_load(s, "gw-a", &got), 0);
	assert_int_equal(got.received, 0);
	assert_int_equal(s->ops->begin(s), 0);
	assert_int_equal(s->ops->counters_save(s, "gw-a", &a, 1000), 0);
	assert_int_equal(s->ops->counters_save(s, "gw-b", &b, 2000), 0);
	assert_int_equal(s->ops->commit(s), 0);
	store_close(s);

	s = open_rw("counters.db");
	assert_int_equal(s->ops->counters_load(s, "gw-a", &got), 0);
	assert_memory_equal(&got, &a, sizeof(a));
	assert_int_equal(s->ops->counters_list(s, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, "gw-a");
	assert_int_equal(rows[0].updated_at_ms, 1000);
	assert_memory_equal(&rows[0].c, &a, sizeof(a));
	assert_string_equal(rows[1].id, "gw-b");
	assert_memory_equal(&rows[1].c, &b, sizeof(b));
	free(rows);
	store_close(s);
}

static void test_savepoint_rollback(void **state)
{
	struct store *s = open_rw("savepoint.db");
	struct sample x = gw_sample(1000, 500, 0, 0);
	struct store_history_row *rows = NULL;
	size_t n = 0;
	int dup;

	assert_int_equal(s->ops->begin(s), 0);
	assert_int_equal(s->ops->begin(s), -EBUSY);
	assert_int_equal(s->ops->savepoint(s), 0);
	assert_int_equal(s->ops->put_batch(s, VIN1, 1, &x, 1, 1, &dup), 0);
	assert_int_equal(s->ops->release(s), 0);
	assert_int_equal(s->ops->savepoint(s), 0);
	x.time_ms = 2000;
	assert_int_equal(s->ops->put_batch(s, VIN1, 2, &x, 1, 1, &dup), 0);
	assert_int_equal(s->ops->rollback_to(s), 0);
	assert_int_equal(s->ops->commit(s), 0);
	assert_int_equal(s->ops->vehicle_history(s, VIN1, 0, &rows, &n), 0);
	assert_int_equal(n, 1);
	free(rows);

	/* a rolled back transaction leaves nothing */
	assert_int_equal(s->ops->begin(s), 0);
	assert_int_equal(s->ops->put_batch(s, VIN1, 3, &x, 1, 1, &dup), 0);
	assert_int_equal(s->ops->rollback(s), 0);
	assert_int_equal(s->ops->vehicle_history(s, VIN1, 0, &rows, &n), 0);
	assert_int_equal(n, 1);
	free(rows);
	store_close(s);
}

static void test_read_only_and_backends(void **state)
{
	char path[512], url[600], err[256];
	struct store *s = open_rw("ro.db"), *ro = NULL;
	struct sample x = gw_sample(1000, 500, 0, 0);
	struct store_vehicle v;
	int dup;

	put(s, VIN1, 1, &x, 1);
	gw_test_path(path, sizeof(path), "ro.db");
	snprintf(url, sizeof(url), "sqlite:%s", path);
	assert_int_equal(store_open(url, STORE_READ_ONLY, &ro, err, sizeof(err)), 0);
	assert_string_equal(ro->ops->name, "sqlite");
	assert_int_equal(ro->ops->vehicle_get(ro, VIN1, &v), 0);
	assert_int_equal(v.fuel_permille, 500);
	assert_int_equal(ro->ops->begin(ro), -EROFS);
	assert_int_equal(ro->ops->put_batch(ro, VIN1, 2, &x, 1, 1, &dup), -EROFS);
	/* the reader sees the writer's later commits */
	x.time_ms = 2000;
	x.fuel_permille = 400;
	put(s, VIN1, 2, &x, 1);
	assert_int_equal(ro->ops->vehicle_get(ro, VIN1, &v), 0);
	assert_int_equal(v.fuel_permille, 400);
	store_close(ro);
	store_close(s);

	gw_test_path(path, sizeof(path), "missing.db");
	assert_int_equal(store_open(path, STORE_READ_ONLY, &ro, err, sizeof(err)), -ENOENT);
	assert_int_equal(store_open("postgresql://gw@localhost/pitstop", STORE_READ_WRITE, &ro,
				    err, sizeof(err)),
			 -ENOTSUP);
	assert_non_null(strstr(err, "PostgreSQL"));
	assert_int_equal(store_open("mysql://x", STORE_READ_WRITE, &ro, err, sizeof(err)),
			 -ENOTSUP);
	assert_int_equal(store_open("", STORE_READ_WRITE, &ro, err, sizeof(err)), -EINVAL);
	store_close(NULL);
}

static void test_schema_version(void **state)
{
	char path[512], err[256];
	struct store *s = NULL;
	sqlite3 *db;

	gw_test_path(path, sizeof(path), "newer.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(path, STORE_READ_WRITE, &s, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "newer"));

	/* a database that is not ours is refused read-only, not created */
	gw_test_path(path, sizeof(path), "empty.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(path, STORE_READ_ONLY, &s, err, sizeof(err)), -EPROTO);

	/* reopening a current database works and keeps the version */
	s = open_rw("v1.db");
	store_close(s);
	s = open_rw("v1.db");
	store_close(s);
	gw_test_path(path, sizeof(path), "v1.db");
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	{
		sqlite3_stmt *st;

		assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 1);
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
}

static void test_names(void **state)
{
	assert_string_equal(store_reject_name(STORE_REJECT_BAD_TOPIC), "bad_topic");
	assert_string_equal(store_reject_name(STORE_REJECT_STORAGE), "storage");
	assert_null(store_reject_name(STORE_REJECT_COUNT));
	assert_string_equal(store_offer_state_name(STORE_OFFER_DISMISSED), "dismissed");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duplicate_batch_stored_once),
		cmocka_unit_test(test_latest_not_overwritten_by_older),
		cmocka_unit_test(test_history_order_and_limit),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_episodes),
		cmocka_unit_test(test_offers_and_events),
		cmocka_unit_test(test_counters_save_load),
		cmocka_unit_test(test_savepoint_rollback),
		cmocka_unit_test(test_read_only_and_backends),
		cmocka_unit_test(test_schema_version),
		cmocka_unit_test(test_names),
	};

	gw_test_dir_make();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
