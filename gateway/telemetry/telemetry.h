/*
 * The telemetry domain: what the cars report, stored compactly. It owns the
 * tables telemetry_batches, vehicle_state and telemetry_daily
 * (gateway/telemetry/schema/); no other module reads or writes them.
 *
 * A batch is stored as the unit: the car's validated, encoded batch as it
 * arrived (one row: vehicle, epoch, seq, first and last sample time, sample
 * count, the columnar bytes), identified by (VIN, epoch, seq). Alongside, in
 * the same transaction and only for a batch not seen before:
 *   - the vehicle's latest state: each field is the value of the newest
 *     sample (by sample time) that carried it, so a batch redelivered late
 *     never overwrites newer values;
 *   - the daily rollup (per vehicle and UTC day): samples, first and last
 *     odometer (with their times), time spent moving, first and last fuel
 *     level and what was refuelled.
 * Every write is one atomic statement (an INSERT ... ON CONFLICT upsert), so
 * several gateway instances on one PostgreSQL stay right when one car's
 * batches reach different instances: nothing is read and then written back.
 * History queries decode the stored batches.
 *
 * Units are the protocol's (metres, 0.1 %, 1e-7 degrees, cm/s, 0.01 degrees,
 * unix milliseconds). Functions return 0 (or a count) or a negative error
 * class from db.h; db logged the failure.
 */
#ifndef PITSTOP_TELEMETRY_H
#define PITSTOP_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "db.h"
#include "vin.h"

/* Bounds on what one history or rollup query may return. */
#define TELEMETRY_HISTORY_MAX 1000000 /* samples */
#define TELEMETRY_DAYS_MAX 3660	      /* rollup rows: ten years */
#define TELEMETRY_LIST_MAX 10000      /* vehicles in one page of telemetry_list() */

/*
 * Why a sample is implausible, defined once: X(ENUM, name, what). Such
 * samples are stored (the batch is kept whole and acknowledged, so a car
 * with a wrong clock loses nothing and stops resending) but set apart:
 * never folded into the latest state, the daily rollups or the rules.
 */
#define TELEMETRY_IMPLAUSIBLE(X)                                                         \
	X(FUTURE, future, "dated more than max_ahead_ms after it was received")          \
	X(CLOCK, clock_unset, "dated before 2015: the car's clock was never set")        \
	X(SPEED, speed, "faster than 300 km/h")                                          \
	X(ODO_BACK, odometer_backwards, "odometer more than 100 m below an earlier one") \
	X(ODO_JUMP, odometer_jump, "odometer further than 300 km/h allows since an earlier one")

enum telemetry_implausible {
#define X(e, name, what) TELEMETRY_IMPL_##e,
	TELEMETRY_IMPLAUSIBLE(X)
#undef X
		TELEMETRY_IMPL_COUNT,
};

/* "future", ...; NULL when out of range. */
const char *telemetry_implausible_name(enum telemetry_implausible r);

/*
 * The plausibility limits; a zero field turns its check off. telemetry_new()
 * starts with every check off; the gateway sets telemetry_limits_default().
 */
struct telemetry_limits {
	int64_t max_ahead_ms;	   /* sample or status dated this far after receipt */
	int64_t min_time_ms;	   /* dated before this: the clock was never set */
	int32_t max_speed_cms;	   /* faster than this */
	int64_t odo_back_m;	   /* odometer this far below an earlier one */
	int32_t odo_max_speed_cms; /* odometer growing faster than this ... */
	int64_t odo_slack_m;	   /* ... plus this much */
};

/* 5 min ahead, 2015-01-01, 300 km/h, 100 m back, 300 km/h + 1 km. */
struct telemetry_limits telemetry_limits_default(void);

/* Agent status as last reported. */
enum telemetry_online {
	TELEMETRY_ONLINE_UNKNOWN = -1,
	TELEMETRY_OFFLINE = 0,
	TELEMETRY_ONLINE = 1,
};

/*
 * The latest state of a vehicle. A field is meaningful only when its
 * SAMPLE_* bit is set in present.
 */
struct telemetry_vehicle {
	char vin[VIN_LEN + 1];
	int has_sample;	   /* 0: status only, no telemetry yet */
	int64_t time_ms;   /* time of the newest sample */
	enum fix_mode fix; /* fix of the newest sample */
	unsigned present;  /* SAMPLE_* bits; SAMPLE_ODOMETER_EST: odometer_m is an estimate */
	int64_t odometer_m;
	int32_t fuel_permille;
	int64_t fuel_ms; /* time of the sample that gave fuel_permille */
	int32_t lat_e7, lon_e7;
	int32_t speed_cms;
	int32_t heading_cdeg;
	enum telemetry_online online;
	int64_t status_time_ms; /* time of the status that set online; 0 none */
	int64_t seen_ms;	/* newest of time_ms (with a sample) and status_time_ms */
	char agent_version[CODEC_MAX_VERSION];
	int64_t batches, samples; /* stored for this vehicle */
};

/* One stored sample with the identity of the batch that carried it. */
struct telemetry_sample {
	uint64_t epoch;
	uint64_t seq;
	int implausible; /* set apart at ingest (see TELEMETRY_IMPLAUSIBLE) */
	struct sample s;
};

/* One daily rollup row (UTC day). Optional values have has_* flags. */
struct telemetry_day {
	int64_t day; /* days since 1970-01-01 UTC */
	int64_t samples;
	int has_odometer;			   /* first/last odometer known */
	int64_t first_odometer_m, last_odometer_m; /* at the day's first/last sample */
	int64_t distance_m;			   /* last - first, never negative */
	int64_t driving_ms;
	int has_fuel;
	int32_t first_fuel_permille, last_fuel_permille;
	int64_t fuel_used_permille; /* first - last + refuelled, never negative */
	int64_t fuel_refuelled_permille;
};

struct telemetry;

/*
 * Prepares the domain's statements on db (borrowed; migrated with
 * telemetry_migrations first). Returns 0 and *ret_t, or -errno.
 */
int telemetry_new(struct db *db, struct telemetry **ret_t);

/* Frees the statements. Accepts NULL. */
void telemetry_free(struct telemetry *t);

/* Sets the plausibility limits (copied). */
void telemetry_set_limits(struct telemetry *t, const struct telemetry_limits *l);

/* The domain's migrations, for db_migrate() (generated from schema/). */
extern const struct db_migration telemetry_migrations[];
extern const size_t telemetry_migrations_count;

/*
 * Stores batch (vin, epoch, seq): raw is the encoded batch as received
 * (len bytes, already decoded without error into the n samples given).
 * Inside the caller's transaction. If the batch was not stored before, it
 * is stored, folded into the latest state and the daily rollups, and 1 is
 * returned with the vehicle's resulting latest state in *ret_v (when
 * ret_v is not NULL); a batch already stored changes nothing and returns 0.
 */
int telemetry_put_batch(struct telemetry *t, const char *vin, uint64_t epoch, uint64_t seq,
			const uint8_t *raw, size_t len, const struct sample *samples, size_t n,
			int64_t received_ms, struct telemetry_vehicle *ret_v);

/* One batch for telemetry_put_batches(): in, then out (new_batch). */
struct telemetry_item {
	const char *vin; /* borrowed */
	uint64_t epoch, seq;
	const uint8_t *raw; /* borrowed: the encoded batch as received */
	size_t len;
	const struct sample *samples; /* borrowed: raw decoded, n >= 1 */
	size_t n;
	int new_batch; /* out: 1 when stored by this call, 0 when stored before */
	/* out, for a new batch: its samples set apart, by reason */
	uint32_t implausible[TELEMETRY_IMPL_COUNT];
};

/*
 * telemetry_put_batch() for n batches at once, in a handful of multi-row
 * statements instead of three per batch: the batches, then each vehicle's
 * new samples (its new batches in (epoch, seq) order, as one run of
 * samples) folded into its latest state and daily rollups. The same batch
 * twice in items is stored once (the second is not new). *ret_v is a
 * malloc'ed array of the latest state of each vehicle that got a new batch
 * (*ret_nv of them; NULL when none). Inside the caller's transaction; on an
 * error the caller rolls back (some statements may have run).
 */
int telemetry_put_batches(struct telemetry *t, struct telemetry_item *items, size_t n,
			  int64_t received_ms, struct telemetry_vehicle **ret_v, size_t *ret_nv);

/*
 * Records an agent status for vin (creating the vehicle if needed). A
 * status older than the stored one (by its time_ms) changes nothing: a
 * retained or redelivered status may arrive late. A status dated more than
 * max_ahead after received_ms changes nothing either and returns 0 with
 * *ret_implausible 1 (a clock far ahead would keep the car "online" for
 * ever; only with limits set); ret_implausible may be NULL.
 */
int telemetry_put_status(struct telemetry *t, const char *vin, const struct agent_status *st,
			 int64_t received_ms, int *ret_implausible);

/* Latest state and status of vin; -ENOENT if the vehicle is unknown. */
int telemetry_vehicle_get(struct telemetry *t, const char *vin, struct telemetry_vehicle *ret_v);

/*
 * What telemetry_list() returns: the vehicles matching every bound that is
 * set, in VIN order, one page at a time. A zeroed struct (with a limit) is
 * every vehicle. Shared by pitstopctl vehicle list and the HTTP API, so both
 * mean the same by "seen" and "low fuel".
 *
 * "Seen" is the newest of the vehicle's newest plausible sample time and its
 * last status time (struct telemetry_vehicle.seen_ms): the car's own clock,
 * which ingest keeps from running more than max_ahead_ms ahead. A vehicle
 * with neither counts as seen at 0 (never).
 */
#define TELEMETRY_LIST_VINS_MAX 64 /* n_vins bound: one statement, fixed placeholders */

struct telemetry_list_filter {
	const char
		*after_vin; /* borrowed; keyset page: VINs after this; NULL or "" from the first */
	size_t limit;	    /* 1..TELEMETRY_LIST_MAX vehicles in this page */
	int64_t seen_since_ms;	   /* seen at or after this; 0: no bound */
	int64_t seen_before_ms;	   /* seen strictly before this (or never); 0: no bound */
	int has_max_fuel;	   /* 1: only fuel level known and <= max_fuel_permille */
	int32_t max_fuel_permille; /* 0..1000 (0.1 %) */
	/*
	 * The VIN set, borrowed: NULL for all vehicles; otherwise only these
	 * n_vins (0..TELEMETRY_LIST_VINS_MAX) VINs, so an empty set lists
	 * nothing (a fleet with no cars sees no cars, never all of them).
	 * Unknown VINs are simply not listed; duplicates are harmless.
	 */
	const char *const *vins;
	size_t n_vins;
};

/*
 * The vehicles matching f, in VIN order, at most f->limit of them.
 * *ret_rows is malloc'ed (NULL when *ret_n is 0); *ret_more is 1 when more
 * matching vehicles follow (ask again with after_vin = the last VIN
 * returned). -EINVAL for a limit out of range, more than
 * TELEMETRY_LIST_VINS_MAX VINs, a NULL entry in vins or a fuel bound out of
 * 0..1000.
 */
int telemetry_list(struct telemetry *t, const struct telemetry_list_filter *f,
		   struct telemetry_vehicle **ret_rows, size_t *ret_n, int *ret_more);

/*
 * The samples of vin with from_ms <= time <= to_ms, oldest first (ties by
 * epoch, seq). With limit > 0 only the newest `limit` of them. At most
 * TELEMETRY_HISTORY_MAX are returned: *ret_truncated is 1 when the range
 * held more (the newest are kept). *ret_rows is malloc'ed (NULL when *ret_n
 * is 0). -ENOENT if the vehicle is unknown.
 */
int telemetry_history(struct telemetry *t, const char *vin, int64_t from_ms, int64_t to_ms,
		      size_t limit, struct telemetry_sample **ret_rows, size_t *ret_n,
		      int *ret_truncated);

/*
 * The daily rollups of vin for from_day <= day <= to_day, oldest first, at
 * most TELEMETRY_DAYS_MAX (*ret_truncated 1 when there were more; the oldest
 * are kept). -ENOENT if the vehicle is unknown.
 */
int telemetry_days(struct telemetry *t, const char *vin, int64_t from_day, int64_t to_day,
		   struct telemetry_day **ret_rows, size_t *ret_n, int *ret_truncated);

/* The UTC day of a unix-ms time (floor division: before 1970 is negative). */
int64_t telemetry_day_of(int64_t time_ms);

#endif
