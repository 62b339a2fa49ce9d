/*
 * The message bus: MQTT v5 over mutual TLS with Eclipse Paho's MQTTAsync,
 * adapted to our event loop. Paho runs its callbacks on its own threads; this
 * module copies what they report into a queue and wakes the loop, so
 * the owner's bus_event_fn always runs on the loop thread and may touch
 * SQLite, counters and timers freely.
 *
 * Connection handling is ours, not Paho's: the bus connects in the
 * background, and after a failure or a lost connection retries with
 * exponential backoff and full jitter: the ceiling is 1 s doubling to 30 s,
 * and each wait is drawn uniformly between 0.2 s and the ceiling
 * (bus_backoff_delay_ms), so a fleet that lost its broker at one moment does
 * not come back at one moment. The ceiling starts again from 1 s only after
 * a connection stayed up for 10 s, so a broker that accepts and then drops
 * us is not hammered. Subscriptions are remembered and made again on every
 * connect.
 *
 * Failures name their cause: a TLS handshake that fails is logged with
 * OpenSSL's reason ("tlsv1 alert unknown ca") and what it usually means;
 * a failure without one is probed by a connection of our own (TCP, then a
 * TLS handshake with the same files), which names it ("connection refused":
 * no broker listening; with TLS 1.3 the broker's alert about our
 * certificate only shows there). Each distinct cause is logged once at warn
 * level; the same cause again only at debug, with a summary line every 10
 * minutes, so the retry loop does not flood the log. A client-id clash (two
 * instances sharing one certificate: the broker names clients after its CN)
 * is logged as such: the broker's DISCONNECT 0x8E "session taken over", or,
 * since mosquitto 2.0.11 sends none, two connections in a row that it closed
 * within seconds of accepting them without a reason; the next attempt then
 * waits the longest backoff (30 s) rather than kick the other one off.
 *
 * Delivery: bus_publish() with QoS 1 reports BUS_PUBLISHED(cookie) when the
 * broker acknowledged the message with a success reason code, or
 * BUS_PUBLISH_FAILED(cookie, reason) when it refused it (MQTT v5 reason code,
 * e.g. 135 Not authorized) or Paho could not send it. A refusal with 135 is
 * logged here, once per cause like a connect failure, as "the broker
 * refused: not authorized (ACL): the certificate's VIN does not own this
 * topic, or the car is over its publish budget" (our broker plugin refuses
 * both with 135; its log says which). A publish that was in
 * flight when the connection dropped may report neither: the owner must keep
 * its own copy (the agent's SQLite queue) and send it again after
 * BUS_CONNECTED. Receivers must therefore accept duplicates.
 *
 * A broker's PUBACK only says the broker has the message. mosquitto 2.0 may
 * still discard it when nobody is subscribed (PUBACK reason 0x10, which Paho
 * 1.3.11 does not pass on: onSuccess5 reports 0) and does not restore shared
 * subscriptions after a restart. Data that must reach its consumer needs an
 * application receipt: the agent's telemetry waits for the gateway's
 * TelemetryAck (docs/protocol.md).
 */
#ifndef PITSTOP_BUS_H
#define PITSTOP_BUS_H

#include <stddef.h>
#include <stdint.h>

struct loop;
struct bus;

struct bus_config {
	const char *uri; /* e.g. "ssl://127.0.0.1:8883" */
	const char *client_id;
	const char *ca_file;	   /* trust anchor for the broker */
	const char *cert_file;	   /* our client certificate (PEM) */
	const char *key_file;	   /* its private key (PEM) */
	int keepalive_s;	   /* 0 = 30 */
	int clean_start;	   /* 0 = resume the broker-side session */
	unsigned session_expiry_s; /* how long the broker keeps our session */
	uint64_t jitter_seed;	   /* backoff jitter; 0 = from getrandom(2) */
	const char *will_topic;	   /* NULL = no last will */
	const void *will_payload;
	size_t will_len;
	int will_retain;
	unsigned max_inflight;	  /* QoS>0 publishes awaiting ack; 0 = 64 */
	size_t max_queued_events; /* Paho -> loop backlog that is logged as a
					 * warning (not a limit: see bus.c); 0 = 4096 */
	/*
	 * Payload bytes of received messages waiting for the loop, at most
	 * (0 = 64 MiB). Paho has acknowledged them already (no flow control),
	 * so past the bound a message is dropped and reported (BUS_DROPPED):
	 * those whose topic ends with droppable_suffix first (their senders
	 * send them again: telemetry without a receipt), the others only past
	 * twice the bound. NULL droppable_suffix: all alike, at the bound.
	 */
	size_t max_queued_bytes;
	const char *droppable_suffix;
};

enum bus_event_type {
	BUS_CONNECTED,	      /* session_present is set */
	BUS_DISCONNECTED,     /* reason_code: MQTT v5 reason or -errno */
	BUS_MESSAGE,	      /* topic, payload, len, qos */
	BUS_DROPPED,	      /* cookie: messages dropped over max_queued_bytes since the last */
	BUS_PUBLISHED,	      /* cookie */
	BUS_PUBLISH_FAILED,   /* cookie, reason_code */
	BUS_SUBSCRIBE_FAILED, /* topic, reason_code */
};

struct bus_event {
	enum bus_event_type type;
	uint64_t cookie;
	int reason_code;
	int session_present;
	int qos;
	const char *topic;	/* borrowed, valid during the callback */
	const uint8_t *payload; /* borrowed, valid during the callback */
	size_t len;
	uint64_t received_us; /* BUS_MESSAGE: loop_now_us() when Paho's thread got it */
};

typedef void (*bus_event_fn)(const struct bus_event *ev, void *arg);

/*
 * Creates a bus on loop. The config's strings are copied. Nothing connects
 * until bus_start(). Returns 0 and *ret_bus, or -errno.
 */
int bus_new(struct loop *loop, const struct bus_config *conf, bus_event_fn fn, void *arg,
	    struct bus **ret_bus);

/* Starts connecting; keeps reconnecting until bus_stop(). */
int bus_start(struct bus *bus);

/*
 * Subscribes to filter with qos now (if connected) and on every later
 * connect. Returns 0 or -ENOMEM.
 */
int bus_subscribe(struct bus *bus, const char *filter, int qos);

/*
 * Publishes. Returns 0 when handed to Paho; -ENOTCONN when not connected;
 * -EAGAIN when max_inflight QoS>0 publishes are already unacknowledged;
 * -EMSGSIZE; -EIO if Paho refused it. cookie comes back in the event.
 */
int bus_publish(struct bus *bus, const char *topic, const void *payload, size_t len, int qos,
		int retain, uint64_t cookie);

int bus_is_connected(const struct bus *bus);

/*
 * Disconnects cleanly (MQTT reason 0: the broker does not send the will),
 * waiting up to timeout_ms for in-flight messages. Stops reconnecting.
 */
void bus_stop(struct bus *bus, int timeout_ms);

/* Destroys the bus (calls bus_stop(bus, 0) if needed). Accepts NULL. */
void bus_free(struct bus *bus);

/*
 * The wait before the next connect attempt, in ms: uniform in
 * [BUS_BACKOFF_FLOOR_MS, ceiling_ms] ("full jitter"; ceiling_ms below the
 * floor gives the floor). *rng is the state of the generator (splitmix64),
 * advanced by each call: the same seed gives the same waits (tests).
 */
#define BUS_BACKOFF_FLOOR_MS 200
unsigned bus_backoff_delay_ms(unsigned ceiling_ms, uint64_t *rng);

/* "Not authorized" etc. for an MQTT v5 reason code; never NULL. */
const char *bus_reason_string(int reason_code);

/*
 * Whether uri speaks TLS: 1 for ssl:// and mqtts://, 0 for the plaintext
 * tcp:// and mqtt://, -EINVAL for anything else (Paho would take a URI
 * without a scheme as plaintext; we do not).
 */
int bus_uri_tls(const char *uri);

/*
 * Checks a configured broker URI: a known scheme and a host, and plaintext
 * only with allow_plaintext. Returns 0, or -EINVAL with a reason in msg that
 * reads after "file:line: broker_uri: ".
 */
int bus_uri_check(const char *uri, int allow_plaintext, char *msg, size_t msglen);

#endif
