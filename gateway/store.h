/*
 * The gateway's storage interface. Ingest, rules and pitstopctl talk to a
 * struct store through the operations table below and never see SQL, so a
 * second backend (PostgreSQL, for several gateway instances sharing one
 * database) is one more ops table plus one branch in store_open().
 *
 * What is stored: telemetry batches and their samples ((VIN, seq) kept once),
 * the latest state of each vehicle (per field, by sample time, so a batch
 * redelivered late never overwrites newer values), agent status, rule
 * episodes (e.g. "low fuel is open for this car", so a restart does not
 * resend an offer), issued offers with their events, and the counters of
 * each gateway instance. Units are the protocol's (metres, 0.1 %, 1e-7
 * degrees, cm/s, 0.01 degrees, unix milliseconds).
 *
 * Transactions: begin/commit/rollback wrap many messages (ingest commits once
 * per bus drain); savepoints isolate one message inside that transaction so a
 * failing one is undone alone. Every operation returns 0 (or a count) or a
 * negative errno; the backend translates and logs its own error codes once,
 * with the operation that failed, and callers only log what they decide.
 */
#ifndef PITSTOP_GATEWAY_STORE_H
#define PITSTOP_GATEWAY_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "vin.h"

struct store;

/* Reasons a message is refused; indexes of store_counters.rejected. */
enum store_reject {
	STORE_REJECT_BAD_TOPIC,
	STORE_REJECT_BAD_VIN,
	STORE_REJECT_OVERSIZED,
	STORE_REJECT_MALFORMED,
	STORE_REJECT_STORAGE,
	STORE_REJECT_COUNT,
};

/* The counters of one gateway instance (see docs/gateway.md). */
struct store_counters {
	uint64_t received;	 /* messages delivered by the bus */
	uint64_t stored;	 /* telemetry batches stored (not duplicates) */
	uint64_t samples_stored; /* samples in those batches */
	uint64_t duplicates;	 /* batches already stored: (VIN, seq) seen */
	uint64_t rejected[STORE_REJECT_COUNT];
	uint64_t offers_sent;	/* offers acknowledged by the broker */
	uint64_t offers_failed; /* offers that could not be built or sent */
	uint64_t acks_sent;	/* telemetry receipts acknowledged by the broker */
	uint64_t events;	/* offer events stored */
	uint64_t status;	/* agent status messages stored */
};

/* One instance's saved counters, as listed for pitstopctl stats. */
struct store_instance {
	char id[128];
	int64_t updated_at_ms;
	struct store_counters c;
};

/* "bad_topic", ... for a reject index; NULL when out of range. */
const char *store_reject_name(enum store_reject r);

/* Agent status as last reported. */
enum store_online {
	STORE_ONLINE_UNKNOWN = -1,
	STORE_OFFLINE = 0,
	STORE_ONLINE = 1,
};

/*
 * The latest state of a vehicle. A field is meaningful only when its
 * SAMPLE_* bit is set in present; each field is the value of the newest
 * sample (by sample time) that carried it.
 */
struct store_vehicle {
	char vin[VIN_LEN + 1];
	int has_sample;	   /* 0: status only, no telemetry yet */
	int64_t time_ms;   /* time of the newest sample */
	enum fix_mode fix; /* fix of the newest sample */
	unsigned present;  /* SAMPLE_* bits */
	int64_t odometer_m;
	int32_t fuel_permille;
	int32_t lat_e7, lon_e7;
	int32_t speed_cms;
	int32_t heading_cdeg;
	enum store_online online;
	int64_t status_time_ms; /* time of the status that set online; 0 none */
	char agent_version[CODEC_MAX_VERSION];
};

/* One stored sample with the seq of the batch that carried it. */
struct store_history_row {
	uint64_t seq;
	struct sample s;
};

/* Offer states, in the order they may advance. */
enum store_offer_state {
	STORE_OFFER_SENT,
	STORE_OFFER_SHOWN,
	STORE_OFFER_ACCEPTED,
	STORE_OFFER_DISMISSED,
	STORE_OFFER_REJECTED,
};

/* "sent", "shown", ...; never NULL ("?" when out of range). */
const char *store_offer_state_name(enum store_offer_state st);

/* An issued offer as listed by store ops offer_list. */
struct store_offer_row {
	char id[CODEC_MAX_ID];
	enum offer_kind kind;
	char title[CODEC_MAX_TITLE];
	char promo_code[CODEC_MAX_PROMO];
	int64_t valid_from_ms;
	int64_t valid_until_ms;
	int64_t created_ms;
	enum store_offer_state state;
};

/*
 * The backend's operations. Every function takes the store it was opened
 * with; a read-only store refuses writes with -EROFS. List results are
 * malloc'ed arrays the caller frees with free().
 */
struct store_ops {
	const char *name; /* "sqlite" */

	/* Closes and frees s. Called through store_close(), never NULL s. */
	void (*close)(struct store *s);

	/* One write transaction at a time; begin while one is open is -EBUSY. */
	int (*begin)(struct store *s);
	int (*commit)(struct store *s);
	/* Undoes the open transaction; harmless (0) when none is open. */
	int (*rollback)(struct store *s);

	/* Inside a transaction: mark, then either release or undo to the mark. */
	int (*savepoint)(struct store *s);
	int (*release)(struct store *s);
	int (*rollback_to)(struct store *s);

	/*
	 * Stores batch (vin, seq) and its n samples, received at received_ms.
	 * If (vin, seq) is already stored, stores nothing and sets
	 * *ret_duplicate to 1 (else 0).
	 */
	int (*put_batch)(struct store *s, const char *vin, uint64_t seq,
			 const struct sample *samples, size_t n, int64_t received_ms,
			 int *ret_duplicate);

	/*
	 * Folds n samples into the vehicle's latest state: each field takes
	 * the value of the newest sample carrying it, unless the stored one is
	 * newer (ties go to the new value).
	 */
	int (*update_latest)(struct store *s, const char *vin, const struct sample *samples,
			     size_t n);

	/* Latest state and status of vin; -ENOENT if the vehicle is unknown. */
	int (*vehicle_get)(struct store *s, const char *vin, struct store_vehicle *ret_v);

	/*
	 * The newest `limit` samples of vin (limit 0: all), returned oldest
	 * first. *ret_rows is malloc'ed (NULL when *ret_n is 0).
	 */
	int (*vehicle_history)(struct store *s, const char *vin, size_t limit,
			       struct store_history_row **ret_rows, size_t *ret_n);

	/*
	 * Records an agent status for vin (creating the vehicle if needed). A
	 * status older than the stored one (by its time_ms) changes nothing:
	 * a retained or redelivered status may arrive late.
	 */
	int (*put_status)(struct store *s, const char *vin, const struct agent_status *st,
			  int64_t received_ms);

	/*
	 * Rule episodes: *ret_open is 1 while episode `rule` is open for vin
	 * (0 when closed or never opened).
	 */
	int (*episode_get)(struct store *s, const char *vin, const char *rule, int *ret_open);
	int (*episode_set)(struct store *s, const char *vin, const char *rule, int open,
			   int64_t now_ms);

	/* Records an offer issued for o->vin, in state sent. -EEXIST if the id exists. */
	int (*offer_put)(struct store *s, const struct offer *o, int64_t created_ms);

	/*
	 * Records an event a car reported for one of its offers and advances
	 * the offer's state (sent -> shown -> accepted/dismissed/rejected;
	 * never backwards, so late events do not undo newer ones). A
	 * redelivered event is stored once. Returns 0, or -ENOENT when no
	 * offer with that id was issued to vin (the event is still kept).
	 */
	int (*offer_event)(struct store *s, const char *vin, const struct offer_event *ev,
			   int64_t received_ms);

	/* Offers issued to vin, oldest first. */
	int (*offer_list)(struct store *s, const char *vin, struct store_offer_row **ret_rows,
			  size_t *ret_n);

	/* Saves / loads the counters of gateway instance id. Load of an unknown
	 * id gives zeroes. */
	int (*counters_save)(struct store *s, const char *id, const struct store_counters *c,
			     int64_t now_ms);
	int (*counters_load)(struct store *s, const char *id, struct store_counters *ret_c);

	/* Every instance's counters. */
	int (*counters_list)(struct store *s, struct store_instance **ret_rows, size_t *ret_n);
};

/* Every backend's struct store starts with this. */
struct store {
	const struct store_ops *ops; /* borrowed, static */
};

enum store_mode {
	STORE_READ_WRITE, /* creates / migrates the schema */
	STORE_READ_ONLY,  /* for pitstopctl: never writes, schema must exist */
};

/*
 * Opens the backend named by url_or_path: "sqlite:PATH" or a plain PATH ->
 * SQLite; "postgresql://..." (or "postgres://") -> -ENOTSUP for now. On
 * failure writes a one-line reason into err. Returns 0 and *ret_store, or
 * -errno.
 */
int store_open(const char *url_or_path, enum store_mode mode, struct store **ret_store, char *err,
	       size_t errlen);

/* Closes a store. Accepts NULL. */
void store_close(struct store *s);

#endif
