/*
 * Service reminders (issue 10 item 6), part of the service domain: it owns
 * the tables service_reminders and tasks (gateway/service/schema/). A run
 * predicts every known vehicle's items as of today (service_predict()) and,
 * for an item that reached a stage, sends the car a signed service offer
 * ("book your service at <dealer>", a voucher code) through the rules'
 * offer sink and opens a task for the CRM team to call the customer.
 *
 * Stages, by the prediction as of today: first (due within first_days or
 * within first_km), second (due within second_days), overdue (due today or
 * earlier, or past its distance). Only the highest stage reached acts, and
 * only when no row for it or a higher stage of the same service cycle (the
 * item's last service day) exists: one action per vehicle, item, cycle and
 * stage. The row is claimed first, atomically (INSERT ... ON CONFLICT DO
 * NOTHING RETURNING), so a second run, or another instance, creates
 * nothing. The run is a jobs_fn (jobs.h: once across instances).
 * docs/service-prediction.md ("Reminders") explains the choices.
 */
#ifndef PITSTOP_REMINDERS_H
#define PITSTOP_REMINDERS_H

#include <stdint.h>

#include "db.h"
#include "offer_log.h"
#include "rules.h"
#include "service.h"
#include "telemetry.h"

/* The scheduled job, and how often it runs (PITSTOP_REMINDERS_PERIOD_MS: tests). */
#define REMINDERS_JOB "service_reminders"
#define REMINDERS_PERIOD_MS 3600000
/* How long a reminder offer is valid. */
#define REMINDERS_OFFER_VALID_DAYS 7
/* Tasks one listing returns at most. */
#define REMINDERS_TASKS_MAX 10000

enum reminder_stage {
	REMINDER_NONE,
	REMINDER_FIRST,
	REMINDER_SECOND,
	REMINDER_OVERDUE,
};

/* "first", "second", "overdue" ("none" for REMINDER_NONE). */
const char *reminders_stage_name(enum reminder_stage s);

struct reminders_config {
	int first_days;		/* > 0: the first reminder this many days before */
	int first_km;		/* >= 0: ... or this many km before (0: days only) */
	int second_days;	/* >= 0, < first_days: the second reminder */
	int offers_per_day_max; /* the rules' cap (rules.h); 0: none */
	char dealer_name[96];	/* "Book your service at <dealer_name>" */
};

struct reminders;

/*
 * Creates the reminders on db, t and log (borrowed; db migrated with the
 * gateway schema); offers go to sink with arg (the rules' sink,
 * ingest_offer_sink). Returns 0 and *ret, -EINVAL (bad config), -ENOMEM or
 * an error class.
 */
int reminders_new(const struct reminders_config *conf, struct db *db, struct telemetry *t,
		  struct offer_log *log, rules_offer_fn sink, void *arg, struct reminders **ret);

/* Accepts NULL. */
void reminders_free(struct reminders *r);

/* The stage item prediction p reached under conf. */
enum reminder_stage reminders_stage_of(const struct reminders_config *conf,
				       const struct item_prediction *p, int64_t today);

/*
 * One run as of now_ms with plans (borrowed; NULL: nothing to do), inside
 * the caller's transaction. Returns the number of reminders sent, or an
 * error class (the caller rolls back). A vehicle over the offers cap, or
 * a sink that is full, is left for the next run.
 */
int reminders_run(struct reminders *r, const struct service_plans *plans, int64_t now_ms);

/* reminders_run() with service_plans_current() as a jobs_fn; arg is the reminders. */
int reminders_job(struct db *db, int64_t now_ms, void *arg);

/*
 * The open tasks of vehicles may_see(vin, arg) accepts (NULL: all), oldest
 * first, as a JSON array of {id, vin, kind, item, stage, due_date,
 * created_ms, state} (at most REMINDERS_TASKS_MAX; *ret_truncated 1 when
 * there were more). NULL on an error (*ret_err set).
 */
struct json_t *reminders_tasks_json(struct db *db, int (*may_see)(const char *vin, void *arg),
				    void *arg, int *ret_truncated, int *ret_err);

#endif
