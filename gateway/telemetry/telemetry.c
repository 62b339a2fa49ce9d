/*
 * The telemetry domain; see telemetry.h for what it stores and why. Storing
 * new batches is three multi-row statements (db_rows: up to DB_ROWS_MAX
 * rows each), each an atomic upsert both backends run as written: insert the
 * batches (nothing for an identity that exists, which RETURNING tells), fold
 * each vehicle's new samples into its latest state (returning the result, so
 * the rules need no second read), and fold them into each UTC day they
 * touch. A bus drain of 500 batches is a dozen statements, not 1,500: on
 * PostgreSQL each statement is a round trip on the loop thread. What can be computed from the batch alone (the newest value of
 * each field, the per-day aggregates) is computed here, in C, before the
 * statements run; what depends on other batches is decided inside the
 * statement (CASE on the stored row), never read first and written back.
 */
#include "telemetry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "log.h"

#define DAY_MS 86400000LL
/* A sample moves when its speed is at least 1 km/h. */
#define MOVING_CMS 28
/* Samples further apart than this are a gap, not driving time. */
#define MAX_STEP_MS 60000
/* A rise of fuel level by this much (0.1 %) is a refuel, not sensor noise. */
#define REFUEL_MIN_PERMILLE 50
/* Days one batch may touch in the rollups; samples beyond are skipped. */
#define MAX_DAYS_PER_BATCH 8

enum stmt_id {
	ST_STATUS_UPSERT,
	ST_VEHICLE_GET,
	ST_VEHICLE_LIST,
	ST_HISTORY,
	ST_DAYS,
	ST_COUNT,
};

/* Column list of vehicle_state read into struct telemetry_vehicle. */
#define VEHICLE_COLS                                                                           \
	"vin, time_ms, fix, odometer_m, fuel_permille, fuel_ms, lat_e7, lon_e7, speed_cms,"    \
	" heading_cdeg, online, status_ms, agent_version, odometer_ms, position_ms, speed_ms," \
	" heading_ms, batches, samples, odometer_estimated"

/* When a vehicle was last seen (0: never): see struct telemetry_list_filter. */
#define SEEN                                                                             \
	"(CASE WHEN time_ms IS NOT NULL AND (status_ms IS NULL OR time_ms >= status_ms)" \
	" THEN time_ms ELSE COALESCE(status_ms, 0) END)"
/* The VIN set's placeholders: $8..$71, TELEMETRY_LIST_VINS_MAX of them. */
#define LIST_VIN_PARAM0 8
#define LIST_VIN_PARAMS                                                                            \
	"$8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, " \
	"$26, $27, $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41, $42, "    \
	"$43, $44, $45, $46, $47, $48, $49, $50, $51, $52, $53, $54, $55, $56, $57, $58, $59, "    \
	"$60, $61, $62, $63, $64, $65, $66, $67, $68, $69, $70, $71"

/* A field is taken from the batch when it is newer than (or as new as) ours. */
#define NEWER(t, col) "(" t " IS NOT NULL AND (" col " IS NULL OR " t " >= " col "))"
#define TAKE(val, t, col_t)                                                                       \
	val " = CASE WHEN " NEWER("excluded." t, "v." col_t) " THEN excluded." val " ELSE v." val \
							     " END"

/* The earliest (FIRST) or latest (LAST) of a (value, time) pair. */
#define FIRST(val, t)                                                                         \
	val " = CASE WHEN d." t " IS NULL OR excluded." t " < d." t " THEN excluded." val     \
	    " ELSE d." val " END, " t " = CASE WHEN d." t " IS NULL OR excluded." t " < d." t \
	    " THEN excluded." t " ELSE d." t " END"
#define LAST(val, t)                                                                           \
	val " = CASE WHEN d." t " IS NULL OR excluded." t " >= d." t " THEN excluded." val     \
	    " ELSE d." val " END, " t " = CASE WHEN d." t " IS NULL OR excluded." t " >= d." t \
	    " THEN excluded." t " ELSE d." t " END"

/* The SQL reads best laid out by hand: the formatter keeps out. */
/* clang-format off */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_STATUS_UPSERT] =
		"INSERT INTO vehicle_state AS v(vin, created_ms, online, status_ms, agent_version,"
		" queue_depth, status_received_ms) VALUES($1, $2, $3, $4, $5, $6, $7)"
		" ON CONFLICT(vin) DO UPDATE SET online = excluded.online,"
		" status_ms = excluded.status_ms, agent_version = excluded.agent_version,"
		" queue_depth = excluded.queue_depth, status_received_ms = excluded.status_received_ms"
		" WHERE v.status_ms IS NULL OR v.status_ms <= excluded.status_ms",
	[ST_VEHICLE_GET] = "SELECT " VEHICLE_COLS " FROM vehicle_state WHERE vin = $1",
	/*
	 * One statement for every filter: a bound that is off binds its
	 * widest value ($2, $3) or a 0 flag ($4, $6); the VIN set is
	 * TELEMETRY_LIST_VINS_MAX placeholders, the unused ones NULL (which
	 * match nothing). SEEN is telemetry_vehicle.seen_ms in SQL.
	 */
	[ST_VEHICLE_LIST] =
		"SELECT " VEHICLE_COLS " FROM vehicle_state WHERE vin > $1"
		" AND " SEEN " >= $2 AND " SEEN " < $3"
		" AND ($4 = 0 OR fuel_permille <= $5)"
		" AND ($6 = 0 OR vin IN (" LIST_VIN_PARAMS "))"
		" ORDER BY vin LIMIT $7",
	/* Newest batches first, so a limit can stop early. */
	[ST_HISTORY] =
		"SELECT epoch, seq, data, last_ms, implausible FROM telemetry_batches"
		" WHERE vin = $1 AND last_ms >= $2 AND first_ms <= $3 ORDER BY last_ms DESC",
	[ST_DAYS] =
		"SELECT day, samples, first_odometer_m, last_odometer_m, driving_ms,"
		" first_fuel_permille, last_fuel_permille, fuel_refuelled_permille"
		" FROM telemetry_daily WHERE vin = $1 AND day >= $2 AND day <= $3"
		" ORDER BY day LIMIT $4",
};
/*
 * The three writes of a new batch, as multi-row statements (db_rows): one
 * statement stores up to DB_ROWS_MAX batches, folds up to DB_ROWS_MAX
 * vehicles into their latest state, or up to DB_ROWS_MAX (vehicle, day)
 * pairs into the rollups.
 */
static const char batch_head[] =
	"INSERT INTO telemetry_batches(vin, epoch, seq, first_ms, last_ms, n_samples,"
	" received_ms, data, implausible, implausible_reasons) VALUES";
static const char batch_tail[] = "ON CONFLICT(vin, epoch, seq) DO NOTHING RETURNING vin, epoch, seq";
#define BATCH_COLS 10

/*
 * Each pair (value, its time) of the newest sample carrying it among the
 * vehicle's new samples; NULL times when none carried the field. time and
 * fix go together, as do lat and lon.
 */
static const char latest_head[] =
	"INSERT INTO vehicle_state AS v(vin, created_ms, time_ms, fix, odometer_m,"
	" odometer_ms, fuel_permille, fuel_ms, lat_e7, lon_e7, position_ms, speed_cms,"
	" speed_ms, heading_cdeg, heading_ms, batches, samples, odometer_estimated) VALUES";
static const char latest_tail[] =
	"ON CONFLICT(vin) DO UPDATE SET "
	TAKE("fix", "time_ms", "time_ms") ", "
	TAKE("time_ms", "time_ms", "time_ms") ", "
	TAKE("odometer_m", "odometer_ms", "odometer_ms") ", "
	TAKE("odometer_ms", "odometer_ms", "odometer_ms") ", "
	TAKE("odometer_estimated", "odometer_ms", "odometer_ms") ", "
	TAKE("fuel_permille", "fuel_ms", "fuel_ms") ", "
	TAKE("fuel_ms", "fuel_ms", "fuel_ms") ", "
	TAKE("lat_e7", "position_ms", "position_ms") ", "
	TAKE("lon_e7", "position_ms", "position_ms") ", "
	TAKE("position_ms", "position_ms", "position_ms") ", "
	TAKE("speed_cms", "speed_ms", "speed_ms") ", "
	TAKE("speed_ms", "speed_ms", "speed_ms") ", "
	TAKE("heading_cdeg", "heading_ms", "heading_ms") ", "
	TAKE("heading_ms", "heading_ms", "heading_ms") ","
	" batches = v.batches + excluded.batches, samples = v.samples + excluded.samples"
	" RETURNING " VEHICLE_COLS;
#define LATEST_COLS 18

/*
 * A refuel while the agent was off (the car parked at the pump) shows as a
 * rise from the day's last stored level to the first level of what comes
 * now, and counts when it comes after what is stored.
 */
static const char daily_head[] =
	"INSERT INTO telemetry_daily AS d(vin, day, samples, first_odo_ms, first_odometer_m,"
	" last_odo_ms, last_odometer_m, driving_ms, first_fuel_ms, first_fuel_permille,"
	" last_fuel_ms, last_fuel_permille, fuel_refuelled_permille) VALUES";
static const char daily_tail[] =
	"ON CONFLICT(vin, day) DO UPDATE SET"
	" samples = d.samples + excluded.samples, "
	FIRST("first_odometer_m", "first_odo_ms") ", "
	LAST("last_odometer_m", "last_odo_ms") ","
	" driving_ms = d.driving_ms + excluded.driving_ms, "
	FIRST("first_fuel_permille", "first_fuel_ms") ", "
	LAST("last_fuel_permille", "last_fuel_ms") ","
	" fuel_refuelled_permille = d.fuel_refuelled_permille"
	" + excluded.fuel_refuelled_permille"
	" + CASE WHEN d.last_fuel_ms IS NOT NULL AND excluded.first_fuel_ms > d.last_fuel_ms"
	" AND excluded.first_fuel_permille - d.last_fuel_permille >= 50"
	" THEN excluded.first_fuel_permille - d.last_fuel_permille ELSE 0 END";
#define DAILY_COLS 13

/* The stored odometer of the vehicles of a call, to judge new readings by. */
static const char odo_head[] =
	"SELECT vin, odometer_m, odometer_ms FROM vehicle_state WHERE vin IN (";
static const char odo_tail[] = ")";
/* clang-format on */

struct telemetry {
	struct db *db;		      /* borrowed */
	struct db_stmt *st[ST_COUNT]; /* owned */
	struct db_rows batches;	      /* owned statements: insert batches */
	struct db_rows latest;	      /* owned statements: fold latest states */
	struct db_rows daily;	      /* owned statements: fold daily rollups */
	struct db_rows odo;	      /* owned statements: stored odometers */
	struct telemetry_limits limits;
};

static const char *const implausible_names[TELEMETRY_IMPL_COUNT] = {
#define X(e, name, what) [TELEMETRY_IMPL_##e] = #name,
	TELEMETRY_IMPLAUSIBLE(X)
#undef X
};

const char *telemetry_implausible_name(enum telemetry_implausible r)
{
	return (unsigned)r < TELEMETRY_IMPL_COUNT ? implausible_names[r] : NULL;
}

struct telemetry_limits telemetry_limits_default(void)
{
	return (struct telemetry_limits){
		.max_ahead_ms = 5 * 60 * 1000,
		.min_time_ms = 1420070400000LL, /* 2015-01-01T00:00:00Z */
		.max_speed_cms = 8334,		/* 300 km/h */
		.odo_back_m = 100,
		.odo_max_speed_cms = 8334,
		.odo_slack_m = 1000,
	};
}

void telemetry_set_limits(struct telemetry *t, const struct telemetry_limits *l)
{
	t->limits = *l;
}

int64_t telemetry_day_of(int64_t time_ms)
{
	int64_t d = time_ms / DAY_MS;

	return time_ms % DAY_MS < 0 ? d - 1 : d;
}

int telemetry_new(struct db *db, struct telemetry **ret_t)
{
	struct telemetry *t = calloc(1, sizeof(*t));
	int r = 0;

	if (!t)
		return -ENOMEM;
	t->db = db;
	t->batches = (struct db_rows){
		.head = batch_head, .tail = batch_tail, .first = 1, .ncols = BATCH_COLS
	};
	t->latest = (struct db_rows){
		.head = latest_head, .tail = latest_tail, .first = 1, .ncols = LATEST_COLS
	};
	t->daily = (struct db_rows){
		.head = daily_head, .tail = daily_tail, .first = 1, .ncols = DAILY_COLS
	};
	t->odo = (struct db_rows){ .head = odo_head, .tail = odo_tail, .first = 1, .ncols = 1 };
	r = db_prepare_all(db, stmt_sql, ST_COUNT, t->st);
	if (r < 0) {
		telemetry_free(t);
		return r;
	}
	*ret_t = t;
	return 0;
}

void telemetry_free(struct telemetry *t)
{
	if (!t)
		return;
	db_finalize_all(t->st, ST_COUNT);
	db_rows_free(&t->batches);
	db_rows_free(&t->latest);
	db_rows_free(&t->daily);
	db_rows_free(&t->odo);
	free(t);
}

/* Reads a VEHICLE_COLS row into v. */
static void read_vehicle(struct db_stmt *st, struct telemetry_vehicle *v)
{
	memset(v, 0, sizeof(*v));
	db_column_copy(st, 0, v->vin, sizeof(v->vin));
	v->has_sample = !db_column_is_null(st, 1);
	v->time_ms = db_column_int64(st, 1);
	v->fix = (enum fix_mode)db_column_int64(st, 2);
	if (!db_column_is_null(st, 13)) {
		v->present |= SAMPLE_ODOMETER;
		v->odometer_m = db_column_int64(st, 3);
		if (db_column_int64(st, 19))
			v->present |= SAMPLE_ODOMETER_EST;
	}
	if (!db_column_is_null(st, 5)) {
		v->present |= SAMPLE_FUEL;
		v->fuel_permille = (int32_t)db_column_int64(st, 4);
		v->fuel_ms = db_column_int64(st, 5);
	}
	if (!db_column_is_null(st, 14)) {
		v->present |= SAMPLE_POSITION;
		v->lat_e7 = (int32_t)db_column_int64(st, 6);
		v->lon_e7 = (int32_t)db_column_int64(st, 7);
	}
	if (!db_column_is_null(st, 15)) {
		v->present |= SAMPLE_SPEED;
		v->speed_cms = (int32_t)db_column_int64(st, 8);
	}
	if (!db_column_is_null(st, 16)) {
		v->present |= SAMPLE_HEADING;
		v->heading_cdeg = (int32_t)db_column_int64(st, 9);
	}
	v->online = db_column_is_null(st, 10) ? TELEMETRY_ONLINE_UNKNOWN
		    : db_column_int64(st, 10) ? TELEMETRY_ONLINE
					      : TELEMETRY_OFFLINE;
	v->status_time_ms = db_column_int64(st, 11);
	/* as SEEN: a vehicle without a status has online unknown */
	v->seen_ms = v->has_sample && (v->online == TELEMETRY_ONLINE_UNKNOWN ||
				       v->time_ms >= v->status_time_ms)
			     ? v->time_ms
			     : v->status_time_ms;
	db_column_copy(st, 12, v->agent_version, sizeof(v->agent_version));
	v->batches = db_column_int64(st, 17);
	v->samples = db_column_int64(st, 18);
}

/* The newest sample of a batch carrying each field (index, or -1). */
struct newest {
	long any, odo, fuel, pos, speed, heading;
};

static void newest_of(const struct sample *s, size_t n, struct newest *nw)
{
	long *slot[] = { &nw->odo, &nw->fuel, &nw->pos, &nw->speed, &nw->heading };
	static const unsigned bit[] = { SAMPLE_ODOMETER, SAMPLE_FUEL, SAMPLE_POSITION, SAMPLE_SPEED,
					SAMPLE_HEADING };

	nw->any = -1;
	for (size_t k = 0; k < 5; k++)
		*slot[k] = -1;
	for (size_t i = 0; i < n; i++) {
		/* >=: of equal times the later sample wins, as in the SQL. */
		if (nw->any < 0 || s[i].time_ms >= s[nw->any].time_ms)
			nw->any = (long)i;
		for (size_t k = 0; k < 5; k++)
			if ((s[i].present & bit[k]) &&
			    (*slot[k] < 0 || s[i].time_ms >= s[*slot[k]].time_ms))
				*slot[k] = (long)i;
	}
}

/* Binds time $t and value $v of sample idx (NULL, NULL when idx < 0). */
static void bind_pair(struct db_stmt *st, int t, int v, const struct sample *s, long idx,
		      int64_t value)
{
	db_bind_opt_int64(st, t, idx >= 0, idx >= 0 ? s[idx].time_ms : 0);
	db_bind_opt_int64(st, v, idx >= 0, value);
}

/* Binds one vehicle's latest-state row at parameter offset o (0-based). */
static void bind_latest(struct db_stmt *st, int o, const char *vin, const struct sample *s,
			size_t n, int64_t batches, int64_t samples, int64_t now_ms)
{
	struct newest nw;

	newest_of(s, n, &nw);
	db_bind_text(st, o + 1, vin);
	db_bind_int64(st, o + 2, now_ms);
	bind_pair(st, o + 3, o + 4, s, nw.any, nw.any >= 0 ? s[nw.any].fix : 0);
	bind_pair(st, o + 6, o + 5, s, nw.odo, nw.odo >= 0 ? s[nw.odo].odometer_m : 0);
	bind_pair(st, o + 8, o + 7, s, nw.fuel, nw.fuel >= 0 ? s[nw.fuel].fuel_permille : 0);
	bind_pair(st, o + 11, o + 9, s, nw.pos, nw.pos >= 0 ? s[nw.pos].lat_e7 : 0);
	db_bind_opt_int64(st, o + 10, nw.pos >= 0, nw.pos >= 0 ? s[nw.pos].lon_e7 : 0);
	bind_pair(st, o + 13, o + 12, s, nw.speed, nw.speed >= 0 ? s[nw.speed].speed_cms : 0);
	bind_pair(st, o + 15, o + 14, s, nw.heading,
		  nw.heading >= 0 ? s[nw.heading].heading_cdeg : 0);
	db_bind_int64(st, o + 16, batches);
	db_bind_int64(st, o + 17, samples);
	db_bind_int64(st, o + 18, nw.odo >= 0 && (s[nw.odo].present & SAMPLE_ODOMETER_EST));
}

/* What one batch adds to one UTC day of the rollups. */
struct day_acc {
	int64_t day;
	int64_t samples;
	long first_odo, last_odo, first_fuel, last_fuel; /* sample indexes, -1 none */
	int64_t driving_ms;
	int64_t refuelled;
	/* refuel detection: lowest level since the last refuel, and whether a rise is on */
	int32_t low, peak;
	int rising;
	int have_level;
};

/* Ends a rise in progress: what it gained is a refuel. */
static void refuel_end(struct day_acc *a)
{
	if (a->rising)
		a->refuelled += a->peak - a->low;
	a->rising = 0;
	a->low = a->peak;
}

/* Feeds one fuel level (in batch order) to the refuel detector. */
static void refuel_feed(struct day_acc *a, int32_t level)
{
	if (!a->have_level) {
		a->have_level = 1;
		a->low = a->peak = level;
		return;
	}
	if (a->rising) {
		if (level >= a->peak) {
			a->peak = level;
			return;
		}
		if (a->peak - level < REFUEL_MIN_PERMILLE / 2)
			return; /* noise at the top of a fill */
		refuel_end(a);
		a->low = a->peak = level;
		return;
	}
	if (level < a->low)
		a->low = level;
	if (level - a->low >= REFUEL_MIN_PERMILLE) {
		a->rising = 1;
		a->peak = level;
	}
}

/* The interval sample i stands for when it moves: to its neighbour in the batch. */
static int64_t moving_interval(const struct sample *s, size_t n, size_t i)
{
	int64_t dt = 0;

	if (!(s[i].present & SAMPLE_SPEED) || s[i].speed_cms < MOVING_CMS)
		return 0;
	if (i > 0)
		dt = s[i].time_ms - s[i - 1].time_ms;
	else if (n > 1)
		dt = s[1].time_ms - s[0].time_ms;
	return dt > 0 && dt <= MAX_STEP_MS ? dt : 0;
}

/* Splits a batch by UTC day. Returns the number of days in acc. */
static size_t days_of(const struct sample *s, size_t n, struct day_acc *acc, size_t max,
		      size_t *ret_skipped)
{
	size_t ndays = 0;

	*ret_skipped = 0;
	for (size_t i = 0; i < n; i++) {
		int64_t day = telemetry_day_of(s[i].time_ms);
		struct day_acc *a = NULL;

		for (size_t k = 0; k < ndays; k++)
			if (acc[k].day == day)
				a = &acc[k];
		if (!a) {
			if (ndays == max) {
				(*ret_skipped)++;
				continue;
			}
			a = &acc[ndays++];
			memset(a, 0, sizeof(*a));
			a->day = day;
			a->first_odo = a->last_odo = a->first_fuel = a->last_fuel = -1;
		}
		a->samples++;
		a->driving_ms += moving_interval(s, n, i);
		if (s[i].present & SAMPLE_ODOMETER) {
			if (a->first_odo < 0 || s[i].time_ms < s[a->first_odo].time_ms)
				a->first_odo = (long)i;
			if (a->last_odo < 0 || s[i].time_ms >= s[a->last_odo].time_ms)
				a->last_odo = (long)i;
		}
		if (s[i].present & SAMPLE_FUEL) {
			if (a->first_fuel < 0 || s[i].time_ms < s[a->first_fuel].time_ms)
				a->first_fuel = (long)i;
			if (a->last_fuel < 0 || s[i].time_ms >= s[a->last_fuel].time_ms)
				a->last_fuel = (long)i;
			refuel_feed(a, s[i].fuel_permille);
		}
	}
	for (size_t k = 0; k < ndays; k++)
		refuel_end(&acc[k]);
	return ndays;
}

/* Binds one (vehicle, day) rollup row at parameter offset o (0-based). */
static void bind_day(struct db_stmt *st, int o, const char *vin, const struct sample *s,
		     const struct day_acc *a)
{
	db_bind_text(st, o + 1, vin);
	db_bind_int64(st, o + 2, a->day);
	db_bind_int64(st, o + 3, a->samples);
	bind_pair(st, o + 4, o + 5, s, a->first_odo,
		  a->first_odo >= 0 ? s[a->first_odo].odometer_m : 0);
	bind_pair(st, o + 6, o + 7, s, a->last_odo,
		  a->last_odo >= 0 ? s[a->last_odo].odometer_m : 0);
	db_bind_int64(st, o + 8, a->driving_ms);
	bind_pair(st, o + 9, o + 10, s, a->first_fuel,
		  a->first_fuel >= 0 ? s[a->first_fuel].fuel_permille : 0);
	bind_pair(st, o + 11, o + 12, s, a->last_fuel,
		  a->last_fuel >= 0 ? s[a->last_fuel].fuel_permille : 0);
	db_bind_int64(st, o + 13, a->refuelled);
}

static int item_key_cmp(const char *vin, uint64_t epoch, uint64_t seq,
			const struct telemetry_item *b)
{
	int c = strcmp(vin, b->vin);

	if (c)
		return c;
	if (epoch != b->epoch)
		return epoch < b->epoch ? -1 : 1;
	return seq < b->seq ? -1 : seq > b->seq;
}

/* Orders indexes into items (the context) by VIN, epoch, seq. */
static int item_idx_cmp(const void *x, const void *y, void *items)
{
	const struct telemetry_item *it = items, *a = &it[*(const size_t *)x];

	return item_key_cmp(a->vin, a->epoch, a->seq, &it[*(const size_t *)y]);
}

/*
 * Inserts the batches of order[0..n) (indexes into items, sorted, no two
 * alike) and marks in items[].new_batch those the database did not have.
 */
static int insert_batches(struct telemetry *t, struct telemetry_item *items, const size_t *order,
			  size_t n, int64_t received_ms, uint8_t *const *bitmaps,
			  const unsigned *reasons)
{
	for (size_t done = 0; done < n;) {
		struct db_stmt *st;
		size_t rows;
		int r = db_rows_get(t->db, &t->batches, n - done, &st, &rows);

		if (r < 0)
			return r;
		for (size_t k = 0; k < rows; k++) {
			const struct telemetry_item *it = &items[order[done + k]];
			int64_t first = it->samples[0].time_ms, last = first;
			int o = (int)k * BATCH_COLS;

			for (size_t i = 1; i < it->n; i++) {
				if (it->samples[i].time_ms < first)
					first = it->samples[i].time_ms;
				if (it->samples[i].time_ms > last)
					last = it->samples[i].time_ms;
			}
			db_bind_text(st, o + 1, it->vin);
			/* stored as its two's-complement bits */
			db_bind_int64(st, o + 2, (int64_t)it->epoch);
			db_bind_int64(st, o + 3, (int64_t)it->seq);
			db_bind_int64(st, o + 4, first);
			db_bind_int64(st, o + 5, last);
			db_bind_int64(st, o + 6, (int64_t)it->n);
			db_bind_int64(st, o + 7, received_ms);
			db_bind_blob(st, o + 8, it->raw, it->len);
			if (reasons[order[done + k]])
				db_bind_blob(st, o + 9, bitmaps[order[done + k]], (it->n + 7) / 8);
			else
				db_bind_null(st, o + 9);
			db_bind_int64(st, o + 10, reasons[order[done + k]]);
		}
		/* A row back for each batch that was new: find it among these rows. */
		while ((r = db_step(st)) == 1) {
			const char *vin = db_column_text(st, 0);
			uint64_t epoch = (uint64_t)db_column_int64(st, 1);
			uint64_t seq = (uint64_t)db_column_int64(st, 2);
			size_t lo = done, hi = done + rows;

			while (vin && lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				int c = item_key_cmp(vin, epoch, seq, &items[order[mid]]);

				if (c == 0) {
					items[order[mid]].new_batch = 1;
					break;
				}
				if (c < 0)
					hi = mid;
				else
					lo = mid + 1;
			}
		}
		db_reset(st);
		if (r < 0)
			return r;
		done += rows;
	}
	return 0;
}

/* One vehicle's new samples of this call, in (epoch, seq) order, without those set apart. */
struct vehicle_new {
	const char *vin;  /* borrowed from the items */
	struct sample *s; /* owned: the plausible ones */
	size_t n;
	int64_t batches;
	int64_t samples; /* all new samples, implausible ones too */
};

/* Folds the vehicles' new samples into their latest state; fills ret_v[]. */
static int fold_latest(struct telemetry *t, const struct vehicle_new *vn, size_t nv, int64_t now_ms,
		       struct telemetry_vehicle *ret_v)
{
	size_t got = 0;

	for (size_t done = 0; done < nv;) {
		struct db_stmt *st;
		size_t rows;
		int r = db_rows_get(t->db, &t->latest, nv - done, &st, &rows);

		if (r < 0)
			return r;
		for (size_t k = 0; k < rows; k++)
			bind_latest(st, (int)k * LATEST_COLS, vn[done + k].vin, vn[done + k].s,
				    vn[done + k].n, vn[done + k].batches, vn[done + k].samples,
				    now_ms);
		while ((r = db_step(st)) == 1 && got < nv)
			read_vehicle(st, &ret_v[got++]);
		db_reset(st);
		if (r < 0)
			return r;
		done += rows;
	}
	if (got != nv) {
		log_error("telemetry: the latest-state upsert returned %zu rows for %zu vehicles",
			  got, nv);
		return -EIO;
	}
	return 0;
}

/* Folds the vehicles' new samples into their daily rollups. */
static int fold_daily(struct telemetry *t, const struct vehicle_new *vn, size_t nv)
{
	struct day_acc acc[MAX_DAYS_PER_BATCH];
	const struct sample *src[DB_ROWS_MAX];
	struct day_acc rows_acc[DB_ROWS_MAX];
	const char *rows_vin[DB_ROWS_MAX];
	size_t pending = 0;
	int r = 0;

	/* Gathers (vehicle, day) rows and sends them DB_ROWS_MAX at a time. */
	for (size_t v = 0; v <= nv && r == 0; v++) {
		size_t skipped = 0, ndays = 0;

		if (v < nv && vn[v].n) {
			ndays = days_of(vn[v].s, vn[v].n, acc, MAX_DAYS_PER_BATCH, &skipped);
			if (skipped)
				log_debug("telemetry: new samples of %s span over %d days: %zu "
					  "not rolled up",
					  vn[v].vin, MAX_DAYS_PER_BATCH, skipped);
		}
		for (size_t k = 0; k <= ndays && r == 0; k++) {
			if (k < ndays) {
				rows_acc[pending] = acc[k];
				rows_vin[pending] = vn[v].vin;
				src[pending] = vn[v].s;
				pending++;
			}
			/* Flush when full, or everything at the very end. */
			while (pending && (pending == DB_ROWS_MAX || (v == nv && k == ndays))) {
				struct db_stmt *st;
				size_t rows;

				r = db_rows_get(t->db, &t->daily, pending, &st, &rows);
				if (r < 0)
					break;
				for (size_t i = 0; i < rows; i++)
					bind_day(st, (int)i * DAILY_COLS, rows_vin[i], src[i],
						 &rows_acc[i]);
				r = db_run(st);
				if (r < 0)
					break;
				memmove(rows_acc, rows_acc + rows,
					(pending - rows) * sizeof(rows_acc[0]));
				memmove(rows_vin, rows_vin + rows,
					(pending - rows) * sizeof(rows_vin[0]));
				memmove(src, src + rows, (pending - rows) * sizeof(src[0]));
				pending -= rows;
			}
		}
	}
	return r;
}

/* The last plausible odometer reading seen for a vehicle, and when. */
struct odo_ref {
	int known;
	int64_t m, ms;
};

/* Reads the stored odometer of each VIN group (group[g]: its first index in order) into refs[g]. */
static int read_odometers(struct telemetry *t, const struct telemetry_item *items,
			  const size_t *order, const size_t *group, size_t ngroups,
			  struct odo_ref *refs)
{
	for (size_t done = 0; done < ngroups;) {
		struct db_stmt *st;
		size_t rows;
		int r = db_rows_get(t->db, &t->odo, ngroups - done, &st, &rows);

		if (r < 0)
			return r;
		for (size_t k = 0; k < rows; k++)
			db_bind_text(st, 1 + (int)k, items[order[group[done + k]]].vin);
		while ((r = db_step(st)) == 1) {
			const char *vin = db_column_text(st, 0);

			for (size_t k = 0; vin && k < rows; k++)
				if (strcmp(vin, items[order[group[done + k]]].vin) == 0 &&
				    !db_column_is_null(st, 2)) {
					refs[done + k].known = 1;
					refs[done + k].m = db_column_int64(st, 1);
					refs[done + k].ms = db_column_int64(st, 2);
				}
		}
		db_reset(st);
		if (r < 0)
			return r;
		done += rows;
	}
	return 0;
}

/*
 * Judges one sample against the limits and the last plausible odometer.
 * Returns the TELEMETRY_IMPL_* reason, or -1 when plausible (then ref moves
 * on to its odometer reading).
 */
static int judge(const struct telemetry_limits *l, const struct sample *x, int64_t received_ms,
		 struct odo_ref *ref)
{
	if (l->max_ahead_ms && x->time_ms > received_ms + l->max_ahead_ms)
		return TELEMETRY_IMPL_FUTURE;
	if (l->min_time_ms && x->time_ms < l->min_time_ms)
		return TELEMETRY_IMPL_CLOCK;
	if (l->max_speed_cms && (x->present & SAMPLE_SPEED) && x->speed_cms > l->max_speed_cms)
		return TELEMETRY_IMPL_SPEED;
	if (!(x->present & SAMPLE_ODOMETER))
		return -1;
	if (ref->known && x->time_ms >= ref->ms) {
		int64_t dt = x->time_ms - ref->ms;

		if (l->odo_back_m && x->odometer_m < ref->m - l->odo_back_m)
			return TELEMETRY_IMPL_ODO_BACK;
		if (l->odo_max_speed_cms &&
		    x->odometer_m - ref->m > dt * l->odo_max_speed_cms / 100000 + l->odo_slack_m)
			return TELEMETRY_IMPL_ODO_JUMP;
	}
	if (!ref->known || x->time_ms >= ref->ms) {
		ref->known = 1;
		ref->m = x->odometer_m;
		ref->ms = x->time_ms;
	}
	return -1;
}

int telemetry_put_batches(struct telemetry *t, struct telemetry_item *items, size_t n,
			  int64_t received_ms, struct telemetry_vehicle **ret_v, size_t *ret_nv)
{
	struct vehicle_new *vn = NULL;
	struct telemetry_vehicle *v = NULL;
	size_t *order = NULL, *group = NULL, m = 0, nv = 0, ngroups = 0;
	struct odo_ref *refs = NULL;
	uint8_t **bitmaps = NULL; /* per item: implausible samples, NULL: none */
	unsigned *reasons = NULL; /* per item: TELEMETRY_IMPL_* bits */
	int r;

	*ret_v = NULL;
	*ret_nv = 0;
	for (size_t i = 0; i < n; i++) {
		if (items[i].n == 0 || !items[i].samples)
			return -EINVAL;
		items[i].new_batch = 0;
		memset(items[i].implausible, 0, sizeof(items[i].implausible));
	}
	if (n == 0)
		return 0;
	order = malloc(n * sizeof(*order));
	vn = calloc(n, sizeof(*vn));
	if (!order || !vn) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof(*order), item_idx_cmp, items);
	/* The same batch twice in one call is stored (and counted new) once. */
	for (size_t i = 0; i < n; i++)
		if (m == 0 || item_idx_cmp(&order[m - 1], &order[i], items) != 0)
			order[m++] = order[i];
	/* The first index (into order) of each VIN's run. */
	group = malloc(m * sizeof(*group));
	refs = calloc(m, sizeof(*refs));
	bitmaps = calloc(n, sizeof(*bitmaps));
	reasons = calloc(n, sizeof(*reasons));
	if (!group || !refs || !bitmaps || !reasons) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < m; i++)
		if (i == 0 || strcmp(items[order[i - 1]].vin, items[order[i]].vin) != 0)
			group[ngroups++] = i;
	r = read_odometers(t, items, order, group, ngroups, refs);
	if (r < 0)
		goto out;
	/* Judge every sample, batch after batch in (epoch, seq) order per VIN. */
	for (size_t g = 0; g < ngroups; g++) {
		size_t end = g + 1 < ngroups ? group[g + 1] : m;

		for (size_t k = group[g]; k < end; k++) {
			struct telemetry_item *it = &items[order[k]];

			for (size_t i = 0; i < it->n; i++) {
				int why = judge(&t->limits, &it->samples[i], received_ms, &refs[g]);

				if (why < 0)
					continue;
				if (!bitmaps[order[k]]) {
					bitmaps[order[k]] = calloc((it->n + 7) / 8, 1);
					if (!bitmaps[order[k]]) {
						r = -ENOMEM;
						goto out;
					}
				}
				bitmaps[order[k]][i / 8] |= (uint8_t)(1u << (i % 8));
				reasons[order[k]] |= 1u << why;
				it->implausible[why]++;
			}
		}
	}
	r = insert_batches(t, items, order, m, received_ms, bitmaps, reasons);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!items[i].new_batch)
			memset(items[i].implausible, 0, sizeof(items[i].implausible));

	/* Each vehicle's new plausible samples, batch after batch in (epoch, seq) order. */
	for (size_t g = 0; g < ngroups; g++) {
		size_t i = group[g], j = g + 1 < ngroups ? group[g + 1] : m, total = 0, at = 0;
		struct vehicle_new *x = &vn[nv];

		for (size_t k = i; k < j; k++)
			if (items[order[k]].new_batch) {
				total += items[order[k]].n;
				x->batches++;
			}
		if (!x->batches)
			continue;
		x->s = malloc(total * sizeof(*x->s));
		if (!x->s) {
			r = -ENOMEM;
			goto out;
		}
		x->vin = items[order[i]].vin;
		x->samples = (int64_t)total;
		nv++;
		for (size_t k = i; k < j; k++) {
			const struct telemetry_item *it = &items[order[k]];
			const uint8_t *bm = bitmaps[order[k]];

			if (!it->new_batch)
				continue;
			for (size_t q = 0; q < it->n; q++)
				if (!bm || !(bm[q / 8] & (1u << (q % 8))))
					x->s[at++] = it->samples[q];
		}
		x->n = at;
	}
	if (nv == 0)
		goto out;
	v = calloc(nv, sizeof(*v));
	if (!v) {
		r = -ENOMEM;
		goto out;
	}
	r = fold_latest(t, vn, nv, received_ms, v);
	if (r == 0)
		r = fold_daily(t, vn, nv);
	if (r == 0) {
		*ret_v = v;
		*ret_nv = nv;
		v = NULL;
	}
out:
	for (size_t i = 0; vn && i < nv; i++)
		free(vn[i].s);
	for (size_t i = 0; bitmaps && i < n; i++)
		free(bitmaps[i]);
	free(bitmaps);
	free(reasons);
	free(refs);
	free(group);
	free(vn);
	free(v);
	free(order);
	return r;
}

int telemetry_put_batch(struct telemetry *t, const char *vin, uint64_t epoch, uint64_t seq,
			const uint8_t *raw, size_t len, const struct sample *samples, size_t n,
			int64_t received_ms, struct telemetry_vehicle *ret_v)
{
	struct telemetry_item it = { .vin = vin,
				     .epoch = epoch,
				     .seq = seq,
				     .raw = raw,
				     .len = len,
				     .samples = samples,
				     .n = n };
	struct telemetry_vehicle *v = NULL;
	size_t nv = 0;
	int r = telemetry_put_batches(t, &it, 1, received_ms, &v, &nv);

	if (r == 0 && nv == 1 && ret_v)
		*ret_v = v[0];
	free(v);
	return r < 0 ? r : it.new_batch;
}

int telemetry_put_status(struct telemetry *t, const char *vin, const struct agent_status *as,
			 int64_t received_ms, int *ret_implausible)
{
	struct db_stmt *st = t->st[ST_STATUS_UPSERT];

	if (ret_implausible)
		*ret_implausible = 0;
	if (t->limits.max_ahead_ms && as->time_ms > received_ms + t->limits.max_ahead_ms) {
		if (ret_implausible)
			*ret_implausible = 1;
		return 0;
	}

	db_bind_text(st, 1, vin);
	db_bind_int64(st, 2, received_ms);
	db_bind_int64(st, 3, as->state == AGENT_ONLINE ? 1 : 0);
	db_bind_int64(st, 4, as->time_ms);
	db_bind_text(st, 5, as->agent_version);
	db_bind_opt_int64(st, 6, as->has_queue_depth, as->queue_depth);
	db_bind_int64(st, 7, received_ms);
	return db_run(st);
}

int telemetry_vehicle_get(struct telemetry *t, const char *vin, struct telemetry_vehicle *ret_v)
{
	struct db_stmt *st = t->st[ST_VEHICLE_GET];
	int r;

	db_bind_text(st, 1, vin);
	r = db_step(st);
	if (r == 1)
		read_vehicle(st, ret_v);
	db_reset(st);
	return r == 1 ? 0 : r == 0 ? -ENOENT : r;
}

int telemetry_list(struct telemetry *t, const struct telemetry_list_filter *f,
		   struct telemetry_vehicle **ret_rows, size_t *ret_n, int *ret_more)
{
	struct db_stmt *st = t->st[ST_VEHICLE_LIST];
	struct telemetry_vehicle *rows;
	size_t n = 0;
	int r;

	if (f->limit == 0 || f->limit > TELEMETRY_LIST_MAX)
		return -EINVAL;
	if (f->has_max_fuel && (f->max_fuel_permille < 0 || f->max_fuel_permille > 1000))
		return -EINVAL;
	if (f->vins && f->n_vins > TELEMETRY_LIST_VINS_MAX)
		return -EINVAL;
	for (size_t i = 0; f->vins && i < f->n_vins; i++)
		if (!f->vins[i])
			return -EINVAL;
	rows = calloc(f->limit, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	db_bind_text(st, 1, f->after_vin ? f->after_vin : "");
	db_bind_int64(st, 2, f->seen_since_ms ? f->seen_since_ms : INT64_MIN);
	db_bind_int64(st, 3, f->seen_before_ms ? f->seen_before_ms : INT64_MAX);
	db_bind_int64(st, 4, f->has_max_fuel ? 1 : 0);
	db_bind_int64(st, 5, f->has_max_fuel ? f->max_fuel_permille : 0);
	db_bind_int64(st, 6, f->vins ? 1 : 0);
	db_bind_int64(st, 7, (int64_t)f->limit + 1); /* one more tells whether more follow */
	for (size_t i = 0; i < TELEMETRY_LIST_VINS_MAX; i++)
		db_bind_text(st, LIST_VIN_PARAM0 + (int)i,
			     f->vins && i < f->n_vins ? f->vins[i] : NULL);
	*ret_more = 0;
	while ((r = db_step(st)) == 1) {
		if (n == f->limit) {
			*ret_more = 1;
			break;
		}
		read_vehicle(st, &rows[n++]);
	}
	db_reset(st);
	if (r < 0) {
		free(rows);
		return r;
	}
	if (n == 0) {
		free(rows);
		rows = NULL;
	}
	*ret_rows = rows;
	*ret_n = n;
	return 0;
}

/* Oldest first; ties by epoch, then seq. */
static int sample_cmp(const void *a, const void *b)
{
	const struct telemetry_sample *x = a, *y = b;

	if (x->s.time_ms != y->s.time_ms)
		return x->s.time_ms < y->s.time_ms ? -1 : 1;
	if (x->epoch != y->epoch)
		return x->epoch < y->epoch ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Newest first: the order history collection keeps. */
static int sample_cmp_desc(const void *a, const void *b)
{
	return sample_cmp(b, a);
}

int telemetry_history(struct telemetry *t, const char *vin, int64_t from_ms, int64_t to_ms,
		      size_t limit, struct telemetry_sample **ret_rows, size_t *ret_n,
		      int *ret_truncated)
{
	struct db_stmt *st = t->st[ST_HISTORY];
	struct telemetry_vehicle v;
	struct telemetry_sample *rows = NULL;
	size_t n = 0, cap = 0,
	       keep = limit && limit < TELEMETRY_HISTORY_MAX ? limit : TELEMETRY_HISTORY_MAX;
	int r, truncated = 0;

	r = telemetry_vehicle_get(t, vin, &v);
	if (r < 0)
		return r;
	db_bind_text(st, 1, vin);
	db_bind_int64(st, 2, from_ms);
	db_bind_int64(st, 3, to_ms);
	while ((r = db_step(st)) == 1) {
		uint64_t epoch = (uint64_t)db_column_int64(st, 0);
		uint64_t seq = (uint64_t)db_column_int64(st, 1);
		int64_t batch_last = db_column_int64(st, 3);
		uint64_t dseq = 0;
		size_t len = 0, m = 0;
		const void *data = db_column_blob(st, 2, &len);
		const uint8_t *bm;
		size_t bmlen = 0;
		struct sample *s = NULL;

		/*
		 * Batches come newest last-sample first: once `keep` samples
		 * are held, a batch whose newest sample is older than the
		 * keep-th newest held cannot contribute, nor can any after it.
		 */
		if (n >= keep) {
			qsort(rows, n, sizeof(*rows), sample_cmp_desc);
			n = keep;
			if (batch_last < rows[keep - 1].s.time_ms) {
				truncated = !limit;
				break;
			}
		}
		r = codec_decode_batch(data, len, NULL, &dseq, &s, &m);
		if (r < 0) {
			log_error("telemetry: a stored batch of %s (seq %llu) does not decode: %s",
				  vin, (unsigned long long)seq, strerror(-r));
			r = 0;
			continue;
		}
		/* Read after decoding: a driver may reuse its blob buffer per call. */
		bm = db_column_blob(st, 4, &bmlen);
		for (size_t i = 0; i < m; i++) {
			if (s[i].time_ms < from_ms || s[i].time_ms > to_ms)
				continue;
			r = grow_for((void **)&rows, &cap, n, sizeof(*rows), 256,
				     keep + CODEC_MAX_SAMPLES);
			if (r < 0) {
				free(s);
				goto out;
			}
			rows[n].epoch = epoch;
			rows[n].seq = seq;
			rows[n].implausible = bm && i / 8 < bmlen && (bm[i / 8] & (1u << (i % 8)));
			rows[n].s = s[i];
			n++;
		}
		free(s);
	}
	if (r < 0)
		goto out;
	if (n > keep) {
		qsort(rows, n, sizeof(*rows), sample_cmp_desc);
		truncated = truncated || !limit;
		n = keep;
	}
	if (n)
		qsort(rows, n, sizeof(*rows), sample_cmp);
	*ret_rows = n ? rows : NULL;
	if (!n)
		free(rows);
	rows = NULL;
	*ret_n = n;
	*ret_truncated = truncated;
	r = 0;
out:
	db_reset(st);
	free(rows);
	return r;
}

int telemetry_days(struct telemetry *t, const char *vin, int64_t from_day, int64_t to_day,
		   struct telemetry_day **ret_rows, size_t *ret_n, int *ret_truncated)
{
	struct db_stmt *st = t->st[ST_DAYS];
	struct telemetry_vehicle v;
	struct telemetry_day *rows = NULL;
	size_t n = 0, cap = 0;
	int r;

	r = telemetry_vehicle_get(t, vin, &v);
	if (r < 0)
		return r;
	*ret_truncated = 0;
	/* day is a 32-bit column in PostgreSQL: an open range must not overflow it. */
	db_bind_text(st, 1, vin);
	db_bind_int64(st, 2, from_day < INT32_MIN ? INT32_MIN : from_day);
	db_bind_int64(st, 3, to_day > INT32_MAX ? INT32_MAX : to_day);
	db_bind_int64(st, 4, TELEMETRY_DAYS_MAX + 1);
	while ((r = db_step(st)) == 1) {
		struct telemetry_day *d;

		if (n == TELEMETRY_DAYS_MAX) {
			*ret_truncated = 1;
			break;
		}
		r = grow_for((void **)&rows, &cap, n, sizeof(*rows), 32, TELEMETRY_DAYS_MAX);
		if (r < 0)
			break;
		d = &rows[n++];
		memset(d, 0, sizeof(*d));
		d->day = db_column_int64(st, 0);
		d->samples = db_column_int64(st, 1);
		d->has_odometer = !db_column_is_null(st, 2) && !db_column_is_null(st, 3);
		d->first_odometer_m = db_column_int64(st, 2);
		d->last_odometer_m = db_column_int64(st, 3);
		d->distance_m = d->has_odometer && d->last_odometer_m > d->first_odometer_m
					? d->last_odometer_m - d->first_odometer_m
					: 0;
		d->driving_ms = db_column_int64(st, 4);
		d->has_fuel = !db_column_is_null(st, 5) && !db_column_is_null(st, 6);
		d->first_fuel_permille = (int32_t)db_column_int64(st, 5);
		d->last_fuel_permille = (int32_t)db_column_int64(st, 6);
		d->fuel_refuelled_permille = db_column_int64(st, 7);
		d->fuel_used_permille =
			d->first_fuel_permille - d->last_fuel_permille + d->fuel_refuelled_permille;
		if (!d->has_fuel || d->fuel_used_permille < 0)
			d->fuel_used_permille = 0;
	}
	db_reset(st);
	if (r < 0) {
		free(rows);
		return r;
	}
	*ret_rows = n ? rows : NULL;
	if (!n)
		free(rows);
	*ret_n = n;
	return 0;
}
