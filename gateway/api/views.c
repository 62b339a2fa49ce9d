/*
 * The JSON the API gives for the domains' objects (docs/openapi.yaml): one
 * place, so every endpoint and the event stream say the same thing the
 * same way. Times are ISO 8601 UTC with milliseconds; unknown values are
 * null; fuel is in % with one decimal (the car reports 0.1 %).
 */
#include "views.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void views_iso8601(int64_t ms, char *buf, size_t size)
{
	time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int milli = (int)(ms - (int64_t)sec * 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03dZ", milli);
}

json_t *views_time(int64_t ms)
{
	char buf[40];

	if (ms <= 0)
		return json_null();
	views_iso8601(ms, buf, sizeof(buf));
	return json_string(buf);
}

void views_day_string(int64_t day, char *buf, size_t size)
{
	time_t sec = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&sec, &tm);
	strftime(buf, size, "%Y-%m-%d", &tm);
}

static json_t *opt_real(int present, double v)
{
	return present ? json_real(v) : json_null();
}

/* permille -> % with one decimal, exactly as the car reported it. */
static json_t *pct(int present, int64_t permille)
{
	return present ? json_real((double)permille / 10.0) : json_null();
}

const char *views_fix_name(enum fix_mode f)
{
	switch (f) {
	case FIX_NONE:
		return "none";
	case FIX_2D:
		return "2d";
	case FIX_3D:
		return "3d";
	case FIX_UNKNOWN:
		break;
	}
	return NULL;
}

json_t *views_fix(enum fix_mode f)
{
	const char *n = views_fix_name(f);

	return n ? json_string(n) : json_null();
}

json_t *views_vehicle(const struct telemetry_vehicle *v, const char *fleet, int64_t now_ms)
{
	json_t *o = json_object();
	unsigned p = v->has_sample ? v->present : 0;

	json_object_set_new(o, "vin", json_string(v->vin));
	json_object_set_new(o, "fleet", fleet ? json_string(fleet) : json_null());
	/* online means what the ?online= filter means: seen lately. */
	json_object_set_new(
		o, "online",
		json_boolean(v->seen_ms > 0 && v->seen_ms >= now_ms - VIEWS_ONLINE_WINDOW_MS));
	/* The car's own last word on its MQTT connection (its status / will). */
	json_object_set_new(o, "connected",
			    v->online == TELEMETRY_ONLINE_UNKNOWN
				    ? json_null()
				    : json_boolean(v->online == TELEMETRY_ONLINE));
	json_object_set_new(o, "seen_at", views_time(v->seen_ms));
	json_object_set_new(o, "updated_at", v->has_sample ? views_time(v->time_ms) : json_null());
	json_object_set_new(o, "odometer_km",
			    opt_real(p & SAMPLE_ODOMETER, (double)v->odometer_m / 1000.0));
	json_object_set_new(o, "odometer_estimated",
			    (p & SAMPLE_ODOMETER) ? json_boolean(p & SAMPLE_ODOMETER_EST)
						  : json_null());
	json_object_set_new(o, "fuel_pct", pct(p & SAMPLE_FUEL, v->fuel_permille));
	json_object_set_new(o, "lat", opt_real(p & SAMPLE_POSITION, v->lat_e7 / 1e7));
	json_object_set_new(o, "lon", opt_real(p & SAMPLE_POSITION, v->lon_e7 / 1e7));
	json_object_set_new(o, "speed_kmh", opt_real(p & SAMPLE_SPEED, v->speed_cms * 0.036));
	json_object_set_new(o, "heading_deg",
			    opt_real(p & SAMPLE_HEADING, v->heading_cdeg / 100.0));
	json_object_set_new(o, "fix", v->has_sample ? views_fix(v->fix) : json_null());
	json_object_set_new(o, "agent_version",
			    v->agent_version[0] ? json_string(v->agent_version) : json_null());
	json_object_set_new(o, "batches", json_integer(v->batches));
	json_object_set_new(o, "samples", json_integer(v->samples));
	return o;
}

json_t *views_sample(const struct telemetry_sample *row)
{
	const struct sample *x = &row->s;
	json_t *o = json_object();

	json_object_set_new(o, "time", views_time(x->time_ms));
	json_object_set_new(o, "lat", opt_real(x->present & SAMPLE_POSITION, x->lat_e7 / 1e7));
	json_object_set_new(o, "lon", opt_real(x->present & SAMPLE_POSITION, x->lon_e7 / 1e7));
	json_object_set_new(o, "speed_kmh",
			    opt_real(x->present & SAMPLE_SPEED, x->speed_cms * 0.036));
	json_object_set_new(o, "odometer_km",
			    opt_real(x->present & SAMPLE_ODOMETER, (double)x->odometer_m / 1000.0));
	json_object_set_new(o, "fuel_pct", pct(x->present & SAMPLE_FUEL, x->fuel_permille));
	if (row->implausible)
		json_object_set_new(o, "implausible", json_true());
	return o;
}

json_t *views_day(const struct telemetry_day *d)
{
	char day[16];
	json_t *o = json_object();

	views_day_string(d->day, day, sizeof(day));
	json_object_set_new(o, "day", json_string(day));
	json_object_set_new(o, "samples", json_integer(d->samples));
	json_object_set_new(o, "distance_km", opt_real(d->has_odometer, d->distance_m / 1000.0));
	json_object_set_new(o, "first_odometer_km",
			    opt_real(d->has_odometer, d->first_odometer_m / 1000.0));
	json_object_set_new(o, "last_odometer_km",
			    opt_real(d->has_odometer, d->last_odometer_m / 1000.0));
	json_object_set_new(o, "driving_s", json_integer(d->driving_ms / 1000));
	json_object_set_new(o, "first_fuel_pct", pct(d->has_fuel, d->first_fuel_permille));
	json_object_set_new(o, "last_fuel_pct", pct(d->has_fuel, d->last_fuel_permille));
	json_object_set_new(o, "fuel_used_pct", pct(d->has_fuel, d->fuel_used_permille));
	json_object_set_new(o, "refuelled_pct", pct(d->has_fuel, d->fuel_refuelled_permille));
	return o;
}

json_t *views_offer(const struct offer_row *r)
{
	json_t *o = json_object(), *times;

	json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "kind", json_string(offers_kind_name(r->kind)));
	json_object_set_new(o, "title", json_string(r->title));
	json_object_set_new(o, "promo_code", json_string(r->promo_code));
	json_object_set_new(o, "state", json_string(offer_state_name(r->state)));
	json_object_set_new(o, "created_at", views_time(r->created_ms));
	json_object_set_new(o, "valid_from", views_time(r->valid_from_ms));
	json_object_set_new(o, "valid_until", views_time(r->valid_until_ms));
	json_object_set_new(o, "rule", json_string(r->rule));
	json_object_set_new(o, "state_at", views_time(r->state_ms));
	times = json_object();
	for (int i = 0; i < OFFER_STATE_COUNT; i++)
		if (r->stage_ms[i])
			json_object_set_new(times, offer_state_name((enum offer_state)i),
					    views_time(r->stage_ms[i]));
	json_object_set_new(o, "times", times); /* when it first reached each stage */
	return o;
}

/* "group.name" counters go into a "group" object: {"rejected": {"bad_vin": 0, ...}}. */
static void counter_json(const char *name, uint64_t value, void *arg)
{
	const char *dot = strchr(name, '.');
	json_t *obj = arg, *group;
	char key[64];

	if (!dot || (size_t)(dot - name) >= sizeof(key)) {
		json_object_set_new(obj, name, json_integer((json_int_t)value));
		return;
	}
	snprintf(key, sizeof(key), "%.*s", (int)(dot - name), name);
	group = json_object_get(obj, key);
	if (!group) {
		group = json_object();
		json_object_set_new(obj, key, group);
	}
	json_object_set_new(group, dot + 1, json_integer((json_int_t)value));
}

void views_counters(json_t *obj, const struct counters *c)
{
	counters_each(c, counter_json, obj);
}
