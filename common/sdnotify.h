/*
 * systemd readiness, status and watchdog without libsystemd: one datagram to
 * the unix socket named by $NOTIFY_SOCKET (sd_notify(3)'s protocol, as
 * chrony does it). The car carries no libsystemd, and a daemon started
 * outside systemd (the tests, the demo) has no $NOTIFY_SOCKET, so every call
 * is then a no-op.
 *
 * The watchdog pings come from a loop timer, never from a thread of their
 * own: WATCHDOG=1 then means "the event loop still turns", and a loop stuck
 * in a callback stops them, so systemd (WatchdogSec= in the unit) kills and
 * restarts the daemon.
 */
#ifndef PITSTOP_SDNOTIFY_H
#define PITSTOP_SDNOTIFY_H

#include <stdint.h>

struct loop;

/*
 * Sends state (newline-separated assignments such as "READY=1\nSTATUS=...",
 * or "WATCHDOG=1") to the service manager. Returns 1 if sent, 0 if
 * $NOTIFY_SOCKET is unset, negative errno on failure (an unusable socket
 * name: -EINVAL). Never logs; safe to call from the loop thread at any time.
 */
int sdnotify_send(const char *state);

/*
 * Sends "STATUS=<text>" unless text is what the last call sent (so callers
 * may call it whenever something might have changed). Returns 1 if sent, 0
 * if unchanged or $NOTIFY_SOCKET is unset, negative errno on failure (the
 * text is then sent again next time). Longer texts are cut to
 * SDNOTIFY_STATUS_MAX - 1 bytes. Loop thread only (it remembers the last
 * text in a static buffer: one service per process).
 */
#define SDNOTIFY_STATUS_MAX 256
int sdnotify_status(const char *text);

/*
 * The watchdog interval the service manager asked for (sd_watchdog_enabled(3)):
 * $WATCHDOG_USEC, when $WATCHDOG_PID is unset or is this process's pid.
 * Returns 1 with *ret_usec set, 0 when no watchdog is asked for (unset, or
 * meant for another process), -EINVAL when a variable is not a positive
 * number. Never logs.
 */
int sdnotify_watchdog_usec(uint64_t *ret_usec);

struct sdnotify_watchdog;

/*
 * Starts the watchdog pings on loop: WATCHDOG=1 at once and then every half
 * of the interval from sdnotify_watchdog_usec(), from a loop timer. Returns
 * 1 and *ret_wd (free with sdnotify_watchdog_free()), 0 and *ret_wd NULL
 * when no watchdog is asked for, or a negative errno (-EINVAL: a bad
 * $WATCHDOG_USEC; -ENOMEM). *ret_period_ms, when not NULL, gets the ping
 * period (0 without a watchdog).
 */
int sdnotify_watchdog_start(struct loop *loop, struct sdnotify_watchdog **ret_wd,
			    uint64_t *ret_period_ms);

/* Stops the pings and frees. Accepts NULL. */
void sdnotify_watchdog_free(struct sdnotify_watchdog *wd);

#endif
