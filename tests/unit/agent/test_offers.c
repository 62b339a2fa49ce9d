/*
 * Unit tests of agent/offers.c with real codec, crypto, SQLite and the file
 * display, in a temporary directory. Two P-256 key pairs are generated with
 * mbedTLS per test: the configured offer-signing key and a stranger's. Each
 * test builds signed offers the way the gateway does (codec_encode_offer,
 * crypto_sign, codec_encode_signed_offer) and checks what is shown, what is
 * rejected and why, what is reported as events, and the driver-safety rules,
 * the bound on validity windows, the replay table that refuses new offers
 * rather than forget a live id, and the 0600 modes of offers.db, its WAL and
 * the screen file.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>

#include "codec.h"
#include "crypto.h"
#include "display.h"
#include "offers.h"
#include "testdir.h"

#define VIN "WDB1234561A123456"
#define OTHER_VIN "WDB6543211A654321"
#define NOW 1800000000000LL	/* a fixed wall clock */
#define HOUR 3600000LL
#define MAX_EVENTS 16

struct fixture {
	struct testdir dir;
	char db[300], screen[300], key[300], pub[300], other_key[300];
	struct crypto_signer *signer;		/* the gateway's key */
	struct crypto_signer *stranger;		/* someone else's key */
	struct crypto_verifier *verifier;
	struct display *display;
	struct offers *o;
	struct offer_event events[MAX_EVENTS]; /* every event but DELIVERED */
	int nevents;
	char delivered[MAX_EVENTS][CODEC_MAX_ID]; /* the DELIVERED events' offer ids */
	int ndelivered;
	int shown_before_delivered; /* a SHOWN came before its offer's DELIVERED */
};

/* Writes a fresh P-256 key pair as PEM files (pub_path may be NULL). */
static int make_key(const char *key_path, const char *pub_path)
{
	static const char pers[] = "pitstop-test-offers";
	unsigned char buf[2048];
	mbedtls_pk_context pk;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
	FILE *f;
	int r = -1;

	mbedtls_pk_init(&pk);
	mbedtls_entropy_init(&entropy);
	mbedtls_ctr_drbg_init(&drbg);
	if (mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy,
				  (const unsigned char *)pers, sizeof(pers) - 1) != 0 ||
	    mbedtls_pk_setup(&pk, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
	    mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk),
				mbedtls_ctr_drbg_random, &drbg) != 0)
		goto out;
	if (mbedtls_pk_write_key_pem(&pk, buf, sizeof(buf)) != 0 || !(f = fopen(key_path, "w")))
		goto out;
	fputs((char *)buf, f);
	fclose(f);
	if (pub_path) {
		if (mbedtls_pk_write_pubkey_pem(&pk, buf, sizeof(buf)) != 0 ||
		    !(f = fopen(pub_path, "w")))
			goto out;
		fputs((char *)buf, f);
		fclose(f);
	}
	r = 0;
out:
	mbedtls_pk_free(&pk);
	mbedtls_ctr_drbg_free(&drbg);
	mbedtls_entropy_free(&entropy);
	return r;
}

static void on_event(const struct offer_event *ev, void *arg)
{
	struct fixture *f = arg;

	if (ev->action == OFFER_ACTION_DELIVERED) {
		for (int i = 0; i < f->nevents; i++)
			if (f->events[i].action == OFFER_ACTION_SHOWN &&
			    strcmp(f->events[i].offer_id, ev->offer_id) == 0)
				f->shown_before_delivered = 1;
		if (f->ndelivered < MAX_EVENTS)
			snprintf(f->delivered[f->ndelivered++], CODEC_MAX_ID, "%s", ev->offer_id);
		return;
	}
	if (f->nevents < MAX_EVENTS)
		f->events[f->nevents++] = *ev;
}

static void open_offers(struct fixture *f, int64_t now)
{
	struct offers_config oc = { f->db, VIN, f->verifier, 5.0, 0 };

	assert_int_equal(offers_new(&oc, f->display, on_event, f, now, &f->o), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || testdir_make(&f->dir) < 0) {
		free(f);
		return -1;
	}
	*state = f;
	testdir_file(&f->dir, "offers.db", f->db, sizeof(f->db));
	testdir_file(&f->dir, "screen.txt", f->screen, sizeof(f->screen));
	testdir_file(&f->dir, "offer-signing.key", f->key, sizeof(f->key));
	testdir_file(&f->dir, "offer-signing.pub", f->pub, sizeof(f->pub));
	testdir_file(&f->dir, "stranger.key", f->other_key, sizeof(f->other_key));
	if (make_key(f->key, f->pub) < 0 || make_key(f->other_key, NULL) < 0 ||
	    crypto_signer_load(f->key, &f->signer) < 0 ||
	    crypto_signer_load(f->other_key, &f->stranger) < 0 ||
	    crypto_verifier_load(f->pub, &f->verifier) < 0 ||
	    display_file_new(f->screen, &f->display) < 0)
		return -1;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	offers_free(f->o);
	display_free(f->display);
	crypto_verifier_free(f->verifier);
	crypto_signer_free(f->signer);
	crypto_signer_free(f->stranger);
	testdir_remove(&f->dir);
	free(f);
	return 0;
}

static struct offer make_offer(const char *id)
{
	struct offer o;

	memset(&o, 0, sizeof(o));
	snprintf(o.id, sizeof(o.id), "%s", id);
	o.kind = OFFER_REFUEL;
	snprintf(o.title, sizeof(o.title), "Fuel up: 5%% off");
	snprintf(o.body, sizeof(o.body), "At the station 2 km ahead.\nToday only.");
	snprintf(o.promo_code, sizeof(o.promo_code), "FUEL5");
	o.valid_from_ms = NOW - HOUR;
	o.valid_until_ms = NOW + HOUR;
	snprintf(o.vin, sizeof(o.vin), "%s", VIN);
	return o;
}

/* How to spoil a signed offer. */
enum spoil { NONE, TAMPER, FOREIGN_SIG, FOREIGN_KEY_ID };

static uint8_t *sign_offer(struct fixture *f, const struct offer *o, enum spoil spoil,
			   size_t *ret_len)
{
	struct crypto_signer *s = spoil == FOREIGN_SIG || spoil == FOREIGN_KEY_ID ? f->stranger
										 : f->signer;
	const char *key_id = spoil == FOREIGN_KEY_ID ? crypto_signer_key_id(f->stranger)
						     : crypto_signer_key_id(f->signer);
	uint8_t sig[CRYPTO_SIG_MAX];
	uint8_t *bytes = NULL, *out = NULL;
	size_t len = 0, sig_len = 0;

	assert_int_equal(codec_encode_offer(o, &bytes, &len), 0);
	assert_int_equal(crypto_sign(s, bytes, len, sig, &sig_len), 0);
	if (spoil == TAMPER) {
		/* Change one character of the title after signing. */
		uint8_t *p = memmem(bytes, len, "Fuel up", 7);

		assert_non_null(p);
		p[0] = 'D';
	}
	assert_int_equal(codec_encode_signed_offer(bytes, len, sig, sig_len, key_id, &out,
						   ret_len), 0);
	free(bytes);
	return out;
}

/* Signs o and hands it to the offers module; returns what offers_handle said. */
static int deliver(struct fixture *f, const struct offer *o, enum spoil spoil, int64_t now,
		   double speed)
{
	size_t len = 0;
	uint8_t *buf = sign_offer(f, o, spoil, &len);
	int r = offers_handle(f->o, buf, len, now, speed);

	free(buf);
	return r;
}

static int screen_exists(struct fixture *f)
{
	struct stat st;

	return stat(f->screen, &st) == 0;
}

static void expect_event(struct fixture *f, int i, const char *id, enum offer_action action,
			 const char *reason)
{
	assert_true(i < f->nevents);
	assert_string_equal(f->events[i].offer_id, id);
	assert_int_equal(f->events[i].action, action);
	assert_string_equal(f->events[i].reason, reason);
}

static void test_valid_offer_shown(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("offer-1");
	char text[4096] = "", id[CODEC_MAX_ID];
	FILE *fp;
	size_t n;

	open_offers(f, NOW);
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_SHOWN);
	assert_int_equal(offers_current(f->o, id, sizeof(id)), OFFERS_STATE_SHOWN);
	assert_string_equal(id, "offer-1");
	fp = fopen(f->screen, "r");
	assert_non_null(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	fclose(fp);
	text[n] = '\0';
	assert_string_equal(text, "offer_id: offer-1\n"
				  "kind: refuel\n"
				  "title: Fuel up: 5% off\n"
				  "body: At the station 2 km ahead. Today only.\n"
				  "promo_code: FUEL5\n"
				  "valid_until: 2027-01-15T09:00:00Z\n"
				  "shown_at_ms: 1800000000000\n");
	assert_int_equal(f->nevents, 1);
	expect_event(f, 0, "offer-1", OFFER_ACTION_SHOWN, "");
	assert_int_equal(f->events[0].time_ms, NOW);
}

static void test_rejections(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *id;
		enum spoil spoil;
		const char *vin;
		int64_t from, until;
		const char *event_id;
		const char *reason;
	} cases[] = {
		{ "bad-sig", FOREIGN_SIG, VIN, NOW - HOUR, NOW + HOUR, "?", "bad signature" },
		{ "tampered", TAMPER, VIN, NOW - HOUR, NOW + HOUR, "?", "bad signature" },
		{ "unknown-key", FOREIGN_KEY_ID, VIN, NOW - HOUR, NOW + HOUR, "?", "unknown key" },
		{ "wrong-vin", NONE, OTHER_VIN, NOW - HOUR, NOW + HOUR, "wrong-vin", "wrong vehicle" },
		{ "expired", NONE, VIN, NOW - 2 * HOUR, NOW - 1, "expired", "expired" },
		{ "early", NONE, VIN, NOW + 1, NOW + HOUR, "early", "not yet valid" },
	};

	open_offers(f, NOW);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct offer o = make_offer(cases[i].id);

		snprintf(o.vin, sizeof(o.vin), "%s", cases[i].vin);
		o.valid_from_ms = cases[i].from;
		o.valid_until_ms = cases[i].until;
		assert_int_equal(deliver(f, &o, cases[i].spoil, NOW, 0), OFFERS_REJECTED);
		assert_int_equal(f->nevents, (int)i + 1);
		expect_event(f, (int)i, cases[i].event_id, OFFER_ACTION_REJECTED, cases[i].reason);
		assert_false(screen_exists(f));
		assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_NONE);
	}
	/* The edges of the validity window are inside it. */
	struct offer edge = make_offer("edge");
	edge.valid_from_ms = NOW;
	edge.valid_until_ms = NOW;
	assert_int_equal(deliver(f, &edge, NONE, NOW, 0), OFFERS_SHOWN);
}

static void test_malformed(void **state)
{
	struct fixture *f = *state;
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0x01, 0x02 };
	uint8_t sig[CRYPTO_SIG_MAX], *buf = NULL;
	size_t len = 0, sig_len = 0;
	static const uint8_t not_an_offer[] = { 0x0a, 0x05, 'a', 'b' };	/* truncated */

	open_offers(f, NOW);
	assert_int_equal(offers_handle(f->o, junk, sizeof(junk), NOW, 0), OFFERS_REJECTED);
	expect_event(f, 0, "?", OFFER_ACTION_REJECTED, "malformed");
	assert_int_equal(offers_handle(f->o, NULL, 0, NOW, 0), OFFERS_REJECTED);
	/* Correctly signed bytes that are not an Offer. */
	assert_int_equal(crypto_sign(f->signer, not_an_offer, sizeof(not_an_offer), sig,
				     &sig_len), 0);
	assert_int_equal(codec_encode_signed_offer(not_an_offer, sizeof(not_an_offer), sig,
						   sig_len, crypto_signer_key_id(f->signer), &buf,
						   &len), 0);
	assert_int_equal(offers_handle(f->o, buf, len, NOW, 0), OFFERS_REJECTED);
	expect_event(f, 2, "?", OFFER_ACTION_REJECTED, "malformed");
	free(buf);
}

static void test_no_key_configured(void **state)
{
	struct fixture *f = *state;
	struct offers_config oc = { f->db, VIN, NULL, 5.0, 0 };
	struct offer o = make_offer("no-key");

	assert_int_equal(offers_new(&oc, f->display, on_event, f, NOW, &f->o), 0);
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_REJECTED);
	expect_event(f, 0, "?", OFFER_ACTION_REJECTED, "unknown key");
}

static void test_redelivery_ignored(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("again");

	open_offers(f, NOW);
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_SHOWN);
	assert_int_equal(deliver(f, &o, NONE, NOW + 1000, 0), OFFERS_DUPLICATE);
	assert_int_equal(f->nevents, 1);
	/* Delivered once, before it was shown; a redelivery is not reported again. */
	assert_int_equal(f->ndelivered, 1);
	assert_string_equal(f->delivered[0], "again");
	assert_int_equal(f->shown_before_delivered, 0);
	/* Remembered across a restart. */
	offers_free(f->o);
	f->o = NULL;
	open_offers(f, NOW + 2000);
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_STATE_SHOWN);
	assert_int_equal(deliver(f, &o, NONE, NOW + 3000, 0), OFFERS_DUPLICATE);
	assert_int_equal(f->nevents, 1);
	/* A rejected offer is not remembered: its id stays usable by a valid one. */
	struct offer bad = make_offer("reused-id");
	assert_int_equal(deliver(f, &bad, FOREIGN_SIG, NOW, 0), OFFERS_REJECTED);
	assert_int_equal(f->ndelivered, 1); /* a rejected offer is not delivered */
	assert_int_equal(deliver(f, &bad, NONE, NOW, 0), OFFERS_SHOWN);
	assert_int_equal(f->ndelivered, 2);
	assert_string_equal(f->delivered[1], "reused-id");
}

static void test_waits_while_driving(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("drive");

	open_offers(f, NOW);
	assert_int_equal(deliver(f, &o, NONE, NOW, 50), OFFERS_WAITING);
	assert_false(screen_exists(f));
	assert_int_equal(f->nevents, 0);
	offers_tick(f->o, NOW + 1000, 5.1);
	offers_tick(f->o, NOW + 2000, NAN);	/* unknown speed counts as driving */
	assert_false(screen_exists(f));
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_STATE_WAITING);
	/* The wait survives a restart. */
	offers_free(f->o);
	f->o = NULL;
	open_offers(f, NOW + 3000);
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_STATE_WAITING);
	assert_false(screen_exists(f));
	offers_tick(f->o, NOW + 4000, 5.0);	/* at the limit: shown */
	assert_true(screen_exists(f));
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_STATE_SHOWN);
	assert_int_equal(f->nevents, 1);
	expect_event(f, 0, "drive", OFFER_ACTION_SHOWN, "");
	assert_int_equal(f->events[0].time_ms, NOW + 4000);
}

static void test_expired_while_waiting(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("late");

	o.valid_until_ms = NOW + 10000;
	open_offers(f, NOW);
	assert_int_equal(deliver(f, &o, NONE, NOW, 80), OFFERS_WAITING);
	offers_tick(f->o, NOW + 10001, 80);
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_NONE);
	offers_tick(f->o, NOW + 10002, 0);
	assert_false(screen_exists(f));
	assert_int_equal(f->nevents, 0);
}

static void test_shown_offer_expires(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("short");

	o.valid_until_ms = NOW + 10000;
	open_offers(f, NOW);
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_SHOWN);
	assert_true(screen_exists(f));
	offers_tick(f->o, NOW + 10000, 0);
	assert_true(screen_exists(f));
	offers_tick(f->o, NOW + 10001, 0);
	assert_false(screen_exists(f));
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_NONE);
	/* And after a restart past the expiry, nothing comes back. */
	offers_free(f->o);
	f->o = NULL;
	open_offers(f, NOW + 20000);
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_NONE);
	assert_false(screen_exists(f));
}

static void test_newer_replaces(void **state)
{
	struct fixture *f = *state;
	struct offer a = make_offer("first"), b = make_offer("second"), c = make_offer("third");
	char id[CODEC_MAX_ID];

	open_offers(f, NOW);
	assert_int_equal(deliver(f, &a, NONE, NOW, 0), OFFERS_SHOWN);
	assert_int_equal(deliver(f, &b, NONE, NOW + 1, 0), OFFERS_SHOWN);
	assert_int_equal(offers_current(f->o, id, sizeof(id)), OFFERS_STATE_SHOWN);
	assert_string_equal(id, "second");
	/* While driving, a newer one takes the card off the screen and waits. */
	assert_int_equal(deliver(f, &c, NONE, NOW + 2, 60), OFFERS_WAITING);
	assert_false(screen_exists(f));
	assert_int_equal(offers_current(f->o, id, sizeof(id)), OFFERS_STATE_WAITING);
	assert_string_equal(id, "third");
	offers_tick(f->o, NOW + 3, 0);
	assert_int_equal(f->nevents, 3);
	expect_event(f, 2, "third", OFFER_ACTION_SHOWN, "");
}

#define DAY (24 * HOUR)

static void test_validity_window_bounded(void **state)
{
	struct fixture *f = *state;
	struct offers_config oc = { f->db, VIN, f->verifier, 5.0, HOUR };
	struct offer o = make_offer("thirty-days");

	open_offers(f, NOW);
	/* The default bound, 30 days, is inside. */
	o.valid_from_ms = NOW - HOUR;
	o.valid_until_ms = o.valid_from_ms + 30 * DAY;
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_SHOWN);
	o = make_offer("a-second-more");
	o.valid_from_ms = NOW - HOUR;
	o.valid_until_ms = o.valid_from_ms + 30 * DAY + 1000;
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_REJECTED);
	expect_event(f, 1, "a-second-more", OFFER_ACTION_REJECTED,
		     "validity window too long (2592001 s, at most 2592000 s)");
	/* What was shown in the attack: 292 million years. */
	o = make_offer("forever");
	o.valid_from_ms = 0;
	o.valid_until_ms = INT64_MAX;
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_REJECTED);
	expect_event(f, 2, "forever", OFFER_ACTION_REJECTED,
		     "validity window too long (9223372036854775 s, at most 2592000 s)");
	o.valid_from_ms = INT64_MIN;
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_REJECTED);
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_STATE_SHOWN);
	/* A configured bound. */
	offers_free(f->o);
	f->o = NULL;
	assert_int_equal(offers_new(&oc, f->display, on_event, f, NOW, &f->o), 0);
	o = make_offer("two-hours");
	o.valid_from_ms = NOW - HOUR;
	o.valid_until_ms = NOW + HOUR;
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_REJECTED);
	expect_event(f, 4, "two-hours", OFFER_ACTION_REJECTED,
		     "validity window too long (7200 s, at most 3600 s)");
	o = make_offer("one-hour");
	o.valid_from_ms = NOW - HOUR / 2;
	o.valid_until_ms = NOW + HOUR / 2;
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_SHOWN);
}

/* Puts n ids valid until valid_until straight into offers.db's replay table. */
static void fill_seen(struct fixture *f, int n, int64_t valid_until)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "INSERT INTO seen(id, valid_until_ms) VALUES (?1, ?2)",
					    -1, &st, NULL),
			 SQLITE_OK);
	for (int i = 0; i < n; i++) {
		char id[32];

		snprintf(id, sizeof(id), "filler-%d", i);
		sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, valid_until);
		assert_int_equal(sqlite3_step(st), SQLITE_DONE);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(h, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static void test_replay_table_full_refuses(void **state)
{
	struct fixture *f = *state;
	struct offer live = make_offer("live");
	struct offer more = make_offer("one-too-many");
	struct offer later = make_offer("after-expiry");
	char id[CODEC_MAX_ID];

	open_offers(f, NOW);
	fill_seen(f, OFFERS_MAX_SEEN - 1, NOW + HOUR);
	live.valid_until_ms = NOW + 2 * HOUR;
	more.valid_until_ms = NOW + 2 * HOUR;
	assert_int_equal(deliver(f, &live, NONE, NOW, 0), OFFERS_SHOWN);
	/* Full of live ids: the new offer is refused, nothing is evicted. */
	assert_int_equal(deliver(f, &more, NONE, NOW + 1000, 0), OFFERS_REJECTED);
	expect_event(f, 1, "one-too-many", OFFER_ACTION_REJECTED,
		     "replay table full (10000 offers still valid)");
	assert_int_equal(offers_current(f->o, id, sizeof(id)), OFFERS_STATE_SHOWN);
	assert_string_equal(id, "live");
	assert_int_equal(deliver(f, &live, NONE, NOW + 2000, 0), OFFERS_DUPLICATE);
	/* Once the fillers have expired there is room again. */
	later.valid_until_ms = NOW + 2 * HOUR;
	assert_int_equal(deliver(f, &later, NONE, NOW + HOUR + 1, 0), OFFERS_SHOWN);
	assert_int_equal(deliver(f, &live, NONE, NOW + HOUR + 2, 0), OFFERS_DUPLICATE);
	assert_int_equal(deliver(f, &more, NONE, NOW + HOUR + 3, 0), OFFERS_SHOWN);
	assert_int_equal(f->nevents, 4);
}

/* The permission bits of path (-1 if it does not exist). */
static int file_mode(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (int)(st.st_mode & 07777) : -1;
}

static void test_files_private_whatever_umask(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("private");
	mode_t old = umask(0);
	char side[320];

	open_offers(f, NOW);
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_SHOWN);
	assert_int_equal(file_mode(f->db), 0600);
	snprintf(side, sizeof(side), "%s-wal", f->db);
	assert_int_equal(file_mode(side), 0600);
	snprintf(side, sizeof(side), "%s-shm", f->db);
	assert_int_equal(file_mode(side), 0600);
	assert_int_equal(file_mode(f->screen), 0600);
	/* A screen file and a database an older agent left 0644 are tightened. */
	offers_free(f->o);
	f->o = NULL;
	assert_int_equal(chmod(f->db, 0644), 0);
	assert_int_equal(chmod(f->screen, 0644), 0);
	open_offers(f, NOW + 1000); /* writes the shown card again */
	assert_int_equal(file_mode(f->db), 0600);
	assert_int_equal(file_mode(f->screen), 0600);
	umask(old);
}

/* An area-bound offer is shown only while the car is inside its circle. */
static void test_area_gates_the_card(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("area");

	o.has_area = 1;
	o.area_lat_e7 = 481372000; /* Munich, Marienplatz */
	o.area_lon_e7 = 115755000;
	o.area_radius_m = 1000;
	open_offers(f, NOW);
	/* No position yet: counts as outside. */
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_WAITING);
	assert_false(screen_exists(f));
	/* 2 km north: outside. */
	offers_set_position(f->o, 1, 48.1552, 11.5755);
	offers_tick(f->o, NOW + 1000, 0);
	assert_false(screen_exists(f));
	/* 500 m north: inside. */
	offers_set_position(f->o, 1, 48.1417, 11.5755);
	offers_tick(f->o, NOW + 2000, 0);
	assert_true(screen_exists(f));
	assert_int_equal(f->nevents, 1);
	expect_event(f, 0, "area", OFFER_ACTION_SHOWN, "");
	/* Leaving the area takes it off; coming back shows it, no second SHOWN. */
	offers_set_position(f->o, 1, 48.1552, 11.5755);
	offers_tick(f->o, NOW + 3000, 0);
	assert_false(screen_exists(f));
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_STATE_WAITING);
	offers_set_position(f->o, 0, 0, 0); /* fix lost: outside */
	offers_tick(f->o, NOW + 3500, 0);
	assert_false(screen_exists(f));
	offers_set_position(f->o, 1, 48.1372, 11.5755);
	offers_tick(f->o, NOW + 4000, 0);
	assert_true(screen_exists(f));
	assert_int_equal(f->nevents, 1);
}

static void test_area_distance(void **state)
{
	struct offer o = make_offer("d");

	(void)state;
	assert_int_equal(offers_in_area(&o, 0, NAN, NAN), 1); /* no area: anywhere */
	o.has_area = 1;
	o.area_lat_e7 = 0;
	o.area_lon_e7 = 1799999999; /* on the date line */
	o.area_radius_m = 20000;
	/* 0.1 degree of longitude at the equator is 11.1 km, across +-180. */
	assert_int_equal(offers_in_area(&o, 1, 0, -179.9), 1);
	assert_int_equal(offers_in_area(&o, 1, 0, -179.7), 0);
	assert_int_equal(offers_in_area(&o, 1, 0.18, 180.0), 0); /* 20.0 km north */
	assert_int_equal(offers_in_area(&o, 1, 0.179, 180.0), 1);
	assert_int_equal(offers_in_area(&o, 0, 0, 180.0), 0); /* position unknown */
	assert_int_equal(offers_in_area(&o, 1, NAN, 180.0), 0);
	o.area_radius_m = 1;
	assert_int_equal(offers_in_area(&o, 1, 0, 179.9999999), 1);	 /* the centre itself */
	assert_int_equal(offers_in_area(&o, 1, 0.0001, 179.9999999), 0); /* 11 m off */
}

/* A shown card goes away while the car moves and comes back when it stops. */
static void test_moving_hides_the_card(void **state)
{
	struct fixture *f = *state;
	struct offer o = make_offer("stop-go");

	open_offers(f, NOW);
	assert_int_equal(deliver(f, &o, NONE, NOW, 0), OFFERS_SHOWN);
	offers_tick(f->o, NOW + 1000, 30);
	assert_false(screen_exists(f));
	offers_tick(f->o, NOW + 2000, NAN);
	assert_false(screen_exists(f));
	offers_tick(f->o, NOW + 3000, 2);
	assert_true(screen_exists(f));
	assert_int_equal(f->nevents, 1); /* SHOWN once */
}

/* ACCEPT/DISMISS: only the card on screen; recorded, reported, removed. */
static void test_driver_decides(void **state)
{
	struct fixture *f = *state;
	struct offer a = make_offer("yes"), b = make_offer("no");
	sqlite3 *db;
	sqlite3_stmt *st;

	open_offers(f, NOW);
	assert_int_equal(deliver(f, &a, NONE, NOW, 50), OFFERS_WAITING);
	/* Not on screen (waiting): refused. */
	assert_int_equal(offers_decide(f->o, "yes", OFFER_ACTION_ACCEPTED, NOW + 1), -ENOENT);
	offers_tick(f->o, NOW + 2, 0);
	assert_int_equal(offers_decide(f->o, "other", OFFER_ACTION_ACCEPTED, NOW + 3), -ENOENT);
	assert_int_equal(offers_decide(f->o, "yes", OFFER_ACTION_SHOWN, NOW + 3), -EINVAL);
	assert_int_equal(offers_decide(f->o, "yes", OFFER_ACTION_ACCEPTED, NOW + 4), 0);
	assert_false(screen_exists(f));
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_NONE);
	assert_int_equal(f->nevents, 2);
	expect_event(f, 1, "yes", OFFER_ACTION_ACCEPTED, "");
	assert_int_equal(f->events[1].time_ms, NOW + 4);
	/* Decided once: a second ACCEPT finds nothing on screen. */
	assert_int_equal(offers_decide(f->o, "yes", OFFER_ACTION_ACCEPTED, NOW + 5), -ENOENT);
	assert_int_equal(deliver(f, &b, NONE, NOW + 6, 0), OFFERS_SHOWN);
	assert_int_equal(offers_decide(f->o, "no", OFFER_ACTION_DISMISSED, NOW + 7), 0);
	expect_event(f, 3, "no", OFFER_ACTION_DISMISSED, "");
	/* Nothing comes back after a restart, and offers.db holds both choices. */
	offers_free(f->o);
	f->o = NULL;
	open_offers(f, NOW + 8);
	assert_int_equal(offers_current(f->o, NULL, 0), OFFERS_NONE);
	assert_false(screen_exists(f));
	/* The start-up reports them again (events held offline die with a run). */
	assert_int_equal(offers_resend_decisions(f->o, NOW + 8, 16), 2);
	expect_event(f, 4, "no", OFFER_ACTION_DISMISSED, "");
	assert_int_equal(f->events[4].time_ms, NOW + 7);
	expect_event(f, 5, "yes", OFFER_ACTION_ACCEPTED, "");
	assert_int_equal(f->events[5].time_ms, NOW + 4);
	assert_int_equal(offers_resend_decisions(f->o, NOW + 8, 1), 1);
	assert_int_equal(offers_resend_decisions(f->o, NOW + HOUR + 1, 16), 0); /* expired */
	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT id, action FROM decided ORDER BY time_ms",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "yes");
	assert_int_equal(sqlite3_column_int(st, 1), OFFER_ACTION_ACCEPTED);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "no");
	assert_int_equal(sqlite3_column_int(st, 1), OFFER_ACTION_DISMISSED);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_valid_offer_shown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_key_configured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redelivery_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waits_while_driving, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expired_while_waiting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shown_offer_expires, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_replaces, setup, teardown),
		cmocka_unit_test_setup_teardown(test_area_gates_the_card, setup, teardown),
		cmocka_unit_test(test_area_distance),
		cmocka_unit_test_setup_teardown(test_moving_hides_the_card, setup, teardown),
		cmocka_unit_test_setup_teardown(test_driver_decides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_validity_window_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_table_full_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_files_private_whatever_umask, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
