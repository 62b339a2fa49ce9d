/*
 * The outbox; see outbox.h. At most a few hundred messages at a time (one
 * transaction's receipts, a handful of offers), so a plain array scanned
 * linearly is enough; order of publishing is order of adding. Drops are
 * logged as one line per flush, not one per message: a long outage can
 * expire hundreds of receipts at once.
 */
#include "outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "latency.h"
#include "log.h"
#include "loop.h"

#define OUTBOX_DEFAULT_MAX 1024
#define COOKIE_KIND_SHIFT 56 /* cookie = kind << 56 | a counter per outbox */

struct outbox_entry {
	char topic[64]; /* pitstop/v1/vehicles/<VIN>/<kind> */
	uint8_t *buf;	/* owned */
	size_t len;
	int64_t drop_after_ms;
	uint64_t cookie;	/* 0 = queued, else in flight */
	uint64_t received_us;	/* outbox_add_timed(); 0 = not timed, or timed already */
	char id[OUTBOX_ID_MAX]; /* outbox_add_timed(); "" none */
};

struct outbox {
	enum outbox_kind kind;
	struct outbox_entry *e; /* owned, max entries */
	size_t n, max;
	int full_logged; /* "full" was logged since there last was room */
	uint64_t next_cookie;
	outbox_publish_fn publish;
	void *arg;
	struct counters *c;	  /* borrowed */
	struct latency *latency;  /* borrowed, may be NULL */
	outbox_acked_fn on_acked; /* may be NULL */
	void *on_acked_arg;
};

/* The last topic level of a kind. */
static const char *kind_topic(enum outbox_kind kind)
{
	return kind == OUTBOX_ACKS ? "acks" : "offers";
}

/* What a kind is called in log lines (plural). */
static const char *kind_name(enum outbox_kind kind)
{
	return kind == OUTBOX_ACKS ? "receipts" : "offers";
}

/* Counts one message that was acknowledged (sent 1) or given up on (0). */
static void count(struct outbox *ob, int sent)
{
	switch (ob->kind) {
	case OUTBOX_OFFERS:
		if (sent)
			ob->c->offers_sent++;
		else
			ob->c->offers_failed++;
		break;
	case OUTBOX_ACKS:
		if (sent)
			ob->c->acks_sent++; /* a lost one only costs a resend */
		break;
	}
}

int outbox_new(enum outbox_kind kind, size_t max, outbox_publish_fn publish, void *arg,
	       struct counters *counters, struct outbox **ret_outbox)
{
	struct outbox *ob = calloc(1, sizeof(*ob));

	if (!ob)
		return -ENOMEM;
	ob->kind = kind;
	ob->max = max ? max : OUTBOX_DEFAULT_MAX;
	ob->e = calloc(ob->max, sizeof(*ob->e));
	if (!ob->e) {
		free(ob);
		return -ENOMEM;
	}
	ob->publish = publish;
	ob->arg = arg;
	ob->c = counters;
	ob->next_cookie = ((uint64_t)kind << COOKIE_KIND_SHIFT) | 1;
	*ret_outbox = ob;
	return 0;
}

void outbox_free(struct outbox *ob)
{
	if (!ob)
		return;
	for (size_t i = 0; i < ob->n; i++)
		free(ob->e[i].buf);
	free(ob->e);
	free(ob);
}

/* Frees entry i and closes the gap, keeping the order. */
static void remove_at(struct outbox *ob, size_t i)
{
	free(ob->e[i].buf);
	memmove(&ob->e[i], &ob->e[i + 1], (ob->n - i - 1) * sizeof(ob->e[0]));
	ob->n--;
	ob->full_logged = 0;
}

int outbox_add(struct outbox *ob, const char *vin, const uint8_t *buf, size_t len,
	       int64_t drop_after_ms, int64_t now_ms)
{
	return outbox_add_timed(ob, vin, buf, len, drop_after_ms, now_ms, 0, NULL);
}

void outbox_set_latency(struct outbox *ob, struct latency *lat)
{
	ob->latency = lat;
}

void outbox_set_on_acked(struct outbox *ob, outbox_acked_fn fn, void *arg)
{
	ob->on_acked = fn;
	ob->on_acked_arg = arg;
}

int outbox_add_timed(struct outbox *ob, const char *vin, const uint8_t *buf, size_t len,
		     int64_t drop_after_ms, int64_t now_ms, uint64_t received_us, const char *id)
{
	struct outbox_entry *e;

	if (id && strlen(id) >= OUTBOX_ID_MAX)
		return -EINVAL;
	if (ob->n == ob->max) {
		count(ob, 0);
		if (!ob->full_logged)
			log_warn("outbox: %zu %s waiting, dropping new ones until there is room",
				 ob->n, kind_name(ob->kind));
		ob->full_logged = 1;
		return -ENOBUFS;
	}
	e = &ob->e[ob->n];
	memset(e, 0, sizeof(*e));
	e->buf = malloc(len ? len : 1);
	if (!e->buf) {
		count(ob, 0);
		return -ENOMEM;
	}
	memcpy(e->buf, buf, len);
	e->len = len;
	e->drop_after_ms = drop_after_ms;
	e->received_us = received_us;
	snprintf(e->id, sizeof(e->id), "%s", id ? id : "");
	snprintf(e->topic, sizeof(e->topic), "pitstop/v1/vehicles/%s/%s", vin,
		 kind_topic(ob->kind));
	ob->n++;
	outbox_flush(ob, now_ms);
	return 0;
}

void outbox_flush(struct outbox *ob, int64_t now_ms)
{
	size_t i = 0, expired = 0, failed = 0;
	int last_err = 0;

	while (i < ob->n) {
		struct outbox_entry *e = &ob->e[i];
		uint64_t cookie;
		int r;

		if (e->cookie) {
			i++;
			continue;
		}
		if (e->drop_after_ms <= now_ms) {
			count(ob, 0);
			expired++;
			remove_at(ob, i);
			continue;
		}
		cookie = ob->next_cookie++;
		r = ob->publish(ob->arg, e->topic, e->buf, e->len, cookie);
		if (r == -ENOTCONN || r == -EAGAIN)
			break; /* keep order; try again on the next flush */
		if (r < 0) {
			count(ob, 0);
			failed++;
			last_err = r;
			remove_at(ob, i);
			continue;
		}
		e->cookie = cookie;
		if (e->received_us && ob->latency) {
			uint64_t t = loop_now_us();

			latency_add(ob->latency, t > e->received_us ? t - e->received_us : 0);
		}
		e->received_us = 0;
		i++;
	}
	if (expired)
		log_warn("outbox: %zu %s were not published in time and are dropped", expired,
			 kind_name(ob->kind));
	if (failed)
		log_warn("outbox: publishing %zu %s failed: %s", failed, kind_name(ob->kind),
			 strerror(-last_err));
}

int outbox_result(struct outbox *ob, uint64_t cookie, int ok)
{
	for (size_t i = 0; i < ob->n; i++) {
		if (ob->e[i].cookie != cookie)
			continue;
		count(ob, ok);
		if (ok && ob->e[i].id[0] && ob->on_acked)
			ob->on_acked(ob->on_acked_arg, ob->e[i].id);
		remove_at(ob, i);
		return 1;
	}
	return 0;
}

void outbox_reconnected(struct outbox *ob, int64_t now_ms)
{
	for (size_t i = 0; i < ob->n; i++)
		ob->e[i].cookie = 0;
	outbox_flush(ob, now_ms);
}

size_t outbox_len(const struct outbox *ob)
{
	return ob->n;
}
