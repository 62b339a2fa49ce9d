/*
 * Vehicle-signal sources; see signals.h. Holds the dispatch helpers and the
 * replay source, which reads its whole CSV file at open (bounded by
 * SIGNALS_MAX_ROWS) and answers reads by binary search on elapsed time.
 */
#include "signals.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"
#include "loop.h"
#include "obd_can.h"
#include "obd_elm327.h"

struct replay_row {
	double t_s;
	struct vehicle_signals v;
};

struct replay {
	struct signals head;	 /* must be first */
	struct replay_row *rows; /* owned, t_s strictly increasing */
	size_t nrows, caprows;
	int loop;	   /* replay again after the end */
	uint64_t start_ms; /* monotonic time of t_s = 0 */
	double cycle_s;	   /* length of one cycle when looping */
};

int signals_read(struct signals *s, uint64_t now_ms, struct vehicle_signals *ret)
{
	if (!s) {
		memset(ret, 0, sizeof(*ret));
		return 0;
	}
	return s->ops->read(s, now_ms, ret);
}

void signals_free(struct signals *s)
{
	if (s)
		s->ops->free(s);
}

/* The last row with t_s <= elapsed time (modulo the cycle when looping). */
static int replay_read(struct signals *s, uint64_t now_ms, struct vehicle_signals *ret)
{
	struct replay *rp = (struct replay *)s;
	double t = now_ms >= rp->start_ms ? (double)(now_ms - rp->start_ms) / 1000.0 : 0;
	size_t lo = 0, hi = rp->nrows;

	if (rp->loop && rp->cycle_s > 0)
		t = fmod(t, rp->cycle_s);
	/* Find the first row with t_s > t; the one before it is current. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (rp->rows[mid].t_s <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		memset(ret, 0, sizeof(*ret));
	else
		*ret = rp->rows[lo - 1].v;
	return 0;
}

static void replay_free(struct signals *s)
{
	struct replay *rp = (struct replay *)s;

	free(rp->rows);
	free(rp);
}

static const struct signals_ops replay_ops = { replay_read, replay_free };

/*
 * Parses one numeric field [p, end) into *ret_v. Returns 1 if a value was
 * there, 0 for an empty field, -1 if it is not a finite number.
 */
static int parse_field(const char *p, const char *end, double *ret_v)
{
	char buf[64];
	char *e;
	size_t n;
	double v;

	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	n = (size_t)(end - p);
	if (n == 0)
		return 0;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	errno = 0;
	v = strtod(buf, &e);
	if (errno || *e || !isfinite(v))
		return -1;
	*ret_v = v;
	return 1;
}

static const char *const field_names[4] = { "t_s", "odometer_km", "fuel_pct", "speed_kmh" };

/*
 * Parses one data line into *ret_row. On error writes the bare reason into
 * msg and returns -EINVAL.
 */
static int parse_row(char *line, struct replay_row *ret_row, char *msg, size_t msglen)
{
	const char *p = line;
	double v[4] = { 0 };
	int have[4] = { 0 };
	int nf = 0;

	for (;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		int r;

		if (nf == 4) {
			snprintf(msg, msglen, "expected 4 fields (%s,%s,%s,%s), got more",
				 field_names[0], field_names[1], field_names[2], field_names[3]);
			return -EINVAL;
		}
		r = parse_field(p, end, &v[nf]);
		if (r < 0) {
			snprintf(msg, msglen, "%s: not a number", field_names[nf]);
			return -EINVAL;
		}
		have[nf++] = r;
		if (!comma)
			break;
		p = comma + 1;
	}
	if (nf != 4) {
		snprintf(msg, msglen, "expected 4 fields (%s,%s,%s,%s), got %d", field_names[0],
			 field_names[1], field_names[2], field_names[3], nf);
		return -EINVAL;
	}
	if (!have[0]) {
		snprintf(msg, msglen, "t_s: missing");
		return -EINVAL;
	}
	if (v[0] < 0 || v[0] > 1e9) {
		snprintf(msg, msglen, "t_s: %g is out of range [0, 1e9]", v[0]);
		return -EINVAL;
	}
	if (have[1] && (v[1] < 0 || v[1] > 1e8)) {
		snprintf(msg, msglen, "odometer_km: %g is out of range [0, 1e8]", v[1]);
		return -EINVAL;
	}
	if (have[2] && (v[2] < 0 || v[2] > 100)) {
		snprintf(msg, msglen, "fuel_pct: %g is out of range [0, 100]", v[2]);
		return -EINVAL;
	}
	if (have[3] && (v[3] < 0 || v[3] > 1000)) {
		snprintf(msg, msglen, "speed_kmh: %g is out of range [0, 1000]", v[3]);
		return -EINVAL;
	}
	memset(ret_row, 0, sizeof(*ret_row));
	ret_row->t_s = v[0];
	if (have[1]) {
		ret_row->v.present |= SIGNAL_ODOMETER;
		ret_row->v.odometer_km = v[1];
	}
	if (have[2]) {
		ret_row->v.present |= SIGNAL_FUEL;
		ret_row->v.fuel_pct = v[2];
	}
	if (have[3]) {
		ret_row->v.present |= SIGNAL_SPEED;
		ret_row->v.speed_kmh = v[3];
	}
	return 0;
}

/* Appends row, growing the array (bounded by SIGNALS_MAX_ROWS). */
static int replay_append(struct replay *rp, const struct replay_row *row)
{
	if (rp->nrows == rp->caprows) {
		size_t cap = rp->caprows ? rp->caprows * 2 : 64;
		struct replay_row *n;

		if (cap > SIGNALS_MAX_ROWS)
			cap = SIGNALS_MAX_ROWS;
		n = realloc(rp->rows, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		rp->rows = n;
		rp->caprows = cap;
	}
	rp->rows[rp->nrows++] = *row;
	return 0;
}

int signals_replay_open(const char *path, int loop, uint64_t start_ms, char *err, size_t errlen,
			struct signals **ret_s)
{
	char line[SIGNALS_MAX_LINE + 2];
	char msg[160];
	struct replay *rp;
	unsigned lineno = 0;
	FILE *f = NULL;
	int r = 0;

	rp = calloc(1, sizeof(*rp));
	if (!rp) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	rp->head.ops = &replay_ops;
	rp->loop = loop;
	rp->start_ms = start_ms;
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	while (fgets(line, sizeof(line), f)) {
		struct replay_row row;
		size_t len = strlen(line);
		char *p = line;

		lineno++;
		if (len > SIGNALS_MAX_LINE || (len == sizeof(line) - 1 && line[len - 1] != '\n')) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", path, lineno,
				 SIGNALS_MAX_LINE);
			r = -EINVAL;
			goto fail;
		}
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		if (parse_row(p, &row, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "%s:%u: %s", path, lineno, msg);
			r = -EINVAL;
			goto fail;
		}
		if (rp->nrows && row.t_s <= rp->rows[rp->nrows - 1].t_s) {
			snprintf(err, errlen, "%s:%u: t_s %g does not increase (previous row %g)",
				 path, lineno, row.t_s, rp->rows[rp->nrows - 1].t_s);
			r = -EINVAL;
			goto fail;
		}
		if (rp->nrows == SIGNALS_MAX_ROWS) {
			snprintf(err, errlen, "%s:%u: more than %d rows", path, lineno,
				 SIGNALS_MAX_ROWS);
			r = -EFBIG;
			goto fail;
		}
		r = replay_append(rp, &row);
		if (r < 0) {
			snprintf(err, errlen, "%s:%u: out of memory", path, lineno);
			goto fail;
		}
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		r = -EIO;
		goto fail;
	}
	if (rp->nrows == 0) {
		snprintf(err, errlen, "%s: no data rows", path);
		r = -EINVAL;
		goto fail;
	}
	if (rp->nrows == 1)
		rp->cycle_s = rp->rows[0].t_s + 1;
	else
		rp->cycle_s = rp->rows[rp->nrows - 1].t_s +
			      (rp->rows[rp->nrows - 1].t_s - rp->rows[rp->nrows - 2].t_s);
	fclose(f);
	*ret_s = &rp->head;
	return 0;
fail:
	if (f)
		fclose(f);
	replay_free(&rp->head);
	return r;
}

int signals_open(struct loop *loop, const struct agent_config *conf, char *err, size_t errlen,
		 struct signals **ret_s)
{
	char odo[4096];
	int r = 0;

	*ret_s = NULL;
	if (conf->signals_file)
		return signals_replay_open(conf->signals_file, conf->signals_loop, loop_now_ms(),
					   err, errlen, ret_s) < 0
			       ? -EINVAL
			       : 0;
	if (snprintf(odo, sizeof(odo), "%s/odometer", conf->state_dir) >= (int)sizeof(odo)) {
		snprintf(err, errlen, "state_dir %s: path too long", conf->state_dir);
		return -ENAMETOOLONG;
	}
	if (conf->obd_device) {
		struct elm327_config ec = { conf->obd_device, conf->obd_baud, conf->obd_timeout_ms,
					    conf->obd_poll_interval_ms, odo };

		r = elm327_open(loop, &ec, ret_s);
		if (r < 0)
			snprintf(err, errlen, "obd_device %s: %s", conf->obd_device, strerror(-r));
	} else if (conf->can_interface) {
		struct obd_can_config cc = { conf->can_interface, conf->obd_timeout_ms,
					     conf->obd_poll_interval_ms, odo };

		r = obd_can_open(loop, &cc, ret_s);
		if (r < 0)
			snprintf(err, errlen, "can_interface %s: %s", conf->can_interface,
				 strerror(-r));
	}
	return r;
}
