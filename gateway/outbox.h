/*
 * Signed offers waiting to be published, and those published but not yet
 * acknowledged. Ingest hands an offer over only after the transaction that
 * recorded it committed; the outbox then publishes it (QoS 1, not retained)
 * through a callback, keeps it while the bus is down or busy, sends again
 * what was in flight when the connection dropped, and gives up on an offer
 * once it has expired. It counts offers_sent (broker acknowledged) and
 * offers_failed (refused, expired or dropped) in the caller's counters.
 *
 * The outbox lives in memory: offers still queued when the gateway stops are
 * not sent after a restart (see docs/gateway.md).
 */
#ifndef PITSTOP_GATEWAY_OUTBOX_H
#define PITSTOP_GATEWAY_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct outbox;

/*
 * Publishes len bytes on topic with QoS 1, not retained; cookie comes back
 * through outbox_result(). Returns 0 when handed over, -ENOTCONN or -EAGAIN
 * to be called again later, any other -errno to give up on this offer.
 */
typedef int (*outbox_publish_fn)(void *arg, const char *topic, const uint8_t *buf, size_t len,
				 uint64_t cookie);

/*
 * Creates an outbox holding at most max offers (0 = 1024). counters is
 * borrowed and must outlive the outbox. Returns 0 and *ret_outbox, or -ENOMEM.
 */
int outbox_new(size_t max, outbox_publish_fn publish, void *arg,
	       struct store_counters *counters, struct outbox **ret_outbox);

/* Frees the outbox and what it still holds (not counted). Accepts NULL. */
void outbox_free(struct outbox *ob);

/*
 * Queues a signed offer for vin (buf is copied) and tries to publish it at
 * once. Returns 0, or -ENOBUFS when full (counted as failed), -ENOMEM.
 */
int outbox_add(struct outbox *ob, const char *vin, const uint8_t *buf, size_t len,
	       int64_t valid_until_ms, int64_t now_ms);

/* Publishes what is queued, drops (and counts) expired offers. */
void outbox_flush(struct outbox *ob, int64_t now_ms);

/*
 * The broker's answer for cookie: ok = 1 acknowledged, 0 refused. Returns 1
 * if the cookie was ours, else 0.
 */
int outbox_result(struct outbox *ob, uint64_t cookie, int ok);

/* After a reconnect: what was in flight is queued again (and flushed). */
void outbox_reconnected(struct outbox *ob, int64_t now_ms);

/* Offers held (queued + in flight). */
size_t outbox_len(const struct outbox *ob);

#endif
