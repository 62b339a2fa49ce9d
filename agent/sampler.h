/*
 * Adaptive sampling: which of the samples the agent takes every
 * sample_interval_ms are worth keeping, and when the car counts as parked
 * (its stand-in for ignition off). Pure functions on a small state: no I/O,
 * no clock of its own (callers pass the monotonic time), so the daemon, the
 * unit tests and bench/bench_budget.c run exactly the same decisions.
 *
 * A sample is kept when sampling is not adaptive, or, against the last kept
 * sample, when the car moved at least min_distance_m, turned at least
 * min_heading_deg while moving, the fuel level changed by at least
 * min_fuel_pct, what is present changed (a GNSS fix lost or found, a signal
 * appearing), max_interval_s passed, or the car just parked or started
 * again. While parked only a fuel change (refuelling) or parked_heartbeat_s
 * keeps one. docs/agent.md says why each rule exists.
 */
#ifndef PITSTOP_SAMPLER_H
#define PITSTOP_SAMPLER_H

#include <stdint.h>

#include "codec.h"

struct gnss_fix;
struct vehicle_signals;

/* Below this speed (0.5 m/s, 1.8 km/h) the car stands; GNSS noise is larger. */
#define SAMPLER_STANDING_CMS 50

struct sampler_config {
	int adaptive;		/* bool: 0 keeps every sample (no parking either) */
	int min_distance_m;	/* keep after moving this far */
	int min_heading_deg;	/* keep after turning this much while moving */
	double min_fuel_pct;	/* keep after the fuel level changed this much */
	int max_interval_s;	/* keep at least this often while not parked */
	int parked_after_s;	/* standing (no speed, no movement) this long: parked */
	int parked_heartbeat_s; /* keep this often while parked */
};

struct sampler {
	int have_last;	      /* a sample was kept */
	struct sample last;   /* the last kept sample */
	uint64_t last_ms;     /* monotonic time it was kept */
	int standing;	      /* the car stands since standing_ms */
	uint64_t standing_ms; /* monotonic time it began to stand */
	struct sample anchor; /* where it began to stand */
	int parked;	      /* standing for parked_after_s */
};

/* sampler_feed() result bits. */
#define SAMPLER_KEEP (1u << 0)	 /* store this sample */
#define SAMPLER_PARKED (1u << 1) /* the car parked with this sample: flush batches */

/* Starts with nothing kept. */
void sampler_init(struct sampler *sp);

/*
 * Decides about sample s taken at monotonic time now_ms with settings conf
 * (read at every call, so a reload applies at the next sample). Returns
 * SAMPLER_* bits and updates sp.
 */
unsigned sampler_feed(struct sampler *sp, const struct sampler_config *conf, const struct sample *s,
		      uint64_t now_ms);

/*
 * Builds one sample from what the sources say: vehicle signals vs, and the
 * GNSS fix when fix_fresh (a speed from the fix wins over the vehicle's).
 */
void sampler_build(const struct vehicle_signals *vs, const struct gnss_fix *fix, int fix_fresh,
		   int64_t wall_ms, struct sample *ret);

/*
 * 1 if the open samples (open of them, the oldest opened at first_open_ms)
 * make a batch now: max_samples of them, or the oldest max_age_ms old.
 */
int sampler_batch_due(unsigned open, uint64_t first_open_ms, uint64_t now_ms, int max_samples,
		      int max_age_ms);

/* Metres between two positions in 1e-7 degree (equirectangular; < 0.1 % off below 100 km). */
double sampler_distance_m(int32_t lat1, int32_t lon1, int32_t lat2, int32_t lon2);

#endif
