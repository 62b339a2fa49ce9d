/*
 * The offers issued to each car and what the car said about them: part of
 * the offers domain, which owns the tables offers, offer_events and
 * offer_episodes (gateway/offers/schema/; episodes belong to rules.c). No
 * other module touches them.
 *
 * An offer's state only advances: sent -> shown -> accepted, dismissed,
 * rejected or (a scheduled job, once its validity ended) expired. The order is a rank column compared inside the UPDATE, so a
 * late or redelivered event never undoes a newer one, on either backend
 * and with several gateway instances. Functions return 0 (or a count) or a
 * negative error class from db.h; db logged the failure.
 */
#ifndef PITSTOP_OFFER_LOG_H
#define PITSTOP_OFFER_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "db.h"

/* Offers one listing returns at most. */
#define OFFER_LOG_LIST_MAX 10000

/* Offer states, in the order they may advance. */
enum offer_state {
	OFFER_STATE_SENT,
	OFFER_STATE_SHOWN,
	OFFER_STATE_ACCEPTED,
	OFFER_STATE_DISMISSED,
	OFFER_STATE_REJECTED,
	OFFER_STATE_EXPIRED, /* its validity ended while it was sent or shown */
};

/* The scheduled job that expires offers (jobs.h), and how often it runs. */
#define OFFER_LOG_EXPIRE_JOB "offers_expire"
#define OFFER_LOG_EXPIRE_PERIOD_MS 60000

/* "sent", "shown", ...; never NULL ("?" when out of range). */
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
};

struct offer_log;

/* The offers domain's migrations, for db_migrate() (generated from schema/). */
extern const struct db_migration offers_migrations[];
extern const size_t offers_migrations_count;

/* Prepares the statements on db (borrowed). Returns 0 and *ret, or -errno. */
int offer_log_new(struct db *db, struct offer_log **ret);

/* Accepts NULL. */
void offer_log_free(struct offer_log *l);

/* Records an offer issued for o->vin, in state sent. -EEXIST if the id exists. */
int offer_log_put(struct offer_log *l, const struct offer *o, int64_t created_ms);

/*
 * offer_log_put() for an offer a promotion rule issued: the offer keeps the
 * rule's name (offers.rule; "" for none), which its statistics group by.
 */
int offer_log_put_rule(struct offer_log *l, const struct offer *o, const char *rule,
		       int64_t created_ms);

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
 * Moves every offer still sent or shown whose validity ended before now_ms
 * to expired (final, like accepted). Returns how many, or an error class.
 */
int offer_log_expire(struct offer_log *l, int64_t now_ms);

/* offer_log_expire() as a jobs_fn; arg is the struct offer_log. */
int offer_log_expire_job(struct db *db, int64_t now_ms, void *arg);

/*
 * Offers issued to vin, oldest first, at most OFFER_LOG_LIST_MAX (*ret_more
 * 1 when there were more: the oldest are listed). *ret_rows is malloc'ed
 * (NULL when *ret_n is 0).
 */
int offer_log_list(struct offer_log *l, const char *vin, struct offer_row **ret_rows, size_t *ret_n,
		   int *ret_more);

#endif
