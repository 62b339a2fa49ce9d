/*
 * Unit tests of the promotion engine (gateway/offers/rules.c) with rules
 * from a rules file, on a real database (whichever backend db_test_util.h
 * selects), real POIs (gateway/poi) and a sink that records: each trigger,
 * the station ahead preferred over a nearer one behind, the remaining
 * range, the audience, the templates, cooldown, per-day and per-week caps
 * on local days of a non-UTC zone, quiet hours across midnight, opt-out,
 * an exhausted code pool, one offer per episode, claims undone when a
 * later check fails, and each suppression logged (once an hour).
 *
 * The engine reads only the latest state it is given, so the tests hand it
 * struct telemetry_vehicle values directly, at chosen wall-clock times.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accounts.h"
#include "db.h"
#include "offer_log.h"
#include "poi.h"
#include "profiles.h"
#include "promo_rules.h"
#include "rules.h"
#include "schema.h"
#include "service.h"
#include "telemetry.h"

static const char VIN1[] = "WDB1234561A000001";
static const char VIN2[] = "WDB1234561A000002";
static const char VIN3[] = "WDB1234561A000003";

#define MAX_OFFERS 16
#define LAT0 52.5
#define LON0 13.4
#define M_PER_DEG_LAT 111195.0
/* 2026-12-01 (a Tuesday) 00:00 UTC */
#define DAY0_MS 1796083200000LL
#define HOUR_MS 3600000LL

struct fixture {
	char name[64];
	struct db *db;
	struct offer_log *log;
	struct poi_db *poi;
	struct profiles *profiles;
	struct promo_rules *set;
	struct rules *r;
	struct offer got[MAX_OFFERS];
	int n;
	char dir[64];
};

static int record(void *arg, const struct offer *o)
{
	struct fixture *f = arg;

	assert_true(f->n < MAX_OFFERS);
	f->got[f->n++] = *o;
	return 0;
}

static double lat_of(double north_m)
{
	return LAT0 + north_m / M_PER_DEG_LAT;
}

/* The POIs of every test, on a line north-south through LON0. */
static void add_pois(struct fixture *f)
{
	static const struct {
		const char *id, *name, *category;
		double north_m;
	} pois[] = {
		{ "st-behind", "Shell Behind", "fuel", -300 },
		{ "st-ahead", "Aral Ahead", "fuel", 800 },
		{ "st-far", "Total Far", "fuel", 30000 },
		{ "wash-1", "Waschpark", "car_wash", 5000 },
		{ "dealer-1", "Autohaus Mitte", "dealer", -20000 },
	};
	struct poi p[sizeof(pois) / sizeof(pois[0])];
	int64_t id;

	memset(p, 0, sizeof(p));
	for (size_t i = 0; i < sizeof(pois) / sizeof(pois[0]); i++) {
		snprintf(p[i].id, sizeof(p[i].id), "%s", pois[i].id);
		snprintf(p[i].name, sizeof(p[i].name), "%s", pois[i].name);
		snprintf(p[i].category, sizeof(p[i].category), "%s", pois[i].category);
		p[i].lat = lat_of(pois[i].north_m);
		p[i].lon = LON0;
	}
	assert_int_equal(
		poi_import_begin(f->poi, "test", (int64_t)(sizeof(p) / sizeof(p[0])), 1, &id), 0);
	assert_int_equal(poi_import_rows(f->poi, id, p, sizeof(p) / sizeof(p[0])), 0);
	assert_true(poi_import_commit(f->poi, id) >= 0);
}

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512];

	assert_non_null(f);
	snprintf(f->name, sizeof(f->name), "promo_%d", count++);
	assert_int_equal(db_test_open(f->name, &f->db), 0);
	if (schema_migrate(f->db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(offer_log_new(f->db, &f->log), 0);
	assert_int_equal(poi_db_new(f->db, &f->poi), 0);
	assert_int_equal(profiles_new(f->db, &f->profiles), 0);
	add_pois(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rules_free(f->r);
	promo_rules_free(f->set);
	profiles_free(f->profiles);
	poi_db_free(f->poi);
	offer_log_free(f->log);
	db_close(f->db);
	if (f->dir[0]) {
		char path[128];

		snprintf(path, sizeof(path), "%s/codes.txt", f->dir);
		unlink(path);
		rmdir(f->dir);
	}
	free(f);
	return 0;
}

/* Loads the rules text (its code files relative to f->dir) into a fresh engine. */
static void use_rules(struct fixture *f, const char *text)
{
	struct rules_config rc = { 0 };
	char err[4096], path[128];

	rules_free(f->r);
	promo_rules_free(f->set);
	f->r = NULL;
	snprintf(path, sizeof(path), "%s/t.rules", f->dir[0] ? f->dir : "/nonexistent");
	if (promo_rules_parse(path, text, strlen(text), &f->set, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	rc.set = f->set;
	rc.poi = f->poi;
	assert_int_equal(rules_new(&rc, f->db, f->log, record, f, &f->r), 0);
}

/* A car north_m north of LAT0, heading (degrees; < 0: unknown), at speed_ms, fuel permille. */
static struct telemetry_vehicle car(const char *vin, double north_m, double heading,
				    double speed_ms, int32_t fuel)
{
	struct telemetry_vehicle v;

	memset(&v, 0, sizeof(v));
	snprintf(v.vin, sizeof(v.vin), "%s", vin);
	v.has_sample = 1;
	v.present = SAMPLE_POSITION | SAMPLE_SPEED | SAMPLE_ODOMETER;
	v.lat_e7 = (int32_t)(lat_of(north_m) * 1e7);
	v.lon_e7 = (int32_t)(LON0 * 1e7);
	v.speed_cms = (int32_t)(speed_ms * 100);
	v.odometer_m = 1000000;
	if (heading >= 0) {
		v.present |= SAMPLE_HEADING;
		v.heading_cdeg = (int32_t)(heading * 100);
	}
	if (fuel >= 0) {
		v.present |= SAMPLE_FUEL;
		v.fuel_permille = fuel;
	}
	return v;
}

static int run(struct fixture *f, const struct telemetry_vehicle *v, int64_t now_ms)
{
	int r;

	assert_int_equal(db_begin(f->db), 0);
	r = rules_after_batch(f->r, v, now_ms);
	assert_true(r >= 0);
	assert_int_equal(db_commit(f->db), 0);
	return r;
}

/* How many suppression rows vin has for reason (all rules). */
static int suppressed(struct fixture *f, const char *vin, const char *reason)
{
	struct rules_suppression *rows = NULL;
	int n = rules_suppressed_list(f->db, vin, RULES_SUPPRESSED_LIST_MAX, &rows), k = 0;

	assert_true(n >= 0);
	for (int i = 0; i < n; i++)
		k += strcmp(rows[i].reason, reason) == 0;
	free(rows);
	return k;
}

static void set_profile(struct fixture *f, const char *vin, const char *make, const char *tz,
			const char *dealer, int opt_out)
{
	struct profile p;

	memset(&p, 0, sizeof(p));
	snprintf(p.vin, sizeof(p.vin), "%s", vin);
	snprintf(p.make, sizeof(p.make), "%s", make);
	snprintf(p.time_zone, sizeof(p.time_zone), "%s", tz);
	snprintf(p.dealer_poi_id, sizeof(p.dealer_poi_id), "%s", dealer);
	p.offers_opt_out = opt_out;
	assert_int_equal(profiles_put(f->profiles, NULL, NULL, &p, 1), 0);
}

#define FUEL_RULE_L(limits, extra)                                                        \
	"[limits]\nper_day = 0\nper_week = 0\n" limits                                    \
	"[rule fuel]\ntrigger = fuel_below 15\npoi_category = fuel\n"                     \
	"search_radius_m = 5000\n"                                                        \
	"title = {station}: 5 ct/l off\n"                                                 \
	"body = Fuel at {fuel_pct} %. {station} is {distance_km} km away. Code {code}.\n" \
	"codes = generate FUEL- 8\narea_radius_m = 200\n" extra
#define FUEL_RULE(extra) FUEL_RULE_L("", extra)

/* A nearer station behind the car loses to one ahead; the text says which and how far. */
static void test_station_ahead_preferred(void **state)
{
	struct fixture *f = *state;
	struct telemetry_vehicle v = car(VIN1, 0, 0 /* north */, 20, 120);

	use_rules(f, FUEL_RULE(""));
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS), 1);
	assert_string_equal(f->got[0].title, "Aral Ahead: 5 ct/l off");
	assert_int_equal(
		strncmp(f->got[0].body, "Fuel at 12 %. Aral Ahead is 0.8 km away. Code FUEL-", 51),
		0);
	assert_int_equal(strncmp(f->got[0].promo_code, "FUEL-", 5), 0);
	assert_int_equal(strlen(f->got[0].promo_code), 13);
	assert_non_null(strstr(f->got[0].body, f->got[0].promo_code));
	assert_int_equal(f->got[0].kind, OFFER_REFUEL);
	assert_true(f->got[0].has_area); /* around the station, not the car */
	assert_int_equal(f->got[0].area_radius_m, 200);
	assert_true(abs(f->got[0].area_lat_e7 - (int32_t)(lat_of(800) * 1e7)) < 10);

	/* heading south the nearer one is ahead */
	v = car(VIN2, 0, 180, 20, 120);
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS), 1);
	assert_string_equal(f->got[1].title, "Shell Behind: 5 ct/l off");
	/* parked (no heading worth the name): the nearest */
	v = car(VIN3, 0, 0, 0, 120);
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS), 1);
	assert_string_equal(f->got[2].title, "Shell Behind: 5 ct/l off");
}

/* Stations beyond the remaining range are skipped: no_poi, and the episode retries. */
static void test_range_limit(void **state)
{
	struct fixture *f = *state;
	struct telemetry_vehicle v = car(VIN1, 0, 0, 20, 2); /* 0.2 % of 100 km: 200 m */

	use_rules(f, FUEL_RULE("range_km_full_tank = 100\n"));
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS), 0);
	assert_int_equal(suppressed(f, VIN1, "no_poi"), 1);
	v.fuel_permille = 90; /* 9 km: the station ahead at 800 m is in range */
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS + 1000), 1);
	assert_string_equal(f->got[0].title, "Aral Ahead: 5 ct/l off");
	v.fuel_permille = 100; /* still low, same episode: nothing new */
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS + 2000), 0);
	assert_int_equal(f->n, 1);
}

/* The audience: only cars of the make; others get nothing and no suppression row. */
static void test_audience(void **state)
{
	struct fixture *f = *state;
	struct telemetry_vehicle v = car(VIN1, 0, 0, 20, 100);

	use_rules(f, FUEL_RULE("audience.make = Audi, Seat\n"));
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS), 0); /* make unknown */
	set_profile(f, VIN1, "Volkswagen", "", "", 0);
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS + 1000), 0);
	assert_int_equal(suppressed(f, VIN1, "no_poi") + suppressed(f, VIN1, "opt_out"), 0);
	set_profile(f, VIN1, "audi", "", "", 0);
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS + 2000), 1);
}

/* One offer per episode; re-armed above 25 %, the next one. */
static void test_one_offer_per_episode(void **state)
{
	struct fixture *f = *state;
	struct telemetry_vehicle v = car(VIN1, 0, 0, 20, 140);
	int64_t t = DAY0_MS + 12 * HOUR_MS;

	use_rules(f, FUEL_RULE(""));
	assert_int_equal(run(f, &v, t), 1);
	for (int i = 1; i <= 5; i++) {
		v.fuel_permille = 140 + (i % 2) * 20; /* 14 %, 16 %, ...: noise */
		assert_int_equal(run(f, &v, t + i * 1000), 0);
	}
	v.fuel_permille = 900;
	assert_int_equal(run(f, &v, t + 10000), 0);
	v.fuel_permille = 120;
	assert_int_equal(run(f, &v, t + 20000), 1);
	assert_int_equal(f->n, 2);
}

#define ENTER_RULE(limits, extra)                                             \
	"[limits]\n" limits "[rule wash]\ntrigger = poi_enter car_wash 200\n" \
	"title = {station}\nbody = Code {code}\ncodes = generate WASH- 6\n" extra

/* Enter (offer), leave (the episode closes), enter again. */
static int enter_leave(struct fixture *f, const char *vin, int64_t t)
{
	struct telemetry_vehicle in = car(vin, 5000, 0, 5, -1), out = car(vin, 0, 0, 20, -1);
	int r = run(f, &in, t);

	assert_int_equal(run(f, &in, t + 1000), 0); /* still inside: same episode */
	assert_int_equal(run(f, &out, t + 2000), 0);
	return r;
}

static void test_poi_enter_and_cooldown(void **state)
{
	struct fixture *f = *state;
	int64_t t = DAY0_MS + 10 * HOUR_MS;

	use_rules(f, ENTER_RULE("per_day = 0\nper_week = 0\n", "cooldown = 1h\n"));
	assert_int_equal(enter_leave(f, VIN1, t), 1);
	assert_string_equal(f->got[0].title, "Waschpark");
	assert_int_equal(f->got[0].kind, OFFER_LOYALTY);
	assert_int_equal(enter_leave(f, VIN1, t + 30 * 60000), 0); /* 30 min later */
	assert_int_equal(suppressed(f, VIN1, "cooldown"), 1);
	assert_int_equal(enter_leave(f, VIN1, t + 61 * 60000), 1); /* 61 min after the first */
	assert_int_equal(f->n, 2);
}

/*
 * per_day 1 and per_week 2 on Tokyo's days (UTC+9): 14:00 and 14:30 UTC are
 * one local day (23:00, 23:30), 15:30 UTC is the next (00:30) although it is
 * the same UTC day; the third local day of the week is over the weekly cap.
 */
static void test_caps_on_local_days(void **state)
{
	struct fixture *f = *state;
	int64_t t = DAY0_MS + 14 * HOUR_MS; /* Tue 23:00 in Tokyo */

	use_rules(f, ENTER_RULE("per_day = 1\nper_week = 2\ntime_zone = Asia/Tokyo\n", ""));
	assert_int_equal(enter_leave(f, VIN1, t), 1);
	assert_int_equal(enter_leave(f, VIN1, t + 30 * 60000), 0);
	assert_int_equal(suppressed(f, VIN1, "cap_day"), 1);
	assert_int_equal(enter_leave(f, VIN1, t + 90 * 60000), 1);   /* Wed 00:30 in Tokyo */
	assert_int_equal(enter_leave(f, VIN1, t + 25 * HOUR_MS), 0); /* Thu 00:00 in Tokyo */
	assert_int_equal(suppressed(f, VIN1, "cap_week"), 1);
	assert_int_equal(f->n, 2);
	/* the next ISO week (Mon 7 Dec in Tokyo) */
	assert_int_equal(enter_leave(f, VIN1, DAY0_MS + 5 * 24 * HOUR_MS + 16 * HOUR_MS), 1);
	/* another car has caps of its own, and a profile zone wins over the default */
	set_profile(f, VIN2, "", "UTC", "", 0);
	assert_int_equal(enter_leave(f, VIN2, t), 1);
	assert_int_equal(enter_leave(f, VIN2, t + 90 * 60000), 0); /* 15:30 UTC: same UTC day */
	assert_int_equal(suppressed(f, VIN2, "cap_day"), 1);
}

/* Quiet hours 22:00-06:00 in Berlin (UTC+1 in December), across midnight. */
static void test_quiet_hours_across_midnight(void **state)
{
	struct fixture *f = *state;
	struct telemetry_vehicle v = car(VIN1, 0, 0, 20, 100);

	use_rules(f, FUEL_RULE_L("quiet_hours = 22:00-06:00\ntime_zone = Europe/Berlin\n", ""));
	assert_int_equal(run(f, &v, DAY0_MS + 20 * HOUR_MS + 59 * 60000), 1); /* 21:59 */
	v = car(VIN2, 0, 0, 20, 100);
	assert_int_equal(run(f, &v, DAY0_MS + 21 * HOUR_MS), 0);	      /* 22:00 */
	assert_int_equal(run(f, &v, DAY0_MS + 23 * HOUR_MS + 30 * 60000), 0); /* 00:30 */
	assert_int_equal(run(f, &v, DAY0_MS + 28 * HOUR_MS + 59 * 60000), 0); /* 05:59 */
	assert_int_equal(suppressed(f, VIN2, "quiet_hours"), 3); /* three hours, a row each */
	assert_int_equal(run(f, &v, DAY0_MS + 29 * HOUR_MS), 1); /* 06:00: the episode retried */
	assert_int_equal(f->n, 2);
	/* a car in Lisbon (UTC+0): 22:30 UTC is quiet there, 21:30 UTC is not */
	set_profile(f, VIN3, "", "Europe/Lisbon", "", 0);
	v = car(VIN3, 0, 0, 20, 100);
	assert_int_equal(run(f, &v, DAY0_MS + 22 * HOUR_MS + 30 * 60000), 0);
	assert_int_equal(suppressed(f, VIN3, "quiet_hours"), 1);
	assert_int_equal(run(f, &v, DAY0_MS + 45 * HOUR_MS + 30 * 60000), 1); /* next day 21:30 */
}

/* A repeated suppression is one row per vehicle, rule and reason an hour. */
static void test_suppression_log_bounded(void **state)
{
	struct fixture *f = *state;
	struct telemetry_vehicle v = car(VIN1, 0, 0, 20, 100);
	struct rules_suppression *rows = NULL;
	int64_t t = DAY0_MS + 2 * HOUR_MS;

	use_rules(f, FUEL_RULE_L("quiet_hours = 00:00-12:00\n", ""));
	for (int i = 0; i < 50; i++)
		assert_int_equal(run(f, &v, t + i * 1000), 0);
	assert_int_equal(suppressed(f, VIN1, "quiet_hours"), 1);
	assert_int_equal(run(f, &v, t + HOUR_MS), 0);
	assert_int_equal(rules_suppressed_list(f->db, VIN1, 10, &rows), 2);
	assert_string_equal(rows[0].rule, "fuel");
	assert_string_equal(rows[0].reason, "quiet_hours");
	assert_int_equal(rows[0].time_ms, t + HOUR_MS); /* newest first */
	assert_non_null(strstr(rows[0].detail, "03:00 in UTC"));
	free(rows);
	/* the cleanup job: rows older than 30 days go */
	assert_int_equal(rules_cleanup_job(f->db, t + 30 * 24 * HOUR_MS + 1, NULL), 0);
	assert_int_equal(suppressed(f, VIN1, "quiet_hours"), 1);
}

static void test_opt_out(void **state)
{
	struct fixture *f = *state;
	struct telemetry_vehicle v = car(VIN1, 0, 0, 20, 100);

	use_rules(f, FUEL_RULE(""));
	set_profile(f, VIN1, "", "", "", 1);
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS), 0);
	assert_int_equal(suppressed(f, VIN1, "opt_out"), 1);
	assert_int_equal(f->n, 0);
}

/* Writes the code file of f's rules. */
static void code_file(struct fixture *f, const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(f->dir, sizeof(f->dir), "/tmp/pitstop-promo-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/codes.txt", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/*
 * A pool of two codes: two cars get one each, the third is suppressed
 * no_codes. Its day-cap claim was undone, so a second rule still offers it
 * something within per_day 1.
 */
static void test_pool_exhaustion_undoes_claims(void **state)
{
	struct fixture *f = *state;
	const char *vins[] = { VIN1, VIN2, VIN3 };
	struct telemetry_vehicle v;

	code_file(f, "WASH-A1\nWASH-B2\n");
	use_rules(f, "[limits]\nper_day = 1\nper_week = 0\n"
		     "[rule wash]\ntrigger = poi_enter car_wash 200\ntitle = {station}\n"
		     "body = Code {code}\ncodes = file codes.txt\n"
		     "[rule fuel]\ntrigger = fuel_below 15\ntitle = Fuel\nbody = {code}\n"
		     "codes = generate FUEL- 6\n");
	for (int i = 0; i < 3; i++) {
		v = car(vins[i], 5000, 0, 5, -1);
		assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS + i), i < 2 ? 1 : 0);
	}
	assert_int_equal(f->n, 2);
	assert_string_not_equal(f->got[0].promo_code, f->got[1].promo_code);
	for (int i = 0; i < 2; i++)
		assert_true(strcmp(f->got[i].promo_code, "WASH-A1") == 0 ||
			    strcmp(f->got[i].promo_code, "WASH-B2") == 0);
	assert_int_equal(suppressed(f, VIN3, "no_codes"), 1);
	v = car(VIN3, 5000, 0, 5, 100); /* low on fuel too */
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS + 10), 1);
	assert_string_equal(f->got[2].title, "Fuel");
	/* and VIN1 is at its cap: its fuel offer is suppressed */
	v = car(VIN1, 5000, 0, 5, 100);
	assert_int_equal(run(f, &v, DAY0_MS + 12 * HOUR_MS + 20), 0);
	assert_int_equal(suppressed(f, VIN1, "cap_day"), 1);
	/* reloading the rules adds no code twice */
	rules_free(f->r);
	f->r = NULL;
	{
		struct rules_config rc = { .set = f->set, .poi = f->poi };

		assert_int_equal(rules_new(&rc, f->db, f->log, record, f, &f->r), 0);
	}
	v = car(VIN3, 0, 0, 20, -1);
	assert_int_equal(run(f, &v, DAY0_MS + 13 * HOUR_MS), 0); /* leaves */
	v = car(VIN3, 5000, 0, 5, -1);
	assert_int_equal(run(f, &v, DAY0_MS + 36 * HOUR_MS), 0); /* the next day: still none */
	assert_int_equal(suppressed(f, VIN3, "no_codes"), 2);
}

/* 400 km since the last car wash (or since first seen); a visit starts over. */
static void test_driven_since_visit(void **state)
{
	struct fixture *f = *state;
	struct telemetry_vehicle v = car(VIN1, 0, 0, 25, -1);
	int64_t t = DAY0_MS + 12 * HOUR_MS;

	use_rules(f, "[limits]\nper_day = 0\nper_week = 0\n"
		     "[rule wash]\ntrigger = driven_since_visit 400 car_wash\n"
		     "poi_category = car_wash\nsearch_radius_m = 10000\n"
		     "title = {station} after {driven_km} km\nbody = {code}\n"
		     "codes = generate W- 6\n");
	v.odometer_m = 1000000;
	assert_int_equal(run(f, &v, t), 0); /* first seen: counts from here */
	v.odometer_m = 1399999;
	assert_int_equal(run(f, &v, t + 1000), 0);
	v.odometer_m = 1400000;
	assert_int_equal(run(f, &v, t + 2000), 1);
	assert_string_equal(f->got[0].title, "Waschpark after 400 km");
	v.odometer_m = 1500000;
	assert_int_equal(run(f, &v, t + 3000), 0); /* same episode */
	/* driving past the wash at speed is no visit; stopping there is */
	v = car(VIN1, 5000, 0, 25, -1);
	v.odometer_m = 1500100;
	assert_int_equal(run(f, &v, t + 4000), 0);
	v.speed_cms = 0;
	assert_int_equal(run(f, &v, t + 5000), 0);
	v = car(VIN1, 0, 0, 25, -1);
	v.odometer_m = 1800000; /* 300 km after the visit */
	assert_int_equal(run(f, &v, t + 6000), 0);
	v.odometer_m = 1900100;
	assert_int_equal(run(f, &v, t + 7000), 1);
	assert_int_equal(f->n, 2);
}

/*
 * service_due near the dealer: with the repo's plans and no service
 * history, the car's items are due (overdue) now; offered once per visit to
 * the dealer named in its profile, not near another, not far from it.
 */
static void test_service_due_near_dealer(void **state)
{
	struct fixture *f = *state;
	struct telemetry_vehicle v = car(VIN1, -20000 + 300, 0, 5, -1);
	int64_t t = DAY0_MS + 12 * HOUR_MS;
	char err[512];

	if (service_plans_use(PITSTOP_SOURCE_DIR "/gateway/service/plans.json", err, sizeof(err)) <
	    0)
		fail_msg("%s", err);
	{
		struct accounts *acc = NULL;
		struct service_record rec;

		memset(&rec, 0, sizeof(rec));
		snprintf(rec.vin, sizeof(rec.vin), "%s", VIN1);
		rec.day = DAY0_MS / 86400000 - 3 * 365; /* serviced three years ago */
		rec.has_odometer = 1;
		rec.odometer_m = 10000000;
		assert_int_equal(
			service_items_parse("oil_service;inspection", &rec, err, sizeof(err)), 0);
		assert_int_equal(accounts_new(f->db, &acc), 0);
		assert_int_equal(service_record_add(f->db, acc, NULL, &rec, t, NULL), 0);
		accounts_free(acc);
	}
	use_rules(f, "[limits]\nper_day = 0\nper_week = 0\n"
		     "[rule svc]\ntrigger = service_due 30 near_dealer 1000\n"
		     "title = Service in {due_days} days at {station}\nbody = {code}\n"
		     "codes = generate SVC- 6\narea_radius_m = 0\n");
	assert_int_equal(run(f, &v, t), 0); /* no dealer in its profile */
	set_profile(f, VIN1, "", "", "dealer-1", 0);
	v.odometer_m = 5000000;
	assert_int_equal(run(f, &v, t + 1000), 1);
	assert_non_null(strstr(f->got[0].title, "at Autohaus Mitte"));
	assert_false(f->got[0].has_area);
	assert_int_equal(f->got[0].kind, OFFER_SERVICE);
	assert_int_equal(run(f, &v, t + 2000), 0); /* same visit */
	v = car(VIN1, 0, 0, 20, -1);
	assert_int_equal(run(f, &v, t + 3000), 0); /* away: the visit ends */
}

/*
 * Two gateway instances on one database share the caps and the cooldown:
 * each claim is in the database, not in an instance's memory.
 */
static void test_two_instances_share_caps(void **state)
{
	struct fixture *f = *state;
	struct rules_config rc = { 0 };
	struct rules *b = NULL;
	struct db *db2 = NULL;
	struct telemetry_vehicle in = car(VIN1, 5000, 0, 5, 100);
	char url[512], err[512];

	use_rules(f, "[limits]\nper_day = 1\nper_week = 0\n"
		     "[rule wash]\ntrigger = poi_enter car_wash 200\ntitle = w\nbody = {code}\n"
		     "[rule fuel]\ntrigger = fuel_below 15\ntitle = f\nbody = {code}\n");
	assert_int_equal(db_test_url(f->name, url, sizeof(url)), 0);
	assert_int_equal(db_open(url, DB_READ_WRITE, &db2, err, sizeof(err)), 0);
	rc.set = f->set;
	rc.poi = f->poi; /* POIs are read through the first handle: the same rows */
	assert_int_equal(rules_new(&rc, db2, f->log, record, f, &b), 0);
	/* instance A: the wash offer; instance B: the fuel rule fires, capped */
	assert_int_equal(rules_after_batch(f->r, &in, DAY0_MS + 12 * HOUR_MS), 1);
	assert_int_equal(rules_after_batch(b, &in, DAY0_MS + 12 * HOUR_MS + 1), 0);
	assert_int_equal(suppressed(f, VIN1, "cap_day"), 1);
	/* and neither instance opens the wash episode again */
	assert_int_equal(rules_after_batch(b, &in, DAY0_MS + 12 * HOUR_MS + 2), 0);
	assert_int_equal(f->n, 1);
	rules_free(b);
	db_close(db2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_station_ahead_preferred, setup, teardown),
		cmocka_unit_test_setup_teardown(test_range_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audience, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_offer_per_episode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_poi_enter_and_cooldown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_caps_on_local_days, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quiet_hours_across_midnight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_suppression_log_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opt_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_exhaustion_undoes_claims, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_driven_since_visit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_service_due_near_dealer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_instances_share_caps, setup, teardown),
	};

	fprintf(stderr, "promo engine tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
