/*
 * Service prediction (issue 10): a vehicle's usage from its odometer
 * readings, and per plan item the day and odometer it falls due.
 *
 * Pure by design: no database, no clock, no allocation. Everything works
 * on fixed arrays of PREDICT_HISTORY_DAYS days on the stack, so one call
 * costs O(PREDICT_HISTORY_DAYS + readings in that window) for the usage and
 * O(PREDICT_HORIZON_DAYS) for an item. The same functions serve the gateway
 * (service.c) and the accuracy benchmark (bench/service_accuracy.c).
 * docs/service-prediction.md explains the model and its calibration.
 */
#include "predict.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* A car's odometer cannot plausibly move more than this in one day. */
#define MAX_M_PER_DAY 2000000.0
/* Movement between two rollups below this is rounding, not driving. */
#define PARKED_TOLERANCE_M 200
/* Windows (days, ending at the newest reading) the daily rate is taken over. */
static const int windows[] = { 28, 56, 91, 182, 364, PREDICT_HISTORY_DAYS - 4 };
#define NWINDOWS (sizeof(windows) / sizeof(windows[0]))
/* Their weights in the blend when no change of use is detected: for a car
 * of steady use, and for an irregular one (28-day rates that vary a lot:
 * long pauses), which the long windows foretell better. */
static const double steady_weight[NWINDOWS] = { 1.0, 2.0, 2.0, 1.0, 1.0, 0.0 };
static const double irregular_weight[NWINDOWS] = { 0.0, 0.0, 0.5, 1.0, 2.0, 4.0 };
/* Recent and long rates differing by this factor (both 28 and 56 days
 * against 182, the same direction) mean the use changed. */
#define CHANGE_RATIO 1.35
/* Share of last year's seasonal ratio that is believed (shrinks noise). */
#define SEASON_SHRINK 0.7
/* Days paused in a year from which a car counts as irregular, and fully
 * so; a pause is a run of at least PAUSE_MIN_DAYS parked days. */
#define PAUSE_MIN_DAYS 10
#define PAUSED_FROM 20
#define PAUSED_TO 80
/* A car silent this long (no rollup) may be parked or its agent offline:
 * its past silences say which it tends to be (SILENT_PRIOR_DAYS of "half
 * and half" when it has none). */
#define SILENT_MIN_DAYS 7
#define SILENT_PRIOR_DAYS 14
#define YEAR_DAYS 365
#define BLOCK_DAYS 30

enum day_state {
	DAY_UNKNOWN = 0, /* no reading covers the day */
	DAY_EXACT,	 /* its own distance is known (or known parked) */
	DAY_SPREAD,	 /* a share of a multi-day movement (counts in rates only) */
};

/* The cleaned daily history of one vehicle: index i is day base + i. */
struct history {
	int64_t base;
	/* Silences: days between two readings at least SILENT_MIN_DAYS apart,
	 * and what the odometer moved across them. */
	int64_t silent_days;
	double silent_m;
	double m[PREDICT_HISTORY_DAYS];
	unsigned char state[PREDICT_HISTORY_DAYS];
};

/* One car reading kept for cleaning. */
struct kept {
	int64_t day;
	int64_t last, first;
	int has_first;
};

const char *predict_basis_name(enum usage_basis b)
{
	switch (b) {
	case BASIS_TELEMETRY:
		return "telemetry";
	case BASIS_SERVICE_HISTORY:
		return "service_history";
	case BASIS_FLEET_AVERAGE:
		return "fleet_average";
	}
	return "unknown";
}

const char *predict_reason_name(enum due_reason r)
{
	return r == DUE_TIME ? "time" : "distance";
}

/* Civil date <-> day number (H. Hinnant's algorithms, proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : dim[m - 1];
}

int64_t predict_add_months(int64_t day, int months)
{
	int64_t y;
	int m, d;
	civil_from_days(day, &y, &m, &d);
	int64_t total = y * 12 + (m - 1) + months;
	y = total >= 0 ? total / 12 : -((11 - total) / 12);
	m = (int)(total - y * 12) + 1;
	int dim = days_in_month(y, m);
	return days_from_civil(y, m, d > dim ? dim : d);
}

/* Monday 0 .. Sunday 6 (1970-01-01 was a Thursday). */
static int weekday(int64_t day)
{
	int64_t w = (day + 3) % 7;
	return (int)(w < 0 ? w + 7 : w);
}

/*
 * The mean metres per day over days [from, to] of h that a reading covers;
 * -1 when fewer than half of them (or fewer than 7) are covered.
 */
static double history_rate(const struct history *h, int64_t from, int64_t to)
{
	double sum = 0;
	int64_t n = 0;
	if (from < h->base)
		return -1;
	for (int64_t d = from; d <= to; d++) {
		int64_t i = d - h->base;
		if (i < 0 || i >= PREDICT_HISTORY_DAYS)
			return -1;
		if (h->state[i] != DAY_UNKNOWN) {
			sum += h->m[i];
			n++;
		}
	}
	if (n < 7 || 2 * n < to - from + 1)
		return -1;
	return sum / (double)n;
}

/* Marks days (from, to] of h as covered by a movement of m metres. */
static void history_spread(struct history *h, int64_t from, int64_t to, double m, enum day_state st)
{
	for (int64_t d = from + 1; d <= to; d++) {
		int64_t i = d - h->base;
		if (i >= 0 && i < PREDICT_HISTORY_DAYS) {
			h->m[i] = m / (double)(to - from);
			h->state[i] = (unsigned char)st;
		}
	}
}

static void history_set(struct history *h, int64_t day, double m)
{
	int64_t i = day - h->base;
	if (i >= 0 && i < PREDICT_HISTORY_DAYS) {
		h->m[i] = m;
		h->state[i] = DAY_EXACT;
	}
}

static void history_silence(struct history *h, int64_t days, double moved)
{
	if (days >= SILENT_MIN_DAYS) {
		h->silent_days += days;
		h->silent_m += moved;
	}
}

/*
 * Index of the last reading with day <= as_of in the sorted readings, or
 * -1. Binary search: readings after as_of (an --as-of in the past) cost
 * nothing.
 */
static ptrdiff_t last_upto(const struct predict_input *in)
{
	size_t lo = 0, hi = in->nreadings;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (in->readings[mid].day <= in->as_of_day)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

/*
 * Reading i of k (odometers in k[].last) is a glitch: a single reading off
 * the line its neighbours draw (up or down), or out of reach of the last
 * accepted one. base/base_day: the last accepted reading.
 */
static int is_glitch(const struct kept *k, size_t n, size_t i, int64_t base, int64_t base_day)
{
	int64_t inc = k[i].last - base;
	double reach = (double)(k[i].day - base_day) * MAX_M_PER_DAY;
	int has_next = i + 1 < n;
	int64_t next = has_next ? k[i + 1].last : 0;
	double next_reach = has_next ? (double)(k[i + 1].day - base_day) * MAX_M_PER_DAY : 0;

	if (inc < 0) /* down: a glitch if the next one is back, else a rollback */
		return !has_next || next >= base;
	if ((double)inc > reach) /* a jump ahead: same test, the other way */
		return !has_next || (next >= base && (double)(next - base) <= next_reach);
	/* up but plausible: a spike if the next one falls back below it */
	return has_next && next < k[i].last && next >= base;
}

/*
 * Cleans the car readings k[0..n) into h (rollbacks become corrections in
 * u) and returns the number of readings accepted; *ret_last the index of
 * the newest accepted one.
 */
static int clean_readings(const struct kept *k, size_t n, struct history *h, struct usage *u,
			  size_t *ret_last)
{
	int accepted = 0;
	int64_t base = 0, base_day = 0;
	for (size_t i = 0; i < n; i++) {
		int has_first = k[i].has_first && k[i].first <= k[i].last &&
				(double)(k[i].last - k[i].first) <= MAX_M_PER_DAY;
		if (accepted == 0) {
			if (i + 1 < n && k[i + 1].last < k[i].last &&
			    (i + 2 >= n || k[i + 2].last >= k[i + 1].last))
				continue; /* a first reading above the line of the next two */
			if (has_first)
				history_set(h, k[i].day, (double)(k[i].last - k[i].first));
		} else if (is_glitch(k, n, i, base, base_day)) {
			continue;
		} else {
			int64_t inc = k[i].last - base;
			int64_t gap = k[i].day - base_day;
			if (inc < 0 || (double)inc > (double)gap * MAX_M_PER_DAY) {
				/* A new scale from here on: what moved in between is unknown. */
				int64_t from = has_first ? k[i].first : k[i].last;
				if (u->ncorrections < PREDICT_CORRECTIONS) {
					u->corrections[u->ncorrections].day = k[i].day;
					u->corrections[u->ncorrections].shift_m = from - base;
					u->ncorrections++;
				} else {
					u->corrections[PREDICT_CORRECTIONS - 1].shift_m +=
						from - base;
				}
				if (has_first)
					history_set(h, k[i].day, (double)(k[i].last - k[i].first));
			} else if (has_first && k[i].first >= base - PARKED_TOLERANCE_M) {
				int64_t between = k[i].first - base;
				history_silence(h, gap - 1, between > 0 ? (double)between : 0);
				if (between <= PARKED_TOLERANCE_M)
					history_spread(h, base_day, k[i].day - 1, 0, DAY_EXACT);
				else
					history_spread(h, base_day, k[i].day - 1, (double)between,
						       DAY_SPREAD);
				history_set(
					h, k[i].day,
					(double)(k[i].last - (between < 0 ? base : k[i].first)));
			} else if (inc <= PARKED_TOLERANCE_M) { /* did not move: parked */
				history_silence(h, gap - 1, 0);
				history_spread(h, base_day, k[i].day, 0, DAY_EXACT);
			} else {
				history_silence(h, gap - 1,
						(double)inc * (double)(gap - 1) / (double)gap);
				history_spread(h, base_day, k[i].day, (double)inc,
					       gap == 1 ? DAY_EXACT : DAY_SPREAD);
			}
		}
		base = k[i].last;
		base_day = k[i].day;
		*ret_last = i;
		accepted++;
	}
	return accepted;
}

/* raw^SEASON_SHRINK, raw clamped to [0.25, 4]; 1 when either rate is missing. */
static double season_ratio(double num, double den)
{
	if (num < 0 || den <= 0)
		return 1.0;
	double raw = (num + 1000.0) / (den + 1000.0); /* 1 km/day keeps 0/0 sane */
	if (raw < 0.25)
		raw = 0.25;
	if (raw > 4.0)
		raw = 4.0;
	return pow(raw, SEASON_SHRINK);
}

static void sort_doubles(double *v, int n)
{
	for (int i = 1; i < n; i++) {
		double x = v[i];
		int j = i - 1;
		while (j >= 0 && v[j] > x) {
			v[j + 1] = v[j];
			j--;
		}
		v[j + 1] = x;
	}
}

/* The telemetry estimate from a cleaned history; 0, or -1 if too thin. */
static int usage_from_history(const struct history *h, int64_t last_day, int64_t as_of,
			      struct usage *u)
{
	double p[NWINDOWS];
	int have[NWINDOWS];
	double ly_next =
		history_rate(h, last_day - YEAR_DAYS + 1, last_day - YEAR_DAYS + BLOCK_DAYS);
	int any = 0;

	for (size_t w = 0; w < NWINDOWS; w++) {
		double r = history_rate(h, last_day - windows[w] + 1, last_day);
		have[w] = r >= 0;
		if (!have[w])
			continue;
		/* A window of a year or more is its own yearly level. */
		double ly = windows[w] >= YEAR_DAYS - 1
				    ? history_rate(h, last_day - YEAR_DAYS + 2, last_day)
				    : history_rate(h, last_day - YEAR_DAYS - windows[w] + 1,
						   last_day - YEAR_DAYS);
		p[w] = r * season_ratio(ly_next, ly);
		any = 1;
	}
	if (!any)
		return -1;

	/* The band: the spread of the car's own 28-day rates over a year. */
	double q[13];
	int nq = 0;
	for (int b = 0; b < 13; b++) {
		double r = history_rate(h, last_day - 28 * (b + 1) + 1, last_day - 28 * b);
		if (r >= 0)
			q[nq++] = r;
	}
	double lo = 0.65, hi = 1.35;
	if (nq >= 4) {
		sort_doubles(q, nq);
		double med = nq % 2 ? q[nq / 2] : (q[nq / 2 - 1] + q[nq / 2]) / 2;
		if (med > 0) {
			lo = q[(nq - 1) / 10] / med;
			hi = q[nq - 1 - (nq - 1) / 10] / med;
		}
	}
	if (lo > 0.9)
		lo = 0.9;
	if (hi < 1.1)
		hi = 1.1;
	/* Irregular use: long pauses (runs of >= PAUSE_MIN_DAYS parked days)
	 * over the last year. */
	int paused = 0, run = 0;
	for (int64_t d = last_day - 363; d <= last_day + 1; d++) {
		int64_t i = d - h->base;
		int parked = d <= last_day && i >= 0 && h->state[i] == DAY_EXACT && h->m[i] == 0;
		if (parked) {
			run++;
			continue;
		}
		if (run >= PAUSE_MIN_DAYS)
			paused += run;
		run = 0;
	}
	double irregular = (double)(paused - PAUSED_FROM) / (PAUSED_TO - PAUSED_FROM);
	irregular = irregular < 0 ? 0 : irregular > 1 ? 1 : irregular;

	/* A change of use: recent windows agree against the long one (and
	 * the two last 28-day blocks with each other; a full stop is a pause). */
	double central = 0, wsum = 0;
	double b0 = history_rate(h, last_day - 27, last_day);
	double b1 = history_rate(h, last_day - 55, last_day - 28);
	int blocks_agree = b0 >= 0 && b1 >= 0 && b0 + 1000 < 1.7 * (b1 + 1000) &&
			   b1 + 1000 < 1.7 * (b0 + 1000);
	if (have[0] && have[1] && have[3] && blocks_agree &&
	    ((p[0] > CHANGE_RATIO * p[3] + 500 && p[1] > CHANGE_RATIO * p[3] + 500) ||
	     (CHANGE_RATIO * p[0] + 500 < p[3] && CHANGE_RATIO * p[1] + 500 < p[3] &&
	      p[0] > 0.2 * p[3]))) {
		central = 0.7 * p[0] + 0.3 * p[1];
	} else {
		for (size_t w = 0; w < NWINDOWS; w++) {
			if (have[w]) {
				double wt = (1 - irregular) * steady_weight[w] +
					    irregular * irregular_weight[w];
				central += wt * p[w];
				wsum += wt;
			}
		}
		central = wsum > 0 ? central / wsum : 0;
	}
	u->m_per_day = central > 0 ? central : 0;
	u->silent_factor = 1.0;
	if (u->m_per_day > 0) {
		double expected = u->m_per_day * (double)(h->silent_days + SILENT_PRIOR_DAYS);
		double f = (h->silent_m + 0.5 * u->m_per_day * SILENT_PRIOR_DAYS) / expected;
		u->silent_factor = f < 0 ? 0 : f > 1 ? 1 : f;
	}

	/* Seasonal factors of the blocks ahead, relative to the next one. */
	u->season_factor[0] = 1.0;
	for (int b = 1; b < PREDICT_SEASON_BLOCKS; b++) {
		int64_t from = last_day - YEAR_DAYS + (int64_t)b * BLOCK_DAYS + 1;
		double ly = history_rate(h, from, from + BLOCK_DAYS - 1);
		u->season_factor[b] = ly_next >= 0 ? season_ratio(ly, ly_next) : 1.0;
	}

	/* Weekday factors from days whose own distance is known. */
	double sum[7] = { 0 }, all = 0;
	int cnt[7] = { 0 }, nall = 0;
	for (int64_t d = last_day - 181; d <= last_day; d++) {
		int64_t i = d - h->base;
		if (i < 0 || h->state[i] != DAY_EXACT)
			continue;
		sum[weekday(d)] += h->m[i];
		cnt[weekday(d)]++;
		all += h->m[i];
		nall++;
	}
	double mean = 0;
	for (int w = 0; w < 7; w++) {
		double f = 1.0;
		if (all > 0 && cnt[w] > 0) {
			double raw = (sum[w] / cnt[w]) / (all / nall);
			f = 1.0 + (raw - 1.0) * cnt[w] / (cnt[w] + 6.0);
		}
		u->weekday_factor[w] = f;
		mean += f / 7.0;
	}
	for (int w = 0; w < 7; w++)
		u->weekday_factor[w] = mean > 0 ? u->weekday_factor[w] / mean : 1.0;

	u->m_per_day_lo = u->m_per_day * lo;
	u->m_per_day_hi = u->m_per_day * hi;
	(void)as_of;
	return 0;
}

static void usage_flat(struct usage *u, double m_per_day, double lo, double hi)
{
	u->silent_factor = 1.0;
	u->m_per_day = m_per_day > 0 ? m_per_day : 0;
	u->m_per_day_lo = u->m_per_day * lo;
	u->m_per_day_hi = u->m_per_day * hi;
	for (int w = 0; w < 7; w++)
		u->weekday_factor[w] = 1.0;
	for (int b = 0; b < PREDICT_SEASON_BLOCKS; b++)
		u->season_factor[b] = 1.0;
}

int predict_usage(const struct predict_input *in, struct usage *ret)
{
	static const size_t visit_cap = 4 * PREDICT_SERVICE_DAYS;
	struct history h;
	struct kept k[PREDICT_HISTORY_DAYS];
	struct usage u;

	if (!in || !ret || (in->nreadings && !in->readings))
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	u.as_of_day = in->as_of_day;
	u.silent_factor = 1.0;
	memset(h.state, 0, sizeof(h.state));
	h.silent_days = 0;
	h.silent_m = 0;
	h.base = in->as_of_day - PREDICT_HISTORY_DAYS + 1;

	/* Walk back from as_of: car readings of the history window (one per
	 * day, the latest wins), and the newest and oldest readings of any
	 * source within PREDICT_SERVICE_DAYS for the fallback. */
	ptrdiff_t end = last_upto(in);
	size_t n = 0, visited = 0;
	const struct odo_reading *newest = NULL, *oldest = NULL;
	for (ptrdiff_t i = end; i >= 0 && visited < visit_cap; i--, visited++) {
		const struct odo_reading *r = &in->readings[i];
		if (r->day <= in->as_of_day - PREDICT_SERVICE_DAYS)
			break;
		if (r->odometer_m < 0)
			continue;
		if (!newest)
			newest = r;
		oldest = r;
		if (r->source != READING_CAR || r->day < h.base)
			continue;
		if (n > 0 && k[n - 1].day == r->day)
			continue;
		if (n == PREDICT_HISTORY_DAYS)
			continue;
		k[n].day = r->day;
		k[n].last = r->odometer_m;
		k[n].first = r->first_odometer_m;
		k[n].has_first = r->has_first;
		n++;
	}
	for (size_t i = 0; i < n / 2; i++) { /* oldest first */
		struct kept t = k[i];
		k[i] = k[n - 1 - i];
		k[n - 1 - i] = t;
	}

	size_t last = 0;
	int accepted = n ? clean_readings(k, n, &h, &u, &last) : 0;
	u.readings_used = accepted;
	int64_t fresh_after = in->as_of_day - 182;
	if (accepted >= 2 && k[last].day > fresh_after &&
	    usage_from_history(&h, k[last].day, in->as_of_day, &u) == 0) {
		u.basis = BASIS_TELEMETRY;
		u.has_odometer = 1;
		u.last_day = k[last].day;
		u.last_odometer_m = k[last].last;
		/* A service visit after the last rollup anchors the projection. */
		if (newest && newest->source != READING_CAR && newest->day > u.last_day &&
		    newest->odometer_m >= u.last_odometer_m) {
			u.last_day = newest->day;
			u.last_odometer_m = newest->odometer_m;
		}
		*ret = u;
		return 0;
	}

	if (newest && oldest && newest->day - oldest->day >= 30 &&
	    newest->odometer_m >= oldest->odometer_m) {
		double rate = (double)(newest->odometer_m - oldest->odometer_m) /
			      (double)(newest->day - oldest->day);
		usage_flat(&u, rate, 0.6, 1.5);
		u.basis = BASIS_SERVICE_HISTORY;
	} else {
		usage_flat(&u, in->fleet_m_per_day, 0.4, 2.0);
		u.basis = BASIS_FLEET_AVERAGE;
	}
	u.ncorrections = 0; /* the service history does not see the car's jumps */
	if (newest) {
		u.has_odometer = 1;
		u.last_day = newest->day;
		u.last_odometer_m = newest->odometer_m;
	} else { /* a new car: 0 m on its first day */
		u.last_day = in->first_use_day < in->as_of_day ? in->first_use_day : in->as_of_day;
		u.last_odometer_m = 0;
	}
	*ret = u;
	return 0;
}

double predict_distance(const struct usage *u, double m_per_day, int64_t from, int64_t to)
{
	double sum = 0;
	if (to - from > PREDICT_HORIZON_DAYS)
		to = from + PREDICT_HORIZON_DAYS;
	for (int64_t d = from + 1; d <= to; d++) {
		double f = u->weekday_factor[weekday(d)];
		if (d > u->last_day && d <= u->as_of_day &&
		    u->as_of_day - u->last_day >= SILENT_MIN_DAYS)
			f *= u->silent_factor;
		if (d > u->last_day)
			f *= u->season_factor[((d - u->last_day - 1) / BLOCK_DAYS) %
					      PREDICT_SEASON_BLOCKS];
		sum += m_per_day * f;
	}
	return sum;
}

/*
 * The day the odometer reaches last_odometer + remaining at m_per_day;
 * for remaining <= 0 the day it did (not before floor_day); the horizon
 * when it does not within PREDICT_HORIZON_DAYS.
 */
static int64_t day_reaching(const struct usage *u, double m_per_day, int64_t remaining,
			    int64_t floor_day)
{
	if (remaining <= 0) {
		if (m_per_day <= 0)
			return u->last_day;
		int64_t back = (int64_t)floor((double)-remaining / m_per_day);
		int64_t d = u->last_day - back;
		return d < floor_day ? floor_day : d;
	}
	double sum = 0;
	for (int64_t d = u->last_day + 1; d <= u->last_day + PREDICT_HORIZON_DAYS; d++) {
		sum += predict_distance(u, m_per_day, d - 1, d);
		if (sum >= (double)remaining)
			return d;
	}
	return u->last_day + PREDICT_HORIZON_DAYS;
}

int predict_item(const struct plan_item *item, const struct last_service *ls, const struct usage *u,
		 int64_t first_use_day, int64_t as_of_day, struct item_prediction *ret)
{
	static const struct last_service never = { 0 };
	struct item_prediction p;
	int64_t time_due = INT64_MAX, ref_day;
	int has_dist = 0;
	int64_t due_odo = 0;

	if (!item || !u || !ret)
		return -EINVAL;
	if (!ls)
		ls = &never;
	memset(&p, 0, sizeof(p));
	memcpy(p.item, item->name, sizeof(p.item));
	p.item[sizeof(p.item) - 1] = '\0';
	p.basis = u->basis;

	if (ls->done) {
		ref_day = ls->day;
		if (item->every_months > 0)
			time_due = predict_add_months(ls->day, item->every_months);
		if (item->every_m > 0) {
			int64_t at = ls->odometer_m;
			if (!ls->has_odometer) { /* what the usage says it read then */
				double back =
					predict_distance(u, u->m_per_day, ls->day, u->last_day);
				at = u->last_odometer_m - (int64_t)back;
				if (at < 0)
					at = 0;
			}
			has_dist = 1;
			due_odo = at + item->every_m;
		}
	} else {
		int months = item->first_months > 0 ? item->first_months : item->every_months;
		int64_t m = item->first_m > 0 ? item->first_m : item->every_m;
		ref_day = first_use_day;
		if (months > 0)
			time_due = predict_add_months(first_use_day, months);
		if (m > 0) {
			has_dist = 1;
			due_odo = m;
		}
	}
	if (time_due == INT64_MAX && !has_dist)
		return -EINVAL;

	/* The due odometer on the scale the car shows now. */
	if (has_dist) {
		for (int c = 0; c < u->ncorrections && c < PREDICT_CORRECTIONS; c++)
			if (!ls->done || u->corrections[c].day > ls->day)
				due_odo += u->corrections[c].shift_m;
	}

	int64_t dist_mid = INT64_MAX, dist_lo = INT64_MAX, dist_hi = INT64_MAX;
	if (has_dist) {
		int64_t remaining = due_odo - u->last_odometer_m;
		dist_mid = day_reaching(u, u->m_per_day, remaining, ref_day);
		dist_lo = day_reaching(u, u->m_per_day_hi, remaining, ref_day);
		dist_hi = day_reaching(u, u->m_per_day_lo, remaining, ref_day);
	}
	p.reason = time_due <= dist_mid ? DUE_TIME : DUE_DISTANCE;
	p.due_day = time_due <= dist_mid ? time_due : dist_mid;
	p.due_day_lo = time_due <= dist_lo ? time_due : dist_lo;
	p.due_day_hi = time_due <= dist_hi ? time_due : dist_hi;

	int64_t odo_now = u->last_odometer_m;
	if (as_of_day > u->last_day)
		odo_now += (int64_t)predict_distance(u, u->m_per_day, u->last_day, as_of_day);
	p.predicted_odometer_m = u->last_odometer_m;
	if (p.due_day > u->last_day)
		p.predicted_odometer_m +=
			(int64_t)predict_distance(u, u->m_per_day, u->last_day, p.due_day);
	p.has_due_odometer = has_dist;
	p.due_odometer_m = has_dist ? due_odo : 0;
	p.distance_to_service_m = has_dist ? due_odo - odo_now : 0;
	p.time_to_service_s = (p.due_day - as_of_day) * 86400;
	p.is_service_due = p.due_day <= as_of_day || (has_dist && p.distance_to_service_m <= 0);
	*ret = p;
	return 0;
}
