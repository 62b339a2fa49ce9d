/*
 * The head unit's HMI interface: a Unix stream socket with a line protocol
 * (docs/hmi.md), through which a screen program (agent/screen/, or the car
 * maker's own HMI) learns which offer may be shown and answers with the
 * driver's choice. The agent decides what may be shown (speed, expiry,
 * area: agent/offers.c); this module only tells every connected client and
 * hands ACCEPT/DISMISS back to its owner.
 *
 * The HMI is a display (struct display, display.h): offers.c's show/clear
 * become "OFFER <json>" / "CLEAR <id>" lines to every client, and a client
 * that connects later gets the offer on screen at once.
 *
 * Bounded: at most max_clients connections (one more is told "ERR too many
 * clients" and closed), a line from a client is at most HMI_MAX_LINE bytes
 * (a longer one closes it), and at most HMI_MAX_OUTPUT bytes wait to be
 * written to one client (a client that falls that far behind is dropped).
 * Everything runs on the loop thread; sockets are non-blocking.
 */
#ifndef PITSTOP_HMI_H
#define PITSTOP_HMI_H

#include <stddef.h>

#include "codec.h"

struct display;
struct hmi;
struct loop;

#define HMI_MAX_LINE 256	   /* bytes of one client line, newline included */
#define HMI_MAX_OUTPUT (64 * 1024) /* bytes queued for one client at most */
#define HMI_MAX_CLIENTS 16	   /* the largest max_clients accepted */

/* What a client line asks. */
enum hmi_verb {
	HMI_PING,    /* "PING": answered "PONG" */
	HMI_ACCEPT,  /* "ACCEPT <id>" */
	HMI_DISMISS, /* "DISMISS <id>" */
};

struct hmi_command {
	enum hmi_verb verb;
	char id[CODEC_MAX_ID]; /* "" for PING */
};

/*
 * Parses one line (without its newline; a trailing '\r' is allowed) of len
 * bytes. Returns 0 and *ret, or -EINVAL with a short reason in *ret_why
 * (a static string): unknown verb, missing or bad id (1 to CODEC_MAX_ID - 1
 * printable ASCII characters, no spaces), extra words.
 */
int hmi_parse_line(const char *line, size_t len, struct hmi_command *ret, const char **ret_why);

/*
 * Writes o as the JSON object of an OFFER line into buf (no newline).
 * Returns the length, or -ENOSPC if it does not fit.
 */
int hmi_offer_json(const struct offer *o, int64_t shown_at_ms, char *buf, size_t len);

/*
 * Called for ACCEPT/DISMISS with the id (borrowed) and the time; returns 0
 * if recorded, or a negative errno (-ENOENT: that offer is not on screen).
 */
typedef int (*hmi_decision_fn)(const char *id, enum offer_action action, void *arg);

/*
 * Listens on path (a stale socket there is replaced; anything else there is
 * an error), mode 0660, at most max_clients (1..HMI_MAX_CLIENTS) clients.
 * Returns 0 and *ret_h, or -errno.
 */
int hmi_new(struct loop *loop, const char *path, int max_clients, hmi_decision_fn fn, void *arg,
	    struct hmi **ret_h);

/* The HMI as a display (borrowed: lives as long as h). */
struct display *hmi_display(struct hmi *h);

/* The number of connected clients. */
int hmi_clients(const struct hmi *h);

/* Closes every client and the socket, removes its path. Accepts NULL. */
void hmi_free(struct hmi *h);

#endif
