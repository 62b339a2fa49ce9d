/*
 * systemd readiness and status without libsystemd: one datagram to the unix
 * socket named by $NOTIFY_SOCKET (sd_notify(3)'s protocol, as chrony does it).
 * The car carries no libsystemd, and a daemon started outside systemd (the
 * tests, the demo) has no $NOTIFY_SOCKET, so every call is then a no-op.
 */
#ifndef PITSTOP_SDNOTIFY_H
#define PITSTOP_SDNOTIFY_H

/*
 * Sends state (newline-separated assignments such as "READY=1\nSTATUS=...",
 * or "WATCHDOG=1") to the service manager. Returns 1 if sent, 0 if
 * $NOTIFY_SOCKET is unset, negative errno on failure (an unusable socket
 * name: -EINVAL). Never logs; safe to call from the loop thread at any time.
 */
int sdnotify_send(const char *state);

#endif
