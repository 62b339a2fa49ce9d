/*
 * The agent's side of the MQTT conversation with the gateway, on top of
 * common/bus: connection settings (client id = VIN, persistent session,
 * last will Status OFFLINE), the retained Status, the offers subscription,
 * and sending the telemetry queue.
 *
 * Telemetry: batches go QoS 1, on pitstop/v1/vehicles/<VIN>/
 * telemetry with cookie = seq, at most UPLINK_WINDOW in flight (one after
 * each connect, until the first acknowledgement: a broker that refuses
 * us then costs one refusal, not a window's worth). After a connect the
 * batches stored before it are the backlog: it goes oldest first, at most
 * backlog_max_batches_per_s (token bucket, one second's burst), while live
 * batches (sealed since the connect) go at once, ahead of it.
 *
 * A batch is deleted only when the gateway's receipt (a TelemetryAck on
 * pitstop/v1/vehicles/<VIN>/acks, subscribed QoS 1, sent after the gateway
 * committed the batch) names it with our queue's epoch (a receipt of
 * another epoch is for the queue before a wipe and is ignored, logged at
 * debug). The broker's PUBACK (BUS_PUBLISHED) only
 * moves it from in flight to sent: mosquitto 2.0 drops messages published
 * while the gateway's shared subscription is missing (after a broker
 * restart) and still acknowledges them, and Paho 1.3.11 does not pass the
 * PUBACK's reason code 0x10 on. A sent batch with no receipt after
 * receipt_timeout_ms is published again (the gateway acknowledges and drops
 * duplicates); at most QUEUE_MAX_UNCONFIRMED batches are in flight or sent,
 * so an absent gateway costs that many batches per timeout, not the queue.
 * A malformed receipt is logged (at most once a minute) and ignored.
 *
 * A lost connection makes everything in flight unsent again; it is resent,
 * in order, after the next BUS_CONNECTED. Sent batches keep waiting for
 * their receipt (the broker may hold it for our session). A batch the broker
 * refuses (reason code >= 0x80) is logged at error (135 Not authorized:
 * common/bus logs it once per cause, naming the ACL), kept, and sending pauses for UPLINK_REFUSED_RETRY_MS before it is retried,
 * alone: until the broker acknowledges a batch again only one is in flight,
 * so a car whose certificate does not match its VIN logs one line a minute,
 * not a window's worth. Other publish failures pause for UPLINK_RETRY_MS.
 *
 * Clock check: a receipt carries the gateway's clock (gateway_time_ms).
 * When our wall clock is more than UPLINK_CLOCK_MAX_SKEW_MS off, the agent
 * logs at warn, at most once every 10 minutes, "clock is 3h02m ahead of the
 * gateway's: samples are dated wrong; check the time source", and at info
 * when it agrees again. A late receipt makes us look ahead, never behind,
 * so "ahead" is believed only when it holds over a minute of receipts.
 *
 * Events (offer SHOWN/REJECTED) are published QoS 1 on .../events when
 * connected, else held in a small memory buffer (UPLINK_MAX_EVENTS, oldest
 * dropped) and sent after the next connect; they are not persisted.
 */
#ifndef PITSTOP_UPLINK_H
#define PITSTOP_UPLINK_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define UPLINK_WINDOW 8
#define UPLINK_REFUSED_RETRY_MS 60000
#define UPLINK_RETRY_MS 5000
/*
 * Clean start is off and the broker keeps our session this long (7 days):
 * a car parked over a long weekend (Friday evening to Tuesday morning, ~4
 * days) or a week's holiday still gets the offers sent meanwhile. Longer
 * would hold a broker-side queue for cars that are gone (sold, scrapped).
 */
#define UPLINK_SESSION_EXPIRY_S 604800
#define UPLINK_MAX_EVENTS 32
#define UPLINK_RECEIPT_TIMEOUT_MS 60000 /* default receipt_timeout_ms */
/* Our wall clock this far from the gateway's is wrong (warned). */
#define UPLINK_CLOCK_MAX_SKEW_MS (5 * 60 * 1000)

struct loop;
struct queue;
struct uplink;

struct uplink_config {
	const char *vin;
	const char *broker_uri;
	const char *ca_file;
	const char *cert_file;
	const char *key_file;
	const char *agent_version;
	int receipt_timeout_ms;		    /* resend a sent batch without receipt after
					 * this long; 0 = UPLINK_RECEIPT_TIMEOUT_MS */
	unsigned session_expiry_s;	    /* the broker keeps our session (subscriptions
				    * and the QoS 1 offers and receipts sent
				    * meanwhile) this long after we went
				    * offline; 0 = UPLINK_SESSION_EXPIRY_S */
	int keepalive_s;		    /* MQTT keep-alive in seconds; 0: 30 */
	unsigned backlog_max_batches_per_s; /* after a connect, batches stored
					     * before it go at most this many a
					     * second, live ones at once; 0 = no cap */
};

/* A message arrived on our offers topic; payload is borrowed for the call. */
typedef void (*uplink_offer_fn)(const uint8_t *payload, size_t len, void *arg);

/*
 * Creates the bus (not yet connecting). queue is borrowed and must outlive
 * the uplink. Returns 0 and *ret_u, or -errno.
 */
int uplink_new(struct loop *loop, const struct uplink_config *conf, struct queue *queue,
	       uplink_offer_fn on_offer, void *arg, struct uplink **ret_u);

/* Starts connecting (and reconnecting). Returns 0 or -errno. */
int uplink_start(struct uplink *u);

/* New batches may be waiting: sends what the window allows. */
void uplink_kick(struct uplink *u);

/* Publishes an offer event (or holds it until connected). */
void uplink_send_event(struct uplink *u, const struct offer_event *ev);

/*
 * Clean shutdown: publishes Status OFFLINE (retained) if connected, then
 * disconnects, waiting up to timeout_ms for in-flight messages.
 */
void uplink_shutdown(struct uplink *u, int timeout_ms);

/*
 * Our wall clock minus the gateway's, in ms, as last judged from receipts
 * (see "Clock check" above). Returns 0 and *ret_ms, or -ENODATA when no
 * receipt carried the gateway's time yet.
 */
int uplink_clock_skew_ms(const struct uplink *u, int64_t *ret_ms);

/* 1 when connected to the broker, else 0 (for the service status). */
int uplink_connected(const struct uplink *u);

/* Accepts NULL. */
void uplink_free(struct uplink *u);

#endif
