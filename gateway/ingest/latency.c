/*
 * The latency histogram; see latency.h. Bucket i < 32 holds the value i;
 * bucket 32 * g + s (g >= 1) holds [(32 + s) << (g - 1), (33 + s) << (g - 1)),
 * that is the values whose highest bit is bit g + 4 and whose next five
 * bits are s.
 */
#include "latency.h"

#include <math.h>

#define SUB (1u << LATENCY_SUB_BITS)

/* The bucket of value v. */
static unsigned bucket_of(uint64_t v)
{
	unsigned e, shift;

	if (v >= (1ull << LATENCY_MAX_EXP))
		v = (1ull << LATENCY_MAX_EXP) - 1;
	if (v < SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v); /* >= LATENCY_SUB_BITS */
	shift = e - LATENCY_SUB_BITS;
	return (shift + 1) * SUB + (unsigned)((v >> shift) - SUB);
}

/* The largest value bucket i holds. */
static uint64_t bucket_high(unsigned i)
{
	unsigned shift;

	if (i < SUB)
		return i;
	shift = i / SUB - 1;
	return ((uint64_t)(SUB + i % SUB + 1) << shift) - 1;
}

void latency_add(struct latency *l, uint64_t us)
{
	l->bucket[bucket_of(us)]++;
	l->count++;
	if (us > l->max_us)
		l->max_us = us;
}

uint64_t latency_percentile(const struct latency *l, double q)
{
	uint64_t rank, seen = 0;

	if (l->count == 0)
		return 0;
	rank = (uint64_t)ceil(q * (double)l->count);
	if (rank < 1)
		rank = 1;
	if (rank > l->count)
		rank = l->count;
	for (unsigned i = 0; i < LATENCY_BUCKETS; i++) {
		seen += l->bucket[i];
		if (seen >= rank) {
			uint64_t high = bucket_high(i);

			return high < l->max_us ? high : l->max_us;
		}
	}
	return l->max_us; /* cannot happen: the buckets add up to count */
}
