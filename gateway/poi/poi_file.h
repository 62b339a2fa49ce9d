/*
 * POI files as pitstopctl imports them (docs/poi.md): CSV with a header
 * line naming at least id,name,category,lat,lon (brand and address when
 * present; other columns are ignored), or GeoJSON (a FeatureCollection of
 * Point features with id, name and category properties). Read whole and
 * checked before anything is sent, so a bad file imports nothing.
 */
#ifndef PITSTOP_POI_FILE_H
#define PITSTOP_POI_FILE_H

#include <stddef.h>

#include "poi.h"

#define POI_FILE_ERRORS_SHOWN 50 /* bad lines reported one by one, then a count */

enum poi_file_format {
	POI_FILE_AUTO,	  /* by extension (.csv, .geojson, .json), else by content */
	POI_FILE_CSV,	  /* CSV */
	POI_FILE_GEOJSON, /* GeoJSON */
};

/*
 * Reads path in format (POI_FILE_AUTO: guessed). Every bad line is handed
 * to on_error as "FILE:LINE: what is wrong" (GeoJSON: "FILE: feature N:
 * what", N from 1); progress (may be NULL) hears the rows read so far now
 * and then. Returns the row count with *ret (malloc'ed, caller frees), or
 * -EINVAL (bad lines, all reported), -E2BIG (more than
 * POI_IMPORT_ROWS_MAX rows), -ENOENT, -EIO or -ENOMEM (said to on_error).
 */
int poi_file_read(const char *path, enum poi_file_format format,
		  void (*on_error)(const char *msg, void *arg),
		  void (*progress)(size_t rows, void *arg), void *arg, struct poi **ret);

#endif
