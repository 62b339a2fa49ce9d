/*
 * Unit tests of the outbox (gateway/ingest/outbox.c) with a fake publisher:
 * order, waiting while disconnected, resending what was in flight after a
 * reconnect, expiry, a full outbox, and sent/failed counting; a receipt
 * outbox publishes on .../acks, counts acks_sent only, and its cookies never
 * collide with an offer outbox's; the ids of acknowledged messages (and only
 * those) reach the on_acked callback.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "latency.h"
#include "loop.h"
#include "outbox.h"

static const char VIN1[] = "WDB1234561A000001";

struct pub {
	int result; /* returned by the fake */
	int calls;
	uint64_t cookies[16];
	uint8_t first[16]; /* first payload byte of each call */
	char topic[128];
};

static int fake(void *arg, const char *topic, const uint8_t *buf, size_t len, uint64_t cookie)
{
	struct pub *p = arg;

	if (p->result < 0)
		return p->result;
	assert_true(p->calls < 16);
	p->cookies[p->calls] = cookie;
	p->first[p->calls] = len ? buf[0] : 0;
	p->calls++;
	snprintf(p->topic, sizeof(p->topic), "%s", topic);
	return 0;
}

static void test_publish_and_ack(void **state)
{
	struct counters c;
	struct outbox *ob = NULL;
	struct pub p = { 0 };
	uint8_t a = 'a', b = 'b';

	memset(&c, 0, sizeof(c));
	assert_int_equal(outbox_new(OUTBOX_OFFERS, 0, fake, &p, &c, &ob), 0);
	assert_int_equal(outbox_add(ob, VIN1, &a, 1, 10000, 0), 0);
	assert_int_equal(outbox_add(ob, VIN1, &b, 1, 10000, 0), 0);
	assert_int_equal(p.calls, 2);
	assert_string_equal(p.topic, "pitstop/v1/vehicles/WDB1234561A000001/offers");
	assert_int_equal(p.first[0], 'a');
	assert_int_equal(p.first[1], 'b');
	assert_int_equal(outbox_len(ob), 2);
	assert_int_equal(outbox_result(ob, p.cookies[1], 1), 1);
	assert_int_equal(outbox_result(ob, p.cookies[0], 0), 1);
	assert_int_equal(outbox_result(ob, 12345, 1), 0);
	assert_int_equal(c.offers_sent, 1);
	assert_int_equal(c.offers_failed, 1);
	assert_int_equal(outbox_len(ob), 0);
	outbox_free(ob);
	outbox_free(NULL);
}

static void test_wait_resend_expire(void **state)
{
	struct counters c;
	struct outbox *ob = NULL;
	struct pub p = { .result = -ENOTCONN };
	uint8_t a = 'a', b = 'b';

	memset(&c, 0, sizeof(c));
	assert_int_equal(outbox_new(OUTBOX_OFFERS, 0, fake, &p, &c, &ob), 0);
	assert_int_equal(outbox_add(ob, VIN1, &a, 1, 5000, 0), 0);
	assert_int_equal(outbox_add(ob, VIN1, &b, 1, 20000, 0), 0);
	assert_int_equal(p.calls, 0);
	outbox_flush(ob, 1000);
	assert_int_equal(outbox_len(ob), 2);
	/* the first expires while the bus is away; the second goes out */
	p.result = 0;
	outbox_flush(ob, 6000);
	assert_int_equal(c.offers_failed, 1);
	assert_int_equal(p.calls, 1);
	assert_int_equal(p.first[0], 'b');
	/* lost in flight: sent again after the reconnect, with a new cookie */
	outbox_reconnected(ob, 7000);
	assert_int_equal(p.calls, 2);
	assert_int_not_equal(p.cookies[0], p.cookies[1]);
	assert_int_equal(outbox_result(ob, p.cookies[0], 1), 0); /* stale cookie */
	assert_int_equal(outbox_result(ob, p.cookies[1], 1), 1);
	assert_int_equal(c.offers_sent, 1);
	/* a hard error drops it */
	p.result = -EMSGSIZE;
	assert_int_equal(outbox_add(ob, VIN1, &a, 1, 20000, 7000), 0);
	assert_int_equal(outbox_len(ob), 0);
	assert_int_equal(c.offers_failed, 2);
	outbox_free(ob);
}

static void test_full(void **state)
{
	struct counters c;
	struct outbox *ob = NULL;
	struct pub p = { .result = -EAGAIN };
	uint8_t a = 'a';

	memset(&c, 0, sizeof(c));
	assert_int_equal(outbox_new(OUTBOX_OFFERS, 2, fake, &p, &c, &ob), 0);
	assert_int_equal(outbox_add(ob, VIN1, &a, 1, 5000, 0), 0);
	assert_int_equal(outbox_add(ob, VIN1, &a, 1, 5000, 0), 0);
	assert_int_equal(outbox_add(ob, VIN1, &a, 1, 5000, 0), -ENOBUFS);
	assert_int_equal(c.offers_failed, 1);
	outbox_free(ob); /* frees what it still holds */
}

static void test_receipt_kind(void **state)
{
	struct counters c;
	struct outbox *offers = NULL, *acks = NULL;
	struct pub p = { 0 };
	uint8_t a = 'a', b = 'b';

	memset(&c, 0, sizeof(c));
	assert_int_equal(outbox_new(OUTBOX_OFFERS, 0, fake, &p, &c, &offers), 0);
	assert_int_equal(outbox_new(OUTBOX_ACKS, 1, fake, &p, &c, &acks), 0);
	assert_int_equal(outbox_add(offers, VIN1, &a, 1, 5000, 0), 0);
	assert_int_equal(outbox_add(acks, VIN1, &b, 1, 5000, 0), 0);
	assert_int_equal(p.calls, 2);
	assert_string_equal(p.topic, "pitstop/v1/vehicles/WDB1234561A000001/acks");
	assert_int_not_equal(p.cookies[0], p.cookies[1]);
	assert_int_equal(outbox_result(acks, p.cookies[0], 1), 0);   /* the offer's */
	assert_int_equal(outbox_result(offers, p.cookies[1], 1), 0); /* the receipt's */
	assert_int_equal(outbox_result(acks, p.cookies[1], 1), 1);
	assert_int_equal(c.acks_sent, 1);
	assert_int_equal(c.offers_sent, 0);

	/* failures of receipts are not counted as offers: full, refused, expired */
	p.result = -ENOTCONN;
	assert_int_equal(outbox_add(acks, VIN1, &b, 1, 100, 0), 0);
	assert_int_equal(outbox_add(acks, VIN1, &b, 1, 100, 0), -ENOBUFS);
	outbox_flush(acks, 100); /* expired */
	assert_int_equal(outbox_len(acks), 0);
	p.result = 0;
	assert_int_equal(outbox_add(acks, VIN1, &b, 1, 5000, 0), 0);
	assert_int_equal(outbox_result(acks, p.cookies[2], 0), 1);
	assert_int_equal(c.offers_failed, 0);
	assert_int_equal(c.acks_sent, 1);
	outbox_free(acks);
	outbox_free(offers);
}

/*
 * A timed message counts once, when the bus first takes it: not while it
 * waits, not again when resent after a reconnect; untimed ones never.
 */
static void test_latency_once(void **state)
{
	static struct latency lat;
	struct counters c;
	struct outbox *ob = NULL;
	struct pub p = { .result = -EAGAIN };
	uint64_t t0 = loop_now_us();
	uint8_t a = 'a';

	memset(&c, 0, sizeof(c));
	assert_int_equal(outbox_new(OUTBOX_OFFERS, 0, fake, &p, &c, &ob), 0);
	outbox_set_latency(ob, &lat);
	assert_int_equal(outbox_add_timed(ob, VIN1, &a, 1, 5000, 0, t0, NULL), 0);
	assert_int_equal(outbox_add(ob, VIN1, &a, 1, 5000, 0), 0);
	assert_int_equal(lat.count, 0); /* waiting for a slot */
	p.result = 0;
	outbox_flush(ob, 0);
	assert_int_equal(p.calls, 2);
	assert_int_equal(lat.count, 1);
	assert_true(lat.max_us <= loop_now_us() - t0);
	outbox_reconnected(ob, 0);
	assert_int_equal(p.calls, 4);
	assert_int_equal(lat.count, 1);
	outbox_free(ob);
}

/* What on_acked was told. */
struct acked {
	int n;
	char ids[4][OUTBOX_ID_MAX];
};

static void on_acked(void *arg, const char *id)
{
	struct acked *a = arg;

	assert_true(a->n < 4);
	snprintf(a->ids[a->n++], sizeof(a->ids[0]), "%s", id);
}

/* Only a broker-acknowledged message with an id is told, once, with its id. */
static void test_acked_ids(void **state)
{
	char long_id[OUTBOX_ID_MAX + 1];
	struct counters c;
	struct outbox *ob = NULL;
	struct pub p = { 0 };
	struct acked got = { 0 };
	uint8_t a = 'a';

	(void)state;
	memset(&c, 0, sizeof(c));
	assert_int_equal(outbox_new(OUTBOX_OFFERS, 0, fake, &p, &c, &ob), 0);
	outbox_set_on_acked(ob, on_acked, &got);
	assert_int_equal(outbox_add_timed(ob, VIN1, &a, 1, 5000, 0, 0, "offer-1"), 0);
	assert_int_equal(outbox_add_timed(ob, VIN1, &a, 1, 5000, 0, 0, "offer-2"), 0);
	assert_int_equal(outbox_add(ob, VIN1, &a, 1, 5000, 0), 0); /* no id */
	memset(long_id, 'x', OUTBOX_ID_MAX);
	long_id[OUTBOX_ID_MAX] = '\0';
	assert_int_equal(outbox_add_timed(ob, VIN1, &a, 1, 5000, 0, 0, long_id), -EINVAL);
	assert_int_equal(p.calls, 3);
	assert_int_equal(outbox_result(ob, p.cookies[1], 0), 1); /* refused: not told */
	assert_int_equal(got.n, 0);
	assert_int_equal(outbox_result(ob, p.cookies[2], 1), 1); /* no id: not told */
	assert_int_equal(got.n, 0);
	assert_int_equal(outbox_result(ob, p.cookies[0], 1), 1);
	assert_int_equal(got.n, 1);
	assert_string_equal(got.ids[0], "offer-1");
	assert_int_equal(outbox_result(ob, p.cookies[0], 1), 0); /* once */
	assert_int_equal(got.n, 1);
	assert_int_equal(c.offers_sent, 2);
	assert_int_equal(c.offers_failed, 1);
	outbox_free(ob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish_and_ack),
		cmocka_unit_test(test_wait_resend_expire),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_receipt_kind),
		cmocka_unit_test(test_latency_once),
		cmocka_unit_test(test_acked_ids),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
