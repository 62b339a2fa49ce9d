/*
 * Ingest: everything the gateway does with a message the bus delivered on
 * pitstop/v1/vehicles/<VIN>/{telemetry,events,status}. It validates the
 * topic and the VIN, bounds and decodes the payload, stores it, runs the
 * rules after each new telemetry batch, and publishes the offers they issue
 * once the data that caused them is committed.
 *
 * Receipts: every telemetry batch that the open transaction stored, or found
 * already stored (a duplicate: the car evidently missed the earlier receipt),
 * is acknowledged after the COMMIT succeeded with a TelemetryAck (QoS 1, not
 * retained) on pitstop/v1/vehicles/<VIN>/acks: one per (VIN, epoch) per
 * transaction, naming all of its seqs (split when over CODEC_MAX_ACK_SEQS). A
 * rejected batch, one whose storage failed, and every batch of a transaction
 * whose commit failed get none; the car keeps them and sends them again.
 *
 * Transactions: the first message opens one and a 0 ms loop timer commits it,
 * so all messages of one bus drain share a commit (or every max_pending
 * messages, whichever comes first). Each message runs in its own savepoint:
 * a storage error undoes that message alone, is logged by db and counted as
 * rejected{storage}, and the gateway carries on; a busy or serialization
 * failure (another instance holds a lock) is retried once first.
 *
 * Messages are dispatched by one table (kind, size limit, handler): the
 * telemetry domain stores batches and status, the offers domain the events,
 * and the rules run on the latest state a new batch produced.
 *
 * A bad message (topic, VIN, size, encoding) is counted by reason, logged at
 * most once per reason per minute (never its payload) and skipped.
 *
 * Counters include only what was committed. They are saved (counters.h)
 * under the instance id, in the same transaction as the data they count (so
 * pitstopctl's stats and history agree), and otherwise (rejects, broker
 * acknowledgements of offers and receipts) within a second of changing.
 *
 * Offer latency: each telemetry batch carries the monotonic time the bus
 * received it (bus_event.received_us, taken on Paho's thread, so the wait in
 * the bus's queue counts); an offer the rules issue for it keeps that time,
 * and when the offer outbox hands the signed offer to the bus (Paho accepted
 * it) the difference goes into a histogram (latency.h): storing, the rules,
 * signing, the commit and any wait for an in-flight slot are all in it.
 * Offers of scheduled jobs have no batch and are not timed.
 */
#ifndef PITSTOP_GATEWAY_INGEST_H
#define PITSTOP_GATEWAY_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "counters.h"
#include "db.h"
#include "offer_log.h"
#include "outbox.h"
#include "telemetry.h"
#include "vin.h"

struct loop;
struct crypto_signer;
struct rules;
struct ingest;
struct latency;

struct ingest_params {
	struct loop *loop;	      /* borrowed */
	struct db *db;		      /* borrowed, opened read-write and migrated */
	struct telemetry *telemetry;  /* borrowed, on db */
	struct offer_log *offers;     /* borrowed, on db */
	struct crypto_signer *signer; /* borrowed; NULL: offers cannot be signed */
	const char *instance_id;      /* copied; counters are saved under it */
	outbox_publish_fn publish;    /* publishes signed offers and receipts (QoS 1) */
	void *publish_arg;
	size_t max_pending; /* messages per transaction; 0 = 500 */
	size_t max_outbox;  /* offers waiting for the bus; 0 = 1024 */
	int no_timers;	    /* tests: no 1 s counter timer */
	/*
	 * Sign offers on a thread of their own (sign_worker.h) while the loop
	 * stores and commits; an offer is published once its transaction
	 * committed and its signature is back. 0: sign on the loop, in the
	 * sink (tests that want publishing right after ingest_flush()).
	 */
	int sign_thread;
	/*
	 * With the thread: how long a commit may wait for the signature of an
	 * offer whose transaction committed before (ingest.c, SIGN_HOLD_MS).
	 * 0 = SIGN_HOLD_MS (2 ms); tests set others.
	 */
	unsigned sign_hold_ms;
	/*
	 * Told each vehicle whose latest state a stored batch changed, right
	 * after storing it in the open transaction (the HTTP API's event
	 * streams). NULL: nobody. It must not touch the database.
	 */
	void (*on_vehicles)(void *arg, const struct telemetry_vehicle *v, size_t n);
	void *on_vehicles_arg;
};

/*
 * Creates the ingest and loads the instance's saved counters (so they keep
 * counting across restarts). Returns 0 and *ret_ingest, or -errno.
 */
int ingest_new(const struct ingest_params *p, struct ingest **ret_ingest);

/*
 * Commits what is pending, saves the counters, and frees. Accepts NULL.
 * Offers and receipts still in the outboxes, and offers still being
 * signed, are lost (see outbox.h): the offers stay recorded as created.
 */
void ingest_free(struct ingest *in);

/* Sets the rules run after each stored batch (borrowed; NULL = none). */
void ingest_set_rules(struct ingest *in, struct rules *rules);

/*
 * The rules' offer sink (a rules_offer_fn; arg is the struct ingest): signs
 * o (or hands it to the signing thread) and keeps it until the current
 * transaction commits. Returns 0 or -errno (-ENOKEY without a signer,
 * -EINVAL for an offer the codec refuses).
 */
int ingest_offer_sink(void *arg, const struct offer *o);

/*
 * A jobs_done_fn (jobs.h; arg is the struct ingest) for a scheduled job
 * that hands offers to ingest_offer_sink() in its own transaction (the
 * service reminders): committed, they go to the outbox now; rolled back,
 * they are dropped. Jobs run only while no ingest transaction is open.
 */
void ingest_job_done(void *arg, int committed);

/*
 * The VIN of a vehicle topic (pitstop/v1/vehicles/<VIN>/<kind>, one of the
 * kinds ingest handles) into vin. Returns 0, or -EINVAL for a topic that
 * ingest_message() would reject as bad_topic or bad_vin.
 */
int ingest_topic_vin(const char *topic, char vin[VIN_LEN + 1]);

/* Handles one message from the bus, received now. topic and payload are borrowed. */
void ingest_message(struct ingest *in, const char *topic, const uint8_t *payload, size_t len);

/* As ingest_message(), for a message the bus received at received_us (loop_now_us()). */
void ingest_message_at(struct ingest *in, const char *topic, const uint8_t *payload, size_t len,
		       uint64_t received_us);

/*
 * The broker answered a publish (BUS_PUBLISHED: ok 1, BUS_PUBLISH_FAILED: 0);
 * what waited for a free in-flight slot is published now.
 */
void ingest_published(struct ingest *in, uint64_t cookie, int ok);

/*
 * The bus dropped n messages while ingest was too far behind (BUS_DROPPED):
 * counted as received and rejected{backlog}. Telemetry among them has no
 * receipt, so the cars send it again.
 */
void ingest_dropped(struct ingest *in, uint64_t n);

/* The bus (re)connected: offers and receipts in flight are sent again. */
void ingest_connected(struct ingest *in);

/* Commits the open transaction now, if any. Returns 0 or -errno. */
int ingest_flush(struct ingest *in);

/* 1 when no ingest transaction is open (a jobs_idle_fn; arg is the ingest). */
int ingest_idle(void *arg);

/* Commits, then saves the counters now. Returns 0 or -errno. */
int ingest_save_counters(struct ingest *in);

/* The live counters (committed work only). */
const struct counters *ingest_counters(const struct ingest *in);

/*
 * Batch received to its offer handed to the bus, since this process started
 * (not saved, not summed over instances). Borrowed, lives as long as in.
 */
const struct latency *ingest_offer_latency(const struct ingest *in);

/* Tests: the signing thread (sign_thread set), or NULL. */
struct sign_worker *ingest_sign_worker(struct ingest *in);

#endif
