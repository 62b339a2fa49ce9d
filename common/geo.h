/*
 * Geometry on the WGS84 sphere for offers and points of interest: great-
 * circle distance (haversine), initial bearing, "is it ahead of the car",
 * and the latitude/longitude box that holds a circle (what a spatial index
 * is asked for before the exact distance is checked). Shared by the
 * gateway (POI queries, promotion rules) and the agent (an offer's area).
 *
 * Degrees in, degrees and metres out; the mean Earth radius GEO_EARTH_R_M.
 * Correct across the antimeridian and near the poles: a box that crosses
 * the antimeridian comes back as two boxes, and a circle that holds a pole
 * as one box spanning every longitude.
 */
#ifndef PITSTOP_GEO_H
#define PITSTOP_GEO_H

#include <stdint.h>

#define GEO_EARTH_R_M 6371008.8 /* mean radius (IUGG) */

/* Great-circle distance in metres between two points (degrees). */
double geo_distance_m(double lat1, double lon1, double lat2, double lon2);

/* Initial bearing from point 1 to point 2, degrees in [0, 360), true north. */
double geo_bearing_deg(double lat1, double lon1, double lat2, double lon2);

/* The smallest angle between two headings, degrees in [0, 180]. */
double geo_heading_diff_deg(double a, double b);

/*
 * 1 if the point (lat, lon) lies ahead of a car at (car_lat, car_lon)
 * heading heading_deg: its bearing from the car is within half_angle_deg of
 * the heading. A point closer than GEO_AHEAD_NEAR_M counts as ahead (the car
 * is at it).
 */
#define GEO_AHEAD_NEAR_M 50.0
int geo_is_ahead(double car_lat, double car_lon, double heading_deg, double lat, double lon,
		 double half_angle_deg);

/* A latitude/longitude box, degrees; lon_min <= lon_max always. */
struct geo_box {
	double lat_min, lat_max, lon_min, lon_max;
};

/*
 * The boxes that together hold every point within radius_m of (lat, lon):
 * 1, or 2 when the circle crosses the antimeridian (split at +-180). A
 * circle around a pole gives one box with the whole longitude range.
 * Returns the count (1 or 2) with boxes[0..count).
 */
int geo_circle_boxes(double lat, double lon, double radius_m, struct geo_box boxes[2]);

/* Protocol units (1e-7 degrees) to degrees and back. */
static inline double geo_deg_of_e7(int32_t e7)
{
	return e7 / 1e7;
}

#endif
