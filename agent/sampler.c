/*
 * Adaptive sampling and the parked state; see sampler.h and docs/agent.md
 * ("Adaptive sampling").
 */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gnss.h"
#include "signals.h"

#define EARTH_RADIUS_M 6371008.8
#define DEG_E7_TO_RAD (M_PI / 180.0 / 1e7)

/* Presence bits whose change is worth a sample (heading and speed flicker at standstill). */
#define SAMPLER_PRESENCE (SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION)

double sampler_distance_m(int32_t lat1, int32_t lon1, int32_t lat2, int32_t lon2)
{
	double dlon = (double)lon2 - (double)lon1;
	double x, y;

	if (dlon > 1800000000.0)
		dlon -= 3600000000.0;
	else if (dlon < -1800000000.0)
		dlon += 3600000000.0;
	x = dlon * DEG_E7_TO_RAD * cos(((double)lat1 + (double)lat2) / 2 * DEG_E7_TO_RAD);
	y = ((double)lat2 - (double)lat1) * DEG_E7_TO_RAD;
	return EARTH_RADIUS_M * sqrt(x * x + y * y);
}

/* Metres from a to b: by position if both have one, else by odometer, else 0. */
static double moved_m(const struct sample *a, const struct sample *b)
{
	if ((a->present & b->present) & SAMPLE_POSITION)
		return sampler_distance_m(a->lat_e7, a->lon_e7, b->lat_e7, b->lon_e7);
	if ((a->present & b->present) & SAMPLE_ODOMETER)
		return (double)llabs(b->odometer_m - a->odometer_m);
	return 0;
}

/* Degrees between the headings of a and b (0..180), 0 unless both have one. */
static double turned_deg(const struct sample *a, const struct sample *b)
{
	int d;

	if (!((a->present & b->present) & SAMPLE_HEADING))
		return 0;
	d = abs(a->heading_cdeg - b->heading_cdeg);
	if (d > 18000)
		d = 36000 - d;
	return d / 100.0;
}

/* 1 if the fuel levels of a and b differ by at least pct percent. */
static int fuel_changed(const struct sample *a, const struct sample *b, double pct)
{
	if (!((a->present & b->present) & SAMPLE_FUEL))
		return 0;
	return abs(a->fuel_permille - b->fuel_permille) >= (int)lround(pct * 10.0);
}

void sampler_init(struct sampler *sp)
{
	memset(sp, 0, sizeof(*sp));
}

/* Updates the standing/parked state with s; returns 1 when the car just parked. */
static int update_parked(struct sampler *sp, const struct sampler_config *conf,
			 const struct sample *s, uint64_t now_ms, int *ret_started)
{
	int moving = ((s->present & SAMPLE_SPEED) && s->speed_cms >= SAMPLER_STANDING_CMS) ||
		     (sp->standing && moved_m(&sp->anchor, s) >= conf->min_distance_m);

	*ret_started = 0;
	if (moving) {
		*ret_started = sp->parked;
		sp->standing = 0;
		sp->parked = 0;
		return 0;
	}
	if (!sp->standing) {
		sp->standing = 1;
		sp->standing_ms = now_ms;
		sp->anchor = *s;
	}
	if (!sp->parked && now_ms - sp->standing_ms >= (uint64_t)conf->parked_after_s * 1000) {
		sp->parked = 1;
		return 1;
	}
	return 0;
}

/* 1 if s is worth keeping after sp->last (sp->have_last set). */
static int worth_keeping(const struct sampler *sp, const struct sampler_config *conf,
			 const struct sample *s, uint64_t now_ms)
{
	const struct sample *l = &sp->last;
	uint64_t since = now_ms - sp->last_ms;

	if ((l->present ^ s->present) & SAMPLER_PRESENCE)
		return 1;
	if (fuel_changed(l, s, conf->min_fuel_pct))
		return 1;
	if (sp->parked)
		return since >= (uint64_t)conf->parked_heartbeat_s * 1000;
	if (since >= (uint64_t)conf->max_interval_s * 1000)
		return 1;
	if (moved_m(l, s) >= conf->min_distance_m)
		return 1;
	return !sp->standing && turned_deg(l, s) >= conf->min_heading_deg;
}

unsigned sampler_feed(struct sampler *sp, const struct sampler_config *conf, const struct sample *s,
		      uint64_t now_ms)
{
	unsigned r = 0;
	int parked_now, started;

	if (!conf->adaptive)
		return SAMPLER_KEEP;
	parked_now = update_parked(sp, conf, s, now_ms, &started);
	if (parked_now)
		r |= SAMPLER_PARKED | SAMPLER_KEEP;
	if (!sp->have_last || started || worth_keeping(sp, conf, s, now_ms))
		r |= SAMPLER_KEEP;
	if (r & SAMPLER_KEEP) {
		sp->have_last = 1;
		sp->last = *s;
		sp->last_ms = now_ms;
	}
	return r;
}

int sampler_batch_due(unsigned open, uint64_t first_open_ms, uint64_t now_ms, int max_samples,
		      int max_age_ms)
{
	return open >= (unsigned)max_samples ||
	       (open && now_ms - first_open_ms >= (uint64_t)max_age_ms);
}

/* Rounds v to the nearest integer within [lo, hi]. */
static int32_t clamp32(double v, double lo, double hi)
{
	if (v < lo)
		v = lo;
	if (v > hi)
		v = hi;
	return (int32_t)lround(v);
}

void sampler_build(const struct vehicle_signals *vs, const struct gnss_fix *fix, int fix_fresh,
		   int64_t wall_ms, struct sample *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->time_ms = wall_ms;
	ret->fix = fix->mode;
	if (vs->present & SIGNAL_ODOMETER) {
		ret->present |= SAMPLE_ODOMETER;
		if (vs->present & SIGNAL_ODOMETER_EST)
			ret->present |= SAMPLE_ODOMETER_EST;
		ret->odometer_m = llround(vs->odometer_km * 1000.0);
	}
	if (vs->present & SIGNAL_FUEL) {
		ret->present |= SAMPLE_FUEL;
		ret->fuel_permille = clamp32(vs->fuel_pct * 10.0, 0, 1000);
	}
	if (fix_fresh) {
		ret->present |= SAMPLE_POSITION;
		ret->lat_e7 = clamp32(fix->lat_deg * 1e7, -900000000, 900000000);
		ret->lon_e7 = clamp32(fix->lon_deg * 1e7, -1800000000, 1800000000);
		if (fix->has_track) {
			ret->present |= SAMPLE_HEADING;
			ret->heading_cdeg = clamp32(fix->track_deg * 100.0, 0, 36000) % 36000;
		}
	}
	if (fix_fresh && fix->has_speed) {
		ret->present |= SAMPLE_SPEED;
		ret->speed_cms = clamp32(fix->speed_ms * 100.0, 0, INT32_MAX / 2);
	} else if (vs->present & SIGNAL_SPEED) {
		ret->present |= SAMPLE_SPEED;
		ret->speed_cms = clamp32(vs->speed_kmh / 3.6 * 100.0, 0, INT32_MAX / 2);
	}
}
