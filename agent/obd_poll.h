/*
 * What to ask a car next over OBD-II and what its answers mean, for any
 * transport (ELM327, SocketCAN): first the supported-PID bitmaps (0x00,
 * then 0x20, ... as long as each says the next exists, up to 0xA0), then
 * the PIDs the agent samples (speed 0x0D, fuel 0x2F, odometer 0xA6) that
 * the car supports, round-robin, one request at a time. A PID the car
 * refuses with a negative response (7F 01 NRC) leaves the rotation. Without
 * 0xA6 the odometer is estimated from speed (obd_odo.h) and marked so.
 *
 * The transport calls obd_poll_next() for the PID to request, then exactly
 * one of obd_poll_answer() / obd_poll_refused() / obd_poll_no_data() /
 * obd_poll_lost() for it. No I/O here; it logs what it learns about the car
 * once per change.
 */
#ifndef PITSTOP_OBD_POLL_H
#define PITSTOP_OBD_POLL_H

#include <stddef.h>
#include <stdint.h>

#include "obd_odo.h"
#include "obd_pid.h"

struct vehicle_signals;

/* A value older than this is not reported (the link or the car went quiet). */
#define OBD_POLL_STALE_MS 5000
#define OBD_POLL_NPIDS 3

struct obd_poll {
	struct obd_pid_support sup; /* bitmaps answered so far */
	int probing;		    /* 1 while bitmaps are read */
	uint8_t probe_pid;	    /* the next bitmap to ask for */
	unsigned refused;	    /* bit i: pids[i] refused (7F) */
	unsigned turn;		    /* round-robin position */
	struct {
		double v;      /* last value (%, km/h, km) */
		uint64_t at;   /* its monotonic time, 0 = none */
	} val[OBD_POLL_NPIDS]; /* in the order of obd_poll_pids */
	struct obd_odo odo;    /* the estimator (owned) */
};

/* The sampled PIDs, in val[] order: speed, fuel, odometer. */
extern const uint8_t obd_poll_pids[OBD_POLL_NPIDS];

/* Starts at probing; odo_path: the estimator's file (may be NULL). 0 or -ENOMEM. */
int obd_poll_init(struct obd_poll *p, const char *odo_path);

/* Saves the estimate; frees what p owns. */
void obd_poll_fini(struct obd_poll *p);

/* A new connection to the car: bitmaps are read again. */
void obd_poll_restart(struct obd_poll *p);

/* The PID to request next (0x00 and up), or -ENODATA when the car supports none we sample. */
int obd_poll_next(struct obd_poll *p);

/*
 * The positive answers to pid (one per ECU that answered: msgs[i] is the
 * bytes after "41 pid", lens[i] their count) at monotonic time now_ms.
 * Bitmaps of several ECUs are ORed; for a value the first decodable answer
 * counts. Returns 0, or -EBADMSG if no answer could be decoded.
 */
int obd_poll_answer(struct obd_poll *p, uint64_t now_ms, uint8_t pid, const uint8_t *const *msgs,
		    const size_t *lens, size_t n);

/*
 * pid was refused with negative response code nrc (0x12: not supported).
 * Returns 1 if that leaves nothing to ask (bitmap 0x00 refused), as
 * obd_poll_no_data().
 */
int obd_poll_refused(struct obd_poll *p, uint8_t pid, uint8_t nrc);

/*
 * No ECU answered pid (NO DATA). Returns 1 if the car answers nothing at
 * all (NO DATA to bitmap 0x00: ignition off?), so the transport backs off.
 */
int obd_poll_no_data(struct obd_poll *p, uint8_t pid);

/*
 * The raw answers of the ECUs to pid (each starts with its service byte:
 * 41 pid ... or 7F 01 NRC): the positive ones go to obd_poll_answer(), else
 * a negative one to obd_poll_refused(). Returns 0, 1 as obd_poll_refused()
 * (back off), or -EBADMSG when no answer was one to pid.
 */
int obd_poll_handle(struct obd_poll *p, uint64_t now_ms, uint8_t pid, const uint8_t *const *msgs,
		    const size_t *lens, size_t n);

/* Logs a state of a transport once: nothing when it is what it said last. */
struct obd_said {
	char last[200];
};
void obd_say(struct obd_said *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Replaces the transport's one pending loop timer *timer (0 = none) with
 * fn(arg) in ms; logs and leaves 0 if the loop cannot take it.
 */
struct loop;
void obd_timer(struct loop *loop, int *timer, uint64_t ms, void (*fn)(void *), void *arg);

/* A backoff doubled, up to max. */
static inline unsigned obd_backoff(unsigned ms, unsigned max)
{
	return ms * 2 > max ? max : ms * 2;
}

/* The link to the car is gone (timeouts, bus errors, unplugged). */
void obd_poll_lost(struct obd_poll *p);

/*
 * The current values at now_ms (fresher than OBD_POLL_STALE_MS); the
 * odometer from 0xA6 when the car has it, else the estimate with
 * SIGNAL_ODOMETER_EST (once the bitmaps said 0xA6 is missing or the car
 * refused it, and speed readings come).
 */
void obd_poll_read(struct obd_poll *p, uint64_t now_ms, struct vehicle_signals *ret);

#endif
