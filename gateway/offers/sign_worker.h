/*
 * A thread that signs offers off the loop (docs/performance.md, "Offer
 * latency"). Signing an offer (ECDSA P-256, about half a millisecond) is
 * the largest single cost between a car's batch and its offer; on the loop
 * it also held up every other car's batch queued behind it. With the
 * worker the loop hands the offer over and goes on storing the drain and
 * committing it, while the thread signs: the offer is published once both
 * its transaction committed and its signature is back, whichever comes
 * last.
 *
 * The loop submits an encoded offer (codec_encode_offer(), which has already
 * told it whether the offer is valid) with a tag of its choosing; the
 * thread signs and wraps those bytes (offer_signing_wrap()), and the result
 * comes back on the loop thread, through a waker, to the done callback.
 * At most SIGN_WORKER_MAX offers are in the worker at a time (queued, being
 * signed, or signed and not yet handed back); past that sign_worker_submit()
 * says -ENOBUFS and the caller signs on the loop with sign_worker_sign(),
 * which shares the signer (and its lock) with the thread.
 *
 * The signer is borrowed and used only under the worker's lock from then
 * on: nobody else may sign with it while the worker exists.
 */
#ifndef PITSTOP_GATEWAY_SIGN_WORKER_H
#define PITSTOP_GATEWAY_SIGN_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "crypto.h"
#include "loop.h"

/* Offers in the worker at most (an offer a message, a drain has at most 500). */
#define SIGN_WORKER_MAX 64

/*
 * A signed offer back on the loop thread: result 0 and buf (malloc'ed
 * SignedOffer bytes, now the callee's) and len, or a negative errno from
 * offer_signing_wrap() and buf NULL.
 */
typedef void (*sign_worker_done_fn)(void *arg, uint64_t tag, int result, uint8_t *buf, size_t len);

struct sign_worker;

/* Starts the thread. Returns 0 and *ret, or -errno. */
int sign_worker_new(struct loop *loop, struct crypto_signer *signer, sign_worker_done_fn done,
		    void *arg, struct sign_worker **ret);

/*
 * Stops and joins the thread. Offers still inside are dropped without a
 * callback (their buffers freed). Accepts NULL.
 */
void sign_worker_free(struct sign_worker *w);

/*
 * Hands the encoded offer (len bytes, malloc'ed) to the thread, which owns
 * and frees it from then on. Returns 0, or -ENOBUFS when SIGN_WORKER_MAX are
 * inside (offer stays the caller's).
 */
int sign_worker_submit(struct sign_worker *w, uint8_t *offer, size_t len, uint64_t tag);

/*
 * Tests: while paused, the thread starts no signature (one under way ends),
 * so a test can keep offers inside for as long as it needs.
 */
void sign_worker_pause(struct sign_worker *w, int paused);

/* offer_signing_wrap() on the calling thread, under the worker's lock. */
int sign_worker_sign(struct sign_worker *w, const uint8_t *offer, size_t len, uint8_t **ret_buf,
		     size_t *ret_len);

#endif
