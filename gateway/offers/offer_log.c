/*
 * Issued offers and their events; see offer_log.h. Four statements per
 * event (does the offer exist for this car, keep the event once, mark the
 * stage reached and count it the first time, advance the state by rank),
 * each atomic on both backends; a fifth, once, when the event finds the
 * offer never marked sent. One statement per broker acknowledgement (mark
 * sent, count it the first time and advance a created offer).
 */
#include "offer_log.h"

#include "grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum stmt_id {
	ST_INSERT,
	ST_SENT,
	ST_SENT_TIME,
	ST_EXISTS,
	ST_EVENT_INSERT,
	ST_STAGE,
	ST_ADVANCE,
	ST_STATS_ADD,
	ST_STATS_POI_ADD,
	ST_LIST,
	ST_LIST_EVENTS,
	ST_EXPIRE,
	ST_PURGE_EVENTS,
	ST_PURGE_CODES,
	ST_PURGE,
	ST_REDEEM,
	ST_REDEEM_WHY,
	ST_STATS,
	ST_STATS_POI,
	ST_COUNT_SINCE,
	ST_COUNT,
};

/*
 * Ranks: created 0 < sent 1 < delivered 2 < shown 3 < accepted, dismissed,
 * rejected 4 (the car's last word) < redeemed, expired 5. Every UPDATE of
 * the state compares them, so states only advance. The SQL below spells
 * the numbers: open offers are rank < 4, final ones >= 4.
 */
static const int state_rank[OFFER_STATE_COUNT] = {
	[OFFER_STATE_CREATED] = 0,  [OFFER_STATE_SENT] = 1,	[OFFER_STATE_DELIVERED] = 2,
	[OFFER_STATE_SHOWN] = 3,    [OFFER_STATE_ACCEPTED] = 4, [OFFER_STATE_DISMISSED] = 4,
	[OFFER_STATE_REJECTED] = 4, [OFFER_STATE_REDEEMED] = 5, [OFFER_STATE_EXPIRED] = 5,
};

/*
 * offers.stages: bit 1 << state for each stage reached (1 created, 2 sent,
 * ... 128 redeemed, 256 expired; migration 006 renumbered older rows).
 */
#define STAGE_BIT(st) (1 << (st))

/* clang-format off */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_INSERT] =
		"INSERT INTO offers(id, vin, kind, title, body, promo_code, valid_from_ms,"
		" valid_until_ms, created_ms, state, state_rank, state_ms, rule, poi_id, stages)"
		" VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, 'created', 0, $9, $10, $11, 1)",
	/*
	 * The broker's acknowledgement: the stage once (its bit), the state
	 * only when still created (rank 0 -> 1); SET reads the old row.
	 */
	[ST_SENT] =
		"UPDATE offers SET stages = stages | 2, sent_ms = $2,"
		" state = CASE WHEN state_rank < 1 THEN 'sent' ELSE state END,"
		" state_ms = CASE WHEN state_rank < 1 THEN $2 ELSE state_ms END,"
		" state_rank = CASE WHEN state_rank < 1 THEN 1 ELSE state_rank END"
		" WHERE id = $1 AND (stages & 2) = 0 RETURNING rule, poi_id, created_ms",
	/* Already counted (a car's event came first): the time only. */
	[ST_SENT_TIME] = "UPDATE offers SET sent_ms = $2 WHERE id = $1 AND sent_ms IS NULL",
	[ST_EXISTS] = "SELECT stages FROM offers WHERE id = $1 AND vin = $2",
	[ST_EVENT_INSERT] =
		"INSERT INTO offer_events(vin, offer_id, action, reason, time_ms, received_ms)"
		" VALUES($1, $2, $3, $4, $5, $6)"
		" ON CONFLICT(vin, offer_id, action, time_ms) DO NOTHING",
	/* A stage counts once per offer, whenever its event arrives. */
	[ST_STAGE] =
		"UPDATE offers SET stages = stages | $3"
		" WHERE id = $1 AND vin = $2 AND (stages & $3) = 0 RETURNING rule, poi_id, created_ms",
	[ST_ADVANCE] =
		"UPDATE offers SET state = $3, state_rank = $5, state_ms = $4"
		" WHERE id = $1 AND vin = $2 AND state_rank < $5",
	/* Adds a vector of counts: atomic on both backends, across instances. */
	[ST_STATS_ADD] =
		"INSERT INTO offer_stats(rule, day, created, sent, delivered, shown, accepted,"
		" dismissed, rejected, redeemed, expired)"
		" VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
		" ON CONFLICT(rule, day) DO UPDATE SET created = offer_stats.created + excluded.created,"
		" sent = offer_stats.sent + excluded.sent,"
		" delivered = offer_stats.delivered + excluded.delivered,"
		" shown = offer_stats.shown + excluded.shown,"
		" accepted = offer_stats.accepted + excluded.accepted,"
		" dismissed = offer_stats.dismissed + excluded.dismissed,"
		" rejected = offer_stats.rejected + excluded.rejected,"
		" redeemed = offer_stats.redeemed + excluded.redeemed,"
		" expired = offer_stats.expired + excluded.expired",
	/* The same for the offer's POI: $12 is the POI id. */
	[ST_STATS_POI_ADD] =
		"INSERT INTO offer_stats_poi(rule, poi_id, day, created, sent, delivered, shown,"
		" accepted, dismissed, rejected, redeemed, expired)"
		" VALUES($1, $12, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
		" ON CONFLICT(rule, poi_id, day) DO UPDATE SET"
		" created = offer_stats_poi.created + excluded.created,"
		" sent = offer_stats_poi.sent + excluded.sent,"
		" delivered = offer_stats_poi.delivered + excluded.delivered,"
		" shown = offer_stats_poi.shown + excluded.shown,"
		" accepted = offer_stats_poi.accepted + excluded.accepted,"
		" dismissed = offer_stats_poi.dismissed + excluded.dismissed,"
		" rejected = offer_stats_poi.rejected + excluded.rejected,"
		" redeemed = offer_stats_poi.redeemed + excluded.redeemed,"
		" expired = offer_stats_poi.expired + excluded.expired",
	[ST_LIST] =
		"SELECT id, kind, title, promo_code, valid_from_ms, valid_until_ms, created_ms, state,"
		" rule, state_ms, poi_id, sent_ms FROM offers WHERE vin = $1"
		" ORDER BY created_ms, id LIMIT $2",
	/* The first time of each event action, for the stage times of a listing. */
	[ST_LIST_EVENTS] =
		"SELECT offer_id, action, MIN(time_ms) FROM offer_events WHERE vin = $1"
		" GROUP BY offer_id, action",
	/* Through offers_by_valid_until: open (rank < 4) offers past their validity. */
	[ST_EXPIRE] =
		"UPDATE offers SET state = 'expired', state_rank = 5, state_ms = $1,"
		" stages = stages | 256"
		" WHERE state_rank < 4 AND valid_until_ms < $1 RETURNING rule, poi_id, created_ms",
	[ST_PURGE_EVENTS] =
		"DELETE FROM offer_events WHERE (vin, offer_id) IN"
		" (SELECT vin, id FROM offers WHERE state_rank >= 4 AND valid_until_ms < $1)",
	/*
	 * Their single-use codes (rules.c's promo_codes, in this domain): a
	 * code dies with its offer, whether it was redeemed or not, so a
	 * pool never grows with the offers of years.
	 */
	[ST_PURGE_CODES] =
		"DELETE FROM promo_codes WHERE code IN"
		" (SELECT promo_code FROM offers WHERE state_rank >= 4 AND valid_until_ms < $1)",
	[ST_PURGE] = "DELETE FROM offers WHERE state_rank >= 4 AND valid_until_ms < $1 RETURNING id",
	/*
	 * The oldest redeemable offer with the code; the outer condition is
	 * checked again on the locked row (PostgreSQL re-reads it), so of two
	 * concurrent redemptions one updates nothing.
	 */
	[ST_REDEEM] =
		"UPDATE offers SET state = 'redeemed', state_rank = 5, state_ms = $2,"
		" stages = stages | 128"
		" WHERE id = (SELECT id FROM offers WHERE promo_code = $1 AND state_rank < 5"
		" AND valid_until_ms >= $2 ORDER BY created_ms, id LIMIT 1)"
		" AND state_rank < 5 RETURNING id, vin, rule, created_ms, valid_until_ms, poi_id,"
		" stages",
	[ST_REDEEM_WHY] =
		"SELECT id, vin, rule, state, state_ms, valid_until_ms FROM offers"
		" WHERE promo_code = $1 ORDER BY state = 'redeemed' DESC, created_ms DESC, id LIMIT 1",
	[ST_STATS] =
		"SELECT rule, SUM(created), SUM(sent), SUM(delivered), SUM(shown), SUM(accepted),"
		" SUM(dismissed), SUM(rejected), SUM(redeemed), SUM(expired) FROM offer_stats"
		" WHERE day >= $1 AND day <= $2 GROUP BY rule ORDER BY rule LIMIT $3",
	[ST_STATS_POI] =
		"SELECT rule, poi_id, SUM(created), SUM(sent), SUM(delivered), SUM(shown),"
		" SUM(accepted), SUM(dismissed), SUM(rejected), SUM(redeemed), SUM(expired)"
		" FROM offer_stats_poi WHERE day >= $1 AND day <= $2 GROUP BY rule, poi_id"
		" ORDER BY rule, SUM(sent) DESC, poi_id LIMIT $3",
	[ST_COUNT_SINCE] = "SELECT COUNT(*) FROM offers WHERE vin = $1 AND created_ms >= $2",
};
/* clang-format on */

struct offer_log {
	struct db_stmt *st[ST_COUNT]; /* owned */
	int64_t keep_ms;	      /* the expiry job deletes offers ended this long ago */
};

static const char *const state_names[OFFER_STATE_COUNT] = {
	[OFFER_STATE_CREATED] = "created",     [OFFER_STATE_SENT] = "sent",
	[OFFER_STATE_DELIVERED] = "delivered", [OFFER_STATE_SHOWN] = "shown",
	[OFFER_STATE_ACCEPTED] = "accepted",   [OFFER_STATE_DISMISSED] = "dismissed",
	[OFFER_STATE_REJECTED] = "rejected",   [OFFER_STATE_REDEEMED] = "redeemed",
	[OFFER_STATE_EXPIRED] = "expired",
};

const char *offer_state_name(enum offer_state st)
{
	return (size_t)st < OFFER_STATE_COUNT ? state_names[st] : "?";
}

/* Parses a stored state name; unknown text reads as "created". */
static enum offer_state state_parse(const char *s)
{
	for (size_t i = 0; s && i < OFFER_STATE_COUNT; i++)
		if (strcmp(s, state_names[i]) == 0)
			return (enum offer_state)i;
	return OFFER_STATE_CREATED;
}

/* The UTC day (since 1970-01-01) of a time in ms. */
static int64_t day_of(int64_t ms)
{
	return ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
}

/*
 * Runs a counting statement: $1 rule, $2 the day of created_ms, $3... the
 * counts n[], and after them poi_id unless it is NULL.
 */
static int stats_run(struct db_stmt *st, const char *rule, const char *poi_id, int64_t created_ms,
		     const int64_t n[OFFER_STATE_COUNT])
{
	db_bind_text(st, 1, rule);
	db_bind_int64(st, 2, day_of(created_ms));
	for (int i = 0; i < OFFER_STATE_COUNT; i++)
		db_bind_int64(st, 3 + i, n[i]);
	if (poi_id)
		db_bind_text(st, 3 + OFFER_STATE_COUNT, poi_id);
	return db_run(st);
}

/*
 * Adds counts n[] to offer_stats(rule, day of created_ms) and, for an
 * offer issued for a POI (poi_id not ""), to offer_stats_poi.
 */
static int stats_add(struct offer_log *l, const char *rule, const char *poi_id, int64_t created_ms,
		     const int64_t n[OFFER_STATE_COUNT])
{
	int r = stats_run(l->st[ST_STATS_ADD], rule, NULL, created_ms, n);

	if (r == 0 && *poi_id)
		r = stats_run(l->st[ST_STATS_POI_ADD], rule, poi_id, created_ms, n);
	return r;
}

/* Counts one offer (of rule and poi_id, created at created_ms) as reaching stage. */
static int stats_one(struct offer_log *l, const char *rule, const char *poi_id, int64_t created_ms,
		     enum offer_state stage)
{
	int64_t n[OFFER_STATE_COUNT] = { 0 };

	n[stage] = 1;
	return stats_add(l, rule, poi_id, created_ms, n);
}

/* What a marking UPDATE returned of its offer: rule, poi_id, created_ms. */
struct offer_key {
	char rule[OFFER_LOG_RULE_MAX];
	char poi_id[OFFER_LOG_POI_ID_MAX];
	int64_t created_ms;
};

/* Reads an offer_key from the current row's columns 0 (rule), 1 (poi_id), 2 (created_ms). */
static void key_read(struct db_stmt *st, struct offer_key *k)
{
	db_column_copy(st, 0, k->rule, sizeof(k->rule));
	db_column_copy(st, 1, k->poi_id, sizeof(k->poi_id));
	k->created_ms = db_column_int64(st, 2);
}

/*
 * Steps st (bound; it returns rule, poi_id, created_ms of one row at most)
 * and, when it returned its row, counts that offer as reaching stage.
 * Returns 1 (counted), 0 (no row), or an error class; st is reset.
 */
static int mark_and_count(struct offer_log *l, struct db_stmt *st, enum offer_state stage)
{
	struct offer_key k = { "", "", 0 };
	int r, hit = 0;

	while ((r = db_step(st)) == 1) { /* id is the key: one row at most */
		key_read(st, &k);
		hit = 1;
	}
	db_reset(st);
	if (r < 0 || !hit)
		return r;
	r = stats_one(l, k.rule, k.poi_id, k.created_ms, stage);
	return r < 0 ? r : 1;
}

int offer_log_new(struct db *db, struct offer_log **ret)
{
	struct offer_log *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->keep_ms = OFFER_LOG_KEEP_DAYS_DEFAULT * 86400000LL;
	r = db_prepare_all(db, stmt_sql, ST_COUNT, l->st);
	if (r < 0) {
		offer_log_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

void offer_log_free(struct offer_log *l)
{
	if (!l)
		return;
	db_finalize_all(l->st, ST_COUNT);
	free(l);
}

void offer_log_set_keep_ms(struct offer_log *l, int64_t keep_ms)
{
	l->keep_ms = keep_ms;
}

int offer_log_put(struct offer_log *l, const struct offer *o, int64_t created_ms)
{
	return offer_log_put_rule(l, o, "", "", created_ms);
}

int offer_log_put_rule(struct offer_log *l, const struct offer *o, const char *rule,
		       const char *poi_id, int64_t created_ms)
{
	struct db_stmt *st = l->st[ST_INSERT];
	int r;

	if (!rule)
		rule = "";
	if (!poi_id)
		poi_id = "";
	if (strlen(rule) >= OFFER_LOG_RULE_MAX || strlen(poi_id) >= OFFER_LOG_POI_ID_MAX)
		return -EINVAL;
	db_bind_text(st, 1, o->id);
	db_bind_text(st, 2, o->vin);
	db_bind_int64(st, 3, o->kind);
	db_bind_text(st, 4, o->title);
	db_bind_text(st, 5, o->body);
	db_bind_text(st, 6, o->promo_code);
	db_bind_int64(st, 7, o->valid_from_ms);
	db_bind_int64(st, 8, o->valid_until_ms);
	db_bind_int64(st, 9, created_ms);
	db_bind_text(st, 10, rule);
	db_bind_text(st, 11, poi_id);
	r = db_run(st);
	if (r < 0)
		return r;
	return stats_one(l, rule, poi_id, created_ms, OFFER_STATE_CREATED);
}

int offer_log_sent(struct offer_log *l, const char *id, int64_t now_ms)
{
	struct db_stmt *st = l->st[ST_SENT];
	int r;

	db_bind_text(st, 1, id);
	db_bind_int64(st, 2, now_ms);
	r = mark_and_count(l, st, OFFER_STATE_SENT);
	if (r != 0)
		return r;
	/* Rare: its stage was counted from a car's event before this mark. */
	st = l->st[ST_SENT_TIME];
	db_bind_text(st, 1, id);
	db_bind_int64(st, 2, now_ms);
	r = db_run(st);
	return r < 0 ? r : 0;
}

/* The state an event action moves to; -1 for an unknown action. */
static int action_state(enum offer_action a, enum offer_state *ret_state)
{
	switch (a) {
	case OFFER_ACTION_DELIVERED:
		*ret_state = OFFER_STATE_DELIVERED;
		return 0;
	case OFFER_ACTION_SHOWN:
		*ret_state = OFFER_STATE_SHOWN;
		return 0;
	case OFFER_ACTION_ACCEPTED:
		*ret_state = OFFER_STATE_ACCEPTED;
		return 0;
	case OFFER_ACTION_DISMISSED:
		*ret_state = OFFER_STATE_DISMISSED;
		return 0;
	case OFFER_ACTION_REJECTED:
		*ret_state = OFFER_STATE_REJECTED;
		return 0;
	}
	return -1;
}

/*
 * Marks stage reached for offer id of vin; the first time, counts it.
 * Returns 0 or an error class.
 */
static int stage_reached(struct offer_log *l, const char *id, const char *vin,
			 enum offer_state stage)
{
	struct db_stmt *st = l->st[ST_STAGE];
	int r;

	db_bind_text(st, 1, id);
	db_bind_text(st, 2, vin);
	db_bind_int64(st, 3, STAGE_BIT(stage));
	r = mark_and_count(l, st, stage);
	return r < 0 ? r : 0;
}

/*
 * An offer with stages (its bits before this change) reached a stage only
 * a car that got it can: when its sent mark is missing (the broker's
 * acknowledgement was lost, or its mark dropped), counts sent too, as the
 * car evidently has it. Returns 0 or an error class.
 */
static int sent_implied(struct offer_log *l, const char *id, const char *vin, int64_t stages)
{
	if (stages & STAGE_BIT(OFFER_STATE_SENT))
		return 0;
	return stage_reached(l, id, vin, OFFER_STATE_SENT);
}

int offer_log_event(struct offer_log *l, const char *vin, const struct offer_event *ev,
		    int64_t received_ms)
{
	struct db_stmt *st = l->st[ST_EXISTS];
	enum offer_state state;
	int64_t stages = 0;
	int r;

	if (action_state(ev->action, &state) < 0)
		return -EINVAL;
	db_bind_text(st, 1, ev->offer_id);
	db_bind_text(st, 2, vin);
	r = db_step(st);
	if (r == 1)
		stages = db_column_int64(st, 0);
	db_reset(st);
	if (r <= 0)
		return r == 0 ? -ENOENT : r;

	st = l->st[ST_EVENT_INSERT];
	db_bind_text(st, 1, vin);
	db_bind_text(st, 2, ev->offer_id);
	db_bind_text(st, 3, offer_state_name(state));
	db_bind_text(st, 4, ev->reason);
	db_bind_int64(st, 5, ev->time_ms);
	db_bind_int64(st, 6, received_ms);
	r = db_run(st);
	if (r < 0)
		return r;

	r = sent_implied(l, ev->offer_id, vin, stages);
	if (r == 0)
		r = stage_reached(l, ev->offer_id, vin, state);
	if (r < 0)
		return r;

	st = l->st[ST_ADVANCE];
	db_bind_text(st, 1, ev->offer_id);
	db_bind_text(st, 2, vin);
	db_bind_text(st, 3, offer_state_name(state));
	db_bind_int64(st, 4, ev->time_ms);
	db_bind_int64(st, 5, state_rank[state]);
	r = db_run(st);
	return r < 0 ? r : 0;
}

int offer_log_count_since(struct offer_log *l, const char *vin, int64_t since_ms)
{
	struct db_stmt *st = l->st[ST_COUNT_SINCE];
	int r;
	int64_t n = 0;

	db_bind_text(st, 1, vin);
	db_bind_int64(st, 2, since_ms);
	r = db_step(st);
	if (r == 1)
		n = db_column_int64(st, 0);
	db_reset(st);
	if (r < 0)
		return r;
	return n > INT32_MAX ? INT32_MAX : (int)n;
}

/* Expired offers of one rule, POI and creation day, folded before counting. */
struct expired_group {
	struct offer_key k; /* k.created_ms: a creation time on that day */
	int64_t n;
};

/* Adds one expired offer to groups (grown as needed). Returns 0 or -ENOMEM. */
static int group_add(struct expired_group **g, size_t *n, size_t *cap, const struct offer_key *k)
{
	for (size_t i = 0; i < *n; i++)
		if (day_of((*g)[i].k.created_ms) == day_of(k->created_ms) &&
		    strcmp((*g)[i].k.rule, k->rule) == 0 &&
		    strcmp((*g)[i].k.poi_id, k->poi_id) == 0) {
			(*g)[i].n++;
			return 0;
		}
	if (grow_for((void **)g, cap, *n, sizeof(**g), 8, SIZE_MAX / sizeof(**g)) < 0)
		return -ENOMEM;
	(*g)[*n].k = *k;
	(*g)[*n].n = 1;
	(*n)++;
	return 0;
}

int offer_log_expire(struct offer_log *l, int64_t now_ms)
{
	struct db_stmt *st = l->st[ST_EXPIRE];
	struct expired_group *g = NULL;
	size_t ng = 0, cap = 0;
	int r, n = 0, err = 0;

	db_bind_int64(st, 1, now_ms);
	while ((r = db_step(st)) == 1) {
		struct offer_key k;

		n++;
		key_read(st, &k);
		if (!err)
			err = group_add(&g, &ng, &cap, &k);
	}
	db_reset(st);
	if (r == 0 && err)
		r = err;
	for (size_t i = 0; r == 0 && i < ng; i++) {
		int64_t c[OFFER_STATE_COUNT] = { 0 };

		c[OFFER_STATE_EXPIRED] = g[i].n;
		r = stats_add(l, g[i].k.rule, g[i].k.poi_id, g[i].k.created_ms, c);
	}
	free(g);
	return r < 0 ? r : n;
}

/* Runs st with $1 = v; returns how many rows it returned, or an error class. */
static int count_rows(struct db_stmt *st, int64_t v)
{
	int r, n = 0;

	db_bind_int64(st, 1, v);
	while ((r = db_step(st)) == 1)
		n++;
	db_reset(st);
	return r < 0 ? r : n;
}

int offer_log_purge(struct offer_log *l, int64_t now_ms, int64_t keep_ms)
{
	int64_t cutoff = now_ms - keep_ms;
	int r;

	for (int k = ST_PURGE_EVENTS; k <= ST_PURGE_CODES; k++) {
		db_bind_int64(l->st[k], 1, cutoff);
		r = db_run(l->st[k]);
		if (r < 0)
			return r;
	}
	return count_rows(l->st[ST_PURGE], cutoff);
}

int offer_log_expire_job(struct db *db, int64_t now_ms, void *arg)
{
	struct offer_log *l = arg;
	int r;

	(void)db; /* the offer log's statements are on it */
	r = offer_log_expire(l, now_ms);
	if (r < 0)
		return r;
	return offer_log_purge(l, now_ms, l->keep_ms);
}

int offer_log_redeem(struct offer_log *l, const char *code, int64_t now_ms,
		     struct offer_redeemed *ret)
{
	struct db_stmt *st = l->st[ST_REDEEM];
	struct offer_redeemed out;
	char poi_id[OFFER_LOG_POI_ID_MAX] = "";
	int64_t created_ms = 0, stages = 0;
	int r;

	if (!code || !*code || strlen(code) >= CODEC_MAX_PROMO)
		return -EINVAL;
	memset(&out, 0, sizeof(out));
	db_bind_text(st, 1, code);
	db_bind_int64(st, 2, now_ms);
	r = db_step(st);
	if (r == 1) {
		db_column_copy(st, 0, out.id, sizeof(out.id));
		db_column_copy(st, 1, out.vin, sizeof(out.vin));
		db_column_copy(st, 2, out.rule, sizeof(out.rule));
		created_ms = db_column_int64(st, 3);
		out.valid_until_ms = db_column_int64(st, 4);
		db_column_copy(st, 5, poi_id, sizeof(poi_id));
		stages = db_column_int64(st, 6); /* the new bits; the sent bit is untouched */
		out.state = OFFER_STATE_REDEEMED;
		out.state_ms = now_ms;
		while ((r = db_step(st)) == 1) /* one row: the subquery has LIMIT 1 */
			;
		if (r == 0)
			r = 1;
	}
	db_reset(st);
	if (r < 0)
		return r;
	if (r == 1) {
		/* A code at the till: the driver got the offer, so it was sent. */
		r = sent_implied(l, out.id, out.vin, stages);
		if (r == 0)
			r = stats_one(l, out.rule, poi_id, created_ms, OFFER_STATE_REDEEMED);
		if (r == 0)
			*ret = out;
		return r;
	}

	/* Nothing redeemable: say why. */
	st = l->st[ST_REDEEM_WHY];
	db_bind_text(st, 1, code);
	r = db_step(st);
	if (r == 1) {
		db_column_copy(st, 0, out.id, sizeof(out.id));
		db_column_copy(st, 1, out.vin, sizeof(out.vin));
		db_column_copy(st, 2, out.rule, sizeof(out.rule));
		out.state = state_parse(db_column_text(st, 3));
		out.state_ms = db_column_int64(st, 4);
		out.valid_until_ms = db_column_int64(st, 5);
	}
	db_reset(st);
	if (r <= 0)
		return r == 0 ? -ENOENT : r;
	*ret = out;
	return out.state == OFFER_STATE_REDEEMED ? -EALREADY : -ETIME;
}

/* Fills one offer_stats_row from a ST_STATS row. */
static void stats_fill(struct db_stmt *st, void *p)
{
	struct offer_stats_row *row = p;

	db_column_copy(st, 0, row->rule, sizeof(row->rule));
	for (int i = 0; i < OFFER_STATE_COUNT; i++)
		row->n[i] = db_column_int64(st, 1 + i);
}

/*
 * Steps st (bound) and collects its rows, at most max of size bytes each,
 * filled by fill into zeroed memory; *ret_more 1 when there were more.
 * *ret_rows is malloc'ed (NULL when *ret_n is 0). Returns 0 or an error
 * class; st is reset.
 */
static int collect_rows(struct db_stmt *st, size_t max, size_t size,
			void (*fill)(struct db_stmt *st, void *row), void **ret_rows, size_t *ret_n,
			int *ret_more)
{
	char *rows = NULL;
	size_t n = 0, cap = 0;
	int r;

	*ret_more = 0;
	while ((r = db_step(st)) == 1) {
		if (n == max) {
			*ret_more = 1;
			break;
		}
		r = grow_for((void **)&rows, &cap, n, size, 16, max);
		if (r < 0)
			break;
		memset(rows + n * size, 0, size);
		fill(st, rows + n * size);
		n++;
	}
	db_reset(st);
	if (r < 0 || !n) {
		free(rows);
		rows = NULL;
	}
	if (r < 0)
		return r;
	*ret_rows = rows;
	*ret_n = n;
	return 0;
}

/* Binds the day range of a statistics query and its row limit max + 1. */
static struct db_stmt *stats_bind(struct db_stmt *st, int64_t since_day, int64_t until_day,
				  size_t max)
{
	db_bind_int64(st, 1, since_day);
	db_bind_int64(st, 2, until_day);
	db_bind_int64(st, 3, (int64_t)max + 1);
	return st;
}

int offer_log_stats(struct offer_log *l, int64_t since_day, int64_t until_day,
		    struct offer_stats_row **ret_rows, size_t *ret_n, int *ret_more)
{
	return collect_rows(stats_bind(l->st[ST_STATS], since_day, until_day, OFFER_LOG_STATS_MAX),
			    OFFER_LOG_STATS_MAX, sizeof(**ret_rows), stats_fill, (void **)ret_rows,
			    ret_n, ret_more);
}

/* Fills one offer_stats_poi_row from a ST_STATS_POI row. */
static void stats_poi_fill(struct db_stmt *st, void *p)
{
	struct offer_stats_poi_row *row = p;

	db_column_copy(st, 0, row->rule, sizeof(row->rule));
	db_column_copy(st, 1, row->poi_id, sizeof(row->poi_id));
	for (int i = 0; i < OFFER_STATE_COUNT; i++)
		row->n[i] = db_column_int64(st, 2 + i);
}

int offer_log_stats_poi(struct offer_log *l, int64_t since_day, int64_t until_day,
			struct offer_stats_poi_row **ret_rows, size_t *ret_n, int *ret_more)
{
	return collect_rows(
		stats_bind(l->st[ST_STATS_POI], since_day, until_day, OFFER_LOG_STATS_POI_MAX),
		OFFER_LOG_STATS_POI_MAX, sizeof(**ret_rows), stats_poi_fill, (void **)ret_rows,
		ret_n, ret_more);
}

/* qsort/bsearch order of offer rows by id. */
static int row_id_cmp(const void *a, const void *b)
{
	return strcmp((*(const struct offer_row *const *)a)->id,
		      (*(const struct offer_row *const *)b)->id);
}

/* Fills the stage times of rows[0..n) from their events. Returns 0 or an error class. */
static int list_stage_times(struct offer_log *l, const char *vin, struct offer_row *rows, size_t n)
{
	struct db_stmt *st = l->st[ST_LIST_EVENTS];
	struct offer_row **by_id = malloc(n * sizeof(*by_id));
	int r;

	if (!by_id)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		by_id[i] = &rows[i];
		rows[i].stage_ms[OFFER_STATE_CREATED] = rows[i].created_ms;
		if (rows[i].state == OFFER_STATE_REDEEMED || rows[i].state == OFFER_STATE_EXPIRED)
			rows[i].stage_ms[rows[i].state] = rows[i].state_ms;
	}
	qsort(by_id, n, sizeof(*by_id), row_id_cmp);
	db_bind_text(st, 1, vin);
	while ((r = db_step(st)) == 1) {
		struct offer_row key, *kp = &key, **hit;
		enum offer_state s = state_parse(db_column_text(st, 1));

		db_column_copy(st, 0, key.id, sizeof(key.id));
		hit = bsearch(&kp, by_id, n, sizeof(*by_id), row_id_cmp);
		if (hit && s != OFFER_STATE_CREATED && s != OFFER_STATE_SENT)
			(*hit)->stage_ms[s] = db_column_int64(st, 2);
	}
	db_reset(st);
	free(by_id);
	return r;
}

/* Fills one offer_row from a ST_LIST row (the stage times come later). */
static void list_fill(struct db_stmt *st, void *p)
{
	struct offer_row *row = p;

	db_column_copy(st, 0, row->id, sizeof(row->id));
	row->kind = (enum offer_kind)db_column_int64(st, 1);
	db_column_copy(st, 2, row->title, sizeof(row->title));
	db_column_copy(st, 3, row->promo_code, sizeof(row->promo_code));
	row->valid_from_ms = db_column_int64(st, 4);
	row->valid_until_ms = db_column_int64(st, 5);
	row->created_ms = db_column_int64(st, 6);
	row->state = state_parse(db_column_text(st, 7));
	db_column_copy(st, 8, row->rule, sizeof(row->rule));
	row->state_ms = db_column_int64(st, 9);
	db_column_copy(st, 10, row->poi_id, sizeof(row->poi_id));
	row->stage_ms[OFFER_STATE_SENT] = db_column_int64(st, 11); /* NULL reads 0: not known */
}

int offer_log_list(struct offer_log *l, const char *vin, struct offer_row **ret_rows, size_t *ret_n,
		   int *ret_more)
{
	struct db_stmt *st = l->st[ST_LIST];
	struct offer_row *rows = NULL;
	size_t n = 0;
	int r;

	db_bind_text(st, 1, vin);
	db_bind_int64(st, 2, OFFER_LOG_LIST_MAX + 1);
	r = collect_rows(st, OFFER_LOG_LIST_MAX, sizeof(*rows), list_fill, (void **)&rows, &n,
			 ret_more);
	if (r == 0 && n)
		r = list_stage_times(l, vin, rows, n);
	if (r < 0) {
		free(rows);
		return r;
	}
	*ret_rows = rows;
	*ret_n = n;
	return 0;
}
