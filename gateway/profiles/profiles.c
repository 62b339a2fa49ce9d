/*
 * Vehicle profiles; see profiles.h. One row per vehicle, written whole by
 * an upsert (the last writer wins: profiles are operator data, not counts).
 */
#include "profiles.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "localtz.h"
#include "promo_rules.h"

enum stmt_id {
	ST_GET,
	ST_PUT,
	ST_COUNT,
};

/* clang-format off */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_GET] =
		"SELECT make, model, time_zone, dealer_poi_id, offers_opt_out, updated_ms"
		" FROM vehicle_profiles WHERE vin = $1",
	[ST_PUT] =
		"INSERT INTO vehicle_profiles(vin, make, model, time_zone, dealer_poi_id,"
		" offers_opt_out, updated_ms) VALUES($1, $2, $3, $4, $5, $6, $7)"
		" ON CONFLICT(vin) DO UPDATE SET make = excluded.make, model = excluded.model,"
		" time_zone = excluded.time_zone, dealer_poi_id = excluded.dealer_poi_id,"
		" offers_opt_out = excluded.offers_opt_out, updated_ms = excluded.updated_ms",
};
/* clang-format on */

struct profiles {
	struct db *db;		      /* borrowed */
	struct db_stmt *st[ST_COUNT]; /* owned */
};

int profiles_new(struct db *db, struct profiles **ret)
{
	struct profiles *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->db = db;
	r = db_prepare_all(db, stmt_sql, ST_COUNT, p->st);
	if (r < 0) {
		free(p);
		return r;
	}
	*ret = p;
	return 0;
}

void profiles_free(struct profiles *p)
{
	if (!p)
		return;
	db_finalize_all(p->st, ST_COUNT);
	free(p);
}

int profiles_get(struct profiles *p, const char *vin, struct profile *ret)
{
	struct db_stmt *st = p->st[ST_GET];
	int r;

	memset(ret, 0, sizeof(*ret));
	snprintf(ret->vin, sizeof(ret->vin), "%s", vin);
	db_bind_text(st, 1, vin);
	r = db_step(st);
	if (r == 1) {
		db_column_copy(st, 0, ret->make, sizeof(ret->make));
		db_column_copy(st, 1, ret->model, sizeof(ret->model));
		db_column_copy(st, 2, ret->time_zone, sizeof(ret->time_zone));
		db_column_copy(st, 3, ret->dealer_poi_id, sizeof(ret->dealer_poi_id));
		ret->offers_opt_out = db_column_int64(st, 4) != 0;
		ret->updated_ms = db_column_int64(st, 5);
	}
	db_reset(st);
	return r;
}

/* 1 if s is at most PROFILES_TEXT_MAX bytes of printable ASCII. */
static int text_ok(const char *s)
{
	if (strlen(s) > PROFILES_TEXT_MAX)
		return 0;
	for (; *s; s++)
		if (!isprint((unsigned char)*s))
			return 0;
	return 1;
}

int profiles_check(const struct profile *prof, char *err, size_t errlen)
{
	static const char *const names[] = { "make", "model", "dealer_poi_id" };
	const char *const vals[] = { prof->make, prof->model, prof->dealer_poi_id };

	if (!vin_valid(prof->vin)) {
		snprintf(err, errlen, "vin: not a valid VIN");
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!text_ok(vals[i])) {
			snprintf(err, errlen, "%s: at most %d printable ASCII characters", names[i],
				 PROFILES_TEXT_MAX);
			return -EINVAL;
		}
	if (prof->time_zone[0] && !localtz_valid(prof->time_zone)) {
		snprintf(err, errlen,
			 "time_zone: %.64s is not a time zone of the tz database (e.g. "
			 "Europe/Berlin; " LOCALTZ_ZONEINFO ")",
			 prof->time_zone);
		return -EINVAL;
	}
	return 0;
}

int profiles_put(struct profiles *p, struct accounts *acc, const struct accounts_principal *actor,
		 const struct profile *prof, int64_t now_ms)
{
	struct db_stmt *st = p->st[ST_PUT];
	char why[256], *detail = NULL;
	int own = !db_in_tx(p->db), r;
	json_t *d;

	if (profiles_check(prof, why, sizeof(why)) < 0)
		return -EINVAL;
	if (own && (r = db_begin(p->db)) < 0)
		return r;
	db_bind_text(st, 1, prof->vin);
	db_bind_text(st, 2, prof->make);
	db_bind_text(st, 3, prof->model);
	db_bind_text(st, 4, prof->time_zone);
	db_bind_text(st, 5, prof->dealer_poi_id);
	db_bind_int64(st, 6, prof->offers_opt_out ? 1 : 0);
	db_bind_int64(st, 7, now_ms);
	r = db_run(st);
	if (r >= 0 && acc) {
		d = json_pack("{s:s,s:s,s:s,s:s,s:b}", "make", prof->make, "model", prof->model,
			      "time_zone", prof->time_zone, "dealer_poi_id", prof->dealer_poi_id,
			      "offers_opt_out", prof->offers_opt_out);
		detail = d ? json_dumps(d, JSON_COMPACT) : NULL;
		json_decref(d);
		r = detail ? accounts_audit(acc, actor, "vehicle.profile", prof->vin, detail,
					    now_ms)
			   : -ENOMEM;
		free(detail);
	}
	if (own) {
		if (r >= 0)
			r = db_commit(p->db);
		if (r < 0)
			db_rollback(p->db);
	}
	return r;
}
