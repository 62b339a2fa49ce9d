/*
 * The message bus: Paho MQTTAsync (MQTT v5, TLS) behind our event loop; see
 * bus.h for the contract.
 *
 * Threads. Paho calls us back on its own threads. Those callbacks only copy
 * what they were told into a `bus_msg` and append it to `pending` under
 * `mu`, then signal a loop waker. Everything else (connection state,
 * subscriptions, the owner's callback) lives on the loop thread. `mu` is never
 * held while calling into Paho, so no lock-order cycle with Paho's own mutex
 * can exist.
 *
 * Publishes. Every QoS>0 publish gets a `bus_ticket` (cookie + connection
 * generation) passed to Paho as the response context; the ticket is linked in
 * `tickets` so the ones Paho never answers can be freed in bus_free().
 * Tickets of the current generation count as in flight.
 *
 * Connect failures. OpenSSL's reason reaches us through Paho's
 * ssl_error_cb on a Paho thread, during the handshake and before
 * onFailure5: it is kept in `tls_reason` (under `mu`, cleared at each
 * attempt) and handed to the loop with the failure. A failure with neither
 * a TLS reason nor an MQTT reason code starts a `bus_probe`: a detached
 * thread that resolves the broker's host, opens a TCP connection to it and
 * (for ssl://) shakes hands with OpenSSL and our files, so the log can say
 * "connection refused" or "tlsv1 alert unknown ca" instead of Paho's
 * "TCP/TLS connect failure". That second look is needed with TLS 1.3: the
 * broker's verdict on our certificate comes after the handshake, when Paho
 * reads the CONNACK and calls no ssl_error_cb. The probe and the bus share
 * it by reference count, so the bus can be freed while a probe still waits
 * for DNS.
 */
#include "bus.h"

#include "log.h"
#include "loop.h"

#include <MQTTAsync.h>
#include <MQTTReasonCodes.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

/* The backoff's ceiling: each wait is drawn below it (bus_backoff_delay_ms). */
#define BUS_BACKOFF_MIN_MS 1000
#define BUS_BACKOFF_MAX_MS 30000
/*
 * A connection must last this long before the backoff starts again from the
 * minimum. mosquitto 2.0 closes the connection after refusing a publish
 * (PUBACK reason 135, then disconnect): a car whose certificate does not
 * match its VIN would otherwise reconnect every second forever.
 */
#define BUS_STABLE_MS 10000
#define BUS_MAX_PAYLOAD (256 * 1024)
/* File descriptors tcp_nodelay_all() looks at, at most. */
#define BUS_MAX_FDS 4096
/* The same connect failure again is logged at warn level this often. */
#define BUS_REPEAT_LOG_MS (10 * 60 * 1000)
/* How long the TCP probe waits for the broker's host to answer. */
#define BUS_PROBE_TIMEOUT_MS 3000
#define BUS_CAUSE_MAX 1024
#define BUS_REASON_MAX 256
#define BUS_HOST_MAX 256

enum bus_msg_kind {
	MSG_CONNECT_OK,
	MSG_CONNECT_FAIL,
	MSG_LOST,
	MSG_MESSAGE,
	MSG_PUB_OK,
	MSG_PUB_FAIL,
	MSG_SUB_FAIL,
	MSG_PROBED, /* a TCP probe's result: reason = -errno or 0, topic = text */
};

/* One report from a Paho thread, waiting for the loop. */
struct bus_msg {
	struct bus_msg *next;
	enum bus_msg_kind kind;
	int reason; /* MQTT v5 reason code, or Paho error code */
	int session_present;
	int qos;
	unsigned generation; /* of the connection the report is about */
	uint64_t cookie;
	char *topic;	  /* owned; MSG_MESSAGE and MSG_SUB_FAIL topic,
			  * MSG_CONNECT_FAIL's Paho error text, or
			  * MSG_PROBED's cause */
	char *tls_reason; /* owned; MSG_CONNECT_FAIL: OpenSSL's reason, or NULL */
	uint8_t *payload; /* owned */
	size_t len;
	uint64_t received_us; /* MSG_MESSAGE: loop_now_us() on arrival */
};

/* Context of one QoS>0 publish, owned by the bus. */
struct bus_ticket {
	struct bus_ticket *prev, *next;
	struct bus *bus; /* borrowed */
	uint64_t cookie;
	unsigned generation;
};

struct bus_sub {
	char *filter; /* owned */
	int qos;
};

/* A TCP probe of the broker's address, shared by the bus and its thread. */
struct bus_probe {
	pthread_mutex_t mu;
	int refs;		 /* the bus's and the thread's, under mu */
	struct bus *bus;	 /* borrowed; NULL once the bus is freed, under mu */
	char host[BUS_HOST_MAX]; /* "127.0.0.1", "::1", "broker.example" */
	char port[8];
	int tls;			      /* shake hands too */
	char *ca_file, *cert_file, *key_file; /* owned copies; NULL: none */
};

struct bus {
	struct loop *loop;	  /* borrowed */
	struct loop_waker *waker; /* owned */
	bus_event_fn fn;
	void *arg;
	MQTTAsync client; /* owned */

	/* Config, owned copies. */
	char *uri, *client_id, *ca_file, *cert_file, *key_file, *will_topic;
	uint8_t *will_payload;
	size_t will_len;
	int will_retain;
	int keepalive_s, clean_start;
	unsigned session_expiry_s;
	unsigned max_inflight;
	size_t max_queued;
	size_t max_bytes;	/* max_queued_bytes */
	char *droppable_suffix; /* owned, NULL: none */

	/* Loop-thread state. */
	int started; /* between bus_start() and bus_stop() */
	int connected;
	int connecting;
	unsigned backoff_ms;	    /* the ceiling of the next wait */
	int backoff_exact;	    /* wait the ceiling itself, without jitter, once */
	uint64_t rng;		    /* jitter generator state (splitmix64) */
	uint64_t connected_at_ms;   /* loop_now_ms() of the last CONNACK */
	uint64_t backlog_logged_ms; /* last "ingestion is behind" warning */
	int retry_timer;
	struct bus_sub *subs; /* owned array */
	size_t nsubs;
	int tls;		   /* the URI is ssl:// or mqtts:// */
	char host[BUS_HOST_MAX];   /* of the URI, for messages and the probe */
	char port[8];		   /* of the URI */
	struct bus_probe *probe;   /* one reference, while a probe runs */
	char cause[BUS_CAUSE_MAX]; /* the last connect failure logged at warn */
	uint64_t cause_logged_ms;  /* when */
	unsigned cause_repeats;	   /* the same failure since, logged at debug */
	unsigned short_drops;	   /* connections in a row closed within BUS_STABLE_MS */
	int refused_publish;	   /* the broker refused a publish on this connection */

	/* Shared with Paho's threads, under mu. */
	pthread_mutex_t mu;
	struct bus_msg *pending_head, *pending_tail;
	size_t npending_messages;	 /* MSG_MESSAGE entries only */
	size_t pending_bytes;		 /* their payload bytes */
	uint64_t dropped;		 /* messages dropped over max_bytes, not yet reported */
	struct bus_ticket *tickets;	 /* all unanswered tickets */
	unsigned inflight;		 /* tickets of the current generation */
	unsigned generation;		 /* bumped on every connect attempt */
	char tls_reason[BUS_REASON_MAX]; /* OpenSSL's first reason this attempt */
};

static pthread_once_t paho_once = PTHREAD_ONCE_INIT;

static void paho_global_init(void)
{
	MQTTAsync_init_options init = MQTTAsync_init_options_initializer;

	init.do_openssl_init = 1;
	MQTTAsync_global_init(&init);
}

/*
 * splitmix64 (Steele, Lea, Flood 2014): a 64-bit state, one add and a mix per
 * draw. Not for secrets: it only spreads the cars' reconnects.
 */
static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

unsigned bus_backoff_delay_ms(unsigned ceiling_ms, uint64_t *rng)
{
	uint64_t span;

	if (ceiling_ms <= BUS_BACKOFF_FLOOR_MS)
		return BUS_BACKOFF_FLOOR_MS;
	span = (uint64_t)(ceiling_ms - BUS_BACKOFF_FLOOR_MS) + 1;
	/* The modulo bias is below 2^-32 for spans under 2^32: irrelevant here. */
	return BUS_BACKOFF_FLOOR_MS + (unsigned)(splitmix64(rng) % span);
}

const char *bus_reason_string(int reason_code)
{
	const char *s;

	if (reason_code < 0)
		return strerror(-reason_code);
	s = MQTTReasonCode_toString((enum MQTTReasonCodes)reason_code);
	return s ? s : "unknown reason";
}

/* The schemes Paho speaks that we accept, and their default ports. */
static const struct {
	const char *prefix;
	int tls;
	const char *port;
} bus_schemes[] = {
	{ "ssl://", 1, "8883" },
	{ "mqtts://", 1, "8883" },
	{ "tcp://", 0, "1883" },
	{ "mqtt://", 0, "1883" },
};

/*
 * Splits uri into its scheme's index, host and port (the scheme's default
 * when there is none). Returns the index, or -EINVAL for an unknown scheme,
 * no host, or a host too long for host_size.
 */
static int uri_split(const char *uri, char *host, size_t host_size, char port[8])
{
	const char *h, *end, *colon;
	size_t hlen;
	int i, n = (int)(sizeof(bus_schemes) / sizeof(bus_schemes[0]));

	for (i = 0; i < n; i++)
		if (strncmp(uri, bus_schemes[i].prefix, strlen(bus_schemes[i].prefix)) == 0)
			break;
	if (i == n)
		return -EINVAL;
	h = uri + strlen(bus_schemes[i].prefix);
	end = h + strcspn(h, "/?");
	if (*h == '[') { /* [v6]:port */
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (!rb)
			return -EINVAL;
		colon = rb[1] == ':' ? rb + 1 : NULL;
		hlen = (size_t)(rb - h - 1);
		h++;
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hlen = (size_t)((colon ? colon : end) - h);
	}
	if (hlen == 0 || hlen >= host_size)
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (colon) {
		size_t plen = (size_t)(end - colon - 1);

		if (plen == 0 || plen >= 8 || strspn(colon + 1, "0123456789") < plen)
			return -EINVAL;
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
	} else {
		snprintf(port, 8, "%s", bus_schemes[i].port);
	}
	return i;
}

int bus_uri_tls(const char *uri)
{
	char host[BUS_HOST_MAX], port[8];
	int i = uri ? uri_split(uri, host, sizeof(host), port) : -EINVAL;

	return i < 0 ? i : bus_schemes[i].tls;
}

int bus_uri_check(const char *uri, int allow_plaintext, char *msg, size_t msglen)
{
	int tls = bus_uri_tls(uri);

	if (tls < 0) {
		snprintf(msg, msglen,
			 "'%s' is not a broker URI (ssl://HOST:PORT; plaintext tcp://HOST:PORT "
			 "only with allow_plaintext = yes)",
			 uri ? uri : "");
		return -EINVAL;
	}
	if (!tls && !allow_plaintext) {
		snprintf(msg, msglen,
			 "'%s' is plaintext (no TLS: no encryption, no certificates); use "
			 "ssl://, or set allow_plaintext = yes if that is really meant",
			 uri);
		return -EINVAL;
	}
	return 0;
}

/* --- Paho threads ------------------------------------------------------ */

static struct bus_msg *bus_msg_new(enum bus_msg_kind kind)
{
	struct bus_msg *m = calloc(1, sizeof(*m));

	if (m)
		m->kind = kind;
	return m;
}

static void bus_msg_free(struct bus_msg *m)
{
	if (!m)
		return;
	free(m->topic);
	free(m->tls_reason);
	free(m->payload);
	free(m);
}

/* Appends m (taking ownership) and wakes the loop. Any thread. */
static void bus_post(struct bus *bus, struct bus_msg *m)
{
	pthread_mutex_lock(&bus->mu);
	if (bus->pending_tail)
		bus->pending_tail->next = m;
	else
		bus->pending_head = m;
	bus->pending_tail = m;
	if (m->kind == MSG_MESSAGE) {
		bus->npending_messages++;
		bus->pending_bytes += m->len;
	}
	pthread_mutex_unlock(&bus->mu);
	loop_waker_signal(bus->waker);
}

/*
 * Whether a received message of len bytes on topic must be dropped because
 * the loop is too far behind (max_bytes; see bus.h). Counts it if so. Any
 * thread.
 */
static int over_bound(struct bus *bus, const char *topic, size_t tlen, size_t len)
{
	size_t sl = bus->droppable_suffix ? strlen(bus->droppable_suffix) : 0;
	int droppable = !bus->droppable_suffix ||
			(tlen >= sl && memcmp(topic + tlen - sl, bus->droppable_suffix, sl) == 0);
	size_t bound = droppable ? bus->max_bytes : 2 * bus->max_bytes;
	int drop;

	pthread_mutex_lock(&bus->mu);
	drop = bus->pending_bytes + len > bound;
	if (drop)
		bus->dropped++;
	pthread_mutex_unlock(&bus->mu);
	if (drop)
		loop_waker_signal(bus->waker); /* so the loop reports it */
	return drop;
}

/*
 * Reports that could not be allocated would leave the owner waiting forever,
 * so an allocation failure here is treated like a lost connection: the owner
 * resends everything after the reconnect.
 */
static void bus_post_simple(struct bus *bus, enum bus_msg_kind kind, int reason,
			    unsigned generation, uint64_t cookie)
{
	struct bus_msg *m = bus_msg_new(kind);

	if (!m) {
		log_error("bus: out of memory reporting an MQTT event");
		return;
	}
	m->reason = reason;
	m->generation = generation;
	m->cookie = cookie;
	bus_post(bus, m);
}

static void on_connect_ok(void *context, MQTTAsync_successData5 *resp)
{
	struct bus *bus = context;
	struct bus_msg *m = bus_msg_new(MSG_CONNECT_OK);

	if (!m)
		return;
	m->session_present = resp ? resp->alt.connect.sessionPresent : 0;
	pthread_mutex_lock(&bus->mu);
	m->generation = bus->generation;
	pthread_mutex_unlock(&bus->mu);
	bus_post(bus, m);
}

/*
 * A refused CONNACK carries an MQTT reason code; a failure before that (TCP,
 * TLS handshake, certificate verification) only Paho's code and message
 * text, which is kept so the log says what really went wrong.
 */
static void on_connect_fail(void *context, MQTTAsync_failureData5 *resp)
{
	struct bus *bus = context;
	struct bus_msg *m = bus_msg_new(MSG_CONNECT_FAIL);

	if (!m) {
		log_error("bus: out of memory reporting a failed connect");
		return;
	}
	m->reason = resp && resp->reasonCode ? (int)resp->reasonCode : -ECONNREFUSED;
	if (resp && !resp->reasonCode) {
		char text[160];

		snprintf(text, sizeof(text), "Paho error %d%s%s", resp->code,
			 resp->message ? ": " : "", resp->message ? resp->message : "");
		m->topic = strdup(text); /* NULL on ENOMEM: logged without it */
	}
	pthread_mutex_lock(&bus->mu);
	if (bus->tls_reason[0])
		m->tls_reason = strdup(bus->tls_reason); /* NULL on ENOMEM: probed */
	m->generation = bus->generation;
	pthread_mutex_unlock(&bus->mu);
	bus_post(bus, m);
}

/*
 * Paho's ssl_error_cb: one line of OpenSSL's error queue, as
 * ERR_print_errors_cb() formats it ("tid:error:0A000418:SSL
 * routines:ssl3_read_bytes:tlsv1 alert unknown ca:file:line:data"). Keeps
 * the reason field of the first line of an attempt (the root cause comes
 * first). Returns 1 so OpenSSL goes on with the queue.
 */
static int on_ssl_error(const char *str, size_t len, void *u)
{
	struct bus *bus = u;
	const char *p = str, *end = str + len, *field[7];
	size_t n = 0, rlen;

	while (len && (end[-1] == '\n' || end[-1] == '\r'))
		end--, len--;
	for (const char *q = str; q < end && n < 7; q++)
		if (*q == ':')
			field[n++] = q + 1;
	if (n >= 6) { /* the reason lies between the 5th and the 6th ':' */
		p = field[4];
		rlen = (size_t)(field[5] - 1 - p);
	} else {
		rlen = (size_t)(end - p);
	}
	if (rlen == 0)
		return 1;
	pthread_mutex_lock(&bus->mu);
	if (!bus->tls_reason[0])
		snprintf(bus->tls_reason, sizeof(bus->tls_reason), "%.*s", (int)rlen, p);
	pthread_mutex_unlock(&bus->mu);
	return 1;
}

static void on_connection_lost(void *context, char *cause)
{
	bus_post_simple(context, MSG_LOST, -ECONNRESET, 0, 0);
}

static void on_disconnected(void *context, MQTTProperties *props, enum MQTTReasonCodes reason)
{
	/* The broker sent DISCONNECT (v5); connectionLost follows or not. */
	bus_post_simple(context, MSG_LOST, (int)reason, 0, 0);
}

/*
 * Never refuses and never blocks. Paho 1.3 has already sent the PUBACK when
 * it calls this (QoS 1 is acknowledged on receipt, into Paho's own queue), so
 * there is no flow control to be had here: blocking deadlocks against Paho's
 * mutex, which it holds around this call, and returning 0 makes Paho offer
 * the message again only once per receive cycle (a stall of seconds per
 * message). The backlog is logged when it passes max_queued, and bounded
 * by max_bytes: past it messages are dropped (droppable ones first) and
 * counted; see docs/architecture.md for why telemetry stays safe
 * (receipts).
 */
static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *msg)
{
	struct bus *bus = context;
	struct bus_msg *m;
	size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);

	if (over_bound(bus, topic, tlen, msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0)) {
		MQTTAsync_freeMessage(&msg);
		MQTTAsync_free(topic);
		return 1; /* taken, and dropped: reported as BUS_DROPPED */
	}
	m = bus_msg_new(MSG_MESSAGE);
	if (!m)
		return 0; /* out of memory: Paho keeps the message for later */
	m->received_us = loop_now_us();
	m->topic = strndup(topic, tlen);
	m->len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	m->payload = malloc(m->len ? m->len : 1);
	if (!m->topic || !m->payload) {
		bus_msg_free(m);
		return 0;
	}
	memcpy(m->payload, msg->payload, m->len);
	m->qos = msg->qos;
	bus_post(bus, m);
	MQTTAsync_freeMessage(&msg);
	MQTTAsync_free(topic);
	return 1;
}

/* Unlinks a ticket; returns its cookie and generation. Any thread. */
static void ticket_take(struct bus_ticket *t, uint64_t *ret_cookie, unsigned *ret_gen)
{
	struct bus *bus = t->bus;

	pthread_mutex_lock(&bus->mu);
	if (t->prev)
		t->prev->next = t->next;
	else
		bus->tickets = t->next;
	if (t->next)
		t->next->prev = t->prev;
	if (t->generation == bus->generation && bus->inflight > 0)
		bus->inflight--;
	pthread_mutex_unlock(&bus->mu);
	*ret_cookie = t->cookie;
	*ret_gen = t->generation;
	free(t);
}

static void on_publish_ok(void *context, MQTTAsync_successData5 *resp)
{
	struct bus_ticket *t = context;
	struct bus *bus = t->bus;
	int reason = resp ? (int)resp->reasonCode : 0;
	uint64_t cookie;
	unsigned gen;

	ticket_take(t, &cookie, &gen);
	bus_post_simple(bus, reason >= 0x80 ? MSG_PUB_FAIL : MSG_PUB_OK, reason, gen, cookie);
}

static void on_publish_fail(void *context, MQTTAsync_failureData5 *resp)
{
	struct bus_ticket *t = context;
	struct bus *bus = t->bus;
	int reason = -EIO;
	uint64_t cookie;
	unsigned gen;

	if (resp && resp->reasonCode >= 0x80)
		reason = (int)resp->reasonCode;
	ticket_take(t, &cookie, &gen);
	bus_post_simple(bus, MSG_PUB_FAIL, reason, gen, cookie);
}

/* Subscribe contexts carry the filter (owned) so failures can name it. */
struct bus_subctx {
	struct bus *bus;
	char *filter;
};

static void post_sub_fail(struct bus_subctx *sc, int reason)
{
	struct bus_msg *m = bus_msg_new(MSG_SUB_FAIL);

	if (m) {
		m->reason = reason;
		m->topic = sc->filter;
		sc->filter = NULL;
		bus_post(sc->bus, m);
	}
	free(sc->filter);
	free(sc);
}

static void on_subscribe_ok(void *context, MQTTAsync_successData5 *resp)
{
	struct bus_subctx *sc = context;

	if (resp && resp->reasonCode >= 0x80) {
		post_sub_fail(sc, (int)resp->reasonCode);
		return;
	}
	free(sc->filter);
	free(sc);
}

static void on_subscribe_fail(void *context, MQTTAsync_failureData5 *resp)
{
	post_sub_fail(context, resp && resp->reasonCode >= 0x80 ? (int)resp->reasonCode : -EIO);
}

/* What an OpenSSL reason usually means here; "" when we cannot tell. */
static const char *tls_hint(const char *reason)
{
	static const struct {
		const char *reason, *hint;
	} hints[] = {
		{ "unknown ca", "the broker does not trust our certificate's CA: cert_file was "
				"issued by another CA than the broker's" },
		{ "mismatch", "the broker's certificate does not name the host in broker_uri" },
		{ "certificate verify failed",
		  "the broker's certificate does not verify against ca_file (another CA?)" },
		{ "certificate revoked", "the broker says our certificate is revoked (its CRL)" },
		{ "certificate expired", "the broker says a certificate has expired" },
		{ "certificate required", "the broker wants a client certificate (cert_file)" },
		{ "bad certificate", "the broker refused our certificate" },
		{ "wrong version number", "that port does not speak TLS (a plaintext listener?)" },
		{ "unexpected eof", "the broker closed the connection during the handshake" },
		{ "handshake failure", "the broker and we share no TLS version or cipher" },
	};

	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (strstr(reason, hints[i].reason))
			return hints[i].hint;
	return "";
}

/* Drops one reference to p; frees it with the last. Any thread. */
static void probe_unref(struct bus_probe *p)
{
	int last;

	pthread_mutex_lock(&p->mu);
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (last) {
		pthread_mutex_destroy(&p->mu);
		free(p->ca_file);
		free(p->cert_file);
		free(p->key_file);
		free(p);
	}
}

/*
 * Opens a TCP connection to one address, waiting up to timeout_ms. Returns
 * the connected socket (blocking), or -errno (-ETIMEDOUT when nothing
 * answered).
 */
static int probe_connect(const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0, r;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			r = -errno;
			close(fd);
			return r;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			r = poll(&pfd, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r == 0)
			err = ETIMEDOUT;
		else if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			close(fd);
			return -err;
		}
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* OpenSSL's reason for the oldest error of this thread; NULL if none. */
static const char *openssl_reason(void)
{
	unsigned long e = ERR_peek_error();

	return e ? ERR_reason_error_string(e) : NULL;
}

/*
 * Shakes hands over fd (connected) with our files, checking the broker's
 * name as Paho does, and waits for the broker's first word. With TLS 1.3 the
 * broker's verdict on our certificate (an alert: "unknown ca") comes after
 * the handshake, when Paho reads the CONNACK, and Paho passes no
 * ssl_error_cb there; this finds it. Writes OpenSSL's reason into reason and
 * returns 1 if there was one; 0 if the broker accepted us.
 */
static int tls_diagnose(const struct bus_probe *p, int fd, char *reason, size_t size)
{
	struct timeval tv = { .tv_sec = BUS_PROBE_TIMEOUT_MS / 1000 };
	unsigned char addr[sizeof(struct in6_addr)];
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = NULL;
	const char *why = NULL;
	char byte;
	long v;

	ERR_clear_error();
	if (!ctx)
		return 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, p->ca_file, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, p->cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, p->key_file, SSL_FILETYPE_PEM) != 1 ||
	    !(ssl = SSL_new(ctx))) {
		why = openssl_reason();
		goto out;
	}
	if (inet_pton(AF_INET, p->host, addr) == 1 || inet_pton(AF_INET6, p->host, addr) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), p->host);
	} else {
		SSL_set1_host(ssl, p->host);
		SSL_set_tlsext_host_name(ssl, p->host);
	}
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK) {
			snprintf(reason, size, "certificate verify failed: %s",
				 X509_verify_cert_error_string(v));
			SSL_free(ssl);
			SSL_CTX_free(ctx);
			ERR_clear_error();
			return 1;
		}
		why = openssl_reason();
		goto out;
	}
	/* Accepted: nothing comes until we send CONNECT, and the read times out. */
	if (SSL_read(ssl, &byte, 1) <= 0)
		why = openssl_reason();
out:
	if (why)
		snprintf(reason, size, "%s", why);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	return why != NULL;
}

/*
 * The probe thread: resolves the broker's host, connects to each address
 * and, over TLS, shakes hands. Posts MSG_PROBED with the cause in words,
 * unless the bus is gone.
 */
static void *probe_main(void *arg)
{
	struct bus_probe *p = arg;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	char cause[BUS_CAUSE_MAX], reason[BUS_REASON_MAX];
	int gai, r = -EHOSTUNREACH;

	gai = getaddrinfo(p->host, p->port, &hints, &res);
	if (gai != 0) {
		snprintf(cause, sizeof(cause), "cannot resolve the broker's host %s: %s", p->host,
			 gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
	} else {
		for (struct addrinfo *ai = res; ai && r < 0; ai = ai->ai_next)
			r = probe_connect(ai, BUS_PROBE_TIMEOUT_MS);
		freeaddrinfo(res);
		if (r >= 0 && p->tls && tls_diagnose(p, r, reason, sizeof(reason))) {
			const char *hint = tls_hint(reason);

			snprintf(cause, sizeof(cause), "TLS handshake with %s:%s failed: %s%s%s%s",
				 p->host, p->port, reason, *hint ? " (" : "", hint,
				 *hint ? ")" : "");
		} else if (r >= 0) {
			snprintf(cause, sizeof(cause),
				 "connect to %s:%s failed, though %s to it works and the broker "
				 "gave no reason (see the broker's log)",
				 p->host, p->port, p->tls ? "TLS" : "TCP");
		} else if (r == -ECONNREFUSED) {
			snprintf(cause, sizeof(cause),
				 "cannot reach %s:%s: connection refused (no broker listens "
				 "there: is it running, on that port?)",
				 p->host, p->port);
		} else {
			snprintf(cause, sizeof(cause),
				 "cannot reach %s:%s: %s (network, firewall or wrong address)",
				 p->host, p->port, strerror(-r));
		}
		if (r >= 0)
			close(r);
	}
	pthread_mutex_lock(&p->mu);
	if (p->bus) {
		struct bus_msg *m = bus_msg_new(MSG_PROBED);

		if (m && (m->topic = strdup(cause))) {
			m->reason = r < 0 ? r : 0;
			bus_post(p->bus, m);
		} else {
			bus_msg_free(m);
		}
	}
	pthread_mutex_unlock(&p->mu);
	probe_unref(p);
	return NULL;
}

/*
 * Turns Nagle's algorithm off on every TCP socket of the process. Paho 1.3
 * never sets TCP_NODELAY and has no hook to do it, so a small write (a
 * PUBACK, a receipt) that follows one the broker has not acknowledged yet
 * waits for the broker's delayed ACK: measured here, every receipt took
 * 40-50 ms and the gateway stored a third of what it could. There is no
 * other TCP socket in our daemons for which Nagle helps (libpq sets
 * TCP_NODELAY itself), so after each CONNACK we set it on all of them.
 */
static void tcp_nodelay_all(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int seen = 0;

	if (!d)
		return;
	while ((e = readdir(d)) && seen++ < BUS_MAX_FDS) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		int type = 0, one = 1;
		socklen_t len = sizeof(type);
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		struct stat sb;

		if (*end || fd <= 2 || fd > INT32_MAX || fd == dirfd(d) ||
		    fstat((int)fd, &sb) < 0 || !S_ISSOCK(sb.st_mode))
			continue;
		if (getsockopt((int)fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
		    type != SOCK_STREAM)
			continue;
		if (getsockname((int)fd, (struct sockaddr *)&sa, &salen) < 0 ||
		    (sa.ss_family != AF_INET && sa.ss_family != AF_INET6))
			continue;
		setsockopt((int)fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	closedir(d);
}

/* --- Loop thread ------------------------------------------------------- */

static void bus_try_connect(void *arg);

/*
 * Logs a connect failure: a cause unlike the last one at warn level, the
 * same one again at debug, and a summary with a count every
 * BUS_REPEAT_LOG_MS. Returns 1 if it was logged at warn level.
 */
static int bus_log_cause(struct bus *bus, const char *cause)
{
	uint64_t now = loop_now_ms();

	if (strcmp(cause, bus->cause) != 0) {
		log_warn("bus: %s", cause);
		snprintf(bus->cause, sizeof(bus->cause), "%s", cause);
		bus->cause_logged_ms = now;
		bus->cause_repeats = 0;
		return 1;
	}
	bus->cause_repeats++;
	if (now - bus->cause_logged_ms < BUS_REPEAT_LOG_MS) {
		log_debug("bus: again: %s", cause);
		return 0;
	}
	log_warn("bus: still (%u times in the last %u min): %s", bus->cause_repeats,
		 (unsigned)((now - bus->cause_logged_ms) / 60000), cause);
	bus->cause_logged_ms = now;
	bus->cause_repeats = 0;
	return 1;
}

/* Starts a TCP probe of the broker's address unless one runs. */
static void bus_start_probe(struct bus *bus)
{
	struct bus_probe *p;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (bus->probe)
		return;
	p = calloc(1, sizeof(*p));
	if (!p)
		return;
	pthread_mutex_init(&p->mu, NULL);
	p->refs = 2;
	p->bus = bus;
	memcpy(p->host, bus->host, sizeof(p->host));
	memcpy(p->port, bus->port, sizeof(p->port));
	p->tls = bus->tls && bus->ca_file && bus->cert_file && bus->key_file;
	if (p->tls &&
	    (!(p->ca_file = strdup(bus->ca_file)) || !(p->cert_file = strdup(bus->cert_file)) ||
	     !(p->key_file = strdup(bus->key_file))))
		p->tls = 0; /* out of memory: TCP only */
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &attr, probe_main, p);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		p->refs = 1;
		probe_unref(p);
		log_debug("bus: cannot start a TCP probe: %s", strerror(r));
		return;
	}
	bus->probe = p;
}

/* Detaches the running probe, if any, from the bus. Loop thread. */
static void bus_end_probe(struct bus *bus)
{
	struct bus_probe *p = bus->probe;

	if (!p)
		return;
	bus->probe = NULL;
	pthread_mutex_lock(&p->mu);
	p->bus = NULL;
	pthread_mutex_unlock(&p->mu);
	probe_unref(p);
}

/* Logs a failed connect that has no CONNACK (m->reason < 0). */
static void bus_connect_failed(struct bus *bus, const struct bus_msg *m)
{
	char cause[BUS_CAUSE_MAX];

	/*
	 * A clash never makes a connect fail (the broker is up and takes us):
	 * the short drops before a failed attempt were a broker going away
	 * (restarted, say, twice within BUS_STABLE_MS), not another client.
	 */
	bus->short_drops = 0;

	if (m->tls_reason) {
		const char *hint = tls_hint(m->tls_reason);

		snprintf(cause, sizeof(cause), "TLS handshake with %s:%s failed: %s%s%s%s",
			 bus->host, bus->port, m->tls_reason, *hint ? " (" : "", hint,
			 *hint ? ")" : "");
		bus_log_cause(bus, cause);
		return;
	}
	/* TCP, or TLS without a reason: the probe says which. */
	log_debug("bus: connect to %s failed: %s; probing TCP", bus->uri,
		  m->topic ? m->topic : "no reason given");
	bus_start_probe(bus);
}

/*
 * Logs a lost connection (reason: MQTT v5 reason code of the broker's
 * DISCONNECT, or -ECONNRESET when it just closed) and sets the backoff.
 *
 * A client-id clash: when another client connects with our client id, an
 * MQTT v5 broker may say so (DISCONNECT 0x8E, session taken over), but
 * mosquitto 2.0.11 just closes the old connection. Two instances sharing one
 * certificate (the broker takes the client id from its CN) then kick each
 * other off in turn, each connection lasting about one backoff step. So two
 * connections in a row that the broker closed without a reason within
 * BUS_STABLE_MS of accepting them, with no publish refused on them (mosquitto
 * also closes a connection after refusing a publish), are reported as a
 * likely clash, unless a connect attempt failed in between (the broker was
 * away: a restart, see bus_connect_failed()). Either way the next attempt
 * waits the longest backoff: taking the id straight back would only kick
 * the other one off again.
 */
static void bus_connection_lost(struct bus *bus, int reason)
{
	uint64_t up_ms = loop_now_ms() - bus->connected_at_ms;
	char cause[BUS_CAUSE_MAX];
	const char *how = NULL;

	/*
	 * It worked: a failure now is news again. Not when the broker closed it
	 * after refusing a publish (mosquitto does): that repeats each time the
	 * owner tries again, and is logged once, with the backoff growing.
	 */
	if (up_ms >= BUS_STABLE_MS && !bus->refused_publish) {
		bus->backoff_ms = BUS_BACKOFF_MIN_MS;
		bus->short_drops = 0;
		bus->cause[0] = '\0';
		bus->cause_repeats = 0;
	}
	if (reason == MQTTREASONCODE_SESSION_TAKEN_OVER)
		how = "the broker closed our connection: session taken over (0x8E)";
	else if (reason == -ECONNRESET && up_ms < BUS_STABLE_MS && !bus->refused_publish &&
		 ++bus->short_drops >= 2)
		how = "the broker closed our connection within seconds of accepting it, again, "
		      "without a reason (what mosquitto 2.0 does on a session takeover)";
	if (how) {
		bus->backoff_ms = BUS_BACKOFF_MAX_MS;
		bus->backoff_exact = 1;
		snprintf(cause, sizeof(cause),
			 "client-id clash: %s: another client connected as '%s' (the broker names "
			 "clients after their certificate's CN): two instances share one "
			 "certificate? give each its own, with client_id = its CN",
			 how, bus->client_id);
		bus_log_cause(bus, cause);
	} else if (reason == -ECONNRESET) {
		/* After a refused publish its cause was logged (bus_dispatch). */
		log_at(bus->refused_publish ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN,
		       "bus: connection to %s closed after %llu s, without a reason from the "
		       "broker%s",
		       bus->uri, (unsigned long long)(up_ms / 1000),
		       bus->refused_publish ? " (it had refused a publish: mosquitto then "
					      "closes the connection)"
					    : "");
	} else {
		log_warn("bus: connection to %s closed by the broker: %s (%d)", bus->uri,
			 bus_reason_string(reason), reason);
	}
}

/*
 * Arms the next connect attempt: a wait drawn below the ceiling (full
 * jitter), or the ceiling itself after a client-id clash; then doubles the
 * ceiling up to BUS_BACKOFF_MAX_MS.
 */
static void bus_schedule_retry(struct bus *bus)
{
	unsigned wait_ms;

	if (!bus->started || bus->retry_timer > 0)
		return;
	wait_ms = bus->backoff_exact ? bus->backoff_ms
				     : bus_backoff_delay_ms(bus->backoff_ms, &bus->rng);
	bus->backoff_exact = 0;
	log_at(bus->cause_repeats ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO,
	       "bus: retrying %s in %u ms (backoff ceiling %u ms)", bus->uri, wait_ms,
	       bus->backoff_ms);
	bus->retry_timer = loop_add_timer(bus->loop, wait_ms, bus_try_connect, bus);
	bus->backoff_ms *= 2;
	if (bus->backoff_ms > BUS_BACKOFF_MAX_MS)
		bus->backoff_ms = BUS_BACKOFF_MAX_MS;
}

static void bus_try_connect(void *arg)
{
	struct bus *bus = arg;
	MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
	MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
	MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
	MQTTProperties props = MQTTProperties_initializer;
	MQTTProperty expiry;
	int rc;

	bus->retry_timer = 0;
	if (!bus->started || bus->connected || bus->connecting)
		return;

	ssl.trustStore = bus->ca_file;
	ssl.keyStore = bus->cert_file;
	ssl.privateKey = bus->key_file;
	ssl.enableServerCertAuth = 1;
	ssl.verify = 1; /* check the broker's name/IP against its SAN */
	ssl.sslVersion = MQTT_SSL_VERSION_TLS_1_2;
	ssl.ssl_error_cb = on_ssl_error; /* struct_version 5 has it */
	ssl.ssl_error_context = bus;

	expiry.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL;
	expiry.value.integer4 = bus->session_expiry_s;
	if (MQTTProperties_add(&props, &expiry) != 0) {
		log_error("bus: cannot build CONNECT properties");
		bus_schedule_retry(bus);
		return;
	}

	opts.keepAliveInterval = bus->keepalive_s;
	opts.cleanstart = bus->clean_start;
	opts.connectTimeout = 10;
	opts.ssl = bus->tls ? &ssl : NULL;
	opts.connectProperties = &props;
	opts.onSuccess5 = on_connect_ok;
	opts.onFailure5 = on_connect_fail;
	opts.context = bus;
	if (bus->will_topic) {
		will.topicName = bus->will_topic;
		will.message = NULL;
		will.payload.data = bus->will_payload;
		will.payload.len = (int)bus->will_len;
		will.qos = 1;
		will.retained = bus->will_retain;
		opts.will = &will;
	}

	pthread_mutex_lock(&bus->mu);
	bus->generation++;
	bus->inflight = 0;
	bus->tls_reason[0] = '\0';
	pthread_mutex_unlock(&bus->mu);

	bus->connecting = 1;
	rc = MQTTAsync_connect(bus->client, &opts);
	MQTTProperties_free(&props);
	if (rc != MQTTASYNC_SUCCESS) {
		bus->connecting = 0;
		log_warn("bus: connect to %s could not start: %s (Paho error %d)", bus->uri,
			 MQTTAsync_strerror(rc), rc);
		bus_schedule_retry(bus);
	}
}

static void bus_send_subscribe(struct bus *bus, const struct bus_sub *s)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	struct bus_subctx *sc = calloc(1, sizeof(*sc));
	int rc;

	if (!sc || !(sc->filter = strdup(s->filter))) {
		free(sc);
		log_error("bus: out of memory subscribing to %s", s->filter);
		return;
	}
	sc->bus = bus;
	ro.onSuccess5 = on_subscribe_ok;
	ro.onFailure5 = on_subscribe_fail;
	ro.context = sc;
	rc = MQTTAsync_subscribe(bus->client, s->filter, s->qos, &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		log_error("bus: subscribe to %s failed (Paho error %d)", s->filter, rc);
		free(sc->filter);
		free(sc);
	}
}

static void bus_dispatch(struct bus *bus, struct bus_msg *m)
{
	struct bus_event ev = { 0 };
	unsigned current;

	pthread_mutex_lock(&bus->mu);
	current = bus->generation;
	pthread_mutex_unlock(&bus->mu);

	switch (m->kind) {
	case MSG_CONNECT_OK:
		bus->connecting = 0;
		if (m->generation != current)
			return;
		tcp_nodelay_all();
		bus->connected = 1;
		bus->connected_at_ms = loop_now_ms();
		bus->refused_publish = 0;
		log_info("bus: connected to %s (session %s)", bus->uri,
			 m->session_present ? "resumed" : "new");
		for (size_t i = 0; i < bus->nsubs; i++)
			bus_send_subscribe(bus, &bus->subs[i]);
		ev.type = BUS_CONNECTED;
		ev.session_present = m->session_present;
		break;
	case MSG_CONNECT_FAIL:
		bus->connecting = 0;
		if (m->reason < 0) { /* no CONNACK: TCP or TLS failed */
			bus_connect_failed(bus, m);
		} else {
			char cause[BUS_CAUSE_MAX];

			snprintf(cause, sizeof(cause), "the broker at %s refused us: %s (%d)",
				 bus->uri, bus_reason_string(m->reason), m->reason);
			bus_log_cause(bus, cause);
		}
		bus_schedule_retry(bus);
		return;
	case MSG_PROBED:
		bus_end_probe(bus);
		if (!bus->connected)
			bus_log_cause(bus, m->topic);
		return;
	case MSG_LOST:
		if (!bus->connected)
			return;
		bus->connected = 0;
		bus_connection_lost(bus, m->reason);
		/* Unanswered publishes stop counting: the owner resends them. */
		pthread_mutex_lock(&bus->mu);
		bus->generation++;
		bus->inflight = 0;
		pthread_mutex_unlock(&bus->mu);
		bus_schedule_retry(bus);
		ev.type = BUS_DISCONNECTED;
		ev.reason_code = m->reason;
		break;
	case MSG_MESSAGE:
		ev.type = BUS_MESSAGE;
		ev.topic = m->topic;
		ev.payload = m->payload;
		ev.len = m->len;
		ev.qos = m->qos;
		ev.received_us = m->received_us;
		break;
	case MSG_PUB_OK:
		ev.type = BUS_PUBLISHED;
		ev.cookie = m->cookie;
		break;
	case MSG_PUB_FAIL:
		if (m->generation == current && m->reason > 0)
			bus->refused_publish = 1;
		/*
		 * Our broker's plugin refuses with 135 for two causes: a topic
		 * that is not this car's, and a car over its publish budget;
		 * only its log says which.
		 */
		if (m->reason == MQTTREASONCODE_NOT_AUTHORIZED)
			bus_log_cause(bus, "the broker refused: not authorized (ACL): the "
					   "certificate's VIN does not own this topic, or the car "
					   "is over its publish budget (the broker's log says "
					   "which)");
		ev.type = BUS_PUBLISH_FAILED;
		ev.cookie = m->cookie;
		ev.reason_code = m->reason;
		break;
	case MSG_SUB_FAIL:
		log_error("bus: subscription to %s refused: %s (%d)", m->topic,
			  bus_reason_string(m->reason), m->reason);
		ev.type = BUS_SUBSCRIBE_FAILED;
		ev.topic = m->topic;
		ev.reason_code = m->reason;
		break;
	}
	bus->fn(&ev, bus->arg);
}

/* Waker callback: drains everything Paho reported, in order. */
static void bus_drain(void *arg)
{
	struct bus *bus = arg;
	struct bus_msg *list;
	uint64_t dropped;
	size_t n;

	pthread_mutex_lock(&bus->mu);
	list = bus->pending_head;
	bus->pending_head = bus->pending_tail = NULL;
	n = bus->npending_messages;
	bus->npending_messages = 0;
	bus->pending_bytes = 0;
	dropped = bus->dropped;
	bus->dropped = 0;
	pthread_mutex_unlock(&bus->mu);

	if (dropped) {
		struct bus_event ev = { .type = BUS_DROPPED, .cookie = dropped };

		bus->fn(&ev, bus->arg);
	}

	if (n > bus->max_queued && loop_now_ms() - bus->backlog_logged_ms >= 60000) {
		bus->backlog_logged_ms = loop_now_ms();
		log_warn("bus: %zu messages were waiting for the loop (warning level %zu): "
			 "ingestion is behind the broker",
			 n, bus->max_queued);
	}

	while (list) {
		struct bus_msg *next = list->next;

		bus_dispatch(bus, list);
		bus_msg_free(list);
		list = next;
	}
}

static char *dup_or_null(const char *s, int *failed)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*failed = 1;
	return d;
}

int bus_new(struct loop *loop, const struct bus_config *conf, bus_event_fn fn, void *arg,
	    struct bus **ret_bus)
{
	MQTTAsync_createOptions copts = MQTTAsync_createOptions_initializer5;
	struct bus *bus;
	int failed = 0;
	int r, scheme;

	if (!conf->uri || !conf->client_id || !fn)
		return -EINVAL;
	pthread_once(&paho_once, paho_global_init);

	bus = calloc(1, sizeof(*bus));
	if (!bus)
		return -ENOMEM;
	scheme = uri_split(conf->uri, bus->host, sizeof(bus->host), bus->port);
	if (scheme < 0) {
		log_error("bus: '%s' is not a broker URI (ssl://HOST:PORT)", conf->uri);
		free(bus);
		return -EINVAL;
	}
	bus->tls = bus_schemes[scheme].tls;
	if (!bus->tls)
		log_warn("bus: %s is plaintext: no encryption and no client certificate "
			 "(allowed by allow_plaintext)",
			 conf->uri);
	pthread_mutex_init(&bus->mu, NULL);
	bus->loop = loop;
	bus->fn = fn;
	bus->arg = arg;
	bus->uri = dup_or_null(conf->uri, &failed);
	bus->client_id = dup_or_null(conf->client_id, &failed);
	bus->ca_file = dup_or_null(conf->ca_file, &failed);
	bus->cert_file = dup_or_null(conf->cert_file, &failed);
	bus->key_file = dup_or_null(conf->key_file, &failed);
	bus->will_topic = dup_or_null(conf->will_topic, &failed);
	if (conf->will_topic && conf->will_len) {
		bus->will_payload = malloc(conf->will_len);
		if (bus->will_payload)
			memcpy(bus->will_payload, conf->will_payload, conf->will_len);
		else
			failed = 1;
		bus->will_len = conf->will_len;
	}
	bus->will_retain = conf->will_retain;
	bus->keepalive_s = conf->keepalive_s > 0 ? conf->keepalive_s : 30;
	bus->clean_start = conf->clean_start;
	bus->session_expiry_s = conf->session_expiry_s;
	bus->max_inflight = conf->max_inflight ? conf->max_inflight : 64;
	bus->max_queued = conf->max_queued_events ? conf->max_queued_events : 4096;
	bus->max_bytes = conf->max_queued_bytes ? conf->max_queued_bytes : (size_t)64 << 20;
	bus->droppable_suffix = dup_or_null(conf->droppable_suffix, &failed);
	bus->backoff_ms = BUS_BACKOFF_MIN_MS;
	bus->rng = conf->jitter_seed;
	if (!bus->rng && getrandom(&bus->rng, sizeof(bus->rng), GRND_NONBLOCK) != sizeof(bus->rng))
		bus->rng = (uint64_t)getpid() << 32 ^ (uint64_t)loop_wall_ms(); /* no entropy yet */
	if (failed) {
		r = -ENOMEM;
		goto fail;
	}

	r = loop_waker_new(loop, bus_drain, bus, &bus->waker);
	if (r < 0)
		goto fail;

	/* No Paho persistence: the owner keeps what must survive (SQLite). */
	copts.sendWhileDisconnected = 0;
	r = MQTTAsync_createWithOptions(&bus->client, bus->uri, bus->client_id,
					MQTTCLIENT_PERSISTENCE_NONE, NULL, &copts);
	if (r != MQTTASYNC_SUCCESS) {
		log_error("bus: cannot create MQTT client for %s (Paho error %d)", bus->uri, r);
		bus->client = NULL;
		r = -EINVAL;
		goto fail;
	}
	if (MQTTAsync_setCallbacks(bus->client, bus, on_connection_lost, on_message, NULL) !=
		    MQTTASYNC_SUCCESS ||
	    MQTTAsync_setDisconnected(bus->client, bus, on_disconnected) != MQTTASYNC_SUCCESS) {
		r = -EIO;
		goto fail;
	}
	*ret_bus = bus;
	return 0;
fail:
	bus_free(bus);
	return r;
}

int bus_start(struct bus *bus)
{
	bus->started = 1;
	bus->backoff_ms = BUS_BACKOFF_MIN_MS;
	bus_try_connect(bus);
	return 0;
}

int bus_subscribe(struct bus *bus, const char *filter, int qos)
{
	struct bus_sub *n = realloc(bus->subs, (bus->nsubs + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	bus->subs = n;
	n[bus->nsubs].filter = strdup(filter);
	if (!n[bus->nsubs].filter)
		return -ENOMEM;
	n[bus->nsubs].qos = qos;
	if (bus->connected)
		bus_send_subscribe(bus, &n[bus->nsubs]);
	bus->nsubs++;
	return 0;
}

int bus_publish(struct bus *bus, const char *topic, const void *payload, size_t len, int qos,
		int retain, uint64_t cookie)
{
	MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
	MQTTAsync_message msg = MQTTAsync_message_initializer;
	struct bus_ticket *t = NULL;
	int rc;

	if (!bus->connected)
		return -ENOTCONN;
	if (len > BUS_MAX_PAYLOAD)
		return -EMSGSIZE;
	if (qos > 0) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		t->bus = bus;
		t->cookie = cookie;
		pthread_mutex_lock(&bus->mu);
		if (bus->inflight >= bus->max_inflight) {
			pthread_mutex_unlock(&bus->mu);
			free(t);
			return -EAGAIN;
		}
		t->generation = bus->generation;
		t->next = bus->tickets;
		if (bus->tickets)
			bus->tickets->prev = t;
		bus->tickets = t;
		bus->inflight++;
		pthread_mutex_unlock(&bus->mu);
		ro.onSuccess5 = on_publish_ok;
		ro.onFailure5 = on_publish_fail;
		ro.context = t;
	}
	msg.payload = (void *)payload;
	msg.payloadlen = (int)len;
	msg.qos = qos;
	msg.retained = retain;
	rc = MQTTAsync_sendMessage(bus->client, topic, &msg, &ro);
	if (rc != MQTTASYNC_SUCCESS) {
		if (t) {
			uint64_t c;
			unsigned g;

			ticket_take(t, &c, &g);
		}
		log_warn("bus: publish to %s not sent (Paho error %d)", topic, rc);
		return rc == MQTTASYNC_DISCONNECTED ? -ENOTCONN : -EIO;
	}
	return 0;
}

int bus_is_connected(const struct bus *bus)
{
	return bus->connected;
}

void bus_stop(struct bus *bus, int timeout_ms)
{
	MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;

	if (!bus->started)
		return;
	bus->started = 0;
	loop_cancel_timer(bus->loop, bus->retry_timer);
	bus->retry_timer = 0;
	if (bus->client && (bus->connected || bus->connecting)) {
		d.timeout = timeout_ms;
		d.reasonCode = MQTTREASONCODE_NORMAL_DISCONNECTION;
		if (MQTTAsync_disconnect(bus->client, &d) == MQTTASYNC_SUCCESS) {
			/* Shutdown path: a short blocking wait is fine here. */
			for (int waited = 0;
			     waited < timeout_ms + 1000 && MQTTAsync_isConnected(bus->client);
			     waited += 10)
				usleep(10000);
		}
	}
	bus->connected = 0;
	bus->connecting = 0;
}

void bus_free(struct bus *bus)
{
	struct bus_ticket *t;
	struct bus_msg *m;

	if (!bus)
		return;
	bus_stop(bus, 0);
	bus_end_probe(bus);
	if (bus->client)
		MQTTAsync_destroy(&bus->client);
	for (m = bus->pending_head; m;) {
		struct bus_msg *next = m->next;

		bus_msg_free(m);
		m = next;
	}
	for (t = bus->tickets; t;) {
		struct bus_ticket *next = t->next;

		free(t);
		t = next;
	}
	for (size_t i = 0; i < bus->nsubs; i++)
		free(bus->subs[i].filter);
	free(bus->subs);
	loop_waker_free(bus->waker);
	pthread_mutex_destroy(&bus->mu);
	free(bus->uri);
	free(bus->client_id);
	free(bus->ca_file);
	free(bus->cert_file);
	free(bus->key_file);
	free(bus->will_topic);
	free(bus->droppable_suffix);
	free(bus->will_payload);
	free(bus);
}
