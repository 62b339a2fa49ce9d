/*
 * The in-memory spatial index of the poi domain (poi.h): per POI only what
 * a radius query needs, its position in 1e-7 degrees, its category's code
 * and its row id, in POI_INDEX_ENTRY_BYTES (16) bytes. The database stays
 * the source of truth; poi.c builds this from the table and swaps it whole.
 *
 * Layout: the entries sorted by latitude band (POI_INDEX_BAND_E7, 0.02
 * degrees, about 2.2 km) and, within a band, by longitude, with a table of
 * where each band starts. A query visits the bands its boxes
 * (geo_circle_boxes(): the antimeridian, the poles) cover, finds the first
 * longitude of each box by binary search and scans to the last, so it
 * reads only the entries of those strips, one after another in memory.
 *
 * Memory: 16 bytes a POI plus a band table of 36 KB; at most POI_INDEX_MAX
 * POIs (10,000,000: 160 MB). No locks: one thread owns an index. Library
 * code: it does not log.
 */
#ifndef PITSTOP_POI_INDEX_H
#define PITSTOP_POI_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "geo.h"
#include "poi.h"

#define POI_INDEX_MAX 10000000		    /* POIs an index holds at most */
#define POI_INDEX_ENTRY_BYTES 16	    /* bytes a POI */
#define POI_INDEX_RID_MAX ((1LL << 40) - 1) /* row ids above cannot be held */
#define POI_INDEX_CAT_MAX ((1LL << 24) - 1) /* category codes above cannot be held */
#define POI_INDEX_BAND_E7 200000	    /* a latitude band: 0.02 degrees */

/* One POI: the position and the row id (low 40 bits) with the category code (high 24). */
struct poi_index_entry {
	int32_t lat_e7, lon_e7;
	uint64_t rid_cat;
};

struct poi_index;

/*
 * Fills *e. Returns 0, or -ERANGE when rid or cat_code is beyond what an
 * entry holds (POI_INDEX_RID_MAX, POI_INDEX_CAT_MAX), or a position is
 * outside [-90, 90] x [-180, 180] degrees.
 */
int poi_index_entry_set(struct poi_index_entry *e, int64_t rid, int64_t cat_code, int32_t lat_e7,
			int32_t lon_e7);

/*
 * Builds an index of entries[0..n) (n <= POI_INDEX_MAX), which it takes
 * (owned; sorted in place, freed with the index, or on failure). Returns 0
 * and *ret, or -E2BIG, -ENOMEM.
 */
int poi_index_new(struct poi_index_entry *entries, size_t n, struct poi_index **ret);

/* Accepts NULL. */
void poi_index_free(struct poi_index *ix);

/* POIs held. */
size_t poi_index_count(const struct poi_index *ix);

/* Bytes allocated (entries and band table). */
size_t poi_index_bytes(const struct poi_index *ix);

/*
 * The entries within radius_m (> 0, checked by the caller with the
 * coordinates) of (lat, lon), of category code cat_code (< 0: any), by
 * exact haversine distance (geo_distance_m() of the 1e-7 degree position),
 * nearest first (equal distances: in index order), at most max into hits.
 * Returns the count.
 */
int poi_index_near(const struct poi_index *ix, double lat, double lon, double radius_m,
		   int64_t cat_code, struct poi_ref *hits, size_t max);

/*
 * Box b in whole 1e-7 degree units, widened outward by one more for the
 * rounding of the bounds and clamped to the globe: ret = lat_min, lat_max,
 * lon_min, lon_max. What the index and the SQL path both query.
 */
void poi_box_e7(const struct geo_box *b, int32_t ret[4]);

/*
 * Keeps *h among the nearest max of hits[0..*n), which stay sorted by
 * distance (an equal distance goes after those kept): for the SQL path too.
 */
void poi_ref_keep(struct poi_ref *hits, size_t *n, size_t max, const struct poi_ref *h);

#endif
