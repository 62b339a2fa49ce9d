/*
 * The promotion engine (issue 11; part of the offers domain: it owns the
 * tables offer_episodes, promo_caps, promo_cooldowns, promo_codes,
 * promo_suppressed and promo_visits). After each batch it evaluates every
 * rule of the loaded rule set (promo_rules.h; without a rules file one
 * built-in low-fuel rule from the gateway's low_fuel_* keys) on the
 * vehicle's latest state, records the offers it issues through offer_log
 * (with their rule) and hands them to an offer sink for signing and
 * publishing; it knows nothing about MQTT, encoding or signing, so it is
 * tested on both databases with a sink that just records.
 *
 * Episodes: a rule issues at most one offer per episode. fuel_below opens
 * at or below its level and closes only when the level has been back at or
 * above level + rearm_pct for rearm_hold (gateway time), so a reading
 * swinging around the threshold, or between empty and full, gives one
 * offer, not one per swing; poi_enter and service_due are open while the
 * car is inside the radius; driven_since_visit closes at the next visit.
 * An episode opens in one atomic statement (INSERT ... ON CONFLICT DO
 * UPDATE ... WHERE closed RETURNING): with several instances on one
 * database exactly one opens it and goes on.
 *
 * Then, in this order, each failure logged in promo_suppressed with its
 * reason (docs/promotions.md): opt_out, quiet_hours, no_poi (the station
 * choice: POIs of the rule's category within min(search radius, remaining
 * range), ahead of the car preferred, nearest first), cooldown, cap_day,
 * cap_week, no_codes. Cooldown, caps and codes are claimed by conditional
 * upserts (exact across instances) and undone in the same transaction when
 * a later step fails. quiet_hours, no_poi, no_codes and a failing sink
 * close the episode again (a later batch may succeed); the others leave it
 * open (this episode gets no offer).
 */
#ifndef PITSTOP_GATEWAY_RULES_H
#define PITSTOP_GATEWAY_RULES_H

#include <stdint.h>

#include "codec.h"
#include "db.h"
#include "offer_log.h"
#include "promo_rules.h"
#include "telemetry.h"

struct poi_db;
struct accounts;

/* The name of the low-fuel episode in offer_episodes. */
#define RULES_LOW_FUEL "low_fuel"

struct rules_config {
	int low_fuel_pct;	 /* 0..100: offer at or below this level */
	int low_fuel_rearm_pct;	 /* >= 0: close the episode this far above it */
	int offer_valid_s;	 /* > 0: how long an offer is valid */
	uint32_t offer_radius_m; /* 0 = 20 km */
	/*
	 * >= 0: the re-arm level must hold this long (gateway time, s) before
	 * the episode closes; 0 closes at once. A fuel reading swinging up and
	 * down (a broken or hostile sender) then yields no second offer.
	 */
	int low_fuel_rearm_hold_s;
	int offers_per_day_max; /* > 0: per_day of the built-in rule; 0: no cap */

	/*
	 * The rules file's rule set (borrowed: must outlive the rules); NULL:
	 * the built-in low-fuel rule from the fields above (its episode is
	 * RULES_LOW_FUEL, its offers are area-bound around the car).
	 */
	const struct promo_rules *set;
	struct poi_db *poi;	     /* borrowed; NULL: no POIs (poi_enter never fires) */
	struct accounts *accounts;   /* borrowed; NULL: audience.fleet never matches */
	struct telemetry *telemetry; /* borrowed; service_due's predictions (NULL: none) */
};

/* Suppression reasons, in the order they are checked. */
#define RULES_SUPPRESSIONS(X)         \
	X(OPT_OUT, "opt_out")         \
	X(QUIET_HOURS, "quiet_hours") \
	X(NO_POI, "no_poi")           \
	X(COOLDOWN, "cooldown")       \
	X(CAP_DAY, "cap_day")         \
	X(CAP_WEEK, "cap_week")       \
	X(NO_CODES, "no_codes")

/* The cleanup job (jobs.h): old suppression rows and cap counters. */
#define RULES_CLEANUP_JOB "promo_cleanup"
#define RULES_CLEANUP_PERIOD_MS 3600000
#define RULES_SUPPRESSED_KEEP_MS (30 * 86400000LL)

/*
 * Receives an offer a rule decided on, before it is recorded. The sink
 * encodes, signs and queues it for publishing after the transaction
 * commits. Returns 0, or -errno when the offer cannot be built (the rule then
 * records nothing and tries again with the next batch).
 */
typedef int (*rules_offer_fn)(void *arg, const struct offer *o);

struct rules;

/*
 * Creates the engine on db (borrowed, migrated with offers_migrations and
 * profiles_migrations); offers are recorded through log (borrowed) and
 * handed to sink with arg. The codes of the set's code files are added to
 * the pool (promo_codes, a code once: ON CONFLICT DO NOTHING), in a
 * transaction of its own unless one is open. Returns 0 and *ret_rules, or
 * -EINVAL (bad config), -ENOMEM, or an error class.
 */
int rules_new(const struct rules_config *conf, struct db *db, struct offer_log *log,
	      rules_offer_fn sink, void *arg, struct rules **ret_rules);

void rules_free(struct rules *r);

/*
 * Runs every rule after a new batch of v->vin was stored, with v the
 * vehicle's latest state after it, inside the caller's transaction (episode
 * changes and offer records are written there). now_ms is wall-clock time
 * for valid_from. Returns the number of offers issued, or a negative error
 * class (the caller rolls back).
 */
int rules_after_batch(struct rules *r, const struct telemetry_vehicle *v, int64_t now_ms);

/*
 * rules_after_batch() for n vehicles at once (what telemetry_put_batches()
 * returned for a drain): episodes to close are closed DB_ROWS_MAX per
 * statement. Returns the number of offers issued, or an error class.
 */
int rules_after_batches(struct rules *r, const struct telemetry_vehicle *v, size_t n,
			int64_t now_ms);

/* The rule set r evaluates (the file's, or the built-in one). */
const struct promo_rules *rules_set(const struct rules *r);

/* Deletes suppression rows older than RULES_SUPPRESSED_KEEP_MS and cap
 * counters of past periods: a jobs_fn (arg unused). Returns rows deleted. */
int rules_cleanup_job(struct db *db, int64_t now_ms, void *arg);

/* One row of promo_suppressed. */
struct rules_suppression {
	char rule[PROMO_NAME_MAX + 1];
	char reason[16];
	int64_t time_ms;
	char detail[160];
};
#define RULES_SUPPRESSED_LIST_MAX 1000

/*
 * vin's suppressed offers, newest first, at most max (<=
 * RULES_SUPPRESSED_LIST_MAX) into *ret_rows (malloc'ed; NULL when none).
 * Returns the count or an error class.
 */
int rules_suppressed_list(struct db *db, const char *vin, size_t max,
			  struct rules_suppression **ret_rows);

#endif
