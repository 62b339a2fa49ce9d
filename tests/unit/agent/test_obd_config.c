/*
 * Unit tests of the OBD-II configuration keys (agent/agent_config.c): their
 * defaults, at most one signal source (the error names the second one's
 * line), and obd_baud limited to the rates termios can set.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_config.h"
#include "testdir.h"

#define VIN "WVWZZZ1JZXW000001"

static struct testdir dir;

static int setup(void **state)
{
	return testdir_make(&dir);
}

static int teardown(void **state)
{
	testdir_remove(&dir);
	return 0;
}

/* Writes "vin = VIN\n" + text to dir/agent.conf and loads it. */
static int load(const char *text, struct agent_config *c, char *err, size_t errlen, char *path,
		size_t pathlen)
{
	FILE *f;

	snprintf(path, pathlen, "%s/agent.conf", dir.path);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "vin = %s\n%s", VIN, text);
	assert_int_equal(fclose(f), 0);
	return agent_config_load(path, c, err, errlen);
}

static void test_defaults_and_device(void **state)
{
	struct agent_config c;
	char err[1024], path[300];

	assert_int_equal(load("obd_device = /dev/obd0\n", &c, err, sizeof(err), path, sizeof(path)),
			 0);
	assert_string_equal(c.obd_device, "/dev/obd0");
	assert_null(c.can_interface);
	assert_null(c.signals_file);
	assert_int_equal(c.obd_baud, 38400);
	assert_int_equal(c.obd_timeout_ms, 1000);
	assert_int_equal(c.obd_poll_interval_ms, 200);
	agent_config_free(&c);
	assert_int_equal(load("can_interface = can0\nobd_timeout_ms = 300\n", &c, err, sizeof(err),
			      path, sizeof(path)),
			 0);
	assert_string_equal(c.can_interface, "can0");
	assert_int_equal(c.obd_timeout_ms, 300);
	agent_config_free(&c);
}

static void test_one_source(void **state)
{
	struct agent_config c;
	char err[1024], path[300], want[1400];

	assert_int_equal(load("signals_file = /x.csv\nobd_device = /dev/obd0\n", &c, err,
			      sizeof(err), path, sizeof(path)),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:3: signals_file, obd_device and can_interface each choose the signal "
		 "source: set only one",
		 path);
	assert_string_equal(err, want);
	assert_int_equal(load("obd_device = /dev/obd0\n\ncan_interface = can0\n", &c, err,
			      sizeof(err), path, sizeof(path)),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:4: signals_file, obd_device and can_interface each choose the signal "
		 "source: set only one",
		 path);
	assert_string_equal(err, want);
}

static void test_baud(void **state)
{
	struct agent_config c;
	char err[1024], path[300], want[1400];

	assert_int_equal(load("obd_baud = 115200\n", &c, err, sizeof(err), path, sizeof(path)), 0);
	assert_int_equal(c.obd_baud, 115200);
	agent_config_free(&c);
	assert_int_equal(load("obd_baud = 10000\n", &c, err, sizeof(err), path, sizeof(path)),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "%s:2: obd_baud: 10000 is not 9600, 19200, 38400, 57600, 115200 or 230400", path);
	assert_string_equal(err, want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_and_device),
		cmocka_unit_test(test_one_source),
		cmocka_unit_test(test_baud),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
