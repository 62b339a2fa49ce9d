/*
 * Unit tests of the signing thread (gateway/offers/sign_worker.c) with the
 * real codec, crypto and loop: every offer handed over comes back on the
 * loop thread, signed (it verifies with the public key and decodes to the
 * offer that went in) and with its own tag; past SIGN_WORKER_MAX the worker
 * refuses more and the loop can still sign itself; freeing the worker with
 * offers inside drops them without a callback and without a leak.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "crypto.h"
#include "gw_test_util.h"
#include "loop.h"
#include "pki.h"
#include "sign_worker.h"

#define MAX_DONE (2 * SIGN_WORKER_MAX)

static char pki_dir[512];

struct fixture {
	struct loop *loop;
	struct crypto_signer *signer;
	struct crypto_verifier *verifier;
	struct sign_worker *w;
	pthread_t loop_thread;
	size_t ndone, want;
	struct {
		uint64_t tag;
		int result;
		uint8_t *buf;
		size_t len;
		int on_loop; /* the callback ran on the loop's thread */
	} done[MAX_DONE];
};

static void on_done(void *arg, uint64_t tag, int result, uint8_t *buf, size_t len)
{
	struct fixture *f = arg;

	assert_true(f->ndone < MAX_DONE);
	f->done[f->ndone].tag = tag;
	f->done[f->ndone].result = result;
	f->done[f->ndone].buf = buf;
	f->done[f->ndone].len = len;
	f->done[f->ndone].on_loop = pthread_equal(pthread_self(), f->loop_thread);
	if (++f->ndone == f->want)
		loop_stop(f->loop);
}

static void give_up(void *arg)
{
	loop_stop(((struct fixture *)arg)->loop); /* the assertions after loop_run() fail */
}

/* Runs the loop until n results came back (or 30 s passed). */
static void run_until(struct fixture *f, size_t n)
{
	int timer;

	f->want = n;
	if (f->ndone >= n)
		return;
	timer = loop_add_timer(f->loop, 30000, give_up, f);
	assert_true(timer > 0);
	assert_int_equal(loop_run(f->loop), 0);
	loop_cancel_timer(f->loop, timer);
	assert_int_equal(f->ndone, n);
}

static void make_offer(struct offer *o, unsigned i)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->id, sizeof(o->id), "offer-%u", i);
	snprintf(o->vin, sizeof(o->vin), "WDB1234561A%06u", i);
	snprintf(o->title, sizeof(o->title), "Offer number %u", i);
	o->kind = OFFER_REFUEL;
	o->valid_from_ms = 1000;
	o->valid_until_ms = 2000 + i;
}

/* Hands offer i, encoded, to the worker; returns sign_worker_submit()'s answer. */
static int submit(struct fixture *f, unsigned i, uint64_t tag)
{
	struct offer o;
	uint8_t *enc = NULL;
	size_t len = 0;
	int r;

	make_offer(&o, i);
	assert_int_equal(codec_encode_offer(&o, &enc, &len), 0);
	r = sign_worker_submit(f->w, enc, len, tag);
	if (r < 0)
		free(enc); /* still ours */
	return r;
}

/* buf is a SignedOffer of offer i that verifies. */
static void assert_signed(struct fixture *f, const uint8_t *buf, size_t len, unsigned i)
{
	struct signed_offer so;
	struct offer o;
	char id[32];

	assert_int_equal(codec_decode_signed_offer(buf, len, &so), 0);
	assert_int_equal(crypto_verify(f->verifier, so.offer, so.offer_len, so.sig, so.sig_len), 0);
	assert_string_equal(so.key_id, crypto_verifier_key_id(f->verifier));
	assert_int_equal(codec_decode_offer(so.offer, so.offer_len, &o), 0);
	snprintf(id, sizeof(id), "offer-%u", i);
	assert_string_equal(o.id, id);
	assert_int_equal(o.valid_until_ms, 2000 + i);
	codec_signed_offer_free(&so);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[600];

	assert_non_null(f);
	assert_int_equal(loop_new(&f->loop), 0);
	f->loop_thread = pthread_self();
	snprintf(path, sizeof(path), "%s/offer-signing.key", pki_dir);
	assert_int_equal(crypto_signer_load(path, &f->signer), 0);
	snprintf(path, sizeof(path), "%s/offer-signing.pub", pki_dir);
	assert_int_equal(crypto_verifier_load(path, &f->verifier), 0);
	assert_int_equal(sign_worker_new(f->loop, f->signer, on_done, f, &f->w), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	sign_worker_free(f->w);
	for (size_t i = 0; i < f->ndone; i++)
		free(f->done[i].buf);
	crypto_verifier_free(f->verifier);
	crypto_signer_free(f->signer);
	loop_free(f->loop);
	free(f);
	return 0;
}

static void test_signed_on_the_thread_back_on_the_loop(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(submit(f, i, 100 + i), 0);
	run_until(f, 10);
	for (size_t k = 0; k < 10; k++) {
		unsigned i = (unsigned)(f->done[k].tag - 100);

		assert_true(i < 10);
		assert_int_equal(f->done[k].result, 0);
		assert_true(f->done[k].on_loop);
		assert_signed(f, f->done[k].buf, f->done[k].len, i);
		for (size_t j = 0; j < k; j++)
			assert_true(f->done[j].tag != f->done[k].tag); /* each once */
	}
}

static void test_full_worker_refuses_and_loop_signs(void **state)
{
	struct fixture *f = *state;
	uint8_t *enc = NULL, *buf = NULL;
	size_t enc_len = 0, len = 0;
	struct offer o;

	/* Nothing is handed back while the loop does not run: all stay inside. */
	for (unsigned i = 0; i < SIGN_WORKER_MAX; i++)
		assert_int_equal(submit(f, i, i), 0);
	make_offer(&o, SIGN_WORKER_MAX);
	assert_int_equal(codec_encode_offer(&o, &enc, &enc_len), 0);
	assert_int_equal(sign_worker_submit(f->w, enc, enc_len, SIGN_WORKER_MAX), -ENOBUFS);
	assert_int_equal(sign_worker_sign(f->w, enc, enc_len, &buf, &len), 0);
	free(enc);
	assert_signed(f, buf, len, SIGN_WORKER_MAX);
	free(buf);

	run_until(f, SIGN_WORKER_MAX);
	for (size_t k = 0; k < SIGN_WORKER_MAX; k++) {
		assert_int_equal(f->done[k].result, 0);
		assert_signed(f, f->done[k].buf, f->done[k].len, (unsigned)f->done[k].tag);
	}
	/* Room again. */
	assert_int_equal(submit(f, 7, 7), 0);
	run_until(f, SIGN_WORKER_MAX + 1);
	assert_int_equal(f->done[SIGN_WORKER_MAX].tag, 7);
}

static void test_failed_signing_comes_back_as_an_error(void **state)
{
	struct fixture *f = *state;
	size_t big_len = CODEC_MAX_OFFER_BYTES; /* no room left for the signature */
	uint8_t *big = calloc(1, big_len);

	assert_non_null(big);
	assert_int_equal(sign_worker_submit(f->w, big, big_len, 1), 0);
	assert_int_equal(submit(f, 2, 2), 0);
	run_until(f, 2);
	for (size_t k = 0; k < 2; k++) {
		if (f->done[k].tag == 1) {
			assert_int_equal(f->done[k].result, -EMSGSIZE);
			assert_null(f->done[k].buf);
		} else {
			assert_int_equal(f->done[k].result, 0);
			assert_signed(f, f->done[k].buf, f->done[k].len, 2);
		}
	}
}

static void test_free_with_offers_inside(void **state)
{
	struct fixture *f = *state;

	for (unsigned i = 0; i < 20; i++)
		assert_int_equal(submit(f, i, i), 0);
	sign_worker_free(f->w); /* joins; what is inside goes, with no callback */
	f->w = NULL;
	assert_int_equal(f->ndone, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_signed_on_the_thread_back_on_the_loop, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_full_worker_refuses_and_loop_signs, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_failed_signing_comes_back_as_an_error, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_free_with_offers_inside, setup, teardown),
	};
	char err[256];

	gw_test_path(pki_dir, sizeof(pki_dir), "pki");
	if (pki_init(pki_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "pki_init: %s\n", err);
		return 1;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
