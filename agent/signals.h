/*
 * Vehicle signals: odometer, fuel level and vehicle speed, as the sampler
 * sees them. A source is anything behind struct signals_ops: today a replay
 * file (signals_replay_open), later OBD-II or SocketCAN readers that keep the
 * latest values from their own fds on the loop. The sampler only ever calls
 * signals_read(), which must not block.
 *
 * Replay file format (CSV): "t_s,odometer_km,fuel_pct,speed_kmh" per line,
 * '#' comments and blank lines allowed. t_s is seconds since the agent
 * started (decimals allowed) and strictly increases from row to row. An
 * empty field means "not available" for that row. The current values are
 * those of the last row with t_s <= elapsed time; before the first row
 * nothing is available; after the last row the values hold or, with loop,
 * the replay starts again (one cycle lasts the last t_s plus the last gap
 * between rows, or 1 s for a one-row file).
 */
#ifndef PITSTOP_SIGNALS_H
#define PITSTOP_SIGNALS_H

#include <stddef.h>
#include <stdint.h>

/* Bits of struct vehicle_signals.present. */
#define SIGNAL_ODOMETER (1u << 0)
#define SIGNAL_FUEL (1u << 1)
#define SIGNAL_SPEED (1u << 2)
/* odometer_km is an estimate (speed integrated over time): obd_odo.h */
#define SIGNAL_ODOMETER_EST (1u << 3)

/* The current values; a field is meaningful only when its bit is set. */
struct vehicle_signals {
	unsigned present;   /* SIGNAL_* bits */
	double odometer_km; /* >= 0 */
	double fuel_pct;    /* 0..100 */
	double speed_kmh;   /* >= 0 */
};

struct signals;

/* What a source implements. */
struct signals_ops {
	/* Fills *ret with the values at monotonic time now_ms; never blocks. */
	int (*read)(struct signals *s, uint64_t now_ms, struct vehicle_signals *ret);
	void (*free)(struct signals *s);
};

/* The common head of every source. */
struct signals {
	const struct signals_ops *ops;
};

/* Limits of a replay file. */
#define SIGNALS_MAX_ROWS 1000000
#define SIGNALS_MAX_LINE 1024

/*
 * Reads a replay file. start_ms is the monotonic time (loop_now_ms) that
 * counts as t_s = 0. Returns 0 and *ret_s, or a negative errno with
 * "file:line: what is wrong" (or "file: ...") in err.
 */
int signals_replay_open(const char *path, int loop, uint64_t start_ms, char *err, size_t errlen,
			struct signals **ret_s);

/*
 * Opens the source the configuration names (struct agent_config): the
 * replay signals_file, an ELM327 on obd_device or OBD-II on can_interface
 * (obd_elm327.h, obd_can.h; their estimated odometer persists in
 * <state_dir>/odometer), or none (*ret_s = NULL). The OBD sources never fail
 * for a missing device: they retry it. Returns 0 or a negative errno with a
 * one-line reason in err (-EINVAL: the replay file is bad).
 */
struct agent_config;
struct loop;
int signals_open(struct loop *loop, const struct agent_config *conf, char *err, size_t errlen,
		 struct signals **ret_s);

/*
 * The values at now_ms. A NULL source has no values (present = 0). Returns 0
 * or a negative errno (ret->present is then 0 too).
 */
int signals_read(struct signals *s, uint64_t now_ms, struct vehicle_signals *ret);

/* Frees a source of any kind. Accepts NULL. */
void signals_free(struct signals *s);

#endif
