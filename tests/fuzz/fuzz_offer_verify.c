/*
 * libFuzzer target for the agent's offer verifier: the input is a message
 * on the offers topic (SignedOffer bytes) and goes to offers_handle(), the
 * function the agent runs on it (agent/offers.h: key id, signature, Offer,
 * VIN, validity window, redelivery), with a fresh offers.db in a temporary
 * directory (removed at exit) and a display that only records the card.
 *
 * The offer-signing key is a fixed test key (below; it signs nothing but
 * these tests), so the seeds in corpus/offer_verify/ carry valid signatures
 * and reach the checks after the signature. A mutated offer no longer
 * verifies, so each input that decodes as a SignedOffer is also handed over
 * re-signed with that key: the fuzzer explores what a validly signed but
 * hostile (or broken) gateway could send.
 *
 * Checked on every input: no crash, no leak; offers_handle() returns an
 * enum offers_result (the database is fresh and local: it does not fail); an offer
 * it takes (shown or waiting) really is signed by the key, decodes, names
 * our VIN and is valid now, and only then is a card on screen; a rejection
 * reports exactly one REJECTED event naming an id only after the signature
 * verified; the same message again is a duplicate; once it has expired,
 * offers_tick() takes the card down.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memfd_create; the CMake build defines it already */
#endif
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "codec.h"
#include "crypto.h"
#include "display.h"
#include "log.h"
#include "offers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                         \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "fuzz_offer_verify: check failed at line %d: %s\n", \
				__LINE__, #cond);                                           \
			abort();                                                            \
		}                                                                           \
	} while (0)

#define FUZZ_VIN "WDB1234561A123456"
#define FUZZ_NOW 1767225600000LL /* 2026-01-01T00:00:00Z: the seeds are valid around it */
#define FUZZ_MAX_SPEED 5.0

/* The test offer-signing key (P-256, SEC1 PEM); the README says how to sign seeds with it. */
static const char fuzz_key_pem[] =
	"-----BEGIN EC PRIVATE KEY-----\n"
	"MHcCAQEEIAQzBYz/EPmOH/36F3wpOOlWL7djMux1HePNfXozI+iZoAoGCCqGSM49\n"
	"AwEHoUQDQgAEGeHTRDWDSFcfSFvephNVFjtIwHZK1Ep3i+us4retifO19nEw4OK7\n"
	"GITh8vPF7HTqc2dcYaFxeNh/0TSLuM2aRA==\n"
	"-----END EC PRIVATE KEY-----\n";
static const char fuzz_pub_pem[] =
	"-----BEGIN PUBLIC KEY-----\n"
	"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEGeHTRDWDSFcfSFvephNVFjtIwHZK\n"
	"1Ep3i+us4retifO19nEw4OK7GITh8vPF7HTqc2dcYaFxeNh/0TSLuM2aRA==\n"
	"-----END PUBLIC KEY-----\n";

/* A display that remembers the card it was given. */
struct fuzz_display {
	struct display base;
	int shown; /* a card is on screen */
	struct offer card;
};

/* What the offers module reported through its event callback. */
struct fuzz_events {
	unsigned shown, rejected, delivered, other;
	struct offer_event last;
};

static struct crypto_signer *signer;
static struct crypto_verifier *verifier;
static char tmpdir[4096];  /* made once, removed at exit */
static char db_path[4200]; /* tmpdir/offers.db, made afresh for each message */

/* Removes offers.db and its WAL files; with rmdir_too, the directory too. */
static void remove_db(int rmdir_too)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char p[4300];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", db_path, suffix[i]);
		unlink(p);
	}
	if (rmdir_too)
		rmdir(tmpdir);
}

static void remove_all(void)
{
	remove_db(1);
}

static int fake_show(struct display *d, const struct offer *o, int64_t shown_at_ms)
{
	struct fuzz_display *fd = (struct fuzz_display *)d;
	char until[32];

	display_format_time(o->valid_until_ms, until, sizeof(until)); /* as the file display */
	fd->card = *o;
	fd->shown = 1;
	return 0;
}

static int fake_clear(struct display *d)
{
	((struct fuzz_display *)d)->shown = 0;
	return 0;
}

static void fake_free(struct display *d)
{
}

static const struct display_ops fake_ops = { fake_show, fake_clear, fake_free };

static void on_event(const struct offer_event *ev, void *arg)
{
	struct fuzz_events *e = arg;

	if (ev->action == OFFER_ACTION_SHOWN)
		e->shown++;
	else if (ev->action == OFFER_ACTION_REJECTED)
		e->rejected++;
	else if (ev->action == OFFER_ACTION_DELIVERED)
		e->delivered++;
	else
		e->other++;
	e->last = *ev;
}

/* Writes text to a memfd and returns its /proc path in buf (the fd stays open). */
static const char *pem_path(const char *text, char *buf, size_t len)
{
	int fd = memfd_create("fuzz_offer_verify", MFD_CLOEXEC);

	CHECK(fd >= 0);
	CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	snprintf(buf, len, "/proc/self/fd/%d", fd);
	return buf;
}

static void init_once(void)
{
	char path[64];

	const char *t = getenv("TMPDIR");

	if (verifier)
		return;
	snprintf(tmpdir, sizeof(tmpdir), "%s/fuzz_offer_verify.XXXXXX", t && *t ? t : "/tmp");
	CHECK(mkdtemp(tmpdir) != NULL);
	snprintf(db_path, sizeof(db_path), "%s/offers.db", tmpdir);
	atexit(remove_all);
	log_init("fuzz_offer_verify", LOG_LEVEL_DEBUG); /* format every line... */
	CHECK(log_open_file("/dev/null") == 0);		/* ...but keep quiet */
	CHECK(crypto_signer_load(pem_path(fuzz_key_pem, path, sizeof(path)), &signer) == 0);
	CHECK(crypto_verifier_load(pem_path(fuzz_pub_pem, path, sizeof(path)), &verifier) == 0);
	CHECK(strcmp(crypto_signer_key_id(signer), crypto_verifier_key_id(verifier)) == 0);
}

/* 1 if msg is an offer the agent must take at FUZZ_NOW, checked here without offers.c. */
static int acceptable(const uint8_t *msg, size_t len, struct offer *ret_o)
{
	struct signed_offer so;
	int ok;

	if (len == 0 || len > CODEC_MAX_OFFER_BYTES || codec_decode_signed_offer(msg, len, &so) < 0)
		return 0;
	/* the signature last: it is the slow check */
	ok = strcmp(so.key_id, crypto_verifier_key_id(verifier)) == 0 &&
	     codec_decode_offer(so.offer, so.offer_len, ret_o) == 0 && ret_o->id[0] &&
	     strcmp(ret_o->vin, FUZZ_VIN) == 0 && ret_o->valid_from_ms <= FUZZ_NOW &&
	     FUZZ_NOW <= ret_o->valid_until_ms;
#ifdef OFFERS_MAX_VALIDITY_MS /* the longest window (issue 6, item 7), default config */
	ok = ok && (uint64_t)ret_o->valid_until_ms - (uint64_t)ret_o->valid_from_ms <=
			   (uint64_t)OFFERS_MAX_VALIDITY_MS;
#endif
	ok = ok && crypto_verify(verifier, so.offer, so.offer_len, so.sig, so.sig_len) == 0;
	codec_signed_offer_free(&so);
	return ok;
}

/* Hands msg to a fresh offers module at speed_kmh and checks what it did. */
static void check_message(const uint8_t *msg, size_t len, double speed_kmh)
{
	struct offers_config oc = {
		.db_path = db_path,
		.vin = FUZZ_VIN,
		.verifier = verifier,
		.max_speed_kmh = FUZZ_MAX_SPEED,
	};
	struct fuzz_display disp = { .base = { &fake_ops } };
	struct fuzz_events ev;
	struct offers *o = NULL;
	struct offer want;
	char id[CODEC_MAX_ID];
	int r, ok;

	memset(&ev, 0, sizeof(ev));
	remove_db(0);
	CHECK(offers_new(&oc, &disp.base, on_event, &ev, FUZZ_NOW, &o) == 0);
	ok = acceptable(msg, len, &want);
	r = offers_handle(o, msg, len, FUZZ_NOW, speed_kmh);
	CHECK(r == OFFERS_SHOWN || r == OFFERS_WAITING || r == OFFERS_REJECTED);
	CHECK(ev.other == 0);
	if (!ok) {
		CHECK(r == OFFERS_REJECTED && ev.rejected == 1 && ev.shown == 0 && !disp.shown);
		CHECK(ev.delivered == 0);
		CHECK(ev.last.reason[0] != '\0' && ev.last.time_ms == FUZZ_NOW);
		if (strcmp(ev.last.reason, "unknown key") == 0 ||
		    strcmp(ev.last.reason, "bad signature") == 0)
			CHECK(strcmp(ev.last.offer_id, "?") == 0);
		CHECK(offers_current(o, NULL, 0) == OFFERS_NONE);
		goto out;
	}
	CHECK(ev.rejected == 0 && ev.delivered == 1); /* verified and stored: delivered, once */
	CHECK(offers_current(o, id, sizeof(id)) ==
	      (r == OFFERS_SHOWN ? OFFERS_STATE_SHOWN : OFFERS_STATE_WAITING));
	CHECK(strcmp(id, want.id) == 0);
	if (r == OFFERS_SHOWN) {
		CHECK(speed_kmh <= FUZZ_MAX_SPEED && ev.shown == 1 && disp.shown);
		CHECK(strcmp(disp.card.id, want.id) == 0 && strcmp(disp.card.vin, FUZZ_VIN) == 0);
	} else {
		CHECK(!(speed_kmh <= FUZZ_MAX_SPEED) && ev.shown == 0 && !disp.shown);
	}
	/* QoS 1 redelivery: ignored, nothing reported */
	CHECK(offers_handle(o, msg, len, FUZZ_NOW, speed_kmh) == OFFERS_DUPLICATE);
	CHECK(ev.rejected == 0 && ev.delivered == 1 && ev.shown == (r == OFFERS_SHOWN));
	/* slow down: a waiting card goes up */
	offers_tick(o, FUZZ_NOW, 0.0);
	CHECK(disp.shown && offers_current(o, NULL, 0) == OFFERS_STATE_SHOWN);
	/* expired: the card comes down */
	if (want.valid_until_ms < INT64_MAX) {
		offers_tick(o, want.valid_until_ms + 1, 0.0);
		CHECK(!disp.shown && offers_current(o, NULL, 0) == OFFERS_NONE);
	}
out:
	offers_free(o);
}

/* msg with the Offer it carries signed by the test key; NULL if msg is no SignedOffer. */
static uint8_t *resign(const uint8_t *msg, size_t len, size_t *ret_len)
{
	struct signed_offer so;
	uint8_t sig[CRYPTO_SIG_MAX], *out = NULL;
	size_t sig_len = 0;

	if (len > CODEC_MAX_OFFER_BYTES || codec_decode_signed_offer(msg, len, &so) < 0)
		return NULL;
	if (crypto_sign(signer, so.offer, so.offer_len, sig, &sig_len) == 0 &&
	    codec_encode_signed_offer(so.offer, so.offer_len, sig, sig_len,
				      crypto_signer_key_id(signer), &out, ret_len) < 0)
		out = NULL;
	codec_signed_offer_free(&so);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *again;
	size_t len = 0;

	init_once();
	/* as it came: an attacker without the key, or a seed signed with it */
	check_message(data, size, 0.0);
	/* re-signed: the checks behind the signature, while driving (unknown speed) */
	again = resign(data, size, &len);
	if (again) {
		check_message(again, len, NAN);
		free(again);
	}
	return 0;
}
