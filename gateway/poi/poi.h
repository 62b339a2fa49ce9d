/*
 * Points of interest: partner fuel stations, dealers and workshops, car
 * washes, chargers (issue 11). The poi domain owns the table pois and its
 * spatial index (SQLite: an R*Tree virtual table; PostgreSQL: a GiST
 * index), gateway/poi/schema/. Others call these functions.
 *
 * A radius query asks the index for the box(es) around the circle
 * (geo_circle_boxes(): correct across the antimeridian and at the poles),
 * then keeps what is within the radius by exact haversine distance, and
 * returns the nearest first.
 *
 * Imports are all or nothing: rows go to an open import (poi_import_*),
 * which a commit makes visible in one transaction; an import that is never
 * committed is never seen. A row with an id that exists replaces it.
 */
#ifndef PITSTOP_POI_H
#define PITSTOP_POI_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define POI_ID_MAX 64	    /* bytes of an id, without NUL */
#define POI_NAME_MAX 128    /* bytes of a name */
#define POI_CATEGORY_MAX 32 /* bytes of a category: [a-z0-9_]+ */
#define POI_BRAND_MAX 64
#define POI_ADDRESS_MAX 256
#define POI_NEAR_MAX 1000	    /* results one query returns at most */
#define POI_IMPORT_CHUNK 5000	    /* rows per poi_import_rows() call (API request) */
#define POI_IMPORT_ROWS_MAX 5000000 /* rows per import */

struct poi {
	char id[POI_ID_MAX + 1];
	char name[POI_NAME_MAX + 1];
	char category[POI_CATEGORY_MAX + 1];
	char brand[POI_BRAND_MAX + 1];	   /* "" when unknown */
	char address[POI_ADDRESS_MAX + 1]; /* "" when unknown */
	double lat, lon;		   /* degrees, WGS84 */
};

/* A query result: the POI and its distance from the query point. */
struct poi_hit {
	struct poi poi;
	double distance_m;
};

struct poi_db;

/* The domain's migrations, for db_migrate() (generated from schema/). */
extern const struct db_migration poi_migrations[];
extern const size_t poi_migrations_count;

/* Prepares the statements on db (borrowed). Returns 0 and *ret, or -errno. */
int poi_db_new(struct db *db, struct poi_db **ret);

/* Accepts NULL. */
void poi_db_free(struct poi_db *p);

/*
 * The POIs within radius_m (> 0) of (lat, lon), of category (NULL or "":
 * any), nearest first, at most max (<= POI_NEAR_MAX) into hits. Returns the
 * count, -EINVAL (bad coordinates or radius), or an error class.
 */
int poi_near(struct poi_db *p, double lat, double lon, double radius_m, const char *category,
	     struct poi_hit *hits, size_t max);

/* One POI by id. Returns 0, -ENOENT, or an error class. */
int poi_get(struct poi_db *p, const char *id, struct poi *ret);

/* How many POIs are stored (committed), or an error class. */
int64_t poi_count(struct poi_db *p);

/*
 * Checks one POI as an import takes it: id, name and category present and
 * within bounds, category [a-z0-9_]+, lat in [-90, 90], lon in [-180, 180].
 * Returns 0, or -EINVAL with why (a short phrase naming the field) in err.
 */
int poi_check(const struct poi *poi, char *err, size_t errlen);

/*
 * Fills *poi from its fields (NULL brand or address: ""), checking each
 * length and then poi_check(). Returns 0, or -EINVAL with why in err.
 */
int poi_set(struct poi *poi, const char *id, const char *name, const char *category,
	    const char *brand, const char *address, double lat, double lon, char *err,
	    size_t errlen);

/*
 * Imports, all or nothing. begin opens import *ret_id expecting rows rows;
 * rows adds n checked POIs to it; commit makes them all visible in one
 * transaction (an id that exists is replaced) and returns how many, or
 * -ENOENT (no such open import), -EINVAL (not every announced row arrived).
 * Open imports older than a day are dropped by the next begin. rows takes
 * at most POI_IMPORT_CHUNK rows (-E2BIG), each passing poi_check()
 * (-EINVAL); an id repeated within an import: its last row wins. Each runs
 * in the caller's transaction when one is open (db_in_tx()), else in its
 * own; poi_delete() too.
 */
int poi_import_begin(struct poi_db *p, const char *source, int64_t rows, int64_t now_ms,
		     int64_t *ret_id);
int poi_import_rows(struct poi_db *p, int64_t id, const struct poi *pois, size_t n);
int poi_import_commit(struct poi_db *p, int64_t id);

/* Deletes one POI. Returns 0, -ENOENT, or an error class. */
int poi_delete(struct poi_db *p, const char *id);

#endif
