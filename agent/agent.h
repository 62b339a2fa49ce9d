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
 * Clean shutdown before agent_free(): open samples stay unsealed in the
 * queue (sealed at the next start), Status OFFLINE is published, the bus is
 * stopped (waiting up to timeout_ms for acknowledgements).
 */
void agent_shutdown(struct agent *a, int timeout_ms);

/* Frees everything, in reverse order of creation. Accepts NULL. */
void agent_free(struct agent *a);

/* Samples that could not be stored since start (for tests and status). */
uint64_t agent_samples_lost(const struct agent *a);

#endif
