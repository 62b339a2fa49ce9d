/*
 * The promotion engine; see rules.h. Thresholds are compared in the
 * protocol's units (fuel in 0.1 %). Per batch and vehicle the cost is what
 * the triggers need: fuel_below compares in memory, the profile is read
 * (one prepared SELECT) only when a trigger fires or service_due needs the
 * dealer, POIs are queried only by poi_enter, by a slow car for
 * driven_since_visit, and for the station of an offer about to be sent.
 *
 * Local time (quiet hours, caps per local day and week) comes from
 * common/localtz.h, on the loop thread.
 */
#include "rules.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "accounts.h"
#include "geo.h"
#include "localtz.h"
#include "log.h"
#include "offers.h"
#include "poi.h"
#include "profiles.h"
#include "service.h"

#define DEFAULT_RADIUS_M 20000
#define STATION_HITS 64		  /* POIs looked at for one station choice */
#define CODE_CLAIM_TRIES 16	  /* a code taken by another instance meanwhile: next */
#define HEADING_MIN_SPEED_CMS 200 /* slower than this, the heading says nothing */
#define CAP_KEEP_MS (9 * 86400000LL)

enum reason {
#define X(id, name) R_##id,
	RULES_SUPPRESSIONS(X)
#undef X
		R_COUNT
};

static const char *const reason_names[R_COUNT] = {
#define X(id, name) name,
	RULES_SUPPRESSIONS(X)
#undef X
};

enum stmt_id {
	ST_OPEN,
	ST_CLOSE,
	ST_SUPPRESS,
	ST_CAP_CLAIM,
	ST_CAP_UNDO,
	ST_COOL_CLAIM,
	ST_COOL_UNDO_NEW,
	ST_COOL_UNDO,
	ST_CODE_CLAIM,
	ST_CODE_ANY,
	ST_CODE_FREE,
	ST_CODE_GEN,
	ST_CODE_DROP,
	ST_CODE_COUNT,
	ST_VISIT_GET,
	ST_VISIT_SET,
	ST_VISIT_FIRST,
	ST_COUNT,
};

/* clang-format off */
static const char *const stmt_sql[ST_COUNT] = {
	/* A row comes back only when this call opened the episode. */
	[ST_OPEN] =
		"INSERT INTO offer_episodes AS e(vin, rule, open, changed_ms) VALUES($1, $2, 1, $3)"
		" ON CONFLICT(vin, rule) DO UPDATE SET open = 1, changed_ms = excluded.changed_ms,"
		" high_since_ms = NULL WHERE e.open = 0 RETURNING open",
	[ST_CLOSE] =
		"UPDATE offer_episodes SET open = 0, changed_ms = $3"
		" WHERE vin = $1 AND rule = $2 AND open = 1 RETURNING open",
	/* One row per vehicle, rule and reason an hour. */
	[ST_SUPPRESS] =
		"INSERT INTO promo_suppressed(vin, rule, reason, hour, time_ms, detail)"
		" VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
	/* A row comes back only while the count is below the cap. */
	[ST_CAP_CLAIM] =
		"INSERT INTO promo_caps AS c(vin, period, n, until_ms) VALUES($1, $2, 1, $4)"
		" ON CONFLICT(vin, period) DO UPDATE SET n = c.n + 1 WHERE c.n < $3 RETURNING n",
	[ST_CAP_UNDO] =
		"UPDATE promo_caps SET n = n - 1 WHERE vin = $1 AND period = $2 AND n > 0",
	/* A row comes back only when the last offer is at least the cooldown ago ($4). */
	[ST_COOL_CLAIM] =
		"INSERT INTO promo_cooldowns AS c(vin, rule, last_ms, prev_ms) VALUES($1, $2, $3, NULL)"
		" ON CONFLICT(vin, rule) DO UPDATE SET prev_ms = c.last_ms, last_ms = excluded.last_ms"
		" WHERE c.last_ms <= $4 RETURNING last_ms",
	[ST_COOL_UNDO_NEW] =
		"DELETE FROM promo_cooldowns WHERE vin = $1 AND rule = $2 AND last_ms = $3"
		" AND prev_ms IS NULL",
	[ST_COOL_UNDO] =
		"UPDATE promo_cooldowns SET last_ms = prev_ms, prev_ms = NULL"
		" WHERE vin = $1 AND rule = $2 AND last_ms = $3 AND prev_ms IS NOT NULL",
	/* Another instance may take the same code first: 0 rows, try again. */
	[ST_CODE_CLAIM] =
		"UPDATE promo_codes SET state = 'used', vin = $2, claimed_ms = $3"
		" WHERE code = (SELECT code FROM promo_codes WHERE rule = $1 AND state = 'free'"
		" ORDER BY code LIMIT 1) AND state = 'free' RETURNING code",
	[ST_CODE_ANY] =
		"SELECT code FROM promo_codes WHERE rule = $1 AND state = 'free' LIMIT 1",
	[ST_CODE_FREE] =
		"UPDATE promo_codes SET state = 'free', vin = NULL, claimed_ms = NULL WHERE code = $1",
	[ST_CODE_GEN] =
		"INSERT INTO promo_codes(code, rule, state, vin, claimed_ms)"
		" VALUES($1, $2, 'used', $3, $4) ON CONFLICT(code) DO NOTHING RETURNING code",
	[ST_CODE_DROP] = "DELETE FROM promo_codes WHERE code = $1",
	[ST_CODE_COUNT] = "SELECT COUNT(*) FROM promo_codes WHERE rule = $1",
	[ST_VISIT_GET] =
		"SELECT odometer_m FROM promo_visits WHERE vin = $1 AND category = $2",
	[ST_VISIT_SET] =
		"INSERT INTO promo_visits(vin, category, odometer_m, time_ms) VALUES($1, $2, $3, $4)"
		" ON CONFLICT(vin, category) DO UPDATE SET odometer_m = excluded.odometer_m,"
		" time_ms = excluded.time_ms",
	[ST_VISIT_FIRST] =
		"INSERT INTO promo_visits(vin, category, odometer_m, time_ms) VALUES($1, $2, $3, $4)"
		" ON CONFLICT(vin, category) DO NOTHING",
};
/* clang-format on */

/*
 * Closing many episodes at once: the vehicles are the rows of an IN list.
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
/* A code file's codes into the pool. */
static const char codes_head[] = "INSERT INTO promo_codes(code, rule) VALUES";
static const char codes_tail[] = " ON CONFLICT(code) DO NOTHING";

/* Per rule: the vehicles of this call whose episodes to close or unhold. */
struct rule_state {
	const struct promo_rule *pr; /* borrowed from the set */
	const char *close[DB_ROWS_MAX];
	size_t nclose;
	const char *unhold[DB_ROWS_MAX];
	size_t nunhold;
};

struct rules {
	struct rules_config conf;
	const struct promo_rules *set; /* borrowed, or own_set */
	struct promo_rules *own_set;   /* owned: the built-in rule */
	struct rule_state *rs;	       /* owned, one per rule */
	struct offer_log *log;	       /* borrowed */
	struct db *db;		       /* borrowed */
	struct profiles *profiles;     /* owned */
	struct db_stmt *st[ST_COUNT];  /* owned */
	struct db_rows close_many;     /* owned statements */
	struct db_rows unhold;	       /* owned statements */
	rules_offer_fn sink;
	void *arg;
	struct localtz_cache tz;	   /* the vehicles' zones' offsets */
	struct poi_ref hits[STATION_HITS]; /* scratch: poi_near_ids() */
	struct service_prediction pred;	   /* scratch */
};

/* What is known of the vehicle being evaluated, read once per batch when needed. */
struct vctx {
	const struct telemetry_vehicle *v;
	int have_profile;
	struct profile prof;
	int have_fleet;
	char fleet[ACCOUNTS_NAME_MAX + 1]; /* "" none */
};

/* An offer about to be issued: its claims, to undo, and its facts. */
struct pending {
	const struct promo_rule *pr;
	int has_poi;
	struct poi poi;
	double distance_m;
	char cool;	   /* claimed the cooldown */
	char day, week;	   /* claimed a cap */
	char code_claimed; /* claimed code */
	char day_key[24], week_key[24];
	char code[CODEC_MAX_PROMO];
	int due_days;	  /* service_due: days left */
	int64_t driven_m; /* driven_since_visit */
};

/* ---- the built-in rule --------------------------------------------------- */

static int builtin_set(const struct rules_config *conf, struct promo_rules **ret)
{
	struct promo_rules *s = calloc(1, sizeof(*s));
	struct promo_rule *r;

	if (!s)
		return -ENOMEM;
	s->rules = calloc(1, sizeof(*s->rules));
	if (!s->rules) {
		free(s);
		return -ENOMEM;
	}
	s->n = 1;
	s->limits.per_day = conf->offers_per_day_max;
	snprintf(s->limits.time_zone, sizeof(s->limits.time_zone), "UTC");
	r = &s->rules[0];
	snprintf(r->name, sizeof(r->name), "%s", RULES_LOW_FUEL);
	r->trigger = PROMO_FUEL_BELOW;
	r->fuel_pct = conf->low_fuel_pct;
	r->rearm_pct = conf->low_fuel_rearm_pct;
	r->rearm_hold_ms = (int64_t)conf->low_fuel_rearm_hold_s * 1000;
	r->ahead_deg = PROMO_DEFAULT_AHEAD_DEG;
	r->kind = OFFER_REFUEL;
	snprintf(r->title, sizeof(r->title), "Fuel low: save at a partner station");
	snprintf(r->body, sizeof(r->body),
		 "Your tank is at {fuel_pct} %%. Show code {code} at a partner station nearby "
		 "for a discount on your next fill-up.");
	r->codes_mode = PROMO_CODES_GENERATE;
	snprintf(r->code_prefix, sizeof(r->code_prefix), "FUEL-");
	r->code_len = 6;
	r->valid_for_ms = (int64_t)conf->offer_valid_s * 1000;
	r->area_radius_m = conf->offer_radius_m ? conf->offer_radius_m : DEFAULT_RADIUS_M;
	*ret = s;
	return 0;
}

/* ---- set-up -------------------------------------------------------------- */

/* Adds rule pr's code file codes to the pool unless it holds as many already. */
static int load_pool(struct rules *r, const struct promo_rule *pr)
{
	struct db_rows rows = { .head = codes_head, .tail = codes_tail, .first = 1, .ncols = 2 };
	struct db_stmt *st = r->st[ST_CODE_COUNT];
	int64_t have = 0;
	int ret;

	db_bind_text(st, 1, pr->name);
	ret = db_step(st);
	if (ret == 1)
		have = db_column_int64(st, 0);
	db_reset(st);
	if (ret < 0 || have >= (int64_t)pr->ncodes)
		return ret < 0 ? ret : 0;
	for (size_t done = 0; done < pr->ncodes && ret >= 0;) {
		size_t n;

		ret = db_rows_get(r->db, &rows, pr->ncodes - done, &st, &n);
		if (ret < 0)
			break;
		for (size_t k = 0; k < n; k++) {
			db_bind_text(st, 1 + 2 * (int)k, pr->codes[done + k]);
			db_bind_text(st, 2 + 2 * (int)k, pr->name);
		}
		ret = db_run(st);
		done += n;
	}
	db_rows_free(&rows);
	if (ret >= 0)
		log_info("rules: rule %s: %zu codes from %s in the pool", pr->name, pr->ncodes,
			 pr->code_file);
	return ret;
}

static int load_pools(struct rules *r)
{
	int own = !db_in_tx(r->db), ret = 0;

	for (size_t i = 0; i < r->set->n && ret >= 0; i++) {
		if (r->set->rules[i].codes_mode != PROMO_CODES_FILE)
			continue;
		if (own && !db_in_tx(r->db))
			ret = db_begin(r->db);
		if (ret >= 0)
			ret = load_pool(r, &r->set->rules[i]);
	}
	if (own && db_in_tx(r->db)) {
		if (ret >= 0)
			ret = db_commit(r->db);
		if (ret < 0)
			db_rollback(r->db);
	}
	return ret;
}

int rules_new(const struct rules_config *conf, struct db *db, struct offer_log *log,
	      rules_offer_fn sink, void *arg, struct rules **ret_rules)
{
	struct rules *r;
	int ret;

	if (!sink)
		return -EINVAL;
	if (!conf->set && (conf->low_fuel_pct < 0 || conf->low_fuel_pct > 100 ||
			   conf->low_fuel_rearm_pct < 0 || conf->offer_valid_s <= 0 ||
			   conf->low_fuel_rearm_hold_s < 0 || conf->offers_per_day_max < 0))
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->conf = *conf;
	r->log = log;
	r->db = db;
	r->sink = sink;
	r->arg = arg;
	r->close_many = (struct db_rows){
		.head = close_many_head, .tail = close_many_tail, .first = 4, .ncols = 1
	};
	r->unhold = (struct db_rows){
		.head = unhold_head, .tail = unhold_tail, .first = 2, .ncols = 1
	};
	ret = conf->set ? 0 : builtin_set(conf, &r->own_set);
	r->set = conf->set ? conf->set : r->own_set;
	if (ret == 0) {
		r->rs = calloc(r->set->n ? r->set->n : 1, sizeof(*r->rs));
		ret = r->rs ? 0 : -ENOMEM;
	}
	for (size_t i = 0; ret == 0 && i < r->set->n; i++)
		r->rs[i].pr = &r->set->rules[i];
	if (ret == 0)
		ret = db_prepare_all(db, stmt_sql, ST_COUNT, r->st);
	if (ret == 0)
		ret = profiles_new(db, &r->profiles);
	if (ret == 0)
		ret = load_pools(r);
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
	profiles_free(r->profiles);
	promo_rules_free(r->own_set);
	free(r->rs);
	free(r);
}

const struct promo_rules *rules_set(const struct rules *r)
{
	return r->set;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* ---- episodes and lists -------------------------------------------------- */

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

/*
 * Runs close or unhold over vins[0..n) of rule s, DB_ROWS_MAX a statement:
 * close (the re-arm level is seen, or the car left: close where the hold
 * passed) or unhold (it is not: start the hold over).
 */
static int for_vins(struct rules *r, struct rule_state *s, int close, const char *const *vins,
		    size_t n, int64_t now_ms)
{
	struct db_rows *rs = close ? &r->close_many : &r->unhold;

	for (size_t done = 0; done < n;) {
		struct db_stmt *st;
		size_t rows;
		int ret = db_rows_get(r->db, rs, n - done, &st, &rows);

		if (ret < 0)
			return ret;
		if (close) {
			db_bind_int64(st, 1, now_ms);
			db_bind_text(st, 2, s->pr->name);
			db_bind_int64(st, 3, now_ms - s->pr->rearm_hold_ms);
		} else {
			db_bind_text(st, 1, s->pr->name);
		}
		for (size_t k = 0; k < rows; k++)
			db_bind_text(st, rs->first + (int)k, vins[done + k]);
		while ((ret = db_step(st)) == 1)
			if (close && db_column_int64(st, 1) == 0)
				log_debug("rules: %s %s episode closed", db_column_text(st, 0),
					  s->pr->name);
		db_reset(st);
		if (ret < 0)
			return ret;
		done += rows;
	}
	return 0;
}

/* Notes vin to close (or unhold), running the list when it is full. */
static int add_vin(struct rules *r, struct rule_state *s, int close, const char *vin,
		   int64_t now_ms)
{
	const char **list = close ? s->close : s->unhold;
	size_t *n = close ? &s->nclose : &s->nunhold;
	int ret = 0;

	list[(*n)++] = vin;
	if (*n == DB_ROWS_MAX) {
		ret = for_vins(r, s, close, list, *n, now_ms);
		*n = 0;
	}
	return ret;
}

/* ---- what is known of the vehicle ---------------------------------------- */

static int profile_of(struct rules *r, struct vctx *c)
{
	int ret;

	if (c->have_profile)
		return 0;
	ret = profiles_get(r->profiles, c->v->vin, &c->prof);
	if (ret < 0)
		return ret;
	c->have_profile = 1;
	return 0;
}

static int fleet_of(struct rules *r, struct vctx *c)
{
	struct accounts_fleet f;
	int64_t id = 0;
	int ret;

	if (c->have_fleet)
		return 0;
	c->fleet[0] = '\0';
	if (r->conf.accounts) {
		ret = accounts_fleet_of_vin(r->conf.accounts, c->v->vin, &id);
		if (ret < 0)
			return ret;
		if (ret == 1) {
			ret = accounts_fleet_get_id(r->conf.accounts, id, &f);
			if (ret < 0 && ret != -ENOENT)
				return ret;
			if (ret == 0)
				snprintf(c->fleet, sizeof(c->fleet), "%s", f.name);
		}
	}
	c->have_fleet = 1;
	return 0;
}

static int in_names(const struct promo_names *l, const char *s)
{
	if (!l->n)
		return 1;
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->name[i], s) == 0)
			return 1;
	return 0;
}

/* 1 if the vehicle is in pr's audience, 0 if not, or an error class. */
static int audience(struct rules *r, const struct promo_rule *pr, struct vctx *c)
{
	int ret;

	if (pr->makes.n || pr->models.n) {
		ret = profile_of(r, c);
		if (ret < 0)
			return ret;
		if (!in_names(&pr->makes, c->prof.make) || !in_names(&pr->models, c->prof.model))
			return 0;
	}
	if (pr->fleets.n) {
		ret = fleet_of(r, c);
		if (ret < 0)
			return ret;
		if (!in_names(&pr->fleets, c->fleet))
			return 0;
	}
	return 1;
}

/* ---- claims and their undo ----------------------------------------------- */

static int suppress(struct rules *r, const struct promo_rule *pr, const char *vin, enum reason why,
		    int64_t now_ms, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int suppress(struct rules *r, const struct promo_rule *pr, const char *vin, enum reason why,
		    int64_t now_ms, const char *fmt, ...)
{
	struct db_stmt *st = r->st[ST_SUPPRESS];
	char detail[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	log_debug("rules: %s rule %s: no offer: %s (%s)", vin, pr->name, reason_names[why], detail);
	db_bind_text(st, 1, vin);
	db_bind_text(st, 2, pr->name);
	db_bind_text(st, 3, reason_names[why]);
	db_bind_int64(st, 4, floor_div(now_ms, 3600000));
	db_bind_int64(st, 5, now_ms);
	db_bind_text(st, 6, detail);
	return db_run(st);
}

/* Claims one of cap offers in period key. Returns 1 (claimed), 0 (at the cap), or an error. */
static int cap_claim(struct rules *r, const char *vin, const char *key, int cap, int64_t now_ms)
{
	struct db_stmt *st = r->st[ST_CAP_CLAIM];
	int ret;

	db_bind_text(st, 1, vin);
	db_bind_text(st, 2, key);
	db_bind_int64(st, 3, cap);
	db_bind_int64(st, 4, now_ms + CAP_KEEP_MS);
	ret = db_step(st);
	db_reset(st);
	return ret;
}

static int run2(struct rules *r, enum stmt_id id, const char *a, const char *b, int has_c,
		int64_t c)
{
	struct db_stmt *st = r->st[id];

	db_bind_text(st, 1, a);
	if (b)
		db_bind_text(st, 2, b);
	if (has_c)
		db_bind_int64(st, 3, c);
	return db_run(st);
}

/* Undoes every claim of p. Returns 0 or an error class. */
static int undo(struct rules *r, const char *vin, struct pending *p, int64_t now_ms)
{
	int ret = 0;

	if (p->code_claimed && ret >= 0) {
		struct db_stmt *st =
			r->st[p->pr->codes_mode == PROMO_CODES_FILE ? ST_CODE_FREE : ST_CODE_DROP];

		db_bind_text(st, 1, p->code);
		ret = db_run(st);
	}
	if (p->week && ret >= 0)
		ret = run2(r, ST_CAP_UNDO, vin, p->week_key, 0, 0);
	if (p->day && ret >= 0)
		ret = run2(r, ST_CAP_UNDO, vin, p->day_key, 0, 0);
	if (p->cool && ret >= 0)
		ret = run2(r, ST_COOL_UNDO_NEW, vin, p->pr->name, 1, now_ms);
	if (p->cool && ret >= 0)
		ret = run2(r, ST_COOL_UNDO, vin, p->pr->name, 1, now_ms);
	p->code_claimed = p->week = p->day = p->cool = 0;
	return ret;
}

/* Claims a code for p. Returns 1, 0 (the pool is empty), or an error class. */
static int code_claim(struct rules *r, const char *vin, struct pending *p, int64_t now_ms)
{
	const struct promo_rule *pr = p->pr;
	struct db_stmt *st;
	int ret;

	for (int i = 0; i < CODE_CLAIM_TRIES; i++) {
		if (pr->codes_mode == PROMO_CODES_GENERATE) {
			ret = offers_promo_code(pr->code_prefix, (size_t)pr->code_len, p->code,
						sizeof(p->code));
			if (ret < 0)
				return ret;
			st = r->st[ST_CODE_GEN];
			db_bind_text(st, 1, p->code);
			db_bind_text(st, 2, pr->name);
			db_bind_text(st, 3, vin);
			db_bind_int64(st, 4, now_ms);
			ret = db_step(st);
			db_reset(st);
		} else {
			st = r->st[ST_CODE_CLAIM];
			db_bind_text(st, 1, pr->name);
			db_bind_text(st, 2, vin);
			db_bind_int64(st, 3, now_ms);
			ret = db_step(st);
			if (ret == 1)
				db_column_copy(st, 0, p->code, sizeof(p->code));
			db_reset(st);
			if (ret == 0) { /* empty, or another instance took it meanwhile */
				st = r->st[ST_CODE_ANY];
				db_bind_text(st, 1, pr->name);
				ret = db_step(st);
				db_reset(st);
				if (ret <= 0)
					return ret;
				continue;
			}
		}
		if (ret != 0)
			return ret; /* 1, or an error */
	}
	return 0;
}

/* ---- station choice ------------------------------------------------------ */

/*
 * The full record of the hit the rule picked into ret (the one POI a
 * batch reads text for). Returns 1, 0 when it was deleted since the
 * index's last check (as if none were near), or an error class.
 */
static int take_poi(struct rules *r, const struct poi_ref *h, struct pending *ret)
{
	int n = poi_get_rowid(r->conf.poi, h->rid, &ret->poi);

	if (n == -ENOENT)
		return 0;
	if (n < 0)
		return n;
	ret->distance_m = h->distance_m;
	ret->has_poi = 1;
	return 1;
}

/*
 * The POI of category for vehicle v: within min(search radius, remaining
 * range), the nearest ahead of the car, else the nearest. Returns 1 with
 * *ret, 0 (none), or an error class.
 */
static int choose_station(struct rules *r, const struct promo_rule *pr,
			  const struct telemetry_vehicle *v, struct pending *ret)
{
	double radius = pr->search_radius_m, lat, lon, heading;
	int n, moving;

	if (!r->conf.poi || !(v->present & SAMPLE_POSITION))
		return 0;
	if (pr->range_km_full_tank && (v->present & SAMPLE_FUEL)) {
		double range_m =
			(double)v->fuel_permille * pr->range_km_full_tank; /* km*1000/1000 */

		if (range_m < radius)
			radius = range_m;
	}
	if (radius < 1)
		return 0;
	lat = geo_deg_of_e7(v->lat_e7);
	lon = geo_deg_of_e7(v->lon_e7);
	n = poi_near_ids(r->conf.poi, lat, lon, radius, pr->poi_category, r->hits, STATION_HITS);
	if (n <= 0)
		return n;
	moving = (v->present & SAMPLE_HEADING) &&
		 (!(v->present & SAMPLE_SPEED) || v->speed_cms >= HEADING_MIN_SPEED_CMS);
	heading = v->heading_cdeg / 100.0;
	for (int i = 0; moving && i < n; i++)
		if (geo_is_ahead(lat, lon, heading, r->hits[i].lat, r->hits[i].lon, pr->ahead_deg))
			return take_poi(r, &r->hits[i], ret);
	return take_poi(r, &r->hits[0], ret);
}

/* ---- the offer ----------------------------------------------------------- */

static int build_offer(const struct promo_rule *pr, const struct vctx *c, const struct pending *p,
		       int64_t now_ms, struct offer *o)
{
	const struct telemetry_vehicle *v = c->v;
	char dist[32] = "", fuel[32] = "", due[32] = "", driven[32] = "";
	struct promo_vars vars = { 0 };
	int ret;

	memset(o, 0, sizeof(*o));
	ret = offers_new_id(o->id);
	if (ret < 0)
		return ret;
	snprintf(o->promo_code, sizeof(o->promo_code), "%s", p->code);
	o->kind = pr->kind;
	if (p->has_poi)
		snprintf(dist, sizeof(dist), "%.1f", p->distance_m / 1000.0);
	if (v->present & SAMPLE_FUEL) {
		if (v->fuel_permille % 10)
			snprintf(fuel, sizeof(fuel), "%d.%d", v->fuel_permille / 10,
				 v->fuel_permille % 10);
		else
			snprintf(fuel, sizeof(fuel), "%d", v->fuel_permille / 10);
	}
	if (pr->trigger == PROMO_SERVICE_DUE)
		snprintf(due, sizeof(due), "%d", p->due_days);
	if (pr->trigger == PROMO_DRIVEN_SINCE_VISIT)
		snprintf(driven, sizeof(driven), "%lld", (long long)(p->driven_m / 1000));
	vars.station = p->has_poi ? p->poi.name : "";
	vars.distance = dist;
	vars.fuel = fuel;
	vars.price = pr->price;
	vars.code = p->code;
	vars.due_days = due;
	vars.driven = driven;
	vars.make = c->have_profile ? c->prof.make : "";
	vars.model = c->have_profile ? c->prof.model : "";
	ret = promo_expand(pr->title, &vars, o->title, sizeof(o->title), NULL, 0);
	if (ret == 0)
		ret = promo_expand(pr->body, &vars, o->body, sizeof(o->body), NULL, 0);
	if (ret < 0)
		return ret;
	o->valid_from_ms = now_ms;
	o->valid_until_ms = now_ms + pr->valid_for_ms;
	if (pr->area_radius_m && p->has_poi) {
		o->has_area = 1;
		o->area_lat_e7 = (int32_t)lround(p->poi.lat * 1e7);
		o->area_lon_e7 = (int32_t)lround(p->poi.lon * 1e7);
		o->area_radius_m = pr->area_radius_m;
	} else if (pr->area_radius_m && (v->present & SAMPLE_POSITION)) {
		o->has_area = 1;
		o->area_lat_e7 = v->lat_e7;
		o->area_lon_e7 = v->lon_e7;
		o->area_radius_m = pr->area_radius_m;
	}
	snprintf(o->vin, sizeof(o->vin), "%s", v->vin);
	return 0;
}

/* Days until vin's soonest service item is due; INT32_MAX when nothing is known. */
static int service_days_left(struct rules *r, const char *vin, int64_t now_ms, int *ret_days)
{
	const struct service_plans *plans = service_plans_current();
	int64_t today = floor_div(now_ms, 86400000), best = INT32_MAX;
	int ret;

	*ret_days = INT32_MAX;
	if (!plans)
		return 0;
	ret = service_predict(r->db, r->conf.telemetry, plans, vin, today, &r->pred);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < r->pred.nitems; i++)
		if (r->pred.items[i].due_day - today < best)
			best = r->pred.items[i].due_day - today;
	*ret_days = best < -100000 ? -100000 : (int)best;
	return 0;
}

/* 1 if minute m of the local day is inside quiet hours [from, to). */
static int quiet(const struct promo_limits *l, int m)
{
	if (l->quiet_from_min == l->quiet_to_min)
		return 0;
	if (l->quiet_from_min < l->quiet_to_min)
		return m >= l->quiet_from_min && m < l->quiet_to_min;
	return m >= l->quiet_from_min || m < l->quiet_to_min; /* spans midnight */
}

/*
 * The trigger of rule s fired for vehicle c (p has the trigger's POI, if
 * any). Opens the episode and, unless suppressed, issues the offer.
 * Returns 1 (issued), 0, or an error class.
 */
static int fire(struct rules *r, struct rule_state *s, struct vctx *c, struct pending *p,
		int64_t now_ms)
{
	const struct promo_rule *pr = s->pr;
	const struct promo_limits *lim = &r->set->limits;
	const char *vin = c->v->vin, *zone;
	enum reason why = R_COUNT;
	int transient = 0, ret, m;
	int64_t local_s, day;
	long off;
	struct offer o;

	p->pr = pr;
	ret = audience(r, pr, c);
	if (ret <= 0)
		return ret;
	ret = episode(r, ST_OPEN, vin, pr->name, now_ms);
	if (ret <= 0)
		return ret; /* 0: already open */
	if (pr->trigger == PROMO_SERVICE_DUE) {
		ret = service_days_left(r, vin, now_ms, &p->due_days);
		if (ret < 0)
			return ret;
		if (p->due_days > pr->service_days)
			return 0; /* not due: this visit is done */
	}
	ret = profile_of(r, c);
	if (ret < 0)
		return ret;
	if (c->prof.offers_opt_out) {
		ret = suppress(r, pr, vin, R_OPT_OUT, now_ms, "the vehicle's offers are off");
		return ret < 0 ? ret : 0;
	}
	zone = c->prof.time_zone[0] ? c->prof.time_zone : lim->time_zone;
	off = localtz_offset(&r->tz, zone, now_ms);
	local_s = floor_div(now_ms, 1000) + off;
	day = floor_div(local_s, 86400);
	m = (int)((local_s - day * 86400) / 60);
	if (quiet(lim, m)) {
		ret = suppress(r, pr, vin, R_QUIET_HOURS, now_ms,
			       "local time %02d:%02d in %s is within %02d:%02d-%02d:%02d", m / 60,
			       m % 60, zone, lim->quiet_from_min / 60, lim->quiet_from_min % 60,
			       lim->quiet_to_min / 60, lim->quiet_to_min % 60);
		transient = 1;
		goto suppressed;
	}
	if (pr->poi_category[0]) {
		ret = choose_station(r, pr, c->v, p);
		if (ret < 0)
			return ret;
		if (ret == 0) {
			ret = suppress(r, pr, vin, R_NO_POI, now_ms,
				       "no %s within %u m and the remaining range",
				       pr->poi_category, pr->search_radius_m);
			transient = 1;
			goto suppressed;
		}
	}
	if (pr->cooldown_ms) {
		struct db_stmt *st = r->st[ST_COOL_CLAIM];

		db_bind_text(st, 1, vin);
		db_bind_text(st, 2, pr->name);
		db_bind_int64(st, 3, now_ms);
		db_bind_int64(st, 4, now_ms - pr->cooldown_ms);
		ret = db_step(st);
		db_reset(st);
		if (ret < 0)
			return ret;
		if (ret == 0) {
			why = R_COOLDOWN;
			goto claim_failed;
		}
		p->cool = 1;
	}
	if (lim->per_day) {
		snprintf(p->day_key, sizeof(p->day_key), "d%lld", (long long)day);
		ret = cap_claim(r, vin, p->day_key, lim->per_day, now_ms);
		if (ret < 0)
			return ret;
		if (ret == 0) {
			why = R_CAP_DAY;
			goto claim_failed;
		}
		p->day = 1;
	}
	if (lim->per_week) {
		snprintf(p->week_key, sizeof(p->week_key), "w%lld",
			 (long long)floor_div(day + 3, 7));
		ret = cap_claim(r, vin, p->week_key, lim->per_week, now_ms);
		if (ret < 0)
			return ret;
		if (ret == 0) {
			why = R_CAP_WEEK;
			goto claim_failed;
		}
		p->week = 1;
	}
	ret = code_claim(r, vin, p, now_ms);
	if (ret < 0)
		return ret;
	if (ret == 0) {
		why = R_NO_CODES;
		transient = 1;
		goto claim_failed;
	}
	p->code_claimed = 1;
	ret = build_offer(pr, c, p, now_ms, &o);
	if (ret == 0)
		ret = r->sink(r->arg, &o);
	if (ret < 0) {
		log_warn("rules: could not build an offer of rule %s: %s", pr->name,
			 strerror(-ret));
		ret = undo(r, vin, p, now_ms);
		if (ret >= 0)
			ret = episode(r, ST_CLOSE, vin, pr->name, now_ms);
		return ret < 0 ? ret : 0;
	}
	ret = offer_log_put_rule(r->log, &o, pr->name, p->has_poi ? p->poi.id : "", now_ms);
	if (ret < 0)
		return ret;
	log_debug("rules: %s rule %s: offer %s", vin, pr->name, o.id);
	return 1;

claim_failed:
	ret = undo(r, vin, p, now_ms);
	if (ret < 0)
		return ret;
	switch (why) {
	case R_COOLDOWN:
		ret = suppress(r, pr, vin, why, now_ms, "cooldown %llds",
			       (long long)(pr->cooldown_ms / 1000));
		break;
	case R_CAP_DAY:
		ret = suppress(r, pr, vin, why, now_ms, "%d offers today (local day in %s)",
			       lim->per_day, zone);
		break;
	case R_CAP_WEEK:
		ret = suppress(r, pr, vin, why, now_ms, "%d offers this week (local week in %s)",
			       lim->per_week, zone);
		break;
	default:
		ret = suppress(r, pr, vin, why, now_ms, "no free code left in the pool of %s",
			       pr->name);
		break;
	}
suppressed:
	if (ret >= 0 && transient)
		ret = episode(r, ST_CLOSE, vin, pr->name, now_ms);
	return ret < 0 ? ret : 0;
}

/* ---- triggers ------------------------------------------------------------ */

static int eval_fuel(struct rules *r, struct rule_state *s, struct vctx *c, int64_t now_ms)
{
	const struct promo_rule *pr = s->pr;
	const struct telemetry_vehicle *v = c->v;
	struct pending p = { 0 };
	int ret = 0;

	if (!(v->present & SAMPLE_FUEL))
		return 0;
	if (v->fuel_permille >= (pr->fuel_pct + pr->rearm_pct) * 10)
		return add_vin(r, s, 1, v->vin, now_ms);
	if (pr->rearm_hold_ms)
		ret = add_vin(r, s, 0, v->vin, now_ms);
	if (ret >= 0 && v->fuel_permille <= pr->fuel_pct * 10)
		ret = fire(r, s, c, &p, now_ms);
	return ret;
}

static int eval_poi_enter(struct rules *r, struct rule_state *s, struct vctx *c, int64_t now_ms)
{
	const struct promo_rule *pr = s->pr;
	const struct telemetry_vehicle *v = c->v;
	struct pending p = { 0 };
	int n;

	if (!r->conf.poi || !(v->present & SAMPLE_POSITION))
		return 0;
	n = poi_near_ids(r->conf.poi, geo_deg_of_e7(v->lat_e7), geo_deg_of_e7(v->lon_e7),
			 pr->trigger_radius_m, pr->trigger_category, r->hits, 1);
	if (n > 0)
		n = take_poi(r, &r->hits[0], &p);
	if (n < 0)
		return n;
	if (n == 0)
		return add_vin(r, s, 1, v->vin, now_ms);
	return fire(r, s, c, &p, now_ms);
}

static int eval_service_due(struct rules *r, struct rule_state *s, struct vctx *c, int64_t now_ms)
{
	const struct promo_rule *pr = s->pr;
	const struct telemetry_vehicle *v = c->v;
	struct pending p = { 0 };
	double d;
	int ret;

	if (!r->conf.poi || !(v->present & SAMPLE_POSITION))
		return 0;
	ret = profile_of(r, c);
	if (ret < 0 || !c->prof.dealer_poi_id[0])
		return ret;
	ret = poi_get(r->conf.poi, c->prof.dealer_poi_id, &p.poi);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	d = geo_distance_m(geo_deg_of_e7(v->lat_e7), geo_deg_of_e7(v->lon_e7), p.poi.lat,
			   p.poi.lon);
	if (d > pr->trigger_radius_m)
		return add_vin(r, s, 1, v->vin, now_ms);
	p.has_poi = 1;
	p.distance_m = d;
	return fire(r, s, c, &p, now_ms);
}

static int eval_driven(struct rules *r, struct rule_state *s, struct vctx *c, int64_t now_ms)
{
	const struct promo_rule *pr = s->pr;
	const struct telemetry_vehicle *v = c->v;
	struct pending p = { 0 };
	struct db_stmt *st;
	int64_t base = 0;
	int ret, n;

	if (!(v->present & SAMPLE_ODOMETER))
		return 0;
	if (r->conf.poi && (v->present & SAMPLE_POSITION) &&
	    (!(v->present & SAMPLE_SPEED) || v->speed_cms < PROMO_VISIT_SPEED_CMS)) {
		n = poi_near_ids(r->conf.poi, geo_deg_of_e7(v->lat_e7), geo_deg_of_e7(v->lon_e7),
				 pr->visit_radius_m, pr->trigger_category, r->hits, 1);
		if (n < 0)
			return n;
		if (n > 0) { /* a visit: the distance starts over, the episode closes */
			st = r->st[ST_VISIT_SET];
			db_bind_text(st, 1, v->vin);
			db_bind_text(st, 2, pr->trigger_category);
			db_bind_int64(st, 3, v->odometer_m);
			db_bind_int64(st, 4, now_ms);
			ret = db_run(st);
			return ret < 0 ? ret : add_vin(r, s, 1, v->vin, now_ms);
		}
	}
	st = r->st[ST_VISIT_GET];
	db_bind_text(st, 1, v->vin);
	db_bind_text(st, 2, pr->trigger_category);
	ret = db_step(st);
	if (ret == 1)
		base = db_column_int64(st, 0);
	db_reset(st);
	if (ret < 0)
		return ret;
	if (ret == 0) { /* first seen: count from here */
		st = r->st[ST_VISIT_FIRST];
		db_bind_text(st, 1, v->vin);
		db_bind_text(st, 2, pr->trigger_category);
		db_bind_int64(st, 3, v->odometer_m);
		db_bind_int64(st, 4, now_ms);
		return db_run(st);
	}
	if (v->odometer_m - base < pr->driven_m)
		return 0;
	p.driven_m = v->odometer_m - base;
	return fire(r, s, c, &p, now_ms);
}

int rules_after_batches(struct rules *r, const struct telemetry_vehicle *v, size_t n,
			int64_t now_ms)
{
	int issued = 0, ret = 0;

	for (size_t i = 0; i < n && ret >= 0; i++) {
		struct vctx c = { .v = &v[i] };

		if (!v[i].has_sample)
			continue;
		for (size_t k = 0; k < r->set->n && ret >= 0; k++) {
			struct rule_state *s = &r->rs[k];

			switch (s->pr->trigger) {
			case PROMO_FUEL_BELOW:
				ret = eval_fuel(r, s, &c, now_ms);
				break;
			case PROMO_POI_ENTER:
				ret = eval_poi_enter(r, s, &c, now_ms);
				break;
			case PROMO_SERVICE_DUE:
				ret = eval_service_due(r, s, &c, now_ms);
				break;
			case PROMO_DRIVEN_SINCE_VISIT:
				ret = eval_driven(r, s, &c, now_ms);
				break;
			}
			if (ret > 0)
				issued += ret;
		}
	}
	for (size_t k = 0; k < r->set->n; k++) {
		struct rule_state *s = &r->rs[k];

		if (ret >= 0)
			ret = for_vins(r, s, 1, s->close, s->nclose, now_ms);
		if (ret >= 0)
			ret = for_vins(r, s, 0, s->unhold, s->nunhold, now_ms);
		s->nclose = s->nunhold = 0;
	}
	return ret < 0 ? ret : issued;
}

int rules_after_batch(struct rules *r, const struct telemetry_vehicle *v, int64_t now_ms)
{
	return rules_after_batches(r, v, 1, now_ms);
}

/* ---- the cleanup job and the suppression list ---------------------------- */

int rules_cleanup_job(struct db *db, int64_t now_ms, void *arg)
{
	static const char *const sql[] = {
		"DELETE FROM promo_suppressed WHERE time_ms < $1",
		"DELETE FROM promo_caps WHERE until_ms < $1",
	};
	struct db_stmt *st = NULL;
	int ret = 0;

	(void)arg;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]) && ret >= 0; i++) {
		ret = db_prepare(db, sql[i], &st);
		if (ret < 0)
			break;
		db_bind_int64(st, 1, i == 0 ? now_ms - RULES_SUPPRESSED_KEEP_MS : now_ms);
		ret = db_run(st);
		db_finalize(st);
		st = NULL;
	}
	return ret;
}

int rules_suppressed_list(struct db *db, const char *vin, size_t max,
			  struct rules_suppression **ret_rows)
{
	struct db_stmt *st = NULL;
	struct rules_suppression *rows;
	size_t n = 0;
	int ret;

	*ret_rows = NULL;
	if (max > RULES_SUPPRESSED_LIST_MAX + 1)
		max = RULES_SUPPRESSED_LIST_MAX + 1; /* one more: "truncated" */
	if (!max)
		return 0;
	rows = calloc(max, sizeof(*rows));
	if (!rows)
		return -ENOMEM;
	ret = db_prepare(db,
			 "SELECT rule, reason, time_ms, detail FROM promo_suppressed WHERE vin = $1"
			 " ORDER BY time_ms DESC LIMIT $2",
			 &st);
	if (ret == 0) {
		db_bind_text(st, 1, vin);
		db_bind_int64(st, 2, (int64_t)max);
		while (n < max && (ret = db_step(st)) == 1) {
			db_column_copy(st, 0, rows[n].rule, sizeof(rows[n].rule));
			db_column_copy(st, 1, rows[n].reason, sizeof(rows[n].reason));
			rows[n].time_ms = db_column_int64(st, 2);
			db_column_copy(st, 3, rows[n].detail, sizeof(rows[n].detail));
			n++;
		}
	}
	db_finalize(st);
	if (ret < 0 || n == 0) {
		free(rows);
		return ret < 0 ? ret : 0;
	}
	*ret_rows = rows;
	return (int)n;
}
