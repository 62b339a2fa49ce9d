/*
 * The signing thread; see sign_worker.h. Jobs live in one fixed array of
 * SIGN_WORKER_MAX slots, each free, queued, signing or done; queued jobs
 * are taken oldest first (a sequence number), done ones handed back in one
 * waker callback. Two locks: mu guards the slots and is never held while
 * signing; sign_mu guards the signer, so the loop's own signatures (the
 * fallback when the worker is full) never run at the same time as the
 * thread's.
 */
#include "sign_worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "offer_signing.h"

enum slot_state {
	SLOT_FREE,
	SLOT_QUEUED,
	SLOT_SIGNING,
	SLOT_DONE,
};

struct slot {
	enum slot_state state;
	uint64_t seq; /* order of submission */
	uint64_t tag;
	uint8_t *offer; /* owned while SLOT_QUEUED or SLOT_SIGNING: the encoded Offer */
	size_t offer_len;
	int result;
	uint8_t *buf; /* owned while SLOT_DONE */
	size_t len;
};

struct sign_worker {
	struct crypto_signer *signer; /* borrowed; used under sign_mu only */
	sign_worker_done_fn done;
	void *arg;
	struct loop_waker *waker; /* owned */
	pthread_t thread;
	int started;
	pthread_mutex_t mu; /* the slots, seq, stop */
	pthread_cond_t cv;  /* a job was queued, or stop */
	pthread_mutex_t sign_mu;
	struct slot slot[SIGN_WORKER_MAX];
	uint64_t seq;
	int stop;
	int paused; /* sign_worker_pause() */
};

/* The oldest slot in state st, or NULL. Under mu. */
static struct slot *oldest(struct sign_worker *w, enum slot_state st)
{
	struct slot *best = NULL;

	for (size_t i = 0; i < SIGN_WORKER_MAX; i++)
		if (w->slot[i].state == st && (!best || w->slot[i].seq < best->seq))
			best = &w->slot[i];
	return best;
}

int sign_worker_sign(struct sign_worker *w, const uint8_t *offer, size_t len, uint8_t **ret_buf,
		     size_t *ret_len)
{
	int r;

	pthread_mutex_lock(&w->sign_mu);
	r = offer_signing_wrap(w->signer, offer, len, ret_buf, ret_len);
	pthread_mutex_unlock(&w->sign_mu);
	return r;
}

static void *worker_main(void *arg)
{
	struct sign_worker *w = arg;
	int hint = loop_prefer_latency(); /* an offer waits for this thread */

	if (hint < 0)
		log_debug("signing thread: the scheduler refused a short time slice (%s)",
			  strerror(-hint));
	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct slot *s = NULL;
		uint8_t *buf = NULL;
		size_t len = 0;
		int r;

		while (!w->stop && (w->paused || !(s = oldest(w, SLOT_QUEUED))))
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop)
			break;
		s->state = SLOT_SIGNING; /* s->offer is the thread's until SLOT_DONE */
		pthread_mutex_unlock(&w->mu);
		r = sign_worker_sign(w, s->offer, s->offer_len, &buf, &len);
		free(s->offer);
		pthread_mutex_lock(&w->mu);
		s->offer = NULL;
		s->result = r;
		s->buf = buf;
		s->len = len;
		s->state = SLOT_DONE;
		pthread_mutex_unlock(&w->mu);
		loop_waker_signal(w->waker);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* On the loop: hands every finished offer back, oldest first. */
static void on_signed(void *arg)
{
	struct sign_worker *w = arg;
	struct {
		uint64_t tag;
		int result;
		uint8_t *buf;
		size_t len;
	} done[SIGN_WORKER_MAX];
	size_t n = 0;

	pthread_mutex_lock(&w->mu);
	for (struct slot *best; (best = oldest(w, SLOT_DONE));) {
		done[n].tag = best->tag;
		done[n].result = best->result;
		done[n].buf = best->buf;
		done[n++].len = best->len;
		best->state = SLOT_FREE;
		best->buf = NULL;
	}
	pthread_mutex_unlock(&w->mu);
	/* Outside the lock: the callback may submit again. */
	for (size_t i = 0; i < n; i++)
		w->done(w->arg, done[i].tag, done[i].result, done[i].buf, done[i].len);
}

int sign_worker_submit(struct sign_worker *w, uint8_t *offer, size_t len, uint64_t tag)
{
	struct slot *s = NULL;

	pthread_mutex_lock(&w->mu);
	for (size_t i = 0; i < SIGN_WORKER_MAX && !s; i++)
		if (w->slot[i].state == SLOT_FREE)
			s = &w->slot[i];
	if (!s) {
		pthread_mutex_unlock(&w->mu);
		return -ENOBUFS;
	}
	s->state = SLOT_QUEUED;
	s->seq = w->seq++;
	s->tag = tag;
	s->offer = offer;
	s->offer_len = len;
	s->buf = NULL;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void sign_worker_pause(struct sign_worker *w, int paused)
{
	pthread_mutex_lock(&w->mu);
	w->paused = paused;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int sign_worker_new(struct loop *loop, struct crypto_signer *signer, sign_worker_done_fn done,
		    void *arg, struct sign_worker **ret)
{
	struct sign_worker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->signer = signer;
	w->done = done;
	w->arg = arg;
	pthread_mutex_init(&w->mu, NULL);
	pthread_mutex_init(&w->sign_mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	r = loop_waker_new(loop, on_signed, w, &w->waker);
	if (r < 0)
		goto fail;
	r = -pthread_create(&w->thread, NULL, worker_main, w);
	if (r < 0)
		goto fail;
	w->started = 1;
	*ret = w;
	return 0;
fail:
	sign_worker_free(w);
	return r;
}

void sign_worker_free(struct sign_worker *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = 1;
		pthread_cond_signal(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	for (size_t i = 0; i < SIGN_WORKER_MAX; i++) {
		free(w->slot[i].offer);
		free(w->slot[i].buf);
	}
	loop_waker_free(w->waker);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->sign_mu);
	pthread_mutex_destroy(&w->mu);
	free(w);
}
