/*
 * The API's promo routes (issue 11, docs/promotions.md): a vehicle's
 * profile (the facts the promotion rules use: make, model, time zone,
 * dealer, opt-out), the loaded rules, and why a vehicle got no offer.
 * Handlers call the profiles domain and the engine (rules.h);
 * api_internal.h has the shared argument and visibility helpers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "loop.h"
#include "offers.h"
#include "profiles.h"
#include "promo_rules.h"
#include "rules.h"
#include "views.h"

#define SUPPRESSED_DEFAULT 100

static struct api_shared *sh(struct api_req *req)
{
	return api_shared(req->api);
}

static json_t *profile_json(const struct profile *p)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:b,s:o}", "vin", p->vin, "make", p->make, "model",
			 p->model, "time_zone", p->time_zone, "dealer_poi_id", p->dealer_poi_id,
			 "offers_opt_out", p->offers_opt_out, "updated_at",
			 p->updated_ms ? views_time(p->updated_ms) : json_null());
}

/* vin's profile through a handle of the request's own. Returns 0 or an error class. */
static int profile_read(struct api_req *req, const char *vin, struct profile *ret,
			struct profiles **ret_p)
{
	int r = profiles_new(sh(req)->db, ret_p);

	if (r == 0)
		r = profiles_get(*ret_p, vin, ret);
	return r < 0 ? r : 0;
}

static int h_profile_get(struct api_req *req, struct api_reply *rep)
{
	struct profiles *p = NULL;
	struct profile prof;
	const char *vin;
	int r;

	if (api_visible_vin(req, rep, &vin) < 0)
		return 0;
	r = profile_read(req, vin, &prof, &p);
	profiles_free(p);
	if (r < 0)
		return api_error_errno(rep, r, "profile");
	return api_ok(rep, 200, profile_json(&prof));
}

/* Copies string member key of the body into buf when present. Returns 0, or -1 with a 400. */
static int body_text(struct api_req *req, struct api_reply *rep, const char *key, char *buf,
		     size_t size)
{
	json_t *v = json_object_get(req->json, key);

	if (!v)
		return 0;
	if (!json_is_string(v) || strlen(json_string_value(v)) >= size) {
		api_error(rep, 400, "bad_request", "%s: expected a string of at most %zu bytes",
			  key, size - 1);
		return -1;
	}
	snprintf(buf, size, "%s", json_string_value(v));
	return 0;
}

/* PUT: the members given change, the others stay (a partial body is fine). */
static int h_profile_put(struct api_req *req, struct api_reply *rep)
{
	struct profiles *p = NULL;
	struct profile prof;
	json_t *opt;
	const char *vin;
	char why[256];
	int r;

	if (api_visible_vin(req, rep, &vin) < 0)
		return 0;
	if (!json_is_object(req->json))
		return api_error(rep, 400, "bad_request", "expected a JSON object");
	r = profile_read(req, vin, &prof, &p);
	if (r < 0) {
		profiles_free(p);
		return api_error_errno(rep, r, "profile");
	}
	opt = json_object_get(req->json, "offers_opt_out");
	if (body_text(req, rep, "make", prof.make, sizeof(prof.make)) < 0 ||
	    body_text(req, rep, "model", prof.model, sizeof(prof.model)) < 0 ||
	    body_text(req, rep, "time_zone", prof.time_zone, sizeof(prof.time_zone)) < 0 ||
	    body_text(req, rep, "dealer_poi_id", prof.dealer_poi_id, sizeof(prof.dealer_poi_id)) <
		    0) {
		profiles_free(p);
		return 0;
	}
	if (opt && !json_is_boolean(opt)) {
		profiles_free(p);
		return api_error(rep, 400, "bad_request", "offers_opt_out: expected true or false");
	}
	if (opt)
		prof.offers_opt_out = json_is_true(opt);
	if (profiles_check(&prof, why, sizeof(why)) < 0) {
		profiles_free(p);
		return api_error(rep, 400, "bad_request", "%s", why);
	}
	r = profiles_put(p, sh(req)->accounts, api_actor(req), &prof, loop_wall_ms());
	profiles_free(p);
	if (r < 0)
		return api_error_errno(rep, r, "profile");
	prof.updated_ms = loop_wall_ms();
	return api_ok(rep, 200, profile_json(&prof));
}

static json_t *names_json(const struct promo_names *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->name[i]));
	return a;
}

static json_t *trigger_json(const struct promo_rule *r)
{
	json_t *t = json_pack("{s:s}", "type", promo_trigger_name(r->trigger));

	switch (r->trigger) {
	case PROMO_FUEL_BELOW:
		json_object_set_new(t, "fuel_pct", json_integer(r->fuel_pct));
		json_object_set_new(t, "rearm_pct", json_integer(r->rearm_pct));
		json_object_set_new(t, "rearm_hold_s", json_integer(r->rearm_hold_ms / 1000));
		break;
	case PROMO_POI_ENTER:
		json_object_set_new(t, "category", json_string(r->trigger_category));
		json_object_set_new(t, "radius_m", json_integer(r->trigger_radius_m));
		break;
	case PROMO_SERVICE_DUE:
		json_object_set_new(t, "days", json_integer(r->service_days));
		json_object_set_new(t, "dealer_radius_m", json_integer(r->trigger_radius_m));
		break;
	case PROMO_DRIVEN_SINCE_VISIT:
		json_object_set_new(t, "km", json_integer(r->driven_m / 1000));
		json_object_set_new(t, "category", json_string(r->trigger_category));
		json_object_set_new(t, "visit_radius_m", json_integer(r->visit_radius_m));
		break;
	}
	return t;
}

static json_t *rule_json(const struct promo_rule *r)
{
	json_t *codes = r->codes_mode == PROMO_CODES_FILE
				? json_pack("{s:s,s:s,s:I}", "mode", "file", "file", r->code_file,
					    "count", (json_int_t)r->ncodes)
				: json_pack("{s:s,s:s,s:i}", "mode", "generate", "prefix",
					    r->code_prefix, "length", r->code_len);

	return json_pack("{s:s,s:i,s:o,s:s?,s:i,s:i,s:i,s:{s:o,s:o,s:o},s:s,s:s,s:s,s:s,s:s,s:o,"
			 "s:I,s:i,s:I}",
			 "name", r->name, "line", (int)r->line, "trigger", trigger_json(r),
			 "poi_category", r->poi_category[0] ? r->poi_category : NULL,
			 "search_radius_m", (int)r->search_radius_m, "range_km_full_tank",
			 r->range_km_full_tank, "ahead_deg", r->ahead_deg, "audience", "fleet",
			 names_json(&r->fleets), "make", names_json(&r->makes), "model",
			 names_json(&r->models), "channel", "in_car", "kind",
			 offers_kind_name(r->kind), "title", r->title, "body", r->body, "price",
			 r->price, "codes", codes, "valid_for_s",
			 (json_int_t)(r->valid_for_ms / 1000), "area_radius_m",
			 (int)r->area_radius_m, "cooldown_s", (json_int_t)(r->cooldown_ms / 1000));
}

static int h_rules(struct api_req *req, struct api_reply *rep)
{
	const struct promo_rules *s;
	const struct promo_limits *l;
	char quiet[48] = "";
	json_t *items;

	if (!sh(req)->rules || !*sh(req)->rules)
		return api_error(rep, 503, "unavailable", "the promotion engine is not running");
	s = rules_set(*sh(req)->rules);
	l = &s->limits;
	if (l->quiet_from_min != l->quiet_to_min)
		snprintf(quiet, sizeof(quiet), "%02d:%02d-%02d:%02d", l->quiet_from_min / 60,
			 l->quiet_from_min % 60, l->quiet_to_min / 60, l->quiet_to_min % 60);
	items = json_array();
	for (size_t i = 0; i < s->n; i++)
		json_array_append_new(items, rule_json(&s->rules[i]));
	return api_ok(rep, 200,
		      json_pack("{s:s?,s:{s:i,s:i,s:s?,s:s},s:o}", "file",
				s->path[0] ? s->path : NULL, "limits", "per_day", l->per_day,
				"per_week", l->per_week, "quiet_hours", quiet[0] ? quiet : NULL,
				"time_zone", l->time_zone, "items", items));
}

static int h_suppressed(struct api_req *req, struct api_reply *rep)
{
	struct rules_suppression *rows = NULL;
	const char *vin;
	json_t *items;
	long limit;
	int n;

	if (api_visible_vin(req, rep, &vin) < 0 ||
	    api_arg_int(req, rep, "limit", 1, RULES_SUPPRESSED_LIST_MAX, SUPPRESSED_DEFAULT,
			&limit) < 0)
		return 0;
	n = rules_suppressed_list(sh(req)->db, vin, (size_t)limit + 1, &rows);
	if (n < 0)
		return api_error_errno(rep, n, "suppressed offers");
	items = json_array();
	for (int i = 0; i < n && i < limit; i++)
		json_array_append_new(items,
				      json_pack("{s:s,s:s,s:o,s:s}", "rule", rows[i].rule, "reason",
						rows[i].reason, "time", views_time(rows[i].time_ms),
						"detail", rows[i].detail));
	free(rows);
	return api_ok(
		rep, 200,
		json_pack("{s:s,s:o,s:b}", "vin", vin, "items", items, "truncated", n > limit));
}

static const struct route routes[] = {
	{ "GET", "/api/v1/vehicles/{vin}/profile", 0, h_profile_get },
	{ "PUT", "/api/v1/vehicles/{vin}/profile", 0, h_profile_put },
	{ "GET", "/api/v1/vehicles/{vin}/suppressed-offers", 0, h_suppressed },
	{ "GET", "/api/v1/promo/rules", 0, h_rules },
};

ROUTE_TABLE(api_routes_promo, routes);
