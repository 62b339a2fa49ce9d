/*
 * The offers issued to each car and what the car said about them: part of
 * the offers domain, which owns the tables offers, offer_events and
 * offer_episodes (gateway/offers/schema/; episodes belong to rules.c). No
 * other module touches them.
 *
 * An offer's state only advances (docs/offers.md): created (recorded in the
 * transaction that issued it; the outbox publishes it after the commit) ->
 * sent (the broker acknowledged the publish: offer_log_sent(), applied by
 * ingest in its next transaction) -> delivered (the car verified and stored
 * it) -> shown -> accepted, dismissed or rejected (the car's last word) ->
 * redeemed (a partner's till, from any state but expired) or expired (the
 * scheduled job, once its validity ended while created, sent, delivered or
 * shown). The order is a rank column compared inside the UPDATE, so a late
 * or redelivered event never undoes a newer one, on either backend and with
 * several gateway instances.
 *
 * Statistics: every offer that reaches a stage counts once for it (a bit
 * per stage in offers.stages, set by a conditional UPDATE) in offer_stats,
 * per rule and UTC day of the offer's creation, and for an offer issued for
 * a POI also in offer_stats_poi (per rule, POI and day), in the same
 * transaction as the change; the expiry job deletes old offers but never
 * those counts. A car's event or a redemption of an offer never marked sent
 * (the acknowledgement's mark was lost) counts the sent stage too: the car
 * evidently got it.
 *
 * Functions return 0 (or a count) or a negative error class from db.h; db
 * logged the failure. Each write joins the caller's transaction (ingest's,
 * a job's, the API's).
 */
#ifndef PITSTOP_OFFER_LOG_H
#define PITSTOP_OFFER_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "db.h"

/* Offers one listing returns at most. */
#define OFFER_LOG_LIST_MAX 10000

/* Rules listed by offer_log_stats() at most; a rule name's size. */
#define OFFER_LOG_STATS_MAX 1000
#define OFFER_LOG_RULE_MAX 64
/* (rule, POI) rows listed by offer_log_stats_poi() at most; a POI id's size (poi.h's + 1). */
#define OFFER_LOG_STATS_POI_MAX 10000
#define OFFER_LOG_POI_ID_MAX 65

/* How long ended offers are kept by default (offer_keep_days). */
#define OFFER_LOG_KEEP_DAYS_DEFAULT 90

/* Offer states (and the stages statistics count), in the order they may advance. */
enum offer_state {
	OFFER_STATE_CREATED,   /* recorded, handed to the outbox after the commit */
	OFFER_STATE_SENT,      /* the broker acknowledged the publish */
	OFFER_STATE_DELIVERED, /* verified and stored in the car */
	OFFER_STATE_SHOWN,
	OFFER_STATE_ACCEPTED,
	OFFER_STATE_DISMISSED,
	OFFER_STATE_REJECTED,
	OFFER_STATE_REDEEMED,
	OFFER_STATE_EXPIRED, /* its validity ended while it was created, sent, delivered or shown */
	OFFER_STATE_COUNT,
};

/* The scheduled job that expires offers (jobs.h), and how often it runs. */
#define OFFER_LOG_EXPIRE_JOB "offers_expire"
#define OFFER_LOG_EXPIRE_PERIOD_MS 60000

/* "created", "sent", ...; never NULL ("?" when out of range). */
const char *offer_state_name(enum offer_state st);

/* An issued offer as listed. */
struct offer_row {
	char id[CODEC_MAX_ID];
	enum offer_kind kind;
	char title[CODEC_MAX_TITLE];
	char promo_code[CODEC_MAX_PROMO];
	int64_t valid_from_ms;
	int64_t valid_until_ms;
	int64_t created_ms;
	enum offer_state state;
	char rule[OFFER_LOG_RULE_MAX];	   /* "" none */
	char poi_id[OFFER_LOG_POI_ID_MAX]; /* the POI it was issued for, "" none */
	int64_t state_ms;		   /* when it entered state */
	/*
	 * When it first reached each stage (the car's clock for its events),
	 * 0: not, or not known (sent counted from a later stage: no time)
	 */
	int64_t stage_ms[OFFER_STATE_COUNT];
};

/* One rule's figures: how many of its offers reached each stage. */
struct offer_stats_row {
	char rule[OFFER_LOG_RULE_MAX]; /* "" none */
	int64_t n[OFFER_STATE_COUNT];
};

/* One rule's figures at one POI (offers issued for that POI). */
struct offer_stats_poi_row {
	char rule[OFFER_LOG_RULE_MAX]; /* "" none */
	char poi_id[OFFER_LOG_POI_ID_MAX];
	int64_t n[OFFER_STATE_COUNT];
};

/* What offer_log_redeem() found: the offer redeemed, or why not. */
struct offer_redeemed {
	char id[CODEC_MAX_ID];
	char vin[18];
	char rule[OFFER_LOG_RULE_MAX];
	enum offer_state state; /* OFFER_STATE_REDEEMED, or the state that refused it */
	int64_t state_ms;	/* redeemed (or entered that state) at */
	int64_t valid_until_ms;
};

struct offer_log;

/* The offers domain's migrations, for db_migrate() (generated from schema/). */
extern const struct db_migration offers_migrations[];
extern const size_t offers_migrations_count;

/* Prepares the statements on db (borrowed). Returns 0 and *ret, or -errno. */
int offer_log_new(struct db *db, struct offer_log **ret);

/* Accepts NULL. */
void offer_log_free(struct offer_log *l);

/*
 * Records an offer issued for o->vin, in state created, with no rule and no
 * POI. -EEXIST if the id exists.
 */
int offer_log_put(struct offer_log *l, const struct offer *o, int64_t created_ms);

/*
 * offer_log_put() for an offer a promotion rule issued: the offer keeps the
 * rule's name (offers.rule; "" or NULL for none) and the POI it is about
 * (offers.poi_id; "" or NULL for none), which its statistics group by.
 * -EINVAL for a name or id too long.
 */
int offer_log_put_rule(struct offer_log *l, const struct offer *o, const char *rule,
		       const char *poi_id, int64_t created_ms);

/*
 * The broker acknowledged the publish of offer id at now_ms: marks it sent
 * (and advances a created offer to sent), counting the stage once. Returns
 * 1 when marked now, 0 when it already was (a car's event counted it first:
 * only its sent time is recorded) or the offer is gone, or an error class.
 */
int offer_log_sent(struct offer_log *l, const char *id, int64_t now_ms);

/*
 * Records an event vin reported for one of its offers and advances the
 * offer's state. A redelivered event is stored once. Returns 0, or -ENOENT
 * (nothing stored) when no offer with that id was issued to vin.
 */
int offer_log_event(struct offer_log *l, const char *vin, const struct offer_event *ev,
		    int64_t received_ms);

/* How many offers vin was issued at or after since_ms, or an error class. */
int offer_log_count_since(struct offer_log *l, const char *vin, int64_t since_ms);

/*
 * Moves every offer still created, sent, delivered or shown whose validity
 * ended before now_ms to expired (final, like accepted). Returns how many,
 * or an error class.
 */
int offer_log_expire(struct offer_log *l, int64_t now_ms);

/*
 * Deletes the offers (their events and their promo codes) that ended:
 * final (accepted, dismissed, rejected, redeemed or expired) with a
 * validity that ended more than keep_ms before now_ms. Their counts stay in
 * offer_stats. Until then an expired offer's code is kept, so redeeming it
 * answers "validity ended" rather than "unknown code". Returns how
 * many offers, or an error class.
 */
int offer_log_purge(struct offer_log *l, int64_t now_ms, int64_t keep_ms);

/* How long the expiry job keeps ended offers (default OFFER_LOG_KEEP_DAYS_DEFAULT days). */
void offer_log_set_keep_ms(struct offer_log *l, int64_t keep_ms);

/*
 * The expiry job (a jobs_fn; arg is the struct offer_log): offer_log_expire()
 * then offer_log_purge() with the keep time set.
 */
int offer_log_expire_job(struct db *db, int64_t now_ms, void *arg);

/*
 * Redeems the offer with promo code code at now_ms, inside the caller's
 * transaction: one conditional UPDATE, so of two tills (or instances)
 * redeeming the same code exactly one wins. Returns 0 with *ret the offer
 * redeemed, or with *ret describing the offer that refused it: -EALREADY
 * (already redeemed, at ret->state_ms), -ETIME (expired, or its validity
 * ended at ret->valid_until_ms); -ENOENT (no offer has that code, *ret
 * untouched), -EINVAL (empty code), or an error class.
 */
int offer_log_redeem(struct offer_log *l, const char *code, int64_t now_ms,
		     struct offer_redeemed *ret);

/*
 * Per rule (sorted by name), how many of the offers created on UTC days
 * since_day..until_day (days since 1970-01-01, inclusive) reached each
 * stage, at most OFFER_LOG_STATS_MAX rules (*ret_more 1 when there were
 * more). *ret_rows is malloc'ed (NULL when *ret_n is 0).
 */
int offer_log_stats(struct offer_log *l, int64_t since_day, int64_t until_day,
		    struct offer_stats_row **ret_rows, size_t *ret_n, int *ret_more);

/*
 * offer_log_stats() per rule and POI, for the offers issued for a POI:
 * sorted by rule, then by sent (most first), then POI id; at most
 * OFFER_LOG_STATS_POI_MAX rows (*ret_more 1 when there were more).
 * *ret_rows is malloc'ed (NULL when *ret_n is 0).
 */
int offer_log_stats_poi(struct offer_log *l, int64_t since_day, int64_t until_day,
			struct offer_stats_poi_row **ret_rows, size_t *ret_n, int *ret_more);

/*
 * Offers issued to vin, oldest first, at most OFFER_LOG_LIST_MAX (*ret_more
 * 1 when there were more: the oldest are listed). *ret_rows is malloc'ed
 * (NULL when *ret_n is 0).
 */
int offer_log_list(struct offer_log *l, const char *vin, struct offer_row **ret_rows, size_t *ret_n,
		   int *ret_more);

#endif
