/*
 * Unit tests of the promotion rules parser (gateway/offers/promo_rules.c),
 * which is pure: every error kind with its FILE:LINE, all errors reported
 * at once, the shipped example, code files (bad and duplicate codes named
 * by their own line), time zones, and template expansion (placeholders,
 * braces, cutting at a UTF-8 boundary).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "promo_rules.h"

static char err[16384];

static int parse(const char *text, struct promo_rules **ret)
{
	return promo_rules_parse("t.rules", text, strlen(text), ret, err, sizeof(err));
}

/* Parses text expecting failure, and that err holds line (a "t.rules:N: ..." substring). */
static void expect_error(const char *text, const char *line)
{
	struct promo_rules *s = NULL;

	if (parse(text, &s) != -EINVAL)
		fail_msg("expected an error for:\n%s", text);
	assert_null(s);
	if (!strstr(err, line))
		fail_msg("expected '%s' in:\n%s", line, err);
}

#define RULE_OK                     \
	"[rule r]\n"                \
	"trigger = fuel_below 15\n" \
	"title = t\n"               \
	"body = b\n"

static void test_minimal_rule_and_defaults(void **state)
{
	struct promo_rules *s = NULL;
	const struct promo_rule *r;

	(void)state;
	assert_int_equal(parse(RULE_OK, &s), 0);
	assert_int_equal(s->n, 1);
	assert_int_equal(s->limits.per_day, 2);
	assert_int_equal(s->limits.per_week, 5);
	assert_string_equal(s->limits.time_zone, "UTC");
	assert_int_equal(s->limits.quiet_from_min, s->limits.quiet_to_min);
	r = promo_rules_find(s, "r");
	assert_non_null(r);
	assert_int_equal(r->trigger, PROMO_FUEL_BELOW);
	assert_int_equal(r->fuel_pct, 15);
	assert_int_equal(r->rearm_pct, 10);
	assert_int_equal(r->kind, OFFER_REFUEL);
	assert_int_equal(r->codes_mode, PROMO_CODES_GENERATE);
	assert_string_equal(r->code_prefix, "PROMO-");
	assert_int_equal(r->valid_for_ms, 2 * 3600000LL);
	assert_int_equal(r->area_radius_m, 5000);
	assert_int_equal(r->line, 1);
	promo_rules_free(s);
}

/* Every error kind, each named by its line. */
static void test_each_error_with_its_line(void **state)
{
	(void)state;
	expect_error("per_day = 2\n" RULE_OK, "t.rules:1: per_day outside a section");
	expect_error("[limits]\nper_day = many\n" RULE_OK, "t.rules:2: per_day: expected 0..1000");
	expect_error("[limits]\nper_week = -1\n" RULE_OK, "t.rules:2: per_week:");
	expect_error("[limits]\nquiet_hours = 24:00-07:00\n" RULE_OK, "t.rules:2: quiet_hours:");
	expect_error("[limits]\nquiet_hours = 07:00-07:00\n" RULE_OK, "t.rules:2: quiet_hours:");
	expect_error("[limits]\ntime_zone = Europe/Nowhere\n" RULE_OK,
		     "t.rules:2: time_zone: unknown time zone Europe/Nowhere");
	expect_error("[limits]\ntime_zone = ../../etc/passwd\n" RULE_OK, "t.rules:2: time_zone:");
	expect_error("[limits]\ncolour = red\n" RULE_OK,
		     "t.rules:2: unknown key colour in [limits]");
	expect_error("[limits]\n[limits]\n" RULE_OK, "t.rules:2: [limits] again");
	expect_error("[offers]\n" RULE_OK, "t.rules:1: unknown section [offers]");
	expect_error("[rule Bad Name]\n", "t.rules:1: bad rule name");
	expect_error(RULE_OK RULE_OK, "t.rules:5: rule r again (the first is at line 1)");
	expect_error(RULE_OK "colour = red\n", "t.rules:5: unknown key colour in a [rule]");
	expect_error(RULE_OK "title = again\n", "t.rules:5: title again (the first is at line 3)");
	expect_error(RULE_OK "kind = bargain\n", "t.rules:5: kind: unknown kind bargain");
	expect_error(RULE_OK "channel = sms\n", "t.rules:5: channel: unknown channel sms");
	expect_error(RULE_OK "valid_for = 2 hours\n", "t.rules:5: valid_for: expected a duration");
	expect_error(RULE_OK "valid_for = 0\n", "t.rules:5: valid_for:");
	expect_error(RULE_OK "cooldown = 400d\n", "t.rules:5: cooldown:");
	expect_error(RULE_OK "search_radius_m = 5\n", "t.rules:5: search_radius_m: expected 100..");
	expect_error(RULE_OK "poi_category = Fuel!\n", "t.rules:5: poi_category:");
	expect_error(RULE_OK "codes = generate FUEL- 99\n", "t.rules:5: codes: expected generate");
	expect_error(RULE_OK "codes = random\n", "t.rules:5: codes: expected generate PREFIX LEN");
	expect_error(RULE_OK "audience.make = VW,,Audi\n", "t.rules:5: audience.make:");
	expect_error(RULE_OK "price =\n", "t.rules:5: price: no value");
	expect_error(RULE_OK "just words\n", "t.rules:5: expected key = value");
	expect_error("[rule r]\ntrigger = fuel_below 101\ntitle = t\nbody = b\n",
		     "t.rules:2: trigger: bad fuel_below trigger");
	expect_error("[rule r]\ntrigger = poi_enter fuel\ntitle = t\nbody = b\n",
		     "t.rules:2: trigger: bad poi_enter trigger");
	expect_error("[rule r]\ntrigger = service_due 30 near 100\ntitle = t\nbody = b\n",
		     "t.rules:2: trigger: bad service_due trigger");
	expect_error("[rule r]\ntrigger = driven_since_visit x car_wash\ntitle = t\nbody = b\n",
		     "t.rules:2: trigger: bad driven_since_visit trigger");
	expect_error("[rule r]\ntrigger = rain\ntitle = t\nbody = b\n",
		     "t.rules:2: trigger: unknown trigger");
	expect_error("[rule r]\ntrigger = fuel_below 15\ntitle = {station} {stations}\nbody = b\n",
		     "t.rules:3: title: unknown placeholder {stations}");
	expect_error("[rule r]\ntrigger = fuel_below 15\ntitle = t\nbody = {code\n",
		     "t.rules:4: body: '{' without '}'");
	expect_error("[rule r]\ntrigger = fuel_below 15\ntitle = a } b\nbody = b\n",
		     "t.rules:3: title: '}' without '{'");
	expect_error("[rule r]\ntitle = t\nbody = b\n", "t.rules:1: rule r: trigger is missing");
	expect_error("[rule r]\ntrigger = fuel_below 15\n", "t.rules:1: rule r: title is missing");
	expect_error("[rule r]\ntrigger = fuel_below 95\ntitle = t\nbody = b\n",
		     "t.rules:1: rule r: fuel_below 95 + rearm_pct 10 is above 100");
	expect_error("# nothing\n", "t.rules: no rules");
}

/* All errors come at once, in line order, each on its own line. */
static void test_all_errors_reported(void **state)
{
	struct promo_rules *s = NULL;
	const char *text = "[limits]\n"
			   "per_day = x\n" /* 2 */
			   "[rule a]\n"	   /* 3: body missing */
			   "trigger = fuel_below 15\n"
			   "title = {nope}\n" /* 5 */
			   "bogus = 1\n";     /* 6 */
	int lines = 0;

	(void)state;
	assert_int_equal(parse(text, &s), -EINVAL);
	for (const char *p = err; (p = strchr(p, '\n')); p++)
		lines++;
	assert_int_equal(lines + 1, 4);
	assert_non_null(strstr(err, "t.rules:2: per_day"));
	assert_non_null(strstr(err, "t.rules:5: title: unknown placeholder {nope}"));
	assert_non_null(strstr(err, "t.rules:6: unknown key bogus"));
	assert_non_null(strstr(err, "t.rules:3: rule a: body is missing"));
	assert_true(strstr(err, "t.rules:2:") < strstr(err, "t.rules:5:"));
}

/* The example shipped as /etc/pitstop/promotions.rules parses, one rule per trigger. */
static void test_shipped_example(void **state)
{
	struct promo_rules *s = NULL;
	const struct promo_rule *r;

	(void)state;
	if (promo_rules_load(PITSTOP_SOURCE_DIR "/packaging/promotions.rules", &s, err,
			     sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(s->n, 4);
	assert_int_equal(s->limits.quiet_from_min, 21 * 60 + 30);
	assert_int_equal(s->limits.quiet_to_min, 7 * 60);
	assert_string_equal(s->limits.time_zone, "Europe/Berlin");
	r = promo_rules_find(s, "partner_fuel");
	assert_int_equal(r->range_km_full_tank, 600);
	assert_int_equal(r->rearm_hold_ms, 600000);
	assert_int_equal(r->cooldown_ms, 86400000);
	assert_string_equal(r->code_prefix, "FUEL-");
	assert_int_equal(r->code_len, 8);
	r = promo_rules_find(s, "wash_after_trip");
	assert_int_equal(r->trigger, PROMO_DRIVEN_SINCE_VISIT);
	assert_int_equal(r->driven_m, 400000);
	assert_string_equal(r->trigger_category, "car_wash");
	r = promo_rules_find(s, "dealer_service");
	assert_int_equal(r->trigger, PROMO_SERVICE_DUE);
	assert_int_equal(r->service_days, 30);
	assert_int_equal(r->trigger_radius_m, 2000);
	assert_int_equal(r->makes.n, 2);
	assert_string_equal(r->makes.name[1], "Audi");
	assert_int_equal(r->kind, OFFER_SERVICE);
	r = promo_rules_find(s, "charger_welcome");
	assert_int_equal(r->trigger, PROMO_POI_ENTER);
	assert_string_equal(r->fleets.name[0], "berlin-taxis");
	promo_rules_free(s);
}

/* A code file next to the rules file: codes read, bad and duplicate ones named by line. */
static void test_code_files(void **state)
{
	char dir[] = "/tmp/pitstop-promo-XXXXXX", path[128], codes[128];
	struct promo_rules *s = NULL;
	const char *rules = "[rule r]\ntrigger = fuel_below 15\ntitle = t\nbody = {code}\n"
			    "codes = file codes.txt\n";
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/x.rules", dir);
	snprintf(codes, sizeof(codes), "%s/codes.txt", dir);
	f = fopen(codes, "w");
	assert_non_null(f);
	fputs("# partner codes\nAAA-1\n\n  BBB-2  \nCCC-3\n", f);
	fclose(f);
	assert_int_equal(promo_rules_parse(path, rules, strlen(rules), &s, err, sizeof(err)), 0);
	assert_int_equal(s->rules[0].ncodes, 3);
	assert_string_equal(s->rules[0].codes[1], "BBB-2");
	assert_string_equal(s->rules[0].code_file, codes);
	promo_rules_free(s);

	f = fopen(codes, "w");
	fputs("AAA-1\nno spaces please\nBBB-2\nAAA-1\n", f);
	fclose(f);
	assert_int_equal(promo_rules_parse(path, rules, strlen(rules), &s, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "codes.txt:2: not a promo code"));
	assert_non_null(strstr(err, "codes.txt:4: duplicate code AAA-1"));

	unlink(codes);
	assert_int_equal(promo_rules_parse(path, rules, strlen(rules), &s, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "x.rules:5: cannot read code file"));
	unlink(path);
	rmdir(dir);
}

static void test_time_zones(void **state)
{
	struct promo_rules *s = NULL;

	(void)state;
	/* Names are checked by localtz_valid() (tests/unit/common/test_localtz.c). */
	assert_int_equal(parse("[limits]\ntime_zone = Asia/Tokyo\n" RULE_OK, &s), 0);
	assert_string_equal(s->limits.time_zone, "Asia/Tokyo");
	promo_rules_free(s);
	expect_error("[limits]\ntime_zone = Europe/Atlantis\n" RULE_OK,
		     "t.rules:2: time_zone: unknown time zone Europe/Atlantis");
}

static void test_expand(void **state)
{
	struct promo_vars v = {
		.station = "Aral Nord", .distance = "2.4", .fuel = "12.5", .code = "FUEL-ABC"
	};
	char out[64], small[8], why[128];

	(void)state;
	assert_int_equal(promo_expand("{station} is {distance_km} km ahead ({fuel_pct} %), {{code}}"
				      " {code}{price}",
				      &v, out, sizeof(out), why, sizeof(why)),
			 0);
	assert_string_equal(out, "Aral Nord is 2.4 km ahead (12.5 %), {code} FUEL-ABC");
	assert_int_equal(promo_expand("{sation}", &v, out, sizeof(out), why, sizeof(why)), -EINVAL);
	assert_non_null(strstr(why, "{sation}"));
	/* cut to the buffer, never inside a UTF-8 character: "Grüße" is G r C3BC C39F e */
	v.station = "Grüße";
	assert_int_equal(promo_expand("{station}", &v, small, 4, NULL, 0), 0);
	assert_string_equal(small, "Gr");
	assert_int_equal(promo_expand("{station}", &v, small, 5, NULL, 0), 0);
	assert_string_equal(small, "Grü");
	assert_int_equal(promo_expand("{station}", &v, small, sizeof(small), NULL, 0), 0);
	assert_string_equal(small, "Grüße");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_rule_and_defaults),
		cmocka_unit_test(test_each_error_with_its_line),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_shipped_example),
		cmocka_unit_test(test_code_files),
		cmocka_unit_test(test_time_zones),
		cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
