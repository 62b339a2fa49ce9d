/*
 * The poi domain (poi.h): points of interest, their spatial index and
 * all-or-nothing imports. docs/poi.md.
 *
 * Positions are stored in 1e-7 degrees (integers, exact in both backends).
 * The index: SQLite's integer R*Tree pois_rtree, kept in step with pois by
 * triggers; PostgreSQL's GiST index over point(lon_e7, lat_e7). Only the
 * near query differs per backend; everything else is SQL both run.
 *
 * A near query: the box(es) of the circle (geo_circle_boxes()) widened by
 * one unit to integers, one index query per box that also filters the
 * category inside the index (SQLite: the category's code is the R*Tree's
 * third dimension), the exact haversine distance of each candidate, the
 * nearest max kept. A category's code (poi_categories) is given at its
 * first import and never changes, so the handle remembers the codes it
 * looked up. The hot path does no allocation: statements are prepared
 * once, text is copied into the caller's hits, and the order is kept in an
 * index array of the handle.
 *
 * Writes run in the caller's transaction when one is open (the API audits
 * in the same transaction), else in their own.
 */
#include "poi.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"

#define STALE_IMPORT_MS (24 * 3600 * 1000LL)
#define ROW_COLS 8 /* import_id, id, name, category, brand, address, lat_e7, lon_e7 */
#define CAT_CODE_MAX 0x7ffffffe
#define CAT_CACHE 32 /* category codes a handle remembers */

enum {
	S_NEAR,
	S_GET,
	S_COUNT,
	S_DELETE,
	S_STALE_ROWS,
	S_STALE_IMPORTS,
	S_BEGIN,
	S_RECEIVE,
	S_IS_OPEN,
	S_CLAIM,
	S_STAGED,
	S_CATEGORIES,
	S_UPSERT,
	S_UNSTAGE,
	S_CAT_CODE,
};

#define POI_COLS "lat_e7, lon_e7, category, id, name, brand, address"

/*
 * The near query per backend: the POIs in the box $1..$4 (lat_min,
 * lat_max, lon_min, lon_max in 1e-7 degrees) whose category code is in
 * [$5, $6). SQLite: the R*Tree answers box and category, and only its rows
 * are looked up in pois (CROSS JOIN keeps that order).
 */
static const char *const sql_near[DB_BACKEND_COUNT] = {
	[DB_SQLITE] = "SELECT p.lat_e7, p.lon_e7, p.category, p.id, p.name, p.brand, p.address "
		      "FROM pois_rtree r CROSS JOIN pois p WHERE r.lat_min >= $1 AND r.lat_max <= "
		      "$2 AND r.lon_min >= $3 AND r.lon_max <= $4 AND r.cat_min >= $5 AND "
		      "r.cat_max <= $6 AND p.rid = r.rid",
	[DB_POSTGRESQL] = "SELECT " POI_COLS " FROM pois WHERE point(lon_e7::float8, "
			  "lat_e7::float8) <@ box(point($3::float8, $1::float8), "
			  "point($4::float8, $2::float8)) AND cat_code >= $5 AND cat_code < $6",
};

static const char *const sql[] = {
	[S_NEAR] = NULL, /* sql_near[backend] */
	[S_GET] = "SELECT " POI_COLS " FROM pois WHERE id = $1",
	[S_COUNT] = "SELECT COUNT(*) FROM pois",
	[S_DELETE] = "DELETE FROM pois WHERE id = $1 RETURNING rid",
	[S_STALE_ROWS] = "DELETE FROM poi_import_rows WHERE import_id IN (SELECT id FROM "
			 "poi_imports WHERE committed = 0 AND created_ms < $1)",
	[S_STALE_IMPORTS] = "DELETE FROM poi_imports WHERE committed = 0 AND created_ms < $1",
	[S_BEGIN] = "INSERT INTO poi_imports (source, expected_rows, created_ms) VALUES ($1, $2, "
		    "$3) RETURNING id",
	[S_RECEIVE] = "UPDATE poi_imports SET received_rows = received_rows + $2 WHERE id = $1 "
		      "AND committed = 0 AND received_rows + $2 <= expected_rows RETURNING id",
	[S_IS_OPEN] = "SELECT id FROM poi_imports WHERE id = $1 AND committed = 0",
	[S_CLAIM] = "UPDATE poi_imports SET committed = 1 WHERE id = $1 AND committed = 0 AND "
		    "received_rows = expected_rows RETURNING id",
	[S_STAGED] = "SELECT COUNT(*) FROM poi_import_rows WHERE import_id = $1",
	[S_CATEGORIES] = "INSERT INTO poi_categories (name) SELECT DISTINCT category FROM "
			 "poi_import_rows WHERE import_id = $1 ON CONFLICT (name) DO NOTHING",
	/*
	 * In 0.05 degree bands by longitude: neighbours get neighbouring rids,
	 * so a query's rows share pages (measured: a third faster at 300,000).
	 */
	[S_UPSERT] = "INSERT INTO pois (id, name, category, brand, address, lat_e7, lon_e7, "
		     "cat_code) SELECT r.id, r.name, r.category, r.brand, r.address, r.lat_e7, "
		     "r.lon_e7, c.code FROM poi_import_rows r JOIN poi_categories c ON c.name = "
		     "r.category WHERE r.import_id = $1 ORDER BY r.lat_e7 / 500000, r.lon_e7 "
		     "ON CONFLICT (id) DO UPDATE SET name = "
		     "excluded.name, category = excluded.category, brand = "
		     "excluded.brand, address = excluded.address, lat_e7 = excluded.lat_e7, "
		     "lon_e7 = excluded.lon_e7, cat_code = excluded.cat_code",
	[S_UNSTAGE] = "DELETE FROM poi_import_rows WHERE import_id = $1",
	[S_CAT_CODE] = "SELECT code FROM poi_categories WHERE name = $1",
};
#define N_STMTS (sizeof(sql) / sizeof(sql[0]))

/* A kept hit: its distance and its slot in the caller's hits. */
struct near_slot {
	double d;
	uint16_t slot;
};

struct poi_db {
	struct db *db;			      /* borrowed */
	struct db_stmt *st[N_STMTS];	      /* owned */
	struct db_rows stage;		      /* owned statements: staged rows */
	struct near_slot order[POI_NEAR_MAX]; /* a query's hits, nearest first */
	uint16_t perm[POI_NEAR_MAX];	      /* sort_hits()'s scratch */
	struct poi tmp;			      /* sort_hits()'s scratch */
	/* Category codes seen (a code never changes once given). */
	struct {
		char name[POI_CATEGORY_MAX + 1];
		int64_t code;
	} cat[CAT_CACHE];
	size_t ncat, cat_next; /* entries; the next to reuse when full */
};

/* The code of category into *ret (0: no POI has it). Returns 0 or an error class. */
static int cat_code(struct poi_db *p, const char *category, int64_t *ret)
{
	struct db_stmt *st = p->st[S_CAT_CODE];
	int r;

	for (size_t i = 0; i < p->ncat; i++)
		if (strcmp(p->cat[i].name, category) == 0) {
			*ret = p->cat[i].code;
			return 0;
		}
	db_bind_text(st, 1, category);
	r = db_step(st);
	*ret = r == 1 ? db_column_int64(st, 0) : 0;
	db_reset(st);
	if (r < 0)
		return r;
	if (r == 1 && strlen(category) <= POI_CATEGORY_MAX) {
		size_t i = p->ncat < CAT_CACHE ? p->ncat++ : p->cat_next++ % CAT_CACHE;

		snprintf(p->cat[i].name, sizeof(p->cat[i].name), "%s", category);
		p->cat[i].code = *ret;
	}
	return 0;
}

int poi_db_new(struct db *db, struct poi_db **ret)
{
	const char *text[N_STMTS];
	struct poi_db *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->db = db;
	for (size_t i = 0; i < N_STMTS; i++)
		text[i] = sql[i];
	text[S_NEAR] = sql_near[db_backend(db)];
	r = db_prepare_all(db, text, N_STMTS, p->st);
	if (r < 0) {
		free(p);
		return r;
	}
	p->stage = (struct db_rows){
		.head = "INSERT INTO poi_import_rows (import_id, id, name, category, brand, "
			"address, lat_e7, lon_e7) VALUES",
		.tail = "ON CONFLICT (import_id, id) DO UPDATE SET name = excluded.name, "
			"category = excluded.category, brand = excluded.brand, address = "
			"excluded.address, lat_e7 = excluded.lat_e7, lon_e7 = excluded.lon_e7",
		.first = 1,
		.ncols = ROW_COLS,
	};
	*ret = p;
	return 0;
}

void poi_db_free(struct poi_db *p)
{
	if (!p)
		return;
	db_finalize_all(p->st, N_STMTS);
	db_rows_free(&p->stage);
	free(p);
}

/* ---- reading ----------------------------------------------------------- */

static int64_t e7_of(double deg)
{
	return (int64_t)llround(deg * 1e7);
}

/* Copies text column col into buf (size bytes), cut to size - 1. */
static void copy_col(struct db_stmt *st, int col, char *buf, size_t size)
{
	const char *t = db_column_text(st, col);
	size_t n = t ? strnlen(t, size - 1) : 0;

	memcpy(buf, t ? t : "", n);
	buf[n] = '\0';
}

/* The current row's POI_COLS, from column c on, into *ret. */
static void read_poi(struct db_stmt *st, int c, struct poi *ret)
{
	ret->lat = geo_deg_of_e7((int32_t)db_column_int64(st, c));
	ret->lon = geo_deg_of_e7((int32_t)db_column_int64(st, c + 1));
	copy_col(st, c + 2, ret->category, sizeof(ret->category));
	copy_col(st, c + 3, ret->id, sizeof(ret->id));
	copy_col(st, c + 4, ret->name, sizeof(ret->name));
	copy_col(st, c + 5, ret->brand, sizeof(ret->brand));
	copy_col(st, c + 6, ret->address, sizeof(ret->address));
}

/*
 * Keeps a hit at distance d among the nearest max of *n: returns the slot
 * of hits to write it into, or -1 when it is not among them. p->order
 * stays sorted by distance.
 */
static int keep_slot(struct poi_db *p, size_t *n, size_t max, double d)
{
	size_t lo = 0, hi = *n;
	uint16_t slot;

	if (*n == max) {
		if (d >= p->order[max - 1].d)
			return -1;
		slot = p->order[max - 1].slot; /* the farthest makes room */
		hi = --*n;
	} else {
		slot = (uint16_t)*n;
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (p->order[mid].d <= d)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&p->order[lo + 1], &p->order[lo], (*n - lo) * sizeof(p->order[0]));
	p->order[lo] = (struct near_slot){ d, slot };
	++*n;
	return slot;
}

/* Puts hits[0..n) into p->order's order, in place (cycles of the permutation). */
static void sort_hits(struct poi_db *p, struct poi_hit *hits, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p->perm[i] = p->order[i].slot;
	for (size_t i = 0; i < n; i++) {
		size_t j = i;

		if (p->perm[i] == i)
			continue;
		p->tmp = hits[i].poi;
		while (p->perm[j] != i) {
			size_t k = p->perm[j];

			hits[j].poi = hits[k].poi;
			p->perm[j] = (uint16_t)j;
			j = k;
		}
		hits[j].poi = p->tmp;
		p->perm[j] = (uint16_t)j;
	}
	for (size_t i = 0; i < n; i++)
		hits[i].distance_m = p->order[i].d;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int poi_near(struct poi_db *p, double lat, double lon, double radius_m, const char *category,
	     struct poi_hit *hits, size_t max)
{
	struct db_stmt *st = p->st[S_NEAR];
	struct geo_box box[2];
	int64_t code = -1; /* any */
	size_t n = 0;
	int nbox, r = 0;

	if (!isfinite(lat) || !isfinite(lon) || lat < -90 || lat > 90 || lon < -180 || lon > 180 ||
	    !isfinite(radius_m) || !(radius_m > 0) || max > POI_NEAR_MAX)
		return -EINVAL;
	if (max == 0)
		return 0;
	if (category && *category) {
		r = cat_code(p, category, &code);
		if (r < 0 || code == 0)
			return r; /* no POI has that category */
	}
	nbox = geo_circle_boxes(lat, lon, radius_m, box);
	for (int b = 0; b < nbox && r >= 0; b++) {
		/* Outward to whole units, one more for the rounding of the bounds. */
		db_bind_int64(
			st, 1,
			clamp64((int64_t)floor(box[b].lat_min * 1e7) - 1, -900000000, 900000000));
		db_bind_int64(
			st, 2,
			clamp64((int64_t)ceil(box[b].lat_max * 1e7) + 1, -900000000, 900000000));
		db_bind_int64(
			st, 3,
			clamp64((int64_t)floor(box[b].lon_min * 1e7) - 1, -1800000000, 1800000000));
		db_bind_int64(
			st, 4,
			clamp64((int64_t)ceil(box[b].lon_max * 1e7) + 1, -1800000000, 1800000000));
		db_bind_int64(st, 5, code < 0 ? 0 : code);
		db_bind_int64(st, 6, code < 0 ? CAT_CODE_MAX + 1 : code + 1);
		while ((r = db_step(st)) == 1) {
			double plat = geo_deg_of_e7((int32_t)db_column_int64(st, 0));
			double plon = geo_deg_of_e7((int32_t)db_column_int64(st, 1));
			double d;
			int slot;

			d = geo_distance_m(lat, lon, plat, plon);
			if (d > radius_m || (slot = keep_slot(p, &n, max, d)) < 0)
				continue;
			read_poi(st, 0, &hits[slot].poi);
		}
		db_reset(st);
	}
	if (r < 0)
		return r;
	sort_hits(p, hits, n);
	return (int)n;
}

int poi_get(struct poi_db *p, const char *id, struct poi *ret)
{
	struct db_stmt *st = p->st[S_GET];
	int r;

	db_bind_text(st, 1, id);
	r = db_step(st);
	if (r == 1)
		read_poi(st, 0, ret);
	db_reset(st);
	return r == 1 ? 0 : r == 0 ? -ENOENT : r;
}

/* Runs a one-value query with $1 = v (when has_arg). Returns the value or an error class. */
static int64_t one_value(struct db_stmt *st, int has_arg, int64_t v)
{
	int64_t out;
	int r;

	if (has_arg)
		db_bind_int64(st, 1, v);
	r = db_step(st);
	out = r == 1 ? db_column_int64(st, 0) : r == 0 ? -ENOENT : r;
	db_reset(st);
	return out;
}

int64_t poi_count(struct poi_db *p)
{
	return one_value(p->st[S_COUNT], 0, 0);
}

/* ---- checks ------------------------------------------------------------ */

static int say(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -EINVAL;
}

/* 1 if s is valid UTF-8 without control characters. */
static int plain_text(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	while (*u) {
		size_t k = *u < 0x80		 ? 0
			   : (*u & 0xe0) == 0xc0 ? 1
			   : (*u & 0xf0) == 0xe0 ? 2
			   : (*u & 0xf8) == 0xf0 ? 3
						 : 9;

		if (k == 9 || *u < 0x20 || *u == 0x7f || (*u == 0xc0 || *u == 0xc1))
			return 0;
		for (size_t i = 1; i <= k; i++)
			if ((u[i] & 0xc0) != 0x80)
				return 0;
		u += k + 1;
	}
	return 1;
}

int poi_set(struct poi *poi, const char *id, const char *name, const char *category,
	    const char *brand, const char *address, double lat, double lon, char *err,
	    size_t errlen)
{
	static const struct {
		const char *what;
		size_t max;
	} f[] = { { "id", POI_ID_MAX },
		  { "name", POI_NAME_MAX },
		  { "category", POI_CATEGORY_MAX },
		  { "brand", POI_BRAND_MAX },
		  { "address", POI_ADDRESS_MAX } };
	const char *v[] = { id, name, category, brand, address };
	char *dst[] = { poi->id, poi->name, poi->category, poi->brand, poi->address };

	memset(poi, 0, sizeof(*poi));
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		size_t n = v[i] ? strlen(v[i]) : 0;

		if (n > f[i].max) {
			snprintf(err, errlen, "%s: longer than %zu bytes", f[i].what, f[i].max);
			return -EINVAL;
		}
		memcpy(dst[i], v[i] ? v[i] : "", n + 1);
	}
	poi->lat = lat;
	poi->lon = lon;
	return poi_check(poi, err, errlen);
}

int poi_check(const struct poi *poi, char *err, size_t errlen)
{
	const char *c;

	if (!poi->id[0])
		return say(err, errlen, "id: missing");
	if (strnlen(poi->id, sizeof(poi->id)) > POI_ID_MAX || !plain_text(poi->id))
		return say(err, errlen, "id: must be 1..64 bytes of text");
	if (!poi->name[0])
		return say(err, errlen, "name: missing");
	if (!plain_text(poi->name))
		return say(err, errlen, "name: must not hold control characters");
	if (!poi->category[0])
		return say(err, errlen, "category: missing");
	for (c = poi->category; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return say(err, errlen,
				   "category: must be lower-case letters, digits and _ "
				   "(fuel, dealer, workshop, car_wash, charger, ...)");
	if (!plain_text(poi->brand) || !plain_text(poi->address))
		return say(err, errlen, "brand, address: must not hold control characters");
	if (!isfinite(poi->lat) || poi->lat < -90 || poi->lat > 90)
		return say(err, errlen, "lat: must be a latitude in [-90, 90]");
	if (!isfinite(poi->lon) || poi->lon < -180 || poi->lon > 180)
		return say(err, errlen, "lon: must be a longitude in [-180, 180]");
	return 0;
}

/* ---- writes ------------------------------------------------------------ */

/* Opens a transaction unless the caller has one: *own says which. */
static int tx_open(struct poi_db *p, int *own)
{
	*own = !db_in_tx(p->db);
	return *own ? db_begin(p->db) : 0;
}

/* Ends what tx_open() opened: commit on success, else roll back. */
static int tx_close(struct poi_db *p, int own, int r)
{
	if (!own)
		return r;
	if (r >= 0) {
		int c = db_commit(p->db);

		if (c < 0)
			return c;
		return r;
	}
	db_rollback(p->db);
	return r;
}

int poi_delete(struct poi_db *p, const char *id)
{
	struct db_stmt *st = p->st[S_DELETE];
	int own, r = tx_open(p, &own);

	if (r < 0)
		return r;
	db_bind_text(st, 1, id);
	r = db_step(st);
	db_reset(st);
	r = r == 1 ? 0 : r == 0 ? -ENOENT : r;
	return tx_close(p, own, r);
}

int poi_import_begin(struct poi_db *p, const char *source, int64_t rows, int64_t now_ms,
		     int64_t *ret_id)
{
	struct db_stmt *st = p->st[S_BEGIN];
	int64_t id = 0;
	int own, r;

	if (!source || rows < 0 || rows > POI_IMPORT_ROWS_MAX)
		return -EINVAL;
	r = tx_open(p, &own);
	if (r < 0)
		return r;
	db_bind_int64(p->st[S_STALE_ROWS], 1, now_ms - STALE_IMPORT_MS);
	r = db_run(p->st[S_STALE_ROWS]);
	if (r == 0) {
		db_bind_int64(p->st[S_STALE_IMPORTS], 1, now_ms - STALE_IMPORT_MS);
		r = db_run(p->st[S_STALE_IMPORTS]);
	}
	if (r == 0) {
		db_bind_text(st, 1, source);
		db_bind_int64(st, 2, rows);
		db_bind_int64(st, 3, now_ms);
		r = db_step(st);
		if (r == 1)
			id = db_column_int64(st, 0);
		r = r == 1 ? 0 : r == 0 ? -EIO : r;
		db_reset(st);
	}
	r = tx_close(p, own, r);
	if (r == 0)
		*ret_id = id;
	return r;
}

/* Stages rows[0..n), no two with the same id (one statement may not upsert a row twice). */
static int stage(struct poi_db *p, int64_t id, const struct poi *rows, size_t n)
{
	for (size_t done = 0; done < n;) {
		struct db_stmt *st;
		size_t k;
		int r = db_rows_get(p->db, &p->stage, n - done, &st, &k);

		if (r < 0)
			return r;
		for (size_t i = 0; i < k; i++) {
			const struct poi *x = &rows[done + i];
			int o = 2 + (int)i * ROW_COLS;

			db_bind_int64(st, o - 1, id);
			db_bind_text(st, o, x->id);
			db_bind_text(st, o + 1, x->name);
			db_bind_text(st, o + 2, x->category);
			db_bind_text(st, o + 3, x->brand);
			db_bind_text(st, o + 4, x->address);
			db_bind_int64(st, o + 5, e7_of(x->lat));
			db_bind_int64(st, o + 6, e7_of(x->lon));
		}
		r = db_run(st);
		if (r < 0)
			return r;
		done += k;
	}
	return 0;
}

int poi_import_rows(struct poi_db *p, int64_t id, const struct poi *pois, size_t n)
{
	char why[128];
	size_t start = 0;
	int own, r;

	if (n > POI_IMPORT_CHUNK)
		return -E2BIG;
	for (size_t i = 0; i < n; i++)
		if (poi_check(&pois[i], why, sizeof(why)) < 0)
			return -EINVAL;
	r = tx_open(p, &own);
	if (r < 0)
		return r;
	db_bind_int64(p->st[S_RECEIVE], 1, id);
	db_bind_int64(p->st[S_RECEIVE], 2, (int64_t)n);
	r = db_step(p->st[S_RECEIVE]);
	db_reset(p->st[S_RECEIVE]);
	if (r == 0) /* not open, or more rows than announced */
		r = one_value(p->st[S_IS_OPEN], 1, id) == -ENOENT ? -ENOENT : -EINVAL;
	else if (r == 1)
		r = 0;
	/*
	 * Runs of up to DB_ROWS_MAX rows whose ids differ: an id repeated
	 * within a run starts the next one, so the last row of an id wins.
	 */
	for (size_t i = 0; r == 0 && i < n; i++) {
		int cut = i - start == DB_ROWS_MAX;

		for (size_t j = start; !cut && j < i; j++)
			cut = strcmp(pois[i].id, pois[j].id) == 0;
		if (cut) {
			r = stage(p, id, pois + start, i - start);
			start = i;
		}
	}
	if (r == 0 && start < n)
		r = stage(p, id, pois + start, n - start);
	return tx_close(p, own, r);
}

int poi_import_commit(struct poi_db *p, int64_t id)
{
	int64_t v, rows = 0;
	int own, r = tx_open(p, &own);

	if (r < 0)
		return r;
	v = one_value(p->st[S_CLAIM], 1, id);
	if (v == -ENOENT)
		r = one_value(p->st[S_IS_OPEN], 1, id) == -ENOENT ? -ENOENT : -EINVAL;
	else if (v < 0)
		r = (int)v;
	if (r == 0) {
		rows = one_value(p->st[S_STAGED], 1, id);
		r = rows < 0 ? (int)rows : 0;
	}
	if (r == 0) {
		db_bind_int64(p->st[S_CATEGORIES], 1, id);
		r = db_run(p->st[S_CATEGORIES]);
	}
	if (r == 0) {
		db_bind_int64(p->st[S_UPSERT], 1, id);
		r = db_run(p->st[S_UPSERT]);
	}
	if (r == 0) {
		db_bind_int64(p->st[S_UNSTAGE], 1, id);
		r = db_run(p->st[S_UNSTAGE]);
	}
	r = tx_close(p, own, r);
	return r < 0 ? r : (int)rows;
}
