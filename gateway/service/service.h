/*
 * The service domain (issue 10): maintenance plans (a JSON file), service
 * history, per-vehicle overrides, odometer readings imported from other
 * systems, and the prediction of what is due (the pure model is
 * predict.h). It owns the tables service_imports, service_records,
 * service_overrides and service_odometer_readings (gateway/service/schema/);
 * it reads the telemetry domain's daily rollups through telemetry.h.
 *
 * Imported rows carry their import's id and are read only once the import
 * is committed (service_import_commit()), so a file is visible whole or not
 * at all. Every write is audited (accounts_audit) in its own transaction.
 * docs/service-prediction.md explains the formats and the choices.
 *
 * Functions return 0 (or a count) or a negative error class (db.h);
 * -EINVAL for bad input, with the reason in err where one is taken.
 */
#ifndef PITSTOP_SERVICE_H
#define PITSTOP_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "db.h"
#include "predict.h"
#include "telemetry.h"

#define SERVICE_ITEMS_MAX 16		/* items in a plan or in one service record */
#define SERVICE_PLANS_MAX 256		/* plans in a plans file */
#define SERVICE_TEXT_MAX 1000		/* workshop, advisories */
#define SERVICE_IMPORT_CHUNK 10000	/* rows per import request */
#define SERVICE_IMPORT_ROWS_MAX 5000000 /* rows per import */
#define SERVICE_HISTORY_MAX 1000	/* service records read per vehicle */
#define SERVICE_READINGS_MAX 20000	/* readings used per prediction */
#define SERVICE_DUE_VEHICLES_MAX 10000	/* vehicles in one due list */

extern const struct db_migration service_migrations[];
extern const size_t service_migrations_count;

/* ---- plans ------------------------------------------------------------- */

struct service_plan {
	char make[32];	/* "default" for the rest */
	char model[32]; /* "" for the make's plan */
	char vds[8];	/* model: VIN characters 4.. start with this */
	struct plan_item items[SERVICE_ITEMS_MAX];
	size_t nitems;
};

struct service_plans {
	struct service_plan *plans; /* owned */
	size_t nplans;
	char (*wmi)[2][32]; /* owned: {WMI, make} pairs */
	size_t nwmi;
	double fleet_m_per_day;
	char path[256];
};

/*
 * Loads the plans file at path into *ret (free with service_plans_free()).
 * A file that is not JSON fails with "path:line:column: what" in err, a
 * wrong value with "path: plans[2].items[0].every_km: what"; there must be
 * one plan whose make is "default". Returns 0, -ENOENT or -EINVAL.
 */
int service_plans_load(const char *path, struct service_plans *ret, char *err, size_t errlen);
void service_plans_free(struct service_plans *p);

/*
 * The gateway's plans: loaded once at start from service_plans_file by
 * service_plans_use() (a failure stops the start), read by the API's
 * handlers through service_plans_current() (NULL before). One thread: the
 * loop's.
 */
int service_plans_use(const char *path, char *err, size_t errlen);
const struct service_plans *service_plans_current(void);

/* The make of vin by its WMI ("" when the file does not list it). */
const char *service_make_of(const struct service_plans *p, const char *vin);

/* The plan for vin: its make and model's, else its make's, else the default. */
const struct service_plan *service_plan_for(const struct service_plans *p, const char *vin);

/* ---- writes (each audited, one transaction) ---------------------------- */

struct service_record {
	int64_t id;
	char vin[VIN_LEN + 1];
	int64_t day;
	int has_odometer;
	int64_t odometer_m;
	char items[SERVICE_ITEMS_MAX][48];
	size_t nitems;
	int has_cost;
	int64_t cost_cents;
	char workshop[SERVICE_TEXT_MAX + 1];
	char advisories[SERVICE_TEXT_MAX + 1];
	int64_t recorded_ms;
	char source[8]; /* "api" or "import" */
};

/*
 * Parses "oil_service;brake_fluid" into rec->items (each [a-z0-9_]{1,47},
 * 1..SERVICE_ITEMS_MAX). Returns 0 or -EINVAL with the reason in err.
 */
int service_items_parse(const char *s, struct service_record *rec, char *err, size_t errlen);

/* Records a completed service (audited "service.record"). *ret_id may be NULL. */
int service_record_add(struct db *db, struct accounts *acc, const struct accounts_principal *actor,
		       const struct service_record *rec, int64_t now_ms, int64_t *ret_id);

/* A vehicle's services up to as_of_day (INT64_MAX: all), newest first, at most
 * SERVICE_HISTORY_MAX; *ret_rows malloc'ed. */
int service_record_list(struct db *db, const char *vin, int64_t as_of_day,
			struct service_record **ret_rows, size_t *ret_n);

/*
 * Sets vin's intervals for item (every_m / every_months, 0: none, not both
 * 0), audited "service.override". Returns 0 or -EINVAL.
 */
int service_override_set(struct db *db, struct accounts *acc,
			 const struct accounts_principal *actor, const char *vin, const char *item,
			 int64_t every_m, int every_months, int64_t now_ms);

/* ---- imports ----------------------------------------------------------- */

enum service_import_kind {
	SERVICE_IMPORT_SERVICES, /* vin,date,odometer_km,items */
	SERVICE_IMPORT_ODOMETER, /* vin,time,odometer_km */
};

/* One row of an import file. */
struct service_import_row {
	char vin[VIN_LEN + 1];
	int64_t time_ms; /* odometer: the reading's time; services: the day's midnight */
	int64_t odometer_m;
	int has_odometer;
	struct service_record rec; /* services: the items */
};

/*
 * Parses and checks one CSV file of kind (libcsv; a header line first).
 * Every bad line is reported through on_error as "file:line: what"
 * (at most max_errors of them, then a count); with no error, *ret_rows
 * (malloc'ed) holds every row. progress (may be NULL) is called every
 * 100,000 rows. Returns the number of rows, -EINVAL when any line was bad
 * (nothing returned), -ENOENT/-EIO for the file, -E2BIG past
 * SERVICE_IMPORT_ROWS_MAX.
 */
int service_csv_read(const char *path, enum service_import_kind kind,
		     void (*on_error)(const char *msg, void *arg),
		     void (*progress)(size_t rows, void *arg), void *arg,
		     struct service_import_row **ret_rows);

/*
 * Parses one row of kind from its n text fields (as in the file): vin,
 * date (services; YYYY-MM-DD) or time (odometer; ISO 8601 date or
 * date-time), odometer_km (may be empty for services), items. Dates after
 * now_ms's next day are refused. Returns 0 or -EINVAL with the reason in err.
 */
int service_row_parse(enum service_import_kind kind, const char *const *f, size_t n, int64_t now_ms,
		      struct service_import_row *row, char *err, size_t errlen);

/* Opens an import of expected rows from file (audited "service.import_begin"). */
int service_import_begin(struct db *db, struct accounts *acc,
			 const struct accounts_principal *actor, enum service_import_kind kind,
			 const char *file, int64_t expected, int64_t now_ms, int64_t *ret_id);

/*
 * Adds rows[0..n) (n <= SERVICE_IMPORT_CHUNK) to open import id, one
 * transaction. -ENOENT (no open import), -EINVAL (more rows than expected).
 */
int service_import_add(struct db *db, int64_t id, const struct service_import_row *rows, size_t n,
		       int64_t now_ms);

/*
 * Makes import id visible (audited "service.import"): -EINVAL unless every
 * expected row arrived. Returns the row count.
 */
int service_import_commit(struct db *db, struct accounts *acc,
			  const struct accounts_principal *actor, int64_t id, int64_t now_ms);

/* The kind of open import id. Returns 0, -ENOENT. */
int service_import_kind_of(struct db *db, int64_t id, enum service_import_kind *ret);

/* ---- prediction -------------------------------------------------------- */

struct service_prediction {
	char vin[VIN_LEN + 1];
	const struct service_plan *plan; /* borrowed from the plans */
	struct usage usage;
	struct item_prediction items[SERVICE_ITEMS_MAX];
	struct last_service last[SERVICE_ITEMS_MAX];
	int overridden[SERVICE_ITEMS_MAX];
	struct plan_item plan_items[SERVICE_ITEMS_MAX]; /* the plan with the overrides */
	size_t nitems;
	size_t nreadings; /* readings the usage was built from */
};

/*
 * Predicts vin's items as known on as_of_day: only readings (telemetry
 * rollups, imports, service visits) and services dated up to as_of_day are
 * used. t may be NULL (no telemetry). Returns 0, -ENOENT (nothing known
 * about vin) or an error class.
 */
int service_predict(struct db *db, struct telemetry *t, const struct service_plans *plans,
		    const char *vin, int64_t as_of_day, struct service_prediction *ret);

/* The JSON of a prediction's items (an array), and of its soonest item (or null). */
struct json_t;
struct json_t *service_prediction_json(const struct service_prediction *p);
struct json_t *service_next_json(const struct service_prediction *p);

/*
 * The VINs the service domain and telemetry know, in VIN order (at most
 * SERVICE_DUE_VEHICLES_MAX; *ret_truncated 1 when there were more), one
 * malloc'ed array of VIN_LEN + 1 strings 18 bytes apart.
 */
int service_vins(struct db *db, struct telemetry *t, char **ret_vins, size_t *ret_n,
		 int *ret_truncated);

/*
 * What is due as of as_of_day or within `within` days after it, for every
 * vehicle of service_vins() that may_see(vin, arg) accepts (NULL: all):
 * {"as_of", "within_days", "items": [{vin, item, due_date, due_odometer_km,
 * reason, is_service_due}], "truncated"}. NULL on an error (*ret_err set).
 */
struct json_t *service_due_json(struct db *db, struct telemetry *t,
				const struct service_plans *plans, int64_t as_of_day, long within,
				int (*may_see)(const char *vin, void *arg), void *arg,
				int *ret_err);

/* A day number as "YYYY-MM-DD"; parses one (-EINVAL). */
void service_day_name(int64_t day, char *buf, size_t size);
int service_day_parse(const char *s, int64_t *ret_day);

#endif
