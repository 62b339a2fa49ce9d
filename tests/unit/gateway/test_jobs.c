/*
 * Unit tests of the job scheduler (gateway/jobs/jobs.c) and of the job it
 * runs today, expiring offers (offer_log_expire): two schedulers on two
 * handles of one database, as two gateway instances have them, run a job
 * once between them; a busy ingest postpones it; a failing job is rolled
 * back; open offers past their validity become "expired", final ones stay.
 * On whichever backend db_test_util.h selects.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "jobs.h"
#include "lease.h"
#include "loop.h"
#include "offer_log.h"
#include "schema.h"

static const char VIN1[] = "WDB1234561A000001";

struct counted {
	int runs;
	int fail; /* return this error instead of working */
	int idle; /* what the idle callback answers */
};

static int count_job(struct db *db, int64_t now_ms, void *arg)
{
	struct counted *c = arg;

	(void)db;
	(void)now_ms;
	if (c->fail)
		return c->fail;
	c->runs++;
	return 0;
}

/* The done hook: how often it was told, and the last answer. */
struct done {
	int calls;
	int committed;
};

static void done_fn(void *arg, int committed)
{
	struct done *d = arg;

	d->calls++;
	d->committed = committed;
}

static int idle_fn(void *arg)
{
	return ((struct counted *)arg)->idle;
}

/* Opens database name twice (two "instances"), migrated. */
static void open_two(const char *name, struct db **a, struct db **b)
{
	char url[512], err[512];

	assert_int_equal(db_test_open(name, a), 0);
	if (schema_migrate(*a, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(db_test_url(name, url, sizeof(url)), 0);
	if (db_open(url, DB_READ_WRITE, b, err, sizeof(err)) < 0)
		fail_msg("db_open: %s", err);
}

static void test_one_run_across_instances(void **state)
{
	struct db *a = NULL, *b = NULL;
	struct loop *la = NULL, *lb = NULL;
	struct jobs *ja = NULL, *jb = NULL;
	struct counted ca = { .idle = 1 }, cb = { .idle = 1 };
	struct done da = { 0 };

	(void)state;
	open_two("jobs_once", &a, &b);
	assert_int_equal(loop_new(&la), 0);
	assert_int_equal(loop_new(&lb), 0);
	assert_int_equal(jobs_new(la, a, "gw-a", idle_fn, &ca, &ja), 0);
	assert_int_equal(jobs_new(lb, b, "gw-b", idle_fn, &cb, &jb), 0);
	assert_int_equal(jobs_add(ja, "sweep", 3600000, count_job, &ca), 0);
	assert_int_equal(jobs_add(jb, "sweep", 3600000, count_job, &cb), 0);
	assert_int_equal(jobs_add(ja, "bad", 0, count_job, &ca), -EINVAL);
	assert_int_equal(jobs_set_done(ja, "sweep", done_fn, &da), 0);
	assert_int_equal(jobs_set_done(ja, "nosuch", done_fn, &da), -ENOENT);

	assert_int_equal(jobs_run_now(ja, "sweep"), 1);
	assert_int_equal(jobs_run_now(jb, "sweep"), 0); /* A holds the lease */
	assert_int_equal(jobs_run_now(ja, "sweep"), 1); /* A renews it */
	assert_int_equal(ca.runs, 2);
	assert_int_equal(cb.runs, 0);
	assert_int_equal(da.calls, 2); /* told after each run, committed */
	assert_int_equal(da.committed, 1);
	assert_int_equal(jobs_run_now(ja, "nosuch"), -ENOENT);

	/* A busy ingest postpones the run; nothing is taken or done. */
	ca.idle = 0;
	assert_int_equal(jobs_run_now(ja, "sweep"), 0);
	assert_int_equal(ca.runs, 2);
	assert_false(db_in_tx(a));

	/* A failing job is rolled back (its lease renewal too) and reported. */
	ca.idle = 1;
	ca.fail = -EIO;
	assert_int_equal(jobs_run_now(ja, "sweep"), -EIO);
	assert_false(db_in_tx(a));
	assert_int_equal(da.calls, 3); /* not told of the postponed run; told of the rollback */
	assert_int_equal(da.committed, 0);
	ca.fail = 0;
	assert_int_equal(jobs_run_now(jb, "sweep"), 0); /* A's earlier lease still holds */

	jobs_free(ja);
	jobs_free(jb);
	loop_free(la);
	loop_free(lb);
	db_close(a);
	db_close(b);
}

static struct offer make_offer(const char *id, int64_t until)
{
	struct offer o;

	memset(&o, 0, sizeof(o));
	snprintf(o.id, sizeof(o.id), "%s", id);
	snprintf(o.vin, sizeof(o.vin), "%s", VIN1);
	o.kind = OFFER_REFUEL;
	snprintf(o.title, sizeof(o.title), "t");
	o.valid_from_ms = 1000;
	o.valid_until_ms = until;
	return o;
}

static void test_offers_expire(void **state)
{
	struct db *db = NULL;
	struct offer_log *log = NULL;
	struct offer o1 = make_offer("a1", 5000), o2 = make_offer("a2", 5000),
		     o3 = make_offer("a3", 50000), o4 = make_offer("a4", 4000);
	struct offer_event ev = { .time_ms = 2000, .action = OFFER_ACTION_ACCEPTED };
	struct offer_row *rows = NULL;
	size_t n = 0;
	int more = 0;
	char err[512];

	(void)state;
	assert_int_equal(db_test_open("jobs_expire", &db), 0);
	if (schema_migrate(db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(offer_log_new(db, &log), 0);
	assert_int_equal(offer_log_put(log, &o1, 1000), 0);
	assert_int_equal(offer_log_put(log, &o2, 1001), 0);
	assert_int_equal(offer_log_put(log, &o3, 1002), 0);
	assert_int_equal(offer_log_put(log, &o4, 1003), 0);
	snprintf(ev.offer_id, sizeof(ev.offer_id), "a2");
	assert_int_equal(offer_log_event(log, VIN1, &ev, 2000), 0);
	ev.action = OFFER_ACTION_SHOWN;
	snprintf(ev.offer_id, sizeof(ev.offer_id), "a4");
	assert_int_equal(offer_log_event(log, VIN1, &ev, 2000), 0);

	/* At 6000: a1 (created) and a4 (shown) ended; a2 was accepted; a3 runs on. */
	assert_int_equal(offer_log_expire(log, 6000), 2);
	assert_int_equal(offer_log_expire(log, 6000), 0); /* already done */
	assert_int_equal(offer_log_list(log, VIN1, &rows, &n, &more), 0);
	assert_int_equal(n, 4);
	assert_string_equal(offer_state_name(rows[0].state), "expired");
	assert_string_equal(offer_state_name(rows[1].state), "accepted");
	assert_string_equal(offer_state_name(rows[2].state), "created");
	assert_string_equal(offer_state_name(rows[3].state), "expired");
	free(rows);

	/* A late SHOWN does not reopen an expired offer. */
	snprintf(ev.offer_id, sizeof(ev.offer_id), "a1");
	assert_int_equal(offer_log_event(log, VIN1, &ev, 7000), 0);
	assert_int_equal(offer_log_list(log, VIN1, &rows, &n, &more), 0);
	assert_string_equal(offer_state_name(rows[0].state), "expired");
	free(rows);

	offer_log_free(log);
	db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_run_across_instances),
		cmocka_unit_test(test_offers_expire),
	};

	printf("job tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
