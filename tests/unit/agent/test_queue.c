/*
 * Unit tests of agent/queue.c on a real SQLite database in a temporary
 * directory: sequence numbers increase and survive a reopen, open samples
 * survive a "power cut" (close without sealing), sealing is atomic (a fault
 * injected with a trigger rolls everything back), only acknowledged batches
 * are deleted, in-flight batches can be made unsent again, and the bound
 * drops the oldest batch and counts it persistently.
 */
#include <errno.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "codec.h"
#include "queue.h"
#include "testdir.h"

struct fixture {
	struct testdir dir;
	char db[300];
	struct queue *q;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || testdir_make(&f->dir) < 0) {
		free(f);
		return -1;
	}
	testdir_file(&f->dir, "queue.db", f->db, sizeof(f->db));
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	queue_close(f->q);
	testdir_remove(&f->dir);
	free(f);
	return 0;
}

static void reopen(struct fixture *f, unsigned max)
{
	queue_close(f->q);
	f->q = NULL;
	assert_int_equal(queue_open(f->db, max, &f->q), 0);
}

static struct sample make_sample(int i)
{
	struct sample s = { 0 };

	s.time_ms = 1700000000000LL + i * 1000;
	s.present = SAMPLE_ODOMETER | SAMPLE_FUEL | SAMPLE_POSITION | SAMPLE_SPEED;
	s.fix = FIX_3D;
	s.odometer_m = 123456000 + i * 10;
	s.fuel_permille = 500 - i;
	s.lat_e7 = 523000000 + i;
	s.lon_e7 = 134000000 - i;
	s.speed_cms = 1000 + i;
	return s;
}

static void add_samples(struct fixture *f, int from, int n)
{
	for (int i = from; i < from + n; i++) {
		struct sample s = make_sample(i);

		assert_int_equal(queue_add_sample(f->q, &s), 0);
	}
}

static uint64_t seal_ok(struct fixture *f, size_t max, int expect_n)
{
	uint64_t seq = 0;

	assert_int_equal(queue_seal(f->q, max, &seq), expect_n);
	return seq;
}

/* Decodes the next unsent batch and checks its seq and sample count. */
static void expect_peek(struct fixture *f, uint64_t want_seq, size_t want_n)
{
	uint8_t *data = NULL;
	size_t len = 0, n = 0;
	uint64_t seq = 0, dseq = 0;
	struct sample *samples = NULL;

	assert_int_equal(queue_peek_unsent(f->q, &seq, &data, &len), 0);
	assert_int_equal(seq, want_seq);
	assert_int_equal(codec_decode_batch(data, len, &dseq, &samples, &n), 0);
	assert_int_equal(dseq, want_seq);
	assert_int_equal(n, want_n);
	free(samples);
	free(data);
}

static void test_seq_increases_and_persists(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	assert_int_equal(queue_next_seq(f->q), 1);
	add_samples(f, 0, 3);
	assert_int_equal(seal_ok(f, 30, 3), 1);
	add_samples(f, 3, 2);
	assert_int_equal(seal_ok(f, 30, 2), 2);
	reopen(f, 100);
	assert_int_equal(queue_next_seq(f->q), 3);
	assert_int_equal(queue_count(f->q), 2);
	/* Deleting every batch must not make a seq come back. */
	assert_int_equal(queue_ack(f->q, 1), 0);
	assert_int_equal(queue_ack(f->q, 2), 0);
	reopen(f, 100);
	assert_int_equal(queue_count(f->q), 0);
	add_samples(f, 5, 1);
	assert_int_equal(seal_ok(f, 30, 1), 3);
	uint64_t seq = 0;
	assert_int_equal(queue_seal(f->q, 30, &seq), -ENODATA);
}

static void test_samples_survive_power_cut(void **state)
{
	struct fixture *f = *state;
	struct sample *samples = NULL;
	uint8_t *data = NULL;
	size_t len = 0, n = 0;
	uint64_t seq = 0;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	add_samples(f, 0, 5);
	/* Power cut: the process goes away without sealing. */
	reopen(f, 100);
	assert_int_equal(queue_open_samples(f->q), 5);
	assert_int_equal(seal_ok(f, 30, 5), 1);
	assert_int_equal(queue_open_samples(f->q), 0);
	assert_int_equal(queue_peek_unsent(f->q, &seq, &data, &len), 0);
	assert_int_equal(codec_decode_batch(data, len, &seq, &samples, &n), 0);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++) {
		struct sample want = make_sample((int)i);

		assert_int_equal(samples[i].time_ms, want.time_ms);
		assert_int_equal(samples[i].odometer_m, want.odometer_m);
		assert_int_equal(samples[i].fuel_permille, want.fuel_permille);
		assert_int_equal(samples[i].lat_e7, want.lat_e7);
		assert_int_equal(samples[i].lon_e7, want.lon_e7);
		assert_int_equal(samples[i].speed_cms, want.speed_cms);
		assert_int_equal(samples[i].fix, FIX_3D);
	}
	free(samples);
	free(data);
}

static void test_seal_takes_oldest_up_to_max(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	add_samples(f, 0, 5);
	assert_int_equal(seal_ok(f, 2, 2), 1);
	assert_int_equal(queue_open_samples(f->q), 3);
	assert_int_equal(seal_ok(f, 30, 3), 2);
	expect_peek(f, 1, 2);
}

static void exec_other(const char *db, const char *sql)
{
	sqlite3 *h = NULL;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static void test_seal_is_atomic(void **state)
{
	struct fixture *f = *state;
	uint64_t seq = 0;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	add_samples(f, 0, 4);
	/* Fault injection: the last step of the seal (deleting the samples) fails. */
	exec_other(f->db, "CREATE TRIGGER fail_seal BEFORE DELETE ON samples"
			  " BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");
	assert_true(queue_seal(f->q, 30, &seq) < 0);
	assert_int_equal(queue_count(f->q), 0);
	assert_int_equal(queue_open_samples(f->q), 4);
	assert_int_equal(queue_next_seq(f->q), 1);
	reopen(f, 100);
	assert_int_equal(queue_count(f->q), 0);
	assert_int_equal(queue_open_samples(f->q), 4);
	assert_int_equal(queue_next_seq(f->q), 1);
	assert_int_equal(queue_peek_unsent(f->q, &seq, &(uint8_t *){ NULL }, &(size_t){ 0 }),
			 -ENODATA);
	exec_other(f->db, "DROP TRIGGER fail_seal");
	assert_int_equal(seal_ok(f, 30, 4), 1);
	assert_int_equal(queue_open_samples(f->q), 0);
}

static void test_store_failure_reported(void **state)
{
	struct fixture *f = *state;
	struct sample s = make_sample(0);

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	exec_other(f->db, "CREATE TRIGGER fail_insert BEFORE INSERT ON samples"
			  " BEGIN SELECT RAISE(ABORT, 'disk full'); END;");
	assert_true(queue_add_sample(f->q, &s) < 0);
	assert_int_equal(queue_open_samples(f->q), 0);
	exec_other(f->db, "DROP TRIGGER fail_insert");
	assert_int_equal(queue_add_sample(f->q, &s), 0);
	/* Values outside the protocol's ranges are refused before storing. */
	s.fuel_permille = 1001;
	assert_int_equal(queue_add_sample(f->q, &s), -EINVAL);
	s = make_sample(1);
	s.heading_cdeg = 36000;
	s.present |= SAMPLE_HEADING;
	assert_int_equal(queue_add_sample(f->q, &s), -EINVAL);
	assert_int_equal(queue_open_samples(f->q), 1);
}

static void test_delete_only_acked(void **state)
{
	struct fixture *f = *state;
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t seq = 0;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	for (int i = 0; i < 3; i++) {
		add_samples(f, i * 2, 2);
		seal_ok(f, 30, 2);
	}
	expect_peek(f, 1, 2);
	assert_int_equal(queue_mark_inflight(f->q, 1), 0);
	expect_peek(f, 2, 2);
	assert_int_equal(queue_mark_inflight(f->q, 2), 0);
	assert_int_equal(queue_inflight(f->q), 2);
	/* Sending alone deletes nothing. */
	assert_int_equal(queue_count(f->q), 3);
	assert_int_equal(queue_ack(f->q, 2), 0);
	assert_int_equal(queue_count(f->q), 2);
	assert_int_equal(queue_ack(f->q, 2), -ENOENT);
	assert_int_equal(queue_ack(f->q, 99), -ENOENT);
	assert_int_equal(queue_inflight(f->q), 1);
	expect_peek(f, 3, 2);
	assert_int_equal(queue_mark_inflight(f->q, 3), 0);
	assert_int_equal(queue_peek_unsent(f->q, &seq, &data, &len), -ENODATA);
	/* Not acked batches survive a restart, unsent again. */
	reopen(f, 100);
	assert_int_equal(queue_count(f->q), 2);
	assert_int_equal(queue_inflight(f->q), 0);
	expect_peek(f, 1, 2);
}

static void test_inflight_reset(void **state)
{
	struct fixture *f = *state;
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t seq = 0;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	for (int i = 0; i < 4; i++) {
		add_samples(f, i, 1);
		seal_ok(f, 30, 1);
	}
	for (uint64_t s = 1; s <= 4; s++) {
		expect_peek(f, s, 1);
		assert_int_equal(queue_mark_inflight(f->q, s), 0);
	}
	assert_int_equal(queue_peek_unsent(f->q, &seq, &data, &len), -ENODATA);
	assert_int_equal(queue_inflight(f->q), 4);
	/* Broker refused batch 3: 3 and 4 are unsent again, 1 and 2 still in flight. */
	queue_requeue(f->q, 3);
	assert_int_equal(queue_inflight(f->q), 2);
	expect_peek(f, 3, 1);
	/* Connection lost: everything is unsent again, oldest first. */
	queue_requeue(f->q, 0);
	assert_int_equal(queue_inflight(f->q), 0);
	expect_peek(f, 1, 1);
	assert_int_equal(queue_mark_inflight(f->q, 1), 0);
	assert_int_equal(queue_mark_inflight(f->q, 0), -EINVAL);
	/* An ack after the reset still deletes. */
	assert_int_equal(queue_ack(f->q, 1), 0);
	expect_peek(f, 2, 1);
}

static void test_bound_drops_oldest(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(queue_open(f->db, 3, &f->q), 0);
	for (int i = 0; i < 5; i++) {
		add_samples(f, i, 1);
		assert_int_equal(seal_ok(f, 30, 1), (uint64_t)i + 1);
	}
	assert_int_equal(queue_count(f->q), 3);
	assert_int_equal(queue_dropped(f->q), 2);
	expect_peek(f, 3, 1);
	reopen(f, 3);
	assert_int_equal(queue_dropped(f->q), 2);
	assert_int_equal(queue_count(f->q), 3);
	/* A smaller bound after a restart drops down to it at the next seal. */
	reopen(f, 2);
	add_samples(f, 10, 1);
	assert_int_equal(seal_ok(f, 30, 1), 6);
	assert_int_equal(queue_count(f->q), 2);
	assert_int_equal(queue_dropped(f->q), 4);
	expect_peek(f, 5, 1);
}

static void test_bad_arguments(void **state)
{
	struct fixture *f = *state;
	uint64_t seq;

	assert_int_equal(queue_open(f->db, 0, &f->q), -EINVAL);
	assert_int_equal(queue_open(f->db, 10, &f->q), 0);
	assert_int_equal(queue_seal(f->q, 0, &seq), -EINVAL);
	assert_int_equal(queue_seal(f->q, CODEC_MAX_SAMPLES + 1, &seq), -EINVAL);
	assert_int_equal(queue_seal(f->q, 1, &seq), -ENODATA);
	queue_close(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seq_increases_and_persists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_samples_survive_power_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal_takes_oldest_up_to_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_seal_is_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_failure_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_only_acked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_drops_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
