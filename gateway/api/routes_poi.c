/*
 * The API's poi routes (issue 11, docs/poi.md): imports in chunks (begin,
 * rows, commit: visible all together or never), radius queries, one POI,
 * delete. Handlers call the poi domain (poi.h); api_internal.h has the
 * shared argument helpers.
 *
 * Who may call what: imports and delete are the operator's, and audited in
 * the write's own transaction (the poi domain writes inside the caller's
 * transaction); near and get are for any signed-in user (routes.c keeps
 * the partner role out).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "db.h"
#include "loop.h"
#include "poi.h"

#define NEAR_DEFAULT 100
#define RADIUS_MAX_M 500000 /* 500 km */

static struct api_shared *sh(struct api_req *req)
{
	return api_shared(req->api);
}

/*
 * Runs write(arg) and its audit row in one transaction: commit when both
 * succeed, else roll back. detail is consumed. Returns what write returned
 * (>= 0) or the first error class.
 */
static int audited(struct api_req *req, const char *action, const char *target,
		   int (*write)(struct poi_db *p, void *arg), void *arg,
		   json_t *(*detail)(void *arg))
{
	struct db *db = sh(req)->db;
	int r = db_begin(db), w = 0;

	if (r == 0)
		r = w = write(sh(req)->poi, arg);
	if (r >= 0) {
		json_t *d = detail(arg);
		char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;

		r = text ? accounts_audit(sh(req)->accounts, api_actor(req), action, target, text,
					  loop_wall_ms())
			 : -ENOMEM;
		free(text);
		json_decref(d);
	}
	if (r >= 0)
		r = db_commit(db);
	else
		db_rollback(db);
	return r < 0 ? r : w;
}

/* The JSON of a POI (with distance_m when >= 0). */
static json_t *poi_json(const struct poi *p, double distance_m)
{
	json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:f,s:f}", "id", p->id, "name", p->name,
			      "category", p->category, "brand", p->brand, "address", p->address,
			      "lat", p->lat, "lon", p->lon);

	if (o && distance_m >= 0)
		json_object_set_new(o, "distance_m", json_real(round(distance_m * 10) / 10));
	return o;
}

/* ---- imports ----------------------------------------------------------- */

struct import_op {
	const char *source;
	int64_t rows, id;
};

static int begin_write(struct poi_db *p, void *arg)
{
	struct import_op *op = arg;

	return poi_import_begin(p, op->source, op->rows, loop_wall_ms(), &op->id);
}

static json_t *begin_detail(void *arg)
{
	struct import_op *op = arg;

	return json_pack("{s:I,s:s,s:I}", "id", (json_int_t)op->id, "source", op->source, "rows",
			 (json_int_t)op->rows);
}

/* POST /api/v1/poi/imports {"source": "...", "rows": N} */
static int h_import_begin(struct api_req *req, struct api_reply *rep)
{
	const char *source = api_body_str(req, "source");
	json_t *rows = json_object_get(req->json, "rows");
	struct import_op op = { source ? source : "", 0, 0 };
	int r;

	if (!json_is_integer(rows) || json_integer_value(rows) < 0 ||
	    json_integer_value(rows) > POI_IMPORT_ROWS_MAX)
		return api_error(rep, 400, "bad_request", "rows: expected a count 0..%d",
				 POI_IMPORT_ROWS_MAX);
	if (strlen(op.source) > 255)
		return api_error(rep, 400, "bad_request", "source: at most 255 bytes");
	op.rows = json_integer_value(rows);
	r = audited(req, "poi.import_begin", op.source, begin_write, &op, begin_detail);
	if (r < 0)
		return api_error_errno(rep, r, "poi import");
	return api_ok(rep, 201,
		      json_pack("{s:I,s:s,s:I,s:i}", "id", (json_int_t)op.id, "source", op.source,
				"rows", (json_int_t)op.rows, "chunk_max", POI_IMPORT_CHUNK));
}

/* One row of a rows request into *ret. Returns 0 or -1 with a 400 filled. */
static int row_parse(struct api_reply *rep, size_t i, json_t *row, struct poi *ret)
{
	json_t *lat = json_object_get(row, "lat"), *lon = json_object_get(row, "lon");
	char why[200];

	if (!json_is_object(row) || !json_is_number(lat) || !json_is_number(lon)) {
		api_error(rep, 400, "bad_request",
			  "rows[%zu]: expected {id, name, category, lat, lon[, brand, address]} "
			  "with numbers for lat and lon",
			  i);
		return -1;
	}
	if (poi_set(ret, json_string_value(json_object_get(row, "id")),
		    json_string_value(json_object_get(row, "name")),
		    json_string_value(json_object_get(row, "category")),
		    json_string_value(json_object_get(row, "brand")),
		    json_string_value(json_object_get(row, "address")), json_number_value(lat),
		    json_number_value(lon), why, sizeof(why)) < 0) {
		api_error(rep, 400, "bad_request", "rows[%zu]: %s", i, why);
		return -1;
	}
	return 0;
}

/* POST /api/v1/poi/imports/{id}/rows {"rows": [{...}, ...]} (not audited: the commit is) */
static int h_import_rows(struct api_req *req, struct api_reply *rep)
{
	json_t *rows = json_object_get(req->json, "rows"), *row;
	struct poi *out;
	int64_t id;
	size_t i;
	int r;

	if (api_import_id(req, rep, &id) < 0)
		return 0;
	if (!json_is_array(rows) || json_array_size(rows) > POI_IMPORT_CHUNK)
		return api_error(rep, 400, "bad_request", "rows: expected 0..%d rows",
				 POI_IMPORT_CHUNK);
	out = calloc(json_array_size(rows) + 1, sizeof(*out));
	if (!out)
		return api_error_errno(rep, -ENOMEM, "poi import");
	json_array_foreach(rows, i, row)
	{
		if (row_parse(rep, i, row, &out[i]) < 0) {
			free(out);
			return 0;
		}
	}
	r = poi_import_rows(sh(req)->poi, id, out, json_array_size(rows));
	free(out);
	if (r == -ENOENT)
		return api_error(rep, 404, "not_found", "no open poi import %lld", (long long)id);
	if (r == -EINVAL)
		return api_error(rep, 400, "bad_request",
				 "poi import %lld: more rows than it announced", (long long)id);
	if (r < 0)
		return api_error_errno(rep, r, "poi import");
	return api_ok(rep, 200,
		      json_pack("{s:I,s:I}", "id", (json_int_t)id, "received",
				(json_int_t)json_array_size(rows)));
}

static int commit_write(struct poi_db *p, void *arg)
{
	struct import_op *op = arg;
	int r = poi_import_commit(p, op->id);

	op->rows = r;
	return r;
}

static json_t *commit_detail(void *arg)
{
	struct import_op *op = arg;

	return json_pack("{s:I,s:I}", "id", (json_int_t)op->id, "rows", (json_int_t)op->rows);
}

/* POST /api/v1/poi/imports/{id}/commit */
static int h_import_commit(struct api_req *req, struct api_reply *rep)
{
	struct import_op op = { "", 0, 0 };
	char target[40];
	int r;

	if (api_import_id(req, rep, &op.id) < 0)
		return 0;
	snprintf(target, sizeof(target), "import %lld", (long long)op.id);
	r = audited(req, "poi.import", target, commit_write, &op, commit_detail);
	if (r == -ENOENT)
		return api_error(rep, 404, "not_found", "no open poi import %lld",
				 (long long)op.id);
	if (r == -EINVAL)
		return api_error(rep, 409, "conflict",
				 "poi import %lld: not every announced row arrived",
				 (long long)op.id);
	if (r < 0)
		return api_error_errno(rep, r, "poi import");
	return api_ok(rep, 200, json_pack("{s:I,s:i}", "id", (json_int_t)op.id, "rows", r));
}

/* ---- queries ----------------------------------------------------------- */

/* A coordinate argument in [min, max]. Returns 0 or -1 with a 400 filled. */
static int arg_deg(struct api_req *req, struct api_reply *rep, const char *name, double min,
		   double max, double *ret)
{
	const char *s = api_query(req, name);
	char *end = NULL;
	double v = s ? strtod(s, &end) : NAN;

	if (!s || !*s || *end || !isfinite(v) || v < min || v > max) {
		api_error(rep, 400, "bad_request", "%s=%s: expected degrees %g..%g", name,
			  s ? s : "(missing)", min, max);
		return -1;
	}
	*ret = v;
	return 0;
}

/* GET /api/v1/poi/near?lat=&lon=&radius_m=&category=&limit= */
static int h_near(struct api_req *req, struct api_reply *rep)
{
	const char *cat = api_query(req, "category");
	struct poi_hit *hits;
	double lat, lon;
	long radius, limit;
	json_t *items;
	int n;

	if (arg_deg(req, rep, "lat", -90, 90, &lat) < 0 ||
	    arg_deg(req, rep, "lon", -180, 180, &lon) < 0 ||
	    api_arg_int(req, rep, "radius_m", 1, RADIUS_MAX_M, 5000, &radius) < 0 ||
	    api_arg_int(req, rep, "limit", 1, POI_NEAR_MAX, NEAR_DEFAULT, &limit) < 0)
		return 0;
	hits = calloc((size_t)limit, sizeof(*hits));
	if (!hits)
		return api_error_errno(rep, -ENOMEM, "poi near");
	n = poi_near(sh(req)->poi, lat, lon, (double)radius, cat, hits, (size_t)limit);
	if (n < 0) {
		free(hits);
		return api_error_errno(rep, n, "poi near");
	}
	items = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(items, poi_json(&hits[i].poi, hits[i].distance_m));
	free(hits);
	/* At the limit there may be more: say so. */
	return api_ok(rep, 200, json_pack("{s:o,s:b}", "items", items, "truncated", n == limit));
}

/* GET /api/v1/poi/{id} */
static int h_get(struct api_req *req, struct api_reply *rep)
{
	struct poi p;
	int r = poi_get(sh(req)->poi, req->args[0], &p);

	if (r == -ENOENT)
		return api_error(rep, 404, "not_found", "no POI %s", req->args[0]);
	if (r < 0)
		return api_error_errno(rep, r, "poi");
	return api_ok(rep, 200, poi_json(&p, -1));
}

static int delete_write(struct poi_db *p, void *arg)
{
	return poi_delete(p, arg);
}

static json_t *delete_detail(void *arg)
{
	(void)arg;
	return json_object();
}

/* DELETE /api/v1/poi/{id} */
static int h_delete(struct api_req *req, struct api_reply *rep)
{
	const char *id = req->args[0];
	int r = audited(req, "poi.delete", id, delete_write, (void *)id, delete_detail);

	if (r == -ENOENT)
		return api_error(rep, 404, "not_found", "no POI %s", id);
	if (r < 0)
		return api_error_errno(rep, r, "poi delete");
	return api_ok(rep, 200, json_pack("{s:s,s:b}", "id", id, "deleted", 1));
}

/* near before {id}: the router takes the first match. */
static const struct route routes[] = {
	{ "POST", "/api/v1/poi/imports", R_OPERATOR, h_import_begin },
	{ "POST", "/api/v1/poi/imports/{id}/rows", R_OPERATOR, h_import_rows },
	{ "POST", "/api/v1/poi/imports/{id}/commit", R_OPERATOR, h_import_commit },
	{ "GET", "/api/v1/poi/near", 0, h_near },
	{ "GET", "/api/v1/poi/{id}", 0, h_get },
	{ "DELETE", "/api/v1/poi/{id}", R_OPERATOR, h_delete },
};

ROUTE_TABLE(api_routes_poi, routes);
