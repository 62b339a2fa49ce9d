/*
 * Service prediction (issue 10), pure: no database, no clock, no I/O. The
 * service domain (service.c) gathers a vehicle's inputs from the telemetry
 * and service tables and calls these; the accuracy benchmark
 * (bench/service_accuracy) calls the very same functions on simulated
 * fleets. docs/service-prediction.md explains the model.
 *
 * Days are day numbers (days since 1970-01-01 UTC, telemetry_day_of()).
 * Distances are metres (int64_t), like the telemetry domain's.
 */
#ifndef PITSTOP_PREDICT_H
#define PITSTOP_PREDICT_H

#include <stddef.h>
#include <stdint.h>

/* One item of a maintenance plan: due every_km or every_months, whichever first. */
struct plan_item {
	char name[48];	  /* "oil_service", "inspection", "brake_fluid", ... */
	int64_t every_m;  /* 0: no distance criterion */
	int every_months; /* 0: no time criterion */
	int first_months; /* > 0: the first one is due this long after first use */
	int64_t first_m;  /* > 0: the first one is due at this odometer */
};

/* An odometer reading: from the car (daily rollups), a service visit or an import. */
enum reading_source {
	READING_CAR,	 /* telemetry: the last odometer of a day */
	READING_SERVICE, /* a recorded service visit */
	READING_IMPORT,	 /* imported from another system */
};

struct odo_reading {
	int64_t day;
	int64_t odometer_m; /* the day's last odometer (a car's rollup) */
	enum reading_source source;
	/* READING_CAR only, from the same rollup: the day's first odometer.
	 * With it a day without readings that the odometer did not move
	 * across is known to be parked (0 m), and what moved between two
	 * rollups is driving the agent did not report. 0: unknown. */
	int has_first;
	int64_t first_odometer_m;
};

/* Bounds on the work of one prediction (docs/service-prediction.md). */
#define PREDICT_HISTORY_DAYS 550  /* car readings used: as_of-549 .. as_of */
#define PREDICT_SERVICE_DAYS 1100 /* service/import readings: ~3 years */
#define PREDICT_HORIZON_DAYS 3660 /* no due within 10 years: due at the horizon */
#define PREDICT_SEASON_BLOCKS 12  /* 30-day blocks ahead with a seasonal factor */
#define PREDICT_CORRECTIONS 4	  /* odometer jumps (rollbacks) remembered */

/* When the item was last done: day and odometer (has_odometer 0: unknown). */
struct last_service {
	int done; /* 0: never (then the first_* criteria or first use count) */
	int64_t day;
	int has_odometer;
	int64_t odometer_m;
};

/* What the usage estimate was built from (said in every prediction). */
enum usage_basis {
	BASIS_TELEMETRY,       /* the car's own daily readings */
	BASIS_SERVICE_HISTORY, /* odometer readings of service visits / imports */
	BASIS_FLEET_AVERAGE,   /* the segment's average: too little of the car's own */
};

/* A vehicle's usage: expected metres per day, with a spread, and how it was made. */
struct usage {
	double m_per_day;		   /* the central estimate, >= 0 */
	double m_per_day_lo, m_per_day_hi; /* an 80 % band (docs say how it is calibrated) */
	double weekday_factor[7];	   /* Mon..Sun multipliers, mean 1 */
	/* Multiplier of m_per_day for 30-day block k after last_day (k mod
	 * PREDICT_SEASON_BLOCKS), from the same period last year; 1 without. */
	double season_factor[PREDICT_SEASON_BLOCKS];
	/* Share of m_per_day expected on the days from last_day to as_of_day
	 * when the car has been silent (no reading) for a week or more: what
	 * its past silences turned out to be (0 parked, 1 driving unreported). */
	double silent_factor;
	int64_t as_of_day; /* the day the estimate was made for */
	enum usage_basis basis;
	int has_odometer;	 /* 0: no reading at all (then last_odometer_m 0) */
	int64_t last_day;	 /* the newest reading used (first use without) */
	int64_t last_odometer_m; /* its odometer */
	/* Persistent odometer jumps (a rollback: shift_m < 0) seen in the
	 * history, so a distance since an older service counts what was
	 * driven, not the difference of two scales. Oldest first. */
	struct {
		int64_t day;	 /* the first reading on the new scale */
		int64_t shift_m; /* new scale - old scale */
	} corrections[PREDICT_CORRECTIONS];
	int ncorrections;
	int readings_used; /* car readings taken into account */
};

/* The usage basis as a word: "telemetry", "service_history", "fleet_average". */
const char *predict_basis_name(enum usage_basis b);

/* day + months, by the calendar (the 31st plus one month is the last day). */
int64_t predict_add_months(int64_t day, int months);

/* Expected metres driven on days (from, to] under u (0 when to <= from). */
double predict_distance(const struct usage *u, double m_per_day, int64_t from, int64_t to);

/* Inputs for one vehicle, known as of as_of_day (nothing later may be used). */
struct predict_input {
	int64_t as_of_day;
	const struct odo_reading *readings; /* oldest first, any sources mixed */
	size_t nreadings;
	int64_t first_use_day;	/* the car's first registration / first reading */
	double fleet_m_per_day; /* the segment's average, the last fallback */
};

/*
 * Estimates the vehicle's usage from readings up to in->as_of_day: robust
 * to gaps, odometer noise and rollbacks, weekday rhythm, seasons and
 * changes of use; falls back to service-history readings, then to the
 * fleet average. Returns 0, or -EINVAL for a NULL argument.
 */
int predict_usage(const struct predict_input *in, struct usage *ret);

enum due_reason {
	DUE_DISTANCE,
	DUE_TIME,
};

/* "distance" or "time". */
const char *predict_reason_name(enum due_reason r);

/* The prediction for one item. */
struct item_prediction {
	char item[48];
	int64_t due_day; /* the predicted day it becomes due (may be <= as_of: overdue) */
	int64_t due_day_lo, due_day_hi; /* the band */
	int has_due_odometer;
	int64_t due_odometer_m;	      /* the odometer at which it is due (distance items) */
	int64_t predicted_odometer_m; /* the expected odometer on due_day */
	enum due_reason reason;	      /* which criterion comes first */
	enum usage_basis basis;
	/* COVESA VSS Vehicle.Service.*: */
	int64_t distance_to_service_m; /* negative when overdue */
	int64_t time_to_service_s;     /* negative when overdue */
	int is_service_due;	       /* due or overdue as of as_of_day */
};

/*
 * Predicts item for a vehicle with usage u and its last service ls, as of
 * as_of_day. Returns 0, or -EINVAL for an item with no criterion.
 */
int predict_item(const struct plan_item *item, const struct last_service *ls, const struct usage *u,
		 int64_t first_use_day, int64_t as_of_day, struct item_prediction *ret);

#endif
