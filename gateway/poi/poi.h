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
 * Queries are answered from memory (poi_index.h): a handle holds per POI
 * its position, category code and row id, 16 bytes a POI (1,000,000 POIs:
 * 16 MB; twice that while a rebuild runs), built at poi_db_new() from the
 * table. Above POI_INDEX_MAX (10,000,000) POIs it refuses, logs, and
 * queries run in SQL. The database stays the source of truth: a handle's
 * own commit or delete is seen by its next query (a rebuild; one that the
 * caller's transaction then rolls back is forgotten by the next query
 * outside a transaction, or within a second), and a commit or delete
 * through another handle or gateway on the same database by the version
 * check (the row of poi_meta that each one changes), which a query makes
 * at most once a second (poi_refresh(): now). A rebuild reads the whole
 * table on the caller's thread: docs/poi.md has its cost.
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

/* How often (ms) the version is checked: by queries outside transactions, and the gateway. */
#define POI_CHECK_MS 1000

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

/*
 * A query's lightweight result (poi_near_ids()): the row and what the
 * index holds of it. poi_get_rowid() gives the full record.
 */
struct poi_ref {
	int64_t rid;	  /* the row, for poi_get_rowid() */
	int64_t cat_code; /* the category's code (poi_categories.code) */
	double lat, lon;  /* degrees: the stored 1e-7 degree position */
	double distance_m;
};

/* What a handle's index holds (poi_index_info()). */
struct poi_index_info {
	int in_memory;	 /* 0: queries run in SQL (too many POIs, a failed build, off) */
	size_t count;	 /* POIs in memory */
	size_t bytes;	 /* bytes the index holds */
	double build_ms; /* how long its last build took */
	int64_t version; /* the poi_meta version it was built from */
};

struct poi_db;

/* The domain's migrations, for db_migrate() (generated from schema/). */
extern const struct db_migration poi_migrations[];
extern const size_t poi_migrations_count;

/*
 * Prepares the statements on db (borrowed) and builds the in-memory index
 * (logged: how many POIs, how long; a build that fails or is refused is
 * logged and leaves queries in SQL). Returns 0 and *ret, or -errno.
 */
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

/*
 * As poi_near(), with the lightweight hits of the index (no text is read):
 * what the rules run per sample. Returns the count, -EINVAL, or an error
 * class.
 */
int poi_near_ids(struct poi_db *p, double lat, double lon, double radius_m, const char *category,
		 struct poi_ref *hits, size_t max);

/* One POI by row id (poi_ref.rid). Returns 0, -ENOENT, or an error class. */
int poi_get_rowid(struct poi_db *p, int64_t rid, struct poi *ret);

/*
 * Checks the version now (not waiting for the once-a-second check) and
 * rebuilds the index when the table changed. Returns 0 (also when the
 * index is refused: queries then run in SQL) or an error class. Call it
 * outside transactions (the gateway does, every POI_CHECK_MS while ingest
 * is idle): queries inside a transaction never rebuild.
 */
int poi_refresh(struct poi_db *p);

/*
 * on 0: drops the in-memory index, and queries run in SQL (what they do
 * when it is refused); on 1: the next query builds it again.
 */
void poi_set_in_memory(struct poi_db *p, int on);

/* What the index holds into *ret. */
void poi_index_info(struct poi_db *p, struct poi_index_info *ret);

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
