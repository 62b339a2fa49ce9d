/*
 * Unit tests of common/config.c (written by the lead; tested here): defaults,
 * every option type, comments and blank lines, the exact "file:line: ..."
 * error messages (bad numbers, ranges, booleans, unknown options, missing
 * '=', missing name, over-long lines, missing file), config_set() overrides,
 * and that strings are freed on every path (run it under valgrind). Config
 * files are written into a mkdtemp() directory that the group teardown
 * removes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

struct conf {
	char *name;
	int port;
	double ratio;
	int verbose;
	char *path;	/* no default: NULL until set */
};

/* config_check_fn for "name": no '/'. */
static int no_slash(const char *value, char *msg, size_t msglen)
{
	if (!strchr(value, '/'))
		return 0;
	snprintf(msg, msglen, "must not contain '/'");
	return -EINVAL;
}

static const struct config_option table[] = {
	{ "name", CONFIG_STRING, offsetof(struct conf, name), 0, 0, "pitstop", "a name", no_slash },
	{ "port", CONFIG_INT, offsetof(struct conf, port), 1, 65535, "1883", "TCP port", NULL },
	{ "ratio", CONFIG_DOUBLE, offsetof(struct conf, ratio), 0, 1, "0.5", "a fraction", NULL },
	{ "verbose", CONFIG_BOOL, offsetof(struct conf, verbose), 0, 1, "false", "chatty", NULL },
	{ "path", CONFIG_STRING, offsetof(struct conf, path), 0, 0, NULL, "a path", NULL },
	CONFIG_END
};

static char tmpdir[] = "/tmp/pitstop-test-config-XXXXXX";
static int nfiles;

static int group_setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char path[600];

	for (int i = 0; i < nfiles; i++) {
		snprintf(path, sizeof(path), "%s/%d.conf", tmpdir, i);
		unlink(path);
	}
	return rmdir(tmpdir);
}

/* Writes text to a new file in tmpdir; returns its path (static, rotating). */
static const char *conf_file(const char *text)
{
	static char paths[4][600];
	char *p = paths[nfiles % 4];
	FILE *f;

	snprintf(p, sizeof(paths[0]), "%s/%d.conf", tmpdir, nfiles++);
	f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return p;
}

static void test_defaults(void **state)
{
	struct conf c;

	memset(&c, 0x5a, sizeof(c));	/* garbage: defaults must overwrite all of it */
	assert_int_equal(config_defaults(table, &c), 0);
	assert_string_equal(c.name, "pitstop");
	assert_int_equal(c.port, 1883);
	assert_true(c.ratio == 0.5);
	assert_int_equal(c.verbose, 0);
	assert_null(c.path);
	config_free(table, &c);
	assert_null(c.name);
	config_free(table, NULL);
}

static void test_load_every_type(void **state)
{
	const char *path = conf_file("# a comment\n"
				     "\n"
				     "   \t\n"
				     "  # an indented comment = not an option\n"
				     "name = fleet one  \n"
				     "port=8883\n"
				     "  ratio\t=\t0.25\r\n"
				     "verbose = yes\n"
				     "path = /var/lib/a=b\n");
	struct conf c;
	char err[256] = "";

	assert_int_equal(config_load(path, table, &c, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_string_equal(c.name, "fleet one");	/* inner blanks kept, outer trimmed */
	assert_int_equal(c.port, 8883);
	assert_true(c.ratio == 0.25);
	assert_int_equal(c.verbose, 1);
	assert_string_equal(c.path, "/var/lib/a=b");	/* split at the first '=' */
	config_free(table, &c);
}

static void test_defaults_survive_a_partial_file(void **state)
{
	const char *path = conf_file("port = 65535\nname = b\n");
	struct conf c;
	char err[256];

	assert_int_equal(config_load(path, table, &c, err, sizeof(err)), 0);
	assert_int_equal(c.port, 65535);	/* bounds inclusive */
	assert_string_equal(c.name, "b");	/* the default string is freed (valgrind) */
	assert_true(c.ratio == 0.5);
	assert_null(c.path);
	config_free(table, &c);
}

static void test_booleans(void **state)
{
	static const struct {
		const char *text;
		int want;
	} cases[] = {
		{ "true", 1 }, { "TRUE", 1 }, { "yes", 1 }, { "Yes", 1 }, { "on", 1 }, { "1", 1 },
		{ "false", 0 }, { "False", 0 }, { "no", 0 }, { "NO", 0 }, { "off", 0 }, { "0", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf c;
		char err[256], text[64];

		snprintf(text, sizeof(text), "verbose = %s\n", cases[i].text);
		assert_int_equal(config_load(conf_file(text), table, &c, err, sizeof(err)), 0);
		assert_int_equal(c.verbose, cases[i].want);
		config_free(table, &c);
	}
}

static void test_errors_have_file_and_line(void **state)
{
	static const struct {
		const char *text;
		int want;
		const char *msg;	/* after "<path>:" */
	} cases[] = {
		{ "# c\n\nport = abc\n", -EINVAL, "3: port: 'abc' is not a whole number" },
		{ "port = 12abc\n", -EINVAL, "1: port: '12abc' is not a whole number" },
		{ "port =\n", -EINVAL, "1: port: '' is not a whole number" },
		{ "port = 99999999999999999999\n", -EINVAL,
		  "1: port: '99999999999999999999' is not a whole number" },
		{ "port = 70000\n", -ERANGE, "1: port: 70000 is out of range [1, 65535]" },
		{ "port = 0\n", -ERANGE, "1: port: 0 is out of range [1, 65535]" },
		{ "ratio = 1.5\n", -ERANGE, "1: ratio: 1.5 is out of range [0, 1]" },
		{ "ratio = -0.001\n", -ERANGE, "1: ratio: -0.001 is out of range [0, 1]" },
		{ "ratio = x\n", -EINVAL, "1: ratio: 'x' is not a number" },
		{ "ratio = nan\n", -EINVAL, "1: ratio: 'nan' is not a number" },
		{ "ratio = inf\n", -EINVAL, "1: ratio: 'inf' is not a number" },
		{ "verbose = maybe\n", -EINVAL, "1: verbose: 'maybe' is not true or false" },
		{ "port = 80\nname = a/b\n", -EINVAL, "2: name: 'a/b' must not contain '/'" },
		{ "name = x\ncolour = red\n", -EINVAL, "2: unknown option 'colour'" },
		{ "port 1883\n", -EINVAL, "1: expected 'name = value'" },
		{ "\n\n = 5\n", -EINVAL, "3: missing option name before '='" },
		/* A second value used to win silently. */
		{ "port = 1\n# c\nname = a\nport = 2\n", -EINVAL,
		  "4: key 'port' given twice (first at line 1)" },
		{ "path = /a\npath = /a  # same value, still twice\n", -EINVAL,
		  "2: key 'path' given twice (first at line 1)" },
		/* A comment does not hide a bad value, nor make one. */
		{ "port = x # web\n", -EINVAL, "1: port: 'x' is not a whole number" },
		{ "port = # none\n", -EINVAL, "1: port: '' is not a whole number" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *path = conf_file(cases[i].text);
		struct conf c;
		char err[512] = "", want[1024];

		snprintf(want, sizeof(want), "%s:%s", path, cases[i].msg);
		assert_int_equal(config_load(path, table, &c, err, sizeof(err)), cases[i].want);
		assert_string_equal(err, want);
		/* whatever was set (the default name at least) is freed */
		assert_null(c.name);
		assert_null(c.path);
	}
}

/* A '#' at the start of a value or after a blank starts a comment. */
static void test_trailing_comments(void **state)
{
	const char *path = conf_file("name = fleet one # the first fleet\n"
				     "port = 8883\t# TLS\n"
				     "verbose = yes #\n"
				     "path = /srv/a#b\n");
	struct conf c;
	char err[256] = "";

	assert_int_equal(config_load(path, table, &c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "fleet one");	/* the blank before '#' trimmed */
	assert_int_equal(c.port, 8883);
	assert_int_equal(c.verbose, 1);
	assert_string_equal(c.path, "/srv/a#b");	/* inside a word: part of the value */
	config_free(table, &c);

	path = conf_file("name =# all comment\npath =\t#\n");
	assert_int_equal(config_load(path, table, &c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "");
	assert_string_equal(c.path, "");
	config_free(table, &c);
}

/* config_load_lines() says which line set each option; config_line() finds it. */
static void test_lines(void **state)
{
	const char *path = conf_file("# c\n\nport = 80\npath = /x # p\n");
	unsigned lines[5];
	struct conf c;
	char err[256];

	assert_int_equal(config_count(table), 5);
	memset(lines, 0xff, sizeof(lines));
	assert_int_equal(config_load_lines(path, table, &c, lines, err, sizeof(err)), 0);
	assert_int_equal(lines[0], 0);	/* name: the default */
	assert_int_equal(lines[1], 3);
	assert_int_equal(lines[2], 0);
	assert_int_equal(lines[3], 0);
	assert_int_equal(lines[4], 4);
	assert_int_equal(config_line(table, lines, "path"), 4);
	assert_int_equal(config_line(table, lines, "name"), 0);
	assert_int_equal(config_line(table, lines, "nosuch"), 0);
	config_free(table, &c);
}

static void test_strings_freed_on_failure(void **state)
{
	const char *path = conf_file("name = first\npath = /tmp/x\nport = nope\n");
	struct conf c;
	char err[256];

	assert_int_equal(config_load(path, table, &c, err, sizeof(err)), -EINVAL);
	assert_null(c.name);	/* set by line 1, freed when line 3 failed */
	assert_null(c.path);
}

static void test_long_line_and_missing_file(void **state)
{
	char *text = malloc(5000);
	char err[512], want[1024];
	const char *path;
	struct conf c;

	assert_non_null(text);
	memset(text, 'x', 4999);
	memcpy(text, "name = ", 7);
	text[4998] = '\n';
	text[4999] = '\0';
	path = conf_file(text);
	free(text);
	assert_int_equal(config_load(path, table, &c, err, sizeof(err)), -EINVAL);
	snprintf(want, sizeof(want), "%s:1: line longer than 4096 bytes", path);
	assert_string_equal(err, want);
	assert_null(c.name);

	snprintf(want, sizeof(want), "%s/does-not-exist.conf", tmpdir);
	assert_int_equal(config_load(want, table, &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "does-not-exist.conf: No such file or directory"));
	assert_null(c.name);
}

static void test_config_set_overrides(void **state)
{
	const char *path = conf_file("name = from-file\nport = 1000\n");
	struct conf c;
	char err[256] = "";

	assert_int_equal(config_load(path, table, &c, err, sizeof(err)), 0);
	assert_int_equal(config_set(table, &c, "port", "2000", "--port", err, sizeof(err)), 0);
	assert_int_equal(c.port, 2000);
	assert_int_equal(config_set(table, &c, "name", "from-cli", "--name", err, sizeof(err)), 0);
	assert_string_equal(c.name, "from-cli");	/* the old string is freed (valgrind) */
	assert_int_equal(config_set(table, &c, "verbose", "on", "-v", err, sizeof(err)), 0);
	assert_int_equal(c.verbose, 1);

	assert_int_equal(config_set(table, &c, "port", "x", "--port", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "--port: port: 'x' is not a whole number");
	assert_int_equal(c.port, 2000);	/* a bad value changes nothing */
	assert_int_equal(config_set(table, &c, "port", "65536", "--port", err, sizeof(err)),
			 -ERANGE);
	assert_string_equal(err, "--port: port: 65536 is out of range [1, 65535]");
	assert_int_equal(c.port, 2000);
	assert_int_equal(config_set(table, &c, "colour", "red", "--colour", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "--colour: unknown option 'colour'");
	config_free(table, &c);
	assert_null(c.name);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_load_every_type),
		cmocka_unit_test(test_defaults_survive_a_partial_file),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_errors_have_file_and_line),
		cmocka_unit_test(test_trailing_comments),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_strings_freed_on_failure),
		cmocka_unit_test(test_long_line_and_missing_file),
		cmocka_unit_test(test_config_set_overrides),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
