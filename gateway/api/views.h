/*
 * The API's JSON for the domains' objects (views.c); pitstopctl prints the
 * same shapes.
 */
#ifndef PITSTOP_VIEWS_H
#define PITSTOP_VIEWS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "counters.h"
#include "offer_log.h"
#include "offers.h"
#include "telemetry.h"

/* ISO 8601 UTC with milliseconds: 2026-12-01T12:00:00.000Z */
void views_iso8601(int64_t ms, char *buf, size_t size);

/* views_iso8601() as a JSON string; null for ms <= 0 (never). */
json_t *views_time(int64_t ms);

/*
 * A car seen (a sample or a status, by its own clock) within this window is
 * online: the API's ?online= filter and pitstopctl vehicle list --online.
 */
#define VIEWS_ONLINE_WINDOW_MS (10 * 60 * 1000LL)

/* "none", "2d", "3d", or NULL for an unknown fix; views_fix() as JSON (null). */
const char *views_fix_name(enum fix_mode f);
json_t *views_fix(enum fix_mode f);

/* The vehicle object of the API, fleet NULL when none; online as of now_ms. */
json_t *views_vehicle(const struct telemetry_vehicle *v, const char *fleet, int64_t now_ms);

/* YYYY-MM-DD of a day number (days since 1970-01-01 UTC). */
void views_day_string(int64_t day, char *buf, size_t size);

json_t *views_sample(const struct telemetry_sample *row);
json_t *views_day(const struct telemetry_day *d);
json_t *views_offer(const struct offer_row *r);

/* Adds the counters of c to obj, "group.name" ones under a "group" object. */
void views_counters(json_t *obj, const struct counters *c);

#endif
