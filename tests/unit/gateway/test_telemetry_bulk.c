/*
 * telemetry_put_batches() against telemetry_put_batch(): the multi-row path
 * ingest takes for a whole bus drain must leave the database exactly as
 * storing the same batches one at a time does. 300 batches of 90 vehicles
 * (more than DB_ROWS_MAX rows for every statement, so every statement runs
 * in several chunks of different sizes), some stored before, some twice in
 * the call, some batches of one vehicle out of order, a drive over
 * midnight UTC and a refuel split across two batches. Compared: which
 * batches are new, every vehicle's latest state, every daily rollup, and
 * the history. On whichever backend db_test_util.h selects.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec.h"
#include "db.h"
#include "schema.h"
#include "telemetry.h"

#define NVEH 90
#define NBATCH 300
#define PER 5
#define DAY_MS 86400000LL
/* Ten minutes before midnight UTC, so drives cross it. */
#define T0 (19675LL * DAY_MS - 600000)

struct side {
	struct db *db;
	struct telemetry *t;
};

static void open_side(const char *name, struct side *s)
{
	char err[512];

	assert_int_equal(db_test_open(name, &s->db), 0);
	if (schema_migrate(s->db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(telemetry_new(s->db, &s->t), 0);
}

static void close_side(struct side *s)
{
	telemetry_free(s->t);
	db_close(s->db);
}

struct gen {
	char vin[NBATCH][VIN_LEN + 1];
	uint64_t seq[NBATCH];
	struct sample s[NBATCH][PER];
	uint8_t *raw[NBATCH];
	size_t len[NBATCH];
};

/* Batch i: vehicle i % NVEH, its (i / NVEH + 1)-th batch of PER seconds. */
static void generate(struct gen *g)
{
	for (size_t i = 0; i < NBATCH; i++) {
		size_t v = i % NVEH, k = i / NVEH;

		snprintf(g->vin[i], sizeof(g->vin[i]), "WDB1234561A%06zu", v);
		g->seq[i] = k + 1;
		for (size_t j = 0; j < PER; j++) {
			struct sample *x = &g->s[i][j];
			int64_t sec = (int64_t)(k * PER + j) * 60; /* a sample a minute */

			memset(x, 0, sizeof(*x));
			x->time_ms = T0 + sec * 1000 + (int64_t)v;
			x->fix = FIX_3D;
			x->present = SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_SPEED;
			x->odometer_m = 1000000 + (int64_t)v * 1000 + sec * 20;
			x->speed_cms = j % 3 ? 2000 : 0;
			/* vehicle 7 refuels across its 1st and 2nd batch, before midnight */
			x->fuel_permille = 500 - (int32_t)(sec / 60);
			if (v == 7 && k == 0 && j >= 3)
				x->fuel_permille = 600 + (int32_t)j * 40;
			if (v == 7 && k >= 1)
				x->fuel_permille = 900;
			if (v % 2)
				x->present |= SAMPLE_POSITION;
			x->lat_e7 = 480000000 + (int32_t)v;
			x->lon_e7 = 110000000 + (int32_t)sec;
		}
		assert_int_equal(
			codec_encode_batch(0x77, g->seq[i], g->s[i], PER, &g->raw[i], &g->len[i]),
			0);
	}
}

static struct telemetry_item item(struct gen *g, size_t i)
{
	struct telemetry_item it = { .vin = g->vin[i],
				     .epoch = 0x77,
				     .seq = g->seq[i],
				     .raw = g->raw[i],
				     .len = g->len[i],
				     .samples = g->s[i],
				     .n = PER };
	return it;
}

static void assert_vehicle_eq(const struct telemetry_vehicle *a, const struct telemetry_vehicle *b)
{
	assert_string_equal(a->vin, b->vin);
	assert_int_equal(a->time_ms, b->time_ms);
	assert_int_equal(a->present, b->present);
	assert_int_equal(a->odometer_m, b->odometer_m);
	assert_int_equal(a->fuel_permille, b->fuel_permille);
	assert_int_equal(a->lat_e7, b->lat_e7);
	assert_int_equal(a->lon_e7, b->lon_e7);
	assert_int_equal(a->speed_cms, b->speed_cms);
	assert_int_equal(a->batches, b->batches);
	assert_int_equal(a->samples, b->samples);
}

static void test_bulk_equals_one_by_one(void **state)
{
	static struct gen g;
	struct side one, bulk;
	struct telemetry_item items[NBATCH + 20];
	struct telemetry_vehicle *vs = NULL;
	size_t n = 0, nv = 0;
	int new_one[NBATCH + 20];

	(void)state;
	generate(&g);
	open_side("bulk_one", &one);
	open_side("bulk_many", &bulk);

	/* Batches 10..39 reached both databases before. */
	for (size_t i = 10; i < 40; i++) {
		struct telemetry_item it = item(&g, i);

		assert_int_equal(telemetry_put_batch(one.t, it.vin, it.epoch, it.seq, it.raw,
						     it.len, it.samples, it.n, 1, NULL),
				 1);
		assert_int_equal(telemetry_put_batch(bulk.t, it.vin, it.epoch, it.seq, it.raw,
						     it.len, it.samples, it.n, 1, NULL),
				 1);
	}
	/* The drain: everything, newest first (late batches), 20 of them twice. */
	for (size_t i = NBATCH; i-- > 0;)
		items[n++] = item(&g, i);
	for (size_t i = 100; i < 120; i++)
		items[n++] = item(&g, i);

	for (size_t i = 0; i < n; i++) {
		const struct telemetry_item *it = &items[i];

		new_one[i] = telemetry_put_batch(one.t, it->vin, it->epoch, it->seq, it->raw,
						 it->len, it->samples, it->n, 2, NULL);
		assert_true(new_one[i] == 0 || new_one[i] == 1);
	}
	assert_int_equal(db_begin(bulk.db), 0);
	assert_int_equal(telemetry_put_batches(bulk.t, items, n, 2, &vs, &nv), 0);
	assert_int_equal(db_commit(bulk.db), 0);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(items[i].new_batch, new_one[i]);
	assert_int_equal(nv, NVEH); /* every vehicle had a new batch */

	for (size_t v = 0; v < NVEH; v++) {
		struct telemetry_vehicle a, b;
		struct telemetry_day *da = NULL, *db = NULL;
		struct telemetry_sample *ha = NULL, *hb = NULL;
		size_t nda = 0, ndb = 0, nha = 0, nhb = 0;
		int tr = 0;
		char vin[VIN_LEN + 1];
		int found = 0;

		snprintf(vin, sizeof(vin), "WDB1234561A%06zu", v);
		assert_int_equal(telemetry_vehicle_get(one.t, vin, &a), 0);
		assert_int_equal(telemetry_vehicle_get(bulk.t, vin, &b), 0);
		assert_vehicle_eq(&a, &b);
		for (size_t k = 0; k < nv; k++)
			if (strcmp(vs[k].vin, vin) == 0) {
				assert_vehicle_eq(&vs[k], &b); /* returned = stored */
				found = 1;
			}
		assert_true(found);

		assert_int_equal(telemetry_days(one.t, vin, 0, 100000, &da, &nda, &tr), 0);
		assert_int_equal(telemetry_days(bulk.t, vin, 0, 100000, &db, &ndb, &tr), 0);
		assert_int_equal(nda, 2); /* the drive crosses midnight */
		assert_int_equal(nda, ndb);
		for (size_t d = 0; d < nda; d++) {
			assert_int_equal(da[d].day, db[d].day);
			assert_int_equal(da[d].samples, db[d].samples);
			assert_int_equal(da[d].distance_m, db[d].distance_m);
			assert_int_equal(da[d].first_odometer_m, db[d].first_odometer_m);
			assert_int_equal(da[d].last_odometer_m, db[d].last_odometer_m);
			assert_int_equal(da[d].first_fuel_permille, db[d].first_fuel_permille);
			assert_int_equal(da[d].last_fuel_permille, db[d].last_fuel_permille);
			/* driving time and refuels may only gain from seeing the batches together */
			assert_true(db[d].driving_ms >= da[d].driving_ms);
			assert_true(db[d].fuel_refuelled_permille >= da[d].fuel_refuelled_permille);
		}
		free(da);
		free(db);

		assert_int_equal(telemetry_history(one.t, vin, 0, INT64_MAX / 2, 0, &ha, &nha, &tr),
				 0);
		assert_int_equal(
			telemetry_history(bulk.t, vin, 0, INT64_MAX / 2, 0, &hb, &nhb, &tr), 0);
		assert_int_equal(nha, nhb);
		assert_int_equal(nha, (NBATCH / NVEH + (v < NBATCH % NVEH)) * PER);
		for (size_t i = 0; i < nha; i++)
			assert_int_equal(ha[i].s.time_ms, hb[i].s.time_ms);
		free(ha);
		free(hb);
	}
	free(vs);

	/* The refuel of vehicle 7 split over two batches: seen whole in the drain. */
	{
		struct telemetry_day *d = NULL;
		size_t nd = 0;
		int tr = 0;
		int64_t total = 0;

		assert_int_equal(
			telemetry_days(bulk.t, "WDB1234561A000007", 0, 100000, &d, &nd, &tr), 0);
		for (size_t i = 0; i < nd; i++)
			total += d[i].fuel_refuelled_permille;
		assert_true(total >= 900 - 498 - 10);
		free(d);
	}

	/* Nothing new a second time: no vehicle returned, nothing changes. */
	assert_int_equal(db_begin(bulk.db), 0);
	assert_int_equal(telemetry_put_batches(bulk.t, items, n, 3, &vs, &nv), 0);
	assert_int_equal(db_commit(bulk.db), 0);
	assert_int_equal(nv, 0);
	assert_null(vs);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(items[i].new_batch, 0);

	for (size_t i = 0; i < NBATCH; i++)
		free(g.raw[i]);
	close_side(&one);
	close_side(&bulk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bulk_equals_one_by_one),
	};

	printf("bulk telemetry tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
