/*
 * Small helpers for building offers that need no codec or crypto: random
 * offer ids and promo codes, and the names of offer kinds as pitstopctl and
 * the database show them. Signing lives in offer_signing.h.
 */
#ifndef PITSTOP_GATEWAY_OFFERS_H
#define PITSTOP_GATEWAY_OFFERS_H

#include <stddef.h>

#include "codec.h"

/* Hex chars of a random 128-bit offer id. */
#define OFFERS_ID_HEX 32

/*
 * Writes a random 128-bit id as 32 lower-case hex chars + NUL into id (which
 * has CODEC_MAX_ID bytes). Returns 0 or -errno from getrandom().
 */
int offers_new_id(char id[CODEC_MAX_ID]);

/*
 * Writes prefix followed by n random characters from an alphabet without
 * look-alikes (no 0/O, 1/I/L) into buf. Returns 0, -EINVAL if it does not
 * fit in size, or -errno from getrandom().
 */
int offers_promo_code(const char *prefix, size_t n, char *buf, size_t size);

/* "refuel", "service", "inspection", "loyalty", "test_drive"; "unknown" else. */
const char *offers_kind_name(enum offer_kind kind);

/* Parses a name from offers_kind_name(). Returns the kind or -EINVAL. */
int offers_kind_parse(const char *name);

#endif
