/*
 * Issued offers and their events; see offer_log.h. Three statements per
 * event (does the offer exist for this car, keep the event once, advance the
 * state by rank), each atomic on both backends.
 */
#include "offer_log.h"

#include "grow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum stmt_id {
	ST_INSERT,
	ST_EXISTS,
	ST_EVENT_INSERT,
	ST_ADVANCE,
	ST_LIST,
	ST_EXPIRE,
	ST_COUNT_SINCE,
	ST_COUNT,
};

/* clang-format off */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_INSERT] =
		"INSERT INTO offers(id, vin, kind, title, body, promo_code, valid_from_ms,"
		" valid_until_ms, created_ms, state, state_rank, state_ms, rule)"
		" VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, 'sent', 0, $9, $10)",
	[ST_EXISTS] = "SELECT 1 FROM offers WHERE id = $1 AND vin = $2",
	[ST_EVENT_INSERT] =
		"INSERT INTO offer_events(vin, offer_id, action, reason, time_ms, received_ms)"
		" VALUES($1, $2, $3, $4, $5, $6)"
		" ON CONFLICT(vin, offer_id, action, time_ms) DO NOTHING",
	/* rank: sent 0 < shown 1 < accepted/dismissed/rejected 2; only forward. */
	[ST_ADVANCE] =
		"UPDATE offers SET state = $3, state_rank = $5, state_ms = $4"
		" WHERE id = $1 AND vin = $2 AND state_rank < $5",
	[ST_LIST] =
		"SELECT id, kind, title, promo_code, valid_from_ms, valid_until_ms, created_ms, state"
		" FROM offers WHERE vin = $1 ORDER BY created_ms, id LIMIT $2",
	/* Through the partial index offers_open_by_expiry: only open offers. */
	[ST_EXPIRE] =
		"UPDATE offers SET state = 'expired', state_rank = 2, state_ms = $1"
		" WHERE state_rank < 2 AND valid_until_ms < $1 RETURNING id",
	[ST_COUNT_SINCE] = "SELECT COUNT(*) FROM offers WHERE vin = $1 AND created_ms >= $2",
};
/* clang-format on */

struct offer_log {
	struct db_stmt *st[ST_COUNT]; /* owned */
};

static const char *const state_names[] = {
	[OFFER_STATE_SENT] = "sent",	     [OFFER_STATE_SHOWN] = "shown",
	[OFFER_STATE_ACCEPTED] = "accepted", [OFFER_STATE_DISMISSED] = "dismissed",
	[OFFER_STATE_REJECTED] = "rejected", [OFFER_STATE_EXPIRED] = "expired",
};
#define N_STATES (sizeof(state_names) / sizeof(state_names[0]))

const char *offer_state_name(enum offer_state st)
{
	return (size_t)st < N_STATES ? state_names[st] : "?";
}

/* Parses a stored state name; unknown text reads as "sent". */
static enum offer_state state_parse(const char *s)
{
	for (size_t i = 0; s && i < N_STATES; i++)
		if (strcmp(s, state_names[i]) == 0)
			return (enum offer_state)i;
	return OFFER_STATE_SENT;
}

int offer_log_new(struct db *db, struct offer_log **ret)
{
	struct offer_log *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
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

int offer_log_put(struct offer_log *l, const struct offer *o, int64_t created_ms)
{
	return offer_log_put_rule(l, o, "", created_ms);
}

int offer_log_put_rule(struct offer_log *l, const struct offer *o, const char *rule,
		       int64_t created_ms)
{
	struct db_stmt *st = l->st[ST_INSERT];

	db_bind_text(st, 1, o->id);
	db_bind_text(st, 2, o->vin);
	db_bind_int64(st, 3, o->kind);
	db_bind_text(st, 4, o->title);
	db_bind_text(st, 5, o->body);
	db_bind_text(st, 6, o->promo_code);
	db_bind_int64(st, 7, o->valid_from_ms);
	db_bind_int64(st, 8, o->valid_until_ms);
	db_bind_int64(st, 9, created_ms);
	db_bind_text(st, 10, rule ? rule : "");
	return db_run(st);
}

/* The state an event action moves to and its rank; -1 for an unknown action. */
static int action_state(enum offer_action a, enum offer_state *ret_state)
{
	switch (a) {
	case OFFER_ACTION_SHOWN:
		*ret_state = OFFER_STATE_SHOWN;
		return 1;
	case OFFER_ACTION_ACCEPTED:
		*ret_state = OFFER_STATE_ACCEPTED;
		return 2;
	case OFFER_ACTION_DISMISSED:
		*ret_state = OFFER_STATE_DISMISSED;
		return 2;
	case OFFER_ACTION_REJECTED:
		*ret_state = OFFER_STATE_REJECTED;
		return 2;
	case OFFER_ACTION_DELIVERED: /* recorded by the offer lifecycle, next */
		break;
	}
	return -1;
}

int offer_log_event(struct offer_log *l, const char *vin, const struct offer_event *ev,
		    int64_t received_ms)
{
	struct db_stmt *st = l->st[ST_EXISTS];
	enum offer_state state;
	int rank = action_state(ev->action, &state), r;

	if (rank < 0)
		return -EINVAL;
	db_bind_text(st, 1, ev->offer_id);
	db_bind_text(st, 2, vin);
	r = db_step(st);
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

	st = l->st[ST_ADVANCE];
	db_bind_text(st, 1, ev->offer_id);
	db_bind_text(st, 2, vin);
	db_bind_text(st, 3, offer_state_name(state));
	db_bind_int64(st, 4, ev->time_ms);
	db_bind_int64(st, 5, rank);
	return db_run(st);
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

int offer_log_expire(struct offer_log *l, int64_t now_ms)
{
	struct db_stmt *st = l->st[ST_EXPIRE];
	int r, n = 0;

	db_bind_int64(st, 1, now_ms);
	while ((r = db_step(st)) == 1)
		n++;
	db_reset(st);
	return r < 0 ? r : n;
}

int offer_log_expire_job(struct db *db, int64_t now_ms, void *arg)
{
	(void)db; /* the offer log's statements are on it */
	return offer_log_expire(arg, now_ms);
}

int offer_log_list(struct offer_log *l, const char *vin, struct offer_row **ret_rows, size_t *ret_n,
		   int *ret_more)
{
	struct db_stmt *st = l->st[ST_LIST];
	struct offer_row *rows = NULL;
	size_t n = 0, cap = 0;
	int r;

	*ret_more = 0;
	db_bind_text(st, 1, vin);
	db_bind_int64(st, 2, OFFER_LOG_LIST_MAX + 1);
	while ((r = db_step(st)) == 1) {
		struct offer_row *row;

		if (n == OFFER_LOG_LIST_MAX) {
			*ret_more = 1;
			break;
		}
		r = grow_for((void **)&rows, &cap, n, sizeof(*rows), 16, OFFER_LOG_LIST_MAX);
		if (r < 0)
			break;
		row = &rows[n++];
		memset(row, 0, sizeof(*row));
		db_column_copy(st, 0, row->id, sizeof(row->id));
		row->kind = (enum offer_kind)db_column_int64(st, 1);
		db_column_copy(st, 2, row->title, sizeof(row->title));
		db_column_copy(st, 3, row->promo_code, sizeof(row->promo_code));
		row->valid_from_ms = db_column_int64(st, 4);
		row->valid_until_ms = db_column_int64(st, 5);
		row->created_ms = db_column_int64(st, 6);
		row->state = state_parse(db_column_text(st, 7));
	}
	db_reset(st);
	if (r < 0) {
		free(rows);
		return r;
	}
	*ret_rows = n ? rows : NULL;
	if (!n)
		free(rows);
	*ret_n = n;
	return 0;
}
