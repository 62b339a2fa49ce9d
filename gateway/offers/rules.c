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

enum stmt_id {
	ST_OPEN,
	ST_CLOSE,
	ST_COUNT,
};

/* clang-format off */
static const char *const stmt_sql[ST_COUNT] = {
	/* A row comes back only when this call opened the episode. */
	[ST_OPEN] =
		"INSERT INTO offer_episodes AS e(vin, rule, open, changed_ms) VALUES($1, $2, 1, $3)"
		" ON CONFLICT(vin, rule) DO UPDATE SET open = 1, changed_ms = excluded.changed_ms"
		" WHERE e.open = 0 RETURNING open",
	[ST_CLOSE] =
		"UPDATE offer_episodes SET open = 0, changed_ms = $3"
		" WHERE vin = $1 AND rule = $2 AND open = 1 RETURNING open",
};
/* clang-format on */

/* Closing many episodes at once: the vehicles are the rows of an IN list. */
static const char close_many_head[] = "UPDATE offer_episodes SET open = 0, changed_ms = $1"
				      " WHERE rule = $2 AND open = 1 AND vin IN (";
static const char close_many_tail[] = ") RETURNING vin";

struct rules {
	struct rules_config conf;
	struct offer_log *log;	      /* borrowed */
	struct db *db;		      /* borrowed */
	struct db_stmt *st[ST_COUNT]; /* owned */
	struct db_rows close_many;    /* owned statements */
	rules_offer_fn sink;
	void *arg;
};

int rules_new(const struct rules_config *conf, struct db *db, struct offer_log *log,
	      rules_offer_fn sink, void *arg, struct rules **ret_rules)
{
	struct rules *r;
	int ret;

	if (conf->low_fuel_pct < 0 || conf->low_fuel_pct > 100 || conf->low_fuel_rearm_pct < 0 ||
	    conf->offer_valid_s <= 0 || !sink)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->conf = *conf;
	if (!r->conf.offer_radius_m)
		r->conf.offer_radius_m = DEFAULT_RADIUS_M;
	r->log = log;
	r->db = db;
	r->close_many = (struct db_rows){
		.head = close_many_head, .tail = close_many_tail, .first = 3, .ncols = 1
	};
	r->sink = sink;
	r->arg = arg;
	for (int i = 0; i < ST_COUNT; i++) {
		ret = db_prepare(db, stmt_sql[i], &r->st[i]);
		if (ret < 0) {
			rules_free(r);
			return ret;
		}
	}
	*ret_rules = r;
	return 0;
}

void rules_free(struct rules *r)
{
	if (!r)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		db_finalize(r->st[i]);
	db_rows_free(&r->close_many);
	free(r);
}

/*
 * Opens (ST_OPEN) or closes (ST_CLOSE) an episode. Returns 1 when this call
 * changed it, 0 when it already was so, or an error class.
 */
static int episode(struct rules *r, enum stmt_id id, const char *vin, const char *rule,
		   int64_t now_ms)
{
	struct db_stmt *st = r->st[id];
	int ret;

	db_bind_text(st, 1, vin);
	db_bind_text(st, 2, rule);
	db_bind_int64(st, 3, now_ms);
	ret = db_step(st);
	db_reset(st);
	return ret;
}

/* Fills o with the REFUEL offer for vehicle v. Returns 0 or -errno. */
static int build_refuel_offer(const struct rules *r, const struct telemetry_vehicle *v,
			      int64_t now_ms, struct offer *o)
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

/* The fuel levels (0.1 %) the low-fuel rule opens at and re-arms at. */
static int32_t low_level(const struct rules *r)
{
	return r->conf.low_fuel_pct * 10;
}

static int32_t rearm_level(const struct rules *r)
{
	return (r->conf.low_fuel_pct + r->conf.low_fuel_rearm_pct) * 10;
}

/*
 * Opens v's low-fuel episode and issues its offer. Returns 1 if it issued
 * one, 0 (already open, or the offer could not be built: the episode is
 * closed again in the same transaction, so the next batch tries again), or
 * an error class. The episode is opened first, atomically: only the
 * instance whose statement opened it builds and records the offer.
 */
static int low_fuel_open(struct rules *r, const struct telemetry_vehicle *v, int64_t now_ms)
{
	struct offer o;
	int ret = episode(r, ST_OPEN, v->vin, RULES_LOW_FUEL, now_ms);

	if (ret <= 0)
		return ret; /* 0: already open */
	ret = build_refuel_offer(r, v, now_ms, &o);
	if (ret == 0)
		ret = r->sink(r->arg, &o);
	if (ret < 0) {
		log_warn("rules: could not build a low-fuel offer: %s", strerror(-ret));
		ret = episode(r, ST_CLOSE, v->vin, RULES_LOW_FUEL, now_ms);
		return ret < 0 ? ret : 0;
	}
	ret = offer_log_put(r->log, &o, now_ms);
	if (ret < 0)
		return ret;
	log_debug("rules: %s low fuel (%d permille): offer %s", v->vin, v->fuel_permille, o.id);
	return 1;
}

/* Closes the low-fuel episodes of vins[0..n), DB_ROWS_MAX per statement. */
static int low_fuel_close(struct rules *r, const char *const *vins, size_t n, int64_t now_ms)
{
	for (size_t done = 0; done < n;) {
		struct db_stmt *st;
		size_t rows;
		int ret = db_rows_get(r->db, &r->close_many, n - done, &st, &rows);

		if (ret < 0)
			return ret;
		db_bind_int64(st, 1, now_ms);
		db_bind_text(st, 2, RULES_LOW_FUEL);
		for (size_t k = 0; k < rows; k++)
			db_bind_text(st, 3 + (int)k, vins[done + k]);
		while ((ret = db_step(st)) == 1)
			log_debug("rules: %s low-fuel episode closed", db_column_text(st, 0));
		db_reset(st);
		if (ret < 0)
			return ret;
		done += rows;
	}
	return 0;
}

int rules_after_batches(struct rules *r, const struct telemetry_vehicle *v, size_t n,
			int64_t now_ms)
{
	const char *close[DB_ROWS_MAX];
	size_t nclose = 0;
	int issued = 0, ret;

	for (size_t i = 0; i < n; i++) {
		if (!(v[i].present & SAMPLE_FUEL))
			continue;
		if (v[i].fuel_permille >= rearm_level(r)) {
			close[nclose++] = v[i].vin;
			if (nclose == DB_ROWS_MAX) {
				ret = low_fuel_close(r, close, nclose, now_ms);
				if (ret < 0)
					return ret;
				nclose = 0;
			}
		} else if (v[i].fuel_permille <= low_level(r)) {
			ret = low_fuel_open(r, &v[i], now_ms);
			if (ret < 0)
				return ret;
			issued += ret;
		}
	}
	ret = low_fuel_close(r, close, nclose, now_ms);
	return ret < 0 ? ret : issued;
}

int rules_after_batch(struct rules *r, const struct telemetry_vehicle *v, int64_t now_ms)
{
	return rules_after_batches(r, v, 1, now_ms);
}
