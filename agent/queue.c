/*
 * The store-and-forward queue on SQLite; see queue.h for the contract and
 * docs/agent.md for the durability choices.
 *
 * Schema (user_version 1):
 *   meta(key, value)      next_seq and dropped, the persistent counters, and
 *                         epoch, the queue's identity (see queue_create)
 *   samples(id, ...)      open samples, one row each, id = insertion order
 *   batches(seq, ...)     sealed, encoded TelemetryBatch messages
 * Every statement is prepared once at open. Counters that are also stored
 * (next_seq, dropped, the batch count) are cached and updated only after the
 * transaction that changes them has committed.
 *
 * Delivery state is not stored: struct queue holds a small table (struct
 * pub, sorted by seq) of the batches that are in flight or sent; every other
 * stored batch is unsent. Finding the oldest unsent batch walks the batches
 * in seq order and skips those in the table, so it reads at most
 * QUEUE_MAX_UNCONFIRMED + 1 index entries and one blob.
 */
#include "queue.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fileperm.h"
#include "log.h"
#include "loop.h"
#include "sqlerr.h"

#define QUEUE_LOG_REPEAT_MS 60000 /* same failing operation: log once a minute */
#define QUEUE_BUSY_TIMEOUT_MS 100 /* never block the loop for long */

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT_SAMPLE,
	ST_COUNT_SAMPLES,
	ST_SELECT_SAMPLES,
	ST_DELETE_SAMPLES,
	ST_INSERT_BATCH,
	ST_OLDEST_BATCH,
	ST_DELETE_BATCH,
	ST_SEQS,
	ST_DATA,
	ST_SET_META,
	ST_COUNT,
};

static const char *const queue_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_INSERT_SAMPLE] = "INSERT INTO samples(time_ms, present, fix, odometer_m, fuel_permille,"
			     " lat_e7, lon_e7, speed_cms, heading_cdeg)"
			     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[ST_COUNT_SAMPLES] = "SELECT count(*) FROM samples",
	[ST_SELECT_SAMPLES] = "SELECT id, time_ms, present, fix, odometer_m, fuel_permille, lat_e7,"
			      " lon_e7, speed_cms, heading_cdeg FROM samples ORDER BY id LIMIT ?1",
	[ST_DELETE_SAMPLES] = "DELETE FROM samples WHERE id <= ?1",
	[ST_INSERT_BATCH] = "INSERT INTO batches(seq, sealed_ms, nsamples, data)"
			    " VALUES (?1, ?2, ?3, ?4)",
	[ST_OLDEST_BATCH] = "SELECT seq FROM batches ORDER BY seq LIMIT 1",
	[ST_DELETE_BATCH] = "DELETE FROM batches WHERE seq = ?1",
	[ST_SEQS] = "SELECT seq FROM batches ORDER BY seq",
	[ST_DATA] = "SELECT data FROM batches WHERE seq = ?1",
	[ST_SET_META] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
};

/*
 * The tables, run inside queue_create's transaction. The meta rows are
 * written there too: whether they exist tells a new queue from an old one.
 */
static const char queue_schema[] =
	"CREATE TABLE IF NOT EXISTS meta("
	" key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS samples("
	" id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, present INTEGER NOT NULL,"
	" fix INTEGER NOT NULL, odometer_m INTEGER NOT NULL, fuel_permille INTEGER NOT NULL,"
	" lat_e7 INTEGER NOT NULL, lon_e7 INTEGER NOT NULL, speed_cms INTEGER NOT NULL,"
	" heading_cdeg INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS batches("
	" seq INTEGER PRIMARY KEY, sealed_ms INTEGER NOT NULL, nsamples INTEGER NOT NULL,"
	" data BLOB NOT NULL);"
	"PRAGMA user_version = 1;";

/* Delivery state of a published batch (unsent batches have no entry). */
enum pub_state {
	PUB_INFLIGHT = 1, /* published, waiting for the broker's PUBACK */
	PUB_SENT,	  /* PUBACK received, waiting for the gateway's receipt */
};

struct pub {
	uint64_t seq;
	uint64_t sent_ms; /* monotonic time of the PUBACK (PUB_SENT only) */
	enum pub_state state;
};

struct queue {
	sqlite3 *db;			       /* owned */
	sqlite3_stmt *st[ST_COUNT];	       /* owned, prepared at open */
	unsigned max_batches;		       /* bound on stored batches, >= 1 */
	uint64_t epoch;			       /* meta.epoch; 0 for a pre-epoch queue */
	uint64_t next_seq;		       /* cached meta.next_seq */
	uint64_t dropped;		       /* cached meta.dropped */
	int64_t count;			       /* cached number of stored batches */
	struct pub pub[QUEUE_MAX_UNCONFIRMED]; /* in flight or sent, sorted by seq */
	unsigned npub;			       /* entries used in pub */
	const char *last_failed_op;	       /* for summarising repeated failures */
	uint64_t last_failed_ms;
	unsigned suppressed; /* failures not logged since last_failed_ms */
};

/*
 * Logs a failed operation once (repeats of the same operation within a
 * minute are counted and summarised) and returns the translated errno.
 */
static int queue_fail(struct queue *q, const char *op, int rc)
{
	uint64_t now = loop_now_ms();

	if (q->last_failed_op == op && now - q->last_failed_ms < QUEUE_LOG_REPEAT_MS) {
		q->suppressed++;
		return sqlerr_errno(rc);
	}
	if (q->suppressed)
		log_error("queue: %s failed: %s (%d) (%u similar failures not logged)", op,
			  q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc), rc, q->suppressed);
	else
		log_error("queue: %s failed: %s (%d)", op,
			  q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc), rc);
	q->last_failed_op = op;
	q->last_failed_ms = now;
	q->suppressed = 0;
	return sqlerr_errno(rc);
}

/* Resets and clears the bindings of statement i; returns it. */
static sqlite3_stmt *stmt(struct queue *q, int i)
{
	sqlite3_reset(q->st[i]);
	sqlite3_clear_bindings(q->st[i]);
	return q->st[i];
}

/* Runs a statement that returns no rows (or whose rows are ignored). */
static int run(struct queue *q, int i, const char *op)
{
	int rc = sqlite3_step(q->st[i]);

	sqlite3_reset(q->st[i]);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return queue_fail(q, op, rc);
	return 0;
}

/* Runs a one-row, one-integer query; *ret_v is untouched on failure. */
static int query_int(struct queue *q, int i, const char *op, int64_t *ret_v)
{
	int rc = sqlite3_step(q->st[i]);
	int r = 0;

	if (rc == SQLITE_ROW)
		*ret_v = sqlite3_column_int64(q->st[i], 0);
	else if (rc == SQLITE_DONE)
		r = -ENODATA;
	else
		r = queue_fail(q, op, rc);
	sqlite3_reset(q->st[i]);
	return r;
}

/* Stores one persistent counter (inside the caller's transaction). */
static int set_meta(struct queue *q, const char *key, uint64_t v)
{
	sqlite3_stmt *s = stmt(q, ST_SET_META);

	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)v);
	return run(q, ST_SET_META, "update counters");
}

/* Reads the persistent counters into the cache. */
static int queue_load(struct queue *q)
{
	static const char sql[] =
		"SELECT (SELECT value FROM meta WHERE key = 'next_seq'),"
		" (SELECT value FROM meta WHERE key = 'dropped'),"
		" (SELECT coalesce(max(seq), 0) FROM batches), (SELECT count(*) FROM batches),"
		" (SELECT value FROM meta WHERE key = 'epoch')";
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(q->db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return queue_fail(q, "read counters", rc);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		r = queue_fail(q, "read counters", rc);
		goto out;
	}
	q->next_seq = (uint64_t)sqlite3_column_int64(s, 0);
	q->dropped = (uint64_t)sqlite3_column_int64(s, 1);
	/* Defensive: a seq is never reused, even if meta was damaged. */
	if (q->next_seq <= (uint64_t)sqlite3_column_int64(s, 2))
		q->next_seq = (uint64_t)sqlite3_column_int64(s, 2) + 1;
	if (q->next_seq == 0)
		q->next_seq = 1;
	q->count = sqlite3_column_int64(s, 3);
	q->epoch = (uint64_t)sqlite3_column_int64(s, 4); /* queue_create wrote it */
out:
	sqlite3_finalize(s);
	return r;
}

/*
 * Draws a random non-zero epoch from the kernel CSPRNG. getrandom(2) without
 * GRND_NONBLOCK waits until the pool is seeded (only ever early at the first
 * boot): an unseeded pool could hand a wiped unit the epoch it had before,
 * which is the collision the epoch exists to prevent. Returns 0 or -errno.
 */
static int draw_epoch(uint64_t *ret_epoch)
{
	uint64_t v = 0;

	while (v == 0) {
		uint8_t *p = (uint8_t *)&v;
		size_t got = 0;

		while (got < sizeof(v)) {
			ssize_t n = getrandom(p + got, sizeof(v) - got, 0);

			if (n < 0) {
				if (errno == EINTR)
					continue;
				return -errno;
			}
			got += (size_t)n;
		}
	}
	*ret_epoch = v;
	return 0;
}

/*
 * Creates the tables and the meta rows, in one transaction, so a queue is
 * never left without its counters or its epoch.
 *
 * A queue without meta.next_seq is new (an earlier agent writes next_seq in
 * the statement right after creating meta, before there are any batches):
 * it gets next_seq 1 and a random epoch, which then never changes.
 *
 * A queue that has next_seq but no epoch was made by an agent that predates
 * epochs. It keeps epoch 0 (written down, so the decision is made once) and
 * goes on as the gateway knows it, (VIN, 0, seq). Drawing an epoch for it
 * would be wrong either way: its stored batches carry epoch 0 in their
 * bytes, so the gateway would acknowledge them with epoch 0 and the agent,
 * now of another epoch, would ignore those receipts and resend the batches
 * for ever; re-encoding them instead would make a batch the gateway already
 * stored (its receipt still on the way) look new, and be stored twice.
 * Keeping 0 gives up nothing: the hazard an epoch guards against is a queue
 * created afresh under a VIN that already sent batches (a wiped flash, a
 * replaced head unit), and such a queue is new here and draws an epoch.
 */
static int queue_create(struct queue *q)
{
	static const char sql_has_seq[] = "SELECT 1 FROM meta WHERE key = 'next_seq'";
	static const char sql_new[] = "INSERT INTO meta(key, value)"
				      " VALUES ('next_seq', 1), ('dropped', 0), ('epoch', ?1)";
	static const char sql_legacy[] = "INSERT OR IGNORE INTO meta(key, value)"
					 " VALUES ('epoch', 0)";
	sqlite3_stmt *s = NULL;
	uint64_t epoch = 0;
	int rc, r = 0, is_new;

	rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->db, queue_schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(q->db, sql_has_seq, -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	s = NULL;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	is_new = rc == SQLITE_DONE;
	if (is_new) {
		r = draw_epoch(&epoch);
		if (r < 0) {
			log_error("queue: cannot draw a queue epoch: %s", strerror(-r));
			goto rollback;
		}
	}
	rc = sqlite3_prepare_v2(q->db, is_new ? sql_new : sql_legacy, -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	if (is_new)
		sqlite3_bind_int64(s, 1, (sqlite3_int64)epoch);
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc != SQLITE_DONE)
		goto fail;
	rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	if (is_new)
		log_info("queue: new queue, epoch %016" PRIx64, epoch);
	return 0;
fail:
	r = queue_fail(q, "create schema", rc);
rollback:
	if (!sqlite3_get_autocommit(q->db))
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

int queue_open(const char *path, unsigned max_batches, struct queue **ret_q)
{
	struct queue *q;
	char *msg = NULL;
	int rc, r;

	if (!path || max_batches == 0)
		return -EINVAL;
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->max_batches = max_batches;
	/* 0600 before SQLite makes it 0644: it holds the car's positions. */
	r = fileperm_private(path);
	if (r < 0) {
		log_error("queue: cannot create %s with mode 0600: %s", path, strerror(-r));
		goto fail;
	}
	rc = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK) {
		r = queue_fail(q, "open database", rc);
		goto fail;
	}
	sqlite3_busy_timeout(q->db, QUEUE_BUSY_TIMEOUT_MS);
	/*
	 * WAL + synchronous=FULL: a commit is on the storage when it returns
	 * (NORMAL could lose the last commits on power loss).
	 */
	rc = sqlite3_exec(q->db,
			  "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
			  " PRAGMA journal_size_limit = 4194304;",
			  NULL, NULL, &msg);
	sqlite3_free(msg);
	if (rc != SQLITE_OK) {
		r = queue_fail(q, "set journal mode", rc);
		goto fail;
	}
	/* SQLite gave -wal and -shm the main file's mode; older agents' were 0644. */
	r = fileperm_sqlite_sidecars(path);
	if (r < 0)
		log_warn("queue: cannot set the mode of %s-wal/-shm to 0600: %s", path,
			 strerror(-r));
	r = queue_create(q);
	if (r < 0)
		goto fail;
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(q->db, queue_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&q->st[i], NULL);
		if (rc != SQLITE_OK) {
			r = queue_fail(q, "prepare statements", rc);
			goto fail;
		}
	}
	r = queue_load(q);
	if (r < 0)
		goto fail;
	*ret_q = q;
	return 0;
fail:
	queue_close(q);
	return r;
}

void queue_close(struct queue *q)
{
	if (!q)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	if (q->db)
		sqlite3_close(q->db);
	free(q);
}

/* Returns 1 if every present value of s is inside the protocol's ranges. */
static int sample_valid(const struct sample *s)
{
	if (s->present & ~(unsigned)SAMPLE_KNOWN)
		return 0;
	if (s->fix < FIX_UNKNOWN || s->fix > FIX_3D || s->time_ms < 0)
		return 0;
	if ((s->present & SAMPLE_ODOMETER) && s->odometer_m < 0)
		return 0;
	if ((s->present & SAMPLE_FUEL) && (s->fuel_permille < 0 || s->fuel_permille > 1000))
		return 0;
	if ((s->present & SAMPLE_POSITION) && (s->lat_e7 < -900000000 || s->lat_e7 > 900000000 ||
					       s->lon_e7 < -1800000000 || s->lon_e7 > 1800000000))
		return 0;
	if ((s->present & SAMPLE_SPEED) && s->speed_cms < 0)
		return 0;
	if ((s->present & SAMPLE_HEADING) && (s->heading_cdeg < 0 || s->heading_cdeg > 35999))
		return 0;
	return 1;
}

int queue_add_sample(struct queue *q, const struct sample *s)
{
	sqlite3_stmt *st;

	if (!sample_valid(s))
		return -EINVAL;
	st = stmt(q, ST_INSERT_SAMPLE);
	sqlite3_bind_int64(st, 1, s->time_ms);
	sqlite3_bind_int64(st, 2, s->present);
	sqlite3_bind_int64(st, 3, s->fix);
	sqlite3_bind_int64(st, 4, s->odometer_m);
	sqlite3_bind_int64(st, 5, s->fuel_permille);
	sqlite3_bind_int64(st, 6, s->lat_e7);
	sqlite3_bind_int64(st, 7, s->lon_e7);
	sqlite3_bind_int64(st, 8, s->speed_cms);
	sqlite3_bind_int64(st, 9, s->heading_cdeg);
	return run(q, ST_INSERT_SAMPLE, "store sample");
}

int queue_open_samples(struct queue *q)
{
	int64_t n = 0;
	int r = query_int(q, ST_COUNT_SAMPLES, "count samples", &n);

	if (r < 0)
		return r;
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* Reads up to max open samples into out; returns how many and the last id. */
static int read_open_samples(struct queue *q, struct sample *out, size_t max, int64_t *ret_last_id)
{
	sqlite3_stmt *s = stmt(q, ST_SELECT_SAMPLES);
	size_t n = 0;
	int rc;

	sqlite3_bind_int64(s, 1, (sqlite3_int64)max);
	while (n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct sample *o = &out[n++];

		*ret_last_id = sqlite3_column_int64(s, 0);
		o->time_ms = sqlite3_column_int64(s, 1);
		o->present = (unsigned)sqlite3_column_int64(s, 2);
		o->fix = (enum fix_mode)sqlite3_column_int(s, 3);
		o->odometer_m = sqlite3_column_int64(s, 4);
		o->fuel_permille = sqlite3_column_int(s, 5);
		o->lat_e7 = sqlite3_column_int(s, 6);
		o->lon_e7 = sqlite3_column_int(s, 7);
		o->speed_cms = sqlite3_column_int(s, 8);
		o->heading_cdeg = sqlite3_column_int(s, 9);
	}
	if (n < max && rc != SQLITE_DONE) {
		sqlite3_reset(s);
		return queue_fail(q, "read samples", rc);
	}
	sqlite3_reset(s);
	return (int)n;
}

/* Index of the first pub entry with seq >= the given one (npub if none). */
static unsigned pub_lower_bound(const struct queue *q, uint64_t seq)
{
	unsigned lo = 0, hi = q->npub;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (q->pub[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Removes entry i of the pub table. */
static void pub_remove(struct queue *q, unsigned i)
{
	assert(i < q->npub);
	memmove(&q->pub[i], &q->pub[i + 1], (q->npub - i - 1) * sizeof(q->pub[0]));
	q->npub--;
}

/* Forgets the delivery state of every batch with seq <= last (deleted ones). */
static void pub_forget_upto(struct queue *q, uint64_t last)
{
	unsigned n = pub_lower_bound(q, last);

	if (n < q->npub && q->pub[n].seq == last)
		n++;
	memmove(&q->pub[0], &q->pub[n], (q->npub - n) * sizeof(q->pub[0]));
	q->npub -= n;
}

int queue_seal(struct queue *q, size_t max_samples, uint64_t *ret_seq)
{
	struct sample *samples = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int64_t last_id = 0;
	uint64_t seq = q->next_seq, first_dropped = 0, last_dropped = 0, ndropped = 0;
	int in_tx = 0, n = 0, r;
	sqlite3_stmt *s;

	if (max_samples == 0 || max_samples > CODEC_MAX_SAMPLES)
		return -EINVAL;
	samples = calloc(max_samples, sizeof(*samples));
	if (!samples)
		return -ENOMEM;
	r = run(q, ST_BEGIN, "seal batch: begin");
	if (r < 0)
		goto out;
	in_tx = 1;
	n = read_open_samples(q, samples, max_samples, &last_id);
	if (n <= 0) {
		r = n < 0 ? n : -ENODATA;
		goto out;
	}
	r = codec_encode_batch(q->epoch, seq, samples, (size_t)n, &buf, &len);
	if (r < 0) {
		log_error("queue: seal batch: encoding %d samples failed: %s", n, strerror(-r));
		goto out;
	}
	/* The bound: make room by dropping the oldest batches. */
	while (q->count - (int64_t)ndropped >= (int64_t)q->max_batches) {
		int64_t oldest = 0;

		r = query_int(q, ST_OLDEST_BATCH, "seal batch: find oldest", &oldest);
		if (r < 0)
			goto out;
		s = stmt(q, ST_DELETE_BATCH);
		sqlite3_bind_int64(s, 1, oldest);
		r = run(q, ST_DELETE_BATCH, "seal batch: drop oldest");
		if (r < 0)
			goto out;
		if (!ndropped)
			first_dropped = (uint64_t)oldest;
		last_dropped = (uint64_t)oldest;
		ndropped++;
	}
	s = stmt(q, ST_INSERT_BATCH);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	sqlite3_bind_int64(s, 2, loop_wall_ms());
	sqlite3_bind_int(s, 3, n);
	sqlite3_bind_blob(s, 4, buf, (int)len, SQLITE_STATIC);
	r = run(q, ST_INSERT_BATCH, "seal batch: insert");
	if (r < 0)
		goto out;
	s = stmt(q, ST_DELETE_SAMPLES);
	sqlite3_bind_int64(s, 1, last_id);
	r = run(q, ST_DELETE_SAMPLES, "seal batch: delete samples");
	if (r < 0)
		goto out;
	r = set_meta(q, "next_seq", seq + 1);
	if (r < 0)
		goto out;
	if (ndropped) {
		r = set_meta(q, "dropped", q->dropped + ndropped);
		if (r < 0)
			goto out;
	}
	r = run(q, ST_COMMIT, "seal batch: commit");
	if (r < 0)
		goto out;
	in_tx = 0;
	q->next_seq = seq + 1;
	q->count += 1 - (int64_t)ndropped;
	q->dropped += ndropped;
	if (ndropped)
		pub_forget_upto(q, last_dropped);
	if (ndropped == 1)
		log_error("queue full (%u batches): dropped oldest batch %" PRIu64 " (%" PRIu64
			  " dropped in total)",
			  q->max_batches, first_dropped, q->dropped);
	else if (ndropped > 1)
		log_error("queue full (%u batches): dropped %" PRIu64
			  " oldest batches from %" PRIu64 " (%" PRIu64 " dropped in total)",
			  q->max_batches, ndropped, first_dropped, q->dropped);
	*ret_seq = seq;
	r = n;
out:
	if (in_tx) {
		int rc = sqlite3_step(stmt(q, ST_ROLLBACK));

		sqlite3_reset(q->st[ST_ROLLBACK]);
		if (rc != SQLITE_DONE && sqlite3_get_autocommit(q->db) == 0)
			queue_fail(q, "seal batch: rollback", rc);
	}
	free(buf);
	free(samples);
	return r;
}

int queue_peek_unsent(struct queue *q, uint64_t *ret_seq, uint8_t **ret_data, size_t *ret_len)
{
	sqlite3_stmt *s;
	uint8_t *copy = NULL;
	uint64_t seq = 0;
	unsigned j = 0;
	int len, rc, found = 0, r = 0;

	if (q->npub >= QUEUE_MAX_UNCONFIRMED)
		return -ENOBUFS;
	/* Oldest first, skipping the published ones (both lists are sorted). */
	s = stmt(q, ST_SEQS);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		seq = (uint64_t)sqlite3_column_int64(s, 0);
		while (j < q->npub && q->pub[j].seq < seq)
			j++;
		if (j == q->npub || q->pub[j].seq != seq) {
			found = 1;
			break;
		}
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return queue_fail(q, "find unsent batch", rc);
	if (!found)
		return -ENODATA;

	s = stmt(q, ST_DATA);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		r = -ENODATA;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = queue_fail(q, "read batch", rc);
		goto out;
	}
	len = sqlite3_column_bytes(s, 0);
	if (len <= 0 || len > CODEC_MAX_BATCH_BYTES) {
		log_error("queue: batch %" PRIu64 " has an impossible size %d", seq, len);
		r = -EBADMSG;
		goto out;
	}
	copy = malloc((size_t)len);
	if (!copy) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(copy, sqlite3_column_blob(s, 0), (size_t)len);
	*ret_seq = seq;
	*ret_data = copy;
	*ret_len = (size_t)len;
out:
	sqlite3_reset(s);
	return r;
}

int queue_mark_inflight(struct queue *q, uint64_t seq)
{
	unsigned i;

	if (seq == 0 || seq > INT64_MAX)
		return -EINVAL;
	i = pub_lower_bound(q, seq);
	if (i < q->npub && q->pub[i].seq == seq)
		return -EEXIST;
	if (q->npub >= QUEUE_MAX_UNCONFIRMED)
		return -ENOBUFS;
	memmove(&q->pub[i + 1], &q->pub[i], (q->npub - i) * sizeof(q->pub[0]));
	q->pub[i] = (struct pub){ .seq = seq, .sent_ms = 0, .state = PUB_INFLIGHT };
	q->npub++;
	return 0;
}

int queue_mark_sent(struct queue *q, uint64_t seq, uint64_t now_ms)
{
	unsigned i = pub_lower_bound(q, seq);

	if (i == q->npub || q->pub[i].seq != seq || q->pub[i].state != PUB_INFLIGHT)
		return -ENOENT;
	q->pub[i].state = PUB_SENT;
	q->pub[i].sent_ms = now_ms;
	return 0;
}

int queue_delete(struct queue *q, uint64_t seq)
{
	sqlite3_stmt *s;
	unsigned i;
	int r;

	if (seq == 0 || seq > INT64_MAX)
		return 0;
	s = stmt(q, ST_DELETE_BATCH);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	r = run(q, ST_DELETE_BATCH, "delete confirmed batch");
	if (r < 0)
		return r;
	/* Gone either way: its delivery state is of no use any more. */
	i = pub_lower_bound(q, seq);
	if (i < q->npub && q->pub[i].seq == seq)
		pub_remove(q, i);
	if (sqlite3_changes(q->db) == 0)
		return 0;
	q->count--;
	return 1;
}

void queue_requeue(struct queue *q, uint64_t from_seq)
{
	unsigned i = pub_lower_bound(q, from_seq);

	while (i < q->npub) {
		if (q->pub[i].state == PUB_INFLIGHT)
			pub_remove(q, i);
		else
			i++;
	}
}

int queue_expire_sent(struct queue *q, uint64_t sent_before_ms)
{
	unsigned i = 0;
	int n = 0;

	while (i < q->npub) {
		if (q->pub[i].state == PUB_SENT && q->pub[i].sent_ms <= sent_before_ms) {
			pub_remove(q, i);
			n++;
		} else {
			i++;
		}
	}
	return n;
}

int queue_oldest_sent(const struct queue *q, uint64_t *ret_ms)
{
	uint64_t oldest = UINT64_MAX;
	int found = 0;

	for (unsigned i = 0; i < q->npub; i++) {
		if (q->pub[i].state == PUB_SENT && q->pub[i].sent_ms <= oldest) {
			oldest = q->pub[i].sent_ms;
			found = 1;
		}
	}
	if (!found)
		return -ENODATA;
	*ret_ms = oldest;
	return 0;
}

int queue_count(struct queue *q)
{
	return q->count > INT32_MAX ? INT32_MAX : (int)q->count;
}

/* Number of pub entries in state st. */
static int pub_count(const struct queue *q, enum pub_state st)
{
	int n = 0;

	for (unsigned i = 0; i < q->npub; i++)
		n += q->pub[i].state == st;
	return n;
}

int queue_inflight(const struct queue *q)
{
	return pub_count(q, PUB_INFLIGHT);
}

int queue_sent(const struct queue *q)
{
	return pub_count(q, PUB_SENT);
}

uint64_t queue_dropped(const struct queue *q)
{
	return q->dropped;
}

uint64_t queue_epoch(const struct queue *q)
{
	return q->epoch;
}

uint64_t queue_next_seq(const struct queue *q)
{
	return q->next_seq;
}
