/*
 * Unit tests of agent/uplink.c's receipt handling, on a real queue in a
 * temporary directory. uplink.c is included (the chrony way) so the tests
 * can hand it bus events directly; the bus is created but never started, so
 * nothing connects and nothing is published. A receipt deletes the batches
 * it names only when it is of the queue's own epoch: one for another epoch
 * (the queue before a wipe, or a gateway that sends epoch 0) deletes
 * nothing, not even for seqs this queue holds.
 */
#include <errno.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "uplink.c"

#include "testdir.h"

struct fixture {
	struct testdir dir;
	char db[300];
	struct loop *loop;
	struct queue *q;
	struct uplink *u;
};

static int start(struct fixture *f)
{
	const struct uplink_config conf = {
		.vin = "WP0ZZZ99ZTS392124",
		.broker_uri = "tcp://127.0.0.1:1", /* never dialled: not started */
		.agent_version = "test",
	};

	if (queue_open(f->db, 100, &f->q) < 0)
		return -1;
	return uplink_new(f->loop, &conf, f->q, NULL, NULL, &f->u);
}

static void stop(struct fixture *f)
{
	uplink_free(f->u);
	f->u = NULL;
	queue_close(f->q);
	f->q = NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || testdir_make(&f->dir) < 0 || loop_new(&f->loop) < 0) {
		free(f);
		return -1;
	}
	testdir_file(&f->dir, "queue.db", f->db, sizeof(f->db));
	if (start(f) < 0) {
		stop(f);
		loop_free(f->loop);
		testdir_remove(&f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stop(f);
	loop_free(f->loop);
	testdir_remove(&f->dir);
	free(f);
	return 0;
}

/* Seals n batches of one sample each (seqs 1..n on a fresh queue). */
static void seal_batches(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++) {
		struct sample s = { .time_ms = 1700000000000LL + i * 1000, .fix = FIX_NONE };
		uint64_t seq;

		assert_int_equal(queue_add_sample(f->q, &s), 0);
		assert_int_equal(queue_seal(f->q, 30, &seq), 1);
	}
}

/* The gateway's receipt for seqs of epoch arrives on our acks topic. */
static void receipt(struct fixture *f, uint64_t epoch, const uint64_t *seqs, size_t n)
{
	struct bus_event ev = { .type = BUS_MESSAGE, .qos = 1 };
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_int_equal(codec_encode_ack(epoch, 0, seqs, n, &buf, &len), 0);
	ev.topic = f->u->t_acks;
	ev.payload = buf;
	ev.len = len;
	on_bus_event(&ev, f->u);
	free(buf);
}

static void test_own_epoch_deletes(void **state)
{
	struct fixture *f = *state;
	const uint64_t seqs[] = { 1, 2 };

	seal_batches(f, 3);
	assert_true(queue_epoch(f->q) != 0);
	receipt(f, queue_epoch(f->q), seqs, 2);
	assert_int_equal(queue_count(f->q), 1);
}

static void test_foreign_epoch_ignored(void **state)
{
	struct fixture *f = *state;
	const uint64_t seqs[] = { 1, 2, 3 };
	uint64_t epoch;

	seal_batches(f, 3);
	epoch = queue_epoch(f->q);
	assert_int_equal(queue_mark_inflight(f->q, 3), 0);
	/* The wiped queue's receipt, and one from a gateway that sends none. */
	receipt(f, epoch ^ 1, seqs, 3);
	receipt(f, 0, seqs, 3);
	assert_int_equal(queue_count(f->q), 3);
	/* Nor is the delivery state of a batch in flight touched. */
	assert_int_equal(queue_inflight(f->q), 1);
	receipt(f, epoch, seqs, 3);
	assert_int_equal(queue_count(f->q), 0);
	assert_int_equal(queue_inflight(f->q), 0);
}

static void test_legacy_queue_takes_epoch_zero(void **state)
{
	struct fixture *f = *state;
	const uint64_t one[] = { 1 }, two[] = { 2 };
	sqlite3 *h = NULL;

	seal_batches(f, 2);
	stop(f);
	/* What queue_open leaves of a queue.db made before epochs. */
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(
		sqlite3_exec(h, "UPDATE meta SET value = 0 WHERE key = 'epoch'", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(start(f), 0);
	assert_int_equal(queue_epoch(f->q), 0);
	receipt(f, 0x5eed, one, 1);
	assert_int_equal(queue_count(f->q), 2);
	receipt(f, 0, two, 1);
	assert_int_equal(queue_count(f->q), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_own_epoch_deletes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_epoch_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_queue_takes_epoch_zero, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
