/*
 * The poi domain (poi.h): points of interest, their spatial index and
 * all-or-nothing imports. docs/poi.md.
 *
 * Positions are stored in 1e-7 degrees (integers, exact in both backends).
 * The index: SQLite's integer R*Tree pois_rtree, kept in step with pois by
 * triggers; PostgreSQL's GiST index over point(lon_e7, lat_e7). Only the
 * near query differs per backend; everything else is SQL both run.
 *
 * Queries are answered by the handle's in-memory index (poi_index.h), a
 * copy of (rid, position, category code) of every row, built from the
 * table and swapped whole. It follows the table by poi_meta.version,
 * which every commit and delete sets to a new random value in its own
 * transaction (random, not a counter: a value a rolled-back write showed
 * this handle can never come back as someone else's). A handle's own
 * write marks it dirty: its next query outside a transaction checks the
 * version and rebuilds. Inside a transaction (the rules' query in ingest's)
 * nothing is rebuilt: reading the whole table there would hold that
 * transaction, and every car's batch in it, for a quarter of a second per
 * million POIs. After its own write the handle answers in SQL there (SQL
 * sees the uncommitted write) until a query or poi_refresh() outside a
 * transaction rebuilt. Anyone else's write is found by the version check,
 * at most once per POI_CHECK_MS and outside transactions: the gateway's loop
 * calls poi_refresh() every POI_CHECK_MS while ingest is idle, so the rules
 * see another instance's import within a second or two. The build reads the
 * version first, then the rows in pages by rid (PostgreSQL holds a page's
 * result in memory, not the table's): rows newer than the version only
 * mean one rebuild more. When there is no index (too many POIs, a failed
 * build, poi_set_in_memory() off), the same query runs in SQL:
 * the box(es) of the circle widened by one unit to integers, one index
 * query per box that also filters the category inside the index (SQLite:
 * the category's code is the R*Tree's third dimension, and the R*Tree
 * alone answers it), the exact haversine distance, the nearest max kept.
 *
 * poi_near() is poi_near_ids() and its hits' rows (SQLite: a lookup by rid
 * per hit; PostgreSQL: one statement for all, one round trip).
 * A category's code (poi_categories) is given at its first import and
 * never changes, so the handle remembers the codes it looked up. The hot
 * path does no allocation.
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
#include <sys/random.h>
#include <time.h>

#include "geo.h"
#include "log.h"
#include "loop.h"
#include "poi_index.h"

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
	S_GET_RID,
	S_GET_RIDS,
	S_VERSION,
	S_BUMP,
	S_SCAN,
};

#define POI_COLS "lat_e7, lon_e7, category, id, name, brand, address"

/*
 * The near query in SQL per backend: rid, lat_e7, lon_e7 and cat_code of
 * the POIs in the box $1..$4 (lat_min, lat_max, lon_min, lon_max in 1e-7
 * degrees) whose category code is in [$5, $6). SQLite: the R*Tree alone.
 */
static const char *const sql_near[DB_BACKEND_COUNT] = {
	[DB_SQLITE] = "SELECT rid, lat_min, lon_min, cat_min FROM pois_rtree WHERE lat_min >= $1 "
		      "AND lat_max <= $2 AND lon_min >= $3 AND lon_max <= $4 AND cat_min >= $5 "
		      "AND cat_max <= $6",
	[DB_POSTGRESQL] = "SELECT rid, lat_e7, lon_e7, cat_code FROM pois WHERE "
			  "point(lon_e7::float8, lat_e7::float8) <@ box(point($3::float8, "
			  "$1::float8), point($4::float8, $2::float8)) AND cat_code >= $5 AND "
			  "cat_code < $6",
};

/*
 * The rows of a query's hits in one statement, rid first: PostgreSQL, one
 * round trip for all ($1 an array literal of rids). SQLite runs S_GET_RID
 * per hit instead (no round trip; one statement with a list was slower).
 */
static const char *const sql_get_rids[DB_BACKEND_COUNT] = {
	[DB_SQLITE] = "SELECT rid, " POI_COLS " FROM pois WHERE rid = $1", /* unused */
	[DB_POSTGRESQL] = "SELECT rid, " POI_COLS " FROM pois WHERE rid = ANY($1::bigint[])",
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
	[S_GET_RID] = "SELECT " POI_COLS " FROM pois WHERE rid = $1",
	[S_GET_RIDS] = NULL, /* sql_get_rids[backend] */
	[S_VERSION] = "SELECT version FROM poi_meta WHERE id = 1",
	[S_BUMP] = "UPDATE poi_meta SET version = $1 WHERE id = 1",
	[S_SCAN] = "SELECT rid, lat_e7, lon_e7, cat_code FROM pois WHERE rid > $1 ORDER BY rid "
		   "LIMIT 65536", /* a page of a build */
};
#define N_STMTS (sizeof(sql) / sizeof(sql[0]))

struct poi_db {
	struct db *db;			   /* borrowed */
	struct db_stmt *st[N_STMTS];	   /* owned */
	struct db_rows stage;		   /* owned statements: staged rows */
	struct poi_index *ix;		   /* owned; NULL: queries run in SQL */
	int64_t ix_version;		   /* the poi_meta version ix was built (or refused) at */
	int tried;			   /* a build was tried at ix_version */
	int dirty;			   /* this handle wrote since the last version check */
	int unsure;			   /* ix built in a transaction this handle wrote in */
	int off;			   /* poi_set_in_memory(p, 0): no index, SQL */
	int64_t checked_ms;		   /* monotonic time of the last version check */
	double build_ms;		   /* how long the last build took */
	struct poi_ref refs[POI_NEAR_MAX]; /* poi_near()'s scratch */
	uint8_t found[POI_NEAR_MAX];	   /* poi_near()'s scratch: refs[i]'s row was read */
	char rids[POI_NEAR_MAX * 21 + 3];  /* poi_near()'s scratch: "{rid,...}" */
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
	text[S_GET_RIDS] = sql_get_rids[db_backend(db)];
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
	p->dirty = 1;	      /* the first query builds, unless this does */
	(void)poi_refresh(p); /* a failure is logged; queries run in SQL meanwhile */
	*ret = p;
	return 0;
}

void poi_db_free(struct poi_db *p)
{
	if (!p)
		return;
	db_finalize_all(p->st, N_STMTS);
	db_rows_free(&p->stage);
	poi_index_free(p->ix);
	free(p);
}

/* ---- reading ----------------------------------------------------------- */

static int64_t e7_of(double deg)
{
	return (int64_t)llround(deg * 1e7);
}

/* The current row's POI_COLS, from column c on, into *ret. */
static void read_poi(struct db_stmt *st, int c, struct poi *ret)
{
	ret->lat = geo_deg_of_e7((int32_t)db_column_int64(st, c));
	ret->lon = geo_deg_of_e7((int32_t)db_column_int64(st, c + 1));
	db_column_copy(st, c + 2, ret->category, sizeof(ret->category));
	db_column_copy(st, c + 3, ret->id, sizeof(ret->id));
	db_column_copy(st, c + 4, ret->name, sizeof(ret->name));
	db_column_copy(st, c + 5, ret->brand, sizeof(ret->brand));
	db_column_copy(st, c + 6, ret->address, sizeof(ret->address));
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

/* ---- the in-memory index ----------------------------------------------- */

/* Reads every row into *ret (owned by the caller), at most POI_INDEX_MAX (else -E2BIG). */
static int scan_rows(struct poi_db *p, struct poi_index_entry **ret, size_t *ret_n)
{
	struct db_stmt *st = p->st[S_SCAN];
	struct poi_index_entry *e = NULL;
	int64_t count = poi_count(p), last = 0;
	size_t n = 0, cap;
	int r = 0;

	if (count < 0)
		return (int)count;
	if (count > POI_INDEX_MAX)
		return -E2BIG;
	cap = (size_t)count + (size_t)count / 16 + 1024; /* rows a concurrent commit adds */
	e = malloc(cap * sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (int more = 1; more && r >= 0;) {
		more = 0;
		db_bind_int64(st, 1, last);
		while (r >= 0 && (r = db_step(st)) == 1) {
			more = 1;
			last = db_column_int64(st, 0);
			if (n == cap) {
				struct poi_index_entry *g;

				if (cap >= POI_INDEX_MAX) {
					r = -E2BIG;
					break;
				}
				cap = cap * 2 < POI_INDEX_MAX ? cap * 2 : POI_INDEX_MAX;
				g = realloc(e, cap * sizeof(*e));
				if (!g) {
					r = -ENOMEM;
					break;
				}
				e = g;
			}
			r = poi_index_entry_set(&e[n], last, db_column_int64(st, 3),
						(int32_t)db_column_int64(st, 1),
						(int32_t)db_column_int64(st, 2));
			n++;
		}
		db_reset(st);
	}
	if (r < 0) {
		free(e);
		return r;
	}
	*ret = e;
	*ret_n = n;
	return 0;
}

/* Replaces the index by one built from the table as it is at version v. */
static int rebuild(struct poi_db *p, int64_t v)
{
	struct poi_index_entry *e = NULL;
	struct poi_index *ix = NULL;
	int64_t t0 = (int64_t)loop_now_ms();
	size_t n = 0;
	int r;

	poi_index_free(p->ix); /* stale now: never serve it, nor hold two */
	p->ix = NULL;
	r = scan_rows(p, &e, &n);
	if (r == 0)
		r = poi_index_new(e, n, &ix);
	p->build_ms = (double)((int64_t)loop_now_ms() - t0);
	if (r == -E2BIG || r == -ERANGE) {
		log_warn("poi: not held in memory (%s: more than %d POIs, or a row id or "
			 "category code too large); radius queries run in SQL",
			 strerror(-r), POI_INDEX_MAX);
		p->ix_version = v;
		p->tried = 1; /* not again before the table changes */
		return 0;
	}
	if (r < 0) {
		log_warn("poi: building the in-memory index failed (%s); radius queries run in "
			 "SQL, the next check tries again",
			 strerror(-r));
		p->tried = 0;
		return r;
	}
	p->ix = ix;
	p->ix_version = v;
	p->tried = 1;
	log_info("poi: %zu POIs in memory (%zu bytes), built in %.0f ms", n, poi_index_bytes(ix),
		 p->build_ms);
	return 0;
}

/*
 * Checks the version and rebuilds when it moved; now: monotonic ms. An
 * index built in a transaction this handle wrote in stays unsure (checked
 * again outside a transaction): the write may still roll back.
 */
static int check_version(struct poi_db *p, int64_t now)
{
	int unsure = db_in_tx(p->db) && (p->dirty || p->unsure);
	int64_t v = one_value(p->st[S_VERSION], 0, 0);

	if (v < 0)
		return (int)v; /* -ENOENT: poi_meta without its row (a migration not run) */
	p->checked_ms = now;
	p->dirty = 0;
	p->unsure = unsure;
	if (p->tried && v == p->ix_version)
		return 0;
	return rebuild(p, v);
}

int poi_refresh(struct poi_db *p)
{
	return p->off ? 0 : check_version(p, (int64_t)loop_now_ms());
}

void poi_set_in_memory(struct poi_db *p, int on)
{
	p->off = !on;
	p->dirty = 1; /* on: the next query builds */
	p->tried = 0;
	poi_index_free(p->ix);
	p->ix = NULL;
}

void poi_index_info(struct poi_db *p, struct poi_index_info *ret)
{
	*ret = (struct poi_index_info){
		.in_memory = p->ix != NULL,
		.count = p->ix ? poi_index_count(p->ix) : 0,
		.bytes = p->ix ? poi_index_bytes(p->ix) : 0,
		.build_ms = p->build_ms,
		.version = p->ix_version,
	};
}

/*
 * The index a query may use now, or NULL (SQL then). Outside a transaction
 * it checks the version when this handle wrote, when unsure, or once per
 * POI_CHECK_MS, and rebuilds when it moved. Inside one (the rules, in ingest's
 * transaction) it never rebuilds, which would hold the transaction for the
 * whole table's read: after a write of this handle's, or on an index it is
 * unsure of, the query runs in SQL (which sees the transaction's own
 * writes), and a due check waits for poi_refresh() outside (the gateway
 * calls it every POI_CHECK_MS while ingest is idle) or the next query
 * outside a transaction.
 */
static const struct poi_index *fresh_index(struct poi_db *p)
{
	int64_t now;

	if (p->off)
		return NULL;
	if (db_in_tx(p->db))
		return p->dirty || p->unsure ? NULL : p->ix;
	now = (int64_t)loop_now_ms();
	if ((p->dirty || p->unsure || now - p->checked_ms >= POI_CHECK_MS) &&
	    check_version(p, now) < 0) {
		p->checked_ms = now; /* no faster than POI_CHECK_MS while it fails */
		p->dirty = 0;
		return NULL;
	}
	return p->ix;
}

/* ---- reading ----------------------------------------------------------- */

/* The SQL path of poi_near_ids(), with the category's code (< 0: any). */
static int near_sql(struct poi_db *p, double lat, double lon, double radius_m, int64_t code,
		    struct poi_ref *hits, size_t max)
{
	struct db_stmt *st = p->st[S_NEAR];
	struct geo_box box[2];
	size_t n = 0;
	int nbox, r = 0;

	nbox = geo_circle_boxes(lat, lon, radius_m, box);
	for (int b = 0; b < nbox && r >= 0; b++) {
		int32_t e7[4];

		poi_box_e7(&box[b], e7);
		for (int i = 0; i < 4; i++)
			db_bind_int64(st, i + 1, e7[i]);
		db_bind_int64(st, 5, code < 0 ? 0 : code);
		db_bind_int64(st, 6, code < 0 ? CAT_CODE_MAX + 1 : code + 1);
		while ((r = db_step(st)) == 1) {
			struct poi_ref h;

			h.lat = geo_deg_of_e7((int32_t)db_column_int64(st, 1));
			h.lon = geo_deg_of_e7((int32_t)db_column_int64(st, 2));
			h.distance_m = geo_distance_m(lat, lon, h.lat, h.lon);
			if (h.distance_m > radius_m)
				continue;
			h.rid = db_column_int64(st, 0);
			h.cat_code = db_column_int64(st, 3);
			poi_ref_keep(hits, &n, max, &h);
		}
		db_reset(st);
	}
	return r < 0 ? r : (int)n;
}

int poi_near_ids(struct poi_db *p, double lat, double lon, double radius_m, const char *category,
		 struct poi_ref *hits, size_t max)
{
	const struct poi_index *ix;
	int64_t code = -1; /* any */
	int r;

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
	ix = fresh_index(p);
	if (ix)
		return poi_index_near(ix, lat, lon, radius_m, code, hits, max);
	return near_sql(p, lat, lon, radius_m, code, hits, max);
}

/* Reads the rows of p->refs[0..n) into hits[i].poi, marking p->found[i]. */
static int read_rows(struct poi_db *p, int n, struct poi_hit *hits)
{
	struct db_stmt *st = p->st[S_GET_RIDS];
	size_t len = 1;
	int r;

	memset(p->found, 0, (size_t)n);
	if (db_backend(p->db) != DB_POSTGRESQL) {
		for (int i = 0; i < n; i++) {
			r = poi_get_rowid(p, p->refs[i].rid, &hits[i].poi);
			if (r < 0 && r != -ENOENT)
				return r;
			p->found[i] = r == 0;
		}
		return 0;
	}
	p->rids[0] = '{';
	for (int i = 0; i < n; i++)
		len += (size_t)snprintf(p->rids + len, sizeof(p->rids) - len, "%s%lld",
					i ? "," : "", (long long)p->refs[i].rid);
	snprintf(p->rids + len, sizeof(p->rids) - len, "}");
	db_bind_text(st, 1, p->rids);
	while ((r = db_step(st)) == 1) {
		int64_t rid = db_column_int64(st, 0);

		for (int i = 0; i < n; i++)
			if (p->refs[i].rid == rid && !p->found[i]) {
				read_poi(st, 1, &hits[i].poi);
				p->found[i] = 1;
				break;
			}
	}
	db_reset(st);
	return r;
}

int poi_near(struct poi_db *p, double lat, double lon, double radius_m, const char *category,
	     struct poi_hit *hits, size_t max)
{
	int n = poi_near_ids(p, lat, lon, radius_m, category, p->refs, max), k = 0, r;

	if (n <= 0)
		return n;
	r = read_rows(p, n, hits);
	if (r < 0)
		return r;
	for (int i = 0; i < n; i++) {
		if (!p->found[i])
			continue; /* deleted through another handle since the last check */
		if (k != i)
			hits[k].poi = hits[i].poi;
		hits[k++].distance_m = p->refs[i].distance_m;
	}
	return k;
}

/* Reads the one row st (bound) finds into ret. Returns 0, -ENOENT or an error class. */
static int get_one(struct db_stmt *st, struct poi *ret)
{
	int r = db_step(st);

	if (r == 1)
		read_poi(st, 0, ret);
	db_reset(st);
	return r == 1 ? 0 : r == 0 ? -ENOENT : r;
}

int poi_get_rowid(struct poi_db *p, int64_t rid, struct poi *ret)
{
	db_bind_int64(p->st[S_GET_RID], 1, rid);
	return get_one(p->st[S_GET_RID], ret);
}

int poi_get(struct poi_db *p, const char *id, struct poi *ret)
{
	db_bind_text(p->st[S_GET], 1, id);
	return get_one(p->st[S_GET], ret);
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

/*
 * Sets poi_meta.version to a new random value (never 0, the migration's)
 * in the write's transaction, so every handle on the database sees the
 * change at its next check, and marks this handle's index for a check at
 * its next query.
 */
static int bump(struct poi_db *p)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts); /* no entropy yet: time and address */
		v = ((uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec) ^
		    (uint64_t)(uintptr_t)p << 16;
	}
	v = (v >> 1) | 1; /* positive in a BIGINT, and never 0 */
	p->dirty = 1;
	db_bind_int64(p->st[S_BUMP], 1, (int64_t)v);
	return db_run(p->st[S_BUMP]);
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
	if (r == 0)
		r = bump(p);
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
	if (r == 0)
		r = bump(p);
	r = tx_close(p, own, r);
	return r < 0 ? r : (int)rows;
}
