/*
 * A latency histogram of fixed size: log-linear buckets (HdrHistogram's
 * idea, in a few lines), so a gateway that runs for months keeps its
 * percentiles in 9 KiB, never an array that grows with the traffic.
 *
 * Values are microseconds. Below 2^LATENCY_SUB_BITS (32 us) every value has
 * a bucket of its own; above, each power of two is split into 32 equal
 * buckets, so a bucket is at most 1/32 (3.1 %) of its values wide. Values at
 * or above 2^LATENCY_MAX_EXP us (12.7 days) count in the last bucket.
 * Percentiles are the upper bound of the bucket the rank falls in (never
 * above the largest value seen): they err high by at most 3.1 %.
 *
 * Not thread-safe: one thread owns a histogram (ingest's: the loop).
 */
#ifndef PITSTOP_GATEWAY_LATENCY_H
#define PITSTOP_GATEWAY_LATENCY_H

#include <stdint.h>

#define LATENCY_SUB_BITS 5
#define LATENCY_MAX_EXP 40
/* One group of 32 exact values, then one group of 32 per power of two. */
#define LATENCY_BUCKETS ((LATENCY_MAX_EXP - LATENCY_SUB_BITS + 1) << LATENCY_SUB_BITS)

struct latency {
	uint64_t count;			  /* values added */
	uint64_t max_us;		  /* the largest value added */
	uint64_t bucket[LATENCY_BUCKETS]; /* values per bucket */
};

/* Counts one value of us microseconds. */
void latency_add(struct latency *l, uint64_t us);

/*
 * The q-quantile (0 < q <= 1; 0.5 is the median) of what was added, in
 * microseconds, as described above; 0 when nothing was added.
 */
uint64_t latency_percentile(const struct latency *l, double q);

#endif
