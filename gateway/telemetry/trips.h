/*
 * Trips: a vehicle's stored samples cut into drives, for the console's map
 * and later for service predictions (part of the telemetry domain; pure,
 * no database).
 *
 * A trip is a run of plausible samples in which no two neighbours are more
 * than TRIPS_GAP_MS apart and the car moved (its odometer advanced, or it
 * had a speed above zero); a run without movement is the car parked with
 * the ignition on, not a trip. Its distance is the odometer's advance when
 * the car reports one, else 0.
 */
#ifndef PITSTOP_TRIPS_H
#define PITSTOP_TRIPS_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry.h"

#define TRIPS_GAP_MS (5 * 60 * 1000) /* a pause longer than this ends a trip */

struct trip {
	int64_t start_ms, end_ms;
	int64_t distance_m;
	size_t first, n; /* the trip's samples: rows[first .. first + n) */
	size_t npos;	 /* how many of them carry a position */
};

/*
 * The trips in rows[0..n) (oldest first, as telemetry_history() returns
 * them), oldest first. *ret_trips is malloc'ed (NULL when *ret_n is 0).
 * Returns 0 or -ENOMEM.
 */
int trips_split(const struct telemetry_sample *rows, size_t n, struct trip **ret_trips,
		size_t *ret_n);

#endif
