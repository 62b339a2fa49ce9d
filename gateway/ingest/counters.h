/*
 * The counters of one gateway instance, defined once: the X-macros below
 * give the struct fields, the names stored in the counters table and shown
 * by pitstopctl stats (JSON keys and text), and the reject reasons. The
 * ingest domain owns the table counters (gateway/ingest/schema/): one row
 * per (instance, name), so a new counter needs no migration.
 */
#ifndef PITSTOP_COUNTERS_H
#define PITSTOP_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "telemetry.h"

/* X(field, help): every plain counter, in display order. */
#define COUNTERS_PLAIN(X)                                                     \
	X(received, "messages delivered by the bus")                          \
	X(stored, "telemetry batches stored (not duplicates)")                \
	X(samples_stored, "samples in those batches")                         \
	X(duplicates, "batches already stored: (VIN, epoch, seq) seen")       \
	X(offers_sent, "offers acknowledged by the broker")                   \
	X(offers_failed, "offers that could not be built or sent")            \
	X(acks_sent, "telemetry receipts acknowledged by the broker")         \
	X(events, "offer events stored")                                      \
	X(events_unknown, "offer events for offers never issued to that car") \
	X(status, "agent status messages stored")                             \
	X(status_ahead, "agent status messages dated too far ahead: set apart")

/* X(ENUM, name): why a message was refused. */
#define COUNTERS_REJECTS(X)     \
	X(BAD_TOPIC, bad_topic) \
	X(BAD_VIN, bad_vin)     \
	X(OVERSIZED, oversized) \
	X(MALFORMED, malformed) \
	X(STORAGE, storage)     \
	X(BACKLOG, backlog)

enum reject {
#define X(e, name) REJECT_##e,
	COUNTERS_REJECTS(X)
#undef X
		REJECT_COUNT,
};

struct counters {
#define X(field, help) uint64_t field;
	COUNTERS_PLAIN(X)
#undef X
	uint64_t rejected[REJECT_COUNT];
	/* samples (and statuses) set apart, by reason (TELEMETRY_IMPLAUSIBLE) */
	uint64_t implausible[TELEMETRY_IMPL_COUNT];
};

/* "bad_topic", ... for a reject reason; NULL when out of range. */
const char *counters_reject_name(enum reject r);

/*
 * Calls fn for every counter of c with its stored name ("received", ...,
 * "rejected.bad_topic", ..., "implausible.future", ...) and value, in
 * display order.
 */
void counters_each(const struct counters *c,
		   void (*fn)(const char *name, uint64_t value, void *arg), void *arg);

/* sum += c, counter by counter. */
void counters_add(struct counters *sum, const struct counters *c);

/* One instance's saved counters, as listed for pitstopctl stats. */
struct counters_instance {
	char id[128];
	int64_t updated_at_ms;
	struct counters c;
};

#define COUNTERS_INSTANCES_MAX 1024

/* The ingest domain's migrations, for db_migrate() (generated from schema/). */
extern const struct db_migration ingest_migrations[];
extern const size_t ingest_migrations_count;

/*
 * Saves the counters of instance id (inside the caller's transaction, or
 * on their own). Returns 0 or an error class.
 */
int counters_save(struct db *db, const char *id, const struct counters *c, int64_t now_ms);

/*
 * counters_save() with the statement kept in *cache (NULL at first: prepared
 * then; the caller finalizes it with db_finalize() before closing db).
 */
int counters_save_cached(struct db *db, struct db_stmt **cache, const char *id,
			 const struct counters *c, int64_t now_ms);

/* Loads the counters of instance id (zeroes when unknown). */
int counters_load(struct db *db, const char *id, struct counters *ret_c);

/*
 * Every instance's counters, by id, at most COUNTERS_INSTANCES_MAX
 * (*ret_more 1 when there were more). *ret_rows is malloc'ed.
 */
int counters_list(struct db *db, struct counters_instance **ret_rows, size_t *ret_n, int *ret_more);

#endif
