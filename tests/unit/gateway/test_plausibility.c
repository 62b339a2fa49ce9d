/*
 * Plausibility at ingest (gateway/telemetry/telemetry.c with the gateway's
 * limits, telemetry_limits_default()): samples dated far ahead of their
 * receipt, dated before any clock was set, impossibly fast, or with an
 * odometer running backwards or jumping are stored and acknowledged but
 * set apart: counted by reason, marked in the history, never folded into
 * the latest state or the rollups. A status dated far ahead changes
 * nothing. On whichever backend db_test_util.h selects.
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

/* 2026-12-01T00:00:00Z, the gateway's "now" in these tests. */
#define NOW 1764547200000LL
#define YEAR3000 32503680000000LL

struct fixture {
	struct db *db;
	struct telemetry *t;
};

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));
	struct telemetry_limits lim = telemetry_limits_default();
	char name[64], err[512];

	assert_non_null(f);
	snprintf(name, sizeof(name), "plausible_%d", count++);
	assert_int_equal(db_test_open(name, &f->db), 0);
	if (schema_migrate(f->db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(telemetry_new(f->db, &f->t), 0);
	telemetry_set_limits(f->t, &lim);
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

static struct sample at(int64_t t, int64_t odo, int32_t fuel, int32_t speed)
{
	struct sample s;

	memset(&s, 0, sizeof(s));
	s.time_ms = t;
	s.fix = FIX_3D;
	s.present = SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_SPEED;
	s.odometer_m = odo;
	s.fuel_permille = fuel;
	s.speed_cms = speed;
	return s;
}

/*
 * Stores one batch of x[n] received at NOW, in its own transaction, and
 * returns the item as telemetry_put_batches() filled it in.
 */
static struct telemetry_item put(struct fixture *f, uint64_t seq, const struct sample *x, size_t n)
{
	struct telemetry_item it = { .vin = VIN1, .epoch = 7, .seq = seq, .samples = x, .n = n };
	struct telemetry_vehicle *v = NULL;
	uint8_t *buf = NULL;
	size_t len = 0, nv = 0;

	assert_int_equal(codec_encode_batch(7, seq, x, n, &buf, &len), 0);
	it.raw = buf;
	it.len = len;
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(telemetry_put_batches(f->t, &it, 1, NOW, &v, &nv), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(nv, 1); /* the batch counts for the vehicle, set apart or not */
	free(v);
	free(buf);
	it.raw = NULL;
	return it;
}

static size_t history(struct fixture *f, struct telemetry_sample **rows)
{
	size_t n = 0;
	int truncated = 0;

	assert_int_equal(telemetry_history(f->t, VIN1, INT64_MIN / 2, INT64_MAX / 2, 0, rows, &n,
					   &truncated),
			 0);
	return n;
}

static void test_year_3000_does_not_freeze_the_car(void **state)
{
	struct fixture *f = *state;
	struct sample a[2] = { at(NOW - 60000, 1000000, 500, 0), at(YEAR3000, 1000100, 900, 0) };
	struct sample b[1] = { at(NOW - 30000, 1000200, 140, 0) };
	struct telemetry_sample *rows = NULL;
	struct telemetry_vehicle v;
	struct telemetry_item it;

	it = put(f, 1, a, 2);
	assert_int_equal(it.new_batch, 1);
	assert_int_equal(it.implausible[TELEMETRY_IMPL_FUTURE], 1);
	it = put(f, 2, b, 1);
	assert_int_equal(it.implausible[TELEMETRY_IMPL_FUTURE], 0);

	/* the real, later samples are the latest state, not the year 3000 */
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.time_ms, NOW - 30000);
	assert_int_equal(v.fuel_permille, 140);
	assert_int_equal(v.odometer_m, 1000200);
	assert_int_equal(v.batches, 2);
	assert_int_equal(v.samples, 3);

	/* kept, and marked */
	assert_int_equal(history(f, &rows), 3);
	assert_false(rows[0].implausible);
	assert_false(rows[1].implausible);
	assert_int_equal(rows[2].s.time_ms, YEAR3000);
	assert_true(rows[2].implausible);
	free(rows);

	/* no rollup for the year 3000 */
	{
		struct telemetry_day *d = NULL;
		size_t nd = 0;
		int tr = 0;

		assert_int_equal(telemetry_days(f->t, VIN1, 0, INT32_MAX, &d, &nd, &tr), 0);
		assert_int_equal(nd, 1);
		assert_int_equal(d[0].day, telemetry_day_of(NOW - 1));
		assert_int_equal(d[0].samples, 2);
		free(d);
	}
}

static void test_clock_speed_and_odometer(void **state)
{
	struct fixture *f = *state;
	/* 1970 (clock never set), 400 km/h, odometer back 5 km, forward 50 km in 1 s */
	struct sample x[6] = {
		at(NOW - 10000, 500000, 500, 1000), at(86400000, 500010, 500, 1000),
		at(NOW - 9000, 500020, 500, 11112), at(NOW - 8000, 495000, 500, 1000),
		at(NOW - 7000, 550000, 500, 1000),  at(NOW - 6000, 500040, 500, 1000),
	};
	struct sample later[1] = { at(NOW - 5000, 499000, 500, 1000) };
	struct telemetry_sample *rows = NULL;
	struct telemetry_vehicle v;
	struct telemetry_item it = put(f, 1, x, 6);
	size_t n;

	assert_int_equal(it.implausible[TELEMETRY_IMPL_CLOCK], 1);
	assert_int_equal(it.implausible[TELEMETRY_IMPL_SPEED], 1);
	assert_int_equal(it.implausible[TELEMETRY_IMPL_ODO_BACK], 1);
	assert_int_equal(it.implausible[TELEMETRY_IMPL_ODO_JUMP], 1);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.odometer_m, 500040); /* the last plausible reading */

	/* against the stored state, in a later batch: backwards again */
	it = put(f, 2, later, 1);
	assert_int_equal(it.implausible[TELEMETRY_IMPL_ODO_BACK], 1);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.odometer_m, 500040);
	assert_int_equal(v.time_ms, NOW - 6000);

	n = history(f, &rows);
	assert_int_equal(n, 7);
	for (size_t i = 0, marked = 0; i < n; i++) {
		marked += rows[i].implausible;
		if (i == n - 1)
			assert_int_equal(marked, 5);
	}
	free(rows);
}

static void test_status_far_ahead_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct agent_status st = { .state = AGENT_ONLINE, .time_ms = INT64_MAX / 2 };
	struct telemetry_vehicle v;
	int implausible = 0;

	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(telemetry_put_status(f->t, VIN1, &st, NOW, &implausible), 0);
	assert_int_equal(implausible, 1);
	st.state = AGENT_OFFLINE;
	st.time_ms = NOW - 1000;
	assert_int_equal(telemetry_put_status(f->t, VIN1, &st, NOW, &implausible), 0);
	assert_int_equal(implausible, 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.online, TELEMETRY_OFFLINE); /* not "online" for ever */
	assert_int_equal(v.status_time_ms, NOW - 1000);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(telemetry_implausible_name(TELEMETRY_IMPL_FUTURE), "future");
	assert_string_equal(telemetry_implausible_name(TELEMETRY_IMPL_ODO_JUMP), "odometer_jump");
	assert_null(telemetry_implausible_name(TELEMETRY_IMPL_COUNT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_year_3000_does_not_freeze_the_car, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_clock_speed_and_odometer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_far_ahead_changes_nothing, setup,
						teardown),
		cmocka_unit_test(test_names),
	};

	printf("plausibility tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
