/*
 * Unit tests of the low-fuel rule (gateway/offers/rules.c) on the latest
 * state the telemetry domain returns, with a real database (whichever
 * backend db_test_util.h selects) and a sink that records offers: one offer
 * per episode across a threshold crossing, noise around the threshold,
 * redelivered and out-of-order batches, re-arming and a second episode, a
 * restart, a failing sink, and two gateway instances on one database.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "offer_log.h"
#include "rules.h"
#include "schema.h"
#include "telemetry.h"

static const char VIN1[] = "WDB1234561A000001";
static const char VIN2[] = "WDB1234561A000002";

#define MAX_OFFERS 16

struct sink {
	struct offer got[MAX_OFFERS];
	int n;
	int fail; /* -errno to return instead of accepting */
};

static int record(void *arg, const struct offer *o)
{
	struct sink *k = arg;

	if (k->fail)
		return k->fail;
	assert_true(k->n < MAX_OFFERS);
	k->got[k->n++] = *o;
	return 0;
}

/* One gateway instance's view of the database. */
struct instance {
	struct db *db;
	struct telemetry *t;
	struct offer_log *log;
	struct rules *r;
};

struct fixture {
	char name[64];
	struct instance g;
	struct sink sink;
	uint64_t seq;
};

/* The car's queue epoch. */
#define EPOCH 0x0123456789abcdefULL

static const struct rules_config conf = {
	.low_fuel_pct = 15,
	.low_fuel_rearm_pct = 10,
	.offer_valid_s = 3600,
};

/* Opens test database name (again) as one gateway does, with rules that record into k. */
static void instance_open(struct instance *g, const char *name, int fresh, struct sink *k)
{
	char url[512], err[512];

	if (fresh) {
		assert_int_equal(db_test_open(name, &g->db), 0);
	} else {
		assert_int_equal(db_test_url(name, url, sizeof(url)), 0);
		assert_int_equal(db_open(url, DB_READ_WRITE, &g->db, err, sizeof(err)), 0);
	}
	if (schema_migrate(g->db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(telemetry_new(g->db, &g->t), 0);
	assert_int_equal(offer_log_new(g->db, &g->log), 0);
	assert_int_equal(rules_new(&conf, g->db, g->log, record, k, &g->r), 0);
}

static void instance_close(struct instance *g)
{
	rules_free(g->r);
	offer_log_free(g->log);
	telemetry_free(g->t);
	db_close(g->db);
	memset(g, 0, sizeof(*g));
}

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->name, sizeof(f->name), "rules_%d", count++);
	instance_open(&f->g, f->name, 1, &f->sink);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	instance_close(&f->g);
	free(f);
	return 0;
}

/* Whether vin's low-fuel episode is open (no row: closed). */
static int episode_open(struct db *db, const char *vin)
{
	struct db_stmt *st = NULL;
	int r, open = 0;

	assert_int_equal(
		db_prepare(db, "SELECT open FROM offer_episodes WHERE vin = $1 AND rule = $2", &st),
		0);
	db_bind_text(st, 1, vin);
	db_bind_text(st, 2, RULES_LOW_FUEL);
	r = db_step(st);
	assert_true(r == 0 || r == 1);
	if (r == 1)
		open = (int)db_column_int64(st, 0);
	db_finalize(st);
	return open;
}

/*
 * What ingest does with a batch of samples x[n]: store it in a
 * transaction, and run the rules on the latest state only if it was new.
 * Returns the offers issued.
 */
static int put_run(struct instance *g, const char *vin, uint64_t seq, const struct sample *x,
		   size_t n, int64_t now_ms)
{
	struct telemetry_vehicle v;
	uint8_t *buf = NULL;
	size_t len = 0;
	int r, issued = 0;

	assert_int_equal(codec_encode_batch(EPOCH, seq, x, n, &buf, &len), 0);
	assert_int_equal(db_begin(g->db), 0);
	r = telemetry_put_batch(g->t, vin, EPOCH, seq, buf, len, x, n, now_ms, &v);
	assert_true(r == 0 || r == 1);
	if (r == 1) {
		assert_string_equal(v.vin, vin);
		issued = rules_after_batch(g->r, &v, now_ms);
		assert_true(issued >= 0);
	}
	assert_int_equal(db_commit(g->db), 0);
	free(buf);
	return issued;
}

static int batch_seq(struct fixture *f, const char *vin, uint64_t seq, int64_t t, int32_t fuel)
{
	struct sample x = gw_sample(t, fuel, 481234567, 115678901);

	return put_run(&f->g, vin, seq, &x, 1, 1700000000000 + t);
}

static int batch(struct fixture *f, int64_t t, int32_t fuel)
{
	return batch_seq(f, VIN1, ++f->seq, t, fuel);
}

/* Rules that re-arm only after the level held 600 s, and give at most 2 offers a day. */
static const struct rules_config conf_guarded = {
	.low_fuel_pct = 15,
	.low_fuel_rearm_pct = 10,
	.offer_valid_s = 3600,
	.low_fuel_rearm_hold_s = 600,
	.offers_per_day_max = 2,
};

static void use_guarded_rules(struct fixture *f)
{
	rules_free(f->g.r);
	assert_int_equal(rules_new(&conf_guarded, f->g.db, f->g.log, record, &f->sink, &f->g.r), 0);
}

/*
 * A fuel reading swinging between empty and full (a broken sensor, or a car
 * collecting promo codes) gives one offer per plausible refuel: the full
 * level must hold 600 s of gateway time before the episode re-arms.
 */
static void test_swinging_fuel_one_offer_per_refuel(void **state)
{
	struct fixture *f = *state;

	use_guarded_rules(f);
	assert_int_equal(batch(f, 1000, 100), 1);
	for (int i = 0; i < 20; i++) { /* 20 swings in 40 s */
		assert_int_equal(batch(f, 2000 + 2000 * i, 1000), 0);
		assert_int_equal(batch(f, 3000 + 2000 * i, 10), 0);
	}
	assert_int_equal(f->sink.n, 1);
	assert_true(episode_open(f->g.db, VIN1));

	/* a real refuel: full, and it stays full */
	assert_int_equal(batch(f, 100000, 950), 0);
	assert_int_equal(batch(f, 100000 + 599999, 950), 0);
	assert_true(episode_open(f->g.db, VIN1)); /* not quite 600 s */
	assert_int_equal(batch(f, 100000 + 600000, 950), 0);
	assert_false(episode_open(f->g.db, VIN1));
	assert_int_equal(batch(f, 800000, 120), 1);
	assert_int_equal(f->sink.n, 2);
}

/* At most offers_per_day_max offers a car in 24 h, whatever the episodes. */
static void test_offers_per_day_capped(void **state)
{
	struct fixture *f = *state;
	int64_t t = 1000;

	use_guarded_rules(f);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(batch(f, t, 100), i < 2 ? 1 : 0); /* the third is capped */
		assert_int_equal(batch(f, t + 1000, 950), 0);
		assert_int_equal(batch(f, t + 601000, 950), 0); /* re-armed */
		t += 700000;
	}
	assert_int_equal(f->sink.n, 2);
	/* a day after the first two, the next episode gets its offer again */
	t = 1000 + 86400000 + 3 * 700000;
	assert_int_equal(batch(f, t, 950), 0);
	assert_int_equal(batch(f, t + 601000, 950), 0);
	assert_int_equal(batch(f, t + 700000, 100), 1);
	assert_int_equal(f->sink.n, 3);
}

static void test_threshold_crossing(void **state)
{
	struct fixture *f = *state;
	const struct offer *o;

	assert_int_equal(batch(f, 1000, 400), 0);
	assert_int_equal(batch(f, 2000, 151), 0);
	assert_int_equal(batch(f, 3000, 150), 1); /* at the threshold: <= */
	assert_int_equal(batch(f, 4000, 120), 0);
	assert_int_equal(batch(f, 5000, 50), 0);
	assert_int_equal(f->sink.n, 1);

	o = &f->sink.got[0];
	assert_int_equal(o->kind, OFFER_REFUEL);
	assert_string_equal(o->vin, VIN1);
	assert_int_equal(strlen(o->id), 32);
	assert_int_equal(strncmp(o->promo_code, "FUEL-", 5), 0);
	assert_int_equal(strlen(o->promo_code), 11);
	assert_true(o->title[0] != '\0');
	assert_int_equal(o->valid_from_ms, 1700000000000 + 3000);
	assert_int_equal(o->valid_until_ms, o->valid_from_ms + 3600 * 1000);
	assert_true(o->has_area);
	assert_int_equal(o->area_lat_e7, 481234567);
	assert_int_equal(o->area_lon_e7, 115678901);
	assert_int_equal(o->area_radius_m, 20000);

	/* recorded in the offer log, and the episode is open */
	{
		struct offer_row *rows = NULL;
		size_t n = 0;
		int more = -1;

		assert_int_equal(offer_log_list(f->g.log, VIN1, &rows, &n, &more), 0);
		assert_int_equal(n, 1);
		assert_string_equal(rows[0].id, o->id);
		assert_int_equal(rows[0].kind, OFFER_REFUEL);
		assert_int_equal(rows[0].state, OFFER_STATE_CREATED);
		assert_int_equal(rows[0].valid_until_ms, o->valid_until_ms);
		free(rows);
	}
	assert_true(episode_open(f->g.db, VIN1));
}

static void test_noise_around_threshold(void **state)
{
	struct fixture *f = *state;
	static const int32_t levels[] = { 160, 150, 151, 149, 155, 148, 170, 152, 199, 145, 240 };
	int total = 0;

	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		total += batch(f, 1000 * (int64_t)(i + 1), levels[i]);
	assert_int_equal(total, 1);
	assert_int_equal(f->sink.n, 1);
}

static void test_redelivery_and_out_of_order(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(batch_seq(f, VIN1, 1, 1000, 300), 0);
	assert_int_equal(batch_seq(f, VIN1, 2, 2000, 100), 1);
	/* the same batch again: a duplicate, nothing new */
	assert_int_equal(batch_seq(f, VIN1, 2, 2000, 100), 0);
	/* refuelled, then an old low batch arrives late: latest state wins */
	assert_int_equal(batch_seq(f, VIN1, 4, 4000, 800), 0);
	assert_int_equal(batch_seq(f, VIN1, 3, 3000, 90), 0);
	assert_int_equal(f->sink.n, 1);

	/* another car: out of order from the start (newest high, old low late) */
	assert_int_equal(batch_seq(f, VIN2, 9, 9000, 700), 0);
	assert_int_equal(batch_seq(f, VIN2, 8, 8000, 100), 0);
	assert_int_equal(f->sink.n, 1);
	/* running the rule again without new data issues nothing */
	{
		struct telemetry_vehicle v;

		assert_int_equal(telemetry_vehicle_get(f->g.t, VIN1, &v), 0);
		assert_int_equal(v.fuel_permille, 800);
		assert_int_equal(db_begin(f->g.db), 0);
		assert_int_equal(rules_after_batch(f->g.r, &v, 5), 0);
		assert_int_equal(db_commit(f->g.db), 0);
	}
	assert_int_equal(f->sink.n, 1);
	/* the late low batch did not close or reopen anything: VIN1 was refilled */
	assert_false(episode_open(f->g.db, VIN1));
	assert_false(episode_open(f->g.db, VIN2));
}

static void test_rearm_and_second_episode(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(batch(f, 1000, 140), 1);
	assert_int_equal(batch(f, 2000, 249), 0); /* not yet re-armed (< 25 %) */
	assert_int_equal(batch(f, 3000, 140), 0);
	assert_int_equal(batch(f, 4000, 250), 0); /* re-armed at 25 % */
	assert_int_equal(batch(f, 5000, 200), 0); /* above 15 %: nothing */
	assert_int_equal(batch(f, 6000, 150), 1); /* second episode */
	assert_int_equal(batch(f, 7000, 100), 0);
	assert_int_equal(f->sink.n, 2);
	assert_string_not_equal(f->sink.got[0].id, f->sink.got[1].id);
}

static void test_restart_does_not_resend(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(batch(f, 1000, 100), 1);
	instance_close(&f->g);
	instance_open(&f->g, f->name, 0, &f->sink);
	assert_int_equal(batch(f, 2000, 90), 0);
	assert_int_equal(f->sink.n, 1);
}

static void test_sink_failure_retries_later(void **state)
{
	struct fixture *f = *state;
	struct offer_row *rows = NULL;
	size_t n = 0;
	int more = -1;

	f->sink.fail = -ENOKEY;
	assert_int_equal(batch(f, 1000, 100), 0);
	assert_false(episode_open(f->g.db, VIN1));
	assert_int_equal(offer_log_list(f->g.log, VIN1, &rows, &n, &more), 0);
	assert_int_equal(n, 0); /* nothing recorded either */
	f->sink.fail = 0;
	assert_int_equal(batch(f, 2000, 95), 1);
	assert_int_equal(f->sink.n, 1);
	assert_true(episode_open(f->g.db, VIN1));
}

static void test_no_fuel_no_position(void **state)
{
	struct fixture *f = *state;
	struct sample x = gw_sample(1000, 0, 0, 0);
	struct telemetry_vehicle unknown;

	/* a batch without fuel changes nothing */
	x.present = SAMPLE_ODOMETER;
	assert_int_equal(put_run(&f->g, VIN1, 1, &x, 1, 1), 0);
	/* low fuel without any position: an offer without an area */
	x.time_ms = 2000;
	x.present = SAMPLE_FUEL;
	x.fuel_permille = 10;
	assert_int_equal(put_run(&f->g, VIN1, 2, &x, 1, 1), 1);
	assert_false(f->sink.got[0].has_area);
	/* a vehicle without any state (status only, say): nothing */
	memset(&unknown, 0, sizeof(unknown));
	snprintf(unknown.vin, sizeof(unknown.vin), "WDB1234561A000009");
	assert_int_equal(rules_after_batch(f->g.r, &unknown, 1), 0);
	assert_false(episode_open(f->g.db, unknown.vin));
	assert_int_equal(f->sink.n, 1);
}

static void test_two_instances_one_offer(void **state)
{
	struct fixture *f = *state;
	struct sink other = { .n = 0 };
	struct instance b;
	struct telemetry_vehicle v;
	struct sample x = gw_sample(1000, 100, 481234567, 115678901);

	/*
	 * Two gateways on one database see the same low level (their own
	 * batches of one car): the episode is opened once, by one of them.
	 */
	instance_open(&b, f->name, 0, &other);
	assert_int_equal(put_run(&f->g, VIN1, 1, &x, 1, 5), 1);
	x.time_ms = 2000;
	x.fuel_permille = 90;
	assert_int_equal(put_run(&b, VIN1, 2, &x, 1, 6), 0);
	assert_int_equal(telemetry_vehicle_get(b.t, VIN1, &v), 0);
	assert_int_equal(v.fuel_permille, 90);
	assert_int_equal(rules_after_batch(b.r, &v, 7), 0); /* outside a transaction too */
	assert_int_equal(f->sink.n + other.n, 1);
	instance_close(&b);
}

static void test_bad_config(void **state)
{
	struct fixture *f = *state;
	struct rules_config bad = conf;
	struct rules *r = NULL;

	bad.low_fuel_pct = 101;
	assert_int_equal(rules_new(&bad, f->g.db, f->g.log, record, &f->sink, &r), -EINVAL);
	bad.low_fuel_pct = -1;
	assert_int_equal(rules_new(&bad, f->g.db, f->g.log, record, &f->sink, &r), -EINVAL);
	bad = conf;
	bad.low_fuel_rearm_pct = -1;
	assert_int_equal(rules_new(&bad, f->g.db, f->g.log, record, &f->sink, &r), -EINVAL);
	bad = conf;
	bad.offer_valid_s = 0;
	assert_int_equal(rules_new(&bad, f->g.db, f->g.log, record, &f->sink, &r), -EINVAL);
	assert_int_equal(rules_new(&conf, f->g.db, f->g.log, NULL, &f->sink, &r), -EINVAL);
	assert_null(r);
	rules_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_threshold_crossing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swinging_fuel_one_offer_per_refuel, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_offers_per_day_capped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_noise_around_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redelivery_and_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rearm_and_second_episode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_does_not_resend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_failure_retries_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_fuel_no_position, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_instances_one_offer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
	};

	fprintf(stderr, "rules tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
