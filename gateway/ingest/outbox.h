/*
 * Messages the gateway publishes to one car, waiting for the broker: signed
 * offers, and telemetry receipts (TelemetryAck). Ingest hands a message over
 * only after the transaction that justifies it committed; the outbox then
 * publishes it (QoS 1, not retained) on pitstop/v1/vehicles/<VIN>/<kind>
 * through a callback, keeps it while the bus is down or busy, sends again
 * what was in flight when the connection dropped, and gives up on a message
 * once its drop time has passed. One outbox carries one kind; the kind picks
 * the topic, the counters and a cookie range of its own, so several outboxes
 * can share one bus and one publish callback.
 *
 * Counting (in the caller's struct counters): offers count offers_sent
 * (broker acknowledged) and offers_failed (refused, expired or dropped);
 * an acknowledged message added with an id (an offer's) is also told to
 * the outbox_set_on_acked() callback, which marks the offer sent;
 * receipts count acks_sent (broker acknowledged) and their failures are only
 * logged: a lost receipt costs the car a resend, which is acknowledged as a
 * duplicate, never data.
 *
 * The outbox lives in memory: messages still queued when the gateway stops
 * are not sent after a restart (see docs/gateway.md).
 */
#ifndef PITSTOP_GATEWAY_OUTBOX_H
#define PITSTOP_GATEWAY_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "counters.h"

struct outbox;
struct latency;

/* What an outbox carries. */
enum outbox_kind {
	OUTBOX_OFFERS, /* SignedOffer on .../<VIN>/offers */
	OUTBOX_ACKS,   /* TelemetryAck on .../<VIN>/acks */
};

/*
 * Publishes len bytes on topic with QoS 1, not retained; cookie comes back
 * through outbox_result(). Returns 0 when handed over, -ENOTCONN or -EAGAIN
 * to be called again later, any other -errno to give up on this message.
 */
typedef int (*outbox_publish_fn)(void *arg, const char *topic, const uint8_t *buf, size_t len,
				 uint64_t cookie);

/*
 * Creates an outbox of kind holding at most max messages (0 = 1024).
 * counters is borrowed and must outlive the outbox. Cookies of different
 * kinds never collide. Returns 0 and *ret_outbox, or -ENOMEM.
 */
int outbox_new(enum outbox_kind kind, size_t max, outbox_publish_fn publish, void *arg,
	       struct counters *counters, struct outbox **ret_outbox);

/* Frees the outbox and what it still holds (not counted). Accepts NULL. */
void outbox_free(struct outbox *ob);

/*
 * Queues a message for vin (buf is copied) and tries to publish it at once.
 * It is dropped (and counted as failed) if still unpublished at
 * drop_after_ms (an offer's valid_until). Returns 0, or -ENOBUFS when full
 * (counted as failed; logged once until there is room again), -ENOMEM.
 */
int outbox_add(struct outbox *ob, const char *vin, const uint8_t *buf, size_t len,
	       int64_t drop_after_ms, int64_t now_ms);

/* The size of a message's id (outbox_add_timed()): an offer id's, with its NUL. */
#define OUTBOX_ID_MAX 64

/*
 * As outbox_add(), for a message caused by one the gateway received at
 * received_us (loop_now_us(); 0: not timed): when the publish callback
 * first takes it (returns 0), the time since received_us goes into the
 * histogram of outbox_set_latency(). A resend after a reconnect is not
 * counted again. id (copied; NULL or "": none; -EINVAL when it has
 * OUTBOX_ID_MAX bytes or more) names the message to the on_acked callback.
 */
int outbox_add_timed(struct outbox *ob, const char *vin, const uint8_t *buf, size_t len,
		     int64_t drop_after_ms, int64_t now_ms, uint64_t received_us, const char *id);

/*
 * Called with the id of each message the broker acknowledged that was
 * added with one (borrowed, valid during the call), on the caller's thread
 * from outbox_result(). NULL: nobody, the default.
 */
typedef void (*outbox_acked_fn)(void *arg, const char *id);
void outbox_set_on_acked(struct outbox *ob, outbox_acked_fn fn, void *arg);

/* Where outbox_add_timed()'s latencies go (borrowed; NULL: nowhere, the default). */
void outbox_set_latency(struct outbox *ob, struct latency *lat);

/* Publishes what is queued, drops (and counts) what is past its drop time. */
void outbox_flush(struct outbox *ob, int64_t now_ms);

/*
 * The broker's answer for cookie: ok = 1 acknowledged, 0 refused. Returns 1
 * if the cookie was ours, else 0.
 */
int outbox_result(struct outbox *ob, uint64_t cookie, int ok);

/* After a reconnect: what was in flight is queued again (and flushed). */
void outbox_reconnected(struct outbox *ob, int64_t now_ms);

/* Messages held (queued + in flight). */
size_t outbox_len(const struct outbox *ob);

#endif
