/*
 * Business rules that turn stored telemetry into offers (part of the offers
 * domain: it owns the table offer_episodes). Each rule looks at the
 * vehicle's latest state as the telemetry domain returns it after a new
 * batch, keeps its episodes in offer_episodes and records the offers it
 * issues through offer_log; it hands them to an offer sink for signing and
 * publishing and knows nothing about MQTT, encoding or signing, so it is
 * tested on both databases with a sink that just records.
 *
 * Low fuel (the first rule): when the latest fuel level (by sample time) is
 * at or below low_fuel_pct and no low-fuel episode is open for the car, the
 * rule opens one and issues one REFUEL offer, unless the car already got
 * offers_per_day_max offers in the last 24 h (the episode then opens without
 * one). The episode closes only when the level has been back at or above
 * low_fuel_pct + low_fuel_rearm_pct for low_fuel_rearm_hold_s (a plausible
 * refuel: the tank stays full), so a level wobbling around the threshold, or
 * swinging between empty and full, gives one offer, not one per swing.
 * Episodes are persisted: a restart, a redelivered batch or an old batch
 * arriving late issues nothing new. An episode opens in one atomic
 * statement (INSERT ... ON CONFLICT DO UPDATE ... WHERE closed RETURNING),
 * so with several gateway instances on one database exactly one of them
 * opens it and issues the offer.
 */
#ifndef PITSTOP_GATEWAY_RULES_H
#define PITSTOP_GATEWAY_RULES_H

#include <stdint.h>

#include "codec.h"
#include "db.h"
#include "offer_log.h"
#include "telemetry.h"

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
	int offers_per_day_max; /* > 0: at most this many offers per car per 24 h; 0: no cap */
};

/*
 * Receives an offer a rule decided on, before it is recorded. The sink
 * encodes, signs and queues it for publishing after the transaction
 * commits. Returns 0, or -errno when the offer cannot be built (the rule then
 * records nothing and tries again with the next batch).
 */
typedef int (*rules_offer_fn)(void *arg, const struct offer *o);

struct rules;

/*
 * Creates the rule set on db (borrowed, migrated with offers_migrations);
 * offers are recorded through log (borrowed) and handed to sink with arg.
 * Returns 0 and *ret_rules, or -EINVAL (bad config), -ENOMEM, -errno.
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

#endif
