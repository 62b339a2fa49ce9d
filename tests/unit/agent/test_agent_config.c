/*
 * Unit tests of the agent's configuration (agent/agent_config.c): the
 * required VIN, allow_plaintext and a tcp:// broker_uri, a key given twice,
 * a comment after a value, and agent_config_check_files() naming the file.
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

/* Writes text to dir/agent.conf; returns its path (static). */
static const char *conf_file(const char *text)
{
	static char path[300];
	FILE *f;

	snprintf(path, sizeof(path), "%s/agent.conf", dir.path);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	return path;
}

/* Loading text fails with rc and err = "<path>:<want>". */
static void load_fails(const char *text, int rc, const char *want)
{
	const char *path = conf_file(text);
	struct agent_config c;
	char err[1024], full[1400];

	assert_int_equal(agent_config_load(path, &c, err, sizeof(err)), rc);
	snprintf(full, sizeof(full), "%s%s", path, want);
	assert_string_equal(err, full);
}

static void test_comments_and_twice(void **state)
{
	struct agent_config c;
	char err[512];

	assert_int_equal(
		agent_config_load(conf_file("vin = " VIN " # my car\n"), &c, err, sizeof(err)), 0);
	assert_string_equal(c.vin, VIN);
	assert_int_equal(c.allow_plaintext, 0);
	agent_config_free(&c);
	/* The agent once ran as the second VIN with the first VIN's certificate. */
	load_fails("vin = " VIN "\ncert_file = /a.crt\nvin = WP0ZZZ99ZTS392124\n", -EINVAL,
		   ":3: key 'vin' given twice (first at line 1)");
}

static void test_plaintext(void **state)
{
	struct agent_config c;
	char err[512];

	load_fails(
		"vin = " VIN "\nbroker_uri = tcp://127.0.0.1:1883\n", -EINVAL,
		":2: broker_uri: 'tcp://127.0.0.1:1883' is plaintext (no TLS: no encryption, no "
		"certificates); use ssl://, or set allow_plaintext = yes if that is really meant");
	load_fails(
		"broker_uri = ssl//typo:8883\nvin = " VIN "\n", -EINVAL,
		":1: broker_uri: 'ssl//typo:8883' is not a broker URI (ssl://HOST:PORT; plaintext "
		"tcp://HOST:PORT only with allow_plaintext = yes)");
	assert_int_equal(agent_config_load(conf_file("vin = " VIN "\nallow_plaintext = yes\n"
						     "broker_uri = tcp://127.0.0.1:1883\n"),
					   &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.allow_plaintext, 1);
	assert_int_equal(agent_config_check_files(&c, "agent.conf", err, sizeof(err)), 0);
	agent_config_free(&c);
}

static void test_check_files(void **state)
{
	struct agent_config c;
	char err[1024];

	assert_int_equal(agent_config_load(conf_file("vin = " VIN "\n"), &c, err, sizeof(err)), 0);
	assert_int_equal(agent_config_check_files(&c, "agent.conf", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "agent.conf: ca_file is not set (a TLS broker_uri needs ca_file, "
				 "cert_file and key_file)");
	agent_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_comments_and_twice),
		cmocka_unit_test(test_plaintext),
		cmocka_unit_test(test_check_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
