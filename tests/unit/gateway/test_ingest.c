/*
 * Unit tests of ingest (gateway/ingest/ingest.c) with the real codec,
 * crypto, telemetry and offers domains on a real database (whichever
 * backend db_test_util.h selects), a real loop (run only where the commit
 * timer is under test) and a fake publisher: bad messages are counted by
 * reason and skipped; batches are stored once per (VIN, epoch, seq), so a
 * wiped car's new epoch is new data; offers are signed, published only
 * after the commit, and verify; storage errors (a statement or a COMMIT
 * that fails, injected with db_fault_inject()) are counted and the gateway
 * keeps going, with nothing of the failed message left behind; counters
 * are saved and loaded; the outbox retries while disconnected; telemetry
 * receipts (TelemetryAck) name exactly the batches a commit made safe,
 * stored or duplicate, one receipt per (VIN, epoch), and nothing else.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec.h"
#include "crypto.h"
#include "db.h"
#include "ingest.h"
#include "latency.h"
#include "loop.h"
#include "offer_log.h"
#include "offers.h"
#include "pki.h"
#include "rules.h"
#include "schema.h"
#include "sign_worker.h"
#include "telemetry.h"
#include "vin.h"

static const char VIN1[] = "WDB1234561A000001";
static const char VIN2[] = "WDB1234561A000002";
static const char T_TELEMETRY[] = "pitstop/v1/vehicles/WDB1234561A000001/telemetry";
static const char T_EVENTS[] = "pitstop/v1/vehicles/WDB1234561A000001/events";
static const char T_STATUS[] = "pitstop/v1/vehicles/WDB1234561A000001/status";

/* The queue epochs of a car before (EPOCH) and after (EPOCH2) it was wiped. */
#define EPOCH 0x8877665544332211ULL
#define EPOCH2 0x0000000000c0ffeeULL

static char pki_dir[512];

/* ---- fixture ---- */

#define MAX_PUBLISHED 8
#define MAX_ACKS 16

struct published {
	char topic[128];
	uint8_t *buf; /* owned */
	size_t len;
	uint64_t cookie;
	unsigned order; /* 1 for the fixture's first publish, offer or receipt */
};

struct fixture {
	char name[64];
	struct loop *loop;
	struct db *db;
	struct telemetry *t;
	struct offer_log *log;
	struct crypto_signer *signer;
	struct ingest *in;
	struct rules *rules;
	struct published pub[MAX_PUBLISHED]; /* offers */
	int npub;
	struct published ack[MAX_ACKS]; /* receipts (topic .../acks) */
	int nack;
	int publish_result; /* what the fake publisher returns */
	unsigned published; /* publishes so far, offers and receipts */
};

static int fake_publish(void *arg, const char *topic, const uint8_t *buf, size_t len,
			uint64_t cookie)
{
	struct fixture *f = arg;
	struct published *p;

	if (f->publish_result < 0)
		return f->publish_result;
	if (strlen(topic) > 5 && strcmp(topic + strlen(topic) - 5, "/acks") == 0) {
		assert_true(f->nack < MAX_ACKS);
		p = &f->ack[f->nack++];
	} else {
		assert_true(f->npub < MAX_PUBLISHED);
		p = &f->pub[f->npub++];
	}
	snprintf(p->topic, sizeof(p->topic), "%s", topic);
	p->buf = malloc(len);
	assert_non_null(p->buf);
	memcpy(p->buf, buf, len);
	p->len = len;
	p->cookie = cookie;
	p->order = ++f->published;
	return 0;
}

static void start_ingest_holding(struct fixture *f, size_t max_pending, int sign_thread,
				 unsigned sign_hold_ms)
{
	struct ingest_params ip = {
		.loop = f->loop,
		.db = f->db,
		.telemetry = f->t,
		.offers = f->log,
		.signer = f->signer,
		.instance_id = "gw-test",
		.publish = fake_publish,
		.publish_arg = f,
		.max_pending = max_pending,
		.no_timers = 1,
		.sign_thread = sign_thread,
		.sign_hold_ms = sign_hold_ms,
	};
	struct rules_config rc = { .low_fuel_pct = 15,
				   .low_fuel_rearm_pct = 10,
				   .offer_valid_s = 3600 };

	assert_int_equal(ingest_new(&ip, &f->in), 0);
	assert_int_equal(rules_new(&rc, f->db, f->log, ingest_offer_sink, f->in, &f->rules), 0);
	ingest_set_rules(f->in, f->rules);
}

static void start_ingest_signing(struct fixture *f, size_t max_pending, int sign_thread)
{
	start_ingest_holding(f, max_pending, sign_thread, 0);
}

static void start_ingest(struct fixture *f, size_t max_pending)
{
	start_ingest_signing(f, max_pending, 0);
}

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));
	char err[512], key[600];

	assert_non_null(f);
	snprintf(f->name, sizeof(f->name), "ingest_%d", count++);
	assert_int_equal(loop_new(&f->loop), 0);
	assert_int_equal(db_test_open(f->name, &f->db), 0);
	if (schema_migrate(f->db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(telemetry_new(f->db, &f->t), 0);
	assert_int_equal(offer_log_new(f->db, &f->log), 0);
	snprintf(key, sizeof(key), "%s/offer-signing.key", pki_dir);
	assert_int_equal(crypto_signer_load(key, &f->signer), 0);
	start_ingest(f, 0);
	*state = f;
	return 0;
}

static void stop_ingest(struct fixture *f)
{
	ingest_free(f->in);
	rules_free(f->rules);
	f->in = NULL;
	f->rules = NULL;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stop_ingest(f);
	offer_log_free(f->log);
	telemetry_free(f->t);
	db_close(f->db);
	crypto_signer_free(f->signer);
	loop_free(f->loop);
	for (int i = 0; i < f->npub; i++)
		free(f->pub[i].buf);
	for (int i = 0; i < f->nack; i++)
		free(f->ack[i].buf);
	free(f);
	return 0;
}

/* Sends vin an encoded batch (epoch, seq) of n samples starting at t with fuel. */
static void send_batch_of(struct fixture *f, const char *vin, uint64_t epoch, uint64_t seq,
			  int64_t t, int32_t fuel, size_t n)
{
	struct sample x[8];
	char topic[128];
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		x[i] = gw_sample(t + 1000 * (int64_t)i, fuel, 481234567, 115678901);
	assert_int_equal(codec_encode_batch(epoch, seq, x, n, &buf, &len), 0);
	snprintf(topic, sizeof(topic), "pitstop/v1/vehicles/%s/telemetry", vin);
	ingest_message(f->in, topic, buf, len);
	free(buf);
}

/* Sends VIN1 an encoded batch of epoch EPOCH: n samples starting at t with fuel. */
static void send_batch(struct fixture *f, uint64_t seq, int64_t t, int32_t fuel, size_t n)
{
	send_batch_of(f, VIN1, EPOCH, seq, t, fuel, n);
}

/*
 * Checks that receipt i went to vin's acks topic for queue epoch `epoch`
 * and names exactly the n seqs in want, in that order.
 */
static void assert_ack(struct fixture *f, int i, const char *vin, uint64_t epoch,
		       const uint64_t *want, size_t n)
{
	char topic[128];
	uint64_t *seqs = NULL, got_epoch = 1;
	size_t got = 0;

	assert_true(i < f->nack);
	snprintf(topic, sizeof(topic), "pitstop/v1/vehicles/%s/acks", vin);
	assert_string_equal(f->ack[i].topic, topic);
	assert_int_equal(
		codec_decode_ack(f->ack[i].buf, f->ack[i].len, &got_epoch, NULL, &seqs, &got), 0);
	assert_true(got_epoch == epoch);
	assert_int_equal(got, n);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(seqs[k], want[k]);
	free(seqs);
}

/* The epoch receipt i is for. */
static uint64_t ack_epoch(struct fixture *f, int i)
{
	uint64_t *seqs = NULL, epoch = 1;
	int64_t sent_at = 0;
	size_t n = 0;

	assert_true(i < f->nack);
	assert_int_equal(
		codec_decode_ack(f->ack[i].buf, f->ack[i].len, &epoch, &sent_at, &seqs, &n), 0);
	/* the gateway's clock rides along, for the car to check its own */
	assert_true(llabs(sent_at - loop_wall_ms()) < 60000);
	free(seqs);
	return epoch;
}

/* Samples stored for VIN1. */
static size_t history_len(struct fixture *f)
{
	struct telemetry_sample *rows = NULL;
	size_t n = 0;
	int truncated = 0;
	int r = telemetry_history(f->t, VIN1, INT64_MIN, INT64_MAX, 0, &rows, &n, &truncated);

	free(rows);
	assert_true(r == 0 || r == -ENOENT);
	return r == -ENOENT ? 0 : n;
}

/* The one integer sql returns, with text $1 = arg when arg is not NULL. */
static int64_t query_int(struct db *db, const char *sql, const char *arg)
{
	struct db_stmt *st = NULL;
	int64_t v;

	assert_int_equal(db_prepare(db, sql, &st), 0);
	if (arg)
		assert_int_equal(db_bind_text(st, 1, arg), 0);
	assert_int_equal(db_step(st), 1);
	v = db_column_int64(st, 0);
	db_finalize(st);
	return v;
}

/* Whether vin's low-fuel episode is open. */
static int episode_open(struct fixture *f, const char *vin)
{
	return query_int(f->db,
			 "SELECT COUNT(*) FROM offer_episodes WHERE vin = $1 AND open = 1"
			 " AND rule = 'low_fuel'",
			 vin) > 0;
}

/* Offers recorded for VIN1. */
static size_t offers_len(struct fixture *f)
{
	return (size_t)query_int(f->db, "SELECT COUNT(*) FROM offers WHERE vin = $1", VIN1);
}

/* ---- tests ---- */

static void test_bad_messages_counted_and_skipped(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x08 };
	uint8_t *big = calloc(1, CODEC_MAX_BATCH_BYTES + 1);

	ingest_message(f->in, "foo/bar", garbage, sizeof(garbage));
	ingest_message(f->in, "pitstop/v1/vehicles/WDB1234561A000001/offers", garbage, 1);
	ingest_message(f->in, "pitstop/v1/vehicles//telemetry", garbage, 1);
	ingest_message(f->in, "pitstop/v1/vehicles/WDB1234561A000001/telemetry/x", garbage, 1);
	ingest_message(f->in, NULL, garbage, 1);
	ingest_message(f->in, "pitstop/v1/vehicles/SHORT/telemetry", garbage, 1);
	ingest_message(f->in, "pitstop/v1/vehicles/wdb1234561a000001/status", garbage, 1);
	ingest_message(f->in, "pitstop/v1/vehicles/WDB1234561A0000IO/events", garbage, 1);
	ingest_message(f->in, "pitstop/v1/vehicles/WDB1234561A000001XX/telemetry", garbage, 1);
	ingest_message(f->in, T_TELEMETRY, big, CODEC_MAX_BATCH_BYTES + 1);
	ingest_message(f->in, T_EVENTS, big, CODEC_MAX_EVENT_BYTES + 1);
	ingest_message(f->in, T_STATUS, big, CODEC_MAX_STATUS_BYTES + 1);
	ingest_message(f->in, T_TELEMETRY, garbage, sizeof(garbage));
	ingest_message(f->in, T_EVENTS, garbage, sizeof(garbage));
	ingest_message(f->in, T_STATUS, garbage, sizeof(garbage));
	ingest_message(f->in, T_TELEMETRY, NULL, 0); /* empty batch: seq 0 */
	free(big);
	assert_int_equal(ingest_flush(f->in), 0);

	assert_int_equal(c->received, 16);
	assert_int_equal(c->rejected[REJECT_BAD_TOPIC], 5);
	assert_int_equal(c->rejected[REJECT_BAD_VIN], 4);
	assert_int_equal(c->rejected[REJECT_OVERSIZED], 3);
	assert_int_equal(c->rejected[REJECT_MALFORMED], 4);
	assert_int_equal(c->rejected[REJECT_STORAGE], 0);
	assert_int_equal(c->stored + c->events + c->status, 0);
	assert_int_equal(history_len(f), 0);

	/* and a good message afterwards is stored */
	send_batch(f, 1, 1000, 500, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 1);
	assert_int_equal(history_len(f), 2);
}

static void test_batches_stored_once(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);

	send_batch(f, 1, 1000, 500, 3);
	send_batch(f, 2, 4000, 490, 2);
	send_batch(f, 1, 1000, 500, 3); /* redelivered */
	/* counters count committed work only */
	assert_int_equal(c->stored, 0);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->received, 3);
	assert_int_equal(c->stored, 2);
	assert_int_equal(c->samples_stored, 5);
	assert_int_equal(c->duplicates, 1);
	assert_int_equal(history_len(f), 5);
	send_batch(f, 2, 4000, 490, 2); /* redelivered in a later transaction */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->duplicates, 2);
	assert_int_equal(history_len(f), 5);
}

/* The state of VIN1's offer id (-1: not listed). */
static int offer_state_of(struct fixture *f, const char *id)
{
	struct offer_row *rows = NULL;
	size_t n = 0;
	int more = 0, st = -1;

	assert_int_equal(offer_log_list(f->log, VIN1, &rows, &n, &more), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].id, id) == 0)
			st = (int)rows[i].state;
	free(rows);
	return st;
}

static void test_offer_signed_and_published_after_commit(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	struct crypto_verifier *v = NULL;
	struct signed_offer so;
	struct offer o;
	char pub[600];

	send_batch(f, 1, 1000, 400, 1);
	send_batch(f, 2, 2000, 120, 1);
	assert_int_equal(f->npub, 0); /* not before the commit */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 1);
	assert_string_equal(f->pub[0].topic, "pitstop/v1/vehicles/WDB1234561A000001/offers");

	snprintf(pub, sizeof(pub), "%s/offer-signing.pub", pki_dir);
	assert_int_equal(crypto_verifier_load(pub, &v), 0);
	assert_int_equal(codec_decode_signed_offer(f->pub[0].buf, f->pub[0].len, &so), 0);
	assert_int_equal(crypto_verify(v, so.offer, so.offer_len, so.sig, so.sig_len), 0);
	assert_string_equal(so.key_id, crypto_verifier_key_id(v));
	assert_int_equal(codec_decode_offer(so.offer, so.offer_len, &o), 0);
	assert_string_equal(o.vin, VIN1);
	assert_int_equal(o.kind, OFFER_REFUEL);
	assert_true(o.has_area);
	codec_signed_offer_free(&so);
	crypto_verifier_free(v);

	assert_int_equal(c->offers_sent, 0);
	ingest_published(f->in, f->pub[0].cookie, 1);
	assert_int_equal(c->offers_sent, 1);
	ingest_published(f->in, f->pub[0].cookie, 1); /* unknown now: ignored */
	assert_int_equal(c->offers_sent, 1);
	/* the offer is marked sent by the next commit, not a transaction of its own */
	assert_int_equal(offer_state_of(f, o.id), OFFER_STATE_CREATED);

	/* redelivery and more low batches: no second offer */
	send_batch(f, 2, 2000, 120, 1);
	send_batch(f, 3, 3000, 110, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 1);
	assert_int_equal(offer_state_of(f, o.id), OFFER_STATE_SENT);
}

/*
 * The offer latency: from the arrival of the earliest of the car's batches
 * in the drain to the offer handed to the bus, once per offer; a car without
 * an offer and a job's offer add nothing.
 */
static void test_offer_latency(void **state)
{
	struct fixture *f = *state;
	const struct latency *lat = ingest_offer_latency(f->in);
	uint64_t t0 = loop_now_us() - 5000, t1; /* "received 5 ms ago" */
	struct sample x = gw_sample(1000, 120, 481234567, 115678901);
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_int_equal(codec_encode_batch(EPOCH, 1, &x, 1, &buf, &len), 0);
	ingest_message_at(f->in, "pitstop/v1/vehicles/WDB1234561A000001/telemetry", buf, len, t0);
	free(buf);
	send_batch_of(f, VIN2, EPOCH, 1, 1000, 400, 1); /* no offer */
	assert_int_equal(lat->count, 0);
	assert_int_equal(ingest_flush(f->in), 0);
	t1 = loop_now_us();
	assert_int_equal(f->npub, 1); /* VIN1's offer */
	assert_int_equal(f->nack, 2);
	assert_int_equal(lat->count, 1);
	assert_true(lat->max_us >= 5000 && lat->max_us <= t1 - t0);
	assert_true(latency_percentile(lat, 0.99) >= 5000);
}

/*
 * Makes the step after `skip` more successful ones fail as a backend would
 * (-EIO), and `count` steps from there on (a statement returning rows takes
 * a step per row and one more). Telemetry is stored at
 * the commit. A drain of one batch runs: the batch INSERT, the
 * latest-state upsert, one rollup upsert per day; then the rules: the
 * episode close (fuel high) or open and the offer INSERT (fuel low). A drain
 * of several batches runs the same statements once for all of them; if one
 * fails, the drain is undone and each batch is stored alone, as above.
 */
static void fail_statements(struct fixture *f, unsigned skip, unsigned count)
{
	db_fault_inject(f->db, DB_FAULT_STEP, skip, count, -EIO);
}

static void fail_statement(struct fixture *f, unsigned skip)
{
	fail_statements(f, skip, 1);
}

/* A job's offers (the service reminders): published after its commit, dropped on a rollback. */
static void test_job_offers_after_commit(void **state)
{
	struct fixture *f = *state;
	struct offer o;

	memset(&o, 0, sizeof(o));
	assert_int_equal(offers_new_id(o.id), 0);
	o.kind = OFFER_SERVICE;
	snprintf(o.title, sizeof(o.title), "Service due: oil service");
	snprintf(o.vin, sizeof(o.vin), "%s", VIN1);
	o.valid_from_ms = loop_wall_ms();
	o.valid_until_ms = o.valid_from_ms + 3600000;
	assert_true(ingest_idle(f->in));
	assert_int_equal(ingest_offer_sink(f->in, &o), 0);
	assert_int_equal(f->npub, 0); /* not before the job's transaction ends */
	ingest_job_done(f->in, 0);    /* rolled back: dropped */
	ingest_job_done(f->in, 1);
	assert_int_equal(f->npub, 0);
	assert_int_equal(ingest_offer_sink(f->in, &o), 0);
	ingest_job_done(f->in, 1); /* committed: published */
	assert_int_equal(f->npub, 1);
	assert_int_equal(ingest_offer_latency(f->in)->count, 0); /* no batch behind it */
	assert_non_null(strstr(f->pub[0].topic, VIN1));
}

static void test_storage_error_keeps_running(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);

	send_batch(f, 1, 1000, 500, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	fail_statement(f, 0);
	send_batch(f, 666, 3000, 500, 2); /* fails: undone alone */
	assert_int_equal(ingest_flush(f->in), 0);
	send_batch(f, 2, 5000, 500, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->rejected[REJECT_STORAGE], 1);
	assert_int_equal(c->stored, 2);
	assert_int_equal(history_len(f), 4);

	/* a low-fuel batch that fails records no offer and publishes nothing */
	fail_statement(f, 0);
	send_batch(f, 666, 6000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->rejected[REJECT_STORAGE], 2);
	assert_int_equal(f->npub, 0);
	assert_int_equal(offers_len(f), 0);
	send_batch(f, 3, 7000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 1);
	assert_int_equal(offers_len(f), 1);
}

static void test_failure_after_the_batch_row_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint64_t want[] = { 1, 2 };
	struct telemetry_vehicle v;

	/*
	 * The batch row is in, then the latest-state (1) or the rollup (2)
	 * upsert fails: the savepoint takes the row back with it, so the
	 * car's resend is stored, not taken for a duplicate.
	 */
	for (unsigned skip = 1; skip <= 2; skip++) {
		fail_statement(f, skip);
		send_batch(f, skip, 1000 * skip, 500, 1);
		assert_int_equal(ingest_flush(f->in), 0);
		assert_int_equal(c->rejected[REJECT_STORAGE], skip);
		assert_int_equal(c->stored, 0);
		assert_int_equal(history_len(f), 0);
	}
	assert_int_equal(f->nack, 0);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), -ENOENT);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM telemetry_daily", NULL), 0);
	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 2);
	assert_int_equal(c->duplicates, 0);
	assert_int_equal(history_len(f), 2);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, EPOCH, want, 2);

	/*
	 * Low fuel: the episode is opened, the offer signed, then recording
	 * it fails (the fifth statement). The message is undone as a whole:
	 * no batch, no episode, no offer published; the next low batch issues it.
	 */
	fail_statement(f, 4);
	send_batch(f, 3, 3000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->rejected[REJECT_STORAGE], 3);
	assert_int_equal(f->npub, 0);
	assert_int_equal(offers_len(f), 0);
	assert_false(episode_open(f, VIN1));
	assert_int_equal(history_len(f), 2);
	send_batch(f, 3, 3000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 1);
	assert_int_equal(offers_len(f), 1);
	assert_true(episode_open(f, VIN1));
}

static void test_drain_stored_at_once_or_one_by_one(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint64_t want[] = { 1, 2, 3 }, want3[] = { 7, 666 };
	struct telemetry_vehicle v;

	/* Three batches, one drain: stored at once, one receipt. */
	send_batch(f, 1, 1000, 500, 2);
	send_batch(f, 2, 3000, 500, 2);
	send_batch(f, 3, 5000, 500, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 3);
	assert_int_equal(c->samples_stored, 6);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, EPOCH, want, 3);

	/*
	 * A failure in the middle of storing them at once (the latest-state
	 * upsert, after the batch rows went in) is undone and every batch is
	 * stored on its own: nothing lost, nothing twice.
	 */
	fail_statement(f, 1);
	send_batch(f, 4, 7000, 500, 2);
	send_batch(f, 5, 9000, 500, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 5);
	assert_int_equal(c->duplicates, 0);
	assert_int_equal(c->rejected[REJECT_STORAGE], 0);
	assert_int_equal(history_len(f), 10);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.batches, 5);
	assert_int_equal(v.samples, 10);

	/*
	 * A batch that fails again on its own costs only itself. Faults count
	 * steps: the INSERT of the three takes four (a row back for each, then
	 * done), the fifth (the latest-state upsert) fails, and so does the
	 * next, batch 6's INSERT on its own.
	 */
	fail_statements(f, 4, 2);
	send_batch(f, 6, 11000, 500, 1);
	send_batch(f, 666, 12000, 500, 1);
	send_batch(f, 7, 13000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->rejected[REJECT_STORAGE], 1);
	assert_int_equal(c->stored, 7);
	assert_int_equal(history_len(f), 12);
	assert_int_equal(f->nack, 3);
	assert_ack(f, 2, VIN1, EPOCH, want3, 2); /* not 6: the car sends it again */
}

static void test_busy_retried_once(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);

	/* another instance held a lock once: the message is run again and stored */
	db_fault_inject(f->db, DB_FAULT_STEP, 0, 1, -EBUSY);
	send_batch(f, 1, 1000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 1);
	assert_int_equal(c->rejected[REJECT_STORAGE], 0);
	/* twice in a row: given up on (the car resends) */
	db_fault_inject(f->db, DB_FAULT_STEP, 0, 2, -EBUSY);
	send_batch(f, 2, 2000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 1);
	assert_int_equal(c->rejected[REJECT_STORAGE], 1);
	assert_int_equal(history_len(f), 1);
	assert_int_equal(f->nack, 1); /* only the stored one is acknowledged */
}

static void test_savepoint_failure_aborts_transaction(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint64_t want[] = { 1, 2 };

	/* when the drain cannot even be isolated, the whole transaction goes */
	send_batch(f, 1, 1000, 500, 1);
	db_fault_inject(f->db, DB_FAULT_SAVEPOINT, 0, 1, -EIO);
	send_batch(f, 2, 2000, 500, 1);
	assert_true(ingest_flush(f->in) < 0);
	assert_int_equal(c->rejected[REJECT_STORAGE], 2); /* both messages lost */
	assert_int_equal(ingest_flush(f->in), 0);	  /* nothing left to commit */
	assert_int_equal(c->stored, 0);
	assert_int_equal(history_len(f), 0);
	assert_int_equal(f->nack, 0); /* and no receipt for what was lost */

	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 2);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, EPOCH, want, 2);
}

static void test_commit_failure_rolls_back(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);

	db_fault_inject(f->db, DB_FAULT_COMMIT, 0, 1, -ENOSPC);
	send_batch(f, 1, 1000, 500, 2);
	send_batch(f, 2, 3000, 100, 1); /* low fuel: offer pending */
	assert_int_equal(ingest_flush(f->in), -ENOSPC);
	assert_int_equal(c->rejected[REJECT_STORAGE], 2);
	assert_int_equal(c->stored, 0);
	assert_int_equal(f->npub, 0);
	assert_int_equal(history_len(f), 0);
	assert_int_equal(offers_len(f), 0);
	assert_false(episode_open(f, VIN1));

	/* the disk has room again (the fault fired once); the car resends */
	send_batch(f, 1, 1000, 500, 2);
	send_batch(f, 2, 3000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 2);
	assert_int_equal(f->npub, 1);
	assert_int_equal(history_len(f), 3);
}

/* Every 5 ms: stops the loop once an offer was published (or after 10 s). */
static void poll_published(void *arg)
{
	struct fixture *f = arg;
	static int polls;

	if (f->npub > 0 || ++polls > 2000) {
		polls = 0;
		loop_stop(f->loop);
		return;
	}
	assert_true(loop_add_timer(f->loop, 5, poll_published, f) > 0);
}

/*
 * With the signing thread, an offer is published once its transaction
 * committed and its signature came back (through the loop), not before;
 * the signature of an offer whose transaction was rolled back is dropped.
 */
static void test_offer_signed_on_the_thread(void **state)
{
	struct fixture *f = *state;
	struct crypto_verifier *v = NULL;
	struct signed_offer so;
	struct offer o;
	char pub[600];

	stop_ingest(f);
	start_ingest_signing(f, 0, 1);
	db_fault_inject(f->db, DB_FAULT_COMMIT, 0, 1, -ENOSPC);
	send_batch(f, 1, 1000, 500, 2);
	send_batch(f, 2, 3000, 100, 1); /* low fuel: an offer, to the thread */
	assert_int_equal(ingest_flush(f->in), -ENOSPC);
	assert_int_equal(offers_len(f), 0);

	send_batch(f, 1, 1000, 500, 2); /* the car resends */
	send_batch(f, 2, 3000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(offers_len(f), 1);
	assert_int_equal(f->npub, 0); /* the signature comes back through the loop */
	assert_true(loop_add_timer(f->loop, 5, poll_published, f) > 0);
	assert_int_equal(loop_run(f->loop), 0);
	/* Answers come back in order: the rolled-back offer's was dropped first. */
	assert_int_equal(f->npub, 1);
	snprintf(pub, sizeof(pub), "%s/offer-signing.pub", pki_dir);
	assert_int_equal(crypto_verifier_load(pub, &v), 0);
	assert_int_equal(codec_decode_signed_offer(f->pub[0].buf, f->pub[0].len, &so), 0);
	assert_int_equal(crypto_verify(v, so.offer, so.offer_len, so.sig, so.sig_len), 0);
	assert_int_equal(codec_decode_offer(so.offer, so.offer_len, &o), 0);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM offers WHERE id = $1", o.id), 1);
	codec_signed_offer_free(&so);
	crypto_verifier_free(v);
}

/* The order of the first receipt published to vin's acks topic, or 0. */
static unsigned receipt_order(const struct fixture *f, const char *vin)
{
	char topic[128];

	snprintf(topic, sizeof(topic), "pitstop/v1/vehicles/%s/acks", vin);
	for (int i = 0; i < f->nack; i++)
		if (strcmp(f->ack[i].topic, topic) == 0)
			return f->ack[i].order;
	return 0;
}

/* What poll_until() waits for: npub offers and a receipt for vin. */
struct wait_for {
	struct fixture *f;
	int npub;
	const char *vin;
	int polls;
};

/* Every millisecond: stops the loop once w is met (or after 20 s). */
static void poll_until(void *arg)
{
	struct wait_for *w = arg;

	if ((w->f->npub >= w->npub && receipt_order(w->f, w->vin)) || ++w->polls > 20000) {
		loop_stop(w->f->loop);
		return;
	}
	assert_true(loop_add_timer(w->f->loop, 1, poll_until, w) > 0);
}

/* Every millisecond: lets the signing thread go once vin's receipt is out. */
static void resume_after_receipt(void *arg)
{
	struct wait_for *w = arg;

	if (receipt_order(w->f, w->vin) || w->polls > 20000) {
		sign_worker_pause(ingest_sign_worker(w->f->in), 0);
		return;
	}
	assert_true(loop_add_timer(w->f->loop, 1, resume_after_receipt, w) > 0);
}

/*
 * With the signing thread and a hold of sign_hold_ms (0: SIGN_HOLD_MS):
 * VIN1's low batch is committed with its offer still in the thread (held
 * there until VIN2's receipt is out when paused), then VIN2's batch opens
 * the next transaction; runs the loop until both are published.
 */
static void offer_then_next_transaction(struct fixture *f, unsigned sign_hold_ms, int paused)
{
	struct wait_for w = { .f = f, .npub = 1, .vin = VIN2 };

	stop_ingest(f);
	start_ingest_holding(f, 0, 1, sign_hold_ms);
	send_batch(f, 1, 1000, 500, 2);
	sign_worker_pause(ingest_sign_worker(f->in), paused);
	send_batch(f, 2, 3000, 100, 1); /* low fuel: an offer, to the thread */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 0); /* committed; its signature comes through the loop */
	send_batch_of(f, VIN2, EPOCH, 1, 1000, 500, 1); /* opens the next transaction */
	assert_int_equal(receipt_order(f, VIN2), 0);
	if (paused)
		assert_true(loop_add_timer(f->loop, 1, resume_after_receipt, &w) > 0);
	assert_true(loop_add_timer(f->loop, 1, poll_until, &w) > 0);
	assert_int_equal(loop_run(f->loop), 0);
	assert_int_equal(f->npub, 1); /* the offer went out, once */
	assert_true(receipt_order(f, VIN2) > 0);
}

/*
 * An offer whose transaction committed waits only for its signature; the
 * next transaction's commit (an fsync that blocks the loop) waits for that
 * signature instead of holding it up, so the offer goes out first. (A hold
 * of 10 s here, so that a slow machine cannot end it first.)
 */
static void test_commit_waits_for_a_signature(void **state)
{
	struct fixture *f = *state;

	offer_then_next_transaction(f, 10000, 0);
	assert_true(f->pub[0].order < receipt_order(f, VIN2));
}

/*
 * ... but not for long: with the signing thread stopped (a test hook), the
 * next transaction still commits, after SIGN_HOLD_MS, and its receipt goes
 * out before the offer; then the offer follows.
 */
static void test_commit_waits_for_a_signature_briefly(void **state)
{
	struct fixture *f = *state;

	offer_then_next_transaction(f, 0, 1);
	assert_true(receipt_order(f, VIN2) < f->pub[0].order);
}

static void test_commit_every_max_pending(void **state)
{
	struct fixture *f = *state;
	const struct counters *c;

	stop_ingest(f);
	start_ingest(f, 3);
	c = ingest_counters(f->in);
	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	assert_int_equal(c->stored, 0);
	send_batch(f, 3, 3000, 500, 1);
	assert_int_equal(c->stored, 3); /* committed at the third */
	send_batch(f, 4, 4000, 500, 1);
	assert_int_equal(c->stored, 3);
}

static void stop_loop(void *arg)
{
	loop_stop(arg);
}

static void test_commit_timer(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);

	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	assert_int_equal(c->stored, 0);
	assert_true(loop_add_timer(f->loop, 50, stop_loop, f->loop) > 0);
	assert_int_equal(loop_run(f->loop), 0);
	assert_int_equal(c->stored, 2);
}

static void test_events_and_status(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	struct offer_event ev = { .time_ms = 5000, .action = OFFER_ACTION_ACCEPTED };
	struct agent_status st = { .state = AGENT_ONLINE, .time_ms = 100 };
	struct offer_row *rows = NULL;
	struct telemetry_vehicle v;
	struct offer o;
	struct signed_offer so;
	uint8_t *buf = NULL;
	size_t len = 0, n = 0;
	int more = -1;

	send_batch(f, 1, 1000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 1);
	assert_int_equal(codec_decode_signed_offer(f->pub[0].buf, f->pub[0].len, &so), 0);
	assert_int_equal(codec_decode_offer(so.offer, so.offer_len, &o), 0);
	codec_signed_offer_free(&so);

	snprintf(ev.offer_id, sizeof(ev.offer_id), "%s", o.id);
	assert_int_equal(codec_encode_offer_event(&ev, &buf, &len), 0);
	ingest_message(f->in, T_EVENTS, buf, len);
	ingest_message(f->in, T_EVENTS, buf, len); /* redelivered */
	free(buf);
	snprintf(ev.offer_id, sizeof(ev.offer_id), "unknown-offer");
	assert_int_equal(codec_encode_offer_event(&ev, &buf, &len), 0);
	ingest_message(f->in, T_EVENTS, buf, len);
	free(buf);
	assert_int_equal(codec_encode_status(&st, &buf, &len), 0);
	ingest_message(f->in, T_STATUS, buf, len);
	free(buf);
	assert_int_equal(ingest_flush(f->in), 0);

	/* all three handled; the unknown one counted apart, the redelivered one stored once */
	assert_int_equal(c->events, 2);
	assert_int_equal(c->events_unknown, 1);
	assert_int_equal(c->rejected[REJECT_STORAGE], 0);
	assert_int_equal(
		query_int(f->db, "SELECT COUNT(*) FROM offer_events WHERE offer_id = $1", o.id), 1);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM offer_events", NULL), 1);
	assert_int_equal(c->status, 1);
	assert_int_equal(offer_log_list(f->log, VIN1, &rows, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].state, OFFER_STATE_ACCEPTED);
	free(rows);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.online, TELEMETRY_ONLINE);
}

static void test_counters_persist(void **state)
{
	struct fixture *f = *state;
	struct counters got;
	struct db *ro = NULL;
	char url[512], err[512];

	send_batch(f, 1, 1000, 500, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	/* saved with the data they count: another process (pitstopctl) sees them */
	assert_int_equal(db_test_url(f->name, url, sizeof(url)), 0);
	assert_int_equal(schema_open(url, DB_READ_ONLY, &ro, err, sizeof(err)), 0);
	assert_int_equal(counters_load(ro, "gw-test", &got), 0);
	assert_int_equal(got.stored, 1);
	assert_int_equal(got.samples_stored, 2);
	/* a reject alone is saved by the timer (or here, by hand) */
	ingest_message(f->in, "bad", NULL, 0);
	assert_int_equal(ingest_save_counters(f->in), 0);
	assert_int_equal(counters_load(ro, "gw-test", &got), 0);
	assert_int_equal(got.received, 2);
	assert_int_equal(got.stored, 1);
	assert_int_equal(got.samples_stored, 2);
	assert_int_equal(got.rejected[REJECT_BAD_TOPIC], 1);
	db_close(ro);

	/* a restarted gateway keeps counting from there */
	stop_ingest(f);
	start_ingest(f, 0);
	assert_int_equal(ingest_counters(f->in)->received, 2);
	send_batch(f, 2, 5000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(ingest_counters(f->in)->received, 3);
	assert_int_equal(ingest_counters(f->in)->stored, 2);
}

static void test_outbox_waits_for_the_bus(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);

	f->publish_result = -ENOTCONN;
	send_batch(f, 1, 1000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 0);
	assert_int_equal(c->offers_failed, 0);
	f->publish_result = 0;
	ingest_connected(f->in);
	assert_int_equal(f->npub, 1);
	/* in flight when the connection dropped: sent again */
	ingest_connected(f->in);
	assert_int_equal(f->npub, 2);
	ingest_published(f->in, f->pub[1].cookie, 0); /* refused by the broker */
	assert_int_equal(c->offers_failed, 1);
	assert_int_equal(c->offers_sent, 0);
}

static void test_no_signer(void **state)
{
	struct fixture *f = *state;
	const struct counters *c;

	stop_ingest(f);
	crypto_signer_free(f->signer);
	f->signer = NULL;
	start_ingest(f, 0);
	send_batch(f, 1, 1000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	c = ingest_counters(f->in);
	assert_int_equal(c->stored, 1);
	assert_int_equal(c->offers_failed, 1);
	assert_false(episode_open(f, VIN1)); /* so a signer, once there, gets the offer out */
	assert_int_equal(offers_len(f), 0);
}

/* ---- receipts ---- */

static void test_receipt_after_commit(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint64_t want[] = { 7 };
	struct counters got;

	send_batch(f, 7, 1000, 500, 2);
	assert_int_equal(f->nack, 0); /* not before the commit */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, EPOCH, want, 1);
	assert_int_equal(history_len(f), 2); /* named only once it is stored */

	/* acks_sent counts broker acknowledgements, and is saved */
	assert_int_equal(c->acks_sent, 0);
	ingest_published(f->in, f->ack[0].cookie, 1);
	assert_int_equal(c->acks_sent, 1);
	assert_int_equal(c->offers_sent, 0);
	ingest_published(f->in, f->ack[0].cookie, 1); /* unknown now: ignored */
	assert_int_equal(c->acks_sent, 1);
	assert_int_equal(ingest_save_counters(f->in), 0);
	assert_int_equal(counters_load(f->db, "gw-test", &got), 0);
	assert_int_equal(got.acks_sent, 1);

	/* a commit with no telemetry in it sends no receipt */
	ingest_message(f->in, "bad", NULL, 0);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
}

static void test_receipt_for_duplicate(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint64_t want[] = { 3 };

	send_batch(f, 3, 1000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	send_batch(f, 3, 1000, 500, 1); /* the car missed the receipt */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->duplicates, 1);
	assert_int_equal(c->stored, 1);
	assert_int_equal(f->nack, 2);
	assert_ack(f, 0, VIN1, EPOCH, want, 1);
	assert_ack(f, 1, VIN1, EPOCH, want, 1);
}

static void test_receipt_one_per_vin(void **state)
{
	struct fixture *f = *state;
	static const uint64_t want[] = { 4, 5 };

	send_batch(f, 5, 5000, 500, 1);
	send_batch(f, 4, 4000, 500, 1);
	send_batch(f, 5, 5000, 500, 1); /* redelivered in the same drain: named once */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, EPOCH, want, 2);
}

static void test_receipt_per_vin(void **state)
{
	struct fixture *f = *state;
	static const uint64_t want1[] = { 1, 2 }, want2[] = { 1 };
	int i1, i2;

	send_batch_of(f, VIN2, EPOCH, 1, 1000, 500, 1);
	send_batch_of(f, VIN1, EPOCH, 1, 1000, 500, 1);
	send_batch_of(f, VIN1, EPOCH, 2, 2000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 2);
	i1 = strstr(f->ack[0].topic, VIN1) ? 0 : 1; /* order between VINs is not promised */
	i2 = 1 - i1;
	assert_ack(f, i1, VIN1, EPOCH, want1, 2);
	assert_ack(f, i2, VIN2, EPOCH, want2, 1);
	assert_int_not_equal(f->ack[0].cookie, f->ack[1].cookie);
}

static void test_no_receipt_on_commit_failure(void **state)
{
	struct fixture *f = *state;
	static const uint64_t want3[] = { 3 }, want[] = { 1, 2 };

	db_fault_inject(f->db, DB_FAULT_COMMIT, 0, 1, -ENOSPC);
	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	assert_int_equal(ingest_flush(f->in), -ENOSPC);
	assert_int_equal(f->nack, 0);
	assert_int_equal(history_len(f), 0);

	/* the next transaction's receipt does not name the lost batches */
	send_batch(f, 3, 3000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, EPOCH, want3, 1);

	/* the car resends them: now they are stored, and acknowledged */
	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 2);
	assert_ack(f, 1, VIN1, EPOCH, want, 2);
}

static void test_no_receipt_for_rejects(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x08 };
	static const uint64_t want[] = { 9 };
	struct agent_status st = { .state = AGENT_ONLINE, .time_ms = 100 };
	uint8_t *big = calloc(1, CODEC_MAX_BATCH_BYTES + 1);
	uint8_t *buf = NULL;
	size_t len = 0;

	ingest_message(f->in, T_TELEMETRY, garbage, sizeof(garbage));	    /* malformed */
	ingest_message(f->in, T_TELEMETRY, big, CODEC_MAX_BATCH_BYTES + 1); /* oversized */
	ingest_message(f->in, "pitstop/v1/vehicles/SHORT/telemetry", garbage, 1);
	fail_statement(f, 0);
	send_batch(f, 666, 1000, 500, 1); /* storage fails (at the commit) */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(codec_encode_status(&st, &buf, &len), 0);
	ingest_message(f->in, T_STATUS, buf, len); /* not telemetry */
	free(buf);
	free(big);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->rejected[REJECT_MALFORMED], 1);
	assert_int_equal(c->rejected[REJECT_OVERSIZED], 1);
	assert_int_equal(c->rejected[REJECT_BAD_VIN], 1);
	assert_int_equal(c->rejected[REJECT_STORAGE], 1);
	assert_int_equal(c->status, 1);
	assert_int_equal(f->nack, 0);

	/*
	 * Beside a good batch, only the good one is named: storing both at once
	 * fails, then storing 666 alone fails too.
	 */
	fail_statements(f, 0, 2);
	send_batch(f, 666, 1000, 500, 1);
	send_batch(f, 9, 9000, 500, 1);
	ingest_message(f->in, T_TELEMETRY, garbage, sizeof(garbage));
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, EPOCH, want, 1);
}

static void test_receipt_split_over_limit(void **state)
{
	struct fixture *f = *state;
	const size_t total = CODEC_MAX_ACK_SEQS + 1;
	uint64_t *seqs = NULL, epoch = 0;
	size_t n0 = 0, n1 = 0;

	stop_ingest(f);
	start_ingest(f, total + 10);
	for (uint64_t s = 1; s <= total; s++)
		send_batch(f, s, (int64_t)s * 1000, 500, 1);
	assert_int_equal(f->nack, 0);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(ingest_counters(f->in)->stored, total);
	assert_int_equal(f->nack, 2);
	assert_int_equal(codec_decode_ack(f->ack[0].buf, f->ack[0].len, &epoch, NULL, &seqs, &n0),
			 0);
	assert_true(epoch == EPOCH);
	assert_int_equal(n0, CODEC_MAX_ACK_SEQS);
	for (size_t k = 0; k < n0; k++)
		assert_int_equal(seqs[k], k + 1);
	free(seqs);
	seqs = NULL;
	epoch = 0;
	assert_int_equal(codec_decode_ack(f->ack[1].buf, f->ack[1].len, &epoch, NULL, &seqs, &n1),
			 0);
	assert_true(epoch == EPOCH);
	assert_int_equal(n1, 1);
	assert_int_equal(seqs[0], total);
	free(seqs);
}

static void test_receipt_at_max_pending_commit(void **state)
{
	struct fixture *f = *state;
	static const uint64_t want[] = { 1, 2 }, want2[] = { 3 };

	stop_ingest(f);
	start_ingest(f, 2);
	send_batch(f, 1, 1000, 500, 1);
	assert_int_equal(f->nack, 0);
	send_batch(f, 2, 2000, 500, 1); /* the transaction is full: committed */
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, EPOCH, want, 2);
	send_batch(f, 3, 3000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 2);
	assert_ack(f, 1, VIN1, EPOCH, want2, 1);
}

static void test_receipts_wait_for_the_bus(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint64_t want[] = { 1 }, want2[] = { 2 };

	/* down: the receipt waits (not dropped at once) and goes out on reconnect */
	f->publish_result = -ENOTCONN;
	send_batch(f, 1, 1000, 100, 1); /* low fuel: an offer too */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 0);
	assert_int_equal(f->npub, 0);
	f->publish_result = 0;
	ingest_connected(f->in);
	assert_int_equal(f->nack, 1);
	assert_int_equal(f->npub, 1);
	assert_ack(f, 0, VIN1, EPOCH, want, 1);
	/* the two outboxes never share a cookie, and each counts its own */
	assert_int_not_equal(f->ack[0].cookie, f->pub[0].cookie);
	ingest_published(f->in, f->pub[0].cookie, 1);
	assert_int_equal(c->offers_sent, 1);
	assert_int_equal(c->acks_sent, 0);
	ingest_published(f->in, f->ack[0].cookie, 0); /* refused: not sent, not an offer */
	assert_int_equal(c->acks_sent, 0);
	assert_int_equal(c->offers_failed, 0);

	/* busy (all in-flight slots taken): published once the broker answers */
	f->publish_result = -EAGAIN;
	send_batch(f, 2, 2000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	f->publish_result = 0;
	ingest_published(f->in, 12345, 1); /* some other answer frees a slot */
	assert_int_equal(f->nack, 2);
	assert_ack(f, 1, VIN1, EPOCH, want2, 1);
}

static void test_receipt_per_epoch(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint64_t want1[] = { 1, 2 }, want2[] = { 1 }, want0[] = { 5 };
	int i1 = -1, i2 = -1;

	/*
	 * One transaction holds batches of two epochs of one car (the queue
	 * was wiped while old batches were still on their way), and a
	 * pre-epoch car (epoch 0): one receipt per (VIN, epoch), each naming
	 * its epoch, so the car deletes only what its current queue sent.
	 */
	send_batch_of(f, VIN1, EPOCH, 1, 1000, 500, 1);
	send_batch_of(f, VIN1, EPOCH2, 1, 9000, 500, 1);
	send_batch_of(f, VIN1, EPOCH, 2, 2000, 500, 1);
	send_batch_of(f, VIN2, 0, 5, 5000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 4);
	assert_int_equal(c->duplicates, 0);
	assert_int_equal(f->nack, 3);
	for (int i = 0; i < 3; i++) {
		if (strstr(f->ack[i].topic, VIN2)) {
			assert_ack(f, i, VIN2, 0, want0, 1);
			continue;
		}
		if (ack_epoch(f, i) == EPOCH)
			i1 = i;
		else
			i2 = i;
	}
	assert_true(i1 >= 0 && i2 >= 0);
	assert_ack(f, i1, VIN1, EPOCH, want1, 2);
	assert_ack(f, i2, VIN1, EPOCH2, want2, 1);
	assert_int_not_equal(f->ack[i1].cookie, f->ack[i2].cookie);
}

static void test_wiped_car_is_new_data(void **state)
{
	struct fixture *f = *state;
	const struct counters *c = ingest_counters(f->in);
	static const uint64_t want_old[] = { 1, 2, 3 }, want_new[] = { 1 }, want2[] = { 2 };
	struct telemetry_sample *rows = NULL;
	struct telemetry_vehicle v;
	size_t n = 0;
	int truncated = 0;

	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	send_batch(f, 3, 3000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, EPOCH, want_old, 3);

	/* wiped: a new epoch, and its seqs start at 1 again: stored, not duplicates */
	send_batch_of(f, VIN1, EPOCH2, 1, 10000, 400, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 4);
	assert_int_equal(c->duplicates, 0);
	assert_int_equal(c->samples_stored, 5);
	assert_int_equal(history_len(f), 5);
	assert_int_equal(f->nack, 2);
	assert_ack(f, 1, VIN1, EPOCH2, want_new, 1);
	assert_int_equal(telemetry_vehicle_get(f->t, VIN1, &v), 0);
	assert_int_equal(v.time_ms, 11000);
	assert_int_equal(v.fuel_permille, 400);
	assert_int_equal(v.batches, 4);
	assert_int_equal(telemetry_history(f->t, VIN1, 10000, 11000, 0, &rows, &n, &truncated), 0);
	assert_int_equal(n, 2);
	assert_true(rows[0].epoch == EPOCH2 && rows[0].seq == 1);
	free(rows);

	/* a late resend of the old queue is still a duplicate, acknowledged in its epoch */
	send_batch(f, 2, 2000, 500, 1);
	send_batch_of(f, VIN1, EPOCH2, 1, 10000, 400, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->duplicates, 2);
	assert_int_equal(c->stored, 4);
	assert_int_equal(history_len(f), 5);
	assert_int_equal(f->nack, 4);
	if (ack_epoch(f, 2) == EPOCH) {
		assert_ack(f, 2, VIN1, EPOCH, want2, 1);
		assert_ack(f, 3, VIN1, EPOCH2, want_new, 1);
	} else {
		assert_ack(f, 3, VIN1, EPOCH, want2, 1);
		assert_ack(f, 2, VIN1, EPOCH2, want_new, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_messages_counted_and_skipped, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_batches_stored_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offer_latency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offer_signed_and_published_after_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_job_offers_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_storage_error_keeps_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_after_the_batch_row_leaves_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_busy_retried_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drain_stored_at_once_or_one_by_one, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_savepoint_failure_aborts_transaction, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_commit_failure_rolls_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offer_signed_on_the_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_waits_for_a_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_waits_for_a_signature_briefly, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_commit_every_max_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_timer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_and_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_outbox_waits_for_the_bus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_signer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt_after_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt_for_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt_one_per_vin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt_per_vin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_receipt_on_commit_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_receipt_for_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt_split_over_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt_at_max_pending_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_receipts_wait_for_the_bus, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt_per_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wiped_car_is_new_data, setup, teardown),
	};
	char err[256];

	gw_test_path(pki_dir, sizeof(pki_dir), "pki");
	if (pki_init(pki_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "pki_init: %s\n", err);
		return 1;
	}
	fprintf(stderr, "ingest tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
