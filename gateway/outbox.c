/*
 * The offer outbox; see outbox.h. A handful of offers at a time, so a plain
 * array scanned linearly is enough; order of publishing is order of adding.
 */
#include "outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define OUTBOX_DEFAULT_MAX 1024

struct outbox_entry {
	char topic[64];			/* pitstop/v1/vehicles/<VIN>/offers */
	uint8_t *buf;			/* owned */
	size_t len;
	int64_t valid_until_ms;
	uint64_t cookie;		/* 0 = queued, else in flight */
};

struct outbox {
	struct outbox_entry *e;		/* owned, max entries */
	size_t n, max;
	uint64_t next_cookie;
	outbox_publish_fn publish;
	void *arg;
	struct store_counters *c;	/* borrowed */
};

int outbox_new(size_t max, outbox_publish_fn publish, void *arg,
	       struct store_counters *counters, struct outbox **ret_outbox)
{
	struct outbox *ob = calloc(1, sizeof(*ob));

	if (!ob)
		return -ENOMEM;
	ob->max = max ? max : OUTBOX_DEFAULT_MAX;
	ob->e = calloc(ob->max, sizeof(*ob->e));
	if (!ob->e) {
		free(ob);
		return -ENOMEM;
	}
	ob->publish = publish;
	ob->arg = arg;
	ob->c = counters;
	ob->next_cookie = 1;
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
}

int outbox_add(struct outbox *ob, const char *vin, const uint8_t *buf, size_t len,
	       int64_t valid_until_ms, int64_t now_ms)
{
	struct outbox_entry *e;

	if (ob->n == ob->max) {
		ob->c->offers_failed++;
		log_warn("outbox: %zu offers waiting, dropping a new one", ob->n);
		return -ENOBUFS;
	}
	e = &ob->e[ob->n];
	memset(e, 0, sizeof(*e));
	e->buf = malloc(len ? len : 1);
	if (!e->buf) {
		ob->c->offers_failed++;
		return -ENOMEM;
	}
	memcpy(e->buf, buf, len);
	e->len = len;
	e->valid_until_ms = valid_until_ms;
	snprintf(e->topic, sizeof(e->topic), "pitstop/v1/vehicles/%s/offers", vin);
	ob->n++;
	outbox_flush(ob, now_ms);
	return 0;
}

void outbox_flush(struct outbox *ob, int64_t now_ms)
{
	size_t i = 0;

	while (i < ob->n) {
		struct outbox_entry *e = &ob->e[i];
		uint64_t cookie;
		int r;

		if (e->cookie) {
			i++;
			continue;
		}
		if (e->valid_until_ms <= now_ms) {
			ob->c->offers_failed++;
			log_warn("outbox: an offer expired before it could be published");
			remove_at(ob, i);
			continue;
		}
		cookie = ob->next_cookie++;
		r = ob->publish(ob->arg, e->topic, e->buf, e->len, cookie);
		if (r == -ENOTCONN || r == -EAGAIN)
			break;	/* keep order; try again on the next flush */
		if (r < 0) {
			ob->c->offers_failed++;
			log_warn("outbox: publishing an offer failed: %s", strerror(-r));
			remove_at(ob, i);
			continue;
		}
		e->cookie = cookie;
		i++;
	}
}

int outbox_result(struct outbox *ob, uint64_t cookie, int ok)
{
	for (size_t i = 0; i < ob->n; i++) {
		if (ob->e[i].cookie != cookie)
			continue;
		if (ok)
			ob->c->offers_sent++;
		else
			ob->c->offers_failed++;
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
