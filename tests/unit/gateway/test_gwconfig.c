/*
 * Unit tests of the gateway configuration table (gateway/gwconfig.c):
 * defaults, the documented key names, and file:line errors.
 */
#include "gw_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gwconfig.h"

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_defaults(void **state)
{
	struct gw_config c;
	char err[256];

	assert_int_equal(gw_config_load(NULL, &c, err, sizeof(err)), 0);
	assert_string_equal(c.broker_uri, "ssl://127.0.0.1:8883");
	assert_string_equal(c.client_id, "pitstop-gateway-1");
	assert_string_equal(c.share_group, "pitstop-gateway");
	assert_string_equal(c.db, "/var/lib/pitstop/gateway.db");
	assert_int_equal(c.low_fuel_pct, 15);
	assert_int_equal(c.low_fuel_rearm_pct, 10);
	assert_int_equal(c.offer_valid_s, 3600);
	assert_string_equal(c.log_level, "info");
	assert_null(c.log_file);
	assert_null(c.offer_key_file);
	gw_config_free(&c);
	gw_config_free(NULL);
}

static void test_file(void **state)
{
	struct gw_config c;
	char path[512], err[256];

	gw_test_path(path, sizeof(path), "gw.conf");
	write_file(path, "# gateway\nbroker_uri = ssl://b:8883\nclient_id = gw-7\nshare_group =\n"
			 "ca_file = /p/ca.crt\ncert_file = /p/g.crt\nkey_file = /p/g.key\n"
			 "offer_key_file = /p/o.key\ndb = sqlite:/d/g.db\nlow_fuel_pct = 20\n"
			 "low_fuel_rearm_pct = 5\noffer_valid_s = 60\nlog_level = debug\n"
			 "log_file = /l/g.log\n");
	assert_int_equal(gw_config_load(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c.client_id, "gw-7");
	assert_string_equal(c.share_group, "");
	assert_string_equal(c.offer_key_file, "/p/o.key");
	assert_string_equal(c.db, "sqlite:/d/g.db");
	assert_int_equal(c.low_fuel_pct, 20);
	assert_int_equal(c.low_fuel_rearm_pct, 5);
	assert_int_equal(c.offer_valid_s, 60);
	assert_string_equal(c.log_file, "/l/g.log");
	gw_config_free(&c);
}

static void test_errors_name_the_line(void **state)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "low_fuel_pct = 101\n", ":1: low_fuel_pct" },
		{ "\n\nlow_fuel_pct = x\n", ":3: low_fuel_pct" },
		{ "# x\nbogus = 1\n", ":2: unknown option 'bogus'" },
		{ "db = a\nlog_level = loud\n", ":2: log_level" },
		{ "offer_valid_s = 0\n", ":1: offer_valid_s" },
		{ "client_id = a\n\nclient_id = b # again\n",
		  ":3: key 'client_id' given twice (first at line 1)" },
		{ "db = a\nbroker_uri = tcp://b:1883\n",
		  ":2: broker_uri: 'tcp://b:1883' is plaintext (no TLS: no encryption, no "
		  "certificates); use ssl://, or set allow_plaintext = yes" },
		{ "allow_plaintext = no\nbroker_uri = mqtt://b\n",
		  ":2: broker_uri: 'mqtt://b' is plaintext" },
		{ "broker_uri = http://b:80\nallow_plaintext = yes\n",
		  ":1: broker_uri: 'http://b:80' is not a broker URI" },
		{ "broker_uri = ssl://:8883\n",
		  ":1: broker_uri: 'ssl://:8883' is not a broker URI" },
		{ "broker_uri = ssl://b:88x3\n",
		  ":1: broker_uri: 'ssl://b:88x3' is not a broker URI" },
	};
	char path[512], err[512];
	struct gw_config c;

	gw_test_path(path, sizeof(path), "bad.conf");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file(path, cases[i].text);
		err[0] = '\0';
		assert_true(gw_config_load(path, &c, err, sizeof(err)) < 0);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: '%s' does not contain '%s'", i, err, cases[i].want);
	}
	gw_test_path(path, sizeof(path), "missing.conf");
	assert_int_equal(gw_config_load(path, &c, err, sizeof(err)), -ENOENT);
}

/*
 * allow_plaintext = yes lets tcp:// through, and then there are no TLS files
 * to check; with ssl:// gw_config_check_files() runs certcheck (its own
 * test covers the certificates) and names the config file.
 */
static void test_plaintext_and_files(void **state)
{
	struct gw_config c;
	char path[512], err[1024], want[1100];

	assert_int_equal(gw_config_load(NULL, &c, err, sizeof(err)), 0);
	assert_int_equal(c.allow_plaintext, 0);
	gw_config_free(&c);

	gw_test_path(path, sizeof(path), "plain.conf");
	write_file(path,
		   "broker_uri = tcp://127.0.0.1:1883   # a test broker\nallow_plaintext = yes\n");
	assert_int_equal(gw_config_load(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c.broker_uri, "tcp://127.0.0.1:1883");
	assert_int_equal(c.allow_plaintext, 1);
	assert_int_equal(gw_config_check_files(&c, path, err, sizeof(err)), 0);
	gw_config_free(&c);

	write_file(path, "broker_uri = ssl://[::1]:8883\ncert_file = /nonexistent/g.crt\n"
			 "ca_file = /nonexistent/ca.crt\nkey_file = /nonexistent/g.key\n");
	assert_int_equal(gw_config_load(path, &c, err, sizeof(err)), 0);
	assert_int_equal(gw_config_check_files(&c, path, err, sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want),
		 "%s: ca_file /nonexistent/ca.crt: cannot read it: No such file or directory",
		 path);
	assert_string_equal(err, want);
	gw_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_errors_name_the_line),
		cmocka_unit_test(test_plaintext_and_files),
	};

	gw_test_dir_make();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
