/*
 * Offer verification, redelivery suppression and driver-safety gating; see
 * offers.h for the rules. State lives in offers.db (its own small database,
 * separate from the telemetry queue so neither can lock or corrupt the
 * other):
 *   seen(id, valid_until_ms)                  accepted ids, pruned on expiry
 *        and never before (at most OFFERS_MAX_SEEN; when full, new offers
 *        are refused)
 *   current(slot = 1, state, offer, shown_at_ms)  the one current offer,
 *        as its verified Offer bytes; state 1 waiting, 2 shown;
 *        shown_at_ms is its first showing (0: never shown yet)
 *   decided(id, action, time_ms, valid_until_ms)  the driver's choices
 *        (action 2 accepted, 3 dismissed), pruned with seen
 * Offers arrive rarely, so statements are prepared per call.
 */
#include "offers.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "display.h"
#include "fileperm.h"
#include "geo.h"
#include "log.h"
#include "sqlerr.h"

struct offers {
	sqlite3 *db;			  /* owned */
	struct display *display;	  /* borrowed */
	struct crypto_verifier *verifier; /* borrowed, may be NULL */
	char vin[18];
	double max_speed_kmh;
	int64_t max_validity_ms; /* longest valid_until - valid_from accepted */
	offers_event_fn fn;
	void *arg;
	enum offers_state state; /* of cur */
	struct offer cur;	 /* valid when state != OFFERS_NONE */
	uint8_t *cur_bytes;	 /* owned: cur as the signed Offer bytes */
	size_t cur_len;
	int64_t shown_at_ms; /* when cur was first put on screen, 0 = not yet */
	int pos_known;	     /* the car's position below is fresh */
	double lat_deg, lon_deg;
};

static const char offers_schema[] =
	"PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
	"CREATE TABLE IF NOT EXISTS seen("
	" id TEXT PRIMARY KEY, valid_until_ms INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS current("
	" slot INTEGER PRIMARY KEY CHECK (slot = 1), state INTEGER NOT NULL,"
	" offer BLOB NOT NULL, shown_at_ms INTEGER NOT NULL);"
	"CREATE TABLE IF NOT EXISTS decided("
	" id TEXT PRIMARY KEY, action INTEGER NOT NULL, time_ms INTEGER NOT NULL,"
	" valid_until_ms INTEGER NOT NULL) WITHOUT ROWID;"
	"PRAGMA user_version = 2;";

/* Translates and logs a SQLite failure of op; returns a negative errno. */
static int offers_fail(struct offers *o, const char *op, int rc)
{
	log_error("offers: %s failed: %s (%d)", op,
		  o->db ? sqlite3_errmsg(o->db) : sqlite3_errstr(rc), rc);
	return sqlerr_errno(rc);
}

/* Runs a multi-statement SQL text without parameters. */
static int exec(struct offers *o, const char *sql, const char *op)
{
	int rc = sqlite3_exec(o->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : offers_fail(o, op, rc);
}

/* Reports an event to the owner (the uplink publishes it). */
static void emit(struct offers *o, const char *id, enum offer_action action, const char *reason,
		 int64_t now_ms)
{
	struct offer_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.time_ms = now_ms;
	snprintf(ev.offer_id, sizeof(ev.offer_id), "%s", id);
	ev.action = action;
	snprintf(ev.reason, sizeof(ev.reason), "%s", reason ? reason : "");
	if (o->fn)
		o->fn(&ev, o->arg);
}

/* Logs and reports a rejection; returns OFFERS_REJECTED. */
static int reject(struct offers *o, const char *id, const char *reason, int64_t now_ms)
{
	log_warn("offer %s rejected: %s", id, reason);
	emit(o, id, OFFER_ACTION_REJECTED, reason, now_ms);
	return OFFERS_REJECTED;
}

/* Returns 1 if speed allows putting a card on screen. Unknown = moving. */
static int slow_enough(const struct offers *o, double speed_kmh)
{
	return isfinite(speed_kmh) && speed_kmh <= o->max_speed_kmh;
}

int offers_in_area(const struct offer *off, int known, double lat_deg, double lon_deg)
{
	if (!off->has_area)
		return 1;
	if (!known || !isfinite(lat_deg) || !isfinite(lon_deg))
		return 0;
	return geo_distance_m(geo_deg_of_e7(off->area_lat_e7), geo_deg_of_e7(off->area_lon_e7),
			      lat_deg, lon_deg) <= (double)off->area_radius_m;
}

/* Returns 1 if off may be on screen now (speed and area). */
static int may_show(const struct offers *o, const struct offer *off, double speed_kmh)
{
	return slow_enough(o, speed_kmh) &&
	       offers_in_area(off, o->pos_known, o->lat_deg, o->lon_deg);
}

void offers_set_position(struct offers *o, int known, double lat_deg, double lon_deg)
{
	o->pos_known = known;
	o->lat_deg = lat_deg;
	o->lon_deg = lon_deg;
}

/* Stores the current slot (or deletes it for OFFERS_NONE). */
static int store_current(struct offers *o)
{
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	if (o->state == OFFERS_NONE)
		return exec(o, "DELETE FROM current", "forget current offer");
	rc = sqlite3_prepare_v2(o->db,
				"INSERT OR REPLACE INTO current(slot, state, offer, shown_at_ms)"
				" VALUES (1, ?1, ?2, ?3)",
				-1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int(s, 1, o->state == OFFERS_STATE_SHOWN ? 2 : 1);
		sqlite3_bind_blob(s, 2, o->cur_bytes, (int)o->cur_len, SQLITE_STATIC);
		sqlite3_bind_int64(s, 3, o->shown_at_ms);
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK)
		r = offers_fail(o, "store current offer", rc);
	sqlite3_finalize(s);
	return r;
}

/* Forgets the current offer (memory only; the caller stores). */
static void drop_current(struct offers *o)
{
	free(o->cur_bytes);
	o->cur_bytes = NULL;
	o->cur_len = 0;
	o->state = OFFERS_NONE;
	o->shown_at_ms = 0;
	memset(&o->cur, 0, sizeof(o->cur));
}

/*
 * Puts the current (waiting) offer on screen; stays waiting on failure. Only
 * its first showing is logged at info and reported.
 */
static int show_current(struct offers *o, int64_t now_ms)
{
	int first = o->shown_at_ms == 0;
	int r = display_show(o->display, &o->cur, first ? now_ms : o->shown_at_ms);

	if (r < 0)
		return r;
	o->state = OFFERS_STATE_SHOWN;
	if (!first) {
		log_debug("offer %s shown again", o->cur.id);
		return 0;
	}
	o->shown_at_ms = now_ms;
	log_info("offer %s shown", o->cur.id);
	emit(o, o->cur.id, OFFER_ACTION_SHOWN, NULL, now_ms);
	return 0;
}

/* Returns 1 if id was accepted before, 0 if not, or -errno. */
static int seen_before(struct offers *o, const char *id)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(o->db, "SELECT 1 FROM seen WHERE id = ?1", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(s);
	}
	if (rc == SQLITE_ROW)
		r = 1;
	else if (rc == SQLITE_DONE)
		r = 0;
	else
		r = offers_fail(o, "look up offer id", rc);
	sqlite3_finalize(s);
	return r;
}

/* The number of remembered ids, or -errno. */
static int seen_count(struct offers *o)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(o->db, "SELECT count(*) FROM seen", -1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = sqlite3_column_int(s, 0);
	else
		r = offers_fail(o, "count offer ids", rc);
	sqlite3_finalize(s);
	return r;
}

/*
 * Records an accepted id. Never evicts one: an id leaves the table only when
 * its offer has expired (prune), and offers_handle refuses new offers while
 * OFFERS_MAX_SEEN unexpired ids are kept.
 */
static int remember(struct offers *o, const struct offer *off)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(o->db,
				"INSERT OR REPLACE INTO seen(id, valid_until_ms)"
				" VALUES (?1, ?2)",
				-1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, off->id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(s, 2, off->valid_until_ms);
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	r = rc == SQLITE_OK ? 0 : offers_fail(o, "remember offer id", rc);
	sqlite3_finalize(s);
	return r;
}

/* Forgets accepted ids whose offers have expired. */
static void prune(struct offers *o, int64_t now_ms)
{
	char sql[160];

	snprintf(sql, sizeof(sql),
		 "DELETE FROM seen WHERE valid_until_ms < %lld;"
		 "DELETE FROM decided WHERE valid_until_ms < %lld",
		 (long long)now_ms, (long long)now_ms);
	exec(o, sql, "prune expired offer ids");
}

int offers_handle(struct offers *o, const uint8_t *payload, size_t len, int64_t now_ms,
		  double speed_kmh)
{
	struct signed_offer so;
	struct offer off;
	uint8_t *copy = NULL;
	int r;

	memset(&so, 0, sizeof(so));
	if (!payload || len == 0 || len > CODEC_MAX_OFFER_BYTES ||
	    codec_decode_signed_offer(payload, len, &so) < 0)
		return reject(o, "?", "malformed", now_ms);
	if (!o->verifier || strcmp(so.key_id, crypto_verifier_key_id(o->verifier)) != 0) {
		r = reject(o, "?", "unknown key", now_ms);
		goto out;
	}
	if (crypto_verify(o->verifier, so.offer, so.offer_len, so.sig, so.sig_len) != 0) {
		r = reject(o, "?", "bad signature", now_ms);
		goto out;
	}
	if (codec_decode_offer(so.offer, so.offer_len, &off) < 0 || !off.id[0]) {
		r = reject(o, "?", "malformed", now_ms);
		goto out;
	}
	r = seen_before(o, off.id);
	if (r < 0)
		goto out;
	if (r == 1) {
		log_debug("offer %s already received: ignored", off.id);
		r = OFFERS_DUPLICATE;
		goto out;
	}
	if (strcmp(off.vin, o->vin) != 0) {
		r = reject(o, off.id, "wrong vehicle", now_ms);
		goto out;
	}
	/* Unsigned: the difference of two int64 may not fit an int64. */
	if (off.valid_until_ms > off.valid_from_ms &&
	    (uint64_t)off.valid_until_ms - (uint64_t)off.valid_from_ms >
		    (uint64_t)o->max_validity_ms) {
		char why[CODEC_MAX_REASON];

		snprintf(why, sizeof(why),
			 "validity window too long (%" PRIu64 " s, at most %" PRId64 " s)",
			 ((uint64_t)off.valid_until_ms - (uint64_t)off.valid_from_ms) / 1000,
			 o->max_validity_ms / 1000);
		r = reject(o, off.id, why, now_ms);
		goto out;
	}
	if (now_ms < off.valid_from_ms) {
		r = reject(o, off.id, "not yet valid", now_ms);
		goto out;
	}
	if (now_ms > off.valid_until_ms) {
		r = reject(o, off.id, "expired", now_ms);
		goto out;
	}
	/*
	 * The replay table must hold this id until the offer expires, and it
	 * never evicts a live id (that would let a redelivery show it again):
	 * when it is full of live ids, the new offer is refused instead.
	 */
	prune(o, now_ms);
	r = seen_count(o);
	if (r < 0)
		goto out;
	if (r >= OFFERS_MAX_SEEN) {
		char why[CODEC_MAX_REASON];

		snprintf(why, sizeof(why), "replay table full (%d offers still valid)", r);
		r = reject(o, off.id, why, now_ms);
		goto out;
	}
	copy = malloc(so.offer_len);
	if (!copy) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(copy, so.offer, so.offer_len);
	/* Accepted: it replaces whatever was current. */
	if (o->state != OFFERS_NONE)
		log_info("offer %s replaced by offer %s", o->cur.id, off.id);
	if (o->state == OFFERS_STATE_SHOWN && !may_show(o, &off, speed_kmh))
		display_clear(o->display);
	drop_current(o);
	o->cur = off;
	o->cur_bytes = copy;
	o->cur_len = so.offer_len;
	copy = NULL;
	o->state = OFFERS_STATE_WAITING;
	r = exec(o, "BEGIN IMMEDIATE", "store offer: begin");
	if (r < 0)
		goto out;
	r = remember(o, &off);
	if (r == 0)
		r = store_current(o);
	if (r == 0)
		r = exec(o, "COMMIT", "store offer: commit");
	if (r < 0) {
		exec(o, "ROLLBACK", "store offer: rollback");
		goto out;
	}
	/* Verified and stored: the gateway counts it delivered, before any "shown". */
	emit(o, off.id, OFFER_ACTION_DELIVERED, NULL, now_ms);
	if (may_show(o, &off, speed_kmh)) {
		if (show_current(o, now_ms) == 0)
			store_current(o); /* its state: shown */
	} else if (!slow_enough(o, speed_kmh)) {
		log_info("offer %s waits until the car is at or below %g km/h", off.id,
			 o->max_speed_kmh);
	} else {
		log_info("offer %s waits until the car is inside its area (%u m)", off.id,
			 off.area_radius_m);
	}
	r = o->state == OFFERS_STATE_SHOWN ? OFFERS_SHOWN : OFFERS_WAITING;
out:
	free(copy);
	codec_signed_offer_free(&so);
	return r;
}

void offers_tick(struct offers *o, int64_t now_ms, double speed_kmh)
{
	if (o->state != OFFERS_NONE && now_ms > o->cur.valid_until_ms) {
		if (o->state == OFFERS_STATE_WAITING) {
			log_info("offer %s expired while waiting: dropped", o->cur.id);
		} else {
			log_info("offer %s expired: removed from screen", o->cur.id);
			display_clear(o->display);
		}
		drop_current(o);
		store_current(o);
		prune(o, now_ms);
		return;
	}
	if (o->state == OFFERS_STATE_SHOWN && !may_show(o, &o->cur, speed_kmh)) {
		log_info("offer %s taken off the screen: %s", o->cur.id,
			 slow_enough(o, speed_kmh) ? "outside its area" : "the car is moving");
		display_clear(o->display);
		o->state = OFFERS_STATE_WAITING;
		store_current(o);
		return;
	}
	if (o->state == OFFERS_STATE_WAITING && may_show(o, &o->cur, speed_kmh) &&
	    show_current(o, now_ms) == 0)
		store_current(o);
}

static int load_current(struct offers *o, int64_t now_ms);

/* Stores the choice for the current offer; returns 0 or -errno. */
static int store_decision(struct offers *o, enum offer_action action, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(
		o->db,
		"INSERT OR REPLACE INTO decided(id, action, time_ms, valid_until_ms)"
		" VALUES (?1, ?2, ?3, ?4)",
		-1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, o->cur.id, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, (int)action);
		sqlite3_bind_int64(s, 3, now_ms);
		sqlite3_bind_int64(s, 4, o->cur.valid_until_ms);
		rc = sqlite3_step(s);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	r = rc == SQLITE_OK ? 0 : offers_fail(o, "record the driver's choice", rc);
	sqlite3_finalize(s);
	return r;
}

int offers_decide(struct offers *o, const char *id, enum offer_action action, int64_t now_ms)
{
	char cur_id[CODEC_MAX_ID];
	int r;

	if (action != OFFER_ACTION_ACCEPTED && action != OFFER_ACTION_DISMISSED)
		return -EINVAL;
	if (o->state != OFFERS_STATE_SHOWN || strcmp(id, o->cur.id) != 0)
		return -ENOENT;
	r = exec(o, "BEGIN IMMEDIATE", "record the driver's choice: begin");
	if (r < 0)
		return r;
	r = store_decision(o, action, now_ms);
	if (r == 0) {
		snprintf(cur_id, sizeof(cur_id), "%s", o->cur.id);
		drop_current(o);
		r = store_current(o);
	}
	if (r == 0)
		r = exec(o, "COMMIT", "record the driver's choice: commit");
	if (r < 0) {
		exec(o, "ROLLBACK", "record the driver's choice: rollback");
		/* Memory follows the database: the offer is still current. */
		drop_current(o);
		load_current(o, now_ms);
		return r;
	}
	log_info("offer %s %s by the driver", cur_id,
		 action == OFFER_ACTION_ACCEPTED ? "accepted" : "dismissed");
	display_clear(o->display);
	emit(o, cur_id, action, NULL, now_ms);
	return 0;
}

int offers_resend_decisions(struct offers *o, int64_t now_ms, int max)
{
	sqlite3_stmt *s = NULL;
	int rc, n = 0;

	rc = sqlite3_prepare_v2(o->db,
				"SELECT id, action, time_ms FROM decided WHERE valid_until_ms >= ?1"
				" ORDER BY time_ms DESC LIMIT ?2",
				-1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(s, 1, now_ms);
		sqlite3_bind_int(s, 2, max);
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			const char *id = (const char *)sqlite3_column_text(s, 0);
			int action = sqlite3_column_int(s, 1);

			if (!id ||
			    (action != OFFER_ACTION_ACCEPTED && action != OFFER_ACTION_DISMISSED))
				continue;
			emit(o, id, (enum offer_action)action, NULL, sqlite3_column_int64(s, 2));
			n++;
		}
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK)
		n = offers_fail(o, "read the driver's choices", rc);
	sqlite3_finalize(s);
	if (n > 0)
		log_info("reported %d driver choice%s again (the gateway ignores repeats)", n,
			 n == 1 ? "" : "s");
	return n;
}

enum offers_state offers_current(const struct offers *o, char *ret_id, size_t idlen)
{
	if (ret_id && idlen)
		snprintf(ret_id, idlen, "%s", o->state == OFFERS_NONE ? "" : o->cur.id);
	return o->state;
}

/* Loads the current slot from the database into memory. */
static int load_current(struct offers *o, int64_t now_ms)
{
	sqlite3_stmt *s = NULL;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(o->db,
				"SELECT state, offer, shown_at_ms FROM current"
				" WHERE slot = 1",
				-1, &s, NULL);
	if (rc != SQLITE_OK) {
		r = offers_fail(o, "read current offer", rc);
		goto out;
	}
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE)
		goto out;
	if (rc != SQLITE_ROW) {
		r = offers_fail(o, "read current offer", rc);
		goto out;
	}
	{
		int state = sqlite3_column_int(s, 0);
		int len = sqlite3_column_bytes(s, 1);

		if (len <= 0 || len > CODEC_MAX_OFFER_BYTES ||
		    codec_decode_offer(sqlite3_column_blob(s, 1), (size_t)len, &o->cur) < 0) {
			log_error("offers: stored current offer is unreadable: forgotten");
			goto forget;
		}
		o->cur_bytes = malloc((size_t)len);
		if (!o->cur_bytes) {
			r = -ENOMEM;
			goto out;
		}
		memcpy(o->cur_bytes, sqlite3_column_blob(s, 1), (size_t)len);
		o->cur_len = (size_t)len;
		o->shown_at_ms = sqlite3_column_int64(s, 2);
		o->state = state == 2 ? OFFERS_STATE_SHOWN : OFFERS_STATE_WAITING;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (now_ms > o->cur.valid_until_ms) {
		log_info("offer %s expired while the agent was stopped: dropped", o->cur.id);
		if (o->state == OFFERS_STATE_SHOWN)
			display_clear(o->display);
		goto forget;
	}
	/* Make sure the screen shows what we believe it shows. */
	if (o->state == OFFERS_STATE_SHOWN)
		display_show(o->display, &o->cur, o->shown_at_ms);
	goto out;
forget:
	drop_current(o);
	sqlite3_finalize(s);
	s = NULL;
	r = store_current(o);
out:
	sqlite3_finalize(s);
	return r;
}

void offers_set_limits(struct offers *o, double max_speed_kmh, int64_t max_validity_ms)
{
	o->max_speed_kmh = max_speed_kmh;
	o->max_validity_ms = max_validity_ms > 0 ? max_validity_ms : OFFERS_MAX_VALIDITY_MS;
}

int offers_new(const struct offers_config *conf, struct display *display, offers_event_fn fn,
	       void *arg, int64_t now_ms, struct offers **ret_o)
{
	struct offers *o;
	int rc, r;

	if (!conf || !conf->db_path || !conf->vin || strlen(conf->vin) >= sizeof(o->vin) ||
	    !display)
		return -EINVAL;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	snprintf(o->vin, sizeof(o->vin), "%s", conf->vin);
	o->verifier = conf->verifier;
	offers_set_limits(o, conf->max_speed_kmh, conf->max_validity_ms);
	o->display = display;
	o->fn = fn;
	o->arg = arg;
	/* 0600 before SQLite makes it 0644: it holds promo codes. */
	r = fileperm_private(conf->db_path);
	if (r < 0) {
		log_error("offers: cannot create %s with mode 0600: %s", conf->db_path,
			  strerror(-r));
		goto fail;
	}
	rc = sqlite3_open_v2(conf->db_path, &o->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			     NULL);
	if (rc != SQLITE_OK) {
		r = offers_fail(o, "open database", rc);
		goto fail;
	}
	sqlite3_busy_timeout(o->db, 100);
	r = exec(o, offers_schema, "create schema");
	if (r < 0)
		goto fail;
	r = fileperm_sqlite_sidecars(conf->db_path);
	if (r < 0)
		log_warn("offers: cannot set the mode of %s-wal/-shm to 0600: %s", conf->db_path,
			 strerror(-r));
	prune(o, now_ms);
	r = load_current(o, now_ms);
	if (r < 0)
		goto fail;
	*ret_o = o;
	return 0;
fail:
	offers_free(o);
	return r;
}

void offers_free(struct offers *o)
{
	if (!o)
		return;
	free(o->cur_bytes);
	if (o->db)
		sqlite3_close(o->db);
	free(o);
}
