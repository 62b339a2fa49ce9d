/*
 * poi_query: how fast the poi domain answers radius queries (issue 11
 * item 5), on SQLite through gateway/poi/poi.c, the code the rules run:
 * poi_near_ids(), answered by the in-memory index (poi_index.h).
 *
 * Loads POI_COUNT (1,000,000) points, generated from a fixed seed, into a
 * temporary SQLite database through a poi import (so the load time is the
 * import's): worldwide, 85 % clustered around 3,000 synthetic cities whose
 * sizes follow a Zipf law (a city's spread grows with its size, so a city
 * core holds about 0.5 POIs per km2, a busy city's density) and 15 %
 * scattered over the inhabited latitudes. Then times QUERIES queries of
 * RADIUS_M (5 km) around points drawn like the POIs (cars are where the
 * POIs are), asking for the nearest 64 as the promotion rules do, and
 * prints key=value lines: poi_count, poi_load_s, poi_index_build_ms (the
 * rebuild after the import's commit), poi_index_bytes, poi_query_us_p50,
 * poi_query_us_p99, poi_query_us_max, poi_results_avg, the same p50/p99
 * with a category filter (poi_query_cat_us_*), and of the full records
 * (poi_near(): the index, then each hit's row; poi_query_full_us_*).
 *
 *   poi_query [--count N] [--queries N] [--radius-m R] [--db URL]
 *
 * --db runs it on another database (a PostgreSQL URL: its tables must be
 * empty or absent; the bench drops nothing there).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "poi.h"
#include "schema.h"

#define POI_COUNT 1000000
#define QUERIES 20000
#define RADIUS_M 5000.0
#define CITIES 3000
#define HITS 64 /* what the promotion rules ask for (rules.c STATION_HITS) */
#define SEED 20261201ULL

static const char *const cats[] = { "fuel", "charger", "workshop", "car_wash", "dealer" };
static const double cat_weight[] = { 0.35, 0.30, 0.20, 0.10, 0.05 };

struct city {
	double lat, lon, sigma_km;
	double cum; /* cumulative weight, for drawing */
};

static uint64_t rng = SEED;

/* xorshift64*: the same numbers on every machine. */
static double urand(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static double gauss(void)
{
	double u = urand(), v = urand();

	return sqrt(-2 * log(u > 1e-300 ? u : 1e-300)) * cos(2 * M_PI * v);
}

static struct city city[CITIES];

static void make_cities(size_t count)
{
	double total = 0, peak = 0.5; /* POIs per km2 at a city's core */

	for (int i = 0; i < CITIES; i++)
		total += 1.0 / (i + 5);
	for (int i = 0; i < CITIES; i++) {
		double share = (1.0 / (i + 5)) / total, n = share * 0.85 * (double)count;

		city[i].lat = asin(urand() * (sin(65 * M_PI / 180) - sin(-45 * M_PI / 180)) +
				   sin(-45 * M_PI / 180)) *
			      180 / M_PI;
		city[i].lon = urand() * 360 - 180;
		/* n / (2 pi sigma^2) = peak at the centre */
		city[i].sigma_km = sqrt(n / (2 * M_PI * peak));
		city[i].cum = (i ? city[i - 1].cum : 0) + share;
	}
}

/* A position drawn like the POIs: near a city (85 %) or anywhere inhabited. */
static void draw(double *lat, double *lon)
{
	if (urand() < 0.85) {
		double u = urand() * city[CITIES - 1].cum;
		int lo = 0, hi = CITIES - 1;

		while (lo < hi) {
			int mid = (lo + hi) / 2;

			if (city[mid].cum < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		*lat = city[lo].lat + gauss() * city[lo].sigma_km / 111.2;
		*lon = city[lo].lon +
		       gauss() * city[lo].sigma_km / 111.2 / cos(city[lo].lat * M_PI / 180);
	} else {
		*lat = asin(urand() * (sin(70 * M_PI / 180) + sin(55 * M_PI / 180)) -
			    sin(55 * M_PI / 180)) *
		       180 / M_PI;
		*lon = urand() * 360 - 180;
	}
	if (*lat > 89.9)
		*lat = 89.9;
	if (*lat < -89.9)
		*lat = -89.9;
	*lon = remainder(*lon, 360);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int load(struct poi_db *p, size_t count)
{
	struct poi *chunk = calloc(POI_IMPORT_CHUNK, sizeof(*chunk));
	int64_t id;
	int r;

	if (!chunk)
		return -ENOMEM;
	r = poi_import_begin(p, "bench", (int64_t)count, 0, &id);
	for (size_t done = 0; r == 0 && done < count;) {
		size_t n = count - done < POI_IMPORT_CHUNK ? count - done : POI_IMPORT_CHUNK;

		for (size_t i = 0; i < n; i++) {
			char pid[32], name[64], why[128];
			double lat, lon, u = urand(), acc = 0;
			size_t c = 0;

			while (c < 4 && (acc += cat_weight[c]) < u)
				c++;
			draw(&lat, &lon);
			snprintf(pid, sizeof(pid), "b%zu", done + i);
			snprintf(name, sizeof(name), "%s %zu", cats[c], done + i);
			if (poi_set(&chunk[i], pid, name, cats[c], "Brand", "Street 1", lat, lon,
				    why, sizeof(why)) < 0) {
				fprintf(stderr, "poi_query: %s: %s\n", pid, why);
				r = -EINVAL;
				break;
			}
		}
		if (r == 0)
			r = poi_import_rows(p, id, chunk, n);
		done += n;
	}
	free(chunk);
	if (r == 0)
		r = poi_import_commit(p, id);
	return r < 0 ? r : 0;
}

/*
 * Times queries (full: poi_near(), else poi_near_ids()); fills p50/p99/max
 * in microseconds and the average hit count.
 */
static int run(struct poi_db *p, size_t queries, double radius, const char *cat, int full,
	       double *p50, double *p99, double *max, double *avg)
{
	static struct poi_hit hits[HITS];
	static struct poi_ref refs[HITS];
	double *us = calloc(queries, sizeof(*us)), total = 0;

	if (!us)
		return -ENOMEM;
	for (size_t q = 0; q < queries; q++) {
		double lat, lon, t0;
		int n;

		draw(&lat, &lon);
		t0 = now_s();
		n = full ? poi_near(p, lat, lon, radius, cat, hits, HITS)
			 : poi_near_ids(p, lat, lon, radius, cat, refs, HITS);
		us[q] = (now_s() - t0) * 1e6;
		if (n < 0) {
			free(us);
			return n;
		}
		total += n;
	}
	qsort(us, queries, sizeof(*us), dbl_cmp);
	*p50 = us[queries / 2];
	*p99 = us[queries * 99 / 100];
	*max = us[queries - 1];
	*avg = total / (double)queries;
	free(us);
	return 0;
}

int main(int argc, char **argv)
{
	size_t count = POI_COUNT, queries = QUERIES;
	double radius = RADIUS_M, t0, p50, p99, mx, avg;
	char path[256] = "", err[512];
	const char *url = NULL;
	struct poi_db *p = NULL;
	struct db *db = NULL;
	int r;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--count") == 0)
			count = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--queries") == 0)
			queries = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--radius-m") == 0)
			radius = strtod(argv[i + 1], NULL);
		else if (strcmp(argv[i], "--db") == 0)
			url = argv[i + 1];
	}
	if (count == 0 || count > POI_IMPORT_ROWS_MAX || queries == 0 || !(radius > 0)) {
		fprintf(stderr,
			"usage: poi_query [--count N] [--queries N] [--radius-m R] [--db URL]\n");
		return 2;
	}
	if (!url) {
		snprintf(path, sizeof(path), "/tmp/pitstop-poi-bench-%ld.db", (long)getpid());
		url = path;
	}
	r = schema_open(url, DB_READ_WRITE, &db, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "poi_query: %s\n", err);
		return 1;
	}
	if (getenv("POI_BENCH_PRAGMA"))
		db_exec(db, getenv("POI_BENCH_PRAGMA"));
	r = poi_db_new(db, &p);
	make_cities(count);
	t0 = now_s();
	if (r == 0)
		r = load(p, count);
	if (r == 0) {
		printf("poi_count=%lld\n", (long long)poi_count(p));
		printf("poi_load_s=%.1f\n", now_s() - t0);
		r = poi_refresh(p); /* the rebuild the commit asked for, else the first query's */
	}
	if (r == 0) {
		struct poi_index_info info;

		poi_index_info(p, &info);
		if (!info.in_memory)
			fprintf(stderr, "poi_query: the index is not in memory: queries in SQL\n");
		printf("poi_index_build_ms=%.0f\npoi_index_bytes=%zu\npoi_index_in_memory=%d\n",
		       info.build_ms, info.bytes, info.in_memory);
		r = run(p, queries, radius, NULL, 0, &p50, &p99, &mx, &avg);
	}
	if (r == 0) {
		printf("poi_query_radius_m=%.0f\npoi_query_hits_max=%d\n", radius, HITS);
		printf("poi_query_us_p50=%.1f\npoi_query_us_p99=%.1f\npoi_query_us_max=%.1f\n", p50,
		       p99, mx);
		printf("poi_results_avg=%.1f\n", avg);
		r = run(p, queries, radius, "fuel", 0, &p50, &p99, &mx, &avg);
	}
	if (r == 0) {
		printf("poi_query_cat_us_p50=%.1f\npoi_query_cat_us_p99=%.1f\npoi_results_cat_avg="
		       "%.1f\n",
		       p50, p99, avg);
		r = run(p, queries, radius, NULL, 1, &p50, &p99, &mx, &avg);
	}
	if (r == 0)
		printf("poi_query_full_us_p50=%.1f\npoi_query_full_us_p99=%.1f\n"
		       "poi_query_full_us_max=%.1f\n",
		       p50, p99, mx);
	if (r < 0)
		fprintf(stderr, "poi_query: %s\n", strerror(-r));
	poi_db_free(p);
	db_close(db);
	if (path[0]) {
		static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };

		for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
			char f[300];

			snprintf(f, sizeof(f), "%s%s", path, suffix[i]);
			unlink(f);
		}
	}
	return r < 0;
}
