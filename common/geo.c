/*
 * Geometry on the sphere (geo.h): haversine distance, initial bearing,
 * "ahead of the car" and the boxes that hold a circle, for the POI index
 * and the promotion rules on the gateway and an offer's area on the car.
 *
 * The boxes are exact, not a flat-earth guess: a circle of angular radius
 * d around latitude lat spans lat +- d, and its extreme longitudes are
 * lon +- asin(sin d / cos lat) (where the meridians are tangent to it,
 * which is further out than d / cos(lat) suggests near the poles). A
 * circle that reaches a pole holds every longitude; one that crosses the
 * antimeridian is split there into two boxes.
 */
#include "geo.h"

#include <math.h>

#define DEG (M_PI / 180.0)

/* lon folded into [-180, 180]. */
static double lon_norm(double lon)
{
	if (lon >= -180.0 && lon <= 180.0)
		return lon;
	lon = fmod(lon + 180.0, 360.0);
	if (lon < 0)
		lon += 360.0;
	return lon - 180.0;
}

double geo_distance_m(double lat1, double lon1, double lat2, double lon2)
{
	double dlat = (lat2 - lat1) * DEG, dlon = (lon2 - lon1) * DEG;
	double s1 = sin(dlat / 2), s2 = sin(dlon / 2);
	double h = s1 * s1 + cos(lat1 * DEG) * cos(lat2 * DEG) * s2 * s2;

	if (h > 1)
		h = 1; /* rounding, for antipodes */
	return 2 * GEO_EARTH_R_M * asin(sqrt(h));
}

double geo_bearing_deg(double lat1, double lon1, double lat2, double lon2)
{
	double p1 = lat1 * DEG, p2 = lat2 * DEG, dl = (lon2 - lon1) * DEG;
	double y = sin(dl) * cos(p2), x = cos(p1) * sin(p2) - sin(p1) * cos(p2) * cos(dl);
	double b = atan2(y, x) / DEG;

	if (b < 0)
		b += 360.0;
	return b >= 360.0 ? 0.0 : b;
}

double geo_heading_diff_deg(double a, double b)
{
	double d = fmod(fabs(a - b), 360.0);

	return d > 180.0 ? 360.0 - d : d;
}

int geo_is_ahead(double car_lat, double car_lon, double heading_deg, double lat, double lon,
		 double half_angle_deg)
{
	if (geo_distance_m(car_lat, car_lon, lat, lon) < GEO_AHEAD_NEAR_M)
		return 1;
	return geo_heading_diff_deg(geo_bearing_deg(car_lat, car_lon, lat, lon), heading_deg) <=
	       half_angle_deg;
}

int geo_circle_boxes(double lat, double lon, double radius_m, struct geo_box boxes[2])
{
	double d = radius_m > 0 ? radius_m / GEO_EARTH_R_M : 0; /* angular radius, radians */
	double lat_min = lat - d / DEG, lat_max = lat + d / DEG, dlon;

	lon = lon_norm(lon);
	if (lat_max >= 90.0 || lat_min <= -90.0 || d >= M_PI / 2) {
		/* A pole is inside (or on) the circle: every longitude. */
		boxes[0] = (struct geo_box){ lat_min < -90.0 ? -90.0 : lat_min,
					     lat_max > 90.0 ? 90.0 : lat_max, -180.0, 180.0 };
		return 1;
	}
	dlon = asin(sin(d) / cos(lat * DEG)) / DEG;
	boxes[0] = (struct geo_box){ lat_min, lat_max, lon - dlon, lon + dlon };
	if (boxes[0].lon_min < -180.0) {
		boxes[1] = boxes[0];
		boxes[1].lon_min += 360.0;
		boxes[1].lon_max = 180.0;
		boxes[0].lon_min = -180.0;
		return 2;
	}
	if (boxes[0].lon_max > 180.0) {
		boxes[1] = boxes[0];
		boxes[1].lon_min = -180.0;
		boxes[1].lon_max -= 360.0;
		boxes[0].lon_max = 180.0;
		return 2;
	}
	return 1;
}
