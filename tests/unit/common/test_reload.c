/*
 * Unit tests of common/reload.c on a small table of every option type:
 * reload_diff() finds exactly the options that differ and splits them into
 * reloadable and restart-only, reload_take() moves only the reloadable ones
 * (strings change owner, so both structs still free cleanly: ASan checks),
 * reload_apply() does both, and values format as config text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "reload.h"

struct conf {
	char *uri;
	char *level;
	int pct;
	int hold;
	double ratio;
	int flag;
};

#define OPT(name, type, min, max, def)                                                \
	{                                                                             \
#name, type, offsetof(struct conf, name), min, max, def, "help", NULL \
	}

static const struct config_option table[] = {
	OPT(uri, CONFIG_STRING, 0, 0, "ssl://a:1"),
	OPT(level, CONFIG_STRING, 0, 0, NULL),
	OPT(pct, CONFIG_INT, 0, 100, "15"),
	OPT(hold, CONFIG_INT, 0, 100, "10"),
	OPT(ratio, CONFIG_DOUBLE, 0, 1, "0.5"),
	OPT(flag, CONFIG_BOOL, 0, 1, "false"),
	CONFIG_END,
};

static const char *const reloadable[] = { "level", "pct", "ratio", NULL };

struct seen {
	char names[8][16];
	int reloadable[8];
	int n;
};

static void record(const struct config_option *o, int r, const void *running, const void *fresh,
		   void *arg)
{
	struct seen *s = arg;

	(void)running;
	(void)fresh;
	snprintf(s->names[s->n], sizeof(s->names[0]), "%s", o->name);
	s->reloadable[s->n++] = r;
}

/* Two structs with defaults; b then gets the changes given. */
static void pair(struct conf *a, struct conf *b)
{
	char err[128];

	assert_int_equal(config_defaults(table, a), 0);
	assert_int_equal(config_defaults(table, b), 0);
	assert_int_equal(config_set(table, b, "uri", "ssl://b:2", "t", err, sizeof(err)), 0);
	assert_int_equal(config_set(table, b, "level", "debug", "t", err, sizeof(err)), 0);
	assert_int_equal(config_set(table, b, "pct", "20", "t", err, sizeof(err)), 0);
	assert_int_equal(config_set(table, b, "flag", "yes", "t", err, sizeof(err)), 0);
}

static void test_diff_splits(void **state)
{
	struct conf a, b;
	struct seen s = { 0 };

	(void)state;
	pair(&a, &b);
	/* uri and flag need a restart; level (NULL -> "debug") and pct reload. */
	assert_int_equal(reload_diff(table, &a, &b, reloadable, record, &s), 2);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.names[0], "uri");
	assert_false(s.reloadable[0]);
	assert_string_equal(s.names[1], "level");
	assert_true(s.reloadable[1]);
	assert_string_equal(s.names[2], "pct");
	assert_true(s.reloadable[2]);
	assert_string_equal(s.names[3], "flag");
	assert_false(s.reloadable[3]);
	assert_int_equal(reload_diff(table, &a, &a, reloadable, NULL, NULL), 0);
	config_free(table, &a);
	config_free(table, &b);
}

static void test_take_moves_reloadable_only(void **state)
{
	struct conf a, b;
	struct seen s = { 0 };

	(void)state;
	pair(&a, &b);
	assert_int_equal(reload_take(table, &a, &b, reloadable), 2); /* level, pct */
	assert_string_equal(a.level, "debug");
	assert_int_equal(a.pct, 20);
	assert_string_equal(a.uri, "ssl://a:1"); /* restart-only: what runs stays */
	assert_int_equal(a.flag, 0);
	assert_null(b.level); /* the old value, freed with b */
	assert_int_equal(b.pct, 15);
	/* The restart-only changes are still there for the next reload. */
	assert_int_equal(reload_diff(table, &a, &b, reloadable, NULL, NULL), 2);
	config_free(table, &b);
	assert_int_equal(config_defaults(table, &b), 0);
	assert_int_equal(reload_diff(table, &a, &b, reloadable, record, &s), 0);
	assert_int_equal(s.n, 2); /* level and pct now differ from the defaults */
	config_free(table, &a);
	config_free(table, &b);
}

static void test_apply_counts(void **state)
{
	struct conf a, b;
	int applied = -1;

	(void)state;
	pair(&a, &b);
	assert_int_equal(reload_apply(table, &a, &b, reloadable, &applied), 2);
	assert_int_equal(applied, 2);
	assert_int_equal(a.pct, 20);
	assert_int_equal(reload_apply(table, &a, &a, NULL, NULL), 0);
	config_free(table, &a);
	config_free(table, &b);
}

static void test_format_and_listed(void **state)
{
	struct conf a;
	char buf[64];

	(void)state;
	assert_int_equal(config_defaults(table, &a), 0);
	reload_format(&table[0], &a, buf, sizeof(buf));
	assert_string_equal(buf, "ssl://a:1");
	reload_format(&table[1], &a, buf, sizeof(buf));
	assert_string_equal(buf, "");
	reload_format(&table[2], &a, buf, sizeof(buf));
	assert_string_equal(buf, "15");
	reload_format(&table[4], &a, buf, sizeof(buf));
	assert_string_equal(buf, "0.5");
	reload_format(&table[5], &a, buf, sizeof(buf));
	assert_string_equal(buf, "false");
	assert_true(reload_listed(reloadable, "pct"));
	assert_false(reload_listed(reloadable, "uri"));
	assert_false(reload_listed(NULL, "pct"));
	config_free(table, &a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff_splits),
		cmocka_unit_test(test_take_moves_reloadable_only),
		cmocka_unit_test(test_apply_counts),
		cmocka_unit_test(test_format_and_listed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
