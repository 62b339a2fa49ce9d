/*
 * The API's routes: who may call what (authentication, roles, fleets), and
 * the handlers, which call the domains' functions. Every write is audited
 * by the accounts domain in the write's own transaction; reads are not.
 *
 * Visibility: a vehicle the caller may not see answers exactly as an
 * unknown one (404), so a fleet manager cannot even learn that another
 * fleet's VIN exists.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_internal.h"
#include "counters.h"
#include "latency.h"
#include "log.h"
#include "loop.h"
#include "offer_log.h"
#include "reminders.h"
#include "service.h"
#include "telemetry.h"
#include "trips.h"
#include "views.h"
#include "vin.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000
#define HISTORY_DEFAULT_MS (24 * 3600 * 1000LL)
#define TRIPS_WINDOW_MS (7 * 24 * 3600 * 1000LL)
#define TRIPS_DEFAULT 10
#define TRIP_POINTS_MAX 500 /* positions per trip on the map (evenly thinned) */
#define COOKIE "pitstop_session"

static struct api_shared *sh(struct api_req *req)
{
	return api_shared(req->api);
}

/* The principal accounts functions take as actor: NULL is the local operator. */
const struct accounts_principal *api_actor(struct api_req *req)
{
	return req->local ? NULL : &req->who;
}

int api_principal_sees_fleet(const struct accounts_principal *p, int64_t fleet_id)
{
	if (p->role == ACCOUNTS_ROLE_OPERATOR)
		return 1;
	if (p->role != ACCOUNTS_ROLE_FLEET_MANAGER || fleet_id <= 0)
		return 0;
	for (size_t i = 0; i < p->nfleets; i++)
		if (p->fleet_ids[i] == fleet_id)
			return 1;
	return 0;
}

/* ---- arguments --------------------------------------------------------- */

/*
 * ISO 8601: 2026-12-01, 2026-12-01T12:00:00Z, ...T12:00:00.250+01:00, or a
 * unix time in ms. Returns 0 or -EINVAL.
 */
int api_parse_time(const char *s, int64_t *ret_ms)
{
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, ms = 0, off = 0;
	const char *p;
	char *end;

	if (!s || !*s)
		return -EINVAL;
	if (strchr(s, '-') == NULL) {
		long long v = strtoll(s, &end, 10);

		if (*end || v < 0)
			return -EINVAL;
		*ret_ms = v;
		return 0;
	}
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
		return -EINVAL;
	p = s + n;
	if (*p == 'T' || *p == ' ') {
		if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &n) != 3)
			return -EINVAL;
		p += 1 + n;
		if (*p == '.') {
			int digits = 0;

			for (p++; *p >= '0' && *p <= '9'; p++, digits++)
				if (digits < 3)
					ms = ms * 10 + (*p - '0');
			for (; digits < 3; digits++)
				ms *= 10;
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om;

			if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) != 2)
				return -EINVAL;
			off = (oh * 60 + om) * (*p == '+' ? 1 : -1);
			p += 1 + n;
		} else {
			return -EINVAL; /* a time needs its zone */
		}
	}
	if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*ret_ms = ((int64_t)timegm(&tm) - off * 60) * 1000 + ms;
	return 0;
}

/* A time argument: 0 (and *ret untouched) when absent, 1 when set, or a 400. */
int api_arg_time(struct api_req *req, struct api_reply *rep, const char *name, int64_t *ret)
{
	const char *s = api_query(req, name);

	if (!s)
		return 0;
	if (api_parse_time(s, ret) < 0) {
		api_error(rep, 400, "bad_request",
			  "%s=%s: expected an ISO 8601 time (2026-12-01T12:00:00Z) or unix ms",
			  name, s);
		return -1;
	}
	return 1;
}

/* An integer argument in [min, max], def when absent. Returns 0 or fills a 400. */
int api_arg_int(struct api_req *req, struct api_reply *rep, const char *name, long min, long max,
		long def, long *ret)
{
	const char *s = api_query(req, name);
	char *end;
	long v;

	if (!s) {
		*ret = def;
		return 0;
	}
	v = strtol(s, &end, 10);
	if (!*s || *end || v < min || v > max) {
		api_error(rep, 400, "bad_request", "%s=%s: expected an integer %ld..%ld", name, s,
			  min, max);
		return -1;
	}
	*ret = v;
	return 0;
}

/* A boolean argument: -1 absent, 0/1, or -2 with a 400 filled. */
int api_arg_bool(struct api_req *req, struct api_reply *rep, const char *name)
{
	const char *s = api_query(req, name);

	if (!s)
		return -1;
	if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
		return 1;
	if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
		return 0;
	api_error(rep, 400, "bad_request", "%s=%s: expected true or false", name, s);
	return -2;
}

/* A string member of the JSON body, or NULL. */
const char *api_body_str(struct api_req *req, const char *key)
{
	return json_string_value(json_object_get(req->json, key));
}

/* ---- vehicles ---------------------------------------------------------- */

/* The name of fleet id, cached per request in *cache (id -> name pairs). */
static const char *fleet_name(struct api_req *req, int64_t id, json_t *cache)
{
	char key[32];
	struct accounts_fleet f;
	json_t *hit;

	if (id <= 0)
		return NULL;
	snprintf(key, sizeof(key), "%lld", (long long)id);
	hit = json_object_get(cache, key);
	if (hit)
		return json_string_value(hit);
	if (accounts_fleet_get_id(sh(req)->accounts, id, &f) != 0)
		return NULL;
	json_object_set_new(cache, key, json_string(f.name));
	return json_string_value(json_object_get(cache, key));
}

static json_t *vehicle_json(struct api_req *req, const struct telemetry_vehicle *v, json_t *cache)
{
	int64_t fid = 0;

	if (accounts_fleet_of_vin(sh(req)->accounts, v->vin, &fid) <= 0)
		fid = 0;
	return views_vehicle(v, fleet_name(req, fid, cache), loop_wall_ms());
}

/* A telemetry domain error for vin: unknown is 404 like invisible, the rest by class. */
int api_vehicle_error(struct api_reply *rep, int err, const char *vin, const char *what)
{
	if (err == -ENOENT)
		return api_error(rep, 404, "not_found", "vehicle %s not found", vin);
	return api_error_errno(rep, err, what);
}

/*
 * The {vin} of the path, when the caller may see it: 0, or a reply filled
 * (404 for an unknown, malformed or invisible VIN alike).
 */
int api_visible_vin(struct api_req *req, struct api_reply *rep, const char **ret_vin)
{
	const char *vin = req->args[0];
	int r;

	if (!vin_valid(vin)) {
		api_error(rep, 404, "not_found", "vehicle %s not found", vin);
		return -1;
	}
	r = accounts_may_see_vin(sh(req)->accounts, &req->who, vin);
	if (r < 0) {
		api_error_errno(rep, r, "vehicle");
		return -1;
	}
	if (r == 0) {
		api_error(rep, 404, "not_found", "vehicle %s not found", vin);
		return -1;
	}
	*ret_vin = vin;
	return 0;
}

/*
 * One page of vehicles. An operator's list is the telemetry domain's
 * query; a fleet manager's (and a ?fleet= one) walks that fleet's VINs in
 * VIN order, TELEMETRY_LIST_VINS_MAX at a time, through the same query, so
 * the filters mean the same for everyone.
 */
static int h_vehicles(struct api_req *req, struct api_reply *rep)
{
	struct telemetry_list_filter f = { 0 };
	struct telemetry_vehicle *rows = NULL;
	int64_t now = loop_wall_ms(), t, fleet_ids[ACCOUNTS_USER_FLEETS_MAX];
	size_t n = 0, nfleets = 0;
	json_t *items = json_array(), *cache = json_object();
	const char *fleet = api_query(req, "fleet"), *next = NULL;
	char cursor[VIN_LEN + 1] = "";
	int more = 0, r, online;
	long limit, low;

	if (api_arg_int(req, rep, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit) < 0 ||
	    api_arg_int(req, rep, "low_fuel", 0, 100, -1, &low) < 0 ||
	    (online = api_arg_bool(req, rep, "online")) == -2)
		goto out;
	if ((r = api_arg_time(req, rep, "seen_since", &t)) < 0)
		goto out;
	if (r)
		f.seen_since_ms = t;
	if ((r = api_arg_time(req, rep, "seen_before", &t)) < 0)
		goto out;
	if (r)
		f.seen_before_ms = t;
	if (online == 1 && (!f.seen_since_ms || f.seen_since_ms < now - VIEWS_ONLINE_WINDOW_MS))
		f.seen_since_ms = now - VIEWS_ONLINE_WINDOW_MS;
	if (online == 0 && (!f.seen_before_ms || f.seen_before_ms > now - VIEWS_ONLINE_WINDOW_MS))
		f.seen_before_ms = now - VIEWS_ONLINE_WINDOW_MS;
	if (low >= 0) {
		f.has_max_fuel = 1;
		f.max_fuel_permille = (int32_t)low * 10;
	}
	if (api_query(req, "after")) {
		snprintf(cursor, sizeof(cursor), "%s", api_query(req, "after"));
		f.after_vin = cursor;
	}
	if (req->who.role == ACCOUNTS_ROLE_SERVICE_ADVISOR) {
		more = 0; /* no vehicle data until dealers exist */
		goto reply;
	}
	if (fleet) {
		struct accounts_fleet fl;

		r = accounts_fleet_get(sh(req)->accounts, fleet, &fl);
		if (r == 0 && !api_principal_sees_fleet(&req->who, fl.id))
			r = -ENOENT;
		if (r < 0) {
			api_error_errno(rep, r, "fleet");
			goto out;
		}
		fleet_ids[nfleets++] = fl.id;
	} else if (req->who.role == ACCOUNTS_ROLE_FLEET_MANAGER) {
		nfleets = req->who.nfleets;
		memcpy(fleet_ids, req->who.fleet_ids, nfleets * sizeof(fleet_ids[0]));
	}
	if (!nfleets) {
		f.limit = (size_t)limit;
		r = telemetry_list(sh(req)->telemetry, &f, &rows, &n, &more);
		if (r < 0) {
			api_error_errno(rep, r, "vehicles");
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			json_array_append_new(items, vehicle_json(req, &rows[i], cache));
		if (more && n)
			snprintf(cursor, sizeof(cursor), "%s", rows[n - 1].vin);
		goto reply;
	}
	/* Through the fleets' VINs; a page holds at most limit vehicles. */
	for (;;) {
		char *vins = NULL;
		const char *set[TELEMETRY_LIST_VINS_MAX];
		size_t nv = 0, got = json_array_size(items);
		int vmore = 0;

		r = accounts_vins_of_fleets(sh(req)->accounts, fleet_ids, nfleets, cursor,
					    TELEMETRY_LIST_VINS_MAX, &vins, &nv, &vmore);
		if (r < 0) {
			api_error_errno(rep, r, "fleet vehicles");
			goto out;
		}
		for (size_t i = 0; i < nv; i++)
			set[i] = vins + i * ACCOUNTS_VIN_STRIDE;
		f.vins = set;
		f.n_vins = nv;
		f.after_vin = cursor;
		f.limit = (size_t)limit - got;
		n = 0;
		if (nv)
			r = telemetry_list(sh(req)->telemetry, &f, &rows, &n, &more);
		if (r < 0) {
			free(vins);
			api_error_errno(rep, r, "vehicles");
			goto out;
		}
		for (size_t i = 0; i < n; i++)
			json_array_append_new(items, vehicle_json(req, &rows[i], cache));
		if (more && n) { /* the page is full inside this chunk */
			snprintf(cursor, sizeof(cursor), "%s", rows[n - 1].vin);
		} else if (nv) {
			snprintf(cursor, sizeof(cursor), "%s", set[nv - 1]);
			more = vmore;
		} else {
			more = 0;
		}
		free(vins);
		free(rows);
		rows = NULL;
		if (!more || json_array_size(items) >= (size_t)limit)
			break;
	}
reply:
	if (more)
		next = cursor;
	api_ok(rep, 200,
	       json_pack("{s:o,s:o}", "items", items, "next",
			 next ? json_string(next) : json_null()));
	items = NULL;
out:
	free(rows);
	json_decref(items);
	json_decref(cache);
	return 0;
}

static void add_next_service(struct api_req *req, json_t *o, const char *vin);

static int h_vehicle(struct api_req *req, struct api_reply *rep)
{
	struct telemetry_vehicle v;
	const char *vin;
	json_t *cache;
	int r;

	if (api_visible_vin(req, rep, &vin) < 0)
		return 0;
	r = telemetry_vehicle_get(sh(req)->telemetry, vin, &v);
	if (r < 0)
		return api_vehicle_error(rep, r, vin, "vehicle");
	cache = json_object();
	api_ok(rep, 200, vehicle_json(req, &v, cache));
	json_decref(cache);
	add_next_service(req, rep->body, vin);
	return 0;
}

/* The ?from=&to= range, defaulting to the window before now. Returns 0 or -1 (400 filled). */
static int time_range(struct api_req *req, struct api_reply *rep, int64_t window_ms, int64_t *from,
		      int64_t *to)
{
	*to = loop_wall_ms();
	if (api_arg_time(req, rep, "to", to) < 0)
		return -1;
	*from = *to - window_ms;
	if (api_arg_time(req, rep, "from", from) < 0)
		return -1;
	if (*from > *to) {
		api_error(rep, 400, "bad_request", "from is after to");
		return -1;
	}
	return 0;
}

static int h_history(struct api_req *req, struct api_reply *rep)
{
	struct telemetry_sample *rows = NULL;
	int64_t from, to;
	size_t n = 0;
	const char *vin;
	json_t *items;
	long limit;
	int r, truncated = 0;

	if (api_visible_vin(req, rep, &vin) < 0 ||
	    time_range(req, rep, HISTORY_DEFAULT_MS, &from, &to) < 0 ||
	    api_arg_int(req, rep, "limit", 1, 100000, 10000, &limit) < 0)
		return 0;
	r = telemetry_history(sh(req)->telemetry, vin, from, to, (size_t)limit, &rows, &n,
			      &truncated);
	if (r < 0)
		return api_vehicle_error(rep, r, vin, "history");
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, views_sample(&rows[i]));
	free(rows);
	/* limit keeps the newest: say so when it cut the range. */
	return api_ok(rep, 200,
		      json_pack("{s:o,s:b}", "items", items, "truncated",
				truncated || n == (size_t)limit));
}

static int h_trips(struct api_req *req, struct api_reply *rep)
{
	struct telemetry_sample *rows = NULL;
	struct trip *trips = NULL;
	int64_t from, to;
	size_t n = 0, ntrips = 0;
	const char *vin;
	json_t *items;
	long limit;
	int r, truncated = 0;

	if (api_visible_vin(req, rep, &vin) < 0 ||
	    time_range(req, rep, TRIPS_WINDOW_MS, &from, &to) < 0 ||
	    api_arg_int(req, rep, "limit", 1, 100, TRIPS_DEFAULT, &limit) < 0)
		return 0;
	r = telemetry_history(sh(req)->telemetry, vin, from, to, 0, &rows, &n, &truncated);
	if (r < 0)
		return api_vehicle_error(rep, r, vin, "trips");
	/* Samples set apart as implausible are no part of a trip. */
	{
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			if (!rows[i].implausible)
				rows[k++] = rows[i];
		n = k;
	}
	r = trips_split(rows, n, &trips, &ntrips);
	if (r < 0) {
		free(rows);
		return api_error_errno(rep, r, "trips");
	}
	items = json_array();
	for (size_t t = ntrips; t-- > 0 && json_array_size(items) < (size_t)limit;) {
		const struct trip *tr = &trips[t];
		size_t step = tr->npos > TRIP_POINTS_MAX
				      ? (tr->npos + TRIP_POINTS_MAX - 1) / TRIP_POINTS_MAX
				      : 1;
		json_t *pts = json_array();
		size_t k = 0;

		for (size_t i = tr->first; i < tr->first + tr->n; i++) {
			const struct sample *s = &rows[i].s;

			if (!(s->present & SAMPLE_POSITION))
				continue;
			if (k++ % step == 0 || i == tr->first + tr->n - 1)
				json_array_append_new(
					pts, json_pack("[f,f]", s->lat_e7 / 1e7, s->lon_e7 / 1e7));
		}
		json_array_append_new(items, json_pack("{s:o,s:o,s:f,s:I,s:o}", "start",
						       views_time(tr->start_ms), "end",
						       views_time(tr->end_ms), "distance_km",
						       tr->distance_m / 1000.0, "samples",
						       (json_int_t)tr->n, "points", pts));
	}
	free(trips);
	free(rows);
	return api_ok(rep, 200, json_pack("{s:o,s:b}", "items", items, "truncated", truncated));
}

/* A YYYY-MM-DD argument as a day number; 0 absent, 1 set, -1 a 400 filled. */
static int arg_day(struct api_req *req, struct api_reply *rep, const char *name, int64_t *ret)
{
	int64_t ms;
	int r = api_arg_time(req, rep, name, &ms);

	if (r == 1)
		*ret = telemetry_day_of(ms);
	return r;
}

static int h_days(struct api_req *req, struct api_reply *rep)
{
	struct telemetry_day *rows = NULL;
	int64_t to = telemetry_day_of(loop_wall_ms()), from;
	size_t n = 0;
	const char *vin;
	json_t *items;
	int r, truncated = 0;

	if (api_visible_vin(req, rep, &vin) < 0 || arg_day(req, rep, "to", &to) < 0)
		return 0;
	from = to - 29;
	if (arg_day(req, rep, "from", &from) < 0)
		return 0;
	r = telemetry_days(sh(req)->telemetry, vin, from, to, &rows, &n, &truncated);
	if (r < 0)
		return api_vehicle_error(rep, r, vin, "days");
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, views_day(&rows[i]));
	free(rows);
	return api_ok(rep, 200, json_pack("{s:o,s:b}", "items", items, "truncated", truncated));
}

static int h_events(struct api_req *req, struct api_reply *rep)
{
	return api_sse_open(req, rep);
}

/* ---- counters and instances -------------------------------------------- */

static int list_instances(struct api_req *req, struct api_reply *rep, int with_sum)
{
	struct counters_instance *rows = NULL;
	struct counters sum;
	size_t n = 0;
	int more = 0, r;
	json_t *root, *arr;

	r = counters_list(sh(req)->db, &rows, &n, &more);
	if (r < 0)
		return api_error_errno(rep, r, "counters");
	memset(&sum, 0, sizeof(sum));
	root = json_object();
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		counters_add(&sum, &rows[i].c);
		json_object_set_new(o, "id", json_string(rows[i].id));
		json_object_set_new(o, "updated_at", views_time(rows[i].updated_at_ms));
		if (with_sum)
			views_counters(o, &rows[i].c);
		json_array_append_new(arr, o);
	}
	if (with_sum)
		views_counters(root, &sum);
	if (with_sum && sh(req)->offer_latency) {
		/* This instance's, since it started (ingest.h): a histogram is not a sum. */
		const struct latency *l = sh(req)->offer_latency;

		json_object_set_new(root, "offer_latency_count",
				    json_integer((json_int_t)l->count));
		json_object_set_new(root, "offer_latency_us_p50",
				    json_integer((json_int_t)latency_percentile(l, 0.50)));
		json_object_set_new(root, "offer_latency_us_p99",
				    json_integer((json_int_t)latency_percentile(l, 0.99)));
		json_object_set_new(root, "offer_latency_us_max",
				    json_integer((json_int_t)l->max_us));
	}
	json_object_set_new(root, with_sum ? "instances" : "items", arr);
	json_object_set_new(root, "truncated", json_boolean(more));
	free(rows);
	return api_ok(rep, 200, root);
}

static int h_counters(struct api_req *req, struct api_reply *rep)
{
	return list_instances(req, rep, 1);
}

static int h_instances(struct api_req *req, struct api_reply *rep)
{
	return list_instances(req, rep, 0);
}

/* ---- sessions ---------------------------------------------------------- */

static json_t *fleet_names(struct api_req *req, const int64_t *ids, size_t n)
{
	json_t *arr = json_array(), *cache = json_object();

	for (size_t i = 0; i < n; i++) {
		const char *name = fleet_name(req, ids[i], cache);

		if (name)
			json_array_append_new(arr, json_string(name));
	}
	json_decref(cache);
	return arr;
}

static json_t *principal_json(struct api_req *req, const struct accounts_principal *p)
{
	return json_pack("{s:s,s:s,s:o}", "name", p->name, "role", accounts_role_name(p->role),
			 "fleets", fleet_names(req, p->fleet_ids, p->nfleets));
}

static void login_done(struct api_req *req, struct api_reply *rep)
{
	struct api_shared *s = sh(req);
	char token[ACCOUNTS_TOKEN_LEN + 1];
	struct accounts_principal who;
	struct accounts_token t;
	int64_t now = loop_wall_ms();
	int r;

	if (req->job.result < 0) {
		api_error_errno(rep, req->job.result, "login");
		return;
	}
	r = accounts_login_finish(s->accounts, &req->login, req->job.hash, now, token, &who);
	if (r == -EACCES) {
		api_login_failed(req->api, req->peer, now);
		api_error(rep, 401, "unauthorized", "unknown user or wrong password");
		return;
	}
	if (r < 0) {
		api_error_errno(rep, r, "login");
		return;
	}
	api_login_succeeded(req->api, req->peer);
	if (accounts_token_get(s->accounts, who.token_id, &t) != 0)
		t.expires_ms = now + s->session_ttl_ms;
	snprintf(rep->set_cookie, sizeof(rep->set_cookie),
		 COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s", token,
		 (long long)((t.expires_ms - now) / 1000), s->secure_cookie ? "; Secure" : "");
	api_ok(rep, 200,
	       json_pack("{s:s,s:o,s:o}", "token", token, "expires_at", views_time(t.expires_ms),
			 "user", principal_json(req, &who)));
	explicit_bzero(token, sizeof(token));
}

static int h_login(struct api_req *req, struct api_reply *rep)
{
	const char *name = api_body_str(req, "username"), *password = api_body_str(req, "password");
	int64_t wait = api_login_wait_s(req->api, req->peer, loop_wall_ms());
	int r;

	if (wait > 0)
		return api_error(rep, 429, "too_many_logins",
				 "too many failed logins from %s; try again in %lld s", req->peer,
				 (long long)wait);
	if (!name || !password)
		return api_error(rep, 400, "bad_request",
				 "expected {\"username\": ..., \"password\": ...}");
	if (strlen(password) > ACCOUNTS_PASSWORD_MAX)
		return api_error(rep, 401, "unauthorized", "unknown user or wrong password");
	r = accounts_login_begin(sh(req)->accounts, name, &req->login);
	if (r < 0)
		return api_error_errno(rep, r, "login");
	req->job.kind = API_JOB_HASH;
	snprintf(req->job.password, sizeof(req->job.password), "%s", password);
	memcpy(req->job.salt, req->login.secret.salt, sizeof(req->job.salt));
	req->job.iterations = req->login.secret.iterations;
	return api_defer(req, rep, login_done);
}

static int h_logout(struct api_req *req, struct api_reply *rep)
{
	int r = 0;

	if (!req->local && req->who.token_id > 0)
		r = accounts_token_revoke(sh(req)->accounts, api_actor(req), req->who.token_id,
					  loop_wall_ms());
	if (r < 0 && r != -ENOENT)
		return api_error_errno(rep, r, "logout");
	snprintf(rep->set_cookie, sizeof(rep->set_cookie),
		 COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
	return api_ok(rep, 204, NULL);
}

static int h_me(struct api_req *req, struct api_reply *rep)
{
	return api_ok(rep, 200, principal_json(req, &req->who));
}

/* ---- users and tokens -------------------------------------------------- */

static json_t *user_json(struct api_req *req, const struct accounts_user *u)
{
	return json_pack("{s:s,s:s,s:o,s:b,s:b,s:o}", "name", u->name, "role",
			 accounts_role_name(u->role), "fleets",
			 fleet_names(req, u->fleet_ids, u->nfleets), "disabled", u->disabled,
			 "has_password", u->has_password, "created_at", views_time(u->created_ms));
}

static int h_users(struct api_req *req, struct api_reply *rep)
{
	struct accounts_user *rows = NULL;
	size_t n = 0;
	long limit;
	int more = 0, r;
	json_t *items;

	if (api_arg_int(req, rep, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit) < 0)
		return 0;
	r = accounts_user_list(sh(req)->accounts, api_query(req, "after"), (size_t)limit, &rows, &n,
			       &more);
	if (r < 0)
		return api_error_errno(rep, r, "users");
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, user_json(req, &rows[i]));
	api_ok(rep, 200,
	       json_pack("{s:o,s:o}", "items", items, "next",
			 more && n ? json_string(rows[n - 1].name) : json_null()));
	free(rows);
	return 0;
}

static int h_user(struct api_req *req, struct api_reply *rep)
{
	struct accounts_user u;
	int r = accounts_user_get(sh(req)->accounts, req->args[0], &u);

	if (r < 0)
		return api_error_errno(rep, r, "user");
	return api_ok(rep, 200, user_json(req, &u));
}

/* Adds the user of the body; secret NULL for a token-only user. */
static void user_add(struct api_req *req, struct api_reply *rep,
		     const struct accounts_secret *secret)
{
	const char *name = api_body_str(req, "name"), *fleets[ACCOUNTS_USER_FLEETS_MAX];
	json_t *jf = json_object_get(req->json, "fleets");
	enum accounts_role role;
	struct accounts_user u;
	size_t nf = 0;
	int r;

	if (!name || accounts_role_parse(api_body_str(req, "role"), &role) < 0) {
		api_error(rep, 400, "bad_request",
			  "expected {\"name\": ..., \"role\": \"operator|fleet_manager|"
			  "service_advisor|partner\", \"fleets\": [...], \"password\": ...}");
		return;
	}
	if (jf && (!json_is_array(jf) || json_array_size(jf) > ACCOUNTS_USER_FLEETS_MAX)) {
		api_error(rep, 400, "bad_request", "fleets: an array of at most %d fleet names",
			  ACCOUNTS_USER_FLEETS_MAX);
		return;
	}
	for (size_t i = 0; jf && i < json_array_size(jf); i++) {
		fleets[nf] = json_string_value(json_array_get(jf, i));
		if (!fleets[nf]) {
			api_error(rep, 400, "bad_request", "fleets[%zu] is not a string", i);
			return;
		}
		nf++;
	}
	r = accounts_user_add(sh(req)->accounts, api_actor(req), name, role, secret, fleets, nf,
			      loop_wall_ms(), NULL);
	if (r == -EINVAL && role == ACCOUNTS_ROLE_FLEET_MANAGER && nf == 0)
		api_error(rep, 400, "bad_request", "a fleet_manager needs at least one fleet");
	else if (r == -EINVAL && role != ACCOUNTS_ROLE_FLEET_MANAGER && nf)
		api_error(rep, 400, "bad_request", "only a fleet_manager has fleets");
	else if (r == -EINVAL)
		api_error(rep, 400, "bad_request",
			  "user name %s: 1..%d characters of A-Z a-z 0-9 . _ - @", name,
			  ACCOUNTS_NAME_MAX);
	else if (r == -ENOENT)
		api_error(rep, 404, "not_found", "a fleet named in fleets does not exist");
	else if (r == -EEXIST)
		api_error(rep, 409, "conflict", "user %s exists already", name);
	else if (r < 0)
		api_error_errno(rep, r, "user");
	else if (accounts_user_get(sh(req)->accounts, name, &u) == 0)
		api_ok(rep, 201, user_json(req, &u));
	else
		api_ok(rep, 201, json_pack("{s:s}", "name", name));
}

static void user_add_done(struct api_req *req, struct api_reply *rep)
{
	if (req->job.result < 0) {
		api_error_errno(rep, req->job.result, "password");
		return;
	}
	user_add(req, rep, &req->job.secret);
	explicit_bzero(&req->job.secret, sizeof(req->job.secret));
}

static int h_user_add(struct api_req *req, struct api_reply *rep)
{
	const char *password = api_body_str(req, "password");

	if (!password) {
		user_add(req, rep, NULL);
		return 0;
	}
	if (!accounts_password_valid(password))
		return api_error(rep, 400, "bad_request", "a password has %d to %d characters",
				 ACCOUNTS_PASSWORD_MIN, ACCOUNTS_PASSWORD_MAX);
	req->job.kind = API_JOB_PREPARE;
	req->job.iterations = accounts_pbkdf2_iterations(sh(req)->accounts);
	snprintf(req->job.password, sizeof(req->job.password), "%s", password);
	return api_defer(req, rep, user_add_done);
}

static int set_disabled(struct api_req *req, struct api_reply *rep, int disabled)
{
	int r = accounts_user_set_disabled(sh(req)->accounts, api_actor(req), req->args[0],
					   disabled, loop_wall_ms());

	if (r < 0)
		return api_error_errno(rep, r, "user");
	return h_user(req, rep);
}

static int h_user_disable(struct api_req *req, struct api_reply *rep)
{
	return set_disabled(req, rep, 1);
}

static int h_user_enable(struct api_req *req, struct api_reply *rep)
{
	return set_disabled(req, rep, 0);
}

static int h_token_add(struct api_req *req, struct api_reply *rep)
{
	char token[ACCOUNTS_TOKEN_LEN + 1];
	const char *label = api_body_str(req, "label"), *exp = api_body_str(req, "expires_at");
	int64_t expires = 0, id = 0, now = loop_wall_ms();
	int r;

	if (exp && api_parse_time(exp, &expires) < 0)
		return api_error(rep, 400, "bad_request", "expires_at=%s: expected ISO 8601", exp);
	r = accounts_token_create(sh(req)->accounts, api_actor(req), req->args[0],
				  ACCOUNTS_TOKEN_API, label, expires, now, token, &id);
	if (r == -EINVAL)
		return api_error(rep, 400, "bad_request",
				 "label: at most %d printable characters; expires_at: after now",
				 ACCOUNTS_LABEL_MAX);
	if (r < 0)
		return api_error_errno(rep, r, "user");
	api_ok(rep, 201,
	       json_pack("{s:I,s:s,s:s,s:s,s:o}", "id", (json_int_t)id, "user", req->args[0],
			 "label", label ? label : "", "token", token, "expires_at",
			 views_time(expires)));
	explicit_bzero(token, sizeof(token));
	return 0;
}

static int h_tokens(struct api_req *req, struct api_reply *rep)
{
	struct accounts_token *rows = NULL;
	size_t n = 0;
	int more = 0, r;
	json_t *items;

	r = accounts_token_list(sh(req)->accounts, req->args[0], 0, ACCOUNTS_LIST_MAX, &rows, &n,
				&more);
	if (r < 0)
		return api_error_errno(rep, r, "tokens");
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(
			items,
			json_pack("{s:I,s:s,s:s,s:o,s:o,s:o,s:o}", "id", (json_int_t)rows[i].id,
				  "kind", accounts_token_kind_name(rows[i].kind), "label",
				  rows[i].label, "created_at", views_time(rows[i].created_ms),
				  "expires_at", views_time(rows[i].expires_ms), "last_used_at",
				  views_time(rows[i].last_used_ms), "revoked_at",
				  views_time(rows[i].revoked_ms)));
	free(rows);
	return api_ok(rep, 200, json_pack("{s:o,s:b}", "items", items, "truncated", more));
}

static int h_token_revoke(struct api_req *req, struct api_reply *rep)
{
	char *end;
	long long id = strtoll(req->args[0], &end, 10);
	int r;

	if (*end || id <= 0)
		return api_error(rep, 404, "not_found", "token %s not found", req->args[0]);
	r = accounts_token_revoke(sh(req)->accounts, api_actor(req), id, loop_wall_ms());
	if (r < 0)
		return api_error_errno(rep, r, "token");
	return api_ok(rep, 204, NULL);
}

/* ---- fleets ------------------------------------------------------------ */

static json_t *fleet_json(const struct accounts_fleet *f)
{
	return json_pack("{s:s,s:I,s:o}", "name", f->name, "vehicles", (json_int_t)f->vehicles,
			 "created_at", views_time(f->created_ms));
}

static int h_fleets(struct api_req *req, struct api_reply *rep)
{
	struct accounts_fleet *rows = NULL;
	size_t n = 0;
	int more = 0, r;
	json_t *items = json_array();

	if (req->who.role == ACCOUNTS_ROLE_FLEET_MANAGER) {
		for (size_t i = 0; i < req->who.nfleets; i++) {
			struct accounts_fleet f;

			if (accounts_fleet_get_id(sh(req)->accounts, req->who.fleet_ids[i], &f) ==
			    0)
				json_array_append_new(items, fleet_json(&f));
		}
		return api_ok(rep, 200, json_pack("{s:o,s:n}", "items", items, "next"));
	}
	if (req->who.role != ACCOUNTS_ROLE_OPERATOR)
		return api_ok(rep, 200, json_pack("{s:o,s:n}", "items", items, "next"));
	r = accounts_fleet_list(sh(req)->accounts, api_query(req, "after"), PAGE_MAX, &rows, &n,
				&more);
	if (r < 0) {
		json_decref(items);
		return api_error_errno(rep, r, "fleets");
	}
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, fleet_json(&rows[i]));
	api_ok(rep, 200,
	       json_pack("{s:o,s:o}", "items", items, "next",
			 more && n ? json_string(rows[n - 1].name) : json_null()));
	free(rows);
	return 0;
}

static int h_fleet(struct api_req *req, struct api_reply *rep)
{
	struct accounts_fleet f;
	int r = accounts_fleet_get(sh(req)->accounts, req->args[0], &f);

	if (r == 0 && !api_principal_sees_fleet(&req->who, f.id))
		r = -ENOENT;
	if (r < 0)
		return api_error_errno(rep, r, "fleet");
	return api_ok(rep, 200, fleet_json(&f));
}

static int h_fleet_add(struct api_req *req, struct api_reply *rep)
{
	struct accounts_fleet f;
	const char *name = api_body_str(req, "name");
	int r;

	if (!name)
		return api_error(rep, 400, "bad_request", "expected {\"name\": ...}");
	r = accounts_fleet_add(sh(req)->accounts, api_actor(req), name, loop_wall_ms(), NULL);
	if (r == -EINVAL)
		return api_error(rep, 400, "bad_request",
				 "fleet name %s: 1..%d characters of A-Z a-z 0-9 . _ - @", name,
				 ACCOUNTS_NAME_MAX);
	if (r == -EEXIST)
		return api_error(rep, 409, "conflict", "fleet %s exists already", name);
	if (r < 0)
		return api_error_errno(rep, r, "fleet");
	if (accounts_fleet_get(sh(req)->accounts, name, &f) != 0)
		return api_ok(rep, 201, json_pack("{s:s}", "name", name));
	return api_ok(rep, 201, fleet_json(&f));
}

static int h_fleet_assign(struct api_req *req, struct api_reply *rep)
{
	json_t *jv = json_object_get(req->json, "vins");
	const char **vins;
	size_t n = json_array_size(jv);
	int r;

	if (!json_is_array(jv) || n == 0 || n > ACCOUNTS_ASSIGN_MAX)
		return api_error(rep, 400, "bad_request",
				 "expected {\"vins\": [...]} with 1..%d VINs", ACCOUNTS_ASSIGN_MAX);
	vins = calloc(n, sizeof(*vins));
	if (!vins)
		return api_error(rep, 500, "internal", "out of memory");
	for (size_t i = 0; i < n; i++) {
		vins[i] = json_string_value(json_array_get(jv, i));
		if (!vins[i] || !vin_valid(vins[i])) {
			api_error(rep, 400, "bad_request",
				  "vins[%zu] is not a VIN (17 characters, no I, O or Q); nothing "
				  "assigned",
				  i);
			free(vins);
			return 0;
		}
	}
	r = accounts_fleet_assign(sh(req)->accounts, api_actor(req), req->args[0], vins, n,
				  loop_wall_ms());
	free(vins);
	if (r < 0)
		return api_error_errno(rep, r, "fleet");
	return api_ok(rep, 200,
		      json_pack("{s:s,s:I,s:I}", "fleet", req->args[0], "assigned", (json_int_t)n,
				"moved", (json_int_t)r));
}

/* ---- audit ------------------------------------------------------------- */

static int h_audit(struct api_req *req, struct api_reply *rep)
{
	struct accounts_audit_filter f = { 0 };
	struct accounts_audit_row *rows = NULL;
	size_t n = 0;
	long limit, before;
	int more = 0, r;
	json_t *items;

	f.actor = api_query(req, "actor");
	f.action = api_query(req, "action");
	if (api_arg_int(req, rep, "limit", 1, PAGE_MAX, PAGE_DEFAULT, &limit) < 0 ||
	    api_arg_int(req, rep, "before", 1, INT32_MAX, 0, &before) < 0 ||
	    api_arg_time(req, rep, "since", &f.since_ms) < 0)
		return 0;
	f.before_id = before;
	r = accounts_audit_list(sh(req)->accounts, &f, (size_t)limit, &rows, &n, &more);
	if (r < 0)
		return api_error_errno(rep, r, "audit");
	items = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *detail = json_loads(rows[i].detail, 0, NULL);

		json_array_append_new(
			items,
			json_pack("{s:I,s:o,s:s,s:s,s:s,s:s,s:o,s:s}", "id", (json_int_t)rows[i].id,
				  "at", views_time(rows[i].at_ms), "actor", rows[i].actor,
				  "actor_role", rows[i].actor_role, "action", rows[i].action,
				  "target", rows[i].target, "detail",
				  detail ? detail : json_object(), "instance", rows[i].instance));
	}
	api_ok(rep, 200,
	       json_pack("{s:o,s:o}", "items", items, "next",
			 more && n ? json_integer(rows[n - 1].id) : json_null()));
	free(rows);
	return 0;
}

/* ---- service (issue 10: service/service.h) ------------------------------ */

/* The plans, or a 503 filled (the gateway loads them at start). */
static const struct service_plans *plans_or_503(struct api_reply *rep)
{
	const struct service_plans *p = service_plans_current();

	if (!p)
		api_error(rep, 503, "unavailable",
			  "no maintenance plans loaded (service_plans_file)");
	return p;
}

/* The ?as_of= day (default today). Returns 0 or -1 (400 filled). */
static int as_of_day(struct api_req *req, struct api_reply *rep, int64_t *ret)
{
	*ret = telemetry_day_of(loop_wall_ms());
	return arg_day(req, rep, "as_of", ret) < 0 ? -1 : 0;
}

static json_t *service_record_json(const struct service_record *rec)
{
	char day[16];
	json_t *items = json_array();

	service_day_name(rec->day, day, sizeof(day));
	for (size_t i = 0; i < rec->nitems; i++)
		json_array_append_new(items, json_string(rec->items[i]));
	return json_pack("{s:I,s:s,s:s,s:o,s:o,s:o,s:s,s:s,s:o,s:s}", "id", (json_int_t)rec->id,
			 "vin", rec->vin, "date", day, "odometer_km",
			 rec->has_odometer ? json_real(rec->odometer_m / 1000.0) : json_null(),
			 "items", items, "cost",
			 rec->has_cost ? json_real(rec->cost_cents / 100.0) : json_null(),
			 "workshop", rec->workshop, "advisories", rec->advisories, "recorded_at",
			 views_time(rec->recorded_ms), "source", rec->source);
}

static int h_service_record(struct api_req *req, struct api_reply *rep)
{
	struct service_record rec;
	json_t *items = json_object_get(req->json, "items"), *odo, *cost, *v;
	const char *vin, *s;
	char why[300], joined[SERVICE_ITEMS_MAX * 48 + 1] = "";
	int64_t id = 0;
	size_t i, n = 0;
	int r;

	if (api_visible_vin(req, rep, &vin) < 0)
		return 0;
	memset(&rec, 0, sizeof(rec));
	snprintf(rec.vin, sizeof(rec.vin), "%s", vin);
	if (service_day_parse(api_body_str(req, "date"), &rec.day) < 0)
		return api_error(rep, 400, "bad_request", "date: expected YYYY-MM-DD");
	if (rec.day > telemetry_day_of(loop_wall_ms()) + 1)
		return api_error(rep, 400, "bad_request", "date: in the future");
	if (json_is_string(items)) {
		snprintf(joined, sizeof(joined), "%s", json_string_value(items));
	} else {
		json_array_foreach(items, i, v)
		{
			s = json_string_value(v);
			n += (size_t)snprintf(joined + n, sizeof(joined) - n, "%s%s", i ? ";" : "",
					      s ? s : "?");
			if (n >= sizeof(joined))
				return api_error(rep, 400, "bad_request", "items: too many");
		}
	}
	if (service_items_parse(joined, &rec, why, sizeof(why)) < 0)
		return api_error(rep, 400, "bad_request", "%s", why);
	odo = json_object_get(req->json, "odometer_km");
	if (odo && !json_is_null(odo)) {
		if (!json_is_number(odo) || json_number_value(odo) < 0 ||
		    json_number_value(odo) > 5e6)
			return api_error(rep, 400, "bad_request",
					 "odometer_km: expected a number 0..5000000");
		rec.has_odometer = 1;
		rec.odometer_m = (int64_t)(json_number_value(odo) * 1000.0 + 0.5);
	}
	cost = json_object_get(req->json, "cost");
	if (cost && !json_is_null(cost)) {
		if (!json_is_number(cost) || json_number_value(cost) < 0 ||
		    json_number_value(cost) > 1e9)
			return api_error(rep, 400, "bad_request", "cost: expected a number >= 0");
		rec.has_cost = 1;
		rec.cost_cents = (int64_t)(json_number_value(cost) * 100.0 + 0.5);
	}
	s = api_body_str(req, "workshop");
	if (s && strlen(s) > SERVICE_TEXT_MAX)
		return api_error(rep, 400, "bad_request", "workshop: at most %d bytes",
				 SERVICE_TEXT_MAX);
	snprintf(rec.workshop, sizeof(rec.workshop), "%s", s ? s : "");
	s = api_body_str(req, "advisories");
	if (s && strlen(s) > SERVICE_TEXT_MAX)
		return api_error(rep, 400, "bad_request", "advisories: at most %d bytes",
				 SERVICE_TEXT_MAX);
	snprintf(rec.advisories, sizeof(rec.advisories), "%s", s ? s : "");
	r = service_record_add(sh(req)->db, sh(req)->accounts, api_actor(req), &rec, loop_wall_ms(),
			       &id);
	if (r < 0)
		return api_error_errno(rep, r, "service record");
	rec.id = id;
	rec.recorded_ms = loop_wall_ms();
	snprintf(rec.source, sizeof(rec.source), "api");
	return api_ok(rep, 201, service_record_json(&rec));
}

static int h_service_list(struct api_req *req, struct api_reply *rep)
{
	struct service_record *rows = NULL;
	size_t n = 0;
	const char *vin;
	json_t *items;
	int r;

	if (api_visible_vin(req, rep, &vin) < 0)
		return 0;
	r = service_record_list(sh(req)->db, vin, INT64_MAX, &rows, &n);
	if (r < 0)
		return api_error_errno(rep, r, "service records");
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, service_record_json(&rows[i]));
	free(rows);
	return api_ok(
		rep, 200,
		json_pack("{s:o,s:b}", "items", items, "truncated", n == SERVICE_HISTORY_MAX));
}

static int h_service_override(struct api_req *req, struct api_reply *rep)
{
	json_t *km = json_object_get(req->json, "every_km");
	json_t *mo = json_object_get(req->json, "every_months");
	const char *vin, *item = api_body_str(req, "item");
	int r;

	if (api_visible_vin(req, rep, &vin) < 0)
		return 0;
	if ((km && !json_is_integer(km)) || (mo && !json_is_integer(mo)) ||
	    json_integer_value(km) < 0 || json_integer_value(km) > 5000000 ||
	    json_integer_value(mo) < 0 || json_integer_value(mo) > 600 ||
	    (!json_integer_value(km) && !json_integer_value(mo)))
		return api_error(rep, 400, "bad_request",
				 "expected every_km (0..5000000) and/or every_months (0..600), "
				 "not both 0");
	r = service_override_set(sh(req)->db, sh(req)->accounts, api_actor(req), vin, item,
				 json_integer_value(km) * 1000, (int)json_integer_value(mo),
				 loop_wall_ms());
	if (r == -EINVAL)
		return api_error(rep, 400, "bad_request",
				 "item: expected an item name (a-z, 0-9, _)");
	if (r < 0)
		return api_error_errno(rep, r, "service override");
	return api_ok(rep, 200,
		      json_pack("{s:s,s:s,s:I,s:I}", "vin", vin, "item", item, "every_km",
				json_integer_value(km), "every_months", json_integer_value(mo)));
}

/* The prediction of vin as of day, as JSON with "as_of"; NULL with rep filled. */
static json_t *prediction(struct api_req *req, struct api_reply *rep, const char *vin, int64_t day)
{
	const struct service_plans *plans = plans_or_503(rep);
	struct service_prediction p;
	char name[16];
	json_t *o;
	int r;

	if (!plans)
		return NULL;
	r = service_predict(sh(req)->db, sh(req)->telemetry, plans, vin, day, &p);
	if (r == -ENOENT) {
		api_error(rep, 404, "not_found", "nothing known about vehicle %s", vin);
		return NULL;
	}
	if (r < 0) {
		api_error_errno(rep, r, "prediction");
		return NULL;
	}
	o = service_prediction_json(&p);
	service_day_name(day, name, sizeof(name));
	json_object_set_new(o, "as_of", json_string(name));
	return o;
}

static int h_service_predict(struct api_req *req, struct api_reply *rep)
{
	const char *vin;
	int64_t day;
	json_t *o;

	if (api_visible_vin(req, rep, &vin) < 0 || as_of_day(req, rep, &day) < 0)
		return 0;
	o = prediction(req, rep, vin, day);
	return o ? api_ok(rep, 200, o) : 0;
}

/* service_due_json()'s filter: what the caller may see. */
static int due_may_see(const char *vin, void *arg)
{
	struct api_req *req = arg;

	return accounts_may_see_vin(sh(req)->accounts, &req->who, vin);
}

static int h_service_due(struct api_req *req, struct api_reply *rep)
{
	const struct service_plans *plans;
	int64_t day;
	long within;
	int r;
	json_t *o;

	if (as_of_day(req, rep, &day) < 0 ||
	    api_arg_int(req, rep, "within_days", 0, 3660, 30, &within) < 0 ||
	    !(plans = plans_or_503(rep)))
		return 0;
	o = service_due_json(sh(req)->db, sh(req)->telemetry, plans, day, within, due_may_see, req,
			     &r);
	return o ? api_ok(rep, 200, o) : api_error_errno(rep, r, "vehicles");
}

/* GET /tasks: the CRM team's open tasks (service reminders) of the cars the caller may see. */
static int h_tasks(struct api_req *req, struct api_reply *rep)
{
	int r = 0, truncated = 0;
	json_t *a = reminders_tasks_json(sh(req)->db, due_may_see, req, &truncated, &r);

	if (!a)
		return api_error_errno(rep, r, "tasks");
	return api_ok(rep, 200, json_pack("{s:o,s:b}", "tasks", a, "truncated", truncated));
}

static int h_import_begin(struct api_req *req, struct api_reply *rep)
{
	const char *kind = api_body_str(req, "kind"), *file = api_body_str(req, "file");
	json_t *rows = json_object_get(req->json, "rows");
	enum service_import_kind k;
	int64_t id = 0;
	int r;

	if (kind && strcmp(kind, "services") == 0)
		k = SERVICE_IMPORT_SERVICES;
	else if (kind && strcmp(kind, "odometer") == 0)
		k = SERVICE_IMPORT_ODOMETER;
	else
		return api_error(rep, 400, "bad_request", "kind: expected services or odometer");
	if (!json_is_integer(rows) || json_integer_value(rows) < 0 ||
	    json_integer_value(rows) > SERVICE_IMPORT_ROWS_MAX)
		return api_error(rep, 400, "bad_request", "rows: expected a count 0..%d",
				 SERVICE_IMPORT_ROWS_MAX);
	r = service_import_begin(sh(req)->db, sh(req)->accounts, api_actor(req), k,
				 file ? file : "", json_integer_value(rows), loop_wall_ms(), &id);
	if (r < 0)
		return api_error_errno(rep, r, "import");
	return api_ok(rep, 201,
		      json_pack("{s:I,s:s,s:I,s:i}", "id", (json_int_t)id, "kind", kind, "rows",
				json_integer_value(rows), "chunk_max", SERVICE_IMPORT_CHUNK));
}

int api_import_id(struct api_req *req, struct api_reply *rep, int64_t *ret)
{
	char *end;
	long long v = strtoll(req->args[0], &end, 10);

	if (*end || v <= 0) {
		api_error(rep, 404, "not_found", "import %s not found", req->args[0]);
		return -1;
	}
	*ret = v;
	return 0;
}

static int h_import_rows(struct api_req *req, struct api_reply *rep)
{
	json_t *rows = json_object_get(req->json, "rows"), *row, *f;
	struct service_import_row *out = NULL;
	enum service_import_kind kind;
	int64_t id;
	size_t i, k;
	char why[400];
	int r;

	if (api_import_id(req, rep, &id) < 0)
		return 0;
	if (!json_is_array(rows) || json_array_size(rows) > SERVICE_IMPORT_CHUNK)
		return api_error(rep, 400, "bad_request", "rows: expected 0..%d rows",
				 SERVICE_IMPORT_CHUNK);
	r = service_import_kind_of(sh(req)->db, id, &kind);
	if (r == -ENOENT)
		return api_error(rep, 404, "not_found", "no open import %lld", (long long)id);
	if (r < 0)
		return api_error_errno(rep, r, "import");
	out = calloc(json_array_size(rows) + 1, sizeof(*out));
	if (!out)
		return api_error_errno(rep, -ENOMEM, "import");
	json_array_foreach(rows, i, row)
	{
		const char *fields[8];
		size_t n = json_array_size(row);

		if (!json_is_array(row) || n > 8) {
			free(out);
			return api_error(rep, 400, "bad_request",
					 "rows[%zu]: expected the file's "
					 "fields as strings",
					 i);
		}
		json_array_foreach(row, k, f) fields[k] =
			json_string_value(f) ? json_string_value(f) : "";
		if (service_row_parse(kind, fields, n, loop_wall_ms(), &out[i], why, sizeof(why)) <
		    0) {
			free(out);
			return api_error(rep, 400, "bad_request", "rows[%zu]: %s", i, why);
		}
	}
	r = service_import_add(sh(req)->db, id, out, json_array_size(rows), loop_wall_ms());
	free(out);
	if (r == -EINVAL)
		return api_error(rep, 400, "bad_request",
				 "import %lld: more rows than it announced", (long long)id);
	if (r < 0)
		return api_error_errno(rep, r, "import");
	return api_ok(rep, 200,
		      json_pack("{s:I,s:I}", "id", (json_int_t)id, "received",
				(json_int_t)json_array_size(rows)));
}

static int h_import_commit(struct api_req *req, struct api_reply *rep)
{
	int64_t id;
	int r;

	if (api_import_id(req, rep, &id) < 0)
		return 0;
	r = service_import_commit(sh(req)->db, sh(req)->accounts, api_actor(req), id,
				  loop_wall_ms());
	if (r == -ENOENT)
		return api_error(rep, 404, "not_found", "no open import %lld", (long long)id);
	if (r == -EINVAL)
		return api_error(rep, 409, "conflict",
				 "import %lld: not every announced row arrived", (long long)id);
	if (r < 0)
		return api_error_errno(rep, r, "import");
	return api_ok(rep, 200, json_pack("{s:I,s:i}", "id", (json_int_t)id, "rows", r));
}

/* vehicle objects of GET /vehicles/{vin}: what is due next (null: nothing known). */
static void add_next_service(struct api_req *req, json_t *o, const char *vin)
{
	const struct service_plans *plans = service_plans_current();
	struct service_prediction p;

	if (plans && service_predict(sh(req)->db, sh(req)->telemetry, plans, vin,
				     telemetry_day_of(loop_wall_ms()), &p) == 0)
		json_object_set_new(o, "next_service", service_next_json(&p));
	else
		json_object_set_new(o, "next_service", json_null());
}

/* ---- the table --------------------------------------------------------- */

static const struct route routes[] = {
	{ "POST", "/api/v1/login", R_PUBLIC, h_login },
	{ "POST", "/api/v1/logout", R_PARTNER, h_logout },
	{ "GET", "/api/v1/me", R_PARTNER, h_me },
	{ "GET", "/api/v1/vehicles", 0, h_vehicles },
	{ "GET", "/api/v1/vehicles/{vin}", 0, h_vehicle },
	{ "GET", "/api/v1/vehicles/{vin}/history", 0, h_history },
	{ "GET", "/api/v1/vehicles/{vin}/trips", 0, h_trips },
	{ "GET", "/api/v1/vehicles/{vin}/days", 0, h_days },
	{ "GET", "/api/v1/events", 0, h_events },
	{ "GET", "/api/v1/counters", R_OPERATOR, h_counters },
	{ "GET", "/api/v1/instances", R_OPERATOR, h_instances },
	{ "GET", "/api/v1/users", R_OPERATOR, h_users },
	{ "POST", "/api/v1/users", R_OPERATOR, h_user_add },
	{ "GET", "/api/v1/users/{name}", R_OPERATOR, h_user },
	{ "POST", "/api/v1/users/{name}/disable", R_OPERATOR, h_user_disable },
	{ "POST", "/api/v1/users/{name}/enable", R_OPERATOR, h_user_enable },
	{ "GET", "/api/v1/users/{name}/tokens", R_OPERATOR, h_tokens },
	{ "POST", "/api/v1/users/{name}/tokens", R_OPERATOR, h_token_add },
	{ "DELETE", "/api/v1/tokens/{id}", R_OPERATOR, h_token_revoke },
	{ "GET", "/api/v1/fleets", 0, h_fleets },
	{ "POST", "/api/v1/fleets", R_OPERATOR, h_fleet_add },
	{ "GET", "/api/v1/fleets/{name}", 0, h_fleet },
	{ "POST", "/api/v1/fleets/{name}/vehicles", R_OPERATOR, h_fleet_assign },
	{ "GET", "/api/v1/audit", R_OPERATOR, h_audit },
	/* service (issue 10) */
	{ "GET", "/api/v1/vehicles/{vin}/services", 0, h_service_list },
	{ "POST", "/api/v1/vehicles/{vin}/services", 0, h_service_record },
	{ "POST", "/api/v1/vehicles/{vin}/service-overrides", 0, h_service_override },
	{ "GET", "/api/v1/vehicles/{vin}/service-prediction", 0, h_service_predict },
	{ "GET", "/api/v1/service/due", 0, h_service_due },
	{ "GET", "/api/v1/tasks", 0, h_tasks },
	{ "POST", "/api/v1/service/imports", R_OPERATOR, h_import_begin },
	{ "POST", "/api/v1/service/imports/{id}/rows", R_OPERATOR, h_import_rows },
	{ "POST", "/api/v1/service/imports/{id}/commit", R_OPERATOR, h_import_commit },
};

static ROUTE_TABLE(core_routes, routes);

/* Every table, routes.c's own first. */
static const struct route_table *const tables[] = {
	&core_routes,
	&api_routes_poi,
	&api_routes_promo,
	&api_routes_offers,
};
#define NTABLES (sizeof(tables) / sizeof(tables[0]))
#define ROUTES_MAX 256

size_t api_routes(const struct api_route_info **ret)
{
	static struct api_route_info info[ROUTES_MAX];
	size_t n = 0;

	for (size_t t = 0; t < NTABLES; t++)
		for (size_t i = 0; i < tables[t]->n && n < ROUTES_MAX; i++, n++) {
			info[n].method = tables[t]->routes[i].method;
			info[n].pattern = tables[t]->routes[i].pattern;
		}
	*ret = info;
	return n;
}

/*
 * Matches path against pattern, capturing the {x} segments into req.
 * Returns 1 on a match.
 */
static int match(struct api_req *req, const char *pattern, const char *path)
{
	size_t used = 0;

	req->nargs = 0;
	while (*pattern && *path) {
		if (*pattern == '{') {
			const char *pe = strchr(pattern, '}'), *se = strchr(path, '/');
			size_t n = se ? (size_t)(se - path) : strlen(path);

			if (!pe || n == 0 || req->nargs == API_PATH_ARGS_MAX ||
			    used + n + 1 > sizeof(req->argbuf))
				return 0;
			memcpy(req->argbuf + used, path, n);
			req->argbuf[used + n] = '\0';
			req->args[req->nargs++] = req->argbuf + used;
			used += n + 1;
			pattern = pe + 1;
			path += n;
			continue;
		}
		if (*pattern != *path)
			return 0;
		pattern++;
		path++;
	}
	return *pattern == '\0' && *path == '\0';
}

/* Who is calling: 0 with req->who set, or a 401 filled. */
static int authenticate(struct api_req *req, struct api_reply *rep, int write)
{
	const char *auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Authorization");
	const char *token = NULL;
	int r;

	if (req->local && !auth) {
		memset(&req->who, 0, sizeof(req->who));
		snprintf(req->who.name, sizeof(req->who.name), "local");
		req->who.role = ACCOUNTS_ROLE_OPERATOR;
		req->authed = 1;
		return 0;
	}
	req->local = 0; /* a token given over the socket speaks for its holder */
	if (auth) {
		if (strncasecmp(auth, "Bearer ", 7) != 0)
			return api_error(rep, 401, "unauthorized",
					 "the Authorization header must be \"Bearer <token>\"") -
			       1;
		token = auth + 7;
	} else {
		token = MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, COOKIE);
		if (token && write)
			return api_error(rep, 401, "unauthorized",
					 "a change needs the Authorization: Bearer header (the "
					 "session cookie only reads)") -
			       1;
		req->by_cookie = token != NULL;
	}
	if (!token || !*token)
		return api_error(rep, 401, "unauthorized",
				 "log in first: no token (Authorization: Bearer <token>, or the "
				 "console's session cookie)") -
		       1;
	r = accounts_authenticate(sh(req)->accounts, token, loop_wall_ms(), &req->who);
	if (r == -EACCES)
		return api_error(rep, 401, "unauthorized",
				 "the token is unknown, expired or revoked, or its user is "
				 "disabled; log in again") -
		       1;
	if (r < 0)
		return api_error_errno(rep, r, "authentication") - 1;
	req->authed = 1;
	return 0;
}

int api_route(struct api_req *req, struct api_reply *rep)
{
	const struct route *rt = NULL;
	int path_known = 0;

	for (size_t t = 0; t < NTABLES && !rt; t++)
		for (size_t i = 0; i < tables[t]->n; i++) {
			const struct route *cand = &tables[t]->routes[i];

			if (!match(req, cand->pattern, req->path))
				continue;
			path_known = 1;
			if (strcmp(cand->method, req->method) == 0) {
				rt = cand;
				break;
			}
		}
	if (!rt) {
		if (path_known)
			return api_error(rep, 405, "method_not_allowed", "%s is not allowed on %s",
					 req->method, req->path);
		return api_error(rep, 404, "no_route", "no API endpoint %s %s", req->method,
				 req->path);
	}
	if (!(rt->flags & R_PUBLIC)) {
		if (authenticate(req, rep, strcmp(req->method, "GET") != 0) < 0)
			return 0;
		/* A partner's point of sale redeems codes and does nothing else. */
		if (req->who.role == ACCOUNTS_ROLE_PARTNER && !(rt->flags & R_PARTNER))
			return api_error(rep, 403, "forbidden",
					 "the partner role may only redeem promo codes (POST "
					 "/api/v1/offers/redeem), not %s %s",
					 req->method, rt->pattern);
		if ((rt->flags & R_OPERATOR) && req->who.role != ACCOUNTS_ROLE_OPERATOR)
			return api_error(rep, 403, "forbidden", "%s %s needs the operator role",
					 req->method, rt->pattern);
	}
	return rt->fn(req, rep);
}
