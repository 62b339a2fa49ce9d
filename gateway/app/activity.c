/*
 * Activity bookkeeping; see activity.h. The cars are an open-addressing
 * hash set of VINs with the time each was last seen, rebuilt without the
 * stale ones whenever they are counted (once a minute), which is also how
 * entries are deleted (linear probing cannot just empty a slot).
 */
#include "activity.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vin.h"

#define FIRST_SLOTS 64

struct car {
	char vin[VIN_LEN + 1]; /* "" = free slot */
	uint64_t seen_ms;      /* monotonic */
};

struct activity {
	struct counters last; /* the counters at the last line */
	uint64_t last_ms;     /* monotonic time of the last line */
	struct car *cars;     /* owned; nslots of them, a power of two */
	size_t nslots, ncars;
	int more; /* a car was not tracked since the last count */
};

/* FNV-1a of the VIN. */
static size_t vin_hash(const char *vin)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < VIN_LEN && vin[i]; i++) {
		h ^= (unsigned char)vin[i];
		h *= 1099511628211ull;
	}
	return (size_t)h;
}

/* The slot holding vin, or the free slot where it belongs. */
static struct car *find_slot(struct car *cars, size_t nslots, const char *vin)
{
	size_t i = vin_hash(vin) & (nslots - 1);

	while (cars[i].vin[0] && strcmp(cars[i].vin, vin) != 0)
		i = (i + 1) & (nslots - 1);
	return &cars[i];
}

/*
 * Rehashes into nslots slots, keeping the cars seen at or after since_ms.
 * Returns 0, or -ENOMEM (nothing changed).
 */
static int rebuild(struct activity *a, size_t nslots, uint64_t since_ms)
{
	struct car *cars = calloc(nslots, sizeof(*cars));
	size_t n = 0;

	if (!cars)
		return -ENOMEM;
	for (size_t i = 0; i < a->nslots; i++) {
		const struct car *c = &a->cars[i];

		if (!c->vin[0] || c->seen_ms < since_ms)
			continue;
		*find_slot(cars, nslots, c->vin) = *c;
		n++;
	}
	free(a->cars);
	a->cars = cars;
	a->nslots = nslots;
	a->ncars = n;
	return 0;
}

int activity_new(const struct counters *start, uint64_t now_ms, struct activity **ret_a)
{
	struct activity *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->cars = calloc(FIRST_SLOTS, sizeof(*a->cars));
	if (!a->cars) {
		free(a);
		return -ENOMEM;
	}
	a->nslots = FIRST_SLOTS;
	a->last = *start;
	a->last_ms = now_ms;
	*ret_a = a;
	return 0;
}

void activity_free(struct activity *a)
{
	if (!a)
		return;
	free(a->cars);
	free(a);
}

int activity_seen(struct activity *a, const char *vin, uint64_t now_ms)
{
	struct car *c = find_slot(a->cars, a->nslots, vin);

	if (c->vin[0]) {
		c->seen_ms = now_ms;
		return 0;
	}
	if (a->ncars >= ACTIVITY_MAX_CARS) {
		a->more = 1;
		return -E2BIG;
	}
	/* Keep the table at most half full: probes stay short. */
	if (2 * (a->ncars + 1) > a->nslots) {
		if (rebuild(a, 2 * a->nslots, 0) < 0) {
			a->more = 1;
			return -ENOMEM;
		}
		c = find_slot(a->cars, a->nslots, vin);
	}
	snprintf(c->vin, sizeof(c->vin), "%s", vin);
	c->seen_ms = now_ms;
	a->ncars++;
	return 0;
}

size_t activity_online(struct activity *a, uint64_t now_ms, int *ret_more)
{
	uint64_t since = now_ms > ACTIVITY_ONLINE_MS ? now_ms - ACTIVITY_ONLINE_MS : 0;
	size_t slots = a->nslots;

	/* Shrink when a quarter full or less after dropping the stale cars. */
	while (slots > FIRST_SLOTS && 4 * a->ncars <= slots)
		slots /= 2;
	if (rebuild(a, slots, since) < 0) {
		/* No memory for a new table: count in place, forget nothing. */
		size_t n = 0;

		for (size_t i = 0; i < a->nslots; i++)
			n += a->cars[i].vin[0] && a->cars[i].seen_ms >= since;
		if (ret_more)
			*ret_more = a->more;
		a->more = 0;
		return n;
	}
	if (ret_more)
		*ret_more = a->more;
	a->more = 0;
	return a->ncars;
}

/* Appends printf output to buf at *pos, never past len. */
static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*pos >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n > 0)
		*pos += (size_t)n < len - *pos ? (size_t)n : len - *pos;
}

uint64_t activity_line(struct activity *a, const struct counters *cur, uint64_t now_ms, char *buf,
		       size_t len)
{
	const struct counters *p = &a->last;
	uint64_t batches = cur->stored - p->stored;
	size_t pos = 0, online;
	int more;

	if (len)
		buf[0] = '\0';
	put(buf, len, &pos,
	    "last %" PRIu64 " s: batches=%" PRIu64 " samples=%" PRIu64 " duplicates=%" PRIu64
	    " offers=%" PRIu64 " receipts=%" PRIu64,
	    (now_ms - a->last_ms + 500) / 1000, batches, cur->samples_stored - p->samples_stored,
	    cur->duplicates - p->duplicates, cur->offers_sent - p->offers_sent,
	    cur->acks_sent - p->acks_sent);
	for (int r = 0; r < REJECT_COUNT; r++) {
		uint64_t d = cur->rejected[r] - p->rejected[r];

		if (d)
			put(buf, len, &pos, " rejected.%s=%" PRIu64,
			    counters_reject_name((enum reject)r), d);
	}
	online = activity_online(a, now_ms, &more);
	put(buf, len, &pos, " cars_online=%zu%s", online, more ? "+" : "");
	a->last = *cur;
	a->last_ms = now_ms;
	return batches;
}
