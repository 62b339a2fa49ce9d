/*
 * Offers received from the gateway: verification, redelivery suppression,
 * driver-safety gating and the one card on screen.
 *
 * A message on the offers topic is a SignedOffer. It is shown only if, in
 * this order: it decodes (else "malformed"), its key_id is the configured
 * offer-signing key's ("unknown key"), the ECDSA signature verifies over
 * exactly the Offer bytes ("bad signature"), those bytes decode as an Offer
 * ("malformed"), its vin is ours ("wrong vehicle"), its validity window
 * valid_until - valid_from is at most max_validity_ms ("validity window too
 * long (<n> s, at most <m> s)"), now is within [valid_from, valid_until]
 * ("not yet valid", "expired"), and the replay table has room ("replay table
 * full (<n> offers still valid)"). A rejected offer is
 * logged at warn ("offer <id or ?> rejected: <reason>"; the id is given only
 * once the signature verified) and reported as an Event REJECTED. An offer
 * whose id was already accepted (QoS 1 redelivery) is ignored; accepted ids
 * are kept with their expiry in offers.db and pruned once expired, never
 * before: while OFFERS_MAX_SEEN unexpired ids are kept, new offers are
 * refused rather than an id evicted (an evicted id would be shown again on
 * redelivery). The window bound keeps every id's stay in the table short.
 *
 * Driver safety: a card is on screen only while the speed is at or below
 * max_speed_kmh (an unknown speed, NaN, counts as moving) and, for an offer
 * bound to an area (Offer.area: a centre and a radius), while the car's last
 * known position (offers_set_position) is inside that circle; an unknown
 * position counts as outside. Otherwise the offer waits (persisted): it is
 * shown at the first offers_tick() where both hold, and a shown card is
 * taken off again when one stops holding (the car drives off or leaves the
 * area) and comes back when both hold again. An offer that expires is
 * dropped (waiting) or removed from the screen (shown). At most one offer is
 * current: a newer valid one replaces the card on screen or the waiting one.
 * The first showing logs "offer <id> shown" at info and reports an Event
 * SHOWN (once per offer, not again when it comes back).
 *
 * The driver's choice (offers_decide: ACCEPTED or DISMISSED, from the HMI)
 * applies to the offer on screen only; it is recorded in offers.db
 * (decided), reported as an Event and takes the card off for good.
 *
 * Time and speed are passed in by the caller (wall-clock ms, km/h), so tests
 * drive them directly. Single-threaded.
 */
#ifndef PITSTOP_OFFERS_H
#define PITSTOP_OFFERS_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct crypto_verifier;
struct display;
struct offers;

#define OFFERS_MAX_SEEN 10000 /* unexpired accepted ids remembered at most */
/* Default longest validity window (valid_until - valid_from): 30 days. */
#define OFFERS_MAX_VALIDITY_MS (30LL * 24 * 3600 * 1000)

struct offers_config {
	const char *db_path;		  /* offers.db, created if missing */
	const char *vin;		  /* ours */
	struct crypto_verifier *verifier; /* borrowed; NULL: every offer is "unknown key" */
	double max_speed_kmh;		  /* shown only at or below this speed */
	int64_t max_validity_ms;	  /* longer windows are refused; 0 = default */
};

/* Called for every Event to report (SHOWN, REJECTED); ev is borrowed. */
typedef void (*offers_event_fn)(const struct offer_event *ev, void *arg);

/* What offers_handle() did with a message. */
enum offers_result {
	OFFERS_SHOWN,	  /* on screen now */
	OFFERS_WAITING,	  /* valid; waits until the car is slow enough */
	OFFERS_DUPLICATE, /* id already accepted: ignored */
	OFFERS_REJECTED,  /* failed a check; logged and reported */
};

/* What is current, for status and tests. */
enum offers_state {
	OFFERS_NONE,
	OFFERS_STATE_WAITING,
	OFFERS_STATE_SHOWN,
};

/*
 * Opens offers.db, prunes expired ids and restores the current offer (a
 * shown card is written again, an expired one removed). display is borrowed
 * and must outlive the offers. Returns 0 and *ret_o, or -errno.
 */
int offers_new(const struct offers_config *conf, struct display *display, offers_event_fn fn,
	       void *arg, int64_t now_ms, struct offers **ret_o);

/*
 * Changes the display speed limit and the longest validity accepted (as in
 * offers_config; a configuration reload). Applies from the next offer or
 * tick on; offers accepted before keep their place.
 */
void offers_set_limits(struct offers *o, double max_speed_kmh, int64_t max_validity_ms);

/* Closes the database. Accepts NULL. */
void offers_free(struct offers *o);

/*
 * Handles one message from the offers topic at wall time now_ms with the
 * current speed (km/h, NaN if unknown). Returns an enum offers_result, or
 * -errno if a valid offer could not be stored in offers.db: it is then
 * current in memory only (shown or waiting), not remembered across a
 * restart, and a redelivery of it is handled again.
 */
int offers_handle(struct offers *o, const uint8_t *payload, size_t len, int64_t now_ms,
		  double speed_kmh);

/*
 * Periodic work: shows a waiting offer when slow enough, drops or removes
 * expired ones, prunes expired ids. Call every few seconds at most.
 */
void offers_tick(struct offers *o, int64_t now_ms, double speed_kmh);

/*
 * The car's position for the area rule, used from the next offers_handle()
 * or offers_tick() on: known is 0 when there is no fresh fix.
 */
void offers_set_position(struct offers *o, int known, double lat_deg, double lon_deg);

/*
 * Returns 1 if an offer may be shown at this position: it has no area, or
 * the position is known and within area_radius_m of the area's centre
 * (great-circle distance on a sphere of radius 6371 km); else 0.
 */
int offers_in_area(const struct offer *off, int known, double lat_deg, double lon_deg);

/*
 * Records the driver's choice (OFFER_ACTION_ACCEPTED or _DISMISSED) for the
 * offer id at now_ms: stored in offers.db, reported as an Event, the card
 * removed and the offer no longer current. Returns 0, -ENOENT if id is not
 * the offer on screen, -EINVAL for another action, or -errno if it could not
 * be stored (the card stays).
 */
int offers_decide(struct offers *o, const char *id, enum offer_action action, int64_t now_ms);

/*
 * Reports again, as Events, the driver's choices of offers not yet expired
 * at now_ms, newest first, at most max of them. For the start-up: an event
 * held in memory while offline is lost when the agent stops; the gateway
 * ignores a repeated event (same offer, action and time). Returns the number
 * reported, or -errno.
 */
int offers_resend_decisions(struct offers *o, int64_t now_ms, int max);

/* The current offer's state, and its id into ret_id (if not NULL). */
enum offers_state offers_current(const struct offers *o, char *ret_id, size_t idlen);

#endif
