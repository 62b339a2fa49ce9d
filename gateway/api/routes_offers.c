/*
 * The API's offers routes (issue 11, docs/offers.md): a car's offers with
 * their lifecycle, the per-rule (and per rule and station) statistics, and
 * redemption at a partner's point of sale. Handlers call the offers domain
 * (offer_log.h) and, for station names, the poi domain (poi_get());
 * api_internal.h has the shared argument and visibility helpers.
 *
 * Who may call what: GET /offers follows the vehicle rules (a fleet manager
 * sees only their fleets' cars); the statistics are the operator's; redeem
 * is for the operator and the partner role, which may call nothing else
 * (routes.c enforces that for every route).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "loop.h"
#include "offer_log.h"
#include "poi.h"
#include "telemetry.h"
#include "views.h"

_Static_assert(OFFER_LOG_POI_ID_MAX >= POI_ID_MAX + 1, "a POI id fits an offer's poi_id");

static struct api_shared *sh(struct api_req *req)
{
	return api_shared(req->api);
}

/* The offers of vin (visible to the caller), newest first. */
static int offers_of(struct api_req *req, struct api_reply *rep, const char *vin)
{
	struct offer_row *rows = NULL;
	struct telemetry_vehicle v;
	size_t n = 0;
	json_t *items;
	int r, more = 0;

	/* An unknown vehicle is a 404 here too, as on its other paths. */
	r = telemetry_vehicle_get(sh(req)->telemetry, vin, &v);
	if (r < 0)
		return api_vehicle_error(rep, r, vin, "vehicle");
	r = offer_log_list(sh(req)->offers, vin, &rows, &n, &more);
	if (r < 0)
		return api_error_errno(rep, r, "offers");
	items = json_array();
	for (size_t i = n; i-- > 0;)
		json_array_append_new(items, views_offer(&rows[i]));
	free(rows);
	return api_ok(rep, 200,
		      json_pack("{s:s,s:o,s:b}", "vin", vin, "items", items, "truncated", more));
}

/* GET /api/v1/vehicles/{vin}/offers */
static int h_vehicle_offers(struct api_req *req, struct api_reply *rep)
{
	const char *vin;

	if (api_visible_vin(req, rep, &vin) < 0)
		return 0;
	return offers_of(req, rep, vin);
}

/* GET /api/v1/offers?vin=VIN: the same, for pitstopctl offer list. */
static int h_offer_list(struct api_req *req, struct api_reply *rep)
{
	const char *q = api_query(req, "vin"), *vin;

	if (!q || !*q)
		return api_error(rep, 400, "bad_request", "expected ?vin=VIN");
	/* The vehicle routes' rules, through their helper: the VIN as a path argument. */
	snprintf(req->argbuf, sizeof(req->argbuf), "%s", q);
	req->args[0] = req->argbuf;
	req->nargs = 1;
	if (api_visible_vin(req, rep, &vin) < 0)
		return 0;
	return offers_of(req, rep, vin);
}

/* A rate a / b, null when b is 0. */
static json_t *rate(int64_t a, int64_t b)
{
	return b > 0 ? json_real((double)a / (double)b) : json_null();
}

/*
 * One rule's figures (docs/offers.md: conversion_rate = redeemed / sent),
 * counts n[] of its offers per stage.
 */
static json_t *stats_json(const char *rule, const int64_t n[OFFER_STATE_COUNT])
{
	json_t *o = json_object();

	json_object_set_new(o, "rule", json_string(rule[0] ? rule : "(none)"));
	for (int i = 0; i < OFFER_STATE_COUNT; i++)
		json_object_set_new(o, offer_state_name((enum offer_state)i), json_integer(n[i]));
	json_object_set_new(o, "conversion_rate",
			    rate(n[OFFER_STATE_REDEEMED], n[OFFER_STATE_SENT]));
	json_object_set_new(o, "acceptance_rate",
			    rate(n[OFFER_STATE_ACCEPTED], n[OFFER_STATE_SHOWN]));
	return o;
}

/* qsort order of station rows (by pointer) by POI id. */
static int row_poi_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct offer_stats_poi_row *const *)a)->poi_id,
		      (*(const struct offer_stats_poi_row *const *)b)->poi_id);
}

/*
 * The figures per rule and station: rows[0..n) with each POI's name from
 * the poi domain, looked up once per POI (null when it is gone, or the
 * gateway has no POI database). Returns the items array, NULL on no memory.
 */
static json_t *stations_json(struct api_req *req, struct offer_stats_poi_row *rows, size_t n)
{
	const struct offer_stats_poi_row **by_poi = malloc((n ? n : 1) * sizeof(*by_poi));
	json_t **names = calloc(n ? n : 1, sizeof(*names)), *items = NULL;

	if (!by_poi || !names)
		goto out;
	for (size_t i = 0; i < n; i++)
		by_poi[i] = &rows[i];
	qsort(by_poi, n, sizeof(*by_poi), row_poi_cmp);
	for (size_t i = 0; i < n; i++) {
		struct poi p;
		json_t *name;

		if (i && strcmp(by_poi[i]->poi_id, by_poi[i - 1]->poi_id) == 0) {
			names[by_poi[i] - rows] = json_incref(names[by_poi[i - 1] - rows]);
			continue;
		}
		name = sh(req)->poi && poi_get(sh(req)->poi, by_poi[i]->poi_id, &p) == 0
			       ? json_string(p.name)
			       : json_null();
		names[by_poi[i] - rows] = name;
	}
	items = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = stats_json(rows[i].rule, rows[i].n);

		json_object_set_new(o, "poi_id", json_string(rows[i].poi_id));
		json_object_set(o, "poi_name", names[i]);
		json_array_append_new(items, o);
	}
out:
	for (size_t i = 0; names && i < n; i++)
		json_decref(names[i]);
	free(names);
	free(by_poi);
	return items;
}

/* GET /api/v1/offers/stats?by=station[&since=&until=]: per rule and station. */
static int offer_stats_by_station(struct api_req *req, struct api_reply *rep, int64_t since_day,
				  int64_t until_day)
{
	struct offer_stats_poi_row *rows = NULL;
	size_t n = 0;
	json_t *items;
	int r, more = 0;

	r = offer_log_stats_poi(sh(req)->offers, since_day, until_day, &rows, &n, &more);
	if (r < 0)
		return api_error_errno(rep, r, "offer statistics per station");
	items = stations_json(req, rows, n);
	free(rows);
	if (!items)
		return api_error_errno(rep, -ENOMEM, "offer statistics per station");
	return api_ok(rep, 200, json_pack("{s:o,s:b}", "items", items, "truncated", more));
}

/*
 * GET /api/v1/offers/stats[?since=&until=][&by=station]: per rule (or per
 * rule and station), the offers created in those days.
 */
static int h_offer_stats(struct api_req *req, struct api_reply *rep)
{
	int64_t since = 0, until = INT64_MAX / 2, since_day, until_day;
	struct offer_stats_row *rows = NULL, sum;
	const char *by = api_query(req, "by");
	size_t n = 0;
	json_t *items;
	int r, more = 0;

	if (api_arg_time(req, rep, "since", &since) < 0 ||
	    api_arg_time(req, rep, "until", &until) < 0)
		return 0;
	if (until < since)
		return api_error(rep, 400, "bad_request", "until is before since");
	if (by && strcmp(by, "station") != 0 && strcmp(by, "rule") != 0)
		return api_error(rep, 400, "bad_request",
				 "by: expected rule (the default) or station, not '%.64s'", by);
	since_day = telemetry_day_of(since);
	until_day = telemetry_day_of(until);
	if (by && strcmp(by, "station") == 0)
		return offer_stats_by_station(req, rep, since_day, until_day);
	r = offer_log_stats(sh(req)->offers, since_day, until_day, &rows, &n, &more);
	if (r < 0)
		return api_error_errno(rep, r, "offer statistics");
	memset(&sum, 0, sizeof(sum));
	snprintf(sum.rule, sizeof(sum.rule), "(all)");
	items = json_array();
	for (size_t i = 0; i < n; i++) {
		json_array_append_new(items, stats_json(rows[i].rule, rows[i].n));
		for (int k = 0; k < OFFER_STATE_COUNT; k++)
			sum.n[k] += rows[i].n[k];
	}
	free(rows);
	return api_ok(rep, 200,
		      json_pack("{s:o,s:o,s:b}", "items", items, "total",
				stats_json(sum.rule, sum.n), "truncated", more));
}

/* POST /api/v1/offers/redeem {code}: once per code, atomic across instances. */
static int h_offer_redeem(struct api_req *req, struct api_reply *rep)
{
	const char *code = api_body_str(req, "code");
	struct db *db = sh(req)->db;
	struct offer_redeemed red;
	int64_t now = loop_wall_ms();
	char detail[256], *text;
	json_t *body;
	int r;

	if (req->who.role != ACCOUNTS_ROLE_OPERATOR && req->who.role != ACCOUNTS_ROLE_PARTNER)
		return api_error(rep, 403, "forbidden",
				 "POST /api/v1/offers/redeem needs the partner or operator role");
	if (!code || !*code || strlen(code) >= CODEC_MAX_PROMO)
		return api_error(rep, 400, "bad_request",
				 "expected {\"code\": \"<the promo code>\"} (1 to %d characters)",
				 CODEC_MAX_PROMO - 1);
	r = db_begin(db);
	if (r < 0)
		return api_error_errno(rep, r, "redeem");
	memset(&red, 0, sizeof(red));
	r = offer_log_redeem(sh(req)->offers, code, now, &red);
	if (r == 0) {
		body = json_pack("{s:s,s:s,s:s}", "code", code, "offer_id", red.id, "rule",
				 red.rule);
		text = body ? json_dumps(body, JSON_COMPACT) : NULL;
		snprintf(detail, sizeof(detail), "%s", text ? text : "{}");
		free(text);
		json_decref(body);
		r = accounts_audit(sh(req)->accounts, api_actor(req), "offer.redeem", red.id,
				   detail, now);
	}
	if (r == 0)
		r = db_commit(db);
	else
		db_rollback(db);
	switch (r) {
	case 0:
		break;
	case -ENOENT:
		return api_error(rep, 404, "not_found", "no offer has promo code %s", code);
	case -EALREADY: {
		char when[40];

		views_iso8601(red.state_ms, when, sizeof(when));
		return api_error(rep, 409, "already_redeemed",
				 "promo code %s was already redeemed at %s (offer %s)", code, when,
				 red.id);
	}
	case -ETIME: {
		char when[40];

		views_iso8601(red.state == OFFER_STATE_EXPIRED ? red.state_ms : red.valid_until_ms,
			      when, sizeof(when));
		return api_error(
			rep, 410, "expired",
			"promo code %s expired: the offer's validity ended at %s (offer %s)", code,
			when, red.id);
	}
	default:
		return api_error_errno(rep, r, "redeem");
	}
	body = json_pack("{s:s,s:s,s:s,s:I,s:o}", "code", code, "offer_id", red.id, "rule",
			 red.rule, "redeemed_ms", (json_int_t)red.state_ms, "redeemed_at",
			 views_time(red.state_ms));
	if (req->who.role == ACCOUNTS_ROLE_OPERATOR) /* a partner sees no vehicle */
		json_object_set_new(body, "vin", json_string(red.vin));
	return api_ok(rep, 200, body);
}

static const struct route routes[] = {
	{ "GET", "/api/v1/vehicles/{vin}/offers", 0, h_vehicle_offers },
	{ "GET", "/api/v1/offers", 0, h_offer_list },
	{ "GET", "/api/v1/offers/stats", R_OPERATOR, h_offer_stats },
	{ "POST", "/api/v1/offers/redeem", R_PARTNER, h_offer_redeem },
};

ROUTE_TABLE(api_routes_offers, routes);
