/*
 * OBD-II request scheduling and the values it yields; see obd_poll.h.
 */
#include "obd_poll.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "loop.h"
#include "signals.h"

const uint8_t obd_poll_pids[OBD_POLL_NPIDS] = { OBD_PID_SPEED, OBD_PID_FUEL, OBD_PID_ODOMETER };
static const char *const pid_names[OBD_POLL_NPIDS] = { "speed (0x0D)", "fuel level (0x2F)",
						       "odometer (0xA6)" };
enum { V_SPEED, V_FUEL, V_ODO };

int obd_poll_init(struct obd_poll *p, const char *odo_path)
{
	memset(p, 0, sizeof(*p));
	obd_poll_restart(p);
	return obd_odo_init(&p->odo, odo_path);
}

void obd_poll_fini(struct obd_poll *p)
{
	obd_odo_fini(&p->odo);
}

void obd_poll_restart(struct obd_poll *p)
{
	memset(&p->sup, 0, sizeof(p->sup));
	p->probing = 1;
	p->probe_pid = 0x00;
	p->refused = 0;
	p->turn = 0;
}

/* 1 if pids[i] is in the rotation. */
static int polled(const struct obd_poll *p, unsigned i)
{
	return obd_pid_supported(&p->sup, obd_poll_pids[i]) && !(p->refused & (1u << i));
}

/* The end of probing: says once what the car gives. */
static void probe_done(struct obd_poll *p)
{
	char have[128] = "", miss[128] = "";

	p->probing = 0;
	for (unsigned i = 0; i < OBD_POLL_NPIDS; i++) {
		char *b = polled(p, i) ? have : miss;

		snprintf(b + strlen(b), sizeof(have) - strlen(b), "%s%s", *b ? ", " : "",
			 pid_names[i]);
	}
	log_info("obd: the car gives %s%s%s%s", *have ? have : "none of the PIDs we sample",
		 *miss ? "; not " : "", miss,
		 polled(p, V_ODO)     ? ""
		 : polled(p, V_SPEED) ? ": the odometer is estimated from speed"
				      : ": no odometer (nor speed to estimate it from)");
}

int obd_poll_next(struct obd_poll *p)
{
	if (p->probing)
		return p->probe_pid;
	for (unsigned k = 0; k < OBD_POLL_NPIDS; k++) {
		unsigned i = (p->turn + k) % OBD_POLL_NPIDS;

		if (polled(p, i)) {
			p->turn = i + 1;
			return obd_poll_pids[i];
		}
	}
	return -ENODATA;
}

/* The index of pid in obd_poll_pids, or -1. */
static int pid_index(uint8_t pid)
{
	for (unsigned i = 0; i < OBD_POLL_NPIDS; i++)
		if (obd_poll_pids[i] == pid)
			return (int)i;
	return -1;
}

int obd_poll_answer(struct obd_poll *p, uint64_t now_ms, uint8_t pid, const uint8_t *const *msgs,
		    const size_t *lens, size_t n)
{
	struct obd_value v;
	int i = pid_index(pid), more = 0, ok = 0;

	if (obd_pid_is_bitmap(pid)) {
		if (!p->probing || pid != p->probe_pid)
			return -EBADMSG;
		for (size_t k = 0; k < n; k++) {
			int r;

			if (lens[k] < 4)
				continue;
			r = obd_pid_support_add(&p->sup, pid, msgs[k]);
			ok = 1;
			more |= r > 0;
		}
		if (!ok)
			return -EBADMSG;
		if (more && pid < OBD_PID_BITMAP_LAST)
			p->probe_pid = (uint8_t)(pid + 0x20);
		else
			probe_done(p);
		return 0;
	}
	if (i < 0)
		return -EBADMSG;
	for (size_t k = 0; k < n && !ok; k++)
		ok = obd_pid_decode(pid, msgs[k], lens[k], &v) == 0;
	if (!ok)
		return -EBADMSG;
	p->val[i].v = v.value;
	p->val[i].at = now_ms;
	if (i == V_SPEED)
		obd_odo_speed(&p->odo, now_ms, v.value);
	else if (i == V_ODO)
		obd_odo_real(&p->odo, v.value);
	return 0;
}

int obd_poll_refused(struct obd_poll *p, uint8_t pid, uint8_t nrc)
{
	int i = pid_index(pid);

	if (p->probing) {
		/* a bitmap the previous one announced: use what we have */
		log_info("obd: the car refused bitmap PID 0x%02X (negative response 0x%02X)", pid,
			 nrc);
		if (pid == 0x00)
			return 1; /* nothing known yet: the transport backs off */
		probe_done(p);
		return 0;
	}
	if (i < 0 || (p->refused & (1u << i)))
		return 0;
	p->refused |= 1u << (unsigned)i;
	p->val[i].at = 0;
	log_info("obd: the car refused %s (negative response 0x%02X): no longer asked%s",
		 pid_names[i], nrc,
		 i == V_ODO && polled(p, V_SPEED) ? "; the odometer is estimated from speed" : "");
	return 0;
}

int obd_poll_no_data(struct obd_poll *p, uint8_t pid)
{
	if (!p->probing)
		return 0;
	if (pid == 0x00)
		return 1;
	probe_done(p); /* an announced bitmap nobody gives */
	return 0;
}

int obd_poll_handle(struct obd_poll *p, uint64_t now_ms, uint8_t pid, const uint8_t *const *msgs,
		    const size_t *lens, size_t n)
{
	const uint8_t *data[16];
	size_t dlen[16], k = 0;
	int nrc = 0;

	for (size_t i = 0; i < n && k < 16; i++) {
		int r = obd_pid_answer(msgs[i], lens[i], pid, &data[k], &dlen[k]);

		if (r == 0)
			k++;
		else if (r > 0)
			nrc = r;
	}
	if (k && obd_poll_answer(p, now_ms, pid, data, dlen, k) == 0)
		return 0;
	if (nrc)
		return obd_poll_refused(p, pid, (uint8_t)nrc);
	return -EBADMSG;
}

void obd_say(struct obd_said *s, int level, const char *fmt, ...)
{
	char msg[sizeof(s->last)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (strcmp(msg, s->last) == 0)
		return;
	snprintf(s->last, sizeof(s->last), "%s", msg);
	log_at((enum log_level)level, "%s", msg);
}

void obd_timer(struct loop *loop, int *timer, uint64_t ms, void (*fn)(void *), void *arg)
{
	int id;

	if (*timer)
		loop_cancel_timer(loop, *timer);
	id = loop_add_timer(loop, ms, fn, arg);
	*timer = id > 0 ? id : 0;
	if (id <= 0)
		log_error("obd: cannot set a timer: %s", strerror(-id));
}

void obd_poll_lost(struct obd_poll *p)
{
	obd_odo_gap(&p->odo);
}

void obd_poll_read(struct obd_poll *p, uint64_t now_ms, struct vehicle_signals *ret)
{
	static const unsigned bit[OBD_POLL_NPIDS] = { SIGNAL_SPEED, SIGNAL_FUEL, SIGNAL_ODOMETER };
	double *field[OBD_POLL_NPIDS] = { &ret->speed_kmh, &ret->fuel_pct, &ret->odometer_km };

	memset(ret, 0, sizeof(*ret));
	for (unsigned i = 0; i < OBD_POLL_NPIDS; i++) {
		if (!p->val[i].at || now_ms - p->val[i].at > OBD_POLL_STALE_MS)
			continue;
		ret->present |= bit[i];
		*field[i] = p->val[i].v;
	}
	/* Estimate while speed flows and the car has no odometer for us. */
	if (!p->probing && !polled(p, V_ODO) && (ret->present & SIGNAL_SPEED)) {
		ret->present |= SIGNAL_ODOMETER | SIGNAL_ODOMETER_EST;
		ret->odometer_km = p->odo.km;
	}
}
