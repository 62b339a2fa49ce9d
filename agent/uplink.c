/*
 * MQTT uplink of the agent; see uplink.h and docs/agent.md. Runs entirely
 * on the loop thread (common/bus delivers its events there), so it may use
 * the SQLite queue directly.
 */
#include "uplink.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "log.h"
#include "loop.h"
#include "queue.h"

#define UPLINK_TOPIC_MAX 96
/* Cookies of non-telemetry publishes; telemetry cookies are seqs (< 2^63). */
#define COOKIE_OTHER (UINT64_C(1) << 63)
#define COOKIE_STATUS (COOKIE_OTHER | 1)
#define COOKIE_EVENT (COOKIE_OTHER | 2)
/*
 * The receipt timer waits this much longer than the oldest deadline, so the
 * batches of one window (acknowledged within moments of each other) time out
 * together: one log line and one resend round, not eight.
 */
#define UPLINK_RECEIPT_SLACK_MS 1000
#define UPLINK_BAD_RECEIPT_LOG_MS 60000 /* malformed receipts: log once a minute */
#define UPLINK_CLOCK_LOG_MS 600000	/* wrong clock: warn once every 10 minutes */
/*
 * A receipt that makes our clock look ahead may only be late (held by the
 * broker for our session while we were offline): "ahead" is believed only
 * when every receipt over this long says so (see clock_check).
 */
#define UPLINK_CLOCK_WINDOW_MS 60000

/*
 * Rate limit for one kind of repeated log line: throttle_pass() says whether
 * to log now, and counts what it holds back.
 */
struct throttle {
	int used;	     /* a line was logged */
	uint64_t last_ms;    /* when (monotonic) */
	uint64_t suppressed; /* lines held back since */
};

struct held_event {
	uint8_t *buf; /* owned, encoded Event */
	size_t len;
};

struct uplink {
	struct loop *loop;   /* borrowed */
	struct queue *queue; /* borrowed */
	struct bus *bus;     /* owned */
	uplink_offer_fn on_offer;
	void *arg;
	char version[CODEC_MAX_VERSION];
	char t_status[UPLINK_TOPIC_MAX];
	char t_telemetry[UPLINK_TOPIC_MAX];
	char t_offers[UPLINK_TOPIC_MAX];
	char t_events[UPLINK_TOPIC_MAX];
	char t_acks[UPLINK_TOPIC_MAX];
	uint8_t *will; /* owned, encoded Status OFFLINE */
	size_t will_len;
	unsigned inflight;	     /* telemetry publishes awaiting an answer */
	uint64_t hold_until_ms;	     /* no telemetry before this (monotonic) */
	int hold_timer;		     /* timer id ending the hold, 0 = none */
	int probing;		     /* one batch at a time until an ack: 1 after a
					 * connect, 2 after a refusal */
	uint64_t receipt_timeout_ms; /* sent batch without receipt: resend */
	int receipt_timer;	     /* timer id of the next receipt check, 0 = none */
	/* Backlog drain: batches sealed before the connect, at a capped rate. */
	unsigned backlog_rate;	    /* batches per second; 0 = no cap */
	uint64_t backlog_last;	    /* newest backlog seq (last seq at connect) */
	double backlog_tokens;	    /* token bucket, at most backlog_rate */
	uint64_t backlog_refill_ms; /* monotonic time of the last refill */
	int backlog_timer;	    /* timer id for the next token, 0 = none */
	int bound_logged;	    /* "waiting for receipts" logged since the last
					 * receipt */
	uint64_t bad_receipts;	    /* malformed receipts since start */
	struct throttle bad_receipt_log;
	/* Our wall clock against the gateway's (the receipts' gateway_time_ms). */
	int clock_known;	     /* clock_skew_ms holds a judgement */
	int64_t clock_skew_ms;	     /* ours - gateway's, as last judged */
	int clock_bad;		     /* that judgement was beyond the limit */
	uint64_t clock_window_ms;    /* UPLINK_CLOCK_WINDOW_MS (tests shorten it) */
	unsigned clock_win_n;	     /* receipts in the "ahead" window */
	uint64_t clock_win_start_ms; /* monotonic time of its first receipt */
	int64_t clock_win_min_ms;    /* least skew seen in it */
	struct throttle clock_log;
	struct held_event events[UPLINK_MAX_EVENTS]; /* ring */
	size_t ev_head, ev_count;
	uint64_t events_dropped;
};

static void send_batches(struct uplink *u);
static void receipt_due(void *arg);

/*
 * Returns 1 if a throttled line may be logged at now_ms (the first one, then
 * one per period_ms), else counts it as held back and returns 0.
 */
static int throttle_pass(struct throttle *t, uint64_t now_ms, uint64_t period_ms)
{
	if (t->used && now_ms - t->last_ms < period_ms) {
		t->suppressed++;
		return 0;
	}
	t->used = 1;
	t->last_ms = now_ms;
	t->suppressed = 0;
	return 1;
}

/* Writes |ms| as "3d04h", "3h02m" or "4m05s" into buf. */
static void format_span(int64_t ms, char *buf, size_t len)
{
	uint64_t s = (ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms) / 1000;

	if (s >= 86400)
		snprintf(buf, len, "%" PRIu64 "d%02" PRIu64 "h", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s % 3600 / 60);
	else
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
}

/* Records a judgement of our clock (skew = ours - gateway's) and logs it. */
static void clock_judge(struct uplink *u, int64_t skew_ms, uint64_t now_ms)
{
	char span[32];

	u->clock_known = 1;
	u->clock_skew_ms = skew_ms;
	format_span(skew_ms, span, sizeof(span));
	if (skew_ms > UPLINK_CLOCK_MAX_SKEW_MS || skew_ms < -UPLINK_CLOCK_MAX_SKEW_MS) {
		u->clock_bad = 1;
		if (throttle_pass(&u->clock_log, now_ms, UPLINK_CLOCK_LOG_MS))
			log_warn("clock is %s %s the gateway's: samples are dated wrong; check the "
				 "time source",
				 span, skew_ms > 0 ? "ahead of" : "behind");
	} else if (u->clock_bad) {
		u->clock_bad = 0;
		u->clock_log.used = 0; /* a new error is reported at once */
		log_info("clock agrees with the gateway's again (%s %s)", span,
			 skew_ms >= 0 ? "ahead" : "behind");
	}
}

/*
 * A receipt carrying the gateway's clock (0: not sent) arrived now. A
 * receipt is never early, only late, so our wall clock minus the gateway's
 * is an upper bound of our clock's error: at or below the limit (including
 * far behind) it is judged at once. Above the limit the receipt may just be
 * late (held for our session while we were offline, delivered at the next
 * connect), so "ahead" is judged only when every receipt over
 * UPLINK_CLOCK_WINDOW_MS (two at least) says so, by the least skew among
 * them; a receipt within the limit ends the window.
 */
static void clock_check(struct uplink *u, int64_t gateway_time_ms)
{
	uint64_t now = loop_now_ms();
	int64_t skew;

	if (gateway_time_ms <= 0)
		return;
	skew = loop_wall_ms() - gateway_time_ms;
	if (skew <= UPLINK_CLOCK_MAX_SKEW_MS) {
		u->clock_win_n = 0;
		clock_judge(u, skew, now);
		return;
	}
	if (u->clock_win_n == 0) {
		u->clock_win_start_ms = now;
		u->clock_win_min_ms = skew;
	} else if (skew < u->clock_win_min_ms) {
		u->clock_win_min_ms = skew;
	}
	u->clock_win_n++;
	if (u->clock_win_n >= 2 && now - u->clock_win_start_ms >= u->clock_window_ms) {
		u->clock_win_n = 0;
		clock_judge(u, u->clock_win_min_ms, now);
	}
}

int uplink_clock_skew_ms(const struct uplink *u, int64_t *ret_ms)
{
	if (!u->clock_known)
		return -ENODATA;
	*ret_ms = u->clock_skew_ms;
	return 0;
}

/*
 * Arms the receipt timer for the oldest sent batch's deadline (plus the
 * slack), unless it is armed already (it then re-arms itself when it fires).
 */
static void arm_receipt_timer(struct uplink *u)
{
	uint64_t oldest, due, now = loop_now_ms();
	int id;

	if (u->receipt_timer || queue_oldest_sent(u->queue, &oldest) < 0)
		return;
	due = oldest + u->receipt_timeout_ms + UPLINK_RECEIPT_SLACK_MS;
	id = loop_add_timer(u->loop, due > now ? due - now : 0, receipt_due, u);
	/* On failure the next PUBACK tries again. */
	u->receipt_timer = id > 0 ? id : 0;
}

/* Timer: sent batches whose receipt is overdue become unsent and go again. */
static void receipt_due(void *arg)
{
	struct uplink *u = arg;
	uint64_t now = loop_now_ms();
	int n = 0;

	u->receipt_timer = 0;
	if (now >= u->receipt_timeout_ms)
		n = queue_expire_sent(u->queue, now - u->receipt_timeout_ms);
	if (n > 0)
		log_info("%d batches not confirmed by the gateway within %" PRIu64 " s; resending",
			 n, u->receipt_timeout_ms / 1000);
	arm_receipt_timer(u);
	if (n > 0)
		send_batches(u);
}

/* Timer: the pause is over, send again. */
static void hold_done(void *arg)
{
	struct uplink *u = arg;

	u->hold_timer = 0;
	send_batches(u);
}

/* Pauses telemetry for delay_ms (extending, never shortening, a pause). */
static void hold(struct uplink *u, uint64_t delay_ms)
{
	uint64_t until = loop_now_ms() + delay_ms;
	int id;

	if (until <= u->hold_until_ms && u->hold_timer)
		return;
	u->hold_until_ms = until;
	loop_cancel_timer(u->loop, u->hold_timer);
	id = loop_add_timer(u->loop, delay_ms, hold_done, u);
	u->hold_timer = id > 0 ? id : 0;
}

/* Timer: a backlog token is due. */
static void backlog_due(void *arg)
{
	struct uplink *u = arg;

	u->backlog_timer = 0;
	send_batches(u);
}

/*
 * Takes one backlog token (refilled at backlog_rate per second, at most one
 * second's worth); returns 0, or -EBUSY with a timer armed for the next one.
 */
static int backlog_take(struct uplink *u)
{
	uint64_t now = loop_now_ms();
	int id;

	u->backlog_tokens += (double)(now - u->backlog_refill_ms) * u->backlog_rate / 1000.0;
	if (u->backlog_tokens > u->backlog_rate)
		u->backlog_tokens = u->backlog_rate;
	u->backlog_refill_ms = now;
	if (u->backlog_tokens >= 1.0) {
		u->backlog_tokens -= 1.0;
		return 0;
	}
	if (!u->backlog_timer) {
		id = loop_add_timer(
			u->loop,
			(uint64_t)((1.0 - u->backlog_tokens) * 1000.0 / u->backlog_rate) + 1,
			backlog_due, u);
		u->backlog_timer = id > 0 ? id : 0;
	}
	return -EBUSY;
}

/*
 * The next batch to publish: live ones (sealed since the connect) first,
 * then the backlog, oldest first, at most backlog_rate per second (-EBUSY
 * when the rate says wait). Returns what queue_peek_unsent() returns.
 */
static int next_batch(struct uplink *u, uint64_t *ret_seq, uint8_t **ret_data, size_t *ret_len)
{
	int r;

	if (!u->backlog_rate || !u->backlog_last)
		return queue_peek_unsent(u->queue, ret_seq, ret_data, ret_len);
	r = queue_peek_unsent_after(u->queue, u->backlog_last, ret_seq, ret_data, ret_len);
	if (r != -ENODATA)
		return r;
	r = backlog_take(u);
	if (r < 0)
		return r;
	r = queue_peek_unsent(u->queue, ret_seq, ret_data, ret_len);
	if (r == -ENODATA) {
		u->backlog_tokens += 1.0; /* not used */
		u->backlog_last = 0;	  /* drained: no backlog until the next connect */
	}
	return r;
}

/*
 * Fills the window: publishes unsent batches (next_batch) while connected,
 * not paused, and fewer than UPLINK_WINDOW are in flight.
 */
static void send_batches(struct uplink *u)
{
	if (!bus_is_connected(u->bus) || loop_now_ms() < u->hold_until_ms)
		return;
	while (u->inflight < (u->probing ? 1u : UPLINK_WINDOW)) {
		uint8_t *data = NULL;
		size_t len = 0;
		uint64_t seq;
		int r;

		r = next_batch(u, &seq, &data, &len);
		if (r == -ENOBUFS) {
			/* Resumes when a receipt or a timeout frees room. */
			if (!u->bound_logged)
				log_info("%d batches wait for the gateway's receipt; sending no "
					 "more until it confirms some",
					 QUEUE_MAX_UNCONFIRMED);
			u->bound_logged = 1;
			return;
		}
		if (r < 0)
			return; /* -ENODATA: nothing to send; -EBUSY: backlog_due resumes;
				 * errors are logged */
		r = bus_publish(u->bus, u->t_telemetry, data, len, 1, 0, seq);
		free(data);
		if (r == 0) {
			r = queue_mark_inflight(u->queue, seq);
			assert(r == 0); /* seq was unsent and there was room */
			(void)r;
			u->inflight++;
			log_debug("batch %" PRIu64 " published", seq);
			continue;
		}
		if (r == -EAGAIN || r == -ENOTCONN)
			return; /* resumes on the next ack or connect */
		if (r == -EMSGSIZE) {
			/* Can never be sent; keeping it would block the queue forever. */
			log_error("batch %" PRIu64 " (%zu bytes) is too large to publish: dropped",
				  seq, len);
			queue_delete(u->queue, seq);
			continue;
		}
		log_warn("publish of batch %" PRIu64 " failed: %s; retrying in %d s", seq,
			 strerror(-r), UPLINK_RETRY_MS / 1000);
		hold(u, UPLINK_RETRY_MS);
		return;
	}
}

/* Sends held events, oldest first, while the bus takes them. */
static void flush_events(struct uplink *u)
{
	while (u->ev_count && bus_is_connected(u->bus)) {
		struct held_event *e = &u->events[u->ev_head];

		if (bus_publish(u->bus, u->t_events, e->buf, e->len, 1, 0, COOKIE_EVENT) < 0)
			return;
		free(e->buf);
		e->buf = NULL;
		u->ev_head = (u->ev_head + 1) % UPLINK_MAX_EVENTS;
		u->ev_count--;
	}
}

void uplink_send_event(struct uplink *u, const struct offer_event *ev)
{
	struct held_event *e;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r;

	r = codec_encode_offer_event(ev, &buf, &len);
	if (r < 0) {
		log_error("cannot encode event for offer %s: %s", ev->offer_id, strerror(-r));
		return;
	}
	if (u->ev_count == UPLINK_MAX_EVENTS) {
		e = &u->events[u->ev_head];
		free(e->buf);
		e->buf = NULL;
		u->ev_head = (u->ev_head + 1) % UPLINK_MAX_EVENTS;
		u->ev_count--;
		u->events_dropped++;
		log_warn("offline event buffer full: oldest event dropped (%" PRIu64 " in total)",
			 u->events_dropped);
	}
	e = &u->events[(u->ev_head + u->ev_count) % UPLINK_MAX_EVENTS];
	e->buf = buf;
	e->len = len;
	u->ev_count++;
	flush_events(u);
}

/* Publishes a retained Status; returns 0 or -errno. */
static int send_status(struct uplink *u, enum agent_state state)
{
	struct agent_status st;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r, depth;

	memset(&st, 0, sizeof(st));
	st.state = state;
	st.time_ms = loop_wall_ms();
	snprintf(st.agent_version, sizeof(st.agent_version), "%s", u->version);
	depth = queue_count(u->queue);
	if (depth >= 0) {
		st.has_queue_depth = 1;
		st.queue_depth = (uint32_t)depth;
	}
	r = codec_encode_status(&st, &buf, &len);
	if (r == 0)
		r = bus_publish(u->bus, u->t_status, buf, len, 1, 1, COOKIE_STATUS);
	free(buf);
	return r;
}

/*
 * The broker acknowledged cookie. For a telemetry batch that only means the
 * broker has it (it may still discard it if no gateway is subscribed, and
 * Paho 1.3.11 does not tell us the PUBACK's "no matching subscribers"): the
 * batch becomes sent and waits for the gateway's receipt, or its timeout.
 */
static void on_published(struct uplink *u, uint64_t cookie)
{
	if (cookie & COOKIE_OTHER) {
		flush_events(u);
		return;
	}
	if (u->inflight)
		u->inflight--;
	if (u->probing == 2)
		log_info("broker accepts telemetry again");
	u->probing = 0;
	log_debug("batch %" PRIu64 " acknowledged by the broker", cookie);
	/* -ENOENT: a receipt came first, or the batch was made unsent meanwhile. */
	if (queue_mark_sent(u->queue, cookie, loop_now_ms()) == 0)
		arm_receipt_timer(u);
	send_batches(u);
}

/*
 * A receipt from the gateway (TelemetryAck): it has committed these
 * batches, so they are deleted, whatever their state. Seqs we no longer
 * hold (a receipt for a duplicate, or repeated by QoS 1 redelivery) are fine.
 * A receipt of another queue epoch than ours names batches of another queue
 * under our VIN (the one before a wipe, still held for our persistent
 * session or redelivered): its seqs are not ours, so it deletes nothing.
 * A malformed receipt changes nothing and is logged at most once a minute.
 * The gateway's clock in a receipt is checked against ours (clock_check).
 */
static void on_receipt(struct uplink *u, const uint8_t *payload, size_t len)
{
	uint64_t *seqs = NULL, epoch = 0;
	int64_t gateway_time_ms = 0;
	size_t n = 0;
	int r, deleted = 0;

	r = codec_decode_ack(payload, len, &epoch, &gateway_time_ms, &seqs, &n);
	if (r < 0) {
		u->bad_receipts++;
		if (throttle_pass(&u->bad_receipt_log, loop_now_ms(), UPLINK_BAD_RECEIPT_LOG_MS))
			log_warn("malformed receipt (%zu bytes) ignored: %s (%" PRIu64
				 " since start)",
				 len, strerror(-r), u->bad_receipts);
		return;
	}
	/* Any receipt tells the gateway's time, whatever queue it is for. */
	clock_check(u, gateway_time_ms);
	if (epoch != queue_epoch(u->queue)) {
		log_debug("receipt for %zu batches of queue epoch %016" PRIx64
			  " ignored (ours is %016" PRIx64 ")",
			  n, epoch, queue_epoch(u->queue));
		free(seqs);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		r = queue_delete(u->queue, seqs[i]);
		if (r == 1) {
			deleted++;
			log_debug("batch %" PRIu64 " stored by the gateway", seqs[i]);
		} else if (r == 0) {
			log_debug("batch %" PRIu64 " stored by the gateway (again)", seqs[i]);
		}
		/* r < 0: logged by the queue; the batch times out and goes again. */
	}
	free(seqs);
	if (deleted) {
		u->bound_logged = 0;
		send_batches(u);
	}
}

/* A publish failed: the batch stays, unsent, and telemetry pauses. */
static void on_publish_failed(struct uplink *u, uint64_t cookie, int reason)
{
	if (cookie & COOKIE_OTHER) {
		log_warn("publish of %s refused: reason %d (%s)",
			 cookie == COOKIE_STATUS ? "status" : "event", reason,
			 bus_reason_string(reason));
		return;
	}
	if (u->inflight)
		u->inflight--;
	queue_requeue(u->queue, cookie);
	if (reason >= 0x80) {
		/* 135 (ACL) was logged by common/bus, once per cause. */
		log_at(reason == 135 ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR,
		       "publish of batch %" PRIu64 " refused by broker: reason %d (%s)", cookie,
		       reason, bus_reason_string(reason));
		hold(u, UPLINK_REFUSED_RETRY_MS);
		u->probing = 2;
	} else {
		log_warn("publish of batch %" PRIu64 " failed: reason %d (%s); retrying in %d s",
			 cookie, reason, bus_reason_string(reason), UPLINK_RETRY_MS / 1000);
		hold(u, UPLINK_RETRY_MS);
	}
}

/* Everything the bus reports, on the loop thread. */
static void on_bus_event(const struct bus_event *ev, void *arg)
{
	struct uplink *u = arg;
	int r;

	switch (ev->type) {
	case BUS_CONNECTED:
		log_info("connected to the broker (session %s); %d batches queued",
			 ev->session_present ? "resumed" : "new", queue_count(u->queue));
		u->inflight = 0;
		if (!u->probing)
			u->probing = 1; /* slow start: one batch until the first ack */
		queue_requeue(u->queue, 0);
		/* What is stored now is backlog; what is sealed from now on is live. */
		u->backlog_last = queue_next_seq(u->queue) - 1;
		u->backlog_tokens = 1.0;
		u->backlog_refill_ms = loop_now_ms();
		r = send_status(u, AGENT_ONLINE);
		if (r < 0)
			log_warn("cannot publish status: %s", strerror(-r));
		flush_events(u);
		send_batches(u);
		break;
	case BUS_DISCONNECTED:
		log_info("disconnected from the broker; %d batches will be resent, "
			 "%d wait for the gateway's receipt",
			 queue_inflight(u->queue), queue_sent(u->queue));
		u->inflight = 0;
		queue_requeue(u->queue, 0);
		break;
	case BUS_MESSAGE:
		if (ev->topic && strcmp(ev->topic, u->t_acks) == 0)
			on_receipt(u, ev->payload, ev->len);
		else if (ev->topic && strcmp(ev->topic, u->t_offers) == 0 && u->on_offer)
			u->on_offer(ev->payload, ev->len, u->arg);
		else
			log_debug("message on unexpected topic ignored");
		break;
	case BUS_PUBLISHED:
		on_published(u, ev->cookie);
		break;
	case BUS_PUBLISH_FAILED:
		on_publish_failed(u, ev->cookie, ev->reason_code);
		break;
	case BUS_SUBSCRIBE_FAILED:
		/*
		 * common/bus logged it; offers (or receipts: batches are then resent
		 * at every timeout, never lost) stay unavailable until the next
		 * connect.
		 */
		break;
	case BUS_DROPPED:
		/* The loop fell far behind (bus.h): a dropped receipt costs a resend. */
		log_warn("%llu messages from the broker dropped while the agent was behind",
			 (unsigned long long)ev->cookie);
		break;
	}
}

int uplink_new(struct loop *loop, const struct uplink_config *conf, struct queue *queue,
	       uplink_offer_fn on_offer, void *arg, struct uplink **ret_u)
{
	struct agent_status will = { .state = AGENT_OFFLINE };
	struct bus_config bc;
	struct uplink *u;
	int r;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->loop = loop;
	u->queue = queue;
	u->on_offer = on_offer;
	u->arg = arg;
	snprintf(u->version, sizeof(u->version), "%s", conf->agent_version);
	snprintf(u->t_status, sizeof(u->t_status), "pitstop/v1/vehicles/%s/status", conf->vin);
	snprintf(u->t_telemetry, sizeof(u->t_telemetry), "pitstop/v1/vehicles/%s/telemetry",
		 conf->vin);
	snprintf(u->t_offers, sizeof(u->t_offers), "pitstop/v1/vehicles/%s/offers", conf->vin);
	snprintf(u->t_events, sizeof(u->t_events), "pitstop/v1/vehicles/%s/events", conf->vin);
	snprintf(u->t_acks, sizeof(u->t_acks), "pitstop/v1/vehicles/%s/acks", conf->vin);
	u->clock_window_ms = UPLINK_CLOCK_WINDOW_MS;
	u->receipt_timeout_ms = conf->receipt_timeout_ms > 0 ? (uint64_t)conf->receipt_timeout_ms
							     : UPLINK_RECEIPT_TIMEOUT_MS;
	u->backlog_rate = conf->backlog_max_batches_per_s;
	will.time_ms = loop_wall_ms();
	snprintf(will.agent_version, sizeof(will.agent_version), "%s", u->version);
	r = codec_encode_status(&will, &u->will, &u->will_len);
	if (r < 0)
		goto fail;
	memset(&bc, 0, sizeof(bc));
	bc.uri = conf->broker_uri;
	bc.client_id = conf->vin;
	bc.ca_file = conf->ca_file;
	bc.cert_file = conf->cert_file;
	bc.key_file = conf->key_file;
	bc.keepalive_s = conf->keepalive_s > 0 ? conf->keepalive_s : 30;
	bc.clean_start = 0; /* offers sent while we were offline wait for us */
	bc.session_expiry_s =
		conf->session_expiry_s ? conf->session_expiry_s : UPLINK_SESSION_EXPIRY_S;
	bc.will_topic = u->t_status;
	bc.will_payload = u->will;
	bc.will_len = u->will_len;
	bc.will_retain = 1;
	bc.max_inflight = UPLINK_WINDOW + UPLINK_MAX_EVENTS + 2;
	r = bus_new(loop, &bc, on_bus_event, u, &u->bus);
	if (r < 0)
		goto fail;
	r = bus_subscribe(u->bus, u->t_offers, 1);
	if (r < 0)
		goto fail;
	r = bus_subscribe(u->bus, u->t_acks, 1);
	if (r < 0)
		goto fail;
	*ret_u = u;
	return 0;
fail:
	uplink_free(u);
	return r;
}

int uplink_start(struct uplink *u)
{
	return bus_start(u->bus);
}

void uplink_kick(struct uplink *u)
{
	send_batches(u);
}

void uplink_shutdown(struct uplink *u, int timeout_ms)
{
	if (bus_is_connected(u->bus)) {
		int r = send_status(u, AGENT_OFFLINE);

		if (r < 0)
			log_warn("cannot publish offline status: %s", strerror(-r));
	}
	bus_stop(u->bus, timeout_ms);
}

int uplink_connected(const struct uplink *u)
{
	return bus_is_connected(u->bus);
}

void uplink_free(struct uplink *u)
{
	if (!u)
		return;
	bus_free(u->bus);
	loop_cancel_timer(u->loop, u->hold_timer);
	loop_cancel_timer(u->loop, u->receipt_timer);
	loop_cancel_timer(u->loop, u->backlog_timer);
	for (size_t i = 0; i < u->ev_count; i++)
		free(u->events[(u->ev_head + i) % UPLINK_MAX_EVENTS].buf);
	free(u->will);
	free(u);
}
