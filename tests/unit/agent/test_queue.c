/*
 * Unit tests of agent/queue.c on a real SQLite database in a temporary
 * directory: sequence numbers increase and survive a reopen, open samples
 * survive a "power cut" (close without sealing), sealing is atomic (a fault
 * injected with a trigger rolls everything back), the delivery states (a
 * PUBACK deletes nothing, a receipt deletes in any state, in-flight batches
 * can be made unsent again, overdue sent batches are requeued oldest first,
 * at most QUEUE_MAX_UNCONFIRMED are published and unconfirmed), the
 * bound drops the oldest batch and counts it persistently, and the queue
 * epoch (random, non-zero and persistent for a new queue, created in the
 * schema's transaction; 0 kept for a queue.db made by a pre-epoch agent),
 * and file modes (queue.db and its -wal/-shm are 0600 whatever the umask,
 * also when an older agent left them 0644).
 */
#include <errno.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

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

/*
 * Decodes the next unsent batch and checks its seq, its sample count and
 * that it carries the queue's epoch.
 */
static void expect_peek(struct fixture *f, uint64_t want_seq, size_t want_n)
{
	uint8_t *data = NULL;
	size_t len = 0, n = 0;
	uint64_t seq = 0, dseq = 0, epoch = 1;
	struct sample *samples = NULL;

	assert_int_equal(queue_peek_unsent(f->q, &seq, &data, &len), 0);
	assert_int_equal(seq, want_seq);
	assert_int_equal(codec_decode_batch(data, len, &epoch, &dseq, &samples, &n), 0);
	assert_int_equal(dseq, want_seq);
	assert_int_equal(epoch, queue_epoch(f->q));
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
	assert_int_equal(queue_delete(f->q, 1), 1);
	assert_int_equal(queue_delete(f->q, 2), 1);
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
	assert_int_equal(codec_decode_batch(data, len, NULL, &seq, &samples, &n), 0);
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

/* Seals n batches of one sample each (seqs 1..n on a fresh queue). */
static void seal_batches(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++) {
		add_samples(f, i, 1);
		seal_ok(f, 30, 1);
	}
}

/* Peeks, checks the seq and marks it in flight, as the uplink does. */
static void publish(struct fixture *f, uint64_t want_seq)
{
	expect_peek(f, want_seq, 1);
	assert_int_equal(queue_mark_inflight(f->q, want_seq), 0);
}

static void expect_nothing_unsent(struct fixture *f, int want)
{
	uint8_t *data = NULL;
	size_t len = 0;
	uint64_t seq = 0;

	assert_int_equal(queue_peek_unsent(f->q, &seq, &data, &len), want);
	assert_null(data);
}

static void test_puback_does_not_delete(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	for (int i = 0; i < 3; i++) {
		add_samples(f, i * 2, 2);
		seal_ok(f, 30, 2);
	}
	expect_peek(f, 1, 2);
	assert_int_equal(queue_mark_inflight(f->q, 1), 0);
	expect_peek(f, 2, 2);
	assert_int_equal(queue_mark_inflight(f->q, 2), 0);
	assert_int_equal(queue_mark_inflight(f->q, 2), -EEXIST);
	assert_int_equal(queue_inflight(f->q), 2);
	/* The broker's PUBACK: sent, still stored, not handed out again. */
	assert_int_equal(queue_mark_sent(f->q, 1, 1000), 0);
	assert_int_equal(queue_mark_sent(f->q, 2, 1001), 0);
	assert_int_equal(queue_mark_sent(f->q, 2, 1002), -ENOENT);
	assert_int_equal(queue_mark_sent(f->q, 3, 1003), -ENOENT); /* never published */
	assert_int_equal(queue_count(f->q), 3);
	assert_int_equal(queue_inflight(f->q), 0);
	assert_int_equal(queue_sent(f->q), 2);
	expect_peek(f, 3, 2);
	/* The gateway's receipt deletes. */
	assert_int_equal(queue_delete(f->q, 2), 1);
	assert_int_equal(queue_count(f->q), 2);
	assert_int_equal(queue_sent(f->q), 1);
	assert_int_equal(queue_mark_inflight(f->q, 3), 0);
	expect_nothing_unsent(f, -ENODATA);
	/* Not confirmed batches survive a restart, unsent again. */
	reopen(f, 100);
	assert_int_equal(queue_count(f->q), 2);
	assert_int_equal(queue_inflight(f->q), 0);
	assert_int_equal(queue_sent(f->q), 0);
	expect_peek(f, 1, 2);
}

static void test_receipt_in_any_state(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	seal_batches(f, 4);
	publish(f, 1);
	publish(f, 2);
	assert_int_equal(queue_mark_sent(f->q, 1, 500), 0);
	/* A receipt before the PUBACK: deleted; the late PUBACK finds nothing. */
	assert_int_equal(queue_delete(f->q, 2), 1);
	assert_int_equal(queue_inflight(f->q), 0);
	assert_int_equal(queue_mark_sent(f->q, 2, 600), -ENOENT);
	assert_int_equal(queue_sent(f->q), 1);
	/* A receipt for a sent batch. */
	assert_int_equal(queue_delete(f->q, 1), 1);
	assert_int_equal(queue_sent(f->q), 0);
	/* A receipt for an unsent batch (the gateway had it from an earlier run). */
	assert_int_equal(queue_delete(f->q, 4), 1);
	/* Already deleted, never existed, impossible: no error, nothing changes. */
	assert_int_equal(queue_delete(f->q, 1), 0);
	assert_int_equal(queue_delete(f->q, 99), 0);
	assert_int_equal(queue_delete(f->q, 0), 0);
	assert_int_equal(queue_delete(f->q, UINT64_MAX), 0);
	assert_int_equal(queue_count(f->q), 1);
	expect_peek(f, 3, 1);
	reopen(f, 100);
	assert_int_equal(queue_count(f->q), 1);
	expect_peek(f, 3, 1);
}

static void test_inflight_reset(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	seal_batches(f, 5);
	for (uint64_t s = 1; s <= 4; s++)
		publish(f, s);
	expect_peek(f, 5, 1);
	assert_int_equal(queue_mark_inflight(f->q, 5), 0);
	expect_nothing_unsent(f, -ENODATA);
	assert_int_equal(queue_inflight(f->q), 5);
	/* Batch 1 reached the broker. */
	assert_int_equal(queue_mark_sent(f->q, 1, 100), 0);
	/* Broker refused batch 3: 3, 4 and 5 are unsent again, 2 still in flight. */
	queue_requeue(f->q, 3);
	assert_int_equal(queue_inflight(f->q), 1);
	assert_int_equal(queue_sent(f->q), 1);
	expect_peek(f, 3, 1);
	/* Connection lost: in flight becomes unsent, sent keeps waiting. */
	queue_requeue(f->q, 0);
	assert_int_equal(queue_inflight(f->q), 0);
	assert_int_equal(queue_sent(f->q), 1);
	expect_peek(f, 2, 1);
	assert_int_equal(queue_mark_inflight(f->q, 2), 0);
	assert_int_equal(queue_mark_inflight(f->q, 0), -EINVAL);
	/* A receipt after the reset still deletes. */
	assert_int_equal(queue_delete(f->q, 1), 1);
	assert_int_equal(queue_delete(f->q, 2), 1);
	expect_peek(f, 3, 1);
}

static void test_timeout_requeues_in_order(void **state)
{
	struct fixture *f = *state;
	uint64_t oldest = 0;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	seal_batches(f, 6);
	for (uint64_t s = 1; s <= 5; s++)
		publish(f, s);
	assert_int_equal(queue_oldest_sent(f->q, &oldest), -ENODATA);
	/* PUBACKs out of order in time: 3 at 1000, 1 at 1500, 2 and 4 at 3000. */
	assert_int_equal(queue_mark_sent(f->q, 3, 1000), 0);
	assert_int_equal(queue_mark_sent(f->q, 1, 1500), 0);
	assert_int_equal(queue_mark_sent(f->q, 2, 3000), 0);
	assert_int_equal(queue_mark_sent(f->q, 4, 3000), 0);
	assert_int_equal(queue_oldest_sent(f->q, &oldest), 0);
	assert_int_equal(oldest, 1000);
	assert_int_equal(queue_expire_sent(f->q, 999), 0);
	/* Overdue: 3 and 1 (sent at or before 1500) are unsent again. */
	assert_int_equal(queue_expire_sent(f->q, 1500), 2);
	assert_int_equal(queue_sent(f->q), 2);
	assert_int_equal(queue_inflight(f->q), 1); /* 5: in flight does not time out */
	assert_int_equal(queue_oldest_sent(f->q, &oldest), 0);
	assert_int_equal(oldest, 3000);
	/* Resent oldest first, before the never-sent batch 6. */
	publish(f, 1);
	publish(f, 3);
	publish(f, 6);
	expect_nothing_unsent(f, -ENODATA);
	/* A receipt for an expired and resent batch still deletes it. */
	assert_int_equal(queue_delete(f->q, 3), 1);
	assert_int_equal(queue_expire_sent(f->q, UINT64_MAX), 2); /* 2 and 4 */
	assert_int_equal(queue_oldest_sent(f->q, &oldest), -ENODATA);
	expect_peek(f, 2, 1);
	assert_int_equal(queue_count(f->q), 5);
}

static void test_unconfirmed_bound(void **state)
{
	struct fixture *f = *state;
	const int n = QUEUE_MAX_UNCONFIRMED;

	assert_int_equal(queue_open(f->db, 1000, &f->q), 0);
	seal_batches(f, n + 2);
	for (int s = 1; s <= n; s++) {
		publish(f, (uint64_t)s);
		if (s % 2)
			assert_int_equal(queue_mark_sent(f->q, (uint64_t)s, 10), 0);
	}
	/* Full: nothing more is handed out, whatever the states. */
	expect_nothing_unsent(f, -ENOBUFS);
	assert_int_equal(queue_mark_inflight(f->q, (uint64_t)n + 1), -ENOBUFS);
	/* Requeuing in-flight batches makes room, for them first. */
	queue_requeue(f->q, (uint64_t)n); /* n is even: in flight */
	expect_peek(f, (uint64_t)n, 1);
	assert_int_equal(queue_mark_inflight(f->q, (uint64_t)n), 0);
	expect_nothing_unsent(f, -ENOBUFS);
	/* A receipt makes room for the next new batch. */
	assert_int_equal(queue_delete(f->q, 1), 1);
	publish(f, (uint64_t)n + 1);
	expect_nothing_unsent(f, -ENOBUFS);
	/* So does a timeout; the overdue batches come first. */
	assert_int_equal(queue_expire_sent(f->q, 10), n / 2 - 1);
	expect_peek(f, 3, 1);
	/* After a restart nothing is published, so nothing is bounded. */
	reopen(f, 1000);
	expect_peek(f, 2, 1);
}

static void test_bound_forgets_dropped(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(queue_open(f->db, 3, &f->q), 0);
	seal_batches(f, 3);
	publish(f, 1);
	publish(f, 2);
	assert_int_equal(queue_mark_sent(f->q, 1, 10), 0);
	/* The bound drops 1 (sent) and 2 (in flight): their states go with them. */
	add_samples(f, 10, 2);
	seal_ok(f, 1, 1);
	seal_ok(f, 1, 1);
	assert_int_equal(queue_count(f->q), 3);
	assert_int_equal(queue_dropped(f->q), 2);
	assert_int_equal(queue_inflight(f->q), 0);
	assert_int_equal(queue_sent(f->q), 0);
	assert_int_equal(queue_mark_sent(f->q, 2, 20), -ENOENT);
	expect_peek(f, 3, 1);
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

/* One integer from the database at db (opened separately), or -1 if no row. */
static int64_t query_other(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return v;
}

static void test_epoch_new_and_persists(void **state)
{
	struct fixture *f = *state;
	uint64_t epoch;

	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	epoch = queue_epoch(f->q);
	assert_true(epoch != 0);
	/* Stored with the schema, before anything was sealed. */
	assert_int_equal((uint64_t)query_other(f->db, "SELECT value FROM meta WHERE key = 'epoch'"),
			 epoch);
	add_samples(f, 0, 3);
	assert_int_equal(seal_ok(f, 30, 3), 1);
	expect_peek(f, 1, 3);
	reopen(f, 100);
	assert_int_equal(queue_epoch(f->q), epoch);
	add_samples(f, 3, 2);
	assert_int_equal(seal_ok(f, 30, 2), 2);
	/* Every batch ever sealed carries the same epoch. */
	assert_int_equal(queue_delete(f->q, 1), 1);
	expect_peek(f, 2, 2);
	reopen(f, 100);
	assert_int_equal(queue_epoch(f->q), epoch);
}

static void test_fresh_queues_differ(void **state)
{
	struct fixture *f = *state;
	struct queue *other = NULL;
	char path[300];

	/* A wiped flash: the same path, created again. */
	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	testdir_file(&f->dir, "wiped.db", path, sizeof(path));
	assert_int_equal(queue_open(path, 100, &other), 0);
	assert_true(queue_epoch(other) != 0);
	assert_true(queue_epoch(other) != queue_epoch(f->q));
	queue_close(other);
	assert_int_equal(remove(path), 0);
	assert_int_equal(queue_open(path, 100, &other), 0);
	assert_true(queue_epoch(other) != 0);
	assert_true(queue_epoch(other) != queue_epoch(f->q));
	queue_close(other);
}

static void test_epoch_created_with_schema(void **state)
{
	struct fixture *f = *state;

	/* Fault injection: storing the epoch of a new queue fails. */
	exec_other(f->db, "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
			  " WITHOUT ROWID;"
			  "CREATE TRIGGER fail_epoch BEFORE INSERT ON meta WHEN NEW.key = 'epoch'"
			  " BEGIN SELECT RAISE(ABORT, 'injected fault'); END;");
	assert_true(queue_open(f->db, 100, &f->q) < 0);
	assert_null(f->q);
	/* Nothing half-made: no counters, no tables beyond the one we made. */
	assert_int_equal(query_other(f->db, "SELECT count(*) FROM meta"), 0);
	assert_int_equal(query_other(f->db, "SELECT count(*) FROM sqlite_master"
					    " WHERE name IN ('samples', 'batches')"),
			 0);
	exec_other(f->db, "DROP TRIGGER fail_epoch");
	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	assert_true(queue_epoch(f->q) != 0);
	assert_int_equal(queue_next_seq(f->q), 1);
}

/*
 * A queue.db as an agent before epochs left it (that agent's schema, by
 * hand): next seq 3, batch 2 stored (encoded without epoch), batch 1 already
 * deleted, two samples open.
 */
static void make_legacy_queue(const char *db)
{
	static const char schema[] =
		"PRAGMA journal_mode = WAL;"
		"CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
		"INSERT INTO meta(key, value) VALUES ('next_seq', 3), ('dropped', 0);"
		"CREATE TABLE samples(id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL,"
		" present INTEGER NOT NULL, fix INTEGER NOT NULL, odometer_m INTEGER NOT NULL,"
		" fuel_permille INTEGER NOT NULL, lat_e7 INTEGER NOT NULL, lon_e7 INTEGER NOT NULL,"
		" speed_cms INTEGER NOT NULL, heading_cdeg INTEGER NOT NULL);"
		"CREATE TABLE batches(seq INTEGER PRIMARY KEY, sealed_ms INTEGER NOT NULL,"
		" nsamples INTEGER NOT NULL, data BLOB NOT NULL);"
		"PRAGMA user_version = 1;";
	struct sample batch[4];
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;

	for (int i = 0; i < 4; i++)
		batch[i] = make_sample(i);
	assert_int_equal(codec_encode_batch(0, 2, batch, 4, &buf, &len), 0);
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, schema, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h,
					    "INSERT INTO batches(seq, sealed_ms, nsamples, data)"
					    " VALUES (2, 1700000004000, 4, ?1)",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_blob(st, 1, buf, (int)len, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	for (int i = 4; i < 6; i++) {
		struct sample s = make_sample(i);
		char sql[300];

		snprintf(sql, sizeof(sql),
			 "INSERT INTO samples(time_ms, present, fix, odometer_m, fuel_permille,"
			 " lat_e7, lon_e7, speed_cms, heading_cdeg)"
			 " VALUES (%lld, %u, %d, %lld, %d, %d, %d, %d, 0)",
			 (long long)s.time_ms, s.present, (int)s.fix, (long long)s.odometer_m,
			 s.fuel_permille, s.lat_e7, s.lon_e7, s.speed_cms);
		assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	}
	sqlite3_close(h);
	free(buf);
}

static void test_legacy_queue_keeps_epoch_zero(void **state)
{
	struct fixture *f = *state;

	make_legacy_queue(f->db);
	assert_int_equal(queue_open(f->db, 100, &f->q), 0);
	assert_int_equal(queue_epoch(f->q), 0);
	assert_int_equal(queue_next_seq(f->q), 3);
	assert_int_equal(queue_count(f->q), 1);
	assert_int_equal(queue_open_samples(f->q), 2);
	/* The decision is stored, and the old batch decodes as before. */
	assert_int_equal(query_other(f->db, "SELECT value FROM meta WHERE key = 'epoch'"), 0);
	expect_peek(f, 2, 4);
	/* New batches of this queue go on with epoch 0 and the old seqs. */
	assert_int_equal(seal_ok(f, 30, 2), 3);
	assert_int_equal(queue_delete(f->q, 2), 1);
	expect_peek(f, 3, 2);
	reopen(f, 100);
	assert_int_equal(queue_epoch(f->q), 0);
	assert_int_equal(queue_next_seq(f->q), 4);
	expect_peek(f, 3, 2);
}

/* The permission bits of path (-1 if it does not exist). */
static int file_mode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

/* queue.db, -wal and -shm of f are all 0600. */
static void expect_private(struct fixture *f)
{
	char side[320];

	assert_int_equal(file_mode(f->db), 0600);
	snprintf(side, sizeof(side), "%s-wal", f->db);
	assert_int_equal(file_mode(side), 0600);
	snprintf(side, sizeof(side), "%s-shm", f->db);
	assert_int_equal(file_mode(side), 0600);
}

static void test_files_private_whatever_umask(void **state)
{
	struct fixture *f = *state;
	mode_t old = umask(0);
	char side[320];
	uint64_t seq;
	FILE *fp;

	assert_int_equal(queue_open(f->db, 10, &f->q), 0);
	add_samples(f, 0, 3);
	assert_int_equal(queue_seal(f->q, 30, &seq), 3);
	expect_private(f);
	queue_close(f->q);
	f->q = NULL;
	/* Files an older agent left world-readable are tightened at open. */
	assert_int_equal(chmod(f->db, 0644), 0);
	snprintf(side, sizeof(side), "%s-wal", f->db);
	fp = fopen(side, "a"); /* SQLite removes the WAL at a clean close */
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(chmod(side, 0666), 0);
	assert_int_equal(queue_open(f->db, 10, &f->q), 0);
	add_samples(f, 3, 1);
	expect_private(f);
	umask(old);
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
		cmocka_unit_test_setup_teardown(test_puback_does_not_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt_in_any_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_inflight_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_requeues_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unconfirmed_bound, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_forgets_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bound_drops_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_epoch_new_and_persists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fresh_queues_differ, setup, teardown),
		cmocka_unit_test_setup_teardown(test_epoch_created_with_schema, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_queue_keeps_epoch_zero, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_files_private_whatever_umask, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
