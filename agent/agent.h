/*
 * The agent as a whole: creates its modules in dependency order (vehicle
 * signals and the offer verifier first, as their files are input that can be
 * wrong; then queue, display, offers, GNSS, uplink), runs the
 * sampling timer (sample -> SQLite -> seal into batches -> uplink) and routes
 * offers from the uplink to the offers module and its events back. Undone in
 * reverse by agent_free(). main.c only parses the command line, loads the
 * config, owns the loop and signals.
 */
#ifndef PITSTOP_AGENT_H
#define PITSTOP_AGENT_H

#include <stddef.h>
#include <stdint.h>

struct agent;
struct agent_config;
struct loop;

/*
 * Starts the agent on loop with conf (borrowed; must outlive the agent).
 * Returns 0 and *ret_a, or a negative errno with a one-line reason in err:
 * -EINVAL means an input file named by the config is bad (signals_file or
 * offer_key_file; err then says "file:line: ..." where it can).
 */
int agent_new(struct loop *loop, const struct agent_config *conf, char *err, size_t errlen,
	      struct agent **ret_a);

/*
 * Clean shutdown before agent_free(): open samples are sealed into a batch
 * in the queue (sent after the next start), Status OFFLINE is published, the
 * bus is stopped (waiting up to timeout_ms for acknowledgements).
 */
void agent_shutdown(struct agent *a, int timeout_ms);

/* Frees everything, in reverse order of creation. Accepts NULL. */
void agent_free(struct agent *a);

/* Samples that could not be stored since start (for tests and status). */
uint64_t agent_samples_lost(const struct agent *a);

/* What the agent is doing, for the service status. */
struct agent_activity {
	int queued;		  /* batches in the queue: unsent or without a receipt */
	unsigned open_samples;	  /* samples not sealed into a batch yet */
	int connected;		  /* 1 when connected to the broker */
	uint64_t samples_lost;	  /* samples that could not be stored since start */
	uint64_t samples_skipped; /* taken but not kept by adaptive sampling */
};
void agent_activity(const struct agent *a, struct agent_activity *ret);

/*
 * The configuration (borrowed at agent_new()) changed: applies its display
 * settings (display_max_speed_kmh, offer_max_validity_s) and the queue's
 * limits (max_loss_s, queue_max_bytes, queue_thin_every). The sampling
 * settings (sample_interval_ms, batch_max_samples, batch_max_age_ms and the
 * adaptive sampling keys, agent/sampler.h) are read at every sample and
 * need no call.
 */
void agent_reconfigured(struct agent *a);

#endif
