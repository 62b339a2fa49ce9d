/*
 * GNSS position from gpsd, through libgps, on the event loop: the gpsd
 * socket is polled like any other fd and read only when it is readable, so
 * the loop never waits for gpsd. The module keeps the latest usable fix
 * (mode >= 2D with finite latitude/longitude), forgets it at once when gpsd
 * reports no fix (mode below 2D) or goes away, calls it stale 5 s after the
 * last one otherwise (gpsd gone quiet), and reconnects with backoff (1 s doubling to 30 s) when gpsd goes
 * away or cannot be reached.
 *
 * Caveat: libgps's gps_open() connects with a blocking connect(); for gpsd on
 * the head unit itself (127.0.0.1, the default) that returns at once, but a
 * remote gpsd_host that drops SYNs would stall the loop for the TCP timeout.
 */
#ifndef PITSTOP_GNSS_H
#define PITSTOP_GNSS_H

#include <stdint.h>

#include "codec.h"

#define GNSS_STALE_MS 5000

struct loop;
struct gnss;

struct gnss_fix {
	enum fix_mode mode; /* FIX_UNKNOWN: no gpsd; FIX_NONE: no fresh fix */
	double lat_deg, lon_deg;
	int has_speed;	  /* speed_ms is meaningful */
	double speed_ms;  /* speed over ground, m/s */
	int has_track;	  /* track_deg is meaningful */
	double track_deg; /* course over ground, degrees from true north */
	int64_t time_ms;  /* the fix's own unix time, 0 if gpsd gave none */
	uint64_t seen_ms; /* monotonic time the fix arrived */
};

/*
 * Creates the client and starts connecting to host:port (now, then with
 * backoff). Returns 0 and *ret_g, or -errno. host and port are copied.
 */
int gnss_new(struct loop *loop, const char *host, int port, struct gnss **ret_g);

/* Disconnects and frees. Accepts NULL. */
void gnss_free(struct gnss *g);

/*
 * The latest fix as of monotonic time now_ms. Returns 0 and a fresh fix in
 * *ret_fix, or -ENODATA when there is none (ret_fix->mode then tells
 * FIX_UNKNOWN, not connected, from FIX_NONE, connected without a fresh fix).
 */
int gnss_get(const struct gnss *g, uint64_t now_ms, struct gnss_fix *ret_fix);

#endif
