/*
 * Unit tests of the OBD-II PID decoding (agent/obd_pid.c), the request
 * scheduling built on it (agent/obd_poll.c: bitmaps, round-robin, refusals,
 * staleness, when the odometer is estimated) and the estimated odometer
 * (agent/obd_odo.c: integration, gaps, its file across a restart).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "obd_odo.h"
#include "obd_pid.h"
#include "obd_poll.h"
#include "signals.h"
#include "testdir.h"

static void test_decode_values(void **state)
{
	/* one table: pid, bytes, expected value; SAE J1979 examples and extremes */
	static const struct {
		uint8_t pid;
		uint8_t b[4];
		size_t n;
		double want;
	} cases[] = {
		{ OBD_PID_SPEED, { 0 }, 1, 0 },
		{ OBD_PID_SPEED, { 0x32 }, 1, 50 },
		{ OBD_PID_SPEED, { 0xFF }, 1, 255 },
		{ OBD_PID_FUEL, { 0 }, 1, 0 },
		{ OBD_PID_FUEL, { 0x80 }, 1, 128 * 100.0 / 255 },
		{ OBD_PID_FUEL, { 0xFF }, 1, 100 },
		{ OBD_PID_ODOMETER, { 0x00, 0x01, 0xE2, 0x40 }, 4, 12345.6 },
		{ OBD_PID_ODOMETER, { 0, 0, 0, 0 }, 4, 0 },
		{ OBD_PID_ODOMETER, { 0xFF, 0xFF, 0xFF, 0xFF }, 4, 429496729.5 },
		{ OBD_PID_SPEED, { 0x10, 0x99 }, 2, 16 }, /* extra bytes ignored */
	};
	struct obd_value v;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(obd_pid_decode(cases[i].pid, cases[i].b, cases[i].n, &v), 0);
		assert_int_equal(v.pid, cases[i].pid);
		assert_true(fabs(v.value - cases[i].want) <= 1e-9 * (1 + cases[i].want));
	}
	assert_int_equal(obd_pid_decode(OBD_PID_ODOMETER, cases[6].b, 3, &v), -EBADMSG);
	assert_int_equal(obd_pid_decode(OBD_PID_SPEED, NULL, 0, &v), -EBADMSG);
	assert_int_equal(obd_pid_decode(0x0C, cases[6].b, 4, &v), -ENOTSUP);
}

static void test_bitmaps(void **state)
{
	/* 0x00: PIDs 01, 0D, 20 (next); 0xA0: A6 only, no next */
	static const uint8_t b00[4] = { 0x80, 0x08, 0x00, 0x01 };
	static const uint8_t b00_ecu2[4] = { 0x00, 0x00, 0x02, 0x00 }; /* 0x17 */
	static const uint8_t bA0[4] = { 0x04, 0x00, 0x00, 0x00 };
	struct obd_pid_support s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(obd_pid_support_add(&s, 0x00, b00), 1);
	assert_int_equal(obd_pid_support_add(&s, 0x00, b00_ecu2), 0);
	assert_true(obd_pid_supported(&s, 0x01));
	assert_true(obd_pid_supported(&s, 0x0D));
	assert_true(obd_pid_supported(&s, 0x17)); /* ORed in from the second ECU */
	assert_true(obd_pid_supported(&s, 0x20));
	assert_false(obd_pid_supported(&s, 0x0C));
	assert_false(obd_pid_supported(&s, 0xA6));
	assert_int_equal(obd_pid_support_add(&s, 0xA0, bA0), 0);
	assert_true(obd_pid_supported(&s, 0xA6));
	assert_false(obd_pid_supported(&s, 0xA5));
	assert_false(obd_pid_supported(&s, 0));
	assert_false(obd_pid_supported(&s, 0xC1));
	assert_int_equal(obd_pid_support_add(&s, 0xC0, bA0), -EINVAL);
	assert_int_equal(obd_pid_support_add(&s, 0x21, bA0), -EINVAL);
	assert_true(obd_pid_is_bitmap(0x00) && obd_pid_is_bitmap(0xA0));
	assert_false(obd_pid_is_bitmap(0xA6));
}

static void test_answer(void **state)
{
	static const uint8_t ok[] = { 0x41, 0x0D, 0x32 };
	static const uint8_t other[] = { 0x41, 0x2F, 0x32 };
	static const uint8_t neg[] = { 0x7F, 0x01, 0x12 };
	static const uint8_t short_[] = { 0x41 };
	const uint8_t *d = NULL;
	size_t n = 0;

	assert_int_equal(obd_pid_answer(ok, 3, 0x0D, &d, &n), 0);
	assert_ptr_equal(d, ok + 2);
	assert_int_equal(n, 1);
	assert_int_equal(obd_pid_answer(other, 3, 0x0D, &d, &n), -EBADMSG);
	assert_int_equal(obd_pid_answer(neg, 3, 0x0D, &d, &n), 0x12);
	assert_int_equal(obd_pid_answer(short_, 1, 0x0D, &d, &n), -EBADMSG);
}

/* Feeds a bitmap answer (the bytes after 41 pid) to p. */
static int feed(struct obd_poll *p, uint64_t now, uint8_t pid, const uint8_t *b, size_t n)
{
	uint8_t msg[8] = { 0x41, pid };
	const uint8_t *m = msg;
	size_t len = n + 2;

	memcpy(msg + 2, b, n);
	return obd_poll_handle(p, now, pid, &m, &len, 1);
}

/* Bitmaps of a car with 0D and 2F, and 0xA6 when odo is set. */
static void probe(struct obd_poll *p, int odo)
{
	static const uint8_t b00[4] = { 0x00, 0x08, 0x00, 0x01 }; /* 0D, next */
	static const uint8_t b20[4] = { 0x00, 0x02, 0x00, 0x01 }; /* 2F, next */
	static const uint8_t bmid[4] = { 0x00, 0x00, 0x00, 0x01 };
	static const uint8_t bA0[4] = { 0x04, 0x00, 0x00, 0x00 };      /* A6 */
	static const uint8_t b80_last[4] = { 0x00, 0x00, 0x00, 0x00 }; /* no next */

	assert_int_equal(obd_poll_next(p), 0x00);
	assert_int_equal(feed(p, 1, 0x00, b00, 4), 0);
	assert_int_equal(obd_poll_next(p), 0x20);
	assert_int_equal(feed(p, 1, 0x20, b20, 4), 0);
	for (uint8_t pid = 0x40; pid <= 0x80; pid += 0x20) {
		assert_int_equal(obd_poll_next(p), pid);
		assert_int_equal(feed(p, 1, pid, odo || pid < 0x80 ? bmid : b80_last, 4), 0);
	}
	if (odo) {
		assert_int_equal(obd_poll_next(p), 0xA0);
		assert_int_equal(feed(p, 1, 0xA0, bA0, 4), 0);
	}
	assert_int_equal(p->probing, 0);
}

static void test_poll_with_odometer(void **state)
{
	static const uint8_t speed[] = { 36 }, fuel[] = { 51 }, odo[] = { 0, 0, 0x30, 0x39 };
	struct vehicle_signals vs;
	struct obd_poll p;

	assert_int_equal(obd_poll_init(&p, NULL), 0);
	probe(&p, 1);
	/* round-robin over the three, in order, again and again */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(obd_poll_next(&p), OBD_PID_SPEED);
		assert_int_equal(feed(&p, 1000, OBD_PID_SPEED, speed, 1), 0);
		assert_int_equal(obd_poll_next(&p), OBD_PID_FUEL);
		assert_int_equal(feed(&p, 1000, OBD_PID_FUEL, fuel, 1), 0);
		assert_int_equal(obd_poll_next(&p), OBD_PID_ODOMETER);
		assert_int_equal(feed(&p, 1000, OBD_PID_ODOMETER, odo, 4), 0);
	}
	/* an answer to another PID than asked is not one */
	assert_int_equal(feed(&p, 1000, OBD_PID_FUEL, odo, 0), -EBADMSG);
	obd_poll_read(&p, 1500, &vs);
	assert_int_equal(vs.present, SIGNAL_SPEED | SIGNAL_FUEL | SIGNAL_ODOMETER);
	assert_true(vs.speed_kmh == 36 && vs.fuel_pct == 20 && vs.odometer_km == 1234.5);
	/* stale values are not reported */
	obd_poll_read(&p, 1000 + OBD_POLL_STALE_MS + 1, &vs);
	assert_int_equal(vs.present, 0);
	/* a refused PID leaves the rotation; a restart asks again */
	assert_int_equal(obd_poll_refused(&p, OBD_PID_FUEL, 0x12), 0);
	for (int i = 0; i < 4; i++)
		assert_int_not_equal(obd_poll_next(&p), OBD_PID_FUEL);
	obd_poll_restart(&p);
	assert_int_equal(obd_poll_next(&p), 0x00);
	obd_poll_fini(&p);
}

static void test_poll_estimates_without_0xA6(void **state)
{
	static const uint8_t v72[] = { 72 };
	struct vehicle_signals vs;
	struct obd_poll p;

	assert_int_equal(obd_poll_init(&p, NULL), 0);
	/* while probing nothing is estimated */
	obd_poll_read(&p, 0, &vs);
	assert_int_equal(vs.present, 0);
	probe(&p, 0);
	for (int i = 0; i < 4; i++)
		assert_int_not_equal(obd_poll_next(&p), OBD_PID_ODOMETER);
	/* 72 km/h = 20 m/s for 3 s, read every second: 60 m */
	for (uint64_t t = 10000; t <= 13000; t += 1000)
		assert_int_equal(feed(&p, t, OBD_PID_SPEED, v72, 1), 0);
	obd_poll_read(&p, 13000, &vs);
	assert_int_equal(vs.present & (SIGNAL_ODOMETER | SIGNAL_ODOMETER_EST),
			 SIGNAL_ODOMETER | SIGNAL_ODOMETER_EST);
	assert_true(vs.odometer_km > 0.06 - 1e-9 && vs.odometer_km < 0.06 + 1e-9);
	/* no fresh speed: no estimate reported either */
	obd_poll_read(&p, 13000 + OBD_POLL_STALE_MS + 1, &vs);
	assert_int_equal(vs.present, 0);
	/* a gap (the link lost) is not integrated */
	obd_poll_lost(&p);
	assert_int_equal(feed(&p, 60000, OBD_PID_SPEED, v72, 1), 0);
	obd_poll_read(&p, 60000, &vs);
	assert_true(vs.odometer_km > 0.06 - 1e-9 && vs.odometer_km < 0.06 + 1e-9);
	obd_poll_fini(&p);
}

static void test_poll_refused_odometer_estimates(void **state)
{
	static const uint8_t v36[] = { 36 };
	static const uint8_t odo[] = { 0, 0, 0x30, 0x39 }; /* 1234.5 km */
	struct vehicle_signals vs;
	struct obd_poll p;

	assert_int_equal(obd_poll_init(&p, NULL), 0);
	probe(&p, 1);
	assert_int_equal(feed(&p, 1000, OBD_PID_ODOMETER, odo, 4), 0);
	assert_int_equal(feed(&p, 1000, OBD_PID_SPEED, v36, 1), 0);
	obd_poll_read(&p, 1000, &vs);
	assert_int_equal(vs.present & SIGNAL_ODOMETER_EST, 0);
	/* the car stops giving it: the estimate continues from the last reading */
	assert_int_equal(obd_poll_refused(&p, OBD_PID_ODOMETER, 0x12), 0);
	assert_int_equal(feed(&p, 11000, OBD_PID_SPEED, v36, 1), 0); /* gap > 5 s: not counted */
	assert_int_equal(feed(&p, 12000, OBD_PID_SPEED, v36, 1), 0); /* 10 m */
	obd_poll_read(&p, 12000, &vs);
	assert_true(vs.present & SIGNAL_ODOMETER_EST);
	assert_true(vs.odometer_km > 1234.51 - 1e-9 && vs.odometer_km < 1234.51 + 1e-9);
	obd_poll_fini(&p);
}

static void test_poll_car_silent(void **state)
{
	static const uint8_t neg[] = { 0x7F, 0x01, 0x12 };
	const uint8_t *m = neg;
	size_t len = 3;
	struct obd_poll p;

	assert_int_equal(obd_poll_init(&p, NULL), 0);
	assert_int_equal(obd_poll_no_data(&p, 0x00), 1); /* back off */
	assert_int_equal(obd_poll_handle(&p, 1, 0x00, &m, &len, 1), 1);
	assert_int_equal(obd_poll_next(&p), 0x00);
	obd_poll_fini(&p);
}

static void test_odo_file(void **state)
{
	struct testdir dir;
	struct obd_odo o;
	char path[300], buf[64];
	struct stat st;
	FILE *f;

	assert_int_equal(testdir_make(&dir), 0);
	testdir_file(&dir, "odometer", path, sizeof(path));
	assert_int_equal(obd_odo_init(&o, path), 0);
	assert_true(o.km == 0);
	obd_odo_real(&o, 5000.25);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	obd_odo_speed(&o, 1000, 36);
	obd_odo_speed(&o, 3000, 36); /* 20 m: below the save step */
	obd_odo_fini(&o);	     /* ... saved at close */
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	assert_string_equal(buf, "5000.270\n");
	/* a restart continues */
	assert_int_equal(obd_odo_init(&o, path), 0);
	assert_true(o.km > 5000.27 - 1e-9 && o.km < 5000.27 + 1e-9);
	obd_odo_fini(&o);
	/* a malformed file starts at 0 */
	f = fopen(path, "w");
	fputs("many km\n", f);
	fclose(f);
	assert_int_equal(obd_odo_init(&o, path), 0);
	assert_true(o.km == 0);
	free(o.path);
	testdir_remove(&dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_values),
		cmocka_unit_test(test_bitmaps),
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_poll_with_odometer),
		cmocka_unit_test(test_poll_estimates_without_0xA6),
		cmocka_unit_test(test_poll_refused_odometer_estimates),
		cmocka_unit_test(test_poll_car_silent),
		cmocka_unit_test(test_odo_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
