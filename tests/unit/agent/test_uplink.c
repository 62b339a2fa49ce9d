/*
 * Unit tests of agent/uplink.c's receipt handling, on a real queue in a
 * temporary directory. uplink.c is included (the chrony way) so the tests
 * can hand it bus events directly; the bus is created but never started, so
 * nothing connects and nothing is published. A receipt deletes the batches
 * it names only when it is of the queue's own epoch: one for another epoch
 * (the queue before a wipe, or a gateway that sends epoch 0) deletes
 * nothing, not even for seqs this queue holds. The gateway's clock in a
 * receipt is checked against ours: more than 5 minutes off is warned (at
 * most once every 10 minutes), and a late receipt alone does not make our
 * clock "ahead" (the window of receipts is shortened to 50 ms here).
 */
#include <errno.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "uplink.c"

#include "testdir.h"

struct fixture {
	struct testdir dir;
	char db[300], log[300];
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
	testdir_file(&f->dir, "agent.log", f->log, sizeof(f->log));
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

/* The gateway's receipt for seqs of epoch, sent at its time gw_ms, arrives. */
static void receipt_at(struct fixture *f, uint64_t epoch, int64_t gw_ms, const uint64_t *seqs,
		       size_t n)
{
	struct bus_event ev = { .type = BUS_MESSAGE, .qos = 1 };
	uint8_t *buf = NULL;
	size_t len = 0;

	assert_int_equal(codec_encode_ack(epoch, gw_ms, seqs, n, &buf, &len), 0);
	ev.topic = f->u->t_acks;
	ev.payload = buf;
	ev.len = len;
	on_bus_event(&ev, f->u);
	free(buf);
}

/* A receipt without the gateway's time (an older gateway). */
static void receipt(struct fixture *f, uint64_t epoch, const uint64_t *seqs, size_t n)
{
	receipt_at(f, epoch, 0, seqs, n);
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

/* How many times needle occurs in the log file. */
static int log_count(struct fixture *f, const char *needle)
{
	char text[8192];
	size_t n;
	int count = 0;
	FILE *fp = fopen(f->log, "r");

	if (!fp)
		return 0;
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		count++;
	return count;
}

#define MIN_MS (60 * 1000LL)
#define WINDOW_MS 50 /* instead of UPLINK_CLOCK_WINDOW_MS */
#define AHEAD_3H02 (3 * 60 * MIN_MS + 2 * MIN_MS + 500) /* ours - gateway's */

static void test_clock_ahead_warned_once(void **state)
{
	struct fixture *f = *state;
	const uint64_t none[] = { 999 }; /* a seq we do not hold */
	int64_t skew = 0;

	log_init("test", LOG_LEVEL_INFO);
	assert_int_equal(log_open_file(f->log), 0);
	/* No time in the receipt: nothing is judged. */
	receipt(f, queue_epoch(f->q), none, 1);
	assert_int_equal(uplink_clock_skew_ms(f->u, &skew), -ENODATA);
	/* One late-looking receipt is not enough; one a window later judges. */
	f->u->clock_window_ms = WINDOW_MS;
	receipt_at(f, queue_epoch(f->q), loop_wall_ms() - AHEAD_3H02, none, 1);
	assert_int_equal(uplink_clock_skew_ms(f->u, &skew), -ENODATA);
	usleep((WINDOW_MS + 10) * 1000);
	receipt_at(f, queue_epoch(f->q), loop_wall_ms() - AHEAD_3H02, none, 1);
	assert_int_equal(uplink_clock_skew_ms(f->u, &skew), 0);
	assert_true(skew >= AHEAD_3H02 && skew < AHEAD_3H02 + 1000);
	assert_int_equal(log_count(f, "clock is 3h02m ahead of the gateway's: samples are dated "
				      "wrong; check the time source"),
			 1);
	/* Not again within 10 minutes, whatever the receipts say. */
	for (int i = 0; i < 6; i++)
		receipt_at(f, queue_epoch(f->q), loop_wall_ms() - AHEAD_3H02, none, 1);
	receipt_at(f, 0x5eed, loop_wall_ms() - 20 * MIN_MS, none, 1); /* another epoch's too */
	assert_int_equal(log_count(f, "clock is"), 1);
	/* Fixed: said once; a new error is then warned at once. */
	receipt_at(f, queue_epoch(f->q), loop_wall_ms() - 1000, none, 1);
	assert_int_equal(uplink_clock_skew_ms(f->u, &skew), 0);
	assert_true(skew >= 1000 && skew < 2000);
	assert_int_equal(log_count(f, "clock agrees with the gateway's again"), 1);
	receipt_at(f, queue_epoch(f->q), loop_wall_ms(), none, 1);
	assert_int_equal(log_count(f, "clock agrees with the gateway's again"), 1);
	/* Behind: one receipt is proof (a late receipt only makes us look ahead). */
	receipt_at(f, queue_epoch(f->q), loop_wall_ms() + 10 * MIN_MS + 500, none, 1);
	assert_int_equal(log_count(f, "clock is 10m00s behind the gateway's"), 1);
	assert_int_equal(uplink_clock_skew_ms(f->u, &skew), 0);
	assert_true(skew <= -10 * MIN_MS);
	log_init("test", LOG_LEVEL_WARN);
}

static void test_late_receipt_is_not_a_wrong_clock(void **state)
{
	struct fixture *f = *state;
	const uint64_t none[] = { 999 }; /* a seq we do not hold */
	int64_t skew = 0;

	log_init("test", LOG_LEVEL_INFO);
	assert_int_equal(log_open_file(f->log), 0);
	f->u->clock_window_ms = WINDOW_MS;
	/*
	 * After a night offline the broker delivers the receipts it held for
	 * our session (sent 9 hours ago), then fresh ones arrive.
	 */
	for (int i = 0; i < 3; i++)
		receipt_at(f, queue_epoch(f->q), loop_wall_ms() - 9 * 60 * MIN_MS, none, 1);
	receipt_at(f, queue_epoch(f->q), loop_wall_ms() - 300, none, 1);
	usleep((WINDOW_MS + 10) * 1000);
	receipt_at(f, queue_epoch(f->q), loop_wall_ms() - 9 * 60 * MIN_MS, none, 1);
	assert_int_equal(log_count(f, "clock is"), 0);
	assert_int_equal(uplink_clock_skew_ms(f->u, &skew), 0);
	assert_true(skew < 1000);
	/* The 5-minute limit itself is fine. */
	receipt_at(f, queue_epoch(f->q), loop_wall_ms() + 5 * MIN_MS - 1000, none, 1);
	assert_int_equal(log_count(f, "clock is"), 0);
	log_init("test", LOG_LEVEL_WARN);
}

static void test_format_span(void **state)
{
	static const struct {
		int64_t ms;
		const char *text;
	} cases[] = {
		{ 0, "0m00s" },
		{ -65000, "1m05s" },
		{ 3 * 3600000LL + 2 * 60000 + 59999, "3h02m" },
		{ 86400000LL * 3 + 4 * 3600000LL, "3d04h" },
		{ INT64_MIN, "106751991167d07h" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		format_span(cases[i].ms, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_own_epoch_deletes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_epoch_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_queue_takes_epoch_zero, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_clock_ahead_warned_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_receipt_is_not_a_wrong_clock, setup,
						teardown),
		cmocka_unit_test(test_format_span),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
