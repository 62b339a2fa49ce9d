/*
 * offer_sign: what signing and verifying one offer costs (docs/performance.md,
 * "Offer latency"): the gateway's offer_signing_encode() (encode, ECDSA
 * P-256 over SHA-256 with mbedTLS, wrap) and the car's crypto_verify(), on a
 * key pair pki_init() makes in a temporary directory. Times N (default
 * 2,000) of each on one thread and prints key=value lines:
 * offer_sign_us_p50/_p99, offer_verify_us_p50/_p99, signed_offer_bytes.
 *
 *   bench_offer_sign [N]
 */
#define _XOPEN_SOURCE 700 /* nftw() */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "crypto.h"
#include "offer_signing.h"
#include "pki.h"

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Sorts t[0..n) and prints its p50 and p99 in µs as <key>_us_p50/_p99. */
static void print_pct(const char *key, uint64_t *t, size_t n)
{
	qsort(t, n, sizeof(*t), cmp);
	printf("%s_us_p50=%.1f\n%s_us_p99=%.1f\n", key, (double)t[n / 2] / 1000.0, key,
	       (double)t[n * 99 / 100] / 1000.0);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000;
	char dir[] = "/tmp/bench-offer-sign-XXXXXX", path[600], err[256];
	struct crypto_signer *s = NULL;
	struct crypto_verifier *v = NULL;
	uint64_t *ts = calloc(n ? n : 1, sizeof(*ts)), *tv = calloc(n ? n : 1, sizeof(*tv));
	struct offer o;
	size_t len = 0;
	int r = 1;

	if (!n || !ts || !tv || !mkdtemp(dir)) {
		fprintf(stderr, "offer_sign: bad count, or no memory or temp dir\n");
		return 1;
	}
	if (pki_init(dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "offer_sign: pki_init: %s\n", err);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/offer-signing.key", dir);
	if (crypto_signer_load(path, &s) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/offer-signing.pub", dir);
	if (crypto_verifier_load(path, &v) < 0)
		goto out;
	memset(&o, 0, sizeof(o));
	snprintf(o.id, sizeof(o.id), "0123456789abcdef0123456789abcdef");
	snprintf(o.vin, sizeof(o.vin), "WDB1234561A000001");
	snprintf(o.title, sizeof(o.title), "Aral Muehlenweg: save 5 ct/l");
	snprintf(o.body, sizeof(o.body),
		 "Aral Muehlenweg is 0.6 km ahead. Show code FUEL-YNGZ7V73");
	snprintf(o.promo_code, sizeof(o.promo_code), "FUEL-YNGZ7V73");
	o.kind = OFFER_REFUEL;
	o.valid_from_ms = 1764547200000;
	o.valid_until_ms = o.valid_from_ms + 3600000;
	for (size_t i = 0; i < n; i++) {
		struct signed_offer so;
		uint8_t *buf = NULL;
		uint64_t t0 = now_ns(), t1;

		if (offer_signing_encode(s, &o, &buf, &len) < 0)
			goto out;
		t1 = now_ns();
		ts[i] = t1 - t0;
		if (codec_decode_signed_offer(buf, len, &so) < 0)
			goto out;
		t0 = now_ns();
		if (crypto_verify(v, so.offer, so.offer_len, so.sig, so.sig_len) < 0)
			goto out;
		tv[i] = now_ns() - t0;
		codec_signed_offer_free(&so);
		free(buf);
	}
	printf("offers=%zu\nsigned_offer_bytes=%zu\n", n, len);
	print_pct("offer_sign", ts, n);
	print_pct("offer_verify", tv, n);
	r = 0;
out:
	if (r)
		fprintf(stderr, "offer_sign: signing or verifying failed\n");
	crypto_verifier_free(v);
	crypto_signer_free(s);
	if (nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "offer_sign: could not remove %s\n", dir);
	free(ts);
	free(tv);
	return r;
}
