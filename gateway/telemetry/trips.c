/*
 * Trips out of stored samples; see trips.h.
 */
#include "trips.h"

#include <errno.h>
#include <stdlib.h>

#include "grow.h"

static int moved(const struct telemetry_sample *a, const struct telemetry_sample *b)
{
	if ((a->s.present & b->s.present & SAMPLE_ODOMETER) && b->s.odometer_m > a->s.odometer_m)
		return 1;
	return (b->s.present & SAMPLE_SPEED) && b->s.speed_cms > 0;
}

/* Closes the run rows[first..end) into a trip when the car moved in it. */
static int close_run(const struct telemetry_sample *rows, size_t first, size_t end,
		     struct trip **trips, size_t *n, size_t *cap)
{
	int64_t first_odo = -1, last_odo = -1;
	struct trip *t;
	size_t npos = 0;
	int any_move = 0;

	for (size_t i = first; i < end; i++) {
		if (i > first && moved(&rows[i - 1], &rows[i]))
			any_move = 1;
		if (i == first && (rows[i].s.present & SAMPLE_SPEED) && rows[i].s.speed_cms > 0)
			any_move = 1;
		if (rows[i].s.present & SAMPLE_ODOMETER) {
			if (first_odo < 0)
				first_odo = rows[i].s.odometer_m;
			last_odo = rows[i].s.odometer_m;
		}
		if (rows[i].s.present & SAMPLE_POSITION)
			npos++;
	}
	if (!any_move)
		return 0;
	/* At most one trip per sample: bounded like the history it comes from. */
	if (grow_for((void **)trips, cap, *n, sizeof(**trips), 16, TELEMETRY_HISTORY_MAX) < 0)
		return -ENOMEM;
	t = &(*trips)[(*n)++];
	t->start_ms = rows[first].s.time_ms;
	t->end_ms = rows[end - 1].s.time_ms;
	t->distance_m = last_odo > first_odo ? last_odo - first_odo : 0;
	t->first = first;
	t->n = end - first;
	t->npos = npos;
	return 0;
}

int trips_split(const struct telemetry_sample *rows, size_t n, struct trip **ret_trips,
		size_t *ret_n)
{
	struct trip *trips = NULL;
	size_t ntrips = 0, cap = 0, first = 0;
	int r = 0;

	for (size_t i = 1; i <= n && r == 0; i++) {
		if (i < n && rows[i].s.time_ms - rows[i - 1].s.time_ms <= TRIPS_GAP_MS)
			continue;
		r = close_run(rows, first, i, &trips, &ntrips, &cap);
		first = i;
	}
	if (r < 0) {
		free(trips);
		return r;
	}
	*ret_trips = trips;
	*ret_n = ntrips;
	return 0;
}
