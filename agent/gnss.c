/*
 * gpsd client on the loop; see gnss.h. Follows docs in DEPENDENCIES.md: a
 * fix is judged by fix.mode (not status), g.set is cleared before each read
 * so old fields do not look new, and time/speed/track are checked with
 * isfinite() because the first reports may carry NaN or zero. The socket is
 * made non-blocking, so a report split across TCP segments never makes
 * gps_read() wait on the loop.
 */
#include "gnss.h"

#include <errno.h>
#include <fcntl.h>
#include <gps.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "loop.h"

#define GNSS_BACKOFF_MIN_MS 1000
#define GNSS_BACKOFF_MAX_MS 30000
#define GNSS_MAX_READS 64 /* reports handled per wake-up, so gpsd cannot starve the loop */

struct gnss {
	struct loop *loop; /* borrowed */
	char *host;	   /* owned */
	char port[8];
	struct gps_data_t gd; /* valid while connected */
	int connected;
	int fd;	   /* gd.gps_fd while connected, else -1 */
	int timer; /* reconnect timer id, 0 = none */
	uint64_t backoff_ms;
	int failures_logged; /* log the first failure, then debug */
	struct gnss_fix fix; /* latest usable fix; mode FIX_UNKNOWN if none */
	int have_fix;
	enum fix_mode last_mode; /* mode of the latest report */
};

static void gnss_connect(void *arg);

/* Schedules the next connection attempt and doubles the backoff. */
static void gnss_schedule(struct gnss *g)
{
	int id = loop_add_timer(g->loop, g->backoff_ms, gnss_connect, g);

	g->timer = id > 0 ? id : 0;
	if (id <= 0)
		log_error("gnss: cannot schedule reconnect: %s", strerror(-id));
	g->backoff_ms *= 2;
	if (g->backoff_ms > GNSS_BACKOFF_MAX_MS)
		g->backoff_ms = GNSS_BACKOFF_MAX_MS;
}

/* Closes the gpsd connection, if any. */
static void gnss_disconnect(struct gnss *g)
{
	if (!g->connected)
		return;
	loop_del_fd(g->loop, g->fd);
	gps_stream(&g->gd, WATCH_DISABLE, NULL);
	gps_close(&g->gd);
	g->connected = 0;
	g->fd = -1;
	g->last_mode = FIX_UNKNOWN;
	g->have_fix = 0; /* a fix from before the gap says nothing about now */
}

/*
 * Takes what one report says; keeps it only if it is a usable fix. A report
 * of no fix (mode below 2D) forgets the fix at once: gpsd says the receiver
 * has lost it, so the next sample carries no position (the staleness limit
 * only covers a gpsd that goes quiet).
 */
static void gnss_take(struct gnss *g)
{
	const struct gps_data_t *d = &g->gd;
	struct gnss_fix f;

	if (!(d->set & MODE_SET))
		return;
	g->last_mode = d->fix.mode >= MODE_3D	    ? FIX_3D
		       : d->fix.mode == MODE_2D	    ? FIX_2D
		       : d->fix.mode == MODE_NO_FIX ? FIX_NONE
						    : FIX_UNKNOWN;
	if (d->fix.mode < MODE_2D) {
		if (g->have_fix)
			log_debug("gnss: no fix (mode %d): position cleared", (int)d->fix.mode);
		g->have_fix = 0;
		return;
	}
	if (!(d->set & LATLON_SET) || !isfinite(d->fix.latitude) || !isfinite(d->fix.longitude) ||
	    fabs(d->fix.latitude) > 90 || fabs(d->fix.longitude) > 180)
		return;
	memset(&f, 0, sizeof(f));
	f.mode = g->last_mode;
	f.lat_deg = d->fix.latitude;
	f.lon_deg = d->fix.longitude;
	if ((d->set & SPEED_SET) && isfinite(d->fix.speed) && d->fix.speed >= 0) {
		f.has_speed = 1;
		f.speed_ms = d->fix.speed;
	}
	if ((d->set & TRACK_SET) && isfinite(d->fix.track)) {
		f.has_track = 1;
		f.track_deg = fmod(d->fix.track, 360.0);
		if (f.track_deg < 0)
			f.track_deg += 360.0;
	}
	if ((d->set & TIME_SET) && d->fix.time.tv_sec > 0)
		f.time_ms = (int64_t)d->fix.time.tv_sec * 1000 + d->fix.time.tv_nsec / 1000000;
	f.seen_ms = loop_now_ms();
	g->fix = f;
	g->have_fix = 1;
	log_debug("gnss: fix mode %d %.6f,%.6f", (int)f.mode, f.lat_deg, f.lon_deg);
}

/* The gpsd socket is readable: handle what arrived, never waiting. */
static void gnss_readable(int fd, short revents, void *arg)
{
	struct gnss *g = arg;
	int n = 0;

	do {
		int r;

		g->gd.set = 0;
		r = gps_read(&g->gd, NULL, 0);
		if (r < 0) {
			log_warn("gnss: lost gpsd at %s:%s; reconnecting", g->host, g->port);
			gnss_disconnect(g);
			g->backoff_ms = GNSS_BACKOFF_MIN_MS;
			g->failures_logged = 0;
			gnss_schedule(g);
			return;
		}
		if (r == 0)
			return; /* only part of a report so far (EAGAIN) */
		gnss_take(g);
	} while (++n < GNSS_MAX_READS && gps_waiting(&g->gd, 0));
}

/* Timer: tries to connect to gpsd and start the JSON watch. */
static void gnss_connect(void *arg)
{
	struct gnss *g = arg;
	int r;

	g->timer = 0;
	if (gps_open(g->host, g->port, &g->gd) != 0) {
		if (!g->failures_logged)
			log_warn("gnss: cannot connect to gpsd at %s:%s: %s; retrying", g->host,
				 g->port, gps_errstr(errno));
		else
			log_debug("gnss: still cannot connect to gpsd at %s:%s", g->host, g->port);
		g->failures_logged = 1;
		gnss_schedule(g);
		return;
	}
	g->connected = 1;
	g->fd = g->gd.gps_fd;
	/*
	 * Non-blocking: gps_waiting() is true while libgps holds half a report,
	 * and gps_read() would then block in recv() for the rest. With
	 * O_NONBLOCK it returns 0 instead (checked with libgps 3.22).
	 */
	r = fcntl(g->fd, F_GETFL);
	if (r < 0 || fcntl(g->fd, F_SETFL, r | O_NONBLOCK) < 0) {
		log_error("gnss: cannot make the gpsd socket non-blocking: %s", strerror(errno));
		goto fail;
	}
	if (gps_stream(&g->gd, WATCH_ENABLE | WATCH_JSON, NULL) != 0) {
		log_warn("gnss: gpsd at %s:%s refused the watch request; retrying", g->host,
			 g->port);
		goto fail;
	}
	r = loop_add_fd(g->loop, g->fd, POLLIN, gnss_readable, g);
	if (r < 0) {
		log_error("gnss: cannot watch the gpsd socket: %s", strerror(-r));
		goto fail;
	}
	log_info("gnss: connected to gpsd at %s:%s", g->host, g->port);
	g->backoff_ms = GNSS_BACKOFF_MIN_MS;
	g->failures_logged = 0;
	g->last_mode = FIX_NONE;
	return;
fail:
	gps_close(&g->gd);
	g->connected = 0;
	g->fd = -1;
	gnss_schedule(g);
}

int gnss_new(struct loop *loop, const char *host, int port, struct gnss **ret_g)
{
	struct gnss *g;

	if (!host || port <= 0 || port > 65535)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->host = strdup(host);
	if (!g->host) {
		free(g);
		return -ENOMEM;
	}
	snprintf(g->port, sizeof(g->port), "%d", port);
	g->loop = loop;
	g->fd = -1;
	g->backoff_ms = GNSS_BACKOFF_MIN_MS;
	/* Connect from the loop, so a slow gpsd never delays start-up. */
	g->timer = loop_add_timer(loop, 0, gnss_connect, g);
	if (g->timer <= 0) {
		free(g->host);
		free(g);
		return -ENOMEM;
	}
	*ret_g = g;
	return 0;
}

void gnss_free(struct gnss *g)
{
	if (!g)
		return;
	loop_cancel_timer(g->loop, g->timer);
	gnss_disconnect(g);
	free(g->host);
	free(g);
}

int gnss_get(const struct gnss *g, uint64_t now_ms, struct gnss_fix *ret_fix)
{
	memset(ret_fix, 0, sizeof(*ret_fix));
	if (!g || !g->connected) {
		ret_fix->mode = FIX_UNKNOWN;
		return -ENODATA;
	}
	if (!g->have_fix || now_ms - g->fix.seen_ms > GNSS_STALE_MS) {
		ret_fix->mode = FIX_NONE;
		return -ENODATA;
	}
	*ret_fix = g->fix;
	return 0;
}
