/*
 * Unit tests of the service reminders (gateway/service/reminders.c) on
 * whichever backend db_test_util.h selects: the stage an item prediction
 * reached (days, km, overdue), a vehicle driven through first, second and
 * overdue with one offer and one task per item and stage, a second run on
 * the same day creating nothing, a new service cycle reminding again, and
 * the offers-per-day cap leaving a reminder for a later run.
 */
#include "db_test_util.h"

#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accounts.h"
#include "db.h"
#include "offer_log.h"
#include "reminders.h"
#include "schema.h"
#include "service.h"
#include "telemetry.h"

static const char VIN[] = "XTA21099012345678"; /* the default plan */
static const char PLANS[] = PITSTOP_SOURCE_DIR "/gateway/service/plans.json";
#define D0 19723  /* 2024-01-01: the last service */
#define DUE 20454 /* 2026-01-01: 24 months later, when the time items are due */
#define MS(day) ((int64_t)(day)*86400000 + 43200000)
#define SENT_MAX 32

struct fixture {
	struct db *db;
	struct accounts *acc;
	struct telemetry *t;
	struct offer_log *log;
	struct service_plans plans;
	struct reminders *rem;
	struct offer sent[SENT_MAX];
	int nsent;
};

static int record_sink(void *arg, const struct offer *o)
{
	struct fixture *f = arg;

	assert_true(f->nsent < SENT_MAX);
	f->sent[f->nsent++] = *o;
	return 0;
}

static void make_reminders(struct fixture *f, int per_day)
{
	struct reminders_config c = {
		.first_days = 30, .first_km = 1000, .second_days = 7, .offers_per_day_max = per_day
	};

	snprintf(c.dealer_name, sizeof(c.dealer_name), "Autohaus Test");
	reminders_free(f->rem);
	f->rem = NULL;
	assert_int_equal(reminders_new(&c, f->db, f->t, f->log, record_sink, f, &f->rem), 0);
}

static void record(struct fixture *f, int64_t day, const char *items)
{
	struct service_record rec;
	char err[200];

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.vin, sizeof(rec.vin), "%s", VIN);
	rec.day = day;
	rec.has_odometer = 1;
	rec.odometer_m = 50000000;
	assert_int_equal(service_items_parse(items, &rec, err, sizeof(err)), 0);
	assert_int_equal(service_record_add(f->db, f->acc, NULL, &rec, MS(day), NULL), 0);
}

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));
	char name[64], err[600];

	assert_non_null(f);
	snprintf(name, sizeof(name), "reminders_%d", count++);
	assert_int_equal(db_test_open(name, &f->db), 0);
	if (schema_migrate(f->db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(accounts_new(f->db, &f->acc), 0);
	assert_int_equal(telemetry_new(f->db, &f->t), 0);
	assert_int_equal(offer_log_new(f->db, &f->log), 0);
	if (service_plans_load(PLANS, &f->plans, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	/* Everything but the timing belt falls due by time on DUE. */
	record(f, D0, "oil_service;inspection;brake_fluid;timing_belt");
	assert_int_equal(
		service_override_set(f->db, f->acc, NULL, VIN, "oil_service", 0, 24, MS(D0)), 0);
	make_reminders(f, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	reminders_free(f->rem);
	service_plans_free(&f->plans);
	offer_log_free(f->log);
	telemetry_free(f->t);
	accounts_free(f->acc);
	db_close(f->db);
	free(f);
	return 0;
}

/* One run on day in its own transaction; returns what reminders_run() did. */
static int run(struct fixture *f, int64_t day)
{
	int r;

	assert_int_equal(db_begin(f->db), 0);
	r = reminders_run(f->rem, &f->plans, MS(day));
	assert_true(r >= 0);
	assert_int_equal(db_commit(f->db), 0);
	return r;
}

static int see_none(const char *vin, void *arg)
{
	(void)arg;
	return strcmp(vin, VIN) != 0;
}

static int64_t count(struct fixture *f, const char *sql)
{
	struct db_stmt *st;
	int64_t n;

	assert_int_equal(db_prepare(f->db, sql, &st), 0);
	assert_int_equal(db_step(st), 1);
	n = db_column_int64(st, 0);
	db_finalize(st);
	return n;
}

static void test_stage_of(void **state)
{
	static const struct {
		int64_t due_in_days;
		int has_odo;
		int64_t to_go_m;
		enum reminder_stage want;
	} cases[] = {
		{ 31, 0, 0, REMINDER_NONE },	     { 30, 0, 0, REMINDER_FIRST },
		{ 8, 0, 0, REMINDER_FIRST },	     { 7, 0, 0, REMINDER_SECOND },
		{ 1, 0, 0, REMINDER_SECOND },	     { 0, 0, 0, REMINDER_OVERDUE },
		{ -5, 0, 0, REMINDER_OVERDUE },	     { 200, 1, 1000000, REMINDER_FIRST },
		{ 200, 1, 1000001, REMINDER_NONE },  { 200, 1, -1, REMINDER_OVERDUE },
		{ 5, 1, 50000000, REMINDER_SECOND },
	};
	struct reminders_config c = { .first_days = 30, .first_km = 1000, .second_days = 7 };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct item_prediction p;

		memset(&p, 0, sizeof(p));
		p.due_day = 1000 + cases[i].due_in_days;
		p.has_due_odometer = cases[i].has_odo;
		p.distance_to_service_m = cases[i].to_go_m;
		p.is_service_due = cases[i].due_in_days <= 0;
		if (reminders_stage_of(&c, &p, 1000) != cases[i].want)
			fail_msg("case %zu: stage %s, expected %s", i,
				 reminders_stage_name(reminders_stage_of(&c, &p, 1000)),
				 reminders_stage_name(cases[i].want));
	}
	c.first_km = 0; /* days only */
	{
		struct item_prediction p = { .due_day = 1200, .has_due_odometer = 1 };

		assert_int_equal(reminders_stage_of(&c, &p, 1000), REMINDER_NONE);
	}
}

/* Three items due on DUE: first, second, overdue, each once per item. */
static void test_stages_once(void **state)
{
	struct fixture *f = *state;
	json_t *tasks;
	int truncated = 1, err = 0;

	assert_int_equal(run(f, DUE - 31), 0);
	assert_int_equal(run(f, DUE - 20), 3);
	assert_int_equal(f->nsent, 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(f->sent[i].kind, OFFER_SERVICE);
		assert_string_equal(f->sent[i].vin, VIN);
		assert_non_null(strstr(f->sent[i].body, "Book your service at Autohaus Test"));
		assert_int_equal(strlen(f->sent[i].promo_code), 10);
		assert_memory_equal(f->sent[i].promo_code, "SVC-", 4);
		assert_non_null(strstr(f->sent[i].body, f->sent[i].promo_code));
	}
	assert_string_equal(f->sent[0].title, "Service due: oil service");
	/* the same day again, and the next days: nothing new */
	assert_int_equal(run(f, DUE - 20), 0);
	assert_int_equal(run(f, DUE - 10), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM tasks"), 3);
	assert_int_equal(count(f, "SELECT count(*) FROM offers"), 3);
	assert_int_equal(count(f, "SELECT count(*) FROM service_reminders WHERE offer_id IS NOT "
				  "NULL AND task_id IS NOT NULL"),
			 3);
	assert_int_equal(run(f, DUE - 7), 3);
	assert_int_equal(run(f, DUE - 6), 0);
	assert_int_equal(run(f, DUE), 3);
	assert_int_equal(run(f, DUE + 30), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM tasks WHERE item = 'oil_service'"), 3);
	assert_int_equal(count(f, "SELECT count(*) FROM tasks WHERE stage = 'overdue'"), 3);
	assert_int_equal(count(f, "SELECT count(*) FROM tasks WHERE kind = 'service_call' AND "
				  "state = 'open'"),
			 9);
	assert_int_equal(f->nsent, 9);

	tasks = reminders_tasks_json(f->db, NULL, NULL, &truncated, &err);
	assert_non_null(tasks);
	assert_int_equal(truncated, 0);
	assert_int_equal(json_array_size(tasks), 9);
	assert_string_equal(json_string_value(json_object_get(json_array_get(tasks, 0), "stage")),
			    "first");
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(tasks, 0), "due_date")),
		"2026-01-01");
	json_decref(tasks);
	tasks = reminders_tasks_json(f->db, see_none, NULL, &truncated, &err);
	assert_non_null(tasks);
	assert_int_equal(json_array_size(tasks), 0); /* another fleet's car */
	json_decref(tasks);

	/* the same code for the same reminder: derived, not random */
	assert_string_not_equal(f->sent[0].promo_code, f->sent[3].promo_code);
}

/* A stage skipped (the gateway was off) is not sent late; a lower one never after a higher. */
static void test_highest_stage_only(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, DUE - 3), 3); /* second, first never sent */
	assert_int_equal(count(f, "SELECT count(*) FROM tasks WHERE stage = 'first'"), 0);
	assert_int_equal(run(f, DUE - 20), 0); /* back in the first window: nothing */
}

/* A new service starts a new cycle: its reminders come again. */
static void test_new_cycle(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(run(f, DUE + 1), 3);
	record(f, DUE + 2, "oil_service");
	assert_int_equal(run(f, DUE + 3), 0); /* the others were sent already */
	assert_int_equal(run(f, DUE + 731 - 20), 1);
	assert_string_equal(f->sent[f->nsent - 1].title, "Service due: oil service");
}

/* Over the rules' cap a reminder waits; it is sent by a later run. */
static void test_cap(void **state)
{
	struct fixture *f = *state;

	make_reminders(f, 2);
	assert_int_equal(run(f, DUE - 20), 2);
	assert_int_equal(run(f, DUE - 20), 0); /* same day: still capped */
	assert_int_equal(count(f, "SELECT count(*) FROM tasks"), 2);
	assert_int_equal(run(f, DUE - 18), 1); /* two days on */
	assert_int_equal(count(f, "SELECT count(*) FROM tasks"), 3);
}

/* A run that rolls back leaves nothing behind: the next run acts. */
static void test_rollback(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(reminders_run(f->rem, &f->plans, MS(DUE - 20)), 3);
	assert_int_equal(db_rollback(f->db), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM service_reminders"), 0);
	assert_int_equal(run(f, DUE - 20), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stage_of),
		cmocka_unit_test_setup_teardown(test_stages_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_highest_stage_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_cycle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
