/*
 * Business rules that turn stored telemetry into offers. Each rule reads the
 * vehicle's latest state and its own episode state through the store
 * interface and hands the offers it decides on to an offer sink; it knows
 * nothing about SQL, MQTT, encoding or signing, so it is tested with a plain
 * SQLite file and a sink that just records.
 *
 * Low fuel (the first rule): when the latest fuel level (by sample time) is
 * at or below low_fuel_pct and no low-fuel episode is open for the car, the
 * rule opens one and issues one REFUEL offer. The episode closes only when
 * the level is back at or above low_fuel_pct + low_fuel_rearm_pct, so a
 * level wobbling around the threshold gives one offer, not one per wobble.
 * Episodes are persisted: a restart, a redelivered batch or an old batch
 * arriving late issues nothing new.
 */
#ifndef PITSTOP_GATEWAY_RULES_H
#define PITSTOP_GATEWAY_RULES_H

#include <stdint.h>

#include "codec.h"
#include "store.h"

/* The name of the low-fuel episode in the store. */
#define RULES_LOW_FUEL "low_fuel"

struct rules_config {
	int low_fuel_pct;	 /* 0..100: offer at or below this level */
	int low_fuel_rearm_pct;	 /* >= 0: close the episode this far above it */
	int offer_valid_s;	 /* > 0: how long an offer is valid */
	uint32_t offer_radius_m; /* 0 = 20 km */
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
 * Creates the rule set. store is borrowed; the sink is called with arg.
 * Returns 0 and *ret_rules, or -EINVAL (bad config), -ENOMEM.
 */
int rules_new(const struct rules_config *conf, struct store *store, rules_offer_fn sink, void *arg,
	      struct rules **ret_rules);

void rules_free(struct rules *r);

/*
 * Runs every rule for vin after one of its batches was stored, inside the
 * caller's transaction (episode changes and offer records are written
 * there). now_ms is wall-clock time for valid_from. Returns the number of
 * offers issued, or -errno from the store (the caller rolls back).
 */
int rules_after_batch(struct rules *r, const char *vin, int64_t now_ms);

#endif
