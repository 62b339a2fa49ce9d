/*
 * The in-car screen, as far as offers are concerned: show one offer card or
 * show nothing. A display is anything behind struct display_ops: the file
 * display writes the card as text to a file (display_file_new), which a demo
 * or a kiosk UI can watch; the HMI socket (hmi.h) tells the head unit's
 * screen program; display_tee_new() shows on two displays at once.
 *
 * File format, written atomically (temporary file + fsync + rename), mode
 * 0600 whatever the umask (it holds promo codes):
 *   offer_id: <id>
 *   kind: refuel|service|inspection|loyalty|test_drive
 *   title: <title>
 *   body: <body>
 *   promo_code: <code>
 *   valid_until: <ISO 8601 UTC, e.g. 2026-11-23T18:00:00Z>
 *   shown_at_ms: <unix ms when written>
 * Line breaks inside text fields are written as spaces, so every field stays
 * on its line. Clearing removes the file.
 */
#ifndef PITSTOP_DISPLAY_H
#define PITSTOP_DISPLAY_H

#include <stdint.h>

#include "codec.h"

struct display;

struct display_ops {
	int (*show)(struct display *d, const struct offer *o, int64_t shown_at_ms);
	int (*clear)(struct display *d);
	void (*free)(struct display *d);
};

/* The common head of every display. */
struct display {
	const struct display_ops *ops;
};

/* A display writing to path (copied). Returns 0 and *ret_d, or -errno. */
int display_file_new(const char *path, struct display **ret_d);

/* Shows o (replacing any card on screen). Returns 0 or -errno. */
int display_show(struct display *d, const struct offer *o, int64_t shown_at_ms);

/* Removes the card; nothing on screen is not an error. Returns 0 or -errno. */
int display_clear(struct display *d);

/* Accepts NULL. */
void display_free(struct display *d);

/*
 * A display that shows on a and on b (both borrowed: they must outlive it).
 * show and clear go to both; the result is a's if it failed, else b's.
 * Returns 0 and *ret_d, or -ENOMEM.
 */
int display_tee_new(struct display *a, struct display *b, struct display **ret_d);

/* "refuel", "service", ... ("unknown" for anything else). Never NULL. */
const char *display_kind_name(enum offer_kind kind);

/* Formats unix ms as "YYYY-MM-DDTHH:MM:SSZ" into buf (>= 21 bytes). */
void display_format_time(int64_t unix_ms, char *buf, size_t len);

#endif
