/*
 * Unit tests of the offer log (gateway/offers/offer_log.c) on whichever
 * backend db_test_util.h selects: an offer id is issued once, its state only
 * advances, a redelivered event is stored once, and an event for an offer
 * of another car or one never issued stores nothing; an offer is created,
 * then sent by the broker's acknowledgement (or, that mark lost, counted
 * sent by the car's first event); each stage counts once per offer in the
 * per-rule and per-station statistics, whatever order events arrive in; a
 * code is redeemed once (then 409-like -EALREADY, -ETIME once expired); the
 * expiry job's deletions keep the counts.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec.h"
#include "db.h"
#include "offer_log.h"
#include "schema.h"

static const char VIN1[] = "WDB1234561A000001";
static const char VIN2[] = "WDB1234561A000002";

struct fixture {
	struct db *db;
	struct offer_log *log;
};

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));
	char name[64], err[512];

	assert_non_null(f);
	snprintf(name, sizeof(name), "offer_log_%d", count++);
	assert_int_equal(db_test_open(name, &f->db), 0);
	if (schema_migrate(f->db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(offer_log_new(f->db, &f->log), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	offer_log_free(f->log);
	db_close(f->db);
	free(f);
	return 0;
}

/* The one integer sql returns, with text $1 = arg when arg is not NULL. */
static int64_t query_int(struct db *db, const char *sql, const char *arg)
{
	struct db_stmt *st = NULL;
	int64_t v;

	assert_int_equal(db_prepare(db, sql, &st), 0);
	if (arg)
		assert_int_equal(db_bind_text(st, 1, arg), 0);
	assert_int_equal(db_step(st), 1);
	v = db_column_int64(st, 0);
	db_finalize(st);
	return v;
}

static int64_t events_of(struct fixture *f, const char *offer_id)
{
	return query_int(f->db, "SELECT COUNT(*) FROM offer_events WHERE offer_id = $1", offer_id);
}

static struct offer make_offer(const char *id, const char *vin)
{
	struct offer o;

	memset(&o, 0, sizeof(o));
	snprintf(o.id, sizeof(o.id), "%s", id);
	snprintf(o.vin, sizeof(o.vin), "%s", vin);
	o.kind = OFFER_REFUEL;
	snprintf(o.title, sizeof(o.title), "Fuel low");
	snprintf(o.body, sizeof(o.body), "Show the code at a partner station.");
	snprintf(o.promo_code, sizeof(o.promo_code), "FUEL-ABC234");
	o.valid_from_ms = 1000;
	o.valid_until_ms = 3601000;
	return o;
}

/* The state of offer id of vin, or -1 if it is not listed for vin. */
static int offer_state(struct fixture *f, const char *vin, const char *id)
{
	struct offer_row *rows = NULL;
	size_t n = 0;
	int more = -1, st = -1;

	assert_int_equal(offer_log_list(f->log, vin, &rows, &n, &more), 0);
	assert_int_equal(more, 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(rows[i].id, id) == 0)
			st = (int)rows[i].state;
	free(rows);
	return st;
}

static int event(struct fixture *f, const char *vin, const char *id, enum offer_action a, int64_t t,
		 const char *reason)
{
	struct offer_event ev;

	memset(&ev, 0, sizeof(ev));
	snprintf(ev.offer_id, sizeof(ev.offer_id), "%s", id);
	ev.action = a;
	ev.time_ms = t;
	snprintf(ev.reason, sizeof(ev.reason), "%s", reason ? reason : "");
	return offer_log_event(f->log, vin, &ev, t + 1);
}

static void test_put_and_list(void **state)
{
	struct fixture *f = *state;
	struct offer o1 = make_offer("aa01", VIN1), o2 = make_offer("aa02", VIN1);
	struct offer other = make_offer("aa01", VIN2);
	struct offer_row *rows = NULL;
	size_t n = 99;
	int more = -1;

	o2.kind = OFFER_SERVICE;
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(offer_log_put(f->log, &o2, 200), 0);
	assert_int_equal(offer_log_put(f->log, &o1, 100), 0);
	/*
	 * A unique violation aborts a PostgreSQL transaction: whoever expects
	 * one puts it in a savepoint, as ingest does with every message.
	 */
	assert_int_equal(db_savepoint(f->db), 0);
	assert_int_equal(offer_log_put(f->log, &o1, 300), -EEXIST);
	assert_int_equal(db_rollback_to(f->db), 0);
	assert_int_equal(db_savepoint(f->db), 0);
	assert_int_equal(offer_log_put(f->log, &other, 300), -EEXIST); /* ids are global */
	assert_int_equal(db_rollback_to(f->db), 0);
	assert_int_equal(db_commit(f->db), 0);

	assert_int_equal(offer_log_list(f->log, VIN1, &rows, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_int_equal(more, 0);
	/* oldest first */
	assert_string_equal(rows[0].id, "aa01");
	assert_int_equal(rows[0].kind, OFFER_REFUEL);
	assert_string_equal(rows[0].title, "Fuel low");
	assert_string_equal(rows[0].promo_code, "FUEL-ABC234");
	assert_int_equal(rows[0].valid_from_ms, 1000);
	assert_int_equal(rows[0].valid_until_ms, 3601000);
	assert_int_equal(rows[0].created_ms, 100);
	assert_int_equal(rows[0].state, OFFER_STATE_CREATED);
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_CREATED], 100);
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_SENT], 0);
	assert_string_equal(rows[0].poi_id, "");
	assert_string_equal(rows[1].id, "aa02");
	assert_int_equal(rows[1].kind, OFFER_SERVICE);
	assert_int_equal(rows[1].created_ms, 200);
	free(rows);

	assert_int_equal(offer_log_list(f->log, VIN2, &rows, &n, &more), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
	offer_log_free(NULL);
}

static void test_events_advance_only_forward(void **state)
{
	struct fixture *f = *state;
	struct offer o1 = make_offer("aa01", VIN1), o2 = make_offer("aa02", VIN1);
	struct offer o3 = make_offer("aa03", VIN1);

	assert_int_equal(offer_log_put(f->log, &o1, 100), 0);
	assert_int_equal(offer_log_put(f->log, &o2, 200), 0);
	assert_int_equal(offer_log_put(f->log, &o3, 300), 0);

	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(event(f, VIN1, "aa01", OFFER_ACTION_SHOWN, 5000, NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "aa01"), OFFER_STATE_SHOWN);
	/* redelivered: stored once */
	assert_int_equal(event(f, VIN1, "aa01", OFFER_ACTION_SHOWN, 5000, NULL), 0);
	assert_int_equal(events_of(f, "aa01"), 1);
	assert_int_equal(event(f, VIN1, "aa01", OFFER_ACTION_ACCEPTED, 6000, NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "aa01"), OFFER_STATE_ACCEPTED);
	/* a late "shown" is kept as an event but does not move the state back */
	assert_int_equal(event(f, VIN1, "aa01", OFFER_ACTION_SHOWN, 5500, NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "aa01"), OFFER_STATE_ACCEPTED);
	assert_int_equal(events_of(f, "aa01"), 3);
	/* nor does another final state replace the first */
	assert_int_equal(event(f, VIN1, "aa01", OFFER_ACTION_DISMISSED, 7000, NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "aa01"), OFFER_STATE_ACCEPTED);

	/* rejected with a reason, straight from created */
	assert_int_equal(event(f, VIN1, "aa02", OFFER_ACTION_REJECTED, 5000, "bad signature"), 0);
	assert_int_equal(offer_state(f, VIN1, "aa02"), OFFER_STATE_REJECTED);
	assert_int_equal(query_int(f->db,
				   "SELECT COUNT(*) FROM offer_events WHERE offer_id = 'aa02'"
				   " AND reason = $1",
				   "bad signature"),
			 1);
	/* dismissed */
	assert_int_equal(event(f, VIN1, "aa03", OFFER_ACTION_DISMISSED, 5000, NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "aa03"), OFFER_STATE_DISMISSED);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(offer_state(f, VIN1, "aa01"), OFFER_STATE_ACCEPTED);

	/* an action the protocol does not know */
	assert_int_equal(event(f, VIN1, "aa01", (enum offer_action)99, 8000, NULL), -EINVAL);
	assert_int_equal(events_of(f, "aa01"), 4);
}

static void test_event_for_unknown_offer(void **state)
{
	struct fixture *f = *state;
	struct offer o1 = make_offer("aa01", VIN1);
	int64_t before;

	assert_int_equal(offer_log_put(f->log, &o1, 100), 0);
	before = query_int(f->db, "SELECT COUNT(*) FROM offer_events", NULL);
	assert_int_equal(before, 0);

	/* never issued */
	assert_int_equal(event(f, VIN1, "nope", OFFER_ACTION_ACCEPTED, 5000, NULL), -ENOENT);
	/* issued, but to another car */
	assert_int_equal(event(f, VIN2, "aa01", OFFER_ACTION_ACCEPTED, 5000, NULL), -ENOENT);
	assert_int_equal(query_int(f->db, "SELECT COUNT(*) FROM offer_events", NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "aa01"), OFFER_STATE_CREATED);
	assert_int_equal(offer_state(f, VIN2, "aa01"), -1);
	/* a broker acknowledgement for an offer that is gone (purged) marks nothing */
	assert_int_equal(offer_log_sent(f->log, "nope", 5000), 0);
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(offer_state_name(OFFER_STATE_CREATED), "created");
	assert_string_equal(offer_state_name(OFFER_STATE_SENT), "sent");
	assert_string_equal(offer_state_name(OFFER_STATE_SHOWN), "shown");
	assert_string_equal(offer_state_name(OFFER_STATE_ACCEPTED), "accepted");
	assert_string_equal(offer_state_name(OFFER_STATE_DISMISSED), "dismissed");
	assert_string_equal(offer_state_name(OFFER_STATE_REJECTED), "rejected");
	assert_string_equal(offer_state_name(OFFER_STATE_DELIVERED), "delivered");
	assert_string_equal(offer_state_name(OFFER_STATE_REDEEMED), "redeemed");
	assert_string_equal(offer_state_name(OFFER_STATE_EXPIRED), "expired");
	assert_string_equal(offer_state_name((enum offer_state)42), "?");
}

/*
 * Puts offer id of vin from rule for POI poi ("" none) with promo code
 * code, valid until until_ms.
 */
static void put_at(struct fixture *f, const char *id, const char *vin, const char *rule,
		   const char *poi, const char *code, int64_t created_ms, int64_t until_ms)
{
	struct offer o = make_offer(id, vin);

	snprintf(o.promo_code, sizeof(o.promo_code), "%s", code);
	o.valid_until_ms = until_ms;
	assert_int_equal(offer_log_put_rule(f->log, &o, rule, poi, created_ms), 0);
}

/* put_at() for an offer without a POI. */
static void put(struct fixture *f, const char *id, const char *vin, const char *rule,
		const char *code, int64_t created_ms, int64_t until_ms)
{
	put_at(f, id, vin, rule, "", code, created_ms, until_ms);
}

/* The statistics of rule over every day (a zero row when it has none). */
static struct offer_stats_row stats_of(struct fixture *f, const char *rule, int64_t since_day,
				       int64_t until_day)
{
	struct offer_stats_row *rows = NULL, out;
	size_t n = 0;
	int more = -1;

	memset(&out, 0, sizeof(out));
	assert_int_equal(offer_log_stats(f->log, since_day, until_day, &rows, &n, &more), 0);
	assert_int_equal(more, 0);
	for (size_t i = 0; i < n; i++) {
		if (i)
			assert_true(strcmp(rows[i - 1].rule, rows[i].rule) < 0);
		if (strcmp(rows[i].rule, rule) == 0)
			out = rows[i];
	}
	free(rows);
	return out;
}

#define ALL_DAYS -100000, 100000

static void test_stages_counted_once(void **state)
{
	struct fixture *f = *state;
	struct offer_stats_row s;

	put(f, "b1", VIN1, "low_fuel", "C1", 1000, 3600000);
	put(f, "b2", VIN1, "low_fuel", "C2", 2000, 3600000);
	put(f, "b3", VIN2, "", "C3", 3000, 3600000);
	/* b1: delivered, shown (twice: a redelivery), accepted */
	assert_int_equal(event(f, VIN1, "b1", OFFER_ACTION_DELIVERED, 5000, NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "b1"), OFFER_STATE_DELIVERED);
	assert_int_equal(event(f, VIN1, "b1", OFFER_ACTION_SHOWN, 5001, NULL), 0);
	assert_int_equal(event(f, VIN1, "b1", OFFER_ACTION_SHOWN, 5001, NULL), 0);
	assert_int_equal(event(f, VIN1, "b1", OFFER_ACTION_ACCEPTED, 6000, NULL), 0);
	/* b2: shown arrives before delivered (counted, the state does not go back) */
	assert_int_equal(event(f, VIN1, "b2", OFFER_ACTION_SHOWN, 5002, NULL), 0);
	assert_int_equal(event(f, VIN1, "b2", OFFER_ACTION_DELIVERED, 5000, NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "b2"), OFFER_STATE_SHOWN);
	/* b2: a shown with another time is a second event, not a second count */
	assert_int_equal(event(f, VIN1, "b2", OFFER_ACTION_SHOWN, 9000, NULL), 0);
	assert_int_equal(event(f, VIN1, "b2", OFFER_ACTION_DISMISSED, 9100, NULL), 0);

	s = stats_of(f, "low_fuel", ALL_DAYS);
	assert_int_equal(s.n[OFFER_STATE_CREATED], 2);
	/* never acknowledged here: the cars' first events count sent, once */
	assert_int_equal(s.n[OFFER_STATE_SENT], 2);
	assert_int_equal(s.n[OFFER_STATE_DELIVERED], 2);
	assert_int_equal(s.n[OFFER_STATE_SHOWN], 2);
	assert_int_equal(s.n[OFFER_STATE_ACCEPTED], 1);
	assert_int_equal(s.n[OFFER_STATE_DISMISSED], 1);
	assert_int_equal(s.n[OFFER_STATE_REDEEMED], 0);
	s = stats_of(f, "", ALL_DAYS);
	assert_int_equal(s.n[OFFER_STATE_CREATED], 1);
	assert_int_equal(s.n[OFFER_STATE_SENT], 0); /* b3: no acknowledgement, no event */
	assert_int_equal(s.n[OFFER_STATE_SHOWN], 0);
	/* created on day 0: a window from day 1 has none of them */
	s = stats_of(f, "low_fuel", 1, 100000);
	assert_int_equal(s.n[OFFER_STATE_CREATED], 0);
	/* too long a rule name is refused, nothing recorded */
	{
		char rule[OFFER_LOG_RULE_MAX + 1];
		struct offer o = make_offer("b4", VIN1);

		memset(rule, 'r', OFFER_LOG_RULE_MAX);
		rule[OFFER_LOG_RULE_MAX] = '\0';
		assert_int_equal(offer_log_put_rule(f->log, &o, rule, "", 1000), -EINVAL);
		assert_int_equal(offer_state(f, VIN1, "b4"), -1);
		/* so is too long a POI id */
		char poi[OFFER_LOG_POI_ID_MAX + 1];

		memset(poi, 'p', OFFER_LOG_POI_ID_MAX);
		poi[OFFER_LOG_POI_ID_MAX] = '\0';
		assert_int_equal(offer_log_put_rule(f->log, &o, "low_fuel", poi, 1000), -EINVAL);
		assert_int_equal(offer_state(f, VIN1, "b4"), -1);
	}
}

static void test_sent_by_the_broker(void **state)
{
	struct fixture *f = *state;
	struct offer_row *rows = NULL;
	struct offer_stats_row s;
	size_t n = 0;
	int more = -1;

	put(f, "s1", VIN1, "low_fuel", "S1", 1000, 3600000);
	put(f, "s2", VIN1, "low_fuel", "S2", 1001, 3600000);
	/* the broker's acknowledgement: created -> sent, once */
	assert_int_equal(offer_log_sent(f->log, "s1", 1500), 1);
	assert_int_equal(offer_state(f, VIN1, "s1"), OFFER_STATE_SENT);
	assert_int_equal(offer_log_sent(f->log, "s1", 1600), 0);
	assert_int_equal(event(f, VIN1, "s1", OFFER_ACTION_DELIVERED, 2000, NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "s1"), OFFER_STATE_DELIVERED);
	/* s2: its car's DELIVERED came before the mark (counted sent then); the
	 * late mark only records the time and does not move the state back */
	assert_int_equal(event(f, VIN1, "s2", OFFER_ACTION_DELIVERED, 2000, NULL), 0);
	assert_int_equal(offer_log_list(f->log, VIN1, &rows, &n, &more), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[1].stage_ms[OFFER_STATE_SENT], 0); /* not known yet */
	free(rows);
	assert_int_equal(offer_log_sent(f->log, "s2", 2100), 0);
	assert_int_equal(offer_state(f, VIN1, "s2"), OFFER_STATE_DELIVERED);
	assert_int_equal(offer_log_list(f->log, VIN1, &rows, &n, &more), 0);
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_CREATED], 1000);
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_SENT], 1500); /* the first mark's */
	assert_int_equal(rows[1].stage_ms[OFFER_STATE_SENT], 2100);
	free(rows);
	s = stats_of(f, "low_fuel", ALL_DAYS);
	assert_int_equal(s.n[OFFER_STATE_CREATED], 2);
	assert_int_equal(s.n[OFFER_STATE_SENT], 2);
	assert_int_equal(s.n[OFFER_STATE_DELIVERED], 2);
}

/* The per-station figures of (rule, poi) over every day (a zero row when none). */
static struct offer_stats_poi_row station_of(struct fixture *f, const char *rule, const char *poi,
					     size_t *ret_n)
{
	struct offer_stats_poi_row *rows = NULL, out;
	size_t n = 0;
	int more = -1;

	memset(&out, 0, sizeof(out));
	assert_int_equal(offer_log_stats_poi(f->log, ALL_DAYS, &rows, &n, &more), 0);
	assert_int_equal(more, 0);
	for (size_t i = 0; i < n; i++) {
		assert_true(rows[i].poi_id[0] != '\0'); /* offers without a POI are not listed */
		if (strcmp(rows[i].rule, rule) == 0 && strcmp(rows[i].poi_id, poi) == 0)
			out = rows[i];
	}
	free(rows);
	if (ret_n)
		*ret_n = n;
	return out;
}

static void test_per_station(void **state)
{
	struct fixture *f = *state;
	const int64_t day = 86400000;
	struct offer_stats_poi_row *rows = NULL, a;
	struct offer_redeemed red;
	struct offer_stats_row s;
	size_t n = 0;
	int more = -1;

	put_at(f, "q1", VIN1, "fuel", "st-a", "Q1", 1000, 10 * day);
	put_at(f, "q2", VIN2, "fuel", "st-a", "Q2", 1000, 10 * day);
	put_at(f, "q3", VIN1, "fuel", "st-b", "Q3", 1000, 10 * day);
	put_at(f, "q4", VIN1, "wash", "st-a", "Q4", 1000, 10 * day);
	put(f, "q5", VIN1, "fuel", "Q5", 1000, 10 * day); /* no station */
	assert_int_equal(offer_log_sent(f->log, "q1", 1100), 1);
	assert_int_equal(offer_log_sent(f->log, "q2", 1100), 1);
	assert_int_equal(offer_log_sent(f->log, "q5", 1100), 1);
	assert_int_equal(event(f, VIN1, "q1", OFFER_ACTION_SHOWN, 2000, NULL), 0);
	assert_int_equal(event(f, VIN1, "q1", OFFER_ACTION_ACCEPTED, 2100, NULL), 0);
	assert_int_equal(offer_log_redeem(f->log, "Q1", 3000, &red), 0);
	assert_int_equal(event(f, VIN1, "q3", OFFER_ACTION_SHOWN, 2000, NULL),
			 0);						 /* implies sent */
	assert_int_equal(offer_log_redeem(f->log, "Q4", 3000, &red), 0); /* from created */

	a = station_of(f, "fuel", "st-a", &n);
	assert_int_equal(n, 3); /* fuel at st-a and st-b, wash at st-a */
	assert_int_equal(a.n[OFFER_STATE_CREATED], 2);
	assert_int_equal(a.n[OFFER_STATE_SENT], 2);
	assert_int_equal(a.n[OFFER_STATE_SHOWN], 1);
	assert_int_equal(a.n[OFFER_STATE_ACCEPTED], 1);
	assert_int_equal(a.n[OFFER_STATE_REDEEMED], 1);
	a = station_of(f, "fuel", "st-b", NULL);
	assert_int_equal(a.n[OFFER_STATE_SENT], 1);
	assert_int_equal(a.n[OFFER_STATE_SHOWN], 1);
	assert_int_equal(a.n[OFFER_STATE_REDEEMED], 0);
	a = station_of(f, "wash", "st-a", NULL);
	assert_int_equal(a.n[OFFER_STATE_SENT], 1); /* redeemed: the driver had it */
	assert_int_equal(a.n[OFFER_STATE_REDEEMED], 1);
	/* sorted by rule, then by sent, most first */
	assert_int_equal(offer_log_stats_poi(f->log, ALL_DAYS, &rows, &n, &more), 0);
	assert_string_equal(rows[0].poi_id, "st-a");
	assert_string_equal(rows[1].poi_id, "st-b");
	assert_string_equal(rows[2].rule, "wash");
	free(rows);
	/* the per-rule figures hold the offer without a station too */
	s = stats_of(f, "fuel", ALL_DAYS);
	assert_int_equal(s.n[OFFER_STATE_CREATED], 4);
	assert_int_equal(s.n[OFFER_STATE_SENT], 4);

	/* expired and purged: the per-station counts stay */
	assert_int_equal(offer_log_expire(f->log, 11 * day), 3); /* q2, q3, q5 */
	assert_int_equal(offer_log_purge(f->log, 40 * day, 15 * day), 5);
	assert_int_equal(offer_state(f, VIN1, "q1"), -1);
	a = station_of(f, "fuel", "st-a", &n);
	assert_int_equal(n, 3);
	assert_int_equal(a.n[OFFER_STATE_CREATED], 2);
	assert_int_equal(a.n[OFFER_STATE_SENT], 2);
	assert_int_equal(a.n[OFFER_STATE_REDEEMED], 1);
	assert_int_equal(a.n[OFFER_STATE_EXPIRED], 1);
	a = station_of(f, "fuel", "st-b", NULL);
	assert_int_equal(a.n[OFFER_STATE_EXPIRED], 1);
	/* a window of days the offers were not created on has none */
	assert_int_equal(offer_log_stats_poi(f->log, 1, 100000, &rows, &n, &more), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
}

static void test_list_stage_times(void **state)
{
	struct fixture *f = *state;
	struct offer_row *rows = NULL;
	struct offer_redeemed red;
	size_t n = 0;
	int more = -1;

	put(f, "t1", VIN1, "wash", "T1", 1000, 3600000);
	assert_int_equal(event(f, VIN1, "t1", OFFER_ACTION_DELIVERED, 2000, NULL), 0);
	assert_int_equal(event(f, VIN1, "t1", OFFER_ACTION_SHOWN, 3000, NULL), 0);
	assert_int_equal(event(f, VIN1, "t1", OFFER_ACTION_SHOWN, 2500, NULL), 0); /* earlier */
	assert_int_equal(offer_log_redeem(f->log, "T1", 7000, &red), 0);
	assert_int_equal(offer_log_list(f->log, VIN1, &rows, &n, &more), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].rule, "wash");
	assert_int_equal(rows[0].state, OFFER_STATE_REDEEMED);
	assert_int_equal(rows[0].state_ms, 7000);
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_CREATED], 1000);
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_SENT], 0); /* no acknowledgement seen */
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_DELIVERED], 2000);
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_SHOWN], 2500); /* the first */
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_ACCEPTED], 0);
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_REDEEMED], 7000);
	free(rows);
}

static void test_redeem_once(void **state)
{
	struct fixture *f = *state;
	struct offer_redeemed red;
	struct offer_stats_row s;

	put(f, "r1", VIN1, "low_fuel", "FUEL-R1", 1000, 100000);
	put(f, "r2", VIN1, "low_fuel", "FUEL-R2", 1000, 100000);
	put(f, "r3", VIN2, "low_fuel", "FUEL-R3", 1000, 50000);
	assert_int_equal(event(f, VIN1, "r1", OFFER_ACTION_ACCEPTED, 2000, NULL), 0);

	/* after accepted */
	memset(&red, 0, sizeof(red));
	assert_int_equal(offer_log_redeem(f->log, "FUEL-R1", 10000, &red), 0);
	assert_string_equal(red.id, "r1");
	assert_string_equal(red.vin, VIN1);
	assert_string_equal(red.rule, "low_fuel");
	assert_int_equal(red.state, OFFER_STATE_REDEEMED);
	assert_int_equal(red.state_ms, 10000);
	assert_int_equal(offer_state(f, VIN1, "r1"), OFFER_STATE_REDEEMED);
	/* twice: refused, saying when */
	memset(&red, 0, sizeof(red));
	assert_int_equal(offer_log_redeem(f->log, "FUEL-R1", 11000, &red), -EALREADY);
	assert_string_equal(red.id, "r1");
	assert_int_equal(red.state_ms, 10000);
	/* a late event of the car does not undo it */
	assert_int_equal(event(f, VIN1, "r1", OFFER_ACTION_DISMISSED, 12000, NULL), 0);
	assert_int_equal(offer_state(f, VIN1, "r1"), OFFER_STATE_REDEEMED);
	/* straight from created: a code shown on paper */
	assert_int_equal(offer_log_redeem(f->log, "FUEL-R2", 12000, &red), 0);
	assert_string_equal(red.id, "r2");
	/* unknown, empty */
	assert_int_equal(offer_log_redeem(f->log, "NOPE", 12000, &red), -ENOENT);
	assert_int_equal(offer_log_redeem(f->log, "", 12000, &red), -EINVAL);
	/* past its validity (the job has not run yet), then expired by the job */
	memset(&red, 0, sizeof(red));
	assert_int_equal(offer_log_redeem(f->log, "FUEL-R3", 60000, &red), -ETIME);
	assert_int_equal(red.valid_until_ms, 50000);
	assert_int_equal(offer_log_expire(f->log, 60000), 1);
	assert_int_equal(offer_log_redeem(f->log, "FUEL-R3", 61000, &red), -ETIME);
	assert_int_equal(red.state, OFFER_STATE_EXPIRED);
	assert_int_equal(offer_state(f, VIN2, "r3"), OFFER_STATE_EXPIRED);

	s = stats_of(f, "low_fuel", ALL_DAYS);
	assert_int_equal(s.n[OFFER_STATE_CREATED], 3);
	/* r1 (its car accepted it) and r2 (redeemed) were evidently sent; r3 expired unsent */
	assert_int_equal(s.n[OFFER_STATE_SENT], 2);
	assert_int_equal(s.n[OFFER_STATE_ACCEPTED], 1);
	assert_int_equal(s.n[OFFER_STATE_DISMISSED], 1);
	assert_int_equal(s.n[OFFER_STATE_REDEEMED], 2);
	assert_int_equal(s.n[OFFER_STATE_EXPIRED], 1);
}

/* How many rows promo_codes holds. */
static int codes_left(struct fixture *f)
{
	struct db_stmt *st;
	int n;

	assert_int_equal(db_prepare(f->db, "SELECT COUNT(*) FROM promo_codes", &st), 0);
	assert_int_equal(db_step(st), 1);
	n = (int)db_column_int64(st, 0);
	db_finalize(st);
	return n;
}

static void test_purge_keeps_counts(void **state)
{
	struct fixture *f = *state;
	const int64_t day = 86400000;
	struct offer_stats_row s;

	put(f, "p1", VIN1, "wash", "P1", 1000, 10 * day);  /* open, expires */
	put(f, "p2", VIN1, "wash", "P2", 1000, 10 * day);  /* accepted: final */
	put(f, "p3", VIN1, "wash", "P3", 1000, 100 * day); /* still valid */
	put(f, "p4", VIN2, "other", "P4", 1000, 30 * day); /* ended too recently */
	/* their codes, as the engine's pool holds them */
	assert_int_equal(db_exec(f->db, "INSERT INTO promo_codes(code, rule, state) VALUES"
					" ('P1', 'wash', 'used'), ('P2', 'wash', 'used'),"
					" ('P3', 'wash', 'used'), ('P4', 'other', 'used'),"
					" ('FREE', 'wash', 'free')"),
			 0);
	assert_int_equal(event(f, VIN1, "p2", OFFER_ACTION_ACCEPTED, 2000, NULL), 0);
	assert_int_equal(offer_log_expire(f->log, 11 * day), 1);
	assert_int_equal(offer_log_expire(f->log, 31 * day), 1); /* p4 */
	/* kept 15 days: p1 and p2 (ended on day 10) go at day 26, p4 stays */
	assert_int_equal(offer_log_purge(f->log, 25 * day, 15 * day), 0);
	assert_int_equal(offer_log_purge(f->log, 40 * day, 15 * day), 2);
	assert_int_equal(offer_state(f, VIN1, "p1"), -1);
	assert_int_equal(offer_state(f, VIN1, "p2"), -1);
	assert_int_equal(offer_state(f, VIN1, "p3"), OFFER_STATE_CREATED);
	assert_int_equal(offer_state(f, VIN2, "p4"), OFFER_STATE_EXPIRED);
	assert_int_equal(events_of(f, "p2"), 0);
	/* the codes of p1 and p2 went with them; the others and the free one stay */
	assert_int_equal(codes_left(f), 3);
	/* the counts stay */
	s = stats_of(f, "wash", ALL_DAYS);
	assert_int_equal(s.n[OFFER_STATE_CREATED], 3);
	assert_int_equal(s.n[OFFER_STATE_SENT], 1); /* p2: accepted by its car */
	assert_int_equal(s.n[OFFER_STATE_ACCEPTED], 1);
	assert_int_equal(s.n[OFFER_STATE_EXPIRED], 1);
	/* the job: expires and purges with the keep time set */
	offer_log_set_keep_ms(f->log, 15 * day);
	assert_int_equal(offer_log_expire_job(f->db, 200 * day, f->log), 2);
	assert_int_equal(offer_state(f, VIN1, "p3"), -1);
	s = stats_of(f, "wash", ALL_DAYS);
	assert_int_equal(s.n[OFFER_STATE_CREATED], 3);
	assert_int_equal(s.n[OFFER_STATE_EXPIRED], 2);
}

/*
 * Migration offers 6 on a database of offers 5: old rows keep their state
 * and meaning (ranks and stage bits shifted for created; every old offer
 * was created and sent), and the counts gain created = sent.
 */
static void test_migration_keeps_old_offers(void **state)
{
	struct db *db = NULL;
	struct offer_log *log = NULL;
	struct offer_row *rows = NULL;
	struct offer_event ev;
	size_t n = 0;
	int more = -1;
	char err[512];

	(void)state;
	assert_int_equal(db_test_open("offer_log_migration", &db), 0);
	assert_true(offers_migrations_count >= 6);
	assert_int_equal(offers_migrations[4].version, 5);
	if (db_migrate(db, offers_migrations, 5, err, sizeof(err)) < 0)
		fail_msg("db_migrate to offers 5: %s", err);
	/* as offers 5 wrote them: sent 0 / shown 2 / expired 4; bits 1 sent, 4 shown, 128 expired */
	assert_int_equal(db_exec(db,
				 "INSERT INTO offers(id, vin, kind, title, body, promo_code,"
				 " valid_from_ms, valid_until_ms, created_ms, state, state_rank,"
				 " state_ms, rule, stages) VALUES"
				 " ('m1', 'WDB1234561A000001', 1, 't', 'b', 'M1', 0, 5000, 100,"
				 " 'sent', 0, 100, 'old', 1),"
				 " ('m2', 'WDB1234561A000001', 1, 't', 'b', 'M2', 0, 5000, 200,"
				 " 'shown', 2, 300, 'old', 5),"
				 " ('m3', 'WDB1234561A000001', 1, 't', 'b', 'M3', 0, 50, 300,"
				 " 'expired', 4, 400, 'old', 129)"),
			 0);
	assert_int_equal(db_exec(db, "INSERT INTO offer_stats(rule, day, sent, delivered, shown,"
				     " accepted, dismissed, rejected, redeemed, expired)"
				     " VALUES('old', 0, 3, 0, 1, 0, 0, 0, 0, 1)"),
			 0);
	if (schema_migrate(db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(offer_log_new(db, &log), 0);

	assert_int_equal(offer_log_list(log, VIN1, &rows, &n, &more), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].state, OFFER_STATE_SENT);
	assert_int_equal(rows[0].stage_ms[OFFER_STATE_SENT], 100); /* sent when created */
	assert_int_equal(rows[1].state, OFFER_STATE_SHOWN);
	assert_int_equal(rows[2].state, OFFER_STATE_EXPIRED);
	assert_string_equal(rows[0].poi_id, "");
	free(rows);
	assert_int_equal(query_int(db, "SELECT stages FROM offers WHERE id = $1", "m2"), 1 | 2 | 8);
	assert_int_equal(query_int(db, "SELECT state_rank FROM offers WHERE id = $1", "m3"), 5);

	/* new ranks apply to old rows: a late SHOWN moves m1 on, the acknowledgement does not recount */
	memset(&ev, 0, sizeof(ev));
	snprintf(ev.offer_id, sizeof(ev.offer_id), "m1");
	ev.action = OFFER_ACTION_SHOWN;
	ev.time_ms = 1000;
	assert_int_equal(offer_log_event(log, VIN1, &ev, 1001), 0);
	assert_int_equal(offer_log_sent(log, "m1", 1002), 0);
	assert_int_equal(offer_log_expire(log, 6000), 2); /* m1 (shown) and m2 (shown) */
	{
		struct offer_stats_row *st = NULL;

		assert_int_equal(offer_log_stats(log, ALL_DAYS, &st, &n, &more), 0);
		assert_int_equal(n, 1);
		assert_int_equal(st[0].n[OFFER_STATE_CREATED], 3);
		assert_int_equal(st[0].n[OFFER_STATE_SENT], 3);
		assert_int_equal(st[0].n[OFFER_STATE_SHOWN], 2);
		assert_int_equal(st[0].n[OFFER_STATE_EXPIRED], 3);
		free(st);
	}
	offer_log_free(log);
	db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_and_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_advance_only_forward, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_for_unknown_offer, setup, teardown),
		cmocka_unit_test(test_state_names),
		cmocka_unit_test_setup_teardown(test_stages_counted_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sent_by_the_broker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_per_station, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_stage_times, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redeem_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_purge_keeps_counts, setup, teardown),
		cmocka_unit_test(test_migration_keeps_old_offers),
	};

	fprintf(stderr, "offer log tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
