/*
 * Estimated odometer; see obd_odo.h. The file holds one line, the value in
 * km ("%.3f\n"), written to a temporary file and renamed over the old one,
 * mode 0600.
 */
#include "obd_odo.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int obd_odo_init(struct obd_odo *o, const char *path)
{
	char buf[64], *end;
	FILE *f;

	memset(o, 0, sizeof(*o));
	if (!path)
		return 0;
	o->path = strdup(path);
	if (!o->path)
		return -ENOMEM;
	f = fopen(path, "re");
	if (!f) {
		if (errno != ENOENT)
			log_warn("obd: %s: %s: the estimated odometer starts at 0 km", path,
				 strerror(errno));
		return 0;
	}
	if (fgets(buf, sizeof(buf), f)) {
		double v;

		errno = 0;
		v = strtod(buf, &end);
		if (!errno && end != buf && (*end == '\n' || *end == '\0') && isfinite(v) &&
		    v >= 0 && v <= 1e7) {
			o->km = o->saved_km = v;
			o->saved = 1;
		}
	}
	if (!o->saved)
		log_warn("obd: %s: not a distance in km: the estimated odometer starts at 0 km",
			 path);
	fclose(f);
	return 0;
}

void obd_odo_real(struct obd_odo *o, double km)
{
	o->km = km;
	if (!o->saved || fabs(o->km - o->saved_km) >= OBD_ODO_SAVE_KM)
		obd_odo_save(o);
}

void obd_odo_speed(struct obd_odo *o, uint64_t now_ms, double kmh)
{
	if (o->have_speed && now_ms > o->last_ms && now_ms - o->last_ms <= OBD_ODO_MAX_GAP_MS)
		o->km += (o->last_kmh + kmh) / 2.0 * (double)(now_ms - o->last_ms) / 3600000.0;
	o->have_speed = 1;
	o->last_kmh = kmh;
	o->last_ms = now_ms;
	if (fabs(o->km - o->saved_km) >= OBD_ODO_SAVE_KM)
		obd_odo_save(o);
}

void obd_odo_gap(struct obd_odo *o)
{
	o->have_speed = 0;
}

int obd_odo_save(struct obd_odo *o)
{
	char tmp[4096], line[64];
	int fd, n, r = 0;

	if (!o->path || (o->saved && o->km == o->saved_km))
		return 0;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", o->path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto fail;
	}
	n = snprintf(line, sizeof(line), "%.3f\n", o->km);
	errno = 0;
	if (write(fd, line, (size_t)n) != n)
		r = errno ? -errno : -EIO;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, o->path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		goto fail;
	}
	o->saved_km = o->km;
	o->saved = 1;
	return 0;
fail:
	log_warn("obd: cannot save the odometer to %s: %s", o->path, strerror(-r));
	/* do not retry at every reading: next time it moved OBD_ODO_SAVE_KM */
	o->saved_km = o->km;
	return r;
}

void obd_odo_fini(struct obd_odo *o)
{
	obd_odo_save(o);
	free(o->path);
	o->path = NULL;
}
