/*
 * service_accuracy: how well the service prediction (gateway/service/
 * predict.c, the very code the gateway runs) foretells the day a car falls
 * due, on a simulated fleet (issue 10 item 7).
 *
 * The simulator drives VEHICLES cars for SIM_DAYS days from a fixed seed:
 * commuters, weekend drivers, seasonal cars, high-mileage fleet cars,
 * irregular cars with long pauses, cars whose use changes, and cars whose
 * agent goes offline for weeks while they keep driving; all of them with
 * winter/summer rhythm, holidays, occasional odometer glitches and a few
 * odometer rollbacks (a replaced cluster). A car sends a daily rollup
 * (first and last odometer) on each day it drives while its agent is
 * online; the plan is an oil service every 15,000 km or 24 months and the
 * car is serviced when due, some days late. For each car one due event is
 * chosen; 30 days before it, three forecasts see only what was known then:
 *   ours        predict_usage() + predict_item()
 *   naive       the dealer's rule: last service + interval at the fleet's
 *               average daily distance (or 24 months if sooner)
 *   avg_rate    the car's average distance per day over all its readings
 * and each is compared with the day the car really reached 15,000 km or 24
 * months. Prints key=value lines (--detail adds per-pattern figures, the
 * band's coverage, the run time, and the fallbacks' accuracy on the same
 * events with the rollups removed).
 */
#include "predict.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VEHICLES 1000
#define SIM_DAYS 730
#define SIM_START 19723 /* 2024-01-01 */
#define DEFAULT_SEED 20261201ULL
#define INTERVAL_M 15000000LL
#define INTERVAL_MONTHS 24
#define MAX_READINGS (SIM_DAYS + 64)
#define MAX_DUES 64

enum pattern {
	P_COMMUTER,
	P_WEEKEND,
	P_SEASONAL,
	P_FLEET,
	P_IRREGULAR,
	P_CHANGE,
	P_GAPS,
	P_COUNT,
};

static const char *const pattern_name[P_COUNT] = {
	"commuter", "weekend", "seasonal", "fleet", "irregular", "change", "gaps",
};

/* splitmix64: small, fast, and the same on every machine. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double uni(void)
{
	return (double)(rng_next() >> 11) / 9007199254740992.0;
}

static double uniform(double a, double b)
{
	return a + (b - a) * uni();
}

static double gauss(void)
{
	double u1 = uni(), u2 = uni();
	if (u1 < 1e-12)
		u1 = 1e-12;
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* Monday 0 .. Sunday 6. */
static int weekday(int64_t day)
{
	return (int)((day + 3) % 7);
}

/* Day of the year 0..364 (near enough for seasons and holidays). */
static int yday(int64_t day)
{
	return (int)((day - SIM_START) % 365);
}

struct vehicle {
	enum pattern pattern;
	double km[SIM_DAYS]; /* true distance per day */
	int online[SIM_DAYS];
	int64_t start_odo_m;
	int64_t rollback_day; /* 0: none */
	int64_t rollback_m;
	struct odo_reading readings[MAX_READINGS];
	size_t nreadings;
	struct due {
		int64_t due_day;
		int64_t ls_day, ls_odo_m; /* the service it counts from */
		int64_t visit_day;
	} dues[MAX_DUES];
	int ndues;
};

/* The base day's distance of a pattern (km), before season and holidays. */
static double base_km(enum pattern p, int64_t day, const double *par)
{
	int wd = weekday(day);
	int weekend = wd >= 5;
	switch (p) {
	case P_COMMUTER:
	case P_GAPS:
		if (!weekend)
			return uni() < 0.95 ? par[0] * fmax(0.3, 1 + 0.15 * gauss()) +
						      (uni() < 0.2 ? uniform(5, 30) : 0)
					    : 0;
		return uni() < 0.6 ? uniform(10, par[1]) : 0;
	case P_WEEKEND:
		if (!weekend)
			return uni() < 0.15 ? uniform(5, 25) : 0;
		return uni() < 0.85 ? uniform(30, par[0]) : 0;
	case P_SEASONAL:
		return uni() < 0.7 ? par[0] * fmax(0.2, 1 + 0.3 * gauss()) : 0;
	case P_FLEET:
		if (wd == 6)
			return uni() < 0.1 ? uniform(50, 200) : 0;
		if (wd == 5)
			return uni() < 0.4 ? uniform(80, 250) : 0;
		return uni() < 0.97 ? par[0] * fmax(0.3, 1 + 0.2 * gauss()) : 0;
	case P_IRREGULAR:
		return uni() < 0.7 ? uniform(20, par[0]) : 0;
	default:
		return 0;
	}
}

/* Fills v->km and v->online for pattern p. */
static void simulate_usage(struct vehicle *v, enum pattern p)
{
	double par[2] = { 0, 0 };
	enum pattern base = p;
	double season_amp = uniform(0.05, 0.15); /* everyone: a little less in winter */
	double change_factor = 1;
	int64_t change_day = SIM_DAYS;

	if (p == P_CHANGE) {
		static const enum pattern from[] = { P_COMMUTER, P_WEEKEND, P_FLEET, P_SEASONAL };
		static const double factor[] = { 0.35, 0.5, 2.0, 2.8 };
		base = from[rng_next() % 4];
		change_factor = factor[rng_next() % 4];
		change_day = (int64_t)uniform(250, 600);
	}
	switch (base) {
	case P_COMMUTER:
	case P_GAPS:
		par[0] = uniform(25, 90);
		par[1] = uniform(30, 120);
		break;
	case P_WEEKEND:
		par[0] = uniform(60, 180);
		break;
	case P_SEASONAL:
		par[0] = uniform(30, 90);
		season_amp = uniform(0.5, 0.8);
		break;
	case P_FLEET:
		par[0] = uniform(160, 330);
		break;
	default:
		par[0] = uniform(40, 140);
		break;
	}
	int holiday_start = (int)uniform(180, 215); /* two weeks in July/August */
	int trip = uni() < 0.5;
	int paused = 0, phase_left = (int)uniform(10, 60);

	for (int d = 0; d < SIM_DAYS; d++) {
		int64_t day = SIM_START + d;
		int yd = yday(day);
		double km = base_km(base, day, par);
		km *= 1 + season_amp * sin(2 * M_PI * (yd - 110) / 365.0);
		if (yd >= holiday_start && yd < holiday_start + 14 && base != P_FLEET)
			km = trip ? (yd == holiday_start || yd == holiday_start + 13
					     ? uniform(300, 700)
					     : km * 0.5)
				  : 0;
		if (yd >= 357 || yd < 2 || yd == 120 || yd == 140 || yd == 300)
			km *= 0.4; /* Christmas, New Year, public holidays */
		if (p == P_IRREGULAR) {
			if (--phase_left <= 0) {
				paused = !paused;
				phase_left = paused ? (int)uniform(14, 70) : (int)uniform(10, 60);
			}
			if (paused)
				km = 0;
		}
		if (d >= change_day)
			km *= change_factor;
		v->km[d] = km > 0 ? km : 0;
		v->online[d] = 1;
	}
	if (p == P_GAPS) { /* the agent offline for weeks, the car still driving */
		int gaps = 3 + (int)(rng_next() % 4);
		for (int g = 0; g < gaps; g++) {
			int from = (int)uniform(0, SIM_DAYS), len = (int)uniform(7, 60);
			for (int d = from; d < from + len && d < SIM_DAYS; d++)
				v->online[d] = 0;
		}
	}
	for (int d = 0; d < SIM_DAYS; d++) /* everyone: a missed day now and then */
		if (uni() < (p == P_GAPS ? 0.05 : 0.01))
			v->online[d] = 0;
}

static void add_reading(struct vehicle *v, int64_t day, int64_t odo, enum reading_source src,
			int has_first, int64_t first)
{
	if (v->nreadings == MAX_READINGS)
		return;
	v->readings[v->nreadings++] = (struct odo_reading){ .day = day,
							    .odometer_m = odo,
							    .source = src,
							    .has_first = has_first,
							    .first_odometer_m = first };
}

/* The odometer the car shows (after a rollback: the new cluster's). */
static int64_t shown(const struct vehicle *v, int64_t day, int64_t true_odo)
{
	return v->rollback_day && day >= v->rollback_day ? true_odo - v->rollback_m : true_odo;
}

/* Drives v through the simulation: readings, due events, visits. */
static void simulate(struct vehicle *v, enum pattern p)
{
	memset(v, 0, sizeof(*v));
	v->pattern = p;
	simulate_usage(v, p);
	v->start_odo_m = (int64_t)uniform(5000, 120000) * 1000;
	if (uni() < 0.02) {
		v->rollback_day = SIM_START + (int64_t)uniform(30, SIM_DAYS - 30);
		v->rollback_m = (int64_t)uniform(5000, 50000) * 1000;
		if (v->rollback_m > v->start_odo_m)
			v->rollback_m = v->start_odo_m / 2;
	}

	/* The last service before the start. */
	double early = 0;
	for (int d = 0; d < 90; d++)
		early += v->km[d] * 1000.0 / 90;
	int64_t ls_day = SIM_START - (int64_t)uniform(5, 360);
	double since = early * (double)(SIM_START - ls_day) * uniform(0.7, 1.3);
	if (since > 0.95 * INTERVAL_M)
		since = 0.95 * INTERVAL_M * uni();
	int64_t ls_odo = v->start_odo_m - (int64_t)since;
	add_reading(v, ls_day, ls_odo, READING_SERVICE, 0, 0);

	int64_t odo = v->start_odo_m; /* true, metres */
	int64_t due_day = 0, visit_day = 0;
	for (int d = 0; d < SIM_DAYS; d++) {
		int64_t day = SIM_START + d;
		int64_t m = (int64_t)(v->km[d] * 1000.0);
		int64_t first = odo;
		odo += m;
		since += (double)m;
		if (visit_day && day == visit_day) { /* serviced at the day's end */
			add_reading(v, day, shown(v, day, odo), READING_SERVICE, 0, 0);
			ls_day = day;
			ls_odo = shown(v, day, odo);
			since = 0;
			due_day = visit_day = 0;
		}
		if (m > 0 && v->online[d]) {
			int64_t last = shown(v, day, odo), f = shown(v, day, first);
			if (uni() < 0.003) /* a glitch: one reading off */
				last += (int64_t)(uniform(-500, 500) * 1000);
			add_reading(v, day, last, READING_CAR, 1, f);
		}
		if (!due_day &&
		    (since >= INTERVAL_M || day >= predict_add_months(ls_day, INTERVAL_MONTHS))) {
			double r = uni();
			due_day = day;
			visit_day = day + (int64_t)(r < 0.6   ? uniform(1, 8)
						    : r < 0.9 ? uniform(8, 31)
							      : uniform(31, 61));
			if (v->ndues < MAX_DUES) {
				struct due *e = &v->dues[v->ndues++];
				e->due_day = day;
				e->ls_day = ls_day;
				e->ls_odo_m = ls_odo;
				e->visit_day = visit_day;
			}
		}
	}
}

/* The due event to evaluate, or NULL: the first after a random day of the
 * second year whose service is known 30 days before, else the last such. */
static const struct due *pick_due(const struct vehicle *v)
{
	int64_t after = SIM_START + (int64_t)uniform(365, 600);
	const struct due *last = NULL;
	for (int i = 0; i < v->ndues; i++) {
		const struct due *e = &v->dues[i];
		if (e->due_day - 30 < SIM_START + 60 || e->ls_day > e->due_day - 30)
			continue;
		if (e->due_day >= after)
			return e;
		last = e;
	}
	return last;
}

static size_t readings_upto(const struct vehicle *v, int64_t day)
{
	size_t n = 0;
	while (n < v->nreadings && v->readings[n].day <= day)
		n++;
	return n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double mean_of(const double *v, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += v[i];
	return n ? s / n : 0;
}

static double p90_of(double *v, int n)
{
	if (!n)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[(int)ceil(0.9 * n) - 1];
}

int main(int argc, char **argv)
{
	uint64_t seed = DEFAULT_SEED;
	int detail = 0, no_first = 0, dump = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--detail")) {
			detail = 1;
		} else if (!strcmp(argv[i], "--dump")) {
			dump = 1;
		} else if (!strcmp(argv[i], "--no-first")) {
			no_first = 1;
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: %s [--seed N] [--detail] [--no-first] [--dump]\n",
				argv[0]);
			return 2;
		}
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);

	static struct vehicle fleet[VEHICLES];
	rng_state = seed;
	for (int i = 0; i < VEHICLES; i++) {
		simulate(&fleet[i], (enum pattern)(i % P_COUNT));
		for (size_t j = 0; no_first && j < fleet[i].nreadings; j++)
			fleet[i].readings[j].has_first =
				0; /* rollups without their first odometer */
	}

	/* The segment's average, as a dealer would know it: the first year. */
	double fleet_m = 0;
	for (int i = 0; i < VEHICLES; i++)
		for (int d = 0; d < 365; d++)
			fleet_m += fleet[i].km[d] * 1000.0 / 365 / VEHICLES;

	static double ours[VEHICLES], naive[VEHICLES], avg[VEHICLES];
	double pat_sum[P_COUNT][3] = { { 0 } };
	int pat_n[P_COUNT] = { 0 }, n = 0, covered = 0, basis_n[3] = { 0 };
	double predict_s = 0, fallback_sum[3][2] = { { 0 } };
	int fallback_n[3] = { 0 };
	struct plan_item oil = { .name = "oil_service",
				 .every_m = INTERVAL_M,
				 .every_months = INTERVAL_MONTHS };

	for (int i = 0; i < VEHICLES; i++) {
		const struct vehicle *v = &fleet[i];
		const struct due *e = pick_due(v);
		if (!e)
			continue;
		int64_t as_of = e->due_day - 30;
		size_t nr = readings_upto(v, as_of);
		int64_t time_due = predict_add_months(e->ls_day, INTERVAL_MONTHS);

		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		struct predict_input in = {
			.as_of_day = as_of,
			.readings = v->readings,
			.nreadings = nr,
			.first_use_day = v->readings[0].day,
			.fleet_m_per_day = fleet_m,
		};
		struct usage u;
		struct last_service ls = {
			.done = 1, .day = e->ls_day, .has_odometer = 1, .odometer_m = e->ls_odo_m
		};
		struct item_prediction p;
		if (predict_usage(&in, &u) ||
		    predict_item(&oil, &ls, &u, in.first_use_day, as_of, &p)) {
			fprintf(stderr, "service_accuracy: vehicle %d: prediction failed\n", i);
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		predict_s += (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
		basis_n[u.basis]++;

		/* The same car as if it had no agent: service visits only. */
		static struct odo_reading visits[MAX_READINGS];
		size_t nvis = 0;
		for (size_t j = 0; j < nr; j++)
			if (v->readings[j].source != READING_CAR)
				visits[nvis++] = v->readings[j];
		struct predict_input vin_in = in;
		struct usage vu;
		struct item_prediction vp;
		vin_in.readings = visits;
		vin_in.nreadings = nvis;
		if (predict_usage(&vin_in, &vu) ||
		    predict_item(&oil, &ls, &vu, in.first_use_day, as_of, &vp)) {
			fprintf(stderr,
				"service_accuracy: vehicle %d: fallback prediction failed\n", i);
			return 1;
		}
		int fallback = (int)vu.basis;

		/* The dealer's rule. */
		int64_t nv = e->ls_day + (int64_t)ceil((double)INTERVAL_M / fleet_m);
		if (nv > time_due)
			nv = time_due;

		/* The car's average rate over everything known. */
		const struct odo_reading *f = &v->readings[0], *l = &v->readings[nr - 1];
		int64_t av = time_due;
		if (l->day > f->day && l->odometer_m > f->odometer_m) {
			double rate =
				(double)(l->odometer_m - f->odometer_m) / (double)(l->day - f->day);
			double left = (double)(e->ls_odo_m + INTERVAL_M - l->odometer_m);
			int64_t d = l->day + (left > 0 ? (int64_t)ceil(left / rate) : 0);
			if (d < av)
				av = d;
		}

		if (dump) /* one line per car, to look at the errors */
			printf("car=%d pattern=%s as_of=%lld due=%lld ours=%lld naive=%lld "
			       "avg_rate=%lld "
			       "reason=%s km_per_day=%.1f last_day=%lld\n",
			       i, pattern_name[v->pattern], (long long)as_of, (long long)e->due_day,
			       (long long)p.due_day, (long long)nv, (long long)av,
			       predict_reason_name(p.reason), u.m_per_day / 1000,
			       (long long)u.last_day);
		fallback_sum[fallback][0] += fabs((double)(vp.due_day - e->due_day));
		fallback_sum[fallback][1] += fabs((double)(nv - e->due_day));
		fallback_n[fallback]++;
		ours[n] = fabs((double)(p.due_day - e->due_day));
		naive[n] = fabs((double)(nv - e->due_day));
		avg[n] = fabs((double)(av - e->due_day));
		covered += e->due_day >= p.due_day_lo && e->due_day <= p.due_day_hi;
		pat_sum[v->pattern][0] += ours[n];
		pat_sum[v->pattern][1] += naive[n];
		pat_sum[v->pattern][2] += avg[n];
		pat_n[v->pattern]++;
		n++;
	}

	double mae = mean_of(ours, n), naive_mae = mean_of(naive, n), avg_mae = mean_of(avg, n);
	printf("vehicles=%d\n", n);
	printf("seed=%llu\n", (unsigned long long)seed);
	printf("mae_days=%.2f\n", mae);
	printf("p90_days=%.2f\n", p90_of(ours, n));
	printf("naive_mae_days=%.2f\n", naive_mae);
	printf("avg_rate_mae_days=%.2f\n", avg_mae);
	printf("ratio_mae=%.3f\n", naive_mae > 0 ? mae / naive_mae : 0);
	printf("ratio_to_avg_rate=%.3f\n", avg_mae > 0 ? mae / avg_mae : 0);
	if (detail) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		for (int k = 0; k < P_COUNT; k++)
			if (pat_n[k])
				printf("pattern.%s=n:%d mae:%.2f naive:%.2f avg_rate:%.2f\n",
				       pattern_name[k], pat_n[k], pat_sum[k][0] / pat_n[k],
				       pat_sum[k][1] / pat_n[k], pat_sum[k][2] / pat_n[k]);
		printf("band_coverage=%.3f\n", n ? (double)covered / n : 0);
		printf("basis=telemetry:%d service_history:%d fleet_average:%d\n", basis_n[0],
		       basis_n[1], basis_n[2]);
		printf("fleet_km_per_day=%.1f\n", fleet_m / 1000);
		for (int k = 0; k < 3; k++) /* without telemetry: which fallback, how good */
			if (fallback_n[k])
				printf("without_telemetry.%s=n:%d mae:%.2f naive:%.2f\n",
				       predict_basis_name((enum usage_basis)k), fallback_n[k],
				       fallback_sum[k][0] / fallback_n[k],
				       fallback_sum[k][1] / fallback_n[k]);
		printf("predict_us_per_vehicle=%.1f\n", n ? predict_s * 1e6 / n : 0);
		printf("run_s=%.3f\n",
		       (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	return 0;
}
