/*
 * The in-memory spatial index (poi_index.h): entries sorted by latitude
 * band, then longitude, and the start of each band. Built by a counting
 * sort on the band and a sort of each band by longitude; queried by a
 * binary search per band and box, then a scan of the strip with integer
 * box checks before the haversine. The nearest max are kept by insertion
 * into the caller's sorted hits (max is small: the rules ask for 64).
 */
#include "poi_index.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "geo.h"

#define LAT_E7_MAX 900000000
#define LON_E7_MAX 1800000000
#define NBANDS (2 * LAT_E7_MAX / POI_INDEX_BAND_E7) /* 9000 */
#define RID_BITS 40

struct poi_index {
	struct poi_index_entry *e; /* owned: n entries, by band then longitude */
	size_t n;
	uint32_t band[NBANDS + 1]; /* band b holds e[band[b]..band[b + 1]) */
};

static size_t band_of(int32_t lat_e7)
{
	size_t b = (size_t)((int64_t)lat_e7 + LAT_E7_MAX) / POI_INDEX_BAND_E7;

	return b < NBANDS ? b : NBANDS - 1; /* lat 90 joins the last band */
}

static int64_t rid_of(const struct poi_index_entry *e)
{
	return (int64_t)(e->rid_cat & ((1ULL << RID_BITS) - 1));
}

static int64_t cat_of(const struct poi_index_entry *e)
{
	return (int64_t)(e->rid_cat >> RID_BITS);
}

int poi_index_entry_set(struct poi_index_entry *e, int64_t rid, int64_t cat_code, int32_t lat_e7,
			int32_t lon_e7)
{
	if (rid < 0 || rid > POI_INDEX_RID_MAX || cat_code < 0 || cat_code > POI_INDEX_CAT_MAX ||
	    lat_e7 < -LAT_E7_MAX || lat_e7 > LAT_E7_MAX || lon_e7 < -LON_E7_MAX ||
	    lon_e7 > LON_E7_MAX)
		return -ERANGE;
	e->lat_e7 = lat_e7;
	e->lon_e7 = lon_e7;
	e->rid_cat = (uint64_t)rid | (uint64_t)cat_code << RID_BITS;
	return 0;
}

static int by_lon(const void *a, const void *b)
{
	const struct poi_index_entry *x = a, *y = b;

	if (x->lon_e7 != y->lon_e7)
		return x->lon_e7 < y->lon_e7 ? -1 : 1;
	return x->rid_cat < y->rid_cat ? -1 : x->rid_cat > y->rid_cat;
}

int poi_index_new(struct poi_index_entry *entries, size_t n, struct poi_index **ret)
{
	struct poi_index *ix = NULL;
	struct poi_index_entry *sorted = NULL;
	uint32_t *next = NULL;
	int r = -ENOMEM;

	if (n > POI_INDEX_MAX) {
		r = -E2BIG;
		goto out;
	}
	ix = calloc(1, sizeof(*ix));
	sorted = malloc((n ? n : 1) * sizeof(*sorted));
	next = malloc(NBANDS * sizeof(*next));
	if (!ix || !sorted || !next)
		goto out;
	for (size_t i = 0; i < n; i++)
		ix->band[band_of(entries[i].lat_e7) + 1]++;
	for (size_t b = 0; b < NBANDS; b++) {
		ix->band[b + 1] += ix->band[b];
		next[b] = ix->band[b];
	}
	for (size_t i = 0; i < n; i++)
		sorted[next[band_of(entries[i].lat_e7)]++] = entries[i];
	for (size_t b = 0; b < NBANDS; b++)
		if (ix->band[b + 1] - ix->band[b] > 1)
			qsort(sorted + ix->band[b], ix->band[b + 1] - ix->band[b], sizeof(*sorted),
			      by_lon);
	ix->e = sorted;
	ix->n = n;
	sorted = NULL;
	*ret = ix;
	ix = NULL;
	r = 0;
out:
	free(next);
	free(sorted);
	free(ix);
	free(entries);
	return r;
}

void poi_index_free(struct poi_index *ix)
{
	if (!ix)
		return;
	free(ix->e);
	free(ix);
}

size_t poi_index_count(const struct poi_index *ix)
{
	return ix->n;
}

size_t poi_index_bytes(const struct poi_index *ix)
{
	return sizeof(*ix) + ix->n * sizeof(ix->e[0]);
}

void poi_ref_keep(struct poi_ref *hits, size_t *n, size_t max, const struct poi_ref *h)
{
	size_t lo = 0, hi = *n;

	if (*n == max) {
		if (h->distance_m >= hits[max - 1].distance_m)
			return;
		hi = --*n; /* the farthest makes room */
	}
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (hits[mid].distance_m <= h->distance_m)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(&hits[lo + 1], &hits[lo], (*n - lo) * sizeof(hits[0]));
	hits[lo] = *h;
	++*n;
}

static int32_t clamp32(int64_t v, int32_t lo, int32_t hi)
{
	return (int32_t)(v < lo ? lo : v > hi ? hi : v);
}

void poi_box_e7(const struct geo_box *b, int32_t ret[4])
{
	ret[0] = clamp32((int64_t)floor(b->lat_min * 1e7) - 1, -LAT_E7_MAX, LAT_E7_MAX);
	ret[1] = clamp32((int64_t)ceil(b->lat_max * 1e7) + 1, -LAT_E7_MAX, LAT_E7_MAX);
	ret[2] = clamp32((int64_t)floor(b->lon_min * 1e7) - 1, -LON_E7_MAX, LON_E7_MAX);
	ret[3] = clamp32((int64_t)ceil(b->lon_max * 1e7) + 1, -LON_E7_MAX, LON_E7_MAX);
}

int poi_index_near(const struct poi_index *ix, double lat, double lon, double radius_m,
		   int64_t cat_code, struct poi_ref *hits, size_t max)
{
	struct geo_box box[2];
	size_t n = 0;
	int nbox;

	if (max == 0 || ix->n == 0)
		return 0;
	nbox = geo_circle_boxes(lat, lon, radius_m, box);
	for (int k = 0; k < nbox; k++) {
		int32_t e7[4], la0, la1, lo0, lo1;

		poi_box_e7(&box[k], e7);
		la0 = e7[0];
		la1 = e7[1];
		lo0 = e7[2];
		lo1 = e7[3];
		for (size_t b = band_of(la0), last = band_of(la1); b <= last; b++) {
			size_t lo = ix->band[b], hi = ix->band[b + 1];

			while (lo < hi) { /* the first entry with lon_e7 >= lo0 */
				size_t mid = (lo + hi) / 2;

				if (ix->e[mid].lon_e7 < lo0)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (size_t i = lo, end = ix->band[b + 1];
			     i < end && ix->e[i].lon_e7 <= lo1; i++) {
				const struct poi_index_entry *e = &ix->e[i];
				struct poi_ref h;

				if (e->lat_e7 < la0 || e->lat_e7 > la1 ||
				    (cat_code >= 0 && cat_of(e) != cat_code))
					continue;
				h.lat = geo_deg_of_e7(e->lat_e7);
				h.lon = geo_deg_of_e7(e->lon_e7);
				h.distance_m = geo_distance_m(lat, lon, h.lat, h.lon);
				if (h.distance_m > radius_m)
					continue;
				h.rid = rid_of(e);
				h.cat_code = cat_of(e);
				poi_ref_keep(hits, &n, max, &h);
			}
		}
	}
	return (int)n;
}
