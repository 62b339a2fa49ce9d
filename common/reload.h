/*
 * Re-reading a daemon's configuration file at run time (SIGHUP), shared by
 * the agent and the gateway. The daemon loads the file into a fresh struct
 * with its usual loader: config_load() is all or nothing, so an invalid file
 * leaves the running configuration as it was (mosquitto's rule). Then, with
 * the daemon's list of the options it can apply while running:
 *
 *   reload_diff()  tells, option by option, what differs, and whether it
 *                  is reloadable or needs a restart;
 *   reload_take()  moves the reloadable values into the running struct
 *                  (the other options keep what the daemon runs with, so a
 *                  restart-only change is reported again at the next
 *                  reload until the daemon is restarted);
 *   reload_apply() both, logging each change: info for what applies now
 *                  (with old and new value), warn for what needs a restart
 *                  (the name only: a value may hold a password, as a
 *                  PostgreSQL URL can).
 *
 * The daemon then acts on the values it took (log level, rule thresholds).
 */
#ifndef PITSTOP_RELOAD_H
#define PITSTOP_RELOAD_H

#include <stddef.h>

#include "config.h"

/* 1 when option o has the same value in the structs a and b, else 0. */
int reload_same(const struct config_option *o, const void *a, const void *b);

/* 1 when name is in list (NULL-terminated; NULL = empty), else 0. */
int reload_listed(const char *const *list, const char *name);

/* Writes o's value in conf into buf as config text ("" for an unset string). */
void reload_format(const struct config_option *o, const void *conf, char *buf, size_t len);

/* Called by reload_diff() for each option whose value differs. */
typedef void (*reload_fn)(const struct config_option *o, int reloadable, const void *running,
			  const void *fresh, void *arg);

/*
 * Calls fn (when not NULL) for every option of table whose value differs
 * between running and fresh, in table order; reloadable is 1 for those
 * named in reloadable. Returns the number of differing options that need a
 * restart.
 */
int reload_diff(const struct config_option *table, const void *running, const void *fresh,
		const char *const *reloadable, reload_fn fn, void *arg);

/*
 * Swaps the value of every option named in reloadable between running and
 * fresh: strings change owner, so fresh then holds the old ones and
 * config_free() of fresh frees them. Returns the number of options whose
 * value changed.
 */
int reload_take(const struct config_option *table, void *running, void *fresh,
		const char *const *reloadable);

/*
 * reload_diff() with a logging fn ("reload: low_fuel_pct 15 -> 20" at info,
 * "reload: broker_uri changed; it takes effect only after a restart" at
 * warn), then reload_take(). Returns the number of options that changed and
 * need a restart; *ret_applied (may be NULL) gets the number applied.
 */
int reload_apply(const struct config_option *table, void *running, void *fresh,
		 const char *const *reloadable, int *ret_applied);

#endif
