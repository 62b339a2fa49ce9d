/*
 * Unit tests of the low-fuel rule (gateway/rules.c) against a real SQLite
 * store and a sink that records offers: one offer per episode across a
 * threshold crossing, noise around the threshold, redelivered and
 * out-of-order batches, re-arming and a second episode, a restart, and a
 * failing sink.
 */
#include "gw_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rules.h"
#include "store.h"

static const char VIN1[] = "WDB1234561A000001";
static const char VIN2[] = "WDB1234561A000002";

#define MAX_OFFERS 16

struct sink {
	struct offer got[MAX_OFFERS];
	int n;
	int fail;	/* -errno to return instead of accepting */
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

struct fixture {
	char path[512];
	struct store *s;
	struct rules *r;
	struct sink sink;
	uint64_t seq;
};

static const struct rules_config conf = {
	.low_fuel_pct = 15,
	.low_fuel_rearm_pct = 10,
	.offer_valid_s = 3600,
};

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));
	char name[64], err[256];

	snprintf(name, sizeof(name), "rules-%d.db", count++);
	gw_test_path(f->path, sizeof(f->path), name);
	assert_int_equal(store_open(f->path, STORE_READ_WRITE, &f->s, err, sizeof(err)), 0);
	assert_int_equal(rules_new(&conf, f->s, record, &f->sink, &f->r), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rules_free(f->r);
	store_close(f->s);
	free(f);
	return 0;
}

/*
 * What ingest does with a batch: store it, fold it into the latest state,
 * and run the rules only if it was new. Returns the offers issued.
 */
static int batch_seq(struct fixture *f, const char *vin, uint64_t seq, int64_t t, int32_t fuel)
{
	struct sample x = gw_sample(t, fuel, 481234567, 115678901);
	int dup = 0, issued = 0;

	assert_int_equal(f->s->ops->begin(f->s), 0);
	assert_int_equal(f->s->ops->put_batch(f->s, vin, seq, &x, 1, t, &dup), 0);
	if (!dup) {
		assert_int_equal(f->s->ops->update_latest(f->s, vin, &x, 1), 0);
		issued = rules_after_batch(f->r, vin, 1700000000000 + t);
		assert_true(issued >= 0);
	}
	assert_int_equal(f->s->ops->commit(f->s), 0);
	return issued;
}

static int batch(struct fixture *f, int64_t t, int32_t fuel)
{
	return batch_seq(f, VIN1, ++f->seq, t, fuel);
}

static void test_threshold_crossing(void **state)
{
	struct fixture *f = *state;
	const struct offer *o;

	assert_int_equal(batch(f, 1000, 400), 0);
	assert_int_equal(batch(f, 2000, 151), 0);
	assert_int_equal(batch(f, 3000, 150), 1);	/* at the threshold: <= */
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

	/* recorded in the store */
	{
		struct store_offer_row *rows = NULL;
		size_t n = 0;

		assert_int_equal(f->s->ops->offer_list(f->s, VIN1, &rows, &n), 0);
		assert_int_equal(n, 1);
		assert_string_equal(rows[0].id, o->id);
		assert_int_equal(rows[0].state, STORE_OFFER_SENT);
		free(rows);
	}
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
	assert_int_equal(rules_after_batch(f->r, VIN1, 5), 0);
	assert_int_equal(f->sink.n, 1);
}

static void test_rearm_and_second_episode(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(batch(f, 1000, 140), 1);
	assert_int_equal(batch(f, 2000, 249), 0);	/* not yet re-armed (< 25 %) */
	assert_int_equal(batch(f, 3000, 140), 0);
	assert_int_equal(batch(f, 4000, 250), 0);	/* re-armed at 25 % */
	assert_int_equal(batch(f, 5000, 200), 0);	/* above 15 %: nothing */
	assert_int_equal(batch(f, 6000, 150), 1);	/* second episode */
	assert_int_equal(batch(f, 7000, 100), 0);
	assert_int_equal(f->sink.n, 2);
	assert_string_not_equal(f->sink.got[0].id, f->sink.got[1].id);
}

static void test_restart_does_not_resend(void **state)
{
	struct fixture *f = *state;
	char err[256];

	assert_int_equal(batch(f, 1000, 100), 1);
	rules_free(f->r);
	store_close(f->s);
	assert_int_equal(store_open(f->path, STORE_READ_WRITE, &f->s, err, sizeof(err)), 0);
	assert_int_equal(rules_new(&conf, f->s, record, &f->sink, &f->r), 0);
	assert_int_equal(batch(f, 2000, 90), 0);
	assert_int_equal(f->sink.n, 1);
}

static void test_sink_failure_retries_later(void **state)
{
	struct fixture *f = *state;
	int open = -1;

	f->sink.fail = -ENOKEY;
	assert_int_equal(batch(f, 1000, 100), 0);
	assert_int_equal(f->s->ops->episode_get(f->s, VIN1, RULES_LOW_FUEL, &open), 0);
	assert_int_equal(open, 0);
	f->sink.fail = 0;
	assert_int_equal(batch(f, 2000, 95), 1);
	assert_int_equal(f->sink.n, 1);
}

static void test_no_fuel_no_position(void **state)
{
	struct fixture *f = *state;
	struct sample x = gw_sample(1000, 0, 0, 0);
	int dup;

	/* a batch without fuel changes nothing */
	x.present = SAMPLE_ODOMETER;
	assert_int_equal(f->s->ops->begin(f->s), 0);
	assert_int_equal(f->s->ops->put_batch(f->s, VIN1, 1, &x, 1, 1, &dup), 0);
	assert_int_equal(f->s->ops->update_latest(f->s, VIN1, &x, 1), 0);
	assert_int_equal(rules_after_batch(f->r, VIN1, 1), 0);
	/* low fuel without any position: an offer without an area */
	x.time_ms = 2000;
	x.present = SAMPLE_FUEL;
	x.fuel_permille = 10;
	assert_int_equal(f->s->ops->put_batch(f->s, VIN1, 2, &x, 1, 1, &dup), 0);
	assert_int_equal(f->s->ops->update_latest(f->s, VIN1, &x, 1), 0);
	assert_int_equal(rules_after_batch(f->r, VIN1, 1), 1);
	assert_int_equal(f->s->ops->commit(f->s), 0);
	assert_false(f->sink.got[0].has_area);
	assert_int_equal(rules_after_batch(f->r, "WDB1234561A000009", 1), 0);	/* unknown */
}

static void test_bad_config(void **state)
{
	struct fixture *f = *state;
	struct rules_config bad = conf;
	struct rules *r = NULL;

	bad.low_fuel_pct = 101;
	assert_int_equal(rules_new(&bad, f->s, record, &f->sink, &r), -EINVAL);
	bad = conf;
	bad.offer_valid_s = 0;
	assert_int_equal(rules_new(&bad, f->s, record, &f->sink, &r), -EINVAL);
	rules_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_threshold_crossing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_noise_around_threshold, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redelivery_and_out_of_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rearm_and_second_episode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_does_not_resend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sink_failure_retries_later, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_fuel_no_position, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
	};

	gw_test_dir_make();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
