/*
 * The SQLite backend of the gateway store (store.h). One connection, owned by
 * the loop thread; every statement is prepared once at open and reset after
 * each use.
 *
 * Settings, and why:
 *   journal_mode=WAL     readers (pitstopctl) never block the writer and the
 *                        writer never blocks them; commits append to the WAL.
 *   synchronous=FULL     one fsync per commit, so a commit survives a power
 *                        loss of the gateway host too. It has to: after the
 *                        commit a receipt tells the car to delete the batch.
 *                        Ingest commits once per bus drain, so this costs
 *                        ~3 % of throughput (docs/performance.md); NORMAL
 *                        could lose the last commits on power loss after
 *                        their receipts went out.
 *   busy_timeout=5000    a reader's checkpoint or a second writer makes us
 *                        wait up to 5 s instead of failing at once.
 * Schema versions are kept in PRAGMA user_version; migrate() takes an older
 * file forward step by step and refuses a newer one.
 *
 * SQLite result codes stop here: each failure is logged once with the
 * operation that failed and returned as a negative errno.
 */
#include "store_sqlite.h"

#include <assert.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "sqlerr.h"

/* Bounds on what one call may allocate. */
#define HISTORY_MAX_ROWS 1000000
#define OFFER_LIST_MAX_ROWS 100000
#define INSTANCES_MAX 1024
#define FAIL_LOG_PERIOD_S 10

enum stmt_id {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_VEHICLE_ENSURE,
	ST_VEHICLE_ID,
	ST_BATCH_INSERT,
	ST_SAMPLE_INSERT,
	ST_LATEST_UPDATE,
	ST_VEHICLE_GET,
	ST_HISTORY,
	ST_STATUS_UPDATE,
	ST_EPISODE_GET,
	ST_EPISODE_SET,
	ST_OFFER_INSERT,
	ST_OFFER_EXISTS,
	ST_OFFER_EVENT_INSERT,
	ST_OFFER_STATE,
	ST_OFFER_LIST,
	ST_COUNTER_SET,
	ST_COUNTER_GET,
	ST_COUNTER_LIST,
	ST_COUNT,
};

/* A field is taken from the batch when it is newer than (or as new as) ours. */
#define NEWER(t, col) "(" t " IS NOT NULL AND (" col " IS NULL OR " t " >= " col "))"

/* The SQL reads best laid out by hand: the formatter keeps out. */
/* clang-format off */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_SAVEPOINT] = "SAVEPOINT msg",
	[ST_RELEASE] = "RELEASE msg",
	[ST_ROLLBACK_TO] = "ROLLBACK TO msg",
	[ST_VEHICLE_ENSURE] = "INSERT INTO vehicles(vin) VALUES(?1) ON CONFLICT(vin) DO NOTHING",
	[ST_VEHICLE_ID] = "SELECT id FROM vehicles WHERE vin = ?1",
	[ST_BATCH_INSERT] =
		"INSERT INTO batches(vehicle_id, seq, received_ms, n_samples) VALUES(?1, ?2, ?3, ?4)"
		" ON CONFLICT(vehicle_id, seq) DO NOTHING",
	[ST_SAMPLE_INSERT] =
		"INSERT INTO samples(vehicle_id, batch_id, time_ms, fix, odometer_m, fuel_permille,"
		" lat_e7, lon_e7, speed_cms, heading_cdeg) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
	[ST_LATEST_UPDATE] =
		"UPDATE vehicles SET"
		" fix = CASE WHEN " NEWER("?1", "time_ms") " THEN ?2 ELSE fix END,"
		" time_ms = CASE WHEN " NEWER("?1", "time_ms") " THEN ?1 ELSE time_ms END,"
		" odometer_m = CASE WHEN " NEWER("?3", "odometer_ms") " THEN ?4 ELSE odometer_m END,"
		" odometer_ms = CASE WHEN " NEWER("?3", "odometer_ms") " THEN ?3 ELSE odometer_ms END,"
		" fuel_permille = CASE WHEN " NEWER("?5", "fuel_ms") " THEN ?6 ELSE fuel_permille END,"
		" fuel_ms = CASE WHEN " NEWER("?5", "fuel_ms") " THEN ?5 ELSE fuel_ms END,"
		" lat_e7 = CASE WHEN " NEWER("?7", "position_ms") " THEN ?8 ELSE lat_e7 END,"
		" lon_e7 = CASE WHEN " NEWER("?7", "position_ms") " THEN ?9 ELSE lon_e7 END,"
		" position_ms = CASE WHEN " NEWER("?7", "position_ms") " THEN ?7 ELSE position_ms END,"
		" speed_cms = CASE WHEN " NEWER("?10", "speed_ms") " THEN ?11 ELSE speed_cms END,"
		" speed_ms = CASE WHEN " NEWER("?10", "speed_ms") " THEN ?10 ELSE speed_ms END,"
		" heading_cdeg = CASE WHEN " NEWER("?12", "heading_ms") " THEN ?13 ELSE heading_cdeg END,"
		" heading_ms = CASE WHEN " NEWER("?12", "heading_ms") " THEN ?12 ELSE heading_ms END"
		" WHERE id = ?14",
	[ST_VEHICLE_GET] =
		"SELECT vin, time_ms, fix, odometer_m, fuel_permille, lat_e7, lon_e7, speed_cms,"
		" heading_cdeg, online, status_ms, agent_version FROM vehicles WHERE vin = ?1",
	[ST_HISTORY] =
		"SELECT b.seq, s.time_ms, s.fix, s.odometer_m, s.fuel_permille, s.lat_e7, s.lon_e7,"
		" s.speed_cms, s.heading_cdeg FROM samples s JOIN batches b ON b.id = s.batch_id"
		" WHERE s.vehicle_id = ?1 ORDER BY s.time_ms DESC, s.id DESC LIMIT ?2",
	[ST_STATUS_UPDATE] =
		"UPDATE vehicles SET online = ?2, status_ms = ?3, agent_version = ?4,"
		" queue_depth = ?5, status_received_ms = ?6"
		" WHERE id = ?1 AND (status_ms IS NULL OR status_ms <= ?3)",
	[ST_EPISODE_GET] = "SELECT open FROM episodes WHERE vehicle_id = ?1 AND rule = ?2",
	[ST_EPISODE_SET] =
		"INSERT INTO episodes(vehicle_id, rule, open, changed_ms) VALUES(?1, ?2, ?3, ?4)"
		" ON CONFLICT(vehicle_id, rule) DO UPDATE SET open = excluded.open,"
		" changed_ms = excluded.changed_ms",
	[ST_OFFER_INSERT] =
		"INSERT INTO offers(id, vehicle_id, kind, title, body, promo_code, valid_from_ms,"
		" valid_until_ms, created_ms, state, state_ms)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'sent', ?9)",
	[ST_OFFER_EXISTS] = "SELECT 1 FROM offers WHERE id = ?1 AND vehicle_id = ?2",
	[ST_OFFER_EVENT_INSERT] =
		"INSERT INTO offer_events(vehicle_id, offer_id, action, reason, time_ms, received_ms)"
		" VALUES(?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT(vehicle_id, offer_id, action, time_ms) DO NOTHING",
	/* rank: sent 0 < shown 1 < accepted/dismissed/rejected 2; only forward. */
	[ST_OFFER_STATE] =
		"UPDATE offers SET state = ?3, state_ms = ?4 WHERE id = ?1 AND vehicle_id = ?2"
		" AND (CASE state WHEN 'sent' THEN 0 WHEN 'shown' THEN 1 ELSE 2 END) < ?5",
	[ST_OFFER_LIST] =
		"SELECT id, kind, title, promo_code, valid_from_ms, valid_until_ms, created_ms, state"
		" FROM offers WHERE vehicle_id = ?1 ORDER BY created_ms, rowid LIMIT ?2",
	[ST_COUNTER_SET] =
		"INSERT INTO counters(instance, name, value, updated_ms) VALUES(?1, ?2, ?3, ?4)"
		" ON CONFLICT(instance, name) DO UPDATE SET value = excluded.value,"
		" updated_ms = excluded.updated_ms",
	[ST_COUNTER_GET] = "SELECT name, value FROM counters WHERE instance = ?1",
	[ST_COUNTER_LIST] =
		"SELECT instance, name, value, updated_ms FROM counters ORDER BY instance",
};
/* clang-format on */

/* Schema version 1. Integer columns in the protocol's units. */
static const char schema_v1[] =
	"CREATE TABLE vehicles ("
	"  id INTEGER PRIMARY KEY,"
	"  vin TEXT NOT NULL UNIQUE,"
	"  time_ms INTEGER," /* newest sample */
	"  fix INTEGER,"     /* of the newest sample */
	"  odometer_m INTEGER, odometer_ms INTEGER,"
	"  fuel_permille INTEGER, fuel_ms INTEGER,"
	"  lat_e7 INTEGER, lon_e7 INTEGER, position_ms INTEGER,"
	"  speed_cms INTEGER, speed_ms INTEGER,"
	"  heading_cdeg INTEGER, heading_ms INTEGER,"
	"  online INTEGER, status_ms INTEGER, agent_version TEXT, queue_depth INTEGER,"
	"  status_received_ms INTEGER"
	");"
	"CREATE TABLE batches ("
	"  id INTEGER PRIMARY KEY,"
	"  vehicle_id INTEGER NOT NULL REFERENCES vehicles(id),"
	"  seq INTEGER NOT NULL,"
	"  received_ms INTEGER NOT NULL,"
	"  n_samples INTEGER NOT NULL,"
	"  UNIQUE (vehicle_id, seq)"
	");"
	"CREATE TABLE samples ("
	"  id INTEGER PRIMARY KEY,"
	"  vehicle_id INTEGER NOT NULL REFERENCES vehicles(id),"
	"  batch_id INTEGER NOT NULL REFERENCES batches(id),"
	"  time_ms INTEGER NOT NULL,"
	"  fix INTEGER NOT NULL,"
	"  odometer_m INTEGER, fuel_permille INTEGER, lat_e7 INTEGER, lon_e7 INTEGER,"
	"  speed_cms INTEGER, heading_cdeg INTEGER"
	");"
	"CREATE INDEX samples_by_time ON samples(vehicle_id, time_ms);"
	"CREATE TABLE episodes ("
	"  vehicle_id INTEGER NOT NULL REFERENCES vehicles(id),"
	"  rule TEXT NOT NULL,"
	"  open INTEGER NOT NULL,"
	"  changed_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (vehicle_id, rule)"
	") WITHOUT ROWID;"
	"CREATE TABLE offers ("
	"  id TEXT PRIMARY KEY,"
	"  vehicle_id INTEGER NOT NULL REFERENCES vehicles(id),"
	"  kind INTEGER NOT NULL,"
	"  title TEXT NOT NULL, body TEXT NOT NULL, promo_code TEXT NOT NULL,"
	"  valid_from_ms INTEGER NOT NULL, valid_until_ms INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  state TEXT NOT NULL,"
	"  state_ms INTEGER NOT NULL"
	");"
	"CREATE INDEX offers_by_vehicle ON offers(vehicle_id, created_ms);"
	"CREATE TABLE offer_events ("
	"  vehicle_id INTEGER NOT NULL REFERENCES vehicles(id),"
	"  offer_id TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  reason TEXT NOT NULL,"
	"  time_ms INTEGER NOT NULL,"
	"  received_ms INTEGER NOT NULL,"
	"  UNIQUE (vehicle_id, offer_id, action, time_ms)"
	");"
	"CREATE TABLE counters ("
	"  instance TEXT NOT NULL,"
	"  name TEXT NOT NULL,"
	"  value INTEGER NOT NULL,"
	"  updated_ms INTEGER NOT NULL,"
	"  PRIMARY KEY (instance, name)"
	") WITHOUT ROWID;";

struct sqlite_store {
	struct store base;	    /* must stay first */
	sqlite3 *db;		    /* owned */
	sqlite3_stmt *st[ST_COUNT]; /* owned, prepared once */
	int read_only;
	int in_tx; /* a BEGIN is open */
	/* fail()'s log limiter */
	int last_fail_rc;
	const char *last_fail_op; /* borrowed string literal */
	time_t last_fail_logged;
	unsigned long fail_suppressed;
};

static const struct store_ops sqlite_ops;

/* The backend struct behind s; asserts it is ours. */
static struct sqlite_store *to_sq(struct store *s)
{
	assert(s && s->ops == &sqlite_ops);
	return (struct sqlite_store *)s;
}

/*
 * Logs a failed operation and returns its errno. The same failure (operation
 * and code) repeating, as with a full disk under load, is logged at most once
 * every FAIL_LOG_PERIOD_S with the number of repeats in between.
 */
static int fail(struct sqlite_store *q, int rc, const char *op)
{
	time_t now = time(NULL);

	if (rc == q->last_fail_rc && op == q->last_fail_op &&
	    now - q->last_fail_logged < FAIL_LOG_PERIOD_S) {
		q->fail_suppressed++;
		return sqlerr_errno(rc);
	}
	if (q->fail_suppressed)
		log_error("store: %s failed: %s (sqlite %d); %lu similar failures not logged", op,
			  sqlite3_errmsg(q->db), rc, q->fail_suppressed);
	else
		log_error("store: %s failed: %s (sqlite %d)", op, sqlite3_errmsg(q->db), rc);
	q->last_fail_rc = rc;
	q->last_fail_op = op;
	q->last_fail_logged = now;
	q->fail_suppressed = 0;
	return sqlerr_errno(rc);
}

/* Steps a statement that returns no rows and resets it. */
static int exec_stmt(struct sqlite_store *q, enum stmt_id id, const char *op)
{
	sqlite3_stmt *st = q->st[id];
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return fail(q, rc, op);
	return 0;
}

/* -EROFS for a read-only store, else 0. */
static int check_writable(struct sqlite_store *q)
{
	return q->read_only ? -EROFS : 0;
}

/* Binds an int64 or NULL. */
static void bind_opt(sqlite3_stmt *st, int idx, int present, int64_t v)
{
	if (present)
		sqlite3_bind_int64(st, idx, v);
	else
		sqlite3_bind_null(st, idx);
}

/*
 * The sq_* functions implement struct store_ops; their contracts (return
 * values, ownership of results) are written once, in store.h.
 */
static void sq_close(struct store *s)
{
	struct sqlite_store *q = to_sq(s);

	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(q->st[i]);
	if (q->in_tx)
		sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(q->db);
	free(q);
}

static int sq_begin(struct store *s)
{
	struct sqlite_store *q = to_sq(s);
	int r = check_writable(q);

	if (r < 0)
		return r;
	if (q->in_tx)
		return -EBUSY;
	r = exec_stmt(q, ST_BEGIN, "begin transaction");
	if (r == 0)
		q->in_tx = 1;
	return r;
}

static int sq_commit(struct store *s)
{
	struct sqlite_store *q = to_sq(s);
	int r;

	if (!q->in_tx)
		return -EINVAL;
	r = exec_stmt(q, ST_COMMIT, "commit");
	/* A failed COMMIT may leave the transaction open: the caller rolls back. */
	if (r == 0 || sqlite3_get_autocommit(q->db))
		q->in_tx = 0;
	return r;
}

static int sq_rollback(struct store *s)
{
	struct sqlite_store *q = to_sq(s);
	int r = 0;

	if (!q->in_tx)
		return 0;
	/* SQLite may already have rolled back by itself (e.g. SQLITE_FULL). */
	if (!sqlite3_get_autocommit(q->db))
		r = exec_stmt(q, ST_ROLLBACK, "rollback");
	q->in_tx = 0;
	return r;
}

static int sq_savepoint(struct store *s)
{
	struct sqlite_store *q = to_sq(s);

	if (!q->in_tx)
		return -EINVAL;
	return exec_stmt(q, ST_SAVEPOINT, "savepoint");
}

static int sq_release(struct store *s)
{
	struct sqlite_store *q = to_sq(s);

	if (!q->in_tx)
		return -EINVAL;
	return exec_stmt(q, ST_RELEASE, "release savepoint");
}

static int sq_rollback_to(struct store *s)
{
	struct sqlite_store *q = to_sq(s);
	int r;

	if (!q->in_tx)
		return -EINVAL;
	if (sqlite3_get_autocommit(q->db)) {
		/* SQLite rolled the whole transaction back on its own. */
		q->in_tx = 0;
		return -EIO;
	}
	r = exec_stmt(q, ST_ROLLBACK_TO, "rollback to savepoint");
	if (r == 0)
		r = exec_stmt(q, ST_RELEASE, "release savepoint");
	return r;
}

/*
 * Looks up the vehicle's row id; with create, inserts the vehicle first.
 * Returns 0 and *ret_id, -ENOENT (no create, unknown VIN) or -errno.
 */
static int vehicle_id(struct sqlite_store *q, const char *vin, int create, int64_t *ret_id)
{
	sqlite3_stmt *st;
	int rc, r = 0;

	if (create) {
		sqlite3_bind_text(q->st[ST_VEHICLE_ENSURE], 1, vin, -1, SQLITE_STATIC);
		r = exec_stmt(q, ST_VEHICLE_ENSURE, "insert vehicle");
		if (r < 0)
			return r;
	}
	st = q->st[ST_VEHICLE_ID];
	sqlite3_bind_text(st, 1, vin, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_id = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = fail(q, rc, "look up vehicle");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int sq_put_batch(struct store *s, const char *vin, uint64_t seq,
			const struct sample *samples, size_t n, int64_t received_ms,
			int *ret_duplicate)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st;
	int64_t vid, batch_id;
	int r = check_writable(q);

	if (r < 0)
		return r;
	r = vehicle_id(q, vin, 1, &vid);
	if (r < 0)
		return r;
	st = q->st[ST_BATCH_INSERT];
	sqlite3_bind_int64(st, 1, vid);
	sqlite3_bind_int64(st, 2, (int64_t)seq);
	sqlite3_bind_int64(st, 3, received_ms);
	sqlite3_bind_int64(st, 4, (int64_t)n);
	r = exec_stmt(q, ST_BATCH_INSERT, "insert batch");
	if (r < 0)
		return r;
	if (sqlite3_changes(q->db) == 0) {
		*ret_duplicate = 1;
		return 0;
	}
	batch_id = sqlite3_last_insert_rowid(q->db);
	st = q->st[ST_SAMPLE_INSERT];
	for (size_t i = 0; i < n; i++) {
		const struct sample *x = &samples[i];

		sqlite3_bind_int64(st, 1, vid);
		sqlite3_bind_int64(st, 2, batch_id);
		sqlite3_bind_int64(st, 3, x->time_ms);
		sqlite3_bind_int(st, 4, (int)x->fix);
		bind_opt(st, 5, x->present & SAMPLE_ODOMETER, x->odometer_m);
		bind_opt(st, 6, x->present & SAMPLE_FUEL, x->fuel_permille);
		bind_opt(st, 7, x->present & SAMPLE_POSITION, x->lat_e7);
		bind_opt(st, 8, x->present & SAMPLE_POSITION, x->lon_e7);
		bind_opt(st, 9, x->present & SAMPLE_SPEED, x->speed_cms);
		bind_opt(st, 10, x->present & SAMPLE_HEADING, x->heading_cdeg);
		r = exec_stmt(q, ST_SAMPLE_INSERT, "insert sample");
		if (r < 0)
			return r;
	}
	*ret_duplicate = 0;
	return 0;
}

/* Index of the newest sample with all bits of mask present, or -1. */
static long newest_with(const struct sample *samples, size_t n, unsigned mask)
{
	long best = -1;

	for (size_t i = 0; i < n; i++) {
		if ((samples[i].present & mask) != mask)
			continue;
		if (best < 0 || samples[i].time_ms >= samples[best].time_ms)
			best = (long)i;
	}
	return best;
}

static int sq_update_latest(struct store *s, const char *vin, const struct sample *samples,
			    size_t n)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_LATEST_UPDATE];
	long any, odo, fuel, pos, spd, hdg;
	int64_t vid;
	int r = check_writable(q);

	if (r < 0)
		return r;
	if (n == 0)
		return 0;
	r = vehicle_id(q, vin, 1, &vid);
	if (r < 0)
		return r;
	any = newest_with(samples, n, 0);
	odo = newest_with(samples, n, SAMPLE_ODOMETER);
	fuel = newest_with(samples, n, SAMPLE_FUEL);
	pos = newest_with(samples, n, SAMPLE_POSITION);
	spd = newest_with(samples, n, SAMPLE_SPEED);
	hdg = newest_with(samples, n, SAMPLE_HEADING);

	sqlite3_bind_int64(st, 1, samples[any].time_ms);
	sqlite3_bind_int(st, 2, (int)samples[any].fix);
	bind_opt(st, 3, odo >= 0, odo >= 0 ? samples[odo].time_ms : 0);
	bind_opt(st, 4, odo >= 0, odo >= 0 ? samples[odo].odometer_m : 0);
	bind_opt(st, 5, fuel >= 0, fuel >= 0 ? samples[fuel].time_ms : 0);
	bind_opt(st, 6, fuel >= 0, fuel >= 0 ? samples[fuel].fuel_permille : 0);
	bind_opt(st, 7, pos >= 0, pos >= 0 ? samples[pos].time_ms : 0);
	bind_opt(st, 8, pos >= 0, pos >= 0 ? samples[pos].lat_e7 : 0);
	bind_opt(st, 9, pos >= 0, pos >= 0 ? samples[pos].lon_e7 : 0);
	bind_opt(st, 10, spd >= 0, spd >= 0 ? samples[spd].time_ms : 0);
	bind_opt(st, 11, spd >= 0, spd >= 0 ? samples[spd].speed_cms : 0);
	bind_opt(st, 12, hdg >= 0, hdg >= 0 ? samples[hdg].time_ms : 0);
	bind_opt(st, 13, hdg >= 0, hdg >= 0 ? samples[hdg].heading_cdeg : 0);
	sqlite3_bind_int64(st, 14, vid);
	return exec_stmt(q, ST_LATEST_UPDATE, "update latest state");
}

static int sq_vehicle_get(struct store *s, const char *vin, struct store_vehicle *ret_v)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_VEHICLE_GET];
	struct store_vehicle v;
	int rc, r = 0;

	memset(&v, 0, sizeof(v));
	sqlite3_bind_text(st, 1, vin, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = fail(q, rc, "get vehicle");
		goto out;
	}
	snprintf(v.vin, sizeof(v.vin), "%s", (const char *)sqlite3_column_text(st, 0));
	if (sqlite3_column_type(st, 1) != SQLITE_NULL) {
		v.has_sample = 1;
		v.time_ms = sqlite3_column_int64(st, 1);
		v.fix = (enum fix_mode)sqlite3_column_int(st, 2);
	}
	if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
		v.present |= SAMPLE_ODOMETER;
		v.odometer_m = sqlite3_column_int64(st, 3);
	}
	if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
		v.present |= SAMPLE_FUEL;
		v.fuel_permille = sqlite3_column_int(st, 4);
	}
	if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
		v.present |= SAMPLE_POSITION;
		v.lat_e7 = sqlite3_column_int(st, 5);
		v.lon_e7 = sqlite3_column_int(st, 6);
	}
	if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
		v.present |= SAMPLE_SPEED;
		v.speed_cms = sqlite3_column_int(st, 7);
	}
	if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
		v.present |= SAMPLE_HEADING;
		v.heading_cdeg = sqlite3_column_int(st, 8);
	}
	if (sqlite3_column_type(st, 9) == SQLITE_NULL)
		v.online = STORE_ONLINE_UNKNOWN;
	else
		v.online = sqlite3_column_int(st, 9) ? STORE_ONLINE : STORE_OFFLINE;
	v.status_time_ms = sqlite3_column_int64(st, 10);
	if (sqlite3_column_type(st, 11) != SQLITE_NULL)
		snprintf(v.agent_version, sizeof(v.agent_version), "%s",
			 (const char *)sqlite3_column_text(st, 11));
	*ret_v = v;
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int sq_vehicle_history(struct store *s, const char *vin, size_t limit,
			      struct store_history_row **ret_rows, size_t *ret_n)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_HISTORY];
	struct store_history_row *rows = NULL;
	size_t n = 0, cap = 0;
	int64_t vid;
	int rc, r;

	r = vehicle_id(q, vin, 0, &vid);
	if (r < 0)
		return r;
	if (limit == 0 || limit > HISTORY_MAX_ROWS)
		limit = HISTORY_MAX_ROWS;
	sqlite3_bind_int64(st, 1, vid);
	sqlite3_bind_int64(st, 2, (int64_t)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_history_row *row;

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct store_history_row *g;

			if (ncap > limit)
				ncap = limit;
			g = realloc(rows, ncap * sizeof(*g));
			if (!g) {
				r = -ENOMEM;
				goto out;
			}
			rows = g;
			cap = ncap;
		}
		row = &rows[n++];
		memset(row, 0, sizeof(*row));
		row->seq = (uint64_t)sqlite3_column_int64(st, 0);
		row->s.time_ms = sqlite3_column_int64(st, 1);
		row->s.fix = (enum fix_mode)sqlite3_column_int(st, 2);
		if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
			row->s.present |= SAMPLE_ODOMETER;
			row->s.odometer_m = sqlite3_column_int64(st, 3);
		}
		if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
			row->s.present |= SAMPLE_FUEL;
			row->s.fuel_permille = sqlite3_column_int(st, 4);
		}
		if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
			row->s.present |= SAMPLE_POSITION;
			row->s.lat_e7 = sqlite3_column_int(st, 5);
			row->s.lon_e7 = sqlite3_column_int(st, 6);
		}
		if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
			row->s.present |= SAMPLE_SPEED;
			row->s.speed_cms = sqlite3_column_int(st, 7);
		}
		if (sqlite3_column_type(st, 8) != SQLITE_NULL) {
			row->s.present |= SAMPLE_HEADING;
			row->s.heading_cdeg = sqlite3_column_int(st, 8);
		}
	}
	if (rc != SQLITE_DONE) {
		r = fail(q, rc, "read history");
		goto out;
	}
	/* Selected newest first; hand back oldest first. */
	for (size_t i = 0; i < n / 2; i++) {
		struct store_history_row t = rows[i];

		rows[i] = rows[n - 1 - i];
		rows[n - 1 - i] = t;
	}
	*ret_rows = rows;
	*ret_n = n;
	rows = NULL;
out:
	free(rows);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int sq_put_status(struct store *s, const char *vin, const struct agent_status *as,
			 int64_t received_ms)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_STATUS_UPDATE];
	int64_t vid;
	int r = check_writable(q);

	if (r < 0)
		return r;
	r = vehicle_id(q, vin, 1, &vid);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, vid);
	sqlite3_bind_int(st, 2, as->state == AGENT_ONLINE);
	sqlite3_bind_int64(st, 3, as->time_ms);
	sqlite3_bind_text(st, 4, as->agent_version, -1, SQLITE_STATIC);
	bind_opt(st, 5, as->has_queue_depth, as->queue_depth);
	sqlite3_bind_int64(st, 6, received_ms);
	return exec_stmt(q, ST_STATUS_UPDATE, "update status");
}

static int sq_episode_get(struct store *s, const char *vin, const char *rule, int *ret_open)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_EPISODE_GET];
	int64_t vid;
	int rc, r;

	r = vehicle_id(q, vin, 0, &vid);
	if (r == -ENOENT) {
		*ret_open = 0;
		return 0;
	}
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, vid);
	sqlite3_bind_text(st, 2, rule, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret_open = sqlite3_column_int(st, 0) != 0;
	else if (rc == SQLITE_DONE)
		*ret_open = 0;
	else
		r = fail(q, rc, "get episode");
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int sq_episode_set(struct store *s, const char *vin, const char *rule, int open,
			  int64_t now_ms)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_EPISODE_SET];
	int64_t vid;
	int r = check_writable(q);

	if (r < 0)
		return r;
	r = vehicle_id(q, vin, 1, &vid);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, vid);
	sqlite3_bind_text(st, 2, rule, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, open ? 1 : 0);
	sqlite3_bind_int64(st, 4, now_ms);
	return exec_stmt(q, ST_EPISODE_SET, "set episode");
}

static int sq_offer_put(struct store *s, const struct offer *o, int64_t created_ms)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_OFFER_INSERT];
	int64_t vid;
	int rc, r = check_writable(q);

	if (r < 0)
		return r;
	r = vehicle_id(q, o->vin, 1, &vid);
	if (r < 0)
		return r;
	sqlite3_bind_text(st, 1, o->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, vid);
	sqlite3_bind_int(st, 3, (int)o->kind);
	sqlite3_bind_text(st, 4, o->title, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, o->body, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, o->promo_code, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, o->valid_from_ms);
	sqlite3_bind_int64(st, 8, o->valid_until_ms);
	sqlite3_bind_int64(st, 9, created_ms);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return -EEXIST; /* expected, not worth an error line */
	if (rc != SQLITE_DONE)
		return fail(q, rc, "insert offer");
	return 0;
}

/* The offer state an event action moves to, as stored; NULL if unknown. */
static const char *action_name(enum offer_action a)
{
	switch (a) {
	case OFFER_ACTION_SHOWN:
		return "shown";
	case OFFER_ACTION_ACCEPTED:
		return "accepted";
	case OFFER_ACTION_DISMISSED:
		return "dismissed";
	case OFFER_ACTION_REJECTED:
		return "rejected";
	}
	return NULL;
}

static int sq_offer_event(struct store *s, const char *vin, const struct offer_event *ev,
			  int64_t received_ms)
{
	struct sqlite_store *q = to_sq(s);
	const char *action = action_name(ev->action);
	sqlite3_stmt *st;
	int64_t vid;
	int rc, r = check_writable(q);

	if (r < 0)
		return r;
	if (!action)
		return -EINVAL;
	r = vehicle_id(q, vin, 1, &vid);
	if (r < 0)
		return r;
	st = q->st[ST_OFFER_EVENT_INSERT];
	sqlite3_bind_int64(st, 1, vid);
	sqlite3_bind_text(st, 2, ev->offer_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ev->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, ev->time_ms);
	sqlite3_bind_int64(st, 6, received_ms);
	r = exec_stmt(q, ST_OFFER_EVENT_INSERT, "insert offer event");
	if (r < 0)
		return r;

	st = q->st[ST_OFFER_EXISTS];
	sqlite3_bind_text(st, 1, ev->offer_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, vid);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW)
		return fail(q, rc, "look up offer");

	st = q->st[ST_OFFER_STATE];
	sqlite3_bind_text(st, 1, ev->offer_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, vid);
	sqlite3_bind_text(st, 3, action, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, ev->time_ms);
	sqlite3_bind_int(st, 5, ev->action == OFFER_ACTION_SHOWN ? 1 : 2);
	return exec_stmt(q, ST_OFFER_STATE, "update offer state");
}

/* Parses a state name from the database; unknown text reads as "sent". */
static enum store_offer_state state_parse(const char *s)
{
	static const enum store_offer_state all[] = {
		STORE_OFFER_SENT,      STORE_OFFER_SHOWN,    STORE_OFFER_ACCEPTED,
		STORE_OFFER_DISMISSED, STORE_OFFER_REJECTED,
	};

	for (size_t i = 0; s && i < sizeof(all) / sizeof(all[0]); i++)
		if (strcmp(s, store_offer_state_name(all[i])) == 0)
			return all[i];
	return STORE_OFFER_SENT;
}

/* Copies a text column into a fixed buffer ("" for NULL), truncating. */
static void column_str(sqlite3_stmt *st, int col, char *buf, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, col);

	snprintf(buf, size, "%s", t ? (const char *)t : "");
}

static int sq_offer_list(struct store *s, const char *vin, struct store_offer_row **ret_rows,
			 size_t *ret_n)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_OFFER_LIST];
	struct store_offer_row *rows = NULL;
	size_t n = 0, cap = 0;
	int64_t vid;
	int rc, r;

	r = vehicle_id(q, vin, 0, &vid);
	if (r < 0)
		return r;
	sqlite3_bind_int64(st, 1, vid);
	sqlite3_bind_int64(st, 2, OFFER_LIST_MAX_ROWS);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_offer_row *row;

		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct store_offer_row *g = realloc(rows, ncap * sizeof(*g));

			if (!g) {
				r = -ENOMEM;
				goto out;
			}
			rows = g;
			cap = ncap;
		}
		row = &rows[n++];
		memset(row, 0, sizeof(*row));
		column_str(st, 0, row->id, sizeof(row->id));
		row->kind = (enum offer_kind)sqlite3_column_int(st, 1);
		column_str(st, 2, row->title, sizeof(row->title));
		column_str(st, 3, row->promo_code, sizeof(row->promo_code));
		row->valid_from_ms = sqlite3_column_int64(st, 4);
		row->valid_until_ms = sqlite3_column_int64(st, 5);
		row->created_ms = sqlite3_column_int64(st, 6);
		row->state = state_parse((const char *)sqlite3_column_text(st, 7));
	}
	if (rc != SQLITE_DONE) {
		r = fail(q, rc, "list offers");
		goto out;
	}
	*ret_rows = rows;
	*ret_n = n;
	rows = NULL;
out:
	free(rows);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

/* Counters are stored as (instance, name, value) rows: new counters need no
 * migration. */
struct counter_field {
	const char *name;
	size_t offset;
};

#define CF(field)                                              \
	{                                                      \
#field, offsetof(struct store_counters, field) \
	}
#define CR(idx, nm)                                                                          \
	{                                                                                    \
		"rejected." nm,                                                              \
			offsetof(struct store_counters, rejected) + (idx) * sizeof(uint64_t) \
	}
static const struct counter_field counter_fields[] = {
	CF(received),
	CF(stored),
	CF(samples_stored),
	CF(duplicates),
	CR(STORE_REJECT_BAD_TOPIC, "bad_topic"),
	CR(STORE_REJECT_BAD_VIN, "bad_vin"),
	CR(STORE_REJECT_OVERSIZED, "oversized"),
	CR(STORE_REJECT_MALFORMED, "malformed"),
	CR(STORE_REJECT_STORAGE, "storage"),
	CF(offers_sent),
	CF(offers_failed),
	CF(acks_sent),
	CF(events),
	CF(status),
};
#define N_COUNTER_FIELDS (sizeof(counter_fields) / sizeof(counter_fields[0]))

/* The field of c named name (as stored), or NULL for a name we do not know. */
static uint64_t *counter_slot(struct store_counters *c, const char *name)
{
	for (size_t i = 0; i < N_COUNTER_FIELDS; i++)
		if (strcmp(counter_fields[i].name, name) == 0)
			return (uint64_t *)((char *)c + counter_fields[i].offset);
	return NULL; /* written by a newer gateway: ignored */
}

static int sq_counters_save(struct store *s, const char *id, const struct store_counters *c,
			    int64_t now_ms)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_COUNTER_SET];
	int r = check_writable(q);

	if (r < 0)
		return r;
	for (size_t i = 0; i < N_COUNTER_FIELDS; i++) {
		const uint64_t *v = (const uint64_t *)((const char *)c + counter_fields[i].offset);

		sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, counter_fields[i].name, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, (int64_t)*v);
		sqlite3_bind_int64(st, 4, now_ms);
		r = exec_stmt(q, ST_COUNTER_SET, "save counters");
		if (r < 0)
			return r;
	}
	return 0;
}

static int sq_counters_load(struct store *s, const char *id, struct store_counters *ret_c)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_COUNTER_GET];
	struct store_counters c;
	int rc, r = 0;

	memset(&c, 0, sizeof(c));
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t *slot = counter_slot(&c, (const char *)sqlite3_column_text(st, 0));

		if (slot)
			*slot = (uint64_t)sqlite3_column_int64(st, 1);
	}
	if (rc != SQLITE_DONE)
		r = fail(q, rc, "load counters");
	else
		*ret_c = c;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int sq_counters_list(struct store *s, struct store_instance **ret_rows, size_t *ret_n)
{
	struct sqlite_store *q = to_sq(s);
	sqlite3_stmt *st = q->st[ST_COUNTER_LIST];
	struct store_instance *rows = NULL, *cur = NULL;
	size_t n = 0, cap = 0;
	int rc, r = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *inst = (const char *)sqlite3_column_text(st, 0);
		int64_t updated = sqlite3_column_int64(st, 3);
		uint64_t *slot;

		if (!inst)
			continue;
		if (!cur || strncmp(cur->id, inst, sizeof(cur->id) - 1) != 0) {
			if (n == INSTANCES_MAX)
				break;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 4;
				struct store_instance *g = realloc(rows, ncap * sizeof(*g));

				if (!g) {
					r = -ENOMEM;
					goto out;
				}
				rows = g;
				cap = ncap;
			}
			cur = &rows[n++];
			memset(cur, 0, sizeof(*cur));
			snprintf(cur->id, sizeof(cur->id), "%s", inst);
		}
		if (updated > cur->updated_at_ms)
			cur->updated_at_ms = updated;
		slot = counter_slot(&cur->c, (const char *)sqlite3_column_text(st, 1));
		if (slot)
			*slot = (uint64_t)sqlite3_column_int64(st, 2);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		r = fail(q, rc, "list counters");
		goto out;
	}
	*ret_rows = rows;
	*ret_n = n;
	rows = NULL;
out:
	free(rows);
	sqlite3_reset(st);
	return r;
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.savepoint = sq_savepoint,
	.release = sq_release,
	.rollback_to = sq_rollback_to,
	.put_batch = sq_put_batch,
	.update_latest = sq_update_latest,
	.vehicle_get = sq_vehicle_get,
	.vehicle_history = sq_vehicle_history,
	.put_status = sq_put_status,
	.episode_get = sq_episode_get,
	.episode_set = sq_episode_set,
	.offer_put = sq_offer_put,
	.offer_event = sq_offer_event,
	.offer_list = sq_offer_list,
	.counters_save = sq_counters_save,
	.counters_load = sq_counters_load,
	.counters_list = sq_counters_list,
};

/* Reads PRAGMA user_version. */
static int schema_version(sqlite3 *db, int *ret_version)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret_version = sqlite3_column_int(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * Takes the schema from its current version to STORE_SQLITE_SCHEMA_VERSION in
 * one transaction. Returns 0 or -errno with err set.
 */
static int migrate(struct sqlite_store *q, int version, char *err, size_t errlen)
{
	char sql[64];
	int rc;

	rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	/* Someone may have migrated between our read and our lock. */
	rc = schema_version(q->db, &version);
	if (rc != SQLITE_OK)
		goto fail;
	if (version < 1) {
		rc = sqlite3_exec(q->db, schema_v1, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			goto fail;
	}
	/* Future: if (version < 2) { ALTER TABLE ... } */
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SQLITE_SCHEMA_VERSION);
	rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	rc = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "creating the schema failed: %s", sqlite3_errmsg(q->db));
	sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return sqlerr_errno(rc);
}

int store_sqlite_open(const char *path, enum store_mode mode, struct store **ret_store, char *err,
		      size_t errlen)
{
	struct sqlite_store *q = NULL;
	int flags = SQLITE_OPEN_NOMUTEX;
	int rc, r = 0, version = 0;
	struct stat sb;

	if (mode == STORE_READ_ONLY) {
		if (stat(path, &sb) < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		flags |= SQLITE_OPEN_READONLY;
	} else {
		flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	q->base.ops = &sqlite_ops;
	q->read_only = mode == STORE_READ_ONLY;
	rc = sqlite3_open_v2(path, &q->db, flags, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path,
			 q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
		r = sqlerr_errno(rc);
		goto out;
	}
	sqlite3_extended_result_codes(q->db, 1);
	sqlite3_busy_timeout(q->db, 5000);
	if (!q->read_only) {
		/* journal_mode answers with a row; exec() ignores it. */
		rc = sqlite3_exec(q->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", NULL,
				  NULL, NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(q->db));
			r = sqlerr_errno(rc);
			goto out;
		}
	}
	rc = schema_version(q->db, &version);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(q->db));
		r = sqlerr_errno(rc);
		goto out;
	}
	if (version > STORE_SQLITE_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s: schema version %d is newer than this program's (%d)",
			 path, version, STORE_SQLITE_SCHEMA_VERSION);
		r = -EPROTO;
		goto out;
	}
	if (version < STORE_SQLITE_SCHEMA_VERSION) {
		if (q->read_only) {
			snprintf(err, errlen, "%s: not a gateway database (schema version %d)",
				 path, version);
			r = -EPROTO;
			goto out;
		}
		r = migrate(q, version, err, errlen);
		if (r < 0)
			goto out;
	}
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(q->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
					&q->st[i], NULL);
		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "%s: preparing statement %d: %s", path, i,
				 sqlite3_errmsg(q->db));
			r = sqlerr_errno(rc);
			goto out;
		}
	}
	*ret_store = &q->base;
	q = NULL;
out:
	if (q) {
		for (int i = 0; i < ST_COUNT; i++)
			sqlite3_finalize(q->st[i]);
		sqlite3_close(q->db);
		free(q);
	}
	return r;
}
