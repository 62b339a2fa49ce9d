/*
 * Unit tests of the poi domain (gateway/poi/) on whichever backend
 * db_test_util.h selects: radius queries against a brute-force haversine
 * over random points clustered where geometry is hard (the antimeridian,
 * both poles) and in every hemisphere; the category filter and the limit;
 * imports all or nothing (a bad row, missing rows, an uncommitted import
 * is unseen, one rolled back with its caller's transaction); a row with an
 * id that exists replaces it, index included; delete; and the file reader
 * (CSV and GeoJSON, every bad line named FILE:LINE or FILE: feature N).
 *
 * The in-memory index (poi_index.h), also built inside a transaction with
 * this handle's uncommitted write and after its rollback, and the SQL path
 * (poi_set_in_memory() off, as when refused) both match the brute force;
 * a handle's own commit and delete are seen by its next query, and those
 * of a second handle on the same database after poi_refresh() (the check
 * a query makes once a second, forced).
 */
#include "db_test_util.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "db.h"
#include "geo.h"
#include "poi.h"
#include "poi_file.h"
#include "schema.h"

#define NOW_MS 1764590400000LL
#define NPOINTS 3000

struct fixture {
	struct db *db;
	struct poi_db *poi;
	char name[64]; /* the database's, for a second handle */
};

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));
	char name[64], err[600];

	assert_non_null(f);
	snprintf(name, sizeof(name), "poi_%d", count++);
	snprintf(f->name, sizeof(f->name), "%s", name);
	assert_int_equal(db_test_open(name, &f->db), 0);
	if (schema_migrate(f->db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(poi_db_new(f->db, &f->poi), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	poi_db_free(f->poi);
	db_close(f->db);
	free(f);
	return 0;
}

static void mk(struct poi *p, const char *id, const char *cat, double lat, double lon)
{
	char why[128];

	if (poi_set(p, id, "Station", cat, "Brand", "1 Main St", lat, lon, why, sizeof(why)) < 0)
		fail_msg("%s: %s", id, why);
}

/* Imports pois[0..n) in one import of chunks. Returns what commit returns. */
static int import(struct fixture *f, const struct poi *pois, size_t n)
{
	int64_t id;

	assert_int_equal(poi_import_begin(f->poi, "test", (int64_t)n, NOW_MS, &id), 0);
	for (size_t done = 0; done < n; done += 1000)
		assert_int_equal(
			poi_import_rows(f->poi, id, pois + done, n - done < 1000 ? n - done : 1000),
			0);
	return poi_import_commit(f->poi, id);
}

static double urand(double lo, double hi)
{
	return lo + (hi - lo) * (rand() / (double)RAND_MAX);
}

/* Where points cluster: antimeridian, poles, every hemisphere. */
static const double centers[][2] = {
	{ 0, 179.99 },	   { -16.5, -179.95 }, { 89.95, 0 },	  { -89.9, 45 }, { 48.85, 2.35 },
	{ -33.87, 151.2 }, { 40.71, -74.0 },   { -34.6, -58.38 }, { 0, 0 },
};
#define NCENTERS (sizeof(centers) / sizeof(centers[0]))

/* A point within about km of center c (longitude folded into [-180, 180]). */
static void scatter(int c, double km, double *lat, double *lon)
{
	double d = km / 111.2;

	*lat = centers[c][0] + urand(-d, d);
	if (*lat > 90)
		*lat = 180 - *lat;
	if (*lat < -90)
		*lat = -180 - *lat;
	*lon = remainder(centers[c][1] + urand(-d, d) / fmax(cos(*lat * M_PI / 180), 0.05), 360);
}

static int hit_cmp(const void *a, const void *b)
{
	const struct poi_hit *x = a, *y = b;

	return x->distance_m < y->distance_m ? -1 : x->distance_m > y->distance_m;
}

static const char *const cats[] = { "fuel", "charger", "car_wash" };

/*
 * nq random queries around the centres (and on the poles and the
 * antimeridian), each answered by poi_near() and poi_near_ids() and
 * compared with a brute-force haversine over pois[0..n).
 */
static void check_queries(struct fixture *f, const struct poi *pois, int n, int nq)
{
	static struct poi_hit got[POI_NEAR_MAX], want[NPOINTS];
	static struct poi_ref ref[POI_NEAR_MAX];
	static const double edge[][2] = { { 90, 0 },   { -90, 0 },  { 0, 180 },
					  { 0, -180 }, { 45, 180 }, { -89.99, -179.99 } };

	for (int q = 0; q < nq; q++) {
		double lat, lon, r = urand(500, 25000);
		const char *cat = q % 4 == 3 ? cats[q % 3] : NULL;
		size_t nw = 0;
		int ng, nr;

		if (q % 10 == 9) {
			lat = edge[(q / 10) % 6][0];
			lon = edge[(q / 10) % 6][1];
		} else {
			scatter(q % (int)NCENTERS, 20, &lat, &lon);
		}
		for (int i = 0; i < n; i++) {
			/* The stored position is the 1e-7 degree one. */
			double plat = round(pois[i].lat * 1e7) / 1e7,
			       plon = round(pois[i].lon * 1e7) / 1e7;
			double d = geo_distance_m(lat, lon, plat, plon);

			if (d <= r && (!cat || strcmp(cat, pois[i].category) == 0)) {
				want[nw].poi = pois[i];
				want[nw++].distance_m = d;
			}
		}
		qsort(want, nw, sizeof(want[0]), hit_cmp);
		ng = poi_near(f->poi, lat, lon, r, cat, got, POI_NEAR_MAX);
		nr = poi_near_ids(f->poi, lat, lon, r, cat, ref, POI_NEAR_MAX);
		if (ng < 0 || (size_t)ng != nw || nr != ng)
			fail_msg("query %d at (%.5f, %.5f) r %.0f: %d hits, %d refs, brute force "
				 "%zu",
				 q, lat, lon, r, ng, nr, nw);
		for (int i = 0; i < ng; i++) {
			struct poi one;

			assert_true(fabs(got[i].distance_m - want[i].distance_m) < 1e-6);
			assert_true(ref[i].distance_m == got[i].distance_m);
			assert_true(i == 0 || got[i - 1].distance_m <= got[i].distance_m);
			if (cat)
				assert_string_equal(got[i].poi.category, cat);
			/* The ref names the same row the full query read. */
			assert_int_equal(poi_get_rowid(f->poi, ref[i].rid, &one), 0);
			assert_true(one.lat == ref[i].lat && one.lon == ref[i].lon);
			assert_true(fabs(geo_distance_m(lat, lon, one.lat, one.lon) -
					 ref[i].distance_m) < 1e-9);
		}
		/* Same set of ids (order among equal distances aside). */
		for (int i = 0; i < ng; i++) {
			int found = 0;

			for (size_t k = 0; k < nw && !found; k++)
				found = strcmp(got[i].poi.id, want[k].poi.id) == 0;
			assert_true(found);
		}
	}
}

static void test_near_matches_brute_force(void **state)
{
	struct fixture *f = *state;
	static struct poi pois[NPOINTS + 8];
	static const double edge[][2] = { { 90, 0 },	   { -90, 0 },	    { 0, 180 },
					  { 0, -180 },	   { 45, 180 },	    { 45, -180 },
					  { 89.999, 100 }, { -89.999, -60 } };
	struct poi_index_info info;
	struct poi far;
	int n = NPOINTS;

	srand(7);
	for (int i = 0; i < NPOINTS; i++) {
		char id[16];
		double lat, lon;

		scatter(i % (int)NCENTERS, 30, &lat, &lon);
		snprintf(id, sizeof(id), "p%d", i);
		mk(&pois[i], id, cats[i % 3], lat, lon);
	}
	for (int i = 0; i < 8; i++) { /* on the poles and the antimeridian exactly */
		char id[16];

		snprintf(id, sizeof(id), "e%d", i);
		mk(&pois[n++], id, cats[i % 3], edge[i][0], edge[i][1]);
	}
	assert_int_equal(import(f, pois, (size_t)n), n);
	assert_int_equal(poi_count(f->poi), n);
	/* In memory. */
	check_queries(f, pois, n, 200);
	poi_index_info(f->poi, &info);
	assert_true(info.in_memory);
	assert_int_equal(info.count, n);
	assert_true(info.bytes >= (size_t)n * 16);
	/* In SQL, as when the index is refused. */
	poi_set_in_memory(f->poi, 0);
	check_queries(f, pois, n, 200);
	poi_index_info(f->poi, &info);
	assert_false(info.in_memory);
	poi_set_in_memory(f->poi, 1);
	assert_int_equal(poi_refresh(f->poi), 0); /* built again, outside a transaction */
	poi_index_info(f->poi, &info);
	assert_true(info.in_memory);
	assert_int_equal(info.count, n);
	/*
	 * Inside a transaction holding this handle's own write (a POI far from
	 * every query): not rebuilt there (that would hold the transaction for
	 * the whole table), but answered in SQL, which sees the write; rolled
	 * back, the next query outside rebuilds without it.
	 */
	assert_int_equal(db_begin(f->db), 0);
	mk(&far, "far", "fuel", -60, -100);
	assert_int_equal(import(f, &far, 1), 1);
	check_queries(f, pois, n, 100);
	{
		struct poi_ref ref[2];

		assert_int_equal(poi_near_ids(f->poi, -60, -100, 1000, NULL, ref, 2), 1);
	}
	poi_index_info(f->poi, &info);
	assert_int_equal(info.count, n); /* the index is as it was */
	assert_int_equal(db_rollback(f->db), 0);
	check_queries(f, pois, n, 100);
	poi_index_info(f->poi, &info);
	assert_true(info.in_memory);
	assert_int_equal(info.count, n);
	assert_int_equal(poi_count(f->poi), n);
	{
		struct poi_ref ref[2];

		assert_int_equal(poi_near_ids(f->poi, -60, -100, 1000, NULL, ref, 2), 0);
	}
}

static void test_near_limit_and_fields(void **state)
{
	struct fixture *f = *state;
	struct poi pois[40], one;
	struct poi_hit hits[5];

	for (int i = 0; i < 40; i++) {
		char id[16];

		snprintf(id, sizeof(id), "s%02d", i);
		/* On a line north of (52, 13), 100 m apart, inserted farthest first. */
		mk(&pois[i], id, "fuel", 52 + (40 - i) * 0.0009, 13);
	}
	assert_int_equal(import(f, pois, 40), 40);
	assert_int_equal(poi_near(f->poi, 52, 13, 10000, NULL, hits, 5), 5);
	for (int i = 0; i < 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "s%02d", 39 - i);
		assert_string_equal(hits[i].poi.id, id);
		assert_true(fabs(hits[i].distance_m - (i + 1) * 100.07) < 0.5);
	}
	{
		struct poi_ref ref[5];

		assert_int_equal(poi_near_ids(f->poi, 52, 13, 10000, NULL, ref, 5), 5);
		for (int i = 0; i < 5; i++) {
			assert_true(ref[i].distance_m == hits[i].distance_m);
			assert_int_equal(poi_get_rowid(f->poi, ref[i].rid, &one), 0);
			assert_string_equal(one.id, hits[i].poi.id);
		}
		assert_int_equal(poi_near_ids(f->poi, 52, 13, 10000, "fuel", ref, 0), 0);
		assert_int_equal(poi_near_ids(f->poi, 52, 13, 10000, "charger", ref, 5), 0);
		assert_int_equal(poi_near_ids(f->poi, 91, 13, 100, NULL, ref, 5), -EINVAL);
		assert_int_equal(poi_get_rowid(f->poi, 1LL << 50, &one), -ENOENT);
	}
	assert_string_equal(hits[0].poi.name, "Station");
	assert_string_equal(hits[0].poi.brand, "Brand");
	assert_string_equal(hits[0].poi.address, "1 Main St");
	assert_true(fabs(hits[0].poi.lat - 52.0009) < 1e-9);
	assert_int_equal(poi_near(f->poi, 52, 13, 10000, "charger", hits, 5), 0);
	assert_int_equal(poi_near(f->poi, 52, 13, 10000, "", hits, 5), 5);
	assert_int_equal(poi_near(f->poi, 52, 13, 150, NULL, hits, 5), 1);
	/* Bad queries. */
	assert_int_equal(poi_near(f->poi, 91, 13, 100, NULL, hits, 5), -EINVAL);
	assert_int_equal(poi_near(f->poi, 52, 181, 100, NULL, hits, 5), -EINVAL);
	assert_int_equal(poi_near(f->poi, 52, 13, 0, NULL, hits, 5), -EINVAL);
	assert_int_equal(poi_near(f->poi, NAN, 13, 10, NULL, hits, 5), -EINVAL);
	assert_int_equal(poi_near(f->poi, 52, 13, 10, NULL, hits, POI_NEAR_MAX + 1), -EINVAL);
	assert_int_equal(poi_get(f->poi, "s07", &one), 0);
	assert_string_equal(one.category, "fuel");
	assert_int_equal(poi_get(f->poi, "nope", &one), -ENOENT);
}

static void test_import_all_or_nothing(void **state)
{
	struct fixture *f = *state;
	struct poi pois[3], bad;
	struct poi_hit hits[4];
	int64_t id;

	mk(&pois[0], "a", "fuel", 10, 10);
	mk(&pois[1], "b", "fuel", 10.001, 10);
	mk(&pois[2], "c", "dealer", 10.002, 10);
	/* A bad row refuses the chunk: nothing of it is staged. */
	assert_int_equal(poi_import_begin(f->poi, "t", 3, NOW_MS, &id), 0);
	bad = pois[2];
	bad.lat = 95;
	assert_int_equal(poi_import_rows(f->poi, id, (struct poi[]){ pois[0], pois[1], bad }, 3),
			 -EINVAL);
	assert_int_equal(poi_import_rows(f->poi, id, pois, 2), 0);
	/* Uncommitted rows are unseen; a commit before every row arrived is refused. */
	assert_int_equal(poi_near(f->poi, 10, 10, 1000, NULL, hits, 4), 0);
	assert_int_equal(poi_count(f->poi), 0);
	assert_int_equal(poi_import_commit(f->poi, id), -EINVAL);
	assert_int_equal(poi_import_rows(f->poi, id, pois, 2), -EINVAL); /* more than announced */
	assert_int_equal(poi_import_rows(f->poi, id, pois + 2, 1), 0);
	assert_int_equal(poi_import_commit(f->poi, id), 3);
	assert_int_equal(poi_import_commit(f->poi, id), -ENOENT);
	assert_int_equal(poi_import_rows(f->poi, id, pois, 1), -ENOENT);
	assert_int_equal(poi_import_rows(f->poi, 999, pois, 1), -ENOENT);
	assert_int_equal(poi_near(f->poi, 10, 10, 1000, NULL, hits, 4), 3);
	/* An import rolled back with its caller's transaction never existed. */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(poi_import_begin(f->poi, "t", 0, NOW_MS, &id), 0);
	assert_int_equal(db_rollback(f->db), 0);
	assert_int_equal(poi_import_commit(f->poi, id), -ENOENT);
	/* An open import older than a day is dropped by the next begin. */
	assert_int_equal(poi_import_begin(f->poi, "t", 1, NOW_MS, &id), 0);
	assert_int_equal(poi_import_rows(f->poi, id, pois, 1), 0);
	{
		int64_t later;

		assert_int_equal(
			poi_import_begin(f->poi, "t", 0, NOW_MS + 25 * 3600 * 1000LL, &later), 0);
		assert_int_equal(poi_import_commit(f->poi, id), -ENOENT);
		assert_int_equal(poi_import_commit(f->poi, later), 0);
	}
}

static void test_replace_and_delete(void **state)
{
	struct fixture *f = *state;
	struct poi p[3], got;
	struct poi_hit hits[4];

	mk(&p[0], "x", "fuel", -33.9, 151.2);
	mk(&p[1], "y", "fuel", -33.9, 151.21);
	assert_int_equal(import(f, p, 2), 2);
	/* x moves 100 km west and becomes a charger; the same id twice: the last wins. */
	mk(&p[0], "x", "dealer", -33.9, 150.1);
	mk(&p[1], "x", "charger", -33.9, 150.0);
	mk(&p[2], "z", "car_wash", -33.9, 150.0);
	assert_int_equal(import(f, p, 3), 2);
	assert_int_equal(poi_count(f->poi), 3);
	assert_int_equal(poi_get(f->poi, "x", &got), 0);
	assert_string_equal(got.category, "charger");
	assert_true(fabs(got.lon - 150.0) < 1e-9);
	assert_int_equal(poi_near(f->poi, -33.9, 151.2, 5000, NULL, hits, 4), 1);
	assert_string_equal(hits[0].poi.id, "y");
	assert_int_equal(poi_near(f->poi, -33.9, 150.0, 100, "charger", hits, 4), 1);
	assert_string_equal(hits[0].poi.id, "x");
	assert_int_equal(poi_delete(f->poi, "x"), 0);
	assert_int_equal(poi_delete(f->poi, "x"), -ENOENT);
	assert_int_equal(poi_get(f->poi, "x", &got), -ENOENT);
	assert_int_equal(poi_near(f->poi, -33.9, 150.0, 100, NULL, hits, 4), 1);
	assert_string_equal(hits[0].poi.id, "z");
}

static void test_fresh_same_handle(void **state)
{
	struct fixture *f = *state;
	struct poi p[2];
	struct poi_hit hits[4];
	struct poi_ref ref[4];

	mk(&p[0], "a", "fuel", 48.85, 2.35);
	mk(&p[1], "b", "fuel", 48.851, 2.35);
	assert_int_equal(poi_near_ids(f->poi, 48.85, 2.35, 1000, NULL, ref, 4), 0);
	/* A commit and a delete of this handle: seen by the next query. */
	assert_int_equal(import(f, p, 1), 1);
	assert_int_equal(poi_near_ids(f->poi, 48.85, 2.35, 1000, NULL, ref, 4), 1);
	assert_int_equal(import(f, p + 1, 1), 1);
	assert_int_equal(poi_near(f->poi, 48.85, 2.35, 1000, "fuel", hits, 4), 2);
	assert_string_equal(hits[0].poi.id, "a");
	assert_int_equal(poi_delete(f->poi, "a"), 0);
	assert_int_equal(poi_near(f->poi, 48.85, 2.35, 1000, NULL, hits, 4), 1);
	assert_string_equal(hits[0].poi.id, "b");
	/* Inside the writing transaction its writes are seen; rolled back, they never were. */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(poi_delete(f->poi, "b"), 0);
	assert_int_equal(poi_near_ids(f->poi, 48.85, 2.35, 1000, NULL, ref, 4), 0);
	assert_int_equal(import(f, p, 1), 1);
	assert_int_equal(poi_near(f->poi, 48.85, 2.35, 1000, NULL, hits, 4), 1);
	assert_string_equal(hits[0].poi.id, "a");
	assert_int_equal(db_rollback(f->db), 0);
	assert_int_equal(poi_near(f->poi, 48.85, 2.35, 1000, NULL, hits, 4), 1);
	assert_string_equal(hits[0].poi.id, "b");
	/* Committed by the caller: seen once it is. */
	assert_int_equal(db_begin(f->db), 0);
	assert_int_equal(poi_delete(f->poi, "b"), 0);
	assert_int_equal(db_commit(f->db), 0);
	assert_int_equal(poi_near_ids(f->poi, 48.85, 2.35, 1000, NULL, ref, 4), 0);
}

static void test_fresh_second_handle(void **state)
{
	struct fixture *f = *state;
	struct db *db2 = NULL;
	struct poi_db *poi2 = NULL;
	struct poi_hit hits[4];
	struct poi_ref ref[4];
	struct poi_index_info info;
	struct poi p[2];
	char url[512], err[512];
	int64_t id;

	mk(&p[0], "x", "charger", -16.5, 179.999);
	mk(&p[1], "y", "charger", -16.5, -179.999);
	assert_int_equal(import(f, p, 1), 1);
	assert_int_equal(db_test_url(f->name, url, sizeof(url)), 0);
	assert_int_equal(db_open(url, DB_READ_WRITE, &db2, err, sizeof(err)), 0);
	assert_int_equal(poi_db_new(db2, &poi2), 0); /* built here: holds x */
	poi_index_info(poi2, &info);
	assert_true(info.in_memory);
	assert_int_equal(info.count, 1);
	assert_int_equal(poi_near_ids(poi2, -16.5, 180, 1000, "charger", ref, 4), 1);
	/* An import through the first handle: the second sees it after its check. */
	assert_int_equal(poi_import_begin(f->poi, "other", 1, NOW_MS, &id), 0);
	assert_int_equal(poi_import_rows(f->poi, id, p + 1, 1), 0);
	assert_int_equal(poi_import_commit(f->poi, id), 1);
	assert_int_equal(poi_refresh(poi2), 0);
	poi_index_info(poi2, &info);
	assert_int_equal(info.count, 2);
	assert_int_equal(poi_near(poi2, -16.5, 180, 1000, "charger", hits, 4), 2);
	/* A delete through the second: the first sees it after its check. */
	assert_int_equal(poi_near_ids(f->poi, -16.5, 180, 1000, NULL, ref, 4), 2);
	assert_int_equal(poi_delete(poi2, "x"), 0);
	/*
	 * Before the first's check (unless this test took a second: then after
	 * it) the index may still hold x: the full query skips its missing row.
	 */
	assert_int_equal(poi_near(f->poi, -16.5, 180, 1000, NULL, hits, 4), 1);
	assert_string_equal(hits[0].poi.id, "y");
	assert_int_equal(poi_refresh(f->poi), 0);
	assert_int_equal(poi_near(f->poi, -16.5, 180, 1000, NULL, hits, 4), 1);
	assert_string_equal(hits[0].poi.id, "y");
	/* Nothing changed: a check does not rebuild (same version). */
	poi_index_info(f->poi, &info);
	assert_int_equal(poi_refresh(f->poi), 0);
	{
		struct poi_index_info again;

		poi_index_info(f->poi, &again);
		assert_int_equal(again.version, info.version);
		assert_int_equal(again.count, 1);
	}
	poi_db_free(poi2);
	db_close(db2);
}

static void test_check(void **state)
{
	static const struct {
		const char *id, *name, *cat;
		double lat, lon;
		const char *why; /* NULL: fine */
	} cases[] = {
		{ "a", "n", "fuel", 0, 0, NULL },
		{ "a", "n", "car_wash2", -90, 180, NULL },
		{ "", "n", "fuel", 0, 0, "id: missing" },
		{ "a", "", "fuel", 0, 0, "name: missing" },
		{ "a", "n", "", 0, 0, "category: missing" },
		{ "a", "n", "Fuel", 0, 0, "category: must be" },
		{ "a", "n", "fuel", 90.0001, 0, "lat:" },
		{ "a", "n", "fuel", 0, -180.5, "lon:" },
		{ "a", "n", "fuel", NAN, 0, "lat:" },
		{ "a", "bad\x01", "fuel", 0, 0, "name:" },
		{ "a", "bad\xff", "fuel", 0, 0, "name:" },
		{ "0123456789012345678901234567890123456789012345678901234567890123456789", "n",
		  "fuel", 0, 0, "id: longer than 64" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct poi p;
		char why[128] = "";
		int r = poi_set(&p, cases[i].id, cases[i].name, cases[i].cat, NULL, NULL,
				cases[i].lat, cases[i].lon, why, sizeof(why));

		if (!cases[i].why) {
			assert_int_equal(r, 0);
			continue;
		}
		assert_int_equal(r, -EINVAL);
		if (!strstr(why, cases[i].why))
			fail_msg("case %zu: '%s' does not say '%s'", i, why, cases[i].why);
	}
}

/* ---- files ------------------------------------------------------------- */

static char errors[4096];

static void on_error(const char *msg, void *arg)
{
	(void)arg;
	strncat(errors, msg, sizeof(errors) - strlen(errors) - 2);
	strcat(errors, "\n");
}

static void write_tmp(char *path, size_t size, const char *ext, const char *text)
{
	FILE *fp;

	gw_test_path(path, size, ext);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void test_file_csv(void **state)
{
	struct poi *rows = NULL;
	char path[600], want[1300];
	int n;

	(void)state;
	/* Columns in any order, brand/address optional, extra columns ignored, quotes. */
	write_tmp(path, sizeof(path), "good.csv",
		  "\xef\xbb\xbfname,id,category,lat,lon,brand,address,phone\n"
		  "\"Shell, Main St\",s1,fuel,48.1,11.5,Shell,\"1 Main St, 2nd floor\",+49\n"
		  "Wash,w1,car_wash,-33.9,151.2,,,\n");
	errors[0] = '\0';
	n = poi_file_read(path, POI_FILE_AUTO, on_error, NULL, NULL, &rows);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, "s1");
	assert_string_equal(rows[0].name, "Shell, Main St");
	assert_string_equal(rows[0].address, "1 Main St, 2nd floor");
	assert_true(fabs(rows[1].lon - 151.2) < 1e-12);
	assert_string_equal(rows[1].brand, "");
	free(rows);
	unlink(path);
	/* Two bad lines: both said as FILE:LINE, nothing returned. */
	write_tmp(path, sizeof(path), "bad.csv",
		  "id,name,category,lat,lon\n"
		  "a,A,fuel,1,2\n"
		  "b,B,fuel,north,2\n"
		  "c,C,fuel,1,2\n"
		  "d,D,Fuel Station,1,2\n");
	errors[0] = '\0';
	n = poi_file_read(path, POI_FILE_AUTO, on_error, NULL, NULL, &rows);
	assert_int_equal(n, -EINVAL);
	assert_null(rows);
	snprintf(want, sizeof(want), "%s:3: lat: 'north' is not a number\n%s:5: category:", path,
		 path);
	if (!strstr(errors, want))
		fail_msg("errors:\n%s", errors);
	unlink(path);
	write_tmp(path, sizeof(path), "nohead.csv", "id,name,lat,lon\na,A,1,2\n");
	errors[0] = '\0';
	assert_int_equal(poi_file_read(path, POI_FILE_AUTO, on_error, NULL, NULL, &rows), -EINVAL);
	assert_non_null(strstr(errors, ":1: the header line must name"));
	assert_non_null(strstr(errors, "no column category"));
	unlink(path);
	errors[0] = '\0';
	assert_int_equal(
		poi_file_read("/nonexistent/x.csv", POI_FILE_AUTO, on_error, NULL, NULL, &rows),
		-ENOENT);
	assert_non_null(strstr(errors, "/nonexistent/x.csv: No such file"));
}

static void test_file_geojson(void **state)
{
	struct poi *rows = NULL;
	char path[600], want[1300];
	int n;

	(void)state;
	write_tmp(path, sizeof(path), "good.geojson",
		  "{\"type\": \"FeatureCollection\", \"features\": ["
		  "{\"type\": \"Feature\", \"geometry\": {\"type\": \"Point\", \"coordinates\": "
		  "[179.99, -16.5]}, \"properties\": {\"id\": \"fj1\", \"name\": \"Suva Fuel\", "
		  "\"category\": \"fuel\", \"brand\": \"Total\"}},"
		  "{\"type\": \"Feature\", \"id\": 42, \"geometry\": {\"type\": \"Point\", "
		  "\"coordinates\": [-0.1, 51.5]}, \"properties\": {\"name\": \"Charge\", "
		  "\"category\": \"charger\"}}]}");
	errors[0] = '\0';
	/* No extension needed: the content says GeoJSON. */
	n = poi_file_read(path, POI_FILE_GEOJSON, on_error, NULL, NULL, &rows);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].id, "fj1");
	assert_true(fabs(rows[0].lat + 16.5) < 1e-12 && fabs(rows[0].lon - 179.99) < 1e-12);
	assert_string_equal(rows[0].brand, "Total");
	assert_string_equal(rows[1].id, "42");
	free(rows);
	unlink(path);
	write_tmp(path, sizeof(path), "bad.json",
		  "{\"type\": \"FeatureCollection\", \"features\": ["
		  "{\"type\": \"Feature\", \"geometry\": {\"type\": \"LineString\", "
		  "\"coordinates\": [[0, 0], [1, 1]]}, \"properties\": {\"id\": \"l\"}},"
		  "{\"type\": \"Feature\", \"geometry\": {\"type\": \"Point\", \"coordinates\": "
		  "[0, 0]}, \"properties\": {\"id\": \"ok\", \"name\": \"n\", \"category\": "
		  "\"fuel\"}},"
		  "{\"type\": \"Feature\", \"geometry\": {\"type\": \"Point\", \"coordinates\": "
		  "[0, 0]}, \"properties\": {\"id\": \"n\", \"category\": \"fuel\"}}]}");
	errors[0] = '\0';
	assert_int_equal(poi_file_read(path, POI_FILE_AUTO, on_error, NULL, NULL, &rows), -EINVAL);
	snprintf(want, sizeof(want), "%s: feature 1: geometry: expected a Point", path);
	assert_non_null(strstr(errors, want));
	snprintf(want, sizeof(want), "%s: feature 3: name: missing", path);
	assert_non_null(strstr(errors, want));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_near_matches_brute_force, setup, teardown),
		cmocka_unit_test_setup_teardown(test_near_limit_and_fields, setup, teardown),
		cmocka_unit_test_setup_teardown(test_import_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replace_and_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fresh_same_handle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fresh_second_handle, setup, teardown),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_file_csv),
		cmocka_unit_test(test_file_geojson),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
