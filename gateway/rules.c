/*
 * Rules; see rules.h. Thresholds are compared in the protocol's unit (fuel
 * in 0.1 %), so no floating point is involved.
 */
#include "rules.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "offers.h"

#define DEFAULT_RADIUS_M 20000

struct rules {
	struct rules_config conf;
	struct store *store; /* borrowed */
	rules_offer_fn sink;
	void *arg;
};

int rules_new(const struct rules_config *conf, struct store *store, rules_offer_fn sink, void *arg,
	      struct rules **ret_rules)
{
	struct rules *r;

	if (conf->low_fuel_pct < 0 || conf->low_fuel_pct > 100 || conf->low_fuel_rearm_pct < 0 ||
	    conf->offer_valid_s <= 0 || !sink)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->conf = *conf;
	if (!r->conf.offer_radius_m)
		r->conf.offer_radius_m = DEFAULT_RADIUS_M;
	r->store = store;
	r->sink = sink;
	r->arg = arg;
	*ret_rules = r;
	return 0;
}

void rules_free(struct rules *r)
{
	free(r);
}

/* Fills o with the REFUEL offer for vehicle v. Returns 0 or -errno. */
static int build_refuel_offer(const struct rules *r, const struct store_vehicle *v, int64_t now_ms,
			      struct offer *o)
{
	int ret;

	memset(o, 0, sizeof(*o));
	ret = offers_new_id(o->id);
	if (ret < 0)
		return ret;
	ret = offers_promo_code("FUEL-", 6, o->promo_code, sizeof(o->promo_code));
	if (ret < 0)
		return ret;
	o->kind = OFFER_REFUEL;
	snprintf(o->title, sizeof(o->title), "Fuel low: save at a partner station");
	snprintf(o->body, sizeof(o->body),
		 "Your tank is at %d%%. Show code %s at a partner station nearby "
		 "for a discount on your next fill-up.",
		 v->fuel_permille / 10, o->promo_code);
	o->valid_from_ms = now_ms;
	o->valid_until_ms = now_ms + (int64_t)r->conf.offer_valid_s * 1000;
	if (v->present & SAMPLE_POSITION) {
		o->has_area = 1;
		o->area_lat_e7 = v->lat_e7;
		o->area_lon_e7 = v->lon_e7;
		o->area_radius_m = r->conf.offer_radius_m;
	}
	snprintf(o->vin, sizeof(o->vin), "%s", v->vin);
	return 0;
}

/* The low-fuel rule. Returns 1 if it issued an offer, 0, or -errno. */
static int low_fuel(struct rules *r, const char *vin, int64_t now_ms)
{
	const struct store_ops *ops = r->store->ops;
	int32_t low = r->conf.low_fuel_pct * 10;
	int32_t rearm = (r->conf.low_fuel_pct + r->conf.low_fuel_rearm_pct) * 10;
	struct store_vehicle v;
	struct offer o;
	int open = 0, ret;

	ret = ops->vehicle_get(r->store, vin, &v);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	if (!(v.present & SAMPLE_FUEL))
		return 0;
	ret = ops->episode_get(r->store, vin, RULES_LOW_FUEL, &open);
	if (ret < 0)
		return ret;
	if (open) {
		if (v.fuel_permille >= rearm) {
			log_debug("rules: %s low-fuel episode closed at %d permille", vin,
				  v.fuel_permille);
			return ops->episode_set(r->store, vin, RULES_LOW_FUEL, 0, now_ms);
		}
		return 0;
	}
	if (v.fuel_permille > low)
		return 0;

	ret = build_refuel_offer(r, &v, now_ms, &o);
	if (ret == 0)
		ret = r->sink(r->arg, &o);
	if (ret < 0) {
		/* Nothing recorded: the next batch tries again. */
		log_warn("rules: could not build a low-fuel offer: %s", strerror(-ret));
		return 0;
	}
	ret = ops->offer_put(r->store, &o, now_ms);
	if (ret < 0)
		return ret;
	ret = ops->episode_set(r->store, vin, RULES_LOW_FUEL, 1, now_ms);
	if (ret < 0)
		return ret;
	log_debug("rules: %s low fuel (%d permille): offer %s", vin, v.fuel_permille, o.id);
	return 1;
}

int rules_after_batch(struct rules *r, const char *vin, int64_t now_ms)
{
	return low_fuel(r, vin, now_ms);
}
