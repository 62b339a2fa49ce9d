/*
 * Unit tests of the telemetry domain (gateway/telemetry/telemetry.c) on
 * whichever backend db_test_util.h selects (SQLite, or PostgreSQL when
 * PITSTOP_TEST_PG_URL is set), migrated the way the gateway migrates
 * (schema_migrate()): batches identified by (VIN, epoch, seq) and stored
 * once, the latest state by sample time, history order, range and limit,
 * status, the vehicle list, its pages and filters (seen, low fuel, a VIN set), the daily rollups (distance,
 * driving time, refuels, midnight), savepoints and rollbacks, and a
 * read-only second handle.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec.h"
#include "db.h"
#include "schema.h"
#include "telemetry.h"

static const char VIN1[] = "WDB1234561A000001";
static const char VIN2[] = "WDB1234561A000002";
static const char VIN3[] = "WDB1234561A000003";

/* Queue epochs; E2 has its top bit set (stored as a negative int64). */
#define E1 0x1122334455667788ULL
#define E2 0xfedcba9876543210ULL

#define DAY_MS 86400000LL
/* A UTC day (2023-11-14) and its midnight. */
#define D0 19675LL
#define T0 (D0 * DAY_MS)

struct fixture {
	char name[64];
	struct db *db;
	struct telemetry *t;
};

/* A fresh database called name with every domain's tables, as the gateway has it. */
static struct db *open_migrated(const char *name)
{
	struct db *db = NULL;
	char err[512];

	assert_int_equal(db_test_open(name, &db), 0);
	if (schema_migrate(db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	return db;
}

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->name, sizeof(f->name), "telemetry_%d", count++);
	f->db = open_migrated(f->name);
	assert_int_equal(telemetry_new(f->db, &f->t), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	telemetry_free(f->t);
	db_close(f->db);
	free(f);
	return 0;
}

/* Stores batch (vin, epoch, seq) of x[n] as the car encodes it, inside the open transaction. */
static int put_in_tx(struct fixture *f, const char *vin, uint64_t epoch, uint64_t seq,
		     const struct sample *x, size_t n, struct telemetry_vehicle *ret_v)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	assert_int_equal(codec_encode_batch(epoch, seq, x, n, &buf, &len), 0);
	r = telemetry_put_batch(f->t, vin, epoch, seq, buf, len, x, n, 42, ret_v);
	free(buf);
	return r;
}

/*
 * Stores a batch in its own transaction. Returns 1 (new) or 0 (already
 * stored); the latest state goes to *ret_v when it is not NULL.
 */
static int put(struct fixture *f, const char *vin, uint64_t epoch, uint64_t seq,
	       const struct sample *x, size_t n, struct telemetry_vehicle *ret_v)
{
	int r;

	assert_int_equal(db_begin(f->db), 0);
	r = put_in_tx(f, vin, epoch, seq, x, n, ret_v);
	assert_true(r == 0 || r == 1);
	assert_int_equal(db_commit(f->db), 0);
	return r;
}

/* Every sample of vin, oldest first; the count is returned, rows freed by the caller. */
static size_t history(struct fixture *f, const char *vin, int64_t from, int64_t to, size_t limit,
		      struct telemetry_sample **ret_rows)
{
	size_t n = 99;
	int truncated = -1;

	*ret_rows = NULL;
	assert_int_equal(telemetry_history(f->t, vin, from, to, limit, ret_rows, &n, &truncated),
			 0);
	assert_int_equal(truncated, 0);
	if (n == 0)
		assert_null(*ret_rows);
	return n;
}

static size_t history_all(struct fixture *f, const char *vin, struct telemetry_sample **ret_rows)
{
	return history(f, vin, INT64_MIN, INT64_MAX, 0, ret_rows);
}

/* The rollup of vin for one day (which must exist). */
static struct telemetry_day day_of(struct fixture *f, const char *vin, int64_t day)
{
	struct telemetry_day *rows = NULL, d;
	size_t n = 0;
	int truncated = -1;

	assert_int_equal(telemetry_days(f->t, vin, day, day, &rows, &n, &truncated), 0);
	assert_int_equal(n, 1);
	assert_int_equal(truncated, 0);
	d = rows[0];
	free(rows);
	assert_int_equal(d.day, day);
	return d;
}

/* A sample at t with odometer odo, fuel and a speed (cm/s; < 0: none). */
static struct sample drive(int64_t t, int64_t odo, int32_t fuel, int32_t speed)
{
	struct sample s = gw_sample(t, fuel, 0, 0);

	s.odometer_m = odo;
	if (speed >= 0) {
		s.present |= SAMPLE_SPEED;
		s.speed_cms = speed;
	}
	return s;
}

static void test_duplicate_batch_stored_once(void **state)
{
	struct fixture *f = *state;
	struct sample x[3] = { gw_sample(1000, 500, 0, 0), gw_sample(2000, 490, 0, 0),
			       gw_sample(3000, 480, 0, 0) };
	struct sample y[2] = { gw_sample(4000, 470, 0, 0), gw_sample(5000, 460, 0, 0) };
	struct telemetry_sample *rows = NULL;
	struct telemetry_vehicle v;

	assert_int_equal(put(f, VIN1, E1, 7, x, 3, &v), 1);
	assert_string_equal(v.vin, VIN1);
	assert_int_equal(v.batches, 1);
	assert_int_equal(v.samples, 3);
	assert_int_equal(put(f, VIN1, E1, 7, x, 3, &v), 0);
	assert_int_equal(put(f, VIN1, E1, 7, x, 1, NULL), 0); /* same identity, other content */
	assert_int_equal(put(f, VIN2, E1, 7, x, 3, NULL), 1); /* same seq, other car */
	assert_int_equal(put(f, VIN2, 0, 7, x, 3, NULL), 1);  /* a pre-epoch car's seq 7 */
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.batches, 1);
	assert_int_equal(v.samples, 3);

	/* The car was wiped: a new epoch, seq 7 again, is new data. */
	assert_int_equal(put(f, VIN1, E2, 7, y, 2, &v), 1);
	assert_int_equal(v.batches, 2);
	assert_int_equal(v.samples, 5);
	assert_int_equal(v.time_ms, 5000);
	assert_int_equal(put(f, VIN1, E2, 7, y, 2, NULL), 0);

	assert_int_equal(history_all(f, VIN1, &rows), 5);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(rows[i].s.time_ms, 1000 * (int64_t)(i + 1));
		assert_int_equal(rows[i].seq, 7);
		assert_true(rows[i].epoch == (i < 3 ? E1 : E2)); /* the full 64 bits */
	}
	assert_int_equal(rows[0].s.fuel_permille, 500); /* the first content, not the second */
	free(rows);
	assert_int_equal(history_all(f, VIN2, &rows), 6);
	free(rows);

	/* an empty batch is refused, before anything is read from it */
	assert_int_equal(telemetry_put_batch(f->t, VIN1, E1, 8, NULL, 0, NULL, 0, 1, NULL),
			 -EINVAL);
	telemetry_free(NULL);
}

static void test_latest_not_overwritten_by_older(void **state)
{
	struct fixture *f = *state;
	struct sample newer[2] = { gw_sample(5000, 300, 480000000, 110000000),
				   gw_sample(6000, 290, 480000100, 110000100) };
	struct sample older[1] = { gw_sample(1000, 900, 470000000, 100000000) };
	struct sample fuel_only = gw_sample(7000, 200, 0, 0);
	struct telemetry_vehicle v, got;

	newer[1].present |= SAMPLE_SPEED | SAMPLE_HEADING;
	newer[1].speed_cms = 1500;
	newer[1].heading_cdeg = 9000;
	older[0].present |= SAMPLE_SPEED;
	older[0].speed_cms = 100;
	assert_int_equal(put(f, VIN1, E1, 2, newer, 2, &v), 1);
	assert_int_equal(put(f, VIN1, E1, 1, older, 1, &v), 1); /* redelivered late */
	/* the state put_batch returns is the stored one */
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &got), 0);
	assert_memory_equal(&v, &got, sizeof(v));
	assert_true(v.has_sample);
	assert_int_equal(v.time_ms, 6000);
	assert_int_equal(v.fix, FIX_3D);
	assert_int_equal(v.fuel_permille, 290);
	assert_int_equal(v.fuel_ms, 6000);
	assert_int_equal(v.lat_e7, 480000100);
	assert_int_equal(v.lon_e7, 110000100);
	assert_int_equal(v.speed_cms, 1500);
	assert_int_equal(v.heading_cdeg, 9000);
	assert_int_equal(v.odometer_m, 60);
	assert_int_equal(v.online, TELEMETRY_ONLINE_UNKNOWN);
	assert_int_equal(v.status_time_ms, 0);
	assert_int_equal(v.batches, 2);
	assert_int_equal(v.samples, 3);

	/* A newer sample without position keeps the last known position. */
	fuel_only.present = SAMPLE_FUEL;
	assert_int_equal(put(f, VIN1, E1, 3, &fuel_only, 1, &v), 1);
	assert_int_equal(v.time_ms, 7000);
	assert_int_equal(v.fuel_permille, 200);
	assert_int_equal(v.fuel_ms, 7000);
	assert_true(v.present & SAMPLE_POSITION);
	assert_int_equal(v.lat_e7, 480000100);
	assert_int_equal(v.lon_e7, 110000100);
	assert_true(v.present & SAMPLE_ODOMETER);
	assert_int_equal(v.odometer_m, 60); /* from t=6000 */
	assert_true(v.present & SAMPLE_SPEED);
	assert_int_equal(v.speed_cms, 1500); /* from t=6000, not the late t=1000 */
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &got), 0);
	assert_memory_equal(&v, &got, sizeof(v));

	/* a car that never sent speed has none */
	assert_int_equal(put(f, VIN2, E1, 1, &fuel_only, 1, &v), 1);
	assert_false(v.present & (SAMPLE_SPEED | SAMPLE_POSITION | SAMPLE_ODOMETER));
	assert_int_equal(telemetry_vehicle_get(f->t, VIN3, &v), -ENOENT);
}

static void test_history_order_range_and_limit(void **state)
{
	struct fixture *f = *state;
	struct sample b1[2] = { gw_sample(3000, 300, 0, 0), gw_sample(4000, 290, 0, 0) };
	struct sample b2[2] = { gw_sample(1000, 500, 0, 0), gw_sample(2000, 400, 0, 0) };
	struct sample b3[1] = { gw_sample(5000, 280, 0, 0) };
	struct sample tie = gw_sample(5000, 270, 0, 0);
	struct telemetry_sample *rows = NULL;
	size_t n = 0;
	int truncated = 0;

	put(f, VIN1, E1, 2, b1, 2, NULL);
	put(f, VIN1, E1, 1, b2, 2, NULL);
	put(f, VIN1, E1, 3, b3, 1, NULL);
	assert_int_equal(history_all(f, VIN1, &rows), 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(rows[i].s.time_ms, 1000 * (int64_t)(i + 1));
	assert_int_equal(rows[0].seq, 1);
	assert_int_equal(rows[2].seq, 2);
	assert_int_equal(rows[4].seq, 3);
	assert_int_equal(rows[0].s.fix, FIX_3D);
	assert_int_equal(rows[0].s.fuel_permille, 500);
	assert_true(rows[0].s.present & SAMPLE_FUEL);
	assert_false(rows[0].s.present & SAMPLE_POSITION);
	free(rows);

	/* limit: the newest N, still oldest first; more than there are: all */
	assert_int_equal(history(f, VIN1, INT64_MIN, INT64_MAX, 2, &rows), 2);
	assert_int_equal(rows[0].s.time_ms, 4000);
	assert_int_equal(rows[1].s.time_ms, 5000);
	free(rows);
	assert_int_equal(history(f, VIN1, INT64_MIN, INT64_MAX, 10, &rows), 5);
	free(rows);

	/* range: from_ms <= t <= to_ms, both ends included, across batches */
	assert_int_equal(history(f, VIN1, 2000, 4000, 0, &rows), 3);
	assert_int_equal(rows[0].s.time_ms, 2000);
	assert_int_equal(rows[1].s.time_ms, 3000);
	assert_int_equal(rows[2].s.time_ms, 4000);
	free(rows);
	assert_int_equal(history(f, VIN1, 2001, 3999, 0, &rows), 1);
	assert_int_equal(rows[0].s.time_ms, 3000);
	free(rows);
	/* range and limit: the newest N inside the range */
	assert_int_equal(history(f, VIN1, 1000, 4000, 2, &rows), 2);
	assert_int_equal(rows[0].s.time_ms, 3000);
	assert_int_equal(rows[1].s.time_ms, 4000);
	free(rows);
	assert_int_equal(history(f, VIN1, 6000, 9000, 0, &rows), 0);
	assert_int_equal(history(f, VIN1, 5000, 5000, 0, &rows), 1);
	free(rows);

	/* equal times: by epoch, then seq */
	put(f, VIN1, E1, 9, &tie, 1, NULL);
	put(f, VIN1, E2, 1, &tie, 1, NULL);
	assert_int_equal(history(f, VIN1, 5000, 5000, 0, &rows), 3);
	assert_true(rows[0].epoch == E1 && rows[0].seq == 3);
	assert_true(rows[1].epoch == E1 && rows[1].seq == 9);
	assert_true(rows[2].epoch == E2 && rows[2].seq == 1);
	free(rows);
	assert_int_equal(history(f, VIN1, INT64_MIN, INT64_MAX, 1, &rows), 1);
	assert_true(rows[0].epoch == E2 && rows[0].seq == 1);
	free(rows);

	assert_int_equal(telemetry_history(f->t, VIN2, 0, INT64_MAX, 0, &rows, &n, &truncated),
			 -ENOENT);
}

static void test_status(void **state)
{
	struct fixture *f = *state;
	struct agent_status st = { .state = AGENT_ONLINE, .time_ms = 2000 };
	struct sample x = gw_sample(1000, 500, 0, 0);
	struct telemetry_vehicle v;

	snprintf(st.agent_version, sizeof(st.agent_version), "1.2.3");
	st.has_queue_depth = 1;
	st.queue_depth = 12;
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(telemetry_put_status(f->t, VIN1, &st, 1, NULL), 0);
	st.state = AGENT_OFFLINE;
	st.time_ms = 1000; /* older: changes nothing */
	snprintf(st.agent_version, sizeof(st.agent_version), "0.9.0");
	assert_int_equal(telemetry_put_status(f->t, VIN1, &st, 2, NULL), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_false(v.has_sample);
	assert_int_equal(v.online, TELEMETRY_ONLINE);
	assert_int_equal(v.status_time_ms, 2000);
	assert_string_equal(v.agent_version, "1.2.3");
	assert_int_equal(v.batches, 0);

	/* telemetry after status keeps the status, and the other way round */
	assert_int_equal(put(f, VIN1, E1, 1, &x, 1, &v), 1);
	assert_true(v.has_sample);
	assert_int_equal(v.online, TELEMETRY_ONLINE);
	assert_string_equal(v.agent_version, "1.2.3");

	st.time_ms = 3000;
	st.has_queue_depth = 0;
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(telemetry_put_status(f->t, VIN1, &st, 3, NULL), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.online, TELEMETRY_OFFLINE);
	assert_int_equal(v.status_time_ms, 3000);
	assert_string_equal(v.agent_version, "0.9.0");
	assert_true(v.has_sample);
	assert_int_equal(v.time_ms, 1000);
	assert_int_equal(v.fuel_permille, 500);
}

/* telemetry_list() with only a page (after, limit). */
static int list_page(struct fixture *f, const char *after, size_t limit,
		     struct telemetry_vehicle **ret_rows, size_t *ret_n, int *ret_more)
{
	struct telemetry_list_filter lf = { .after_vin = after, .limit = limit };

	return telemetry_list(f->t, &lf, ret_rows, ret_n, ret_more);
}

static void test_list_pages(void **state)
{
	struct fixture *f = *state;
	static const char *const vins[] = { "WDB1234561A000004", "WDB1234561A000001",
					    "WDB1234561A000005", "WDB1234561A000003",
					    "WDB1234561A000002" };
	struct agent_status st = { .state = AGENT_ONLINE, .time_ms = 1 };
	struct sample x = gw_sample(1000, 500, 0, 0);
	struct telemetry_vehicle *rows = NULL;
	size_t n = 99;
	int more = -1;

	assert_int_equal(list_page(f, "", 10, &rows, &n, &more), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
	assert_int_equal(more, 0);

	/* three cars with telemetry, two with a status only */
	for (size_t i = 0; i < 5; i++) {
		if (i < 3) {
			put(f, vins[i], E1, 1, &x, 1, NULL);
			continue;
		}
		assert_int_equal(db_begin(f->db), 0);
		assert_int_equal(telemetry_put_status(f->t, vins[i], &st, 1, NULL), 0);
		assert_int_equal(db_commit(f->db), 0);
	}

	assert_int_equal(list_page(f, "", 2, &rows, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_int_equal(more, 1);
	assert_string_equal(rows[0].vin, "WDB1234561A000001");
	assert_true(rows[0].has_sample);
	assert_int_equal(rows[0].fuel_permille, 500);
	assert_string_equal(rows[1].vin, "WDB1234561A000002");
	assert_false(rows[1].has_sample);
	assert_int_equal(rows[1].online, TELEMETRY_ONLINE);
	free(rows);
	assert_int_equal(list_page(f, "WDB1234561A000002", 2, &rows, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_int_equal(more, 1);
	assert_string_equal(rows[0].vin, "WDB1234561A000003");
	assert_string_equal(rows[1].vin, "WDB1234561A000004");
	free(rows);
	/* the last page: exactly full is not "more" */
	assert_int_equal(list_page(f, "WDB1234561A000003", 2, &rows, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_int_equal(more, 0);
	assert_string_equal(rows[1].vin, "WDB1234561A000005");
	free(rows);
	assert_int_equal(list_page(f, "WDB1234561A000004", 2, &rows, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_int_equal(more, 0);
	free(rows);
	assert_int_equal(list_page(f, NULL, 5, &rows, &n, &more), 0);
	assert_int_equal(n, 5);
	assert_int_equal(more, 0);
	free(rows);

	assert_int_equal(list_page(f, "", 0, &rows, &n, &more), -EINVAL);
	assert_int_equal(list_page(f, "", TELEMETRY_LIST_MAX + 1, &rows, &n, &more), -EINVAL);
}

/* The VINs a filtered list returns, joined by ","; rows freed. */
static const char *list_vins(struct fixture *f, const struct telemetry_list_filter *lf,
			     int *ret_more)
{
	static char buf[2048];
	struct telemetry_vehicle *rows = NULL;
	size_t n = 99, len = 0;
	int more = -1;

	assert_int_equal(telemetry_list(f->t, lf, &rows, &n, &more), 0);
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i ? "," : "",
					rows[i].vin + 14);
	free(rows);
	if (ret_more)
		*ret_more = more;
	return buf;
}

/* Records a status of vin dated time_ms. */
static void status_at(struct fixture *f, const char *vin, enum agent_state s, int64_t time_ms)
{
	struct agent_status st = { .state = s, .time_ms = time_ms };

	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(telemetry_put_status(f->t, vin, &st, time_ms, NULL), 0);
	assert_int_equal(db_commit(f->db), 0);
}

static void test_list_filters(void **state)
{
	struct fixture *f = *state;
	/* 001: sample at T0+1h, fuel 12.0 %; 002: sample at T0, fuel 15.0 %, status at T0+2h;
	 * 003: status only, at T0+30min; 004: sample at T0+3h without fuel; 005: fuel 60 % */
	static const char *const V[] = { "WDB1234561A000001", "WDB1234561A000002",
					 "WDB1234561A000003", "WDB1234561A000004",
					 "WDB1234561A000005" };
	const int64_t H = 3600000;
	struct sample a = gw_sample(T0 + H, 120, 0, 0), b = gw_sample(T0, 150, 0, 0),
		      d = gw_sample(T0 + 3 * H, 0, 0, 0), e = gw_sample(T0 + 4 * H, 600, 0, 0);
	struct telemetry_list_filter lf = { .limit = 10 };
	struct telemetry_vehicle v, *rows = NULL;
	const char *vins[TELEMETRY_LIST_VINS_MAX + 1];
	char many[TELEMETRY_LIST_VINS_MAX][VIN_LEN + 1];
	size_t n;
	int more;

	a.odometer_m = b.odometer_m = d.odometer_m = e.odometer_m = 1000; /* t / 100 is too far */
	d.present &= ~SAMPLE_FUEL;
	put(f, V[0], E1, 1, &a, 1, NULL);
	put(f, V[1], E1, 1, &b, 1, NULL);
	status_at(f, V[1], AGENT_ONLINE, T0 + 2 * H);
	status_at(f, V[2], AGENT_OFFLINE, T0 + H / 2);
	put(f, V[3], E1, 1, &d, 1, NULL);
	put(f, V[4], E1, 1, &e, 1, NULL);
	assert_string_equal(list_vins(f, &lf, NULL), "001,002,003,004,005");

	/* seen: the newer of the newest sample and the status */
	assert_int_equal(telemetry_vehicle_get(f->t, V[0], &v), 0);
	assert_int_equal(v.seen_ms, T0 + H);
	assert_int_equal(telemetry_vehicle_get(f->t, V[1], &v), 0);
	assert_int_equal(v.seen_ms, T0 + 2 * H);
	assert_int_equal(telemetry_vehicle_get(f->t, V[2], &v), 0);
	assert_int_equal(v.seen_ms, T0 + H / 2);

	lf.seen_since_ms = T0 + H; /* at or after */
	assert_string_equal(list_vins(f, &lf, NULL), "001,002,004,005");
	lf.seen_before_ms = T0 + 3 * H; /* strictly before */
	assert_string_equal(list_vins(f, &lf, NULL), "001,002");
	lf.seen_since_ms = 0;
	assert_string_equal(list_vins(f, &lf, NULL), "001,002,003");
	lf.seen_before_ms = T0 + H / 2;
	assert_string_equal(list_vins(f, &lf, NULL), "");
	lf.seen_before_ms = 0;

	/* low fuel: a known level at or below the bound; no fuel is not low */
	lf.has_max_fuel = 1;
	lf.max_fuel_permille = 150;
	assert_string_equal(list_vins(f, &lf, NULL), "001,002");
	lf.max_fuel_permille = 149;
	assert_string_equal(list_vins(f, &lf, NULL), "001");
	lf.max_fuel_permille = 1000;
	assert_string_equal(list_vins(f, &lf, NULL), "001,002,005");
	lf.seen_since_ms = T0 + 2 * H; /* bounds combine */
	assert_string_equal(list_vins(f, &lf, NULL), "002,005");
	lf.seen_since_ms = 0;
	lf.has_max_fuel = 0;

	/* a VIN set: only those; unknown ones are not listed; empty lists none */
	vins[0] = V[4];
	vins[1] = "WDB1234561A000009";
	vins[2] = V[1];
	vins[3] = V[1];
	lf.vins = vins;
	lf.n_vins = 4;
	assert_string_equal(list_vins(f, &lf, NULL), "002,005");
	lf.n_vins = 0;
	assert_string_equal(list_vins(f, &lf, NULL), "");
	/* keyset pages over a filtered list: more counts matching rows only */
	lf.vins = NULL;
	lf.has_max_fuel = 1;
	lf.max_fuel_permille = 600;
	lf.limit = 2;
	assert_string_equal(list_vins(f, &lf, &more), "001,002");
	assert_int_equal(more, 1);
	lf.after_vin = V[1];
	assert_string_equal(list_vins(f, &lf, &more), "005");
	assert_int_equal(more, 0);
	lf.after_vin = V[0];
	lf.max_fuel_permille = 150;
	assert_string_equal(list_vins(f, &lf, &more), "002");
	assert_int_equal(more, 0);
	lf.after_vin = NULL;
	lf.has_max_fuel = 0;
	lf.limit = 10;

	/* the full set: the last placeholder binds too */
	for (size_t i = 0; i < TELEMETRY_LIST_VINS_MAX; i++) {
		snprintf(many[i], sizeof(many[i]), "WDB1234561B%06zu", i);
		vins[i] = many[i];
	}
	vins[TELEMETRY_LIST_VINS_MAX - 1] = V[2];
	lf.vins = vins;
	lf.n_vins = TELEMETRY_LIST_VINS_MAX;
	assert_string_equal(list_vins(f, &lf, NULL), "003");

	/* out of bounds */
	lf.n_vins = TELEMETRY_LIST_VINS_MAX + 1;
	vins[TELEMETRY_LIST_VINS_MAX] = V[0];
	assert_int_equal(telemetry_list(f->t, &lf, &rows, &n, &more), -EINVAL);
	lf.n_vins = 2;
	vins[1] = NULL;
	assert_int_equal(telemetry_list(f->t, &lf, &rows, &n, &more), -EINVAL);
	lf.vins = NULL;
	lf.has_max_fuel = 1;
	lf.max_fuel_permille = 1001;
	assert_int_equal(telemetry_list(f->t, &lf, &rows, &n, &more), -EINVAL);
	lf.max_fuel_permille = -1;
	assert_int_equal(telemetry_list(f->t, &lf, &rows, &n, &more), -EINVAL);
}

static void test_daily_rollup(void **state)
{
	struct fixture *f = *state;
	const int64_t a0 = T0 + 3600000, b0 = T0 + 7200000;
	static const int32_t b_fuel[7] = { 400, 398, 450, 600, 700, 699, 695 };
	struct sample a[10], b[7], c[2], late, small;
	struct telemetry_day d, before;

	/*
	 * A: 10 samples, 1 s apart but the last 130 s after the first;
	 * moving (>= 28 cm/s) at 2..6 and 8, too slow at 7; the last one
	 * moves but after a gap, which is not driving.
	 */
	for (int i = 0; i < 10; i++)
		a[i] = drive(i < 9 ? a0 + 1000 * i : a0 + 130000, 100000 + 10 * i, 500 - i,
			     i >= 2 && i <= 6 ? 1000
			     : i == 7	      ? 27
			     : i >= 8	      ? 28
					      : 0);
	assert_int_equal(put(f, VIN1, E1, 1, a, 10, NULL), 1);
	d = day_of(f, VIN1, D0);
	assert_int_equal(d.samples, 10);
	assert_true(d.has_odometer);
	assert_int_equal(d.first_odometer_m, 100000);
	assert_int_equal(d.last_odometer_m, 100090);
	assert_int_equal(d.distance_m, 90);
	assert_int_equal(d.driving_ms, 6000);
	assert_true(d.has_fuel);
	assert_int_equal(d.first_fuel_permille, 500);
	assert_int_equal(d.last_fuel_permille, 491);
	assert_int_equal(d.fuel_refuelled_permille, 0);
	assert_int_equal(d.fuel_used_permille, 9);

	/* B, later that day: a refuel inside the batch (398 -> 700; the dips at the top are noise) */
	for (int i = 0; i < 7; i++)
		b[i] = drive(b0 + 1000 * i, 200000 + 10 * i, b_fuel[i], -1);
	assert_int_equal(put(f, VIN1, E1, 2, b, 7, NULL), 1);
	d = day_of(f, VIN1, D0);
	assert_int_equal(d.samples, 17);
	assert_int_equal(d.distance_m, 100060);
	assert_int_equal(d.driving_ms, 6000);
	assert_int_equal(d.last_fuel_permille, 695);
	assert_int_equal(d.fuel_refuelled_permille, 302);
	assert_int_equal(d.fuel_used_permille, 500 - 695 + 302);

	/* a duplicate batch changes nothing */
	before = d;
	assert_int_equal(put(f, VIN1, E1, 2, b, 7, NULL), 0);
	d = day_of(f, VIN1, D0);
	assert_memory_equal(&d, &before, sizeof(d));

	/* C: refuelled while the agent was off: a rise across batches, in order */
	c[0] = drive(T0 + 10800000, 200100, 900, -1);
	c[1] = drive(T0 + 10801000, 200110, 899, -1);
	assert_int_equal(put(f, VIN1, E1, 3, c, 2, NULL), 1);
	d = day_of(f, VIN1, D0);
	assert_int_equal(d.samples, 19);
	assert_int_equal(d.fuel_refuelled_permille, 302 + 205);
	assert_int_equal(d.fuel_used_permille, 500 - 899 + 507);
	assert_int_equal(d.distance_m, 100110);

	/* a rise under 5 points is sensor noise, not a refuel */
	small = drive(T0 + 14400000, 200120, 930, -1);
	assert_int_equal(put(f, VIN1, E1, 4, &small, 1, NULL), 1);
	d = day_of(f, VIN1, D0);
	assert_int_equal(d.fuel_refuelled_permille, 507);
	assert_int_equal(d.last_fuel_permille, 930);
	assert_int_equal(d.fuel_used_permille, 500 - 930 + 507);

	/* an older batch arriving late moves the day's start, and is no refuel */
	late = drive(T0 + 1800000, 99000, 520, -1);
	assert_int_equal(put(f, VIN1, E1, 5, &late, 1, NULL), 1);
	d = day_of(f, VIN1, D0);
	assert_int_equal(d.samples, 21);
	assert_int_equal(d.first_odometer_m, 99000);
	assert_int_equal(d.last_odometer_m, 200120);
	assert_int_equal(d.distance_m, 200120 - 99000);
	assert_int_equal(d.first_fuel_permille, 520);
	assert_int_equal(d.last_fuel_permille, 930);
	assert_int_equal(d.fuel_refuelled_permille, 507);
	assert_int_equal(d.fuel_used_permille, 520 - 930 + 507);
}

static void test_daily_rollup_midnight(void **state)
{
	struct fixture *f = *state;
	const int64_t midnight = T0 + DAY_MS;
	struct sample x[4], s;
	struct telemetry_day *rows = NULL, d;
	size_t n = 0;
	int truncated = -1;

	/* One batch over midnight UTC, moving all along: split into two days. */
	for (int i = 0; i < 4; i++)
		x[i] = drive(midnight - 2000 + 1000 * i, 500 + 10 * i, 300 - i, 1000);
	assert_int_equal(put(f, VIN2, E1, 1, x, 4, NULL), 1);
	assert_int_equal(telemetry_days(f->t, VIN2, D0, D0 + 1, &rows, &n, &truncated), 0);
	assert_int_equal(n, 2);
	assert_int_equal(truncated, 0);
	assert_int_equal(rows[0].day, D0);
	assert_int_equal(rows[0].samples, 2);
	assert_int_equal(rows[0].first_odometer_m, 500);
	assert_int_equal(rows[0].last_odometer_m, 510);
	assert_int_equal(rows[0].distance_m, 10);
	assert_int_equal(rows[0].driving_ms, 2000);
	assert_int_equal(rows[0].first_fuel_permille, 300);
	assert_int_equal(rows[0].last_fuel_permille, 299);
	assert_int_equal(rows[0].fuel_used_permille, 1);
	assert_int_equal(rows[1].day, D0 + 1); /* midnight itself is the new day */
	assert_int_equal(rows[1].samples, 2);
	assert_int_equal(rows[1].first_odometer_m, 520);
	assert_int_equal(rows[1].last_odometer_m, 530);
	assert_int_equal(rows[1].distance_m, 10);
	assert_int_equal(rows[1].driving_ms, 2000);
	assert_int_equal(rows[1].fuel_used_permille, 1);
	free(rows);

	/* the range is inclusive; outside it, nothing */
	d = day_of(f, VIN2, D0 + 1);
	assert_int_equal(d.samples, 2);
	assert_int_equal(telemetry_days(f->t, VIN2, D0 + 2, D0 + 9, &rows, &n, &truncated), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
	assert_int_equal(telemetry_days(f->t, VIN1, D0, D0, &rows, &n, &truncated), -ENOENT);

	/* a day without odometer or fuel readings has neither */
	s = drive(T0 + 5000, 0, 0, 1000);
	s.present = SAMPLE_SPEED;
	assert_int_equal(put(f, VIN3, E1, 1, &s, 1, NULL), 1);
	d = day_of(f, VIN3, D0);
	assert_int_equal(d.samples, 1);
	assert_false(d.has_odometer);
	assert_int_equal(d.distance_m, 0);
	assert_false(d.has_fuel);
	assert_int_equal(d.fuel_used_permille, 0);
	assert_int_equal(d.driving_ms, 0); /* one sample alone stands for no interval */

	/* days are UTC and floor: before 1970 is negative */
	assert_int_equal(telemetry_day_of(0), 0);
	assert_int_equal(telemetry_day_of(DAY_MS - 1), 0);
	assert_int_equal(telemetry_day_of(DAY_MS), 1);
	assert_int_equal(telemetry_day_of(-1), -1);
	assert_int_equal(telemetry_day_of(-DAY_MS), -1);
	assert_int_equal(telemetry_day_of(-DAY_MS - 1), -2);
	assert_int_equal(telemetry_day_of(T0 + 1), D0);
}

static void test_savepoint_and_rollback(void **state)
{
	struct fixture *f = *state;
	struct sample x = gw_sample(1000, 500, 0, 0), y = gw_sample(2000, 400, 0, 0);
	struct telemetry_sample *rows = NULL;
	struct telemetry_vehicle v;

	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(db_begin(f->db), -EBUSY);
	assert_int_equal(db_savepoint(f->db), 0);
	assert_int_equal(put_in_tx(f, VIN1, E1, 1, &x, 1, NULL), 1);
	assert_int_equal(db_release(f->db), 0);
	assert_int_equal(db_savepoint(f->db), 0);
	assert_int_equal(put_in_tx(f, VIN1, E1, 2, &y, 1, &v), 1);
	assert_int_equal(v.batches, 2);
	assert_int_equal(db_rollback_to(f->db), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(history_all(f, VIN1, &rows), 1);
	free(rows);
	/* the latest state and the rollup were undone with the batch */
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.batches, 1);
	assert_int_equal(v.time_ms, 1000);
	assert_int_equal(v.fuel_permille, 500);
	assert_int_equal(day_of(f, VIN1, 0).samples, 1);
	/* and the undone batch is not taken for a duplicate later */
	assert_int_equal(put(f, VIN1, E1, 2, &y, 1, NULL), 1);

	/* a rolled back transaction leaves nothing */
	y.time_ms = 3000;
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(put_in_tx(f, VIN1, E1, 3, &y, 1, NULL), 1);
	assert_int_equal(put_in_tx(f, VIN2, E1, 1, &y, 1, NULL), 1);
	assert_int_equal(db_rollback(f->db), 0);
	assert_int_equal(history_all(f, VIN1, &rows), 2);
	free(rows);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.time_ms, 2000);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN2, &v), -ENOENT);
	assert_int_equal(day_of(f, VIN1, 0).samples, 2);
}

static void test_read_only_handle(void **state)
{
	struct fixture *f = *state;
	struct sample x = gw_sample(1000, 500, 0, 0);
	struct telemetry *rot = NULL;
	struct telemetry_vehicle v;
	struct db *ro = NULL;
	char url[512], err[512];

	put(f, VIN1, E1, 1, &x, 1, NULL);
	assert_int_equal(db_test_url(f->name, url, sizeof(url)), 0);
	assert_int_equal(db_open(url, DB_READ_ONLY, &ro, err, sizeof(err)), 0);
	assert_int_equal(schema_migrate(ro, err, sizeof(err)), 0); /* current: accepted */
	assert_int_equal(telemetry_new(ro, &rot), 0);
	assert_int_equal(telemetry_vehicle_get(rot, VIN1, &v), 0);
	assert_int_equal(v.fuel_permille, 500);
	assert_int_equal(
		put_in_tx(&(struct fixture){ .db = ro, .t = rot }, VIN1, E1, 2, &x, 1, NULL),
		-EROFS);
	/* the reader sees the writer's later commits */
	x.time_ms = 2000;
	x.fuel_permille = 400;
	put(f, VIN1, E1, 2, &x, 1, NULL);
	assert_int_equal(telemetry_vehicle_get(rot, VIN1, &v), 0);
	assert_int_equal(v.fuel_permille, 400);
	assert_int_equal(v.batches, 2);
	telemetry_free(rot);
	db_close(ro);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_duplicate_batch_stored_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latest_not_overwritten_by_older, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_history_order_range_and_limit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daily_rollup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_daily_rollup_midnight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_savepoint_and_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_handle, setup, teardown),
	};

	fprintf(stderr, "telemetry tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
