/*
 * What the gateway did lately, for operators: the once-a-minute info line
 * (how many batches, samples, offers, receipts and rejects by reason since
 * the last line) and the number of cars online.
 *
 * "Cars online" are the distinct VINs this instance received any message
 * from (telemetry, events or status, whatever became of it) within the last
 * ACTIVITY_ONLINE_MS. A car samples every second and seals a batch at least
 * every batch_max_age_ms (30 s by default), so a connected car is seen well
 * within five minutes, and a car that went away drops out five minutes
 * later. With several instances in a share group each counts the cars whose
 * messages it got: most cars reach every instance, so the counts overlap
 * and must not be summed.
 *
 * Pure bookkeeping: no loop, no log, no database (main.c logs the line and
 * feeds the clock), so the unit test drives it with made-up times. At most
 * ACTIVITY_MAX_CARS cars are tracked; past that the count says "at least".
 */
#ifndef PITSTOP_GATEWAY_ACTIVITY_H
#define PITSTOP_GATEWAY_ACTIVITY_H

#include <stddef.h>
#include <stdint.h>

#include "counters.h"

#define ACTIVITY_ONLINE_MS (5 * 60 * 1000)
#define ACTIVITY_MAX_CARS (1u << 20)

struct activity;

/*
 * Starts counting from the counters in start (copied: the first line shows
 * what happened after this call), at monotonic time now_ms. Returns 0 and
 * *ret_a, or -ENOMEM.
 */
int activity_new(const struct counters *start, uint64_t now_ms, struct activity **ret_a);

/* Accepts NULL. */
void activity_free(struct activity *a);

/*
 * A message from vin (a valid VIN, VIN_LEN characters) arrived at monotonic
 * time now_ms. Returns 0, -E2BIG when ACTIVITY_MAX_CARS are tracked already
 * (the car is then not counted: see activity_online()), or -ENOMEM.
 */
int activity_seen(struct activity *a, const char *vin, uint64_t now_ms);

/*
 * The cars seen within ACTIVITY_ONLINE_MS before now_ms; forgets older
 * ones. *ret_more (may be NULL) is 1 when some cars were not tracked since
 * the last call (the table was full), so the true count is higher.
 */
size_t activity_online(struct activity *a, uint64_t now_ms, int *ret_more);

/*
 * Writes the line for the counters cur against those of the last call (or
 * of activity_new()) into buf, e.g. "last 60 s: batches=120 samples=3600
 * duplicates=0 offers=2 receipts=120 rejected.malformed=3 cars_online=40"
 * (rejects only by the reasons that occurred), then remembers cur and
 * now_ms. Returns the batches stored in between.
 */
uint64_t activity_line(struct activity *a, const struct counters *cur, uint64_t now_ms, char *buf,
		       size_t len);

#endif
