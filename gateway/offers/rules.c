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
/*
 * The re-arm level was seen ($1 = now): note since when, and close the
 * episodes where it has held since $3 (= now - hold) or longer.
 */
static const char close_many_head[] =
	"UPDATE offer_episodes SET"
	" open = CASE WHEN COALESCE(high_since_ms, $1) <= $3 THEN 0 ELSE 1 END,"
	" high_since_ms = CASE WHEN COALESCE(high_since_ms, $1) <= $3 THEN NULL"
	" ELSE COALESCE(high_since_ms, $1) END, changed_ms = $1"
	" WHERE rule = $2 AND open = 1 AND vin IN (";
static const char close_many_tail[] = ") RETURNING vin, open";
/* The level fell below re-arm again: the hold starts over. */
static const char unhold_head[] =
	"UPDATE offer_episodes SET high_since_ms = NULL"
	" WHERE rule = $1 AND open = 1 AND high_since_ms IS NOT NULL AND vin IN (";
static const char unhold_tail[] = ")";

struct rules {
	struct rules_config conf;
	struct offer_log *log;	      /* borrowed */
	struct db *db;		      /* borrowed */
	struct db_stmt *st[ST_COUNT]; /* owned */
	struct db_rows close_many;    /* owned statements */
	struct db_rows unhold;	      /* owned statements */
	rules_offer_fn sink;
	void *arg;
};

int rules_new(const struct rules_config *conf, struct db *db, struct offer_log *log,
	      rules_offer_fn sink, void *arg, struct rules **ret_rules)
{
	struct rules *r;
	int ret;

	if (conf->low_fuel_pct < 0 || conf->low_fuel_pct > 100 || conf->low_fuel_rearm_pct < 0 ||
	    conf->offer_valid_s <= 0 || conf->low_fuel_rearm_hold_s < 0 ||
	    conf->offers_per_day_max < 0 || !sink)
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
		.head = close_many_head, .tail = close_many_tail, .first = 4, .ncols = 1
	};
	r->unhold = (struct db_rows){
		.head = unhold_head, .tail = unhold_tail, .first = 2, .ncols = 1
	};
	r->sink = sink;
	r->arg = arg;
	ret = db_prepare_all(db, stmt_sql, ST_COUNT, r->st);
	if (ret < 0) {
		rules_free(r);
		return ret;
	}
	*ret_rules = r;
	return 0;
}

void rules_free(struct rules *r)
{
	if (!r)
		return;
	db_finalize_all(r->st, ST_COUNT);
	db_rows_free(&r->close_many);
	db_rows_free(&r->unhold);
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
		 "Your tank is at %d.%d %%. Show code %s at a partner station nearby "
		 "for a discount on your next fill-up.",
		 v->fuel_permille / 10, v->fuel_permille % 10, o->promo_code);
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
	if (r->conf.offers_per_day_max) {
		ret = offer_log_count_since(r->log, v->vin, now_ms - 86400000LL);
		if (ret < 0)
			return ret;
		if (ret >= r->conf.offers_per_day_max) {
			log_info("rules: %s is low on fuel but got %d offers in 24 h: none sent",
				 v->vin, ret);
			return 0; /* the episode stays open: no offer until it re-arms */
		}
	}
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

/*
 * Runs rs over vins[0..n), DB_ROWS_MAX a statement: close (the re-arm level
 * is seen: close where it held long enough) or unhold (it is not: start the
 * hold over).
 */
static int for_vins(struct rules *r, struct db_rows *rs, const char *const *vins, size_t n,
		    int64_t now_ms)
{
	int close = rs == &r->close_many;

	for (size_t done = 0; done < n;) {
		struct db_stmt *st;
		size_t rows;
		int ret = db_rows_get(r->db, rs, n - done, &st, &rows);

		if (ret < 0)
			return ret;
		if (close) {
			db_bind_int64(st, 1, now_ms);
			db_bind_text(st, 2, RULES_LOW_FUEL);
			db_bind_int64(st, 3,
				      now_ms - (int64_t)r->conf.low_fuel_rearm_hold_s * 1000);
		} else {
			db_bind_text(st, 1, RULES_LOW_FUEL);
		}
		for (size_t k = 0; k < rows; k++)
			db_bind_text(st, rs->first + (int)k, vins[done + k]);
		while ((ret = db_step(st)) == 1)
			if (close && db_column_int64(st, 1) == 0)
				log_debug("rules: %s low-fuel episode closed",
					  db_column_text(st, 0));
		db_reset(st);
		if (ret < 0)
			return ret;
		done += rows;
	}
	return 0;
}

/* Collects vin into list (DB_ROWS_MAX), running rs when it is full. */
static int add_vin(struct rules *r, struct db_rows *rs, const char **list, size_t *n,
		   const char *vin, int64_t now_ms)
{
	int ret = 0;

	list[(*n)++] = vin;
	if (*n == DB_ROWS_MAX) {
		ret = for_vins(r, rs, list, *n, now_ms);
		*n = 0;
	}
	return ret;
}

int rules_after_batches(struct rules *r, const struct telemetry_vehicle *v, size_t n,
			int64_t now_ms)
{
	const char *close[DB_ROWS_MAX], *unhold[DB_ROWS_MAX];
	size_t nclose = 0, nunhold = 0;
	int issued = 0, ret = 0;

	for (size_t i = 0; i < n && ret >= 0; i++) {
		if (!(v[i].present & SAMPLE_FUEL))
			continue;
		if (v[i].fuel_permille >= rearm_level(r)) {
			ret = add_vin(r, &r->close_many, close, &nclose, v[i].vin, now_ms);
			continue;
		}
		if (r->conf.low_fuel_rearm_hold_s)
			ret = add_vin(r, &r->unhold, unhold, &nunhold, v[i].vin, now_ms);
		if (ret >= 0 && v[i].fuel_permille <= low_level(r)) {
			ret = low_fuel_open(r, &v[i], now_ms);
			if (ret > 0)
				issued += ret;
		}
	}
	if (ret >= 0)
		ret = for_vins(r, &r->close_many, close, nclose, now_ms);
	if (ret >= 0)
		ret = for_vins(r, &r->unhold, unhold, nunhold, now_ms);
	return ret < 0 ? ret : issued;
}

int rules_after_batch(struct rules *r, const struct telemetry_vehicle *v, int64_t now_ms)
{
	return rules_after_batches(r, v, 1, now_ms);
}
