/*
 * The service prediction (gateway/service/predict.c), pure: no database,
 * so no PostgreSQL twin. Usage from daily rollups (steady, weekday rhythm,
 * gaps while driving, months without telemetry, a change of use, a season
 * seen last year, glitches and a rollback) and the per-item prediction
 * (a new car, overdue, a time-only plan, a plan with no criterion).
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "predict.h"

#define DAY0 20000 /* 2024-10-05, a Saturday */
#define MAXR 800

static struct odo_reading r[MAXR];
static size_t nr;

/* A car reading for day with the day's first and last odometer (km). */
static void car(int64_t day, double first_km, double last_km)
{
	assert_true(nr < MAXR);
	memset(&r[nr], 0, sizeof(r[nr]));
	r[nr].day = day;
	r[nr].odometer_m = (int64_t)(last_km * 1000);
	r[nr].source = READING_CAR;
	r[nr].has_first = 1;
	r[nr].first_odometer_m = (int64_t)(first_km * 1000);
	nr++;
}

static void service(int64_t day, double km)
{
	assert_true(nr < MAXR);
	memset(&r[nr], 0, sizeof(r[nr]));
	r[nr].day = day;
	r[nr].odometer_m = (int64_t)(km * 1000);
	r[nr].source = READING_SERVICE;
	nr++;
}

/* days readings of km_per_day each from day from, odometer from odo km;
 * returns the odometer after. */
static double steady(int64_t from, int days, double odo, double km_per_day)
{
	for (int d = 0; d < days; d++) {
		car(from + d, odo, odo + km_per_day);
		odo += km_per_day;
	}
	return odo;
}

static struct usage usage_of(int64_t as_of, double fleet_km)
{
	struct predict_input in = {
		.as_of_day = as_of,
		.readings = r,
		.nreadings = nr,
		.first_use_day = nr ? r[0].day : as_of,
		.fleet_m_per_day = fleet_km * 1000,
	};
	struct usage u;
	assert_int_equal(predict_usage(&in, &u), 0);
	return u;
}

static const struct plan_item oil = { .name = "oil_service",
				      .every_m = 15000000,
				      .every_months = 24 };

static int setup(void **state)
{
	nr = 0;
	return 0;
}

static void test_add_months(void **state)
{
	int64_t jan31 = 19753;							/* 2024-01-31 */
	assert_int_equal(predict_add_months(jan31, 1), jan31 + 29);		/* 2024-02-29 */
	assert_int_equal(predict_add_months(jan31 + 366, 1), jan31 + 366 + 28); /* 2025-02-28 */
	assert_int_equal(predict_add_months(jan31, 24), jan31 + 731);
	assert_int_equal(predict_add_months(jan31, -13), jan31 - 396); /* 2022-12-31 */
	assert_int_equal(predict_add_months(0, 0), 0);
}

static void test_steady_car(void **state)
{
	double odo = steady(DAY0, 400, 10000, 50);
	struct usage u = usage_of(DAY0 + 399, 30);
	assert_int_equal(u.basis, BASIS_TELEMETRY);
	assert_true(fabs(u.m_per_day - 50000) < 1000);
	assert_true(u.m_per_day_lo <= u.m_per_day && u.m_per_day <= u.m_per_day_hi);
	assert_int_equal(u.last_odometer_m, (int64_t)(odo * 1000));
	assert_int_equal(u.ncorrections, 0);

	/* serviced on day 300 at its then odometer: due 300 days later */
	struct last_service ls = { .done = 1,
				   .day = DAY0 + 300,
				   .has_odometer = 1,
				   .odometer_m = (int64_t)((10000 + 301 * 50) * 1000) };
	struct item_prediction p;
	assert_int_equal(predict_item(&oil, &ls, &u, DAY0, DAY0 + 399, &p), 0);
	assert_string_equal(p.item, "oil_service");
	assert_int_equal(p.reason, DUE_DISTANCE);
	assert_true(llabs(p.due_day - (DAY0 + 600)) <= 2);
	assert_true(p.due_day_lo <= p.due_day && p.due_day <= p.due_day_hi);
	assert_int_equal(p.has_due_odometer, 1);
	assert_int_equal(p.due_odometer_m, ls.odometer_m + 15000000);
	assert_true(llabs(p.distance_to_service_m - (15000000 - 99 * 50000)) < 100000);
	assert_true(llabs(p.time_to_service_s - (int64_t)201 * 86400) <= 2 * 86400);
	assert_int_equal(p.is_service_due, 0);
	assert_string_equal(predict_reason_name(p.reason), "distance");
	assert_string_equal(predict_basis_name(p.basis), "telemetry");
}

/* Mon-Fri 60 km, parked at weekends (no rollups then). */
static void test_weekday_rhythm(void **state)
{
	double odo = 1000;
	for (int64_t d = DAY0; d < DAY0 + 200; d++) {
		int wd = (int)((d + 3) % 7);
		if (wd < 5) {
			car(d, odo, odo + 60);
			odo += 60;
		}
	}
	struct usage u = usage_of(DAY0 + 199, 30);
	assert_int_equal(u.basis, BASIS_TELEMETRY);
	assert_true(fabs(u.m_per_day - 60000.0 * 5 / 7) < 2000);
	assert_true(u.weekday_factor[5] < 0.2 && u.weekday_factor[6] < 0.2);
	for (int w = 0; w < 5; w++)
		assert_true(u.weekday_factor[w] > 1.2);
	/* what it expects over a week is the week's distance */
	assert_true(fabs(predict_distance(&u, u.m_per_day, u.last_day, u.last_day + 7) - 300000) <
		    10000);
}

static void test_new_car_without_history(void **state)
{
	struct usage u = usage_of(DAY0, 40);
	assert_int_equal(u.basis, BASIS_FLEET_AVERAGE);
	assert_int_equal(u.has_odometer, 0);
	assert_true(fabs(u.m_per_day - 40000) < 1);
	struct plan_item insp = {
		.name = "inspection", .every_m = 30000000, .every_months = 24, .first_months = 12
	};
	struct item_prediction p;
	assert_int_equal(predict_item(&insp, NULL, &u, DAY0, DAY0, &p), 0);
	/* the first is due a year after first use (30,000 km would take 750 days) */
	assert_int_equal(p.reason, DUE_TIME);
	assert_int_equal(p.due_day, predict_add_months(DAY0, 12));
	assert_int_equal(p.basis, BASIS_FLEET_AVERAGE);
	assert_int_equal(p.due_odometer_m, 30000000);
	assert_int_equal(p.is_service_due, 0);
}

/* A replaced cluster: the odometer drops by 30,000 km and runs on. */
static void test_odometer_rollback(void **state)
{
	double odo = steady(DAY0, 200, 50000, 50);
	steady(DAY0 + 200, 200, odo - 30000, 50);
	struct usage u = usage_of(DAY0 + 399, 30);
	assert_int_equal(u.basis, BASIS_TELEMETRY);
	assert_true(fabs(u.m_per_day - 50000) < 1500);
	assert_int_equal(u.ncorrections, 1);
	assert_int_equal(u.corrections[0].day, DAY0 + 200);
	assert_int_equal(u.corrections[0].shift_m, -30000000);

	/* serviced on the old scale on day 150: due 300 days later all the same */
	struct last_service ls = { .done = 1,
				   .day = DAY0 + 150,
				   .has_odometer = 1,
				   .odometer_m = (int64_t)((50000 + 151 * 50) * 1000) };
	struct item_prediction p;
	assert_int_equal(predict_item(&oil, &ls, &u, DAY0, DAY0 + 399, &p), 0);
	assert_true(llabs(p.due_day - (DAY0 + 450)) <= 2);
	assert_int_equal(p.due_odometer_m, ls.odometer_m + 15000000 - 30000000);
}

/* Single bad readings (down, far up, a spike) change nothing. */
static void test_odometer_glitches(void **state)
{
	steady(DAY0, 300, 20000, 40);
	r[100].odometer_m -= 300000;
	r[150].odometer_m += 900000000;
	r[200].odometer_m += 200000;
	struct usage u = usage_of(DAY0 + 299, 30);
	assert_int_equal(u.ncorrections, 0);
	assert_true(fabs(u.m_per_day - 40000) < 1000);
	assert_int_equal(u.last_odometer_m, (int64_t)((20000 + 300 * 40) * 1000));
}

/* The agent offline for 60 days while the car drives: no dip in the rate. */
static void test_gap_while_driving(void **state)
{
	double odo = steady(DAY0, 100, 5000, 70);
	odo += 60 * 70; /* driven, not reported */
	steady(DAY0 + 160, 60, odo, 70);
	struct usage u = usage_of(DAY0 + 219, 30);
	assert_int_equal(u.basis, BASIS_TELEMETRY);
	assert_true(fabs(u.m_per_day - 70000) < 2000);
	/* its silences were driving: a new one counts as driving */
	assert_true(u.silent_factor > 0.8);
}

/* A car that parks for weeks, silent again for 30 days: it is parked. */
static void test_pause_in_progress(void **state)
{
	double odo = 1000;
	for (int cycle = 0; cycle < 4; cycle++) {
		odo = steady(DAY0 + cycle * 70, 40, odo, 60); /* 40 days on, 30 parked */
	}
	int64_t last = DAY0 + 3 * 70 + 39, as_of = last + 30;
	struct usage u = usage_of(as_of, 30);
	assert_int_equal(u.last_day, last);
	assert_true(u.silent_factor < 0.3);
	struct last_service ls = {
		.done = 1, .day = DAY0, .has_odometer = 1, .odometer_m = 1000000
	};
	struct item_prediction p;
	assert_int_equal(predict_item(&oil, &ls, &u, DAY0, as_of, &p), 0);
	/* the 30 silent days add little to what it has driven */
	assert_true(p.distance_to_service_m >
		    15000000 - (int64_t)(odo - 1000) * 1000 - 30 * 60000 * 3 / 10);
}

/* Months without telemetry: the newer service visit is the basis. */
static void test_months_without_telemetry(void **state)
{
	steady(DAY0, 100, 5000, 50);
	service(DAY0 + 350, 5000 + 350 * 30.0);
	struct usage u = usage_of(DAY0 + 400, 80);
	assert_int_equal(u.basis, BASIS_SERVICE_HISTORY);
	assert_int_equal(u.last_day, DAY0 + 350);
	assert_int_equal(u.last_odometer_m, (int64_t)((5000 + 350 * 30.0) * 1000));
	/* from the first reading to the visit: 350*30 km in 350 days */
	assert_true(fabs(u.m_per_day - 30000) < 500);
	assert_string_equal(predict_basis_name(u.basis), "service_history");
}

/* 30 km a day for 300 days, then 120: the estimate follows the change. */
static void test_change_of_use(void **state)
{
	double odo = steady(DAY0, 300, 1000, 30);
	steady(DAY0 + 300, 60, odo, 120);
	struct usage u = usage_of(DAY0 + 359, 30);
	assert_true(u.m_per_day > 100000);
}

/* Last year the next month was twice as busy: this year's estimate says so. */
static void test_season_from_last_year(void **state)
{
	double odo = 1000;
	for (int d = 0; d < 540; d++) {
		int yd = d % 365;
		double km = yd >= 180 && yd < 260 ? 80 : 40;
		car(DAY0 + d, odo, odo + km);
		odo += km;
	}
	/* day 539 is year-day 174: busy days start in 6 days */
	struct usage u = usage_of(DAY0 + 539, 30);
	double next30 = predict_distance(&u, u.m_per_day, u.last_day, u.last_day + 30) / 30;
	assert_true(next30 > 55000);
	/* and quieter again once last year's busy days were over */
	assert_true(u.season_factor[3] < 0.8);
}

/* 100 km a day since a service on day 0: 15,000 km were reached on day 150. */
static void test_overdue(void **state)
{
	steady(DAY0, 200, 0, 100);
	struct usage u = usage_of(DAY0 + 199, 30);
	struct last_service ls = { .done = 1, .day = DAY0, .has_odometer = 1, .odometer_m = 0 };
	struct item_prediction p;
	assert_int_equal(predict_item(&oil, &ls, &u, DAY0, DAY0 + 199, &p), 0);
	assert_int_equal(p.is_service_due, 1);
	assert_int_equal(p.reason, DUE_DISTANCE);
	assert_true(llabs(p.due_day - (DAY0 + 149)) <= 1);
	assert_true(p.distance_to_service_m < -4900000 && p.distance_to_service_m > -5100000);
	assert_true(p.time_to_service_s < 0);
}

static void test_time_only_plan(void **state)
{
	steady(DAY0, 100, 0, 100);
	struct usage u = usage_of(DAY0 + 99, 30);
	struct plan_item fluid = { .name = "brake_fluid", .every_months = 24 };
	struct last_service ls = { .done = 1, .day = DAY0 + 10 };
	struct item_prediction p;
	assert_int_equal(predict_item(&fluid, &ls, &u, DAY0, DAY0 + 99, &p), 0);
	assert_int_equal(p.reason, DUE_TIME);
	assert_int_equal(p.has_due_odometer, 0);
	assert_int_equal(p.distance_to_service_m, 0);
	assert_int_equal(p.due_day, predict_add_months(DAY0 + 10, 24));
	assert_int_equal(p.due_day_lo, p.due_day);
	assert_int_equal(p.due_day_hi, p.due_day);
	assert_int_equal(p.time_to_service_s, (p.due_day - (DAY0 + 99)) * 86400);
	assert_string_equal(predict_reason_name(p.reason), "time");
}

static void test_invalid(void **state)
{
	struct usage u = usage_of(DAY0, 30);
	struct plan_item none = { .name = "nothing" };
	struct item_prediction p;
	assert_int_equal(predict_item(&none, NULL, &u, DAY0, DAY0, &p), -EINVAL);
	assert_int_equal(predict_item(NULL, NULL, &u, DAY0, DAY0, &p), -EINVAL);
	assert_int_equal(predict_usage(NULL, &u), -EINVAL);
	/* a parked car with a distance plan: never by distance, so by time */
	steady(DAY0, 30, 0, 0);
	u = usage_of(DAY0 + 200, 0);
	struct last_service ls = { .done = 1, .day = DAY0, .has_odometer = 1, .odometer_m = 0 };
	assert_int_equal(predict_item(&oil, &ls, &u, DAY0, DAY0 + 200, &p), 0);
	assert_int_equal(p.reason, DUE_TIME);
	assert_int_equal(p.due_day, predict_add_months(DAY0, 24));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_months),
		cmocka_unit_test_setup(test_steady_car, setup),
		cmocka_unit_test_setup(test_weekday_rhythm, setup),
		cmocka_unit_test_setup(test_new_car_without_history, setup),
		cmocka_unit_test_setup(test_odometer_rollback, setup),
		cmocka_unit_test_setup(test_odometer_glitches, setup),
		cmocka_unit_test_setup(test_gap_while_driving, setup),
		cmocka_unit_test_setup(test_pause_in_progress, setup),
		cmocka_unit_test_setup(test_months_without_telemetry, setup),
		cmocka_unit_test_setup(test_change_of_use, setup),
		cmocka_unit_test_setup(test_season_from_last_year, setup),
		cmocka_unit_test_setup(test_overdue, setup),
		cmocka_unit_test_setup(test_time_only_plan, setup),
		cmocka_unit_test_setup(test_invalid, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
