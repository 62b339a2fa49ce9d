/*
 * Local time in a named time zone ("Europe/Berlin"), for rules that speak
 * of a driver's day or night (quiet hours, caps per local day and week).
 *
 * glibc has no per-call time zone: the offset of a zone is found with
 * setenv("TZ") + tzset() + localtime_r(), restored at once, and cached per
 * zone for a quarter of an hour of UTC (zones change their offset on
 * quarter hours). setenv() is not safe against a getenv() on another
 * thread, so only one thread may use this (the gateway's loop); no other
 * thread of the daemon reads TZ or calls localtime (logs are UTC).
 */
#ifndef PITSTOP_LOCALTZ_H
#define PITSTOP_LOCALTZ_H

#include <stddef.h>
#include <stdint.h>

#define LOCALTZ_NAME_MAX 64 /* bytes of a zone name, without NUL */
#define LOCALTZ_CACHE 32    /* zones a cache remembers */
#define LOCALTZ_ZONEINFO "/usr/share/zoneinfo"

/*
 * 1 if name is a zone of the system's tz database (a file under
 * LOCALTZ_ZONEINFO that starts with "TZif", with a sane name: letters,
 * digits, '_', '/', '+', '-', no "..", no leading '/'), else 0. "UTC"
 * always is.
 */
int localtz_valid(const char *name);

struct localtz_entry {
	char zone[LOCALTZ_NAME_MAX + 1];
	int64_t bucket; /* quarter hour of UTC it holds for */
	long off_s;
};

/* Offsets already found; zero it to start. */
struct localtz_cache {
	struct localtz_entry e[LOCALTZ_CACHE];
	size_t next; /* the entry replaced next */
};

/*
 * The UTC offset (s, east positive) of zone at now_ms (ms since the epoch).
 * "" and "UTC" are 0; a zone the tz database lacks reads as UTC (0), so
 * check names with localtz_valid() when they are set.
 */
long localtz_offset(struct localtz_cache *c, const char *zone, int64_t now_ms);

#endif
