/*
 * Unit tests of ingest (gateway/ingest.c) with the real codec, crypto and a
 * real SQLite store, a real loop (run only where the commit timer is under
 * test) and a fake publisher: bad messages are counted by reason and
 * skipped; batches are stored once; offers are signed, published only after
 * the commit, and verify; storage errors (a SQLite trigger that aborts, a
 * store whose commit fails) are counted and the gateway keeps going;
 * counters are saved and loaded; the outbox retries while disconnected;
 * telemetry receipts (TelemetryAck) name exactly the batches a commit made
 * safe, stored or duplicate, one receipt per VIN, and nothing else.
 */
#include "gw_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "codec.h"
#include "crypto.h"
#include "ingest.h"
#include "loop.h"
#include "pki.h"
#include "rules.h"
#include "store.h"

static const char VIN1[] = "WDB1234561A000001";
static const char VIN2[] = "WDB1234561A000002";
static const char T_TELEMETRY[] = "pitstop/v1/vehicles/WDB1234561A000001/telemetry";
static const char T_EVENTS[] = "pitstop/v1/vehicles/WDB1234561A000001/events";
static const char T_STATUS[] = "pitstop/v1/vehicles/WDB1234561A000001/status";

static char pki_dir[512];

/* ---- a store wrapper whose commit can be made to fail ---- */

struct wrap {
	struct store base;
	struct store *in;	/* owned */
	int fail_commit;
};

#define IN(s) (((struct wrap *)(s))->in)
static void w_close(struct store *s) { store_close(IN(s)); free(s); }
static int w_begin(struct store *s) { return IN(s)->ops->begin(IN(s)); }
static int w_commit(struct store *s)
{
	if (((struct wrap *)s)->fail_commit)
		return -ENOSPC;
	return IN(s)->ops->commit(IN(s));
}
static int w_rollback(struct store *s) { return IN(s)->ops->rollback(IN(s)); }
static int w_savepoint(struct store *s) { return IN(s)->ops->savepoint(IN(s)); }
static int w_release(struct store *s) { return IN(s)->ops->release(IN(s)); }
static int w_rollback_to(struct store *s) { return IN(s)->ops->rollback_to(IN(s)); }
static int w_put_batch(struct store *s, const char *vin, uint64_t seq, const struct sample *x,
		       size_t n, int64_t t, int *dup)
{
	return IN(s)->ops->put_batch(IN(s), vin, seq, x, n, t, dup);
}
static int w_update_latest(struct store *s, const char *vin, const struct sample *x, size_t n)
{
	return IN(s)->ops->update_latest(IN(s), vin, x, n);
}
static int w_vehicle_get(struct store *s, const char *vin, struct store_vehicle *v)
{
	return IN(s)->ops->vehicle_get(IN(s), vin, v);
}
static int w_vehicle_history(struct store *s, const char *vin, size_t limit,
			     struct store_history_row **rows, size_t *n)
{
	return IN(s)->ops->vehicle_history(IN(s), vin, limit, rows, n);
}
static int w_put_status(struct store *s, const char *vin, const struct agent_status *st,
			int64_t t)
{
	return IN(s)->ops->put_status(IN(s), vin, st, t);
}
static int w_episode_get(struct store *s, const char *vin, const char *rule, int *open)
{
	return IN(s)->ops->episode_get(IN(s), vin, rule, open);
}
static int w_episode_set(struct store *s, const char *vin, const char *rule, int open, int64_t t)
{
	return IN(s)->ops->episode_set(IN(s), vin, rule, open, t);
}
static int w_offer_put(struct store *s, const struct offer *o, int64_t t)
{
	return IN(s)->ops->offer_put(IN(s), o, t);
}
static int w_offer_event(struct store *s, const char *vin, const struct offer_event *ev,
			 int64_t t)
{
	return IN(s)->ops->offer_event(IN(s), vin, ev, t);
}
static int w_offer_list(struct store *s, const char *vin, struct store_offer_row **rows,
			size_t *n)
{
	return IN(s)->ops->offer_list(IN(s), vin, rows, n);
}
static int w_counters_save(struct store *s, const char *id, const struct store_counters *c,
			   int64_t t)
{
	return IN(s)->ops->counters_save(IN(s), id, c, t);
}
static int w_counters_load(struct store *s, const char *id, struct store_counters *c)
{
	return IN(s)->ops->counters_load(IN(s), id, c);
}
static int w_counters_list(struct store *s, struct store_instance **rows, size_t *n)
{
	return IN(s)->ops->counters_list(IN(s), rows, n);
}

static const struct store_ops wrap_ops = {
	.name = "wrap", .close = w_close, .begin = w_begin, .commit = w_commit,
	.rollback = w_rollback, .savepoint = w_savepoint, .release = w_release,
	.rollback_to = w_rollback_to, .put_batch = w_put_batch,
	.update_latest = w_update_latest, .vehicle_get = w_vehicle_get,
	.vehicle_history = w_vehicle_history, .put_status = w_put_status,
	.episode_get = w_episode_get, .episode_set = w_episode_set, .offer_put = w_offer_put,
	.offer_event = w_offer_event, .offer_list = w_offer_list,
	.counters_save = w_counters_save, .counters_load = w_counters_load,
	.counters_list = w_counters_list,
};

/* ---- fixture ---- */

#define MAX_PUBLISHED 8
#define MAX_ACKS 16

struct published {
	char topic[128];
	uint8_t *buf;	/* owned */
	size_t len;
	uint64_t cookie;
};

struct fixture {
	char path[512];
	struct loop *loop;
	struct store *s;
	struct wrap *w;
	struct crypto_signer *signer;
	struct ingest *in;
	struct rules *rules;
	struct published pub[MAX_PUBLISHED];	/* offers */
	int npub;
	struct published ack[MAX_ACKS];		/* receipts (topic .../acks) */
	int nack;
	int publish_result;	/* what the fake publisher returns */
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
	memcpy(p->buf, buf, len);
	p->len = len;
	p->cookie = cookie;
	return 0;
}

static void start_ingest(struct fixture *f, size_t max_pending)
{
	struct ingest_params ip = {
		.loop = f->loop, .store = f->s, .signer = f->signer, .instance_id = "gw-test",
		.publish = fake_publish, .publish_arg = f, .max_pending = max_pending,
		.no_timers = 1,
	};
	struct rules_config rc = { .low_fuel_pct = 15, .low_fuel_rearm_pct = 10,
				   .offer_valid_s = 3600 };

	assert_int_equal(ingest_new(&ip, &f->in), 0);
	assert_int_equal(rules_new(&rc, f->s, ingest_offer_sink, f->in, &f->rules), 0);
	ingest_set_rules(f->in, f->rules);
}

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));
	char name[64], err[256], key[600];

	snprintf(name, sizeof(name), "ingest-%d.db", count++);
	gw_test_path(f->path, sizeof(f->path), name);
	assert_int_equal(loop_new(&f->loop), 0);
	f->w = calloc(1, sizeof(*f->w));
	f->w->base.ops = &wrap_ops;
	assert_int_equal(store_open(f->path, STORE_READ_WRITE, &f->w->in, err, sizeof(err)), 0);
	f->s = &f->w->base;
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
	store_close(f->s);
	crypto_signer_free(f->signer);
	loop_free(f->loop);
	for (int i = 0; i < f->npub; i++)
		free(f->pub[i].buf);
	for (int i = 0; i < f->nack; i++)
		free(f->ack[i].buf);
	free(f);
	return 0;
}

/* Sends vin an encoded batch of n samples starting at t with fuel. */
static void send_batch_of(struct fixture *f, const char *vin, uint64_t seq, int64_t t,
			  int32_t fuel, size_t n)
{
	struct sample x[8];
	char topic[128];
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		x[i] = gw_sample(t + 1000 * (int64_t)i, fuel, 481234567, 115678901);
	assert_int_equal(codec_encode_batch(0, seq, x, n, &buf, &len), 0);
	snprintf(topic, sizeof(topic), "pitstop/v1/vehicles/%s/telemetry", vin);
	ingest_message(f->in, topic, buf, len);
	free(buf);
}

/* Sends VIN1 an encoded batch of n samples starting at t with fuel. */
static void send_batch(struct fixture *f, uint64_t seq, int64_t t, int32_t fuel, size_t n)
{
	send_batch_of(f, VIN1, seq, t, fuel, n);
}

/*
 * Checks that receipt i went to vin's acks topic and names exactly the n
 * seqs in want, in that order.
 */
static void assert_ack(struct fixture *f, int i, const char *vin, const uint64_t *want,
		       size_t n)
{
	char topic[128];
	uint64_t *seqs = NULL;
	size_t got = 0;

	assert_true(i < f->nack);
	snprintf(topic, sizeof(topic), "pitstop/v1/vehicles/%s/acks", vin);
	assert_string_equal(f->ack[i].topic, topic);
	assert_int_equal(codec_decode_ack(f->ack[i].buf, f->ack[i].len, NULL, &seqs, &got), 0);
	assert_int_equal(got, n);
	for (size_t k = 0; k < n; k++)
		assert_int_equal(seqs[k], want[k]);
	free(seqs);
}

static size_t history_len(struct fixture *f)
{
	struct store_history_row *rows = NULL;
	size_t n = 0;
	int r = f->s->ops->vehicle_history(f->s, VIN1, 0, &rows, &n);

	free(rows);
	return r == -ENOENT ? 0 : n;
}

/* ---- tests ---- */

static void test_bad_messages_counted_and_skipped(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c = ingest_counters(f->in);
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
	ingest_message(f->in, T_TELEMETRY, NULL, 0);	/* empty batch: seq 0 */
	free(big);
	assert_int_equal(ingest_flush(f->in), 0);

	assert_int_equal(c->received, 16);
	assert_int_equal(c->rejected[STORE_REJECT_BAD_TOPIC], 5);
	assert_int_equal(c->rejected[STORE_REJECT_BAD_VIN], 4);
	assert_int_equal(c->rejected[STORE_REJECT_OVERSIZED], 3);
	assert_int_equal(c->rejected[STORE_REJECT_MALFORMED], 4);
	assert_int_equal(c->rejected[STORE_REJECT_STORAGE], 0);
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
	const struct store_counters *c = ingest_counters(f->in);

	send_batch(f, 1, 1000, 500, 3);
	send_batch(f, 2, 4000, 490, 2);
	send_batch(f, 1, 1000, 500, 3);	/* redelivered */
	/* counters count committed work only */
	assert_int_equal(c->stored, 0);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->received, 3);
	assert_int_equal(c->stored, 2);
	assert_int_equal(c->samples_stored, 5);
	assert_int_equal(c->duplicates, 1);
	assert_int_equal(history_len(f), 5);
	send_batch(f, 2, 4000, 490, 2);	/* redelivered in a later transaction */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->duplicates, 2);
	assert_int_equal(history_len(f), 5);
}

static void test_offer_signed_and_published_after_commit(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c = ingest_counters(f->in);
	struct crypto_verifier *v = NULL;
	struct signed_offer so;
	struct offer o;
	char pub[600];

	send_batch(f, 1, 1000, 400, 1);
	send_batch(f, 2, 2000, 120, 1);
	assert_int_equal(f->npub, 0);	/* not before the commit */
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
	ingest_published(f->in, f->pub[0].cookie, 1);	/* unknown now: ignored */
	assert_int_equal(c->offers_sent, 1);

	/* redelivery and more low batches: no second offer */
	send_batch(f, 2, 2000, 120, 1);
	send_batch(f, 3, 3000, 110, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 1);
}

/* Adds a trigger that makes inserting batch seq 666 fail inside SQLite. */
static void add_failing_trigger(const char *path)
{
	sqlite3 *db;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
				      "CREATE TRIGGER fail_666 BEFORE INSERT ON batches"
				      " WHEN NEW.seq = 666 BEGIN"
				      " SELECT RAISE(ABORT, 'injected failure'); END",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
}

static void test_storage_error_keeps_running(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c = ingest_counters(f->in);

	add_failing_trigger(f->path);
	send_batch(f, 1, 1000, 500, 2);
	send_batch(f, 666, 3000, 500, 2);	/* fails: undone alone */
	send_batch(f, 2, 5000, 500, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->rejected[STORE_REJECT_STORAGE], 1);
	assert_int_equal(c->stored, 2);
	assert_int_equal(history_len(f), 4);

	/* a low-fuel batch that fails records no offer and publishes nothing */
	send_batch(f, 666, 6000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->rejected[STORE_REJECT_STORAGE], 2);
	assert_int_equal(f->npub, 0);
	send_batch(f, 3, 7000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 1);
}

static void test_commit_failure_rolls_back(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c = ingest_counters(f->in);

	f->w->fail_commit = 1;
	send_batch(f, 1, 1000, 500, 2);
	send_batch(f, 2, 3000, 100, 1);	/* low fuel: offer pending */
	assert_true(ingest_flush(f->in) < 0);
	assert_int_equal(c->rejected[STORE_REJECT_STORAGE], 2);
	assert_int_equal(c->stored, 0);
	assert_int_equal(f->npub, 0);
	assert_int_equal(history_len(f), 0);

	f->w->fail_commit = 0;	/* the disk has room again; the car resends */
	send_batch(f, 1, 1000, 500, 2);
	send_batch(f, 2, 3000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->stored, 2);
	assert_int_equal(f->npub, 1);
	assert_int_equal(history_len(f), 3);
}

static void test_commit_every_max_pending(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c;

	stop_ingest(f);
	start_ingest(f, 3);
	c = ingest_counters(f->in);
	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	assert_int_equal(c->stored, 0);
	send_batch(f, 3, 3000, 500, 1);
	assert_int_equal(c->stored, 3);	/* committed at the third */
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
	const struct store_counters *c = ingest_counters(f->in);

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
	const struct store_counters *c = ingest_counters(f->in);
	struct offer_event ev = { .time_ms = 5000, .action = OFFER_ACTION_ACCEPTED };
	struct agent_status st = { .state = AGENT_ONLINE, .time_ms = 100 };
	struct store_offer_row *rows = NULL;
	struct store_vehicle v;
	struct offer o;
	struct signed_offer so;
	uint8_t *buf = NULL;
	size_t len = 0, n = 0;

	send_batch(f, 1, 1000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->npub, 1);
	assert_int_equal(codec_decode_signed_offer(f->pub[0].buf, f->pub[0].len, &so), 0);
	assert_int_equal(codec_decode_offer(so.offer, so.offer_len, &o), 0);
	codec_signed_offer_free(&so);

	snprintf(ev.offer_id, sizeof(ev.offer_id), "%s", o.id);
	assert_int_equal(codec_encode_offer_event(&ev, &buf, &len), 0);
	ingest_message(f->in, T_EVENTS, buf, len);
	ingest_message(f->in, T_EVENTS, buf, len);	/* redelivered */
	free(buf);
	snprintf(ev.offer_id, sizeof(ev.offer_id), "unknown-offer");
	assert_int_equal(codec_encode_offer_event(&ev, &buf, &len), 0);
	ingest_message(f->in, T_EVENTS, buf, len);
	free(buf);
	assert_int_equal(codec_encode_status(&st, &buf, &len), 0);
	ingest_message(f->in, T_STATUS, buf, len);
	free(buf);
	assert_int_equal(ingest_flush(f->in), 0);

	assert_int_equal(c->events, 3);
	assert_int_equal(c->status, 1);
	assert_int_equal(f->s->ops->offer_list(f->s, VIN1, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].state, STORE_OFFER_ACCEPTED);
	free(rows);
	assert_int_equal(f->s->ops->vehicle_get(f->s, VIN1, &v), 0);
	assert_int_equal(v.online, STORE_ONLINE);
}

static void test_counters_persist(void **state)
{
	struct fixture *f = *state;
	struct store_counters got;
	struct store *ro = NULL;
	char err[256];

	send_batch(f, 1, 1000, 500, 2);
	assert_int_equal(ingest_flush(f->in), 0);
	/* saved with the data they count: another process (pitstopctl) sees them */
	assert_int_equal(store_open(f->path, STORE_READ_ONLY, &ro, err, sizeof(err)), 0);
	assert_int_equal(ro->ops->counters_load(ro, "gw-test", &got), 0);
	assert_int_equal(got.stored, 1);
	assert_int_equal(got.samples_stored, 2);
	/* a reject alone is saved by the timer (or here, by hand) */
	ingest_message(f->in, "bad", NULL, 0);
	assert_int_equal(ingest_save_counters(f->in), 0);
	assert_int_equal(ro->ops->counters_load(ro, "gw-test", &got), 0);
	assert_int_equal(got.received, 2);
	assert_int_equal(got.stored, 1);
	assert_int_equal(got.samples_stored, 2);
	assert_int_equal(got.rejected[STORE_REJECT_BAD_TOPIC], 1);
	store_close(ro);

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
	const struct store_counters *c = ingest_counters(f->in);

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
	ingest_published(f->in, f->pub[1].cookie, 0);	/* refused by the broker */
	assert_int_equal(c->offers_failed, 1);
	assert_int_equal(c->offers_sent, 0);
}

static void test_no_signer(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c;
	int open = -1;

	stop_ingest(f);
	crypto_signer_free(f->signer);
	f->signer = NULL;
	start_ingest(f, 0);
	send_batch(f, 1, 1000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	c = ingest_counters(f->in);
	assert_int_equal(c->stored, 1);
	assert_int_equal(c->offers_failed, 1);
	assert_int_equal(f->s->ops->episode_get(f->s, VIN1, RULES_LOW_FUEL, &open), 0);
	assert_int_equal(open, 0);
}


/* ---- receipts ---- */

static void test_receipt_after_commit(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c = ingest_counters(f->in);
	static const uint64_t want[] = { 7 };
	struct store_counters got;

	send_batch(f, 7, 1000, 500, 2);
	assert_int_equal(f->nack, 0);	/* not before the commit */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, want, 1);
	assert_int_equal(history_len(f), 2);	/* named only once it is stored */

	/* acks_sent counts broker acknowledgements, and is saved */
	assert_int_equal(c->acks_sent, 0);
	ingest_published(f->in, f->ack[0].cookie, 1);
	assert_int_equal(c->acks_sent, 1);
	assert_int_equal(c->offers_sent, 0);
	ingest_published(f->in, f->ack[0].cookie, 1);	/* unknown now: ignored */
	assert_int_equal(c->acks_sent, 1);
	assert_int_equal(ingest_save_counters(f->in), 0);
	assert_int_equal(f->s->ops->counters_load(f->s, "gw-test", &got), 0);
	assert_int_equal(got.acks_sent, 1);

	/* a commit with no telemetry in it sends no receipt */
	ingest_message(f->in, "bad", NULL, 0);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
}

static void test_receipt_for_duplicate(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c = ingest_counters(f->in);
	static const uint64_t want[] = { 3 };

	send_batch(f, 3, 1000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	send_batch(f, 3, 1000, 500, 1);	/* the car missed the receipt */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->duplicates, 1);
	assert_int_equal(c->stored, 1);
	assert_int_equal(f->nack, 2);
	assert_ack(f, 0, VIN1, want, 1);
	assert_ack(f, 1, VIN1, want, 1);
}

static void test_receipt_one_per_vin(void **state)
{
	struct fixture *f = *state;
	static const uint64_t want[] = { 4, 5 };

	send_batch(f, 5, 5000, 500, 1);
	send_batch(f, 4, 4000, 500, 1);
	send_batch(f, 5, 5000, 500, 1);	/* redelivered in the same drain: named once */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, want, 2);
}

static void test_receipt_per_vin(void **state)
{
	struct fixture *f = *state;
	static const uint64_t want1[] = { 1, 2 }, want2[] = { 1 };
	int i1, i2;

	send_batch_of(f, VIN2, 1, 1000, 500, 1);
	send_batch_of(f, VIN1, 1, 1000, 500, 1);
	send_batch_of(f, VIN1, 2, 2000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 2);
	i1 = strstr(f->ack[0].topic, VIN1) ? 0 : 1;	/* order between VINs is not promised */
	i2 = 1 - i1;
	assert_ack(f, i1, VIN1, want1, 2);
	assert_ack(f, i2, VIN2, want2, 1);
	assert_int_not_equal(f->ack[0].cookie, f->ack[1].cookie);
}

static void test_no_receipt_on_commit_failure(void **state)
{
	struct fixture *f = *state;
	static const uint64_t want3[] = { 3 }, want[] = { 1, 2 };

	f->w->fail_commit = 1;
	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	assert_true(ingest_flush(f->in) < 0);
	assert_int_equal(f->nack, 0);
	assert_int_equal(history_len(f), 0);

	/* the next transaction's receipt does not name the lost batches */
	f->w->fail_commit = 0;
	send_batch(f, 3, 3000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, want3, 1);

	/* the car resends them: now they are stored, and acknowledged */
	send_batch(f, 1, 1000, 500, 1);
	send_batch(f, 2, 2000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 2);
	assert_ack(f, 1, VIN1, want, 2);
}

static void test_no_receipt_for_rejects(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c = ingest_counters(f->in);
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x08 };
	static const uint64_t want[] = { 9 };
	struct agent_status st = { .state = AGENT_ONLINE, .time_ms = 100 };
	uint8_t *big = calloc(1, CODEC_MAX_BATCH_BYTES + 1);
	uint8_t *buf = NULL;
	size_t len = 0;

	add_failing_trigger(f->path);
	ingest_message(f->in, T_TELEMETRY, garbage, sizeof(garbage));		/* malformed */
	ingest_message(f->in, T_TELEMETRY, big, CODEC_MAX_BATCH_BYTES + 1);	/* oversized */
	ingest_message(f->in, "pitstop/v1/vehicles/SHORT/telemetry", garbage, 1);
	send_batch(f, 666, 1000, 500, 1);				/* storage fails */
	assert_int_equal(codec_encode_status(&st, &buf, &len), 0);
	ingest_message(f->in, T_STATUS, buf, len);			/* not telemetry */
	free(buf);
	free(big);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(c->rejected[STORE_REJECT_MALFORMED], 1);
	assert_int_equal(c->rejected[STORE_REJECT_OVERSIZED], 1);
	assert_int_equal(c->rejected[STORE_REJECT_BAD_VIN], 1);
	assert_int_equal(c->rejected[STORE_REJECT_STORAGE], 1);
	assert_int_equal(c->status, 1);
	assert_int_equal(f->nack, 0);

	/* beside a good batch, only the good one is named */
	send_batch(f, 666, 1000, 500, 1);
	send_batch(f, 9, 9000, 500, 1);
	ingest_message(f->in, T_TELEMETRY, garbage, sizeof(garbage));
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, want, 1);
}

static void test_receipt_split_over_limit(void **state)
{
	struct fixture *f = *state;
	const size_t total = CODEC_MAX_ACK_SEQS + 1;
	uint64_t *seqs = NULL;
	size_t n0 = 0, n1 = 0;

	stop_ingest(f);
	start_ingest(f, total + 10);
	for (uint64_t s = 1; s <= total; s++)
		send_batch(f, s, (int64_t)s * 1000, 500, 1);
	assert_int_equal(f->nack, 0);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(ingest_counters(f->in)->stored, total);
	assert_int_equal(f->nack, 2);
	assert_int_equal(codec_decode_ack(f->ack[0].buf, f->ack[0].len, NULL, &seqs, &n0), 0);
	assert_int_equal(n0, CODEC_MAX_ACK_SEQS);
	for (size_t k = 0; k < n0; k++)
		assert_int_equal(seqs[k], k + 1);
	free(seqs);
	seqs = NULL;
	assert_int_equal(codec_decode_ack(f->ack[1].buf, f->ack[1].len, NULL, &seqs, &n1), 0);
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
	send_batch(f, 2, 2000, 500, 1);	/* the transaction is full: committed */
	assert_int_equal(f->nack, 1);
	assert_ack(f, 0, VIN1, want, 2);
	send_batch(f, 3, 3000, 500, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 2);
	assert_ack(f, 1, VIN1, want2, 1);
}

static void test_receipts_wait_for_the_bus(void **state)
{
	struct fixture *f = *state;
	const struct store_counters *c = ingest_counters(f->in);
	static const uint64_t want[] = { 1 }, want2[] = { 2 };

	/* down: the receipt waits (not dropped at once) and goes out on reconnect */
	f->publish_result = -ENOTCONN;
	send_batch(f, 1, 1000, 100, 1);	/* low fuel: an offer too */
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 0);
	assert_int_equal(f->npub, 0);
	f->publish_result = 0;
	ingest_connected(f->in);
	assert_int_equal(f->nack, 1);
	assert_int_equal(f->npub, 1);
	assert_ack(f, 0, VIN1, want, 1);
	/* the two outboxes never share a cookie, and each counts its own */
	assert_int_not_equal(f->ack[0].cookie, f->pub[0].cookie);
	ingest_published(f->in, f->pub[0].cookie, 1);
	assert_int_equal(c->offers_sent, 1);
	assert_int_equal(c->acks_sent, 0);
	ingest_published(f->in, f->ack[0].cookie, 0);	/* refused: not sent, not an offer */
	assert_int_equal(c->acks_sent, 0);
	assert_int_equal(c->offers_failed, 0);

	/* busy (all in-flight slots taken): published once the broker answers */
	f->publish_result = -EAGAIN;
	send_batch(f, 2, 2000, 100, 1);
	assert_int_equal(ingest_flush(f->in), 0);
	assert_int_equal(f->nack, 1);
	f->publish_result = 0;
	ingest_published(f->in, 12345, 1);	/* some other answer frees a slot */
	assert_int_equal(f->nack, 2);
	assert_ack(f, 1, VIN1, want2, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_messages_counted_and_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches_stored_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offer_signed_and_published_after_commit, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_storage_error_keeps_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_failure_rolls_back, setup, teardown),
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
		cmocka_unit_test_setup_teardown(test_receipt_at_max_pending_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipts_wait_for_the_bus, setup, teardown),
	};
	char err[256];

	gw_test_path(pki_dir, sizeof(pki_dir), "pki");
	if (pki_init(pki_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "pki_init: %s\n", err);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
