/*
 * Unit tests of the vehicle-signal replay source (agent/signals.c): a good
 * file with comments, blank lines and empty fields; values before the first
 * row, between rows and holding after the last; looping; and every parse
 * error with its exact "file:line: what is wrong" message.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signals.h"
#include "testdir.h"

#define START 1000000u	/* monotonic ms that counts as t_s = 0 */

struct fixture {
	struct testdir dir;
	char path[300];
	struct signals *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || testdir_make(&f->dir) < 0) {
		free(f);
		return -1;
	}
	testdir_file(&f->dir, "signals.csv", f->path, sizeof(f->path));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	signals_free(f->s);
	testdir_remove(&f->dir);
	free(f);
	return 0;
}

static void write_file(struct fixture *f, const char *text)
{
	FILE *fp = fopen(f->path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static struct vehicle_signals at(struct fixture *f, double t_s)
{
	struct vehicle_signals v;

	assert_int_equal(signals_read(f->s, START + (uint64_t)(t_s * 1000), &v), 0);
	return v;
}

static const char good[] =
	"# t_s,odometer_km,fuel_pct,speed_kmh\n"
	"\n"
	"0, 1000.0, 80, 0\n"
	"  # a comment after blanks\n"
	"1.5,1000.1,79.5,36\r\n"
	"3,1000.2,,50\n"
	"10,1000.3,79,0\n";

static void test_good_file_and_holding(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	struct vehicle_signals v;

	write_file(f, good);
	assert_int_equal(signals_replay_open(f->path, 0, START, err, sizeof(err), &f->s), 0);
	v = at(f, 0);
	assert_int_equal(v.present, SIGNAL_ODOMETER | SIGNAL_FUEL | SIGNAL_SPEED);
	assert_true(v.odometer_km == 1000.0 && v.fuel_pct == 80 && v.speed_kmh == 0);
	v = at(f, 1.499);
	assert_true(v.odometer_km == 1000.0);
	v = at(f, 1.5);
	assert_true(v.odometer_km == 1000.1 && v.fuel_pct == 79.5 && v.speed_kmh == 36);
	v = at(f, 5);
	assert_int_equal(v.present, SIGNAL_ODOMETER | SIGNAL_SPEED);	/* empty fuel field */
	assert_true(v.speed_kmh == 50);
	/* After the last row the values hold. */
	v = at(f, 10);
	assert_true(v.odometer_km == 1000.3 && v.speed_kmh == 0);
	v = at(f, 100000);
	assert_true(v.odometer_km == 1000.3 && v.fuel_pct == 79);
}

static void test_before_first_row(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	struct vehicle_signals v;

	write_file(f, "2,5,50,10\n4,6,49,20\n");
	assert_int_equal(signals_replay_open(f->path, 0, START, err, sizeof(err), &f->s), 0);
	v = at(f, 1.9);
	assert_int_equal(v.present, 0);
	v = at(f, 2);
	assert_true(v.odometer_km == 5);
	/* A clock before the start counts as t = 0. */
	assert_int_equal(signals_read(f->s, START - 500, &v), 0);
	assert_int_equal(v.present, 0);
}

static void test_looping(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";

	/* Rows at 0, 1, 2: one cycle lasts 2 + 1 = 3 s. */
	write_file(f, "0,1,10,0\n1,2,20,10\n2,3,30,20\n");
	assert_int_equal(signals_replay_open(f->path, 1, START, err, sizeof(err), &f->s), 0);
	assert_true(at(f, 2.5).odometer_km == 3);
	assert_true(at(f, 3.0).odometer_km == 1);
	assert_true(at(f, 4.2).odometer_km == 2);
	assert_true(at(f, 3000 + 2.1).odometer_km == 3);
}

static void test_null_source(void **state)
{
	struct vehicle_signals v;

	(void)state;
	memset(&v, 0xff, sizeof(v));
	assert_int_equal(signals_read(NULL, 5, &v), 0);
	assert_int_equal(v.present, 0);
	signals_free(NULL);
}

struct bad_case {
	const char *text;
	int line;		/* 0: "file: msg" */
	const char *msg;
};

static const struct bad_case bad_cases[] = {
	{ "0,1,2\n", 1, "expected 4 fields (t_s,odometer_km,fuel_pct,speed_kmh), got 3" },
	{ "# c\n0,1,2,3,4\n", 2, "expected 4 fields (t_s,odometer_km,fuel_pct,speed_kmh), got more" },
	{ "0,1,2,3\n1,abc,2,3\n", 2, "odometer_km: not a number" },
	{ "0,1,2,3\n\n1,1,2,fast\n", 3, "speed_kmh: not a number" },
	{ "x,1,2,3\n", 1, "t_s: not a number" },
	{ ",1,2,3\n", 1, "t_s: missing" },
	{ "0,1,2,3\n1,1,2,3\n1,1,2,3\n", 3, "t_s 1 does not increase (previous row 1)" },
	{ "0,1,2,3\n2,1,2,3\n1.5,1,2,3\n", 3, "t_s 1.5 does not increase (previous row 2)" },
	{ "0,1,101,3\n", 1, "fuel_pct: 101 is out of range [0, 100]" },
	{ "0,-1,50,3\n", 1, "odometer_km: -1 is out of range [0, 1e8]" },
	{ "0,1,50,-3\n", 1, "speed_kmh: -3 is out of range [0, 1000]" },
	{ "-1,1,50,3\n", 1, "t_s: -1 is out of range [0, 1e9]" },
	{ "0,1,nan,3\n", 1, "fuel_pct: not a number" },
	{ "# only comments\n\n", 0, "no data rows" },
};

static void test_parse_errors(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		char err[512] = "", want[600];
		struct signals *s = NULL;

		write_file(f, bad_cases[i].text);
		if (bad_cases[i].line)
			snprintf(want, sizeof(want), "%s:%d: %s", f->path, bad_cases[i].line,
				 bad_cases[i].msg);
		else
			snprintf(want, sizeof(want), "%s: %s", f->path, bad_cases[i].msg);
		assert_true(signals_replay_open(f->path, 0, START, err, sizeof(err), &s) < 0);
		assert_null(s);
		assert_string_equal(err, want);
	}
}

static void test_long_line_and_missing_file(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", want[600], line[2048];
	struct signals *s = NULL;
	char missing[300];

	memset(line, '1', sizeof(line) - 2);
	line[sizeof(line) - 2] = '\n';
	line[sizeof(line) - 1] = '\0';
	write_file(f, line);
	assert_int_equal(signals_replay_open(f->path, 0, START, err, sizeof(err), &s), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: line longer than %d bytes", f->path, SIGNALS_MAX_LINE);
	assert_string_equal(err, want);

	testdir_file(&f->dir, "nope.csv", missing, sizeof(missing));
	assert_int_equal(signals_replay_open(missing, 0, START, err, sizeof(err), &s), -ENOENT);
	snprintf(want, sizeof(want), "%s: No such file or directory", missing);
	assert_string_equal(err, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_good_file_and_holding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_before_first_row, setup, teardown),
		cmocka_unit_test_setup_teardown(test_looping, setup, teardown),
		cmocka_unit_test(test_null_source),
		cmocka_unit_test_setup_teardown(test_parse_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_line_and_missing_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
