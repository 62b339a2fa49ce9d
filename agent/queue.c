/*
 * The store-and-forward queue on SQLite; see queue.h for the contract and
 * docs/agent.md for the durability choices.
 *
 * Schema (user_version 2):
 *   meta(key, value)      next_seq, dropped, thinned_samples and
 *                         thinned_batches, the persistent counters, epoch,
 *                         the queue's identity (see queue_create), and
 *                         journal_gen, the sample journal's live generation
 *   samples(id, ...)      open samples, one row each, id = insertion order
 *   batches(seq, ...)     sealed, encoded TelemetryBatch messages; thinned = 1
 *                         once thinning kept every Nth of its samples
 *                         (added by version 2: queue_migrate)
 * Every statement is prepared once at open. Counters that are also stored
 * (next_seq, dropped, thinned_*, the batch count and bytes) are cached and
 * updated only after the transaction that changes them has committed.
 *
 * Open samples that are not rows live in memory (struct queue's pend,
 * oldest first, always newer than every samples row); the first ndurable of
 * them are also in the sample journal (journal.h), as records 0..ndurable-1
 * of generation meta.journal_gen. A flush appends the others to the journal.
 * queue_seal takes the stored rows first, then the pending ones, so a
 * sample that is sealed before its flush is never written as a row at all;
 * the seal's transaction also stores the journal's samples it did not seal
 * as rows and moves meta.journal_gen on (journal_retire), so after its
 * commit no journal record is valid and after a crash before it all are.
 * fold_rows() does the same without a batch (journal full, or unusable).
 *
 * The byte cap (make_room, inside the seal's transaction): thin the oldest
 * unsent, not yet thinned batch (decode, keep samples 0, N, 2N, ..., encode
 * again under the same epoch and seq) until the new batch fits; only when no
 * batch is left to thin, drop the oldest batch.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "fileperm.h"
#include "journal.h"
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
	ST_THIN_CANDIDATE,
	ST_UPDATE_BATCH,
	ST_BATCH_BYTES,
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
	[ST_SEQS] = "SELECT seq FROM batches WHERE seq > ?1 ORDER BY seq",
	[ST_DATA] = "SELECT data FROM batches WHERE seq = ?1",
	[ST_SET_META] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
	[ST_THIN_CANDIDATE] = "SELECT seq, data FROM batches WHERE thinned = 0 AND nsamples > 1"
			      " AND seq > ?1 ORDER BY seq LIMIT 1",
	[ST_UPDATE_BATCH] = "UPDATE batches SET nsamples = ?2, data = ?3, thinned = 1"
			    " WHERE seq = ?1",
	[ST_BATCH_BYTES] = "SELECT length(data) FROM batches WHERE seq = ?1",
};

/*
 * Set at every open. page_size (512 bytes: see queue_open) only takes effect
 * on a new database.
 */
static const char queue_pragmas[] =
	"PRAGMA page_size = 512; PRAGMA journal_mode = WAL;"
	" PRAGMA synchronous = FULL; PRAGMA journal_size_limit = 4194304;";

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
	" data BLOB NOT NULL, thinned INTEGER NOT NULL DEFAULT 0);";

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
	struct queue_limits lim;	       /* max_loss_ms, max_bytes, thin_every */
	struct sample pend[QUEUE_MAX_PENDING]; /* open samples not in samples rows */
	unsigned npend;			       /* entries used in pend */
	unsigned ndurable;		       /* pend[0..ndurable) are in the journal */
	struct journal *jr;		       /* owned; NULL: flushes go to rows */
	uint64_t jgen;			       /* cached meta.journal_gen */
	uint64_t pend_first_ms;		       /* monotonic time pend[ndurable] was added */
	uint64_t last_add_ms;		       /* monotonic time of the last add */
	uint64_t add_gap_ms;		       /* time between the last two adds */
	int64_t bytes;			       /* cached sum of the batches' sizes */
	uint64_t thinned_samples;	       /* cached meta.thinned_samples */
	uint64_t thinned_batches;	       /* cached meta.thinned_batches */
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
		" (SELECT value FROM meta WHERE key = 'epoch'),"
		" (SELECT coalesce(sum(length(data)), 0) FROM batches),"
		" (SELECT coalesce(max(value), 0) FROM meta WHERE key = 'thinned_samples'),"
		" (SELECT coalesce(max(value), 0) FROM meta WHERE key = 'thinned_batches'),"
		" (SELECT coalesce(max(value), 0) FROM meta WHERE key = 'journal_gen')";
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
	q->bytes = sqlite3_column_int64(s, 5);
	q->thinned_samples = (uint64_t)sqlite3_column_int64(s, 6);
	q->thinned_batches = (uint64_t)sqlite3_column_int64(s, 7);
	q->jgen = (uint64_t)sqlite3_column_int64(s, 8); /* queue_create wrote it */
	if (q->dropped || q->thinned_batches)
		log_info("queue: %" PRId64 " batches (%" PRId64 " bytes); so far %" PRIu64
			 " samples thinned out of %" PRIu64 " batches, %" PRIu64 " batches dropped",
			 q->count, q->bytes, q->thinned_samples, q->thinned_batches, q->dropped);
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
 * Brings a version 1 queue (batches without the thinned column) to version
 * 2, inside queue_create's transaction. Returns an SQLite result code.
 */
static int queue_migrate(struct queue *q)
{
	static const char sql_has[] = "SELECT 1 FROM pragma_table_info('batches')"
				      " WHERE name = 'thinned'";
	sqlite3_stmt *s = NULL;
	int rc;

	rc = sqlite3_prepare_v2(q->db, sql_has, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_DONE)
		rc = sqlite3_exec(
			q->db, "ALTER TABLE batches ADD COLUMN thinned INTEGER NOT NULL DEFAULT 0",
			NULL, NULL, NULL);
	else if (rc == SQLITE_ROW)
		rc = SQLITE_OK;
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->db, "PRAGMA user_version = 2", NULL, NULL, NULL);
	return rc;
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
	static const char sql_jgen[] = "INSERT OR IGNORE INTO meta(key, value)"
				       " VALUES ('journal_gen', ?1)";
	sqlite3_stmt *s = NULL;
	uint64_t epoch = 0, jgen = 0;
	int rc, r = 0, is_new;

	rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(q->db, queue_schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = queue_migrate(q);
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
	s = NULL;
	if (rc != SQLITE_DONE)
		goto fail;
	/*
	 * The journal's first generation, random: a journal file left by a
	 * queue.db deleted by hand is never replayed into a new one. 62 bits,
	 * so it stays a positive SQLite integer however often it is bumped.
	 */
	r = draw_epoch(&jgen);
	if (r < 0) {
		log_error("queue: cannot draw a journal generation: %s", strerror(-r));
		goto rollback;
	}
	jgen &= (UINT64_C(1) << 62) - 1;
	rc = sqlite3_prepare_v2(q->db, sql_jgen, -1, &s, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)(jgen ? jgen : 1));
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

static int sample_valid(const struct sample *s);
static int fold_rows(struct queue *q);
static void rollback(struct queue *q, const char *op);

/* Moves meta.journal_gen on in a transaction of its own. Returns 0 or -errno. */
static int journal_renew(struct queue *q)
{
	int r = run(q, ST_BEGIN, "renew the sample journal: begin");

	if (r < 0)
		return r;
	r = set_meta(q, "journal_gen", q->jgen + 1);
	if (r == 0)
		r = run(q, ST_COMMIT, "renew the sample journal: commit");
	if (r < 0) {
		rollback(q, "renew the sample journal: rollback");
		return r;
	}
	q->jgen++;
	return 0;
}

/*
 * Opens the journal next to the database (<db_path>-samples) and takes back
 * the samples a crash left in it (those of generation meta.journal_gen) as
 * samples rows, in the transaction that starts this run's generation: a
 * torn write may have left later records of the old generation past the
 * first damaged one, which must never become readable. Without a journal
 * (it cannot be opened, read or renewed) flushes write samples rows, as
 * before it existed: logged, not fatal.
 */
static void journal_start(struct queue *q, const char *db_path)
{
	char jpath[4096];
	int n, r, damaged = 0;

	n = snprintf(jpath, sizeof(jpath), "%s-samples", db_path);
	if (n < 0 || (size_t)n >= sizeof(jpath)) {
		log_warn("queue: %s: path too long for its sample journal; flushes write rows",
			 db_path);
		return;
	}
	r = journal_open(jpath, QUEUE_MAX_PENDING, &q->jr);
	if (r == 0)
		r = journal_replay(q->jr, q->jgen, q->pend, QUEUE_MAX_PENDING, &damaged);
	if (r < 0) {
		log_warn("queue: sample journal %s: %s; flushes write rows of %s instead", jpath,
			 strerror(-r), db_path);
		journal_close(q->jr);
		q->jr = NULL;
		return;
	}
	n = 0;
	while (n < r && sample_valid(&q->pend[n]))
		n++;
	q->npend = q->ndurable = (unsigned)n;
	if (n > 0 || damaged || n < r)
		log_info("queue: %d open samples recovered from %s%s", n, jpath,
			 damaged || n < r ? "; a damaged record after them (a torn write) dropped"
					  : "");
	r = n ? fold_rows(q) : journal_renew(q);
	if (r < 0) {
		log_warn("queue: cannot start a new generation of the sample journal %s: %s;"
			 " flushes write rows of %s instead",
			 jpath, strerror(-r), db_path);
		journal_close(q->jr);
		q->jr = NULL;
	}
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
	q->lim.thin_every = QUEUE_THIN_EVERY;
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
	 * (NORMAL could lose the last commits on power loss). page_size only
	 * takes effect on a new database (before its first table): a WAL
	 * frame is a page, and small commits cost a frame per changed page,
	 * so 512-byte pages write less than the 4 KiB default (docs/performance.md).
	 */
	rc = sqlite3_exec(q->db, queue_pragmas, NULL, NULL, &msg);
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
	journal_start(q, path);
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
	journal_close(q->jr);
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

/* Writes one open sample row (inside the caller's transaction, or its own). */
static int insert_sample(struct queue *q, const struct sample *s)
{
	sqlite3_stmt *st = stmt(q, ST_INSERT_SAMPLE);

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

/* Rolls back the open transaction, logging a failure to do so. */
static void rollback(struct queue *q, const char *op)
{
	int rc = sqlite3_step(stmt(q, ST_ROLLBACK));

	sqlite3_reset(q->st[ST_ROLLBACK]);
	if (rc != SQLITE_DONE && sqlite3_get_autocommit(q->db) == 0)
		queue_fail(q, op, rc);
}

/*
 * Moves the journal to its next generation inside the caller's transaction
 * (its records are then never replayed again: the transaction holds their
 * samples). Returns 0 or -errno.
 */
static int journal_retire(struct queue *q)
{
	return q->ndurable ? set_meta(q, "journal_gen", q->jgen + 1) : 0;
}

/* After the commit of a journal_retire(): the new generation is empty. */
static void journal_retired(struct queue *q)
{
	if (q->ndurable)
		q->jgen++;
	q->ndurable = 0;
}

/*
 * Writes every pending sample (in the journal or not) as samples rows, in
 * one transaction that also retires the journal's generation. Returns how
 * many were not durable before, or -errno (nothing changed).
 */
static int fold_rows(struct queue *q)
{
	unsigned n = q->npend, fresh = q->npend - q->ndurable;
	int r;

	r = run(q, ST_BEGIN, "flush samples: begin");
	if (r < 0)
		return r;
	for (unsigned i = 0; i < n && r == 0; i++)
		r = insert_sample(q, &q->pend[i]);
	if (r == 0)
		r = journal_retire(q);
	if (r == 0)
		r = run(q, ST_COMMIT, "flush samples: commit");
	if (r < 0) {
		rollback(q, "flush samples: rollback");
		return r;
	}
	journal_retired(q);
	q->npend = 0;
	return (int)fresh;
}

int queue_flush_now(struct queue *q)
{
	unsigned fresh = q->npend - q->ndurable;
	int r;

	if (fresh == 0)
		return 0;
	/* max_loss_s 0 means samples rows (readable by tools), as before. */
	if (q->jr && q->lim.max_loss_ms > 0) {
		r = journal_append(q->jr, q->jgen, q->ndurable, &q->pend[q->ndurable], fresh);
		if (r == 0) {
			q->ndurable = q->npend;
			log_debug("queue: %u samples journaled, the last of %" PRId64, fresh,
				  q->pend[q->npend - 1].time_ms);
			return (int)fresh;
		}
		log_error("queue: cannot write the sample journal: %s; writing rows instead",
			  strerror(-r));
	}
	return fold_rows(q);
}

/*
 * Whether the pending samples not yet durable must be written now: the
 * oldest would be older than max_loss_ms by the time of the next add
 * (expected one add_gap_ms from now; without slack: it is already that
 * old), or pend is full.
 */
static int flush_due(const struct queue *q, uint64_t now, int slack)
{
	if (q->npend == q->ndurable)
		return 0;
	if (q->npend >= QUEUE_MAX_PENDING)
		return 1;
	return now - q->pend_first_ms + (slack ? q->add_gap_ms : 0) >= q->lim.max_loss_ms;
}

int queue_flush_due(struct queue *q)
{
	if (!flush_due(q, loop_now_ms(), 1))
		return 0;
	return queue_flush_now(q);
}

int queue_add_sample(struct queue *q, const struct sample *s)
{
	uint64_t now = loop_now_ms();
	int r;

	if (!sample_valid(s))
		return -EINVAL;
	if (q->lim.max_loss_ms == 0 && q->npend == 0)
		return insert_sample(q, s);
	if (q->npend >= QUEUE_MAX_PENDING) {
		/*
		 * Full: the journal is (no seal for QUEUE_MAX_PENDING samples),
		 * or flushes failed until pend filled up (then this one is lost).
		 */
		r = fold_rows(q);
		if (r < 0)
			return r;
	}
	q->add_gap_ms = q->npend || q->last_add_ms ? now - q->last_add_ms : 0;
	q->last_add_ms = now;
	if (q->npend == q->ndurable)
		q->pend_first_ms = now;
	q->pend[q->npend++] = *s;
	/* Normally queue_flush_due() after the caller's seal writes them. */
	if (flush_due(q, now, 0)) {
		r = queue_flush_now(q);
		/* The sample is kept in memory; the next add or seal writes it. */
		if (r < 0)
			log_debug("queue: %u samples wait in memory: %s", q->npend, strerror(-r));
	}
	return 0;
}

int queue_open_samples(struct queue *q)
{
	int64_t n = 0;
	int r = query_int(q, ST_COUNT_SAMPLES, "count samples", &n);

	if (r < 0)
		return r;
	n += q->npend;
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

/* What make_room did inside a seal's transaction (applied after commit). */
struct room {
	uint64_t ndropped, first_dropped, last_dropped; /* batches dropped */
	int64_t dropped_bytes;
	uint64_t thinned_batches, thinned_samples; /* samples removed by thinning */
	int64_t thinned_bytes;			   /* bytes saved by thinning */
};

/* Size of stored batch seq in *ret_len (0 if there is none). */
static int batch_bytes(struct queue *q, uint64_t seq, int64_t *ret_len)
{
	sqlite3_stmt *s = stmt(q, ST_BATCH_BYTES);
	int r;

	*ret_len = 0;
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	r = query_int(q, ST_BATCH_BYTES, "read batch size", ret_len);
	return r == -ENODATA ? 0 : r;
}

/* Drops the oldest stored batch (inside the caller's transaction). */
static int drop_oldest(struct queue *q, struct room *room, const char *op)
{
	int64_t oldest = 0, len = 0;
	sqlite3_stmt *s;
	int r;

	r = query_int(q, ST_OLDEST_BATCH, op, &oldest);
	if (r == 0)
		r = batch_bytes(q, (uint64_t)oldest, &len);
	if (r < 0)
		return r;
	s = stmt(q, ST_DELETE_BATCH);
	sqlite3_bind_int64(s, 1, oldest);
	r = run(q, ST_DELETE_BATCH, op);
	if (r < 0)
		return r;
	if (!room->ndropped)
		room->first_dropped = (uint64_t)oldest;
	room->last_dropped = (uint64_t)oldest;
	room->ndropped++;
	room->dropped_bytes += len;
	return 0;
}

/*
 * Keeps samples 0, every, 2 * every, ... of the encoded batch in data and
 * stores it again under its own epoch and seq, marked thinned. Returns the
 * bytes saved (may be 0), or -errno.
 */
static int thin_batch(struct queue *q, uint64_t seq, const void *data, int len, struct room *room)
{
	struct sample *smp = NULL;
	uint8_t *buf = NULL;
	uint64_t epoch = 0, bseq = 0;
	size_t n = 0, kept = 0, out_len = 0;
	sqlite3_stmt *s;
	int r;

	r = codec_decode_batch(data, (size_t)len, &epoch, &bseq, &smp, &n);
	if (r < 0) {
		log_error("queue: batch %" PRIu64 " does not decode (%s): not thinned", seq,
			  strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < n; i += q->lim.thin_every)
		smp[kept++] = smp[i];
	r = codec_encode_batch(epoch, bseq, smp, kept, &buf, &out_len);
	if (r < 0)
		goto out;
	s = stmt(q, ST_UPDATE_BATCH);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	sqlite3_bind_int64(s, 2, (sqlite3_int64)kept);
	sqlite3_bind_blob(s, 3, buf, (int)out_len, SQLITE_STATIC);
	r = run(q, ST_UPDATE_BATCH, "seal batch: thin");
	if (r < 0)
		goto out;
	room->thinned_batches++;
	room->thinned_samples += n - kept;
	room->thinned_bytes += len - (int64_t)out_len;
	r = len > (int)out_len ? len - (int)out_len : 0;
out:
	free(buf);
	free(smp);
	return r;
}

/*
 * Makes room for a new batch of len bytes inside the seal's transaction:
 * first the batch-count bound (drop the oldest), then the byte cap: thin
 * the oldest unsent batches not thinned yet, then drop the oldest batches.
 * Returns 0 or -errno.
 */
static int make_room(struct queue *q, size_t len, struct room *room)
{
	uint64_t after = 0;
	int r;

	while (q->count - (int64_t)room->ndropped >= (int64_t)q->max_batches) {
		r = drop_oldest(q, room, "seal batch: drop oldest");
		if (r < 0)
			return r;
	}
	if (q->lim.max_bytes == 0)
		return 0;
#define QUEUE_BYTES() (q->bytes - room->dropped_bytes - room->thinned_bytes + (int64_t)len)
	while (QUEUE_BYTES() > (int64_t)q->lim.max_bytes && q->lim.thin_every > 1) {
		sqlite3_stmt *s = stmt(q, ST_THIN_CANDIDATE);
		uint64_t seq;
		unsigned i;
		int rc;

		sqlite3_bind_int64(s, 1, (sqlite3_int64)after);
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE) {
			sqlite3_reset(s);
			break; /* nothing left to thin */
		}
		if (rc != SQLITE_ROW) {
			sqlite3_reset(s);
			return queue_fail(q, "seal batch: find a batch to thin", rc);
		}
		seq = (uint64_t)sqlite3_column_int64(s, 0);
		after = seq;
		i = pub_lower_bound(q, seq);
		if (i < q->npub && q->pub[i].seq == seq) {
			sqlite3_reset(s);
			continue; /* published: the gateway may have it as it is */
		}
		r = thin_batch(q, seq, sqlite3_column_blob(s, 1), sqlite3_column_bytes(s, 1), room);
		sqlite3_reset(s);
		if (r < 0 && r != -EBADMSG)
			return r;
	}
	while (QUEUE_BYTES() > (int64_t)q->lim.max_bytes &&
	       q->count - (int64_t)room->ndropped > 0) {
		r = drop_oldest(q, room, "seal batch: drop oldest");
		if (r < 0)
			return r;
	}
#undef QUEUE_BYTES
	return 0;
}

/* Logs what make_room did, once per seal. */
static void log_room(const struct queue *q, const struct room *room)
{
	if (room->thinned_batches)
		log_warn("queue over %zu bytes: thinned %" PRIu64 " batches, %" PRIu64
			 " samples removed (%" PRIu64 " in total)",
			 q->lim.max_bytes, room->thinned_batches, room->thinned_samples,
			 q->thinned_samples);
	if (room->ndropped == 1)
		log_error("queue full: dropped oldest batch %" PRIu64 " (%" PRIu64
			  " dropped in total)",
			  room->first_dropped, q->dropped);
	else if (room->ndropped > 1)
		log_error("queue full: dropped %" PRIu64 " oldest batches from %" PRIu64
			  " (%" PRIu64 " dropped in total)",
			  room->ndropped, room->first_dropped, q->dropped);
}

int queue_seal(struct queue *q, size_t max_samples, uint64_t *ret_seq)
{
	struct sample *samples = NULL;
	struct room room = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0, npend = 0;
	int64_t last_id = 0;
	uint64_t seq = q->next_seq;
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
	if (n < 0) {
		r = n;
		goto out;
	}
	/* Then the pending ones, all newer than every stored sample. */
	npend = q->npend < max_samples - (size_t)n ? q->npend : max_samples - (size_t)n;
	memcpy(&samples[n], q->pend, npend * sizeof(*samples));
	if (n + npend == 0) {
		r = -ENODATA;
		goto out;
	}
	r = codec_encode_batch(q->epoch, seq, samples, (size_t)n + npend, &buf, &len);
	if (r < 0) {
		log_error("queue: seal batch: encoding %zu samples failed: %s", (size_t)n + npend,
			  strerror(-r));
		goto out;
	}
	r = make_room(q, len, &room);
	if (r < 0)
		goto out;
	s = stmt(q, ST_INSERT_BATCH);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)seq);
	sqlite3_bind_int64(s, 2, loop_wall_ms());
	sqlite3_bind_int(s, 3, n + (int)npend);
	sqlite3_bind_blob(s, 4, buf, (int)len, SQLITE_STATIC);
	r = run(q, ST_INSERT_BATCH, "seal batch: insert");
	if (r < 0)
		goto out;
	if (n) {
		s = stmt(q, ST_DELETE_SAMPLES);
		sqlite3_bind_int64(s, 1, last_id);
		r = run(q, ST_DELETE_SAMPLES, "seal batch: delete samples");
		if (r < 0)
			goto out;
	}
	/*
	 * The journal's samples are in this transaction now: the sealed ones
	 * in the batch, the durable ones left over (a seal of fewer than are
	 * open) as rows. Its generation is retired with the commit.
	 */
	for (size_t i = npend; i < q->ndurable && r == 0; i++)
		r = insert_sample(q, &q->pend[i]);
	if (r == 0)
		r = journal_retire(q);
	if (r == 0)
		r = set_meta(q, "next_seq", seq + 1);
	if (r == 0 && room.ndropped)
		r = set_meta(q, "dropped", q->dropped + room.ndropped);
	if (r == 0 && room.thinned_batches)
		r = set_meta(q, "thinned_batches", q->thinned_batches + room.thinned_batches);
	if (r == 0 && room.thinned_batches)
		r = set_meta(q, "thinned_samples", q->thinned_samples + room.thinned_samples);
	if (r < 0)
		goto out;
	r = run(q, ST_COMMIT, "seal batch: commit");
	if (r < 0)
		goto out;
	in_tx = 0;
	q->next_seq = seq + 1;
	q->count += 1 - (int64_t)room.ndropped;
	q->bytes += (int64_t)len - room.dropped_bytes - room.thinned_bytes;
	q->dropped += room.ndropped;
	q->thinned_batches += room.thinned_batches;
	q->thinned_samples += room.thinned_samples;
	r = n + (int)npend; /* sealed */
	if (npend < q->ndurable)
		npend = q->ndurable; /* the rest of the journal's are rows now */
	q->npend -= (unsigned)npend;
	memmove(q->pend, &q->pend[npend], q->npend * sizeof(q->pend[0]));
	journal_retired(q);
	if (room.ndropped)
		pub_forget_upto(q, room.last_dropped);
	log_room(q, &room);
	*ret_seq = seq;
out:
	if (in_tx)
		rollback(q, "seal batch: rollback");
	free(buf);
	free(samples);
	return r;
}

int queue_peek_unsent(struct queue *q, uint64_t *ret_seq, uint8_t **ret_data, size_t *ret_len)
{
	return queue_peek_unsent_after(q, 0, ret_seq, ret_data, ret_len);
}

int queue_peek_unsent_after(struct queue *q, uint64_t after_seq, uint64_t *ret_seq,
			    uint8_t **ret_data, size_t *ret_len)
{
	sqlite3_stmt *s;
	uint8_t *copy = NULL;
	uint64_t seq = 0;
	unsigned j = 0;
	int len, rc, found = 0, r = 0;

	if (q->npub >= QUEUE_MAX_UNCONFIRMED)
		return -ENOBUFS;
	/* Oldest first, skipping the published ones (both lists are sorted). */
	if (after_seq > INT64_MAX)
		return -ENODATA;
	s = stmt(q, ST_SEQS);
	sqlite3_bind_int64(s, 1, (sqlite3_int64)after_seq);
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
	int64_t len = 0;
	sqlite3_stmt *s;
	unsigned i;
	int r;

	if (seq == 0 || seq > INT64_MAX)
		return 0;
	r = batch_bytes(q, seq, &len);
	if (r < 0)
		return r;
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
	q->bytes -= len;
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

int queue_set_limits(struct queue *q, const struct queue_limits *lim)
{
	if (lim->max_loss_ms > QUEUE_MAX_LOSS_MS || lim->thin_every == 1)
		return -EINVAL;
	q->lim = *lim;
	if (q->lim.thin_every == 0)
		q->lim.thin_every = QUEUE_THIN_EVERY;
	return 0;
}

void queue_stats(const struct queue *q, struct queue_stats *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->batches = q->count;
	ret->bytes = q->bytes > 0 ? (uint64_t)q->bytes : 0;
	ret->pending = q->npend;
	ret->dropped = q->dropped;
	ret->thinned_batches = q->thinned_batches;
	ret->thinned_samples = q->thinned_samples;
}

uint64_t queue_epoch(const struct queue *q)
{
	return q->epoch;
}

uint64_t queue_next_seq(const struct queue *q)
{
	return q->next_seq;
}
