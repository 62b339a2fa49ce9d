/*
 * Ingest; see ingest.h for what it does. This file holds the topic parsing,
 * the per-message savepoint logic, the batched transaction and its counters
 * (tx deltas are added to the totals only when the commit succeeded), the
 * list of offers waiting for that commit, and the list of telemetry batches
 * (VIN, epoch, seq) the commit will make safe, turned into receipts after it.
 * What each kind of message does is one row of the table `kinds`.
 *
 * Offers the broker acknowledged (the offer outbox's on_acked) are marked
 * sent without a transaction of their own: their ids wait in a bounded
 * array (SENT_MARKS_MAX) and are applied just before the next ingest commit,
 * or, while ingest is idle, by the 1 s counters timer in the small
 * transaction that saves the counters.
 */
#include "ingest.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "latency.h"
#include "log.h"
#include "loop.h"
#include "offer_signing.h"
#include "rules.h"
#include "sign_worker.h"
#include "vin.h"

#define DEFAULT_MAX_PENDING 500
/*
 * Samples the telemetry of one transaction may hold in memory before it is
 * stored (about 10 MB): a drain is committed early past it.
 */
#define DRAIN_MAX_SAMPLES 200000
#define COUNTERS_PERIOD_MS 1000
#define REJECT_LOG_PERIOD_MS 60000
#define TOPIC_PREFIX "pitstop/v1/vehicles/"
/*
 * How long a receipt may wait for the bus (down, or all in-flight slots
 * taken) before it is dropped. Dropping one is harmless: the car sends the
 * batch again after its receipt timeout, ingest finds it is a duplicate and
 * acknowledges it then.
 */
#define ACK_DROP_AFTER_MS 60000
/*
 * Broker-acknowledged offers waiting to be marked sent (64 KiB of ids).
 * They are applied at the next commit or within a second; past this many
 * a mark is dropped with a warning: the offer was still published, and the
 * car's DELIVERED event counts its sent stage (offer_log.h).
 */
#define SENT_MARKS_MAX 1024
/*
 * How long the next commit may wait for the signature of an offer whose own
 * transaction has committed (docs/performance.md, "Offer latency"). A commit
 * blocks the loop for its fsync; a signature that comes back meanwhile
 * waits for it before its offer can be published, and that wait was the
 * offers' largest tail. While the signature is this close, the loop keeps
 * draining the bus into the open transaction instead, and commits as soon
 * as the signature is back, or after this long at the latest: receipts of
 * the held transaction wait at most this much more.
 */
#define SIGN_HOLD_MS 2U

_Static_assert(OUTBOX_ID_MAX >= CODEC_MAX_ID, "an offer id fits an outbox id");

/* An offer signed during the open transaction, published after its commit. */
struct pending_offer {
	char id[CODEC_MAX_ID];
	char vin[VIN_LEN + 1];
	uint8_t *buf; /* owned: SignedOffer bytes; NULL while the signing thread has it */
	size_t len;
	uint64_t tag; /* its job in the signing thread; 0: signed on the loop */
	int64_t valid_until_ms;
	uint64_t received_us; /* its batch's arrival (ingest_message_at()); 0 = no batch */
};

/*
 * A telemetry batch stored (or found already stored) in the open
 * transaction: it is acknowledged to the car once the transaction commits.
 */
struct pending_ack {
	char vin[VIN_LEN + 1];
	uint64_t epoch;
	uint64_t seq;
};

/*
 * A telemetry batch of the open transaction, decoded and waiting to be
 * stored with the rest of the drain in a few multi-row statements.
 */
struct drained {
	char vin[VIN_LEN + 1];
	uint64_t epoch, seq;
	uint8_t *raw; /* owned: the payload as received */
	size_t len;
	struct sample *samples; /* owned */
	size_t n;
	uint64_t received_us; /* loop_now_us() when the bus received it */
};

/* What the open transaction will add to the counters when it commits. */
struct tx_delta {
	uint64_t stored, samples_stored, duplicates, events, events_unknown, status, status_ahead;
	uint32_t implausible[TELEMETRY_IMPL_COUNT]; /* a transaction holds < 2^32 samples */
	uint64_t messages;			    /* messages applied in the transaction */
};

/* Once-a-minute logging per reject reason. */
struct reject_log {
	uint64_t last_ms;    /* monotonic; 0 = never logged */
	uint64_t suppressed; /* rejects since the last line */
};

struct ingest {
	struct loop *loop;	      /* borrowed */
	struct db *db;		      /* borrowed */
	struct telemetry *telemetry;  /* borrowed */
	struct offer_log *offers;     /* borrowed */
	struct crypto_signer *signer; /* borrowed, may be NULL */
	struct rules *rules;	      /* borrowed, may be NULL */
	char *instance_id;	      /* owned */
	size_t max_pending;
	int no_timers;
	void (*on_vehicles)(void *arg, const struct telemetry_vehicle *v, size_t n);
	void *on_vehicles_arg;

	struct counters c;     /* totals, committed work only */
	struct counters saved; /* what the database holds: save when c differs */
	struct reject_log rlog[REJECT_COUNT];

	int in_tx;	  /* a db transaction is open */
	int commit_timer; /* loop timer id, 0 = none */
	int holding;	  /* commit_timer is sign_hold_ms: waiting for a signature */
	unsigned sign_hold_ms;
	int counters_timer;	     /* loop timer id, 0 = none */
	struct db_stmt *counters_st; /* owned: counters_save_cached()'s statement */
	struct tx_delta tx;
	struct pending_offer *pending; /* owned, max_pending entries */
	size_t npending;
	/*
	 * Offers whose transaction committed while the signing thread still
	 * had them: published when their signature comes back. Each is in the
	 * thread, so SIGN_WORKER_MAX bounds them.
	 */
	struct pending_offer awaiting[SIGN_WORKER_MAX];
	size_t nawaiting;
	struct sign_worker *signer_thread; /* owned; NULL: sign on the loop */
	uint64_t next_tag;
	/* At most one per message, so max_pending bounds them. */
	struct pending_ack *acks; /* owned, max_pending entries */
	size_t nacks;
	uint64_t *ack_seqs; /* owned, max_pending entries: scratch of acks_publish() */
	/* Telemetry of the open transaction, stored at commit; one per message. */
	struct drained *drain; /* owned, max_pending entries */
	size_t ndrain;
	size_t drain_samples;
	struct telemetry_item *items; /* owned, max_pending entries: scratch of flush_drain() */

	/* Offers the broker acknowledged, to mark sent at the next commit. */
	char (*sent)[CODEC_MAX_ID]; /* owned, SENT_MARKS_MAX entries */
	size_t nsent;
	uint64_t sent_dropped; /* marks dropped (array full) since the last warning */

	struct outbox *outbox;	   /* owned: signed offers */
	struct outbox *ack_outbox; /* owned: telemetry receipts */
	/* Batch received -> its offer handed to the bus; filled by the outbox. */
	struct latency offer_latency;
};

static void commit_timer_fired(void *arg);
static void commit_soon(struct ingest *in);
static void counters_timer_fired(void *arg);

/* Counts a rejected message and logs it at most once a minute per reason. */
static void reject(struct ingest *in, enum reject why, const char *detail)
{
	struct reject_log *rl = &in->rlog[why];
	uint64_t now = loop_now_ms();

	in->c.rejected[why]++;
	if (rl->last_ms && now - rl->last_ms < REJECT_LOG_PERIOD_MS) {
		rl->suppressed++;
		return;
	}
	if (rl->suppressed)
		log_warn("ingest: rejected a message (%s): %s; %llu more since the last report",
			 counters_reject_name(why), detail, (unsigned long long)rl->suppressed);
	else
		log_warn("ingest: rejected a message (%s): %s", counters_reject_name(why), detail);
	rl->last_ms = now ? now : 1;
	rl->suppressed = 0;
}

/* Drops the pending offers from index from on (they were not committed). */
static void pending_clear_from(struct ingest *in, size_t from)
{
	while (in->npending > from) {
		in->npending--;
		free(in->pending[in->npending].buf);
		in->pending[in->npending].buf = NULL;
	}
}

/* Frees the drained telemetry from index from on. */
static void drain_clear_from(struct ingest *in, size_t from)
{
	while (in->ndrain > from) {
		struct drained *x = &in->drain[--in->ndrain];

		in->drain_samples -= x->n;
		free(x->raw);
		free(x->samples);
		x->raw = NULL;
		x->samples = NULL;
	}
}

/* Undoes the whole open transaction; what it held is counted as lost. */
static void abort_tx(struct ingest *in)
{
	db_rollback(in->db);
	in->in_tx = 0;
	in->holding = 0;
	if (in->commit_timer) {
		loop_cancel_timer(in->loop, in->commit_timer);
		in->commit_timer = 0;
	}
	if (in->tx.messages)
		log_error("ingest: transaction rolled back, %llu messages lost",
			  (unsigned long long)in->tx.messages);
	in->c.rejected[REJECT_STORAGE] += in->tx.messages;
	memset(&in->tx, 0, sizeof(in->tx));
	pending_clear_from(in, 0);
	drain_clear_from(in, 0);
	in->nacks = 0; /* nothing of it is safe: no receipt, the cars resend */
}

static int flush_drain(struct ingest *in);
static void pending_publish(struct ingest *in, int64_t now);

/* The offer outbox's on_acked: remembers offer id to mark it sent. */
static void sent_remember(void *arg, const char *id)
{
	struct ingest *in = arg;

	if (in->nsent == SENT_MARKS_MAX) {
		in->sent_dropped++; /* warned by the counters timer */
		return;
	}
	snprintf(in->sent[in->nsent++], CODEC_MAX_ID, "%s", id);
}

/*
 * Marks the remembered offers sent, inside the open transaction and a
 * savepoint of its own: when that fails, the marks are undone and dropped
 * with a warning (the cars' events count the stage), and the transaction
 * goes on. They are forgotten by the caller once it committed. Returns 0,
 * or an error class when even the savepoint failed (the caller aborts).
 */
static int sent_apply(struct ingest *in, int64_t now)
{
	int r = 0;

	if (!in->nsent)
		return 0;
	r = db_savepoint(in->db);
	if (r < 0)
		return r;
	for (size_t i = 0; r >= 0 && i < in->nsent; i++)
		r = offer_log_sent(in->offers, in->sent[i], now);
	if (r >= 0)
		return db_release(in->db);
	log_warn("ingest: marking %zu offers sent failed (%s); dropped, their cars' events "
		 "count them",
		 in->nsent, strerror(-r));
	in->nsent = 0;
	return db_rollback_to(in->db);
}

/* Orders pending acks by VIN, epoch, then seq. */
static int ack_cmp(const void *a, const void *b)
{
	const struct pending_ack *x = a, *y = b;
	int c = strcmp(x->vin, y->vin);

	if (c)
		return c;
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Called right after a commit: hands one TelemetryAck per (VIN, epoch),
 * naming each of its batches in the transaction once (split every
 * CODEC_MAX_ACK_SEQS), to the ack outbox, and forgets them. A receipt that
 * cannot be built is dropped with a warning; the car resends that batch.
 */
static void acks_publish(struct ingest *in, int64_t now)
{
	size_t i = 0;

	qsort(in->acks, in->nacks, sizeof(in->acks[0]), ack_cmp);
	while (i < in->nacks) {
		const char *vin = in->acks[i].vin;
		uint64_t epoch = in->acks[i].epoch;
		size_t n = 0;

		for (; i < in->nacks && strcmp(in->acks[i].vin, vin) == 0 &&
		       in->acks[i].epoch == epoch;
		     i++)
			if (n == 0 || in->ack_seqs[n - 1] != in->acks[i].seq)
				in->ack_seqs[n++] = in->acks[i].seq;
		for (size_t off = 0; off < n; off += CODEC_MAX_ACK_SEQS) {
			size_t k = n - off < CODEC_MAX_ACK_SEQS ? n - off : CODEC_MAX_ACK_SEQS;
			uint8_t *buf = NULL;
			size_t len = 0;
			int r = codec_encode_ack(epoch, now, in->ack_seqs + off, k, &buf, &len);

			if (r < 0) {
				log_warn("ingest: cannot encode a receipt for %zu batches: %s", k,
					 strerror(-r));
				continue;
			}
			/*
			 * While the bus is down the receipt waits in the outbox
			 * (bounded) for ACK_DROP_AFTER_MS and is then dropped:
			 * the car resends and the duplicate is acknowledged.
			 */
			outbox_add(in->ack_outbox, vin, buf, len, now + ACK_DROP_AFTER_MS, now);
			free(buf);
		}
	}
	in->nacks = 0;
}

/*
 * Saves the counters with the open transaction's work added, commits, and
 * hands the offers it recorded and the receipts for its telemetry to the
 * outboxes. On failure the whole transaction is rolled back (abort_tx()) and
 * nothing is published. Returns 0 or -errno.
 */
static int commit_tx(struct ingest *in)
{
	struct counters next;
	int64_t now = loop_wall_ms();
	int r;

	if (!in->in_tx)
		return 0;
	if (in->commit_timer) {
		loop_cancel_timer(in->loop, in->commit_timer);
		in->commit_timer = 0;
	}
	in->holding = 0;
	r = flush_drain(in);
	if (r < 0)
		return r; /* the transaction is gone (abort_tx) */
	/*
	 * The counters go into the same transaction as the data they count,
	 * so `pitstopctl stats` never disagrees with `vehicle history`.
	 */
	next = in->c;
	next.stored += in->tx.stored;
	next.samples_stored += in->tx.samples_stored;
	next.duplicates += in->tx.duplicates;
	next.events += in->tx.events;
	next.events_unknown += in->tx.events_unknown;
	next.status += in->tx.status;
	next.status_ahead += in->tx.status_ahead;
	for (int i = 0; i < TELEMETRY_IMPL_COUNT; i++)
		next.implausible[i] += in->tx.implausible[i];
	r = sent_apply(in, now);
	if (r == 0)
		r = counters_save_cached(in->db, &in->counters_st, in->instance_id, &next, now);
	if (r == 0)
		r = db_commit(in->db);
	if (r < 0) {
		abort_tx(in); /* the sent marks stay for the next transaction */
		return r;
	}
	in->nsent = 0;
	in->in_tx = 0;
	in->c = next;
	in->saved = next;
	memset(&in->tx, 0, sizeof(in->tx));
	pending_publish(in, now);
	acks_publish(in, now);
	return 0;
}

/* Hands the committed pending offers to the outbox (it copies them) and clears them. */
static void pending_publish(struct ingest *in, int64_t now)
{
	for (size_t i = 0; i < in->npending; i++) {
		struct pending_offer *p = &in->pending[i];

		if (p->buf) {
			outbox_add_timed(in->outbox, p->vin, p->buf, p->len, p->valid_until_ms, now,
					 p->received_us, p->id);
		} else if (p->tag) {
			if (in->nawaiting < SIGN_WORKER_MAX) {
				in->awaiting[in->nawaiting++] =
					*p; /* offer_signed() publishes it */
				continue;
			}
			in->c.offers_failed++; /* cannot happen: each is in the thread */
		}
		free(p->buf);
		p->buf = NULL;
	}
	in->npending = 0;
}

/*
 * The signing thread's answer for tag (a sign_worker_done_fn). The offer is
 * published at once if its transaction committed, kept if it is still
 * open, and dropped if it was rolled back (nothing has the tag any more).
 */
static void offer_signed(void *arg, uint64_t tag, int result, uint8_t *buf, size_t len)
{
	struct ingest *in = arg;

	if (result < 0) {
		in->c.offers_failed++;
		log_warn("ingest: signing an offer failed (%s); it stays unsent",
			 strerror(-result));
	}
	for (size_t i = 0; i < in->npending; i++) {
		struct pending_offer *p = &in->pending[i];

		if (p->tag != tag)
			continue;
		p->tag = 0; /* a failure leaves it with no buf: dropped at the commit */
		p->buf = buf;
		p->len = len;
		return;
	}
	for (size_t i = 0; i < in->nawaiting; i++) {
		struct pending_offer *p = &in->awaiting[i];

		if (p->tag != tag)
			continue;
		if (buf)
			outbox_add_timed(in->outbox, p->vin, buf, len, p->valid_until_ms,
					 loop_wall_ms(), p->received_us, p->id);
		in->awaiting[i] = in->awaiting[--in->nawaiting];
		if (in->holding && in->nawaiting == 0)
			commit_soon(in); /* the commit waited for this one */
		break;
	}
	free(buf);
}

/* Opens a transaction if none is open and arms the commit timer. */
static int ensure_tx(struct ingest *in)
{
	int r;

	if (in->in_tx)
		return 0;
	r = db_begin(in->db);
	if (r < 0)
		return r;
	in->in_tx = 1;
	r = loop_add_timer(in->loop, 0, commit_timer_fired, in);
	in->commit_timer = r > 0 ? r : 0;
	return 0;
}

/*
 * The 0 ms timer: the bus drain is over, commit what it brought; unless an
 * offer already committed waits for its signature, which is then let out
 * first (SIGN_HOLD_MS), with the drain stored and its rules run meanwhile.
 */
static void commit_timer_fired(void *arg)
{
	struct ingest *in = arg;
	int r;

	in->commit_timer = 0;
	if (in->nawaiting && !in->holding) {
		/* Store the drain now, so that its own offers are signing meanwhile. */
		if (flush_drain(in) < 0)
			return; /* the transaction is gone (abort_tx) */
		r = loop_add_timer(in->loop, in->sign_hold_ms, commit_timer_fired, in);
		if (r > 0) {
			in->commit_timer = r;
			in->holding = 1;
			return;
		}
	}
	commit_tx(in);
}

/* Ends a hold: commits after what the bus has brought meanwhile. */
static void commit_soon(struct ingest *in)
{
	int r;

	if (in->commit_timer)
		loop_cancel_timer(in->loop, in->commit_timer);
	r = loop_add_timer(in->loop, 0, commit_timer_fired, in);
	in->commit_timer = r > 0 ? r : 0;
	if (r <= 0)
		commit_tx(in);
}

/* One decoded message, whichever its kind. */
struct decoded {
	uint64_t epoch, seq;	/* telemetry */
	struct sample *samples; /* owned, telemetry */
	size_t n;
	struct offer_event ev;	/* events */
	struct agent_status st; /* status */
};

/*
 * What one kind of message does. decode fills d from the payload (a codec
 * error); apply stores it inside the message's savepoint and fills the
 * transaction delta (an error class rolls the message back).
 */
struct kind {
	const char *name; /* the topic's last level */
	int drained;	  /* 1: kept until the commit and stored with the drain */
	size_t max_bytes;
	const char *bad; /* the reject detail when it does not decode */
	int (*decode)(const uint8_t *buf, size_t len, struct decoded *d);
	int (*apply)(struct ingest *in, const char *vin, const uint8_t *buf, size_t len,
		     struct decoded *d, struct tx_delta *delta);
};

static int decode_telemetry(const uint8_t *buf, size_t len, struct decoded *d)
{
	return codec_decode_batch(buf, len, &d->epoch, &d->seq, &d->samples, &d->n);
}

static int decode_event(const uint8_t *buf, size_t len, struct decoded *d)
{
	return codec_decode_offer_event(buf, len, &d->ev);
}

static int decode_status(const uint8_t *buf, size_t len, struct decoded *d)
{
	return codec_decode_status(buf, len, &d->st);
}

/*
 * Stores a batch; a new one is folded into the latest state and the rules
 * run on the result. A duplicate is only counted (and acknowledged again).
 */
static int apply_telemetry(struct ingest *in, const char *vin, const uint8_t *buf, size_t len,
			   struct decoded *d, struct tx_delta *delta)
{
	struct telemetry_item it = { .vin = vin,
				     .epoch = d->epoch,
				     .seq = d->seq,
				     .raw = buf,
				     .len = len,
				     .samples = d->samples,
				     .n = d->n };
	int64_t now = loop_wall_ms();
	struct telemetry_vehicle *v = NULL;
	size_t nv = 0;
	int r;

	r = telemetry_put_batches(in->telemetry, &it, 1, now, &v, &nv);
	if (r == 0 && in->rules)
		r = rules_after_batches(in->rules, v, nv, now);
	if (r == 0 && nv && in->on_vehicles)
		in->on_vehicles(in->on_vehicles_arg, v, nv);
	free(v);
	if (r < 0)
		return r;
	if (!it.new_batch) {
		delta->duplicates++;
		return 0;
	}
	delta->stored++;
	delta->samples_stored += d->n;
	for (int i = 0; i < TELEMETRY_IMPL_COUNT; i++)
		delta->implausible[i] += it.implausible[i];
	return 0;
}

/* An event for an offer never issued to this car is counted and dropped. */
static int apply_event(struct ingest *in, const char *vin, const uint8_t *buf, size_t len,
		       struct decoded *d, struct tx_delta *delta)
{
	int r = offer_log_event(in->offers, vin, &d->ev, loop_wall_ms());

	if (r == -ENOENT) {
		log_debug("ingest: %s reported an event for unknown offer %s", vin, d->ev.offer_id);
		delta->events_unknown++;
		return 0;
	}
	if (r == 0)
		delta->events++;
	return r;
}

static int apply_status(struct ingest *in, const char *vin, const uint8_t *buf, size_t len,
			struct decoded *d, struct tx_delta *delta)
{
	int implausible = 0;
	int r = telemetry_put_status(in->telemetry, vin, &d->st, loop_wall_ms(), &implausible);

	if (r == 0 && implausible) {
		log_debug("ingest: %s sent a status dated %lld ms ahead; set apart", vin,
			  (long long)(d->st.time_ms - loop_wall_ms()));
		delta->status_ahead++;
	} else if (r == 0) {
		delta->status++;
	}
	return r;
}

static const struct kind kinds[] = {
	{ "telemetry", 1, CODEC_MAX_BATCH_BYTES, "telemetry does not decode", decode_telemetry,
	  apply_telemetry },
	{ "events", 0, CODEC_MAX_EVENT_BYTES, "event does not decode", decode_event, apply_event },
	{ "status", 0, CODEC_MAX_STATUS_BYTES, "status does not decode", decode_status,
	  apply_status },
};
#define KIND_TELEMETRY (&kinds[0])

/*
 * Splits pitstop/v1/vehicles/<VIN>/<kind> into vin and *ret_kind. Returns 0,
 * or -EINVAL with the reject reason (bad_topic or bad_vin) in *ret_why.
 */
static int parse_topic(const char *topic, char vin[VIN_LEN + 1], const struct kind **ret_kind,
		       enum reject *ret_why)
{
	const char *v, *slash;
	size_t vlen;

	*ret_kind = NULL;
	if (!topic || strncmp(topic, TOPIC_PREFIX, strlen(TOPIC_PREFIX)) != 0)
		goto bad_topic;
	v = topic + strlen(TOPIC_PREFIX);
	slash = strchr(v, '/');
	if (!slash || slash == v)
		goto bad_topic;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(slash + 1, kinds[i].name) == 0)
			*ret_kind = &kinds[i];
	if (!*ret_kind)
		goto bad_topic;
	vlen = (size_t)(slash - v);
	if (vlen != VIN_LEN) {
		*ret_why = REJECT_BAD_VIN;
		return -EINVAL;
	}
	memcpy(vin, v, VIN_LEN);
	vin[VIN_LEN] = '\0';
	if (!vin_valid(vin)) {
		*ret_why = REJECT_BAD_VIN;
		return -EINVAL;
	}
	return 0;
bad_topic:
	*ret_why = REJECT_BAD_TOPIC;
	return -EINVAL;
}

/* Maps a codec error to a reject reason. */
static enum reject decode_reject(int r)
{
	if (r == -EMSGSIZE)
		return REJECT_OVERSIZED;
	if (r == -ENOMEM)
		return REJECT_STORAGE; /* could not be stored, not its fault */
	return REJECT_MALFORMED;
}

/*
 * Remembers that batch (vin, epoch, seq) is in the open transaction, to be
 * acknowledged once it commits.
 */
static void ack_remember(struct ingest *in, const char *vin, uint64_t epoch, uint64_t seq)
{
	struct pending_ack *a;

	assert(in->nacks < in->max_pending); /* one per message, committed at max_pending */
	if (in->nacks == in->max_pending)
		return; /* cannot happen; no receipt: the car resends */
	a = &in->acks[in->nacks++];
	memcpy(a->vin, vin, sizeof(a->vin));
	a->epoch = epoch;
	a->seq = seq;
}

/*
 * Runs kind's apply in a savepoint of the open transaction. Returns 0, or
 * an error class with the message undone (and, if even that failed, the
 * whole transaction aborted). A busy or serialization failure is retried
 * once: another instance held a lock the backend broke by failing us.
 */
static int apply_in_savepoint(struct ingest *in, const struct kind *k, const char *vin,
			      const uint8_t *payload, size_t len, struct decoded *d,
			      struct tx_delta *delta)
{
	size_t mark = in->npending;
	int r = -EBUSY;

	for (int attempt = 0; attempt < 2 && r == -EBUSY; attempt++) {
		r = db_savepoint(in->db);
		if (r < 0) {
			abort_tx(in);
			return r;
		}
		memset(delta, 0, sizeof(*delta));
		r = k->apply(in, vin, payload, len, d, delta);
		if (r == 0) {
			r = db_release(in->db);
			if (r < 0) {
				pending_clear_from(in, mark);
				abort_tx(in);
			}
			return r;
		}
		pending_clear_from(in, mark);
		if (db_rollback_to(in->db) < 0) {
			abort_tx(in);
			return r;
		}
	}
	return r;
}

/* Keeps a decoded batch for the drain (takes d->samples). Returns 0 or -ENOMEM. */
static int drain_add(struct ingest *in, const char *vin, const uint8_t *payload, size_t len,
		     struct decoded *d, uint64_t received_us)
{
	struct drained *x;

	assert(in->ndrain < in->max_pending); /* one per message, committed at max_pending */
	x = &in->drain[in->ndrain];
	x->raw = malloc(len ? len : 1);
	if (!x->raw)
		return -ENOMEM;
	memcpy(x->raw, payload, len);
	memcpy(x->vin, vin, sizeof(x->vin));
	x->len = len;
	x->epoch = d->epoch;
	x->seq = d->seq;
	x->samples = d->samples;
	x->n = d->n;
	x->received_us = received_us;
	d->samples = NULL;
	in->drain_samples += x->n;
	in->ndrain++;
	return 0;
}

/* Counts one stored or duplicate batch and remembers it for its receipt. */
static void drained_done(struct ingest *in, const struct drained *x, int new_batch,
			 const uint32_t *implausible)
{
	if (new_batch) {
		in->tx.stored++;
		in->tx.samples_stored += x->n;
		for (int i = 0; implausible && i < TELEMETRY_IMPL_COUNT; i++)
			in->tx.implausible[i] += implausible[i];
	} else {
		log_debug("ingest: %s batch %llu (epoch %016llx) is a duplicate", x->vin,
			  (unsigned long long)x->seq, (unsigned long long)x->epoch);
		in->tx.duplicates++;
	}
	ack_remember(in, x->vin, x->epoch, x->seq); /* stored or a duplicate: both are safe */
}

/*
 * Stores the drained telemetry of the open transaction: all of it at once
 * (telemetry_put_batches(), then the rules over the vehicles it changed),
 * in a savepoint. If that fails, it is undone and each batch is stored
 * alone in a savepoint of its own (as a drain of one batch always is), so
 * one bad batch costs only itself (counted as rejected{storage}, no
 * receipt: the car sends it again) and a passing failure costs nothing.
 * Returns 0, or an error class when the transaction had to be aborted.
 */
static int flush_drain(struct ingest *in)
{
	size_t n = in->ndrain, mark = in->npending, nv = 0;
	struct telemetry_vehicle *v = NULL;
	int64_t now = loop_wall_ms();
	int r;

	if (n == 0)
		return 0;
	if (n == 1)
		goto one_by_one; /* all at once would be the same, with nothing to fall back on */
	for (size_t i = 0; i < n; i++) {
		const struct drained *x = &in->drain[i];

		in->items[i] = (struct telemetry_item){ .vin = x->vin,
							.epoch = x->epoch,
							.seq = x->seq,
							.raw = x->raw,
							.len = x->len,
							.samples = x->samples,
							.n = x->n };
	}
	r = db_savepoint(in->db);
	if (r < 0) {
		abort_tx(in);
		return r;
	}
	r = telemetry_put_batches(in->telemetry, in->items, n, now, &v, &nv);
	if (r == 0 && in->rules)
		r = rules_after_batches(in->rules, v, nv, now);
	if (r == 0 && nv && in->on_vehicles)
		in->on_vehicles(in->on_vehicles_arg, v, nv);
	free(v);
	if (r >= 0) {
		r = db_release(in->db);
		if (r < 0) {
			pending_clear_from(in, mark);
			abort_tx(in);
			return r;
		}
		for (size_t i = 0; i < n; i++)
			drained_done(in, &in->drain[i], in->items[i].new_batch,
				     in->items[i].implausible);
		drain_clear_from(in, 0);
		return 0;
	}
	pending_clear_from(in, mark);
	if (db_rollback_to(in->db) < 0) {
		abort_tx(in);
		return -EIO;
	}
	log_warn("ingest: storing %zu batches at once failed (%s); storing them one by one", n,
		 strerror(-r));
one_by_one:
	for (size_t i = 0; i < n; i++) {
		struct drained *x = &in->drain[i];
		struct decoded dec = {
			.epoch = x->epoch, .seq = x->seq, .samples = x->samples, .n = x->n
		};
		struct tx_delta d;

		r = apply_in_savepoint(in, KIND_TELEMETRY, x->vin, x->raw, x->len, &dec, &d);
		if (!in->in_tx)
			return r < 0 ? r : -EIO; /* aborted: the drain went with it */
		in->tx.messages--;		 /* it is counted now, one way or the other */
		if (r < 0) {
			reject(in, REJECT_STORAGE, "storing it failed");
			continue;
		}
		in->tx.messages++;
		drained_done(in, x, d.stored != 0, d.implausible);
	}
	drain_clear_from(in, 0);
	return 0;
}

int ingest_topic_vin(const char *topic, char vin[VIN_LEN + 1])
{
	const struct kind *k;
	enum reject why;

	return parse_topic(topic, vin, &k, &why);
}

void ingest_message(struct ingest *in, const char *topic, const uint8_t *payload, size_t len)
{
	ingest_message_at(in, topic, payload, len, loop_now_us());
}

void ingest_message_at(struct ingest *in, const char *topic, const uint8_t *payload, size_t len,
		       uint64_t received_us)
{
	char vin[VIN_LEN + 1];
	const struct kind *k;
	enum reject why;
	struct tx_delta d;
	struct decoded dec;
	int r;

	memset(&dec, 0, sizeof(dec));
	in->c.received++;
	if (parse_topic(topic, vin, &k, &why) < 0) {
		reject(in, why,
		       why == REJECT_BAD_VIN ? "invalid VIN in topic" : "unexpected topic");
		return;
	}
	if (len > k->max_bytes) {
		reject(in, REJECT_OVERSIZED, "payload over the protocol limit");
		return;
	}
	r = k->decode(payload, len, &dec);
	if (r < 0) {
		reject(in, decode_reject(r), k->bad);
		goto out;
	}
	r = ensure_tx(in);
	if (r < 0) {
		reject(in, REJECT_STORAGE, "cannot open a transaction");
		goto out;
	}
	if (k->drained) {
		r = drain_add(in, vin, payload, len, &dec, received_us);
		if (r < 0) {
			reject(in, REJECT_STORAGE, "out of memory");
			goto out;
		}
		in->tx.messages++;
		if (in->tx.messages >= in->max_pending || in->drain_samples >= DRAIN_MAX_SAMPLES)
			commit_tx(in);
		goto out;
	}
	r = apply_in_savepoint(in, k, vin, payload, len, &dec, &d);
	if (r < 0) {
		reject(in, REJECT_STORAGE, "storing it failed");
		goto out;
	}
	in->tx.stored += d.stored;
	in->tx.samples_stored += d.samples_stored;
	in->tx.duplicates += d.duplicates;
	in->tx.events += d.events;
	in->tx.events_unknown += d.events_unknown;
	in->tx.status += d.status;
	in->tx.status_ahead += d.status_ahead;
	for (int i = 0; i < TELEMETRY_IMPL_COUNT; i++)
		in->tx.implausible[i] += d.implausible[i];
	in->tx.messages++;
	if (in->tx.messages >= in->max_pending)
		commit_tx(in);
out:
	free(dec.samples);
}

/*
 * When the batch behind an offer for vin arrived: the earliest of vin's
 * batches in the drain being stored (the rules see the state they all made;
 * the earliest gives the longer, safe, latency), or 0 outside a drain (a
 * scheduled job's offer).
 */
static uint64_t drain_received_us(const struct ingest *in, const char *vin)
{
	uint64_t t = 0;

	for (size_t i = 0; i < in->ndrain; i++)
		if ((!t || in->drain[i].received_us < t) && strcmp(in->drain[i].vin, vin) == 0)
			t = in->drain[i].received_us;
	return t;
}

int ingest_offer_sink(void *arg, const struct offer *o)
{
	struct ingest *in = arg;
	struct pending_offer *p;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t tag = 0;
	int r;

	if (!in->signer) {
		in->c.offers_failed++;
		return -ENOKEY;
	}
	if (in->npending == in->max_pending)
		return -ENOBUFS; /* cannot happen: one offer per message at most */
	if (in->signer_thread) {
		/*
		 * Encode here, so a bad offer is refused now, while the rules
		 * can still undo what they claimed for it; the thread signs
		 * these very bytes.
		 */
		uint8_t *enc = NULL;
		size_t enc_len = 0;

		r = codec_encode_offer(o, &enc, &enc_len);
		if (r == 0) {
			tag = ++in->next_tag;
			r = sign_worker_submit(in->signer_thread, enc, enc_len, tag);
			if (r == 0) {
				enc = NULL; /* the thread's now */
			} else if (r == -ENOBUFS) {
				/* The thread is full: sign here. */
				tag = 0;
				r = sign_worker_sign(in->signer_thread, enc, enc_len, &buf, &len);
			}
		}
		free(enc);
	} else {
		r = offer_signing_encode(in->signer, o, &buf, &len);
	}
	if (r < 0) {
		in->c.offers_failed++;
		return r;
	}
	p = &in->pending[in->npending++];
	p->tag = tag;
	snprintf(p->id, sizeof(p->id), "%s", o->id);
	snprintf(p->vin, sizeof(p->vin), "%s", o->vin);
	p->buf = buf;
	p->len = len;
	p->valid_until_ms = o->valid_until_ms;
	p->received_us = drain_received_us(in, o->vin);
	return 0;
}

void ingest_job_done(void *arg, int committed)
{
	struct ingest *in = arg;
	int64_t now = loop_wall_ms();

	if (in->in_tx)
		return; /* cannot happen: jobs run only while ingest is idle */
	if (committed)
		pending_publish(in, now);
	pending_clear_from(in, 0);
}

void ingest_published(struct ingest *in, uint64_t cookie, int ok)
{
	int64_t now = loop_wall_ms();

	/* counts sent / failed; the cookies of the two outboxes differ */
	if (!outbox_result(in->outbox, cookie, ok))
		outbox_result(in->ack_outbox, cookie, ok);
	/* A bus in-flight slot is free: publish what waited for one (-EAGAIN). */
	outbox_flush(in->outbox, now);
	outbox_flush(in->ack_outbox, now);
}

void ingest_dropped(struct ingest *in, uint64_t n)
{
	if (n == 0)
		return;
	in->c.received += n;
	in->c.rejected[REJECT_BACKLOG] += n - 1;
	reject(in, REJECT_BACKLOG, "the gateway was too far behind the broker");
}

void ingest_connected(struct ingest *in)
{
	int64_t now = loop_wall_ms();

	outbox_reconnected(in->outbox, now);
	outbox_reconnected(in->ack_outbox, now);
}

int ingest_idle(void *arg)
{
	const struct ingest *in = arg;

	return !in->in_tx;
}

int ingest_flush(struct ingest *in)
{
	return commit_tx(in);
}

int ingest_save_counters(struct ingest *in)
{
	int64_t now = loop_wall_ms();
	int r;

	if (in->in_tx)
		return commit_tx(in); /* saves them (and marks offers sent) too */
	r = db_begin(in->db);
	if (r < 0)
		return r;
	r = sent_apply(in, now);
	if (r == 0)
		r = counters_save_cached(in->db, &in->counters_st, in->instance_id, &in->c, now);
	if (r == 0)
		r = db_commit(in->db);
	if (r < 0) {
		db_rollback(in->db); /* the sent marks stay for the next try */
		return r;
	}
	in->nsent = 0;
	in->saved = in->c;
	return 0;
}

/*
 * Every second: retry or expire waiting offers, save changed counters and
 * mark acknowledged offers sent (one small transaction), warn of dropped
 * marks.
 */
static void counters_timer_fired(void *arg)
{
	struct ingest *in = arg;
	int r;

	in->counters_timer = 0;
	outbox_flush(in->outbox, loop_wall_ms());
	outbox_flush(in->ack_outbox, loop_wall_ms());
	if (in->sent_dropped) {
		log_warn("ingest: %llu acknowledged offers were not marked sent (more than %d "
			 "waited for a commit); their cars' events count them",
			 (unsigned long long)in->sent_dropped, SENT_MARKS_MAX);
		in->sent_dropped = 0;
	}
	if (in->nsent || memcmp(&in->c, &in->saved, sizeof(in->c)) != 0)
		ingest_save_counters(in); /* db logged any failure */
	r = loop_add_timer(in->loop, COUNTERS_PERIOD_MS, counters_timer_fired, in);
	in->counters_timer = r > 0 ? r : 0;
}

const struct counters *ingest_counters(const struct ingest *in)
{
	return &in->c;
}

const struct latency *ingest_offer_latency(const struct ingest *in)
{
	return &in->offer_latency;
}

struct sign_worker *ingest_sign_worker(struct ingest *in)
{
	return in->signer_thread;
}

void ingest_set_rules(struct ingest *in, struct rules *rules)
{
	in->rules = rules;
}

/* Frees what ingest_new() allocated (no timers, nothing pending). */
static void release(struct ingest *in)
{
	sign_worker_free(in->signer_thread); /* joined: no answer comes after this */
	db_finalize(in->counters_st);
	outbox_free(in->ack_outbox);
	outbox_free(in->outbox);
	free(in->items);
	free(in->drain);
	free(in->ack_seqs);
	free(in->acks);
	free(in->pending);
	free(in->sent);
	free(in->instance_id);
	free(in);
}

int ingest_new(const struct ingest_params *p, struct ingest **ret_ingest)
{
	struct ingest *in;
	int r;

	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->loop = p->loop;
	in->db = p->db;
	in->telemetry = p->telemetry;
	in->offers = p->offers;
	in->signer = p->signer;
	if (p->sign_thread && p->signer) {
		r = sign_worker_new(p->loop, p->signer, offer_signed, in, &in->signer_thread);
		if (r < 0)
			goto fail;
	}
	in->no_timers = p->no_timers;
	in->sign_hold_ms = p->sign_hold_ms ? p->sign_hold_ms : SIGN_HOLD_MS;
	in->on_vehicles = p->on_vehicles;
	in->on_vehicles_arg = p->on_vehicles_arg;
	in->max_pending = p->max_pending ? p->max_pending : DEFAULT_MAX_PENDING;
	in->instance_id = strdup(p->instance_id ? p->instance_id : "");
	in->pending = calloc(in->max_pending, sizeof(*in->pending));
	in->acks = calloc(in->max_pending, sizeof(*in->acks));
	in->ack_seqs = calloc(in->max_pending, sizeof(*in->ack_seqs));
	in->drain = calloc(in->max_pending, sizeof(*in->drain));
	in->items = calloc(in->max_pending, sizeof(*in->items));
	in->sent = calloc(SENT_MARKS_MAX, sizeof(*in->sent));
	if (!in->instance_id || !in->pending || !in->acks || !in->ack_seqs || !in->drain ||
	    !in->items || !in->sent) {
		r = -ENOMEM;
		goto fail;
	}
	r = outbox_new(OUTBOX_OFFERS, p->max_outbox, p->publish, p->publish_arg, &in->c,
		       &in->outbox);
	if (r < 0)
		goto fail;
	outbox_set_latency(in->outbox, &in->offer_latency);
	outbox_set_on_acked(in->outbox, sent_remember, in);
	/* Room for the receipts of two full transactions (one per message at most). */
	r = outbox_new(OUTBOX_ACKS, 2 * in->max_pending, p->publish, p->publish_arg, &in->c,
		       &in->ack_outbox);
	if (r < 0)
		goto fail;
	r = counters_load(in->db, in->instance_id, &in->c);
	if (r < 0)
		goto fail;
	in->saved = in->c;
	if (!in->no_timers) {
		r = loop_add_timer(in->loop, COUNTERS_PERIOD_MS, counters_timer_fired, in);
		if (r < 0)
			goto fail;
		in->counters_timer = r;
	}
	*ret_ingest = in;
	return 0;
fail:
	release(in);
	return r;
}

void ingest_free(struct ingest *in)
{
	if (!in)
		return;
	if (ingest_save_counters(in) < 0 && in->in_tx)
		abort_tx(in);
	if (in->commit_timer)
		loop_cancel_timer(in->loop, in->commit_timer);
	if (in->counters_timer)
		loop_cancel_timer(in->loop, in->counters_timer);
	pending_clear_from(in, 0);
	drain_clear_from(in, 0);
	release(in);
}
