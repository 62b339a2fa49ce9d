/*
 * Offer ids, promo codes and kind names; see offers.h. Randomness comes from
 * getrandom(2) (the kernel CSPRNG): ids and promo codes must not be guessable.
 */
#include "offers.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* Fills buf with n random bytes. Returns 0 or -errno. */
static int random_bytes(uint8_t *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = getrandom(buf + got, n - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return 0;
}

int offers_new_id(char id[CODEC_MAX_ID])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[OFFERS_ID_HEX / 2];
	int r = random_bytes(b, sizeof(b));

	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof(b); i++) {
		id[2 * i] = hex[b[i] >> 4];
		id[2 * i + 1] = hex[b[i] & 0xf];
	}
	id[OFFERS_ID_HEX] = '\0';
	return 0;
}

int offers_promo_code(const char *prefix, size_t n, char *buf, size_t size)
{
	static const char alphabet[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"; /* 31 chars */
	size_t plen = strlen(prefix);
	uint8_t b[32];
	int r;

	if (n > sizeof(b) || plen + n + 1 > size)
		return -EINVAL;
	r = random_bytes(b, n);
	if (r < 0)
		return r;
	memcpy(buf, prefix, plen);
	for (size_t i = 0; i < n; i++)
		buf[plen + i] = alphabet[b[i] % (sizeof(alphabet) - 1)];
	buf[plen + n] = '\0';
	return 0;
}

/* Indexed by enum offer_kind. */
static const char *const kind_names[] = {
	[OFFER_REFUEL] = "refuel",	   [OFFER_SERVICE] = "service",
	[OFFER_INSPECTION] = "inspection", [OFFER_LOYALTY] = "loyalty",
	[OFFER_TEST_DRIVE] = "test_drive",
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

const char *offers_kind_name(enum offer_kind kind)
{
	if ((size_t)kind < N_KINDS && kind_names[kind])
		return kind_names[kind];
	return "unknown";
}

int offers_kind_parse(const char *name)
{
	for (size_t i = 0; name && i < N_KINDS; i++)
		if (kind_names[i] && strcmp(kind_names[i], name) == 0)
			return (int)i;
	return -EINVAL;
}
