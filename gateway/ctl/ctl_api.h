/*
 * pitstopctl's commands that change business data (users, fleets) and read
 * the audit trail: they go through the gateway's HTTP API, as chronyc goes
 * through chronyd, so the API's checks and audit apply to them exactly as to
 * the console. ctl_api.c.
 *
 * Which gateway: --api URL (with --token TOKEN or $PITSTOP_TOKEN), else the
 * local socket api_socket of the gateway's config (--config, default
 * /etc/pitstop/gateway.conf when it exists), where root and the gateway's
 * own user are the local operator and need no token.
 */
#ifndef PITSTOP_CTL_API_H
#define PITSTOP_CTL_API_H

struct ctl_api_opts {
	const char *config_path; /* NULL: /etc/pitstop/gateway.conf if present, else defaults */
	const char *api_url;	 /* NULL: the config's api_socket */
	const char *token;	 /* NULL: $PITSTOP_TOKEN, or none (the local socket) */
	int json;
};

/*
 * Runs "user ...", "fleet ...", "audit ...", "service record|override|import"
 * or "telemetry import" (argv[0] is the command).
 * Returns the exit code: 0, 1 (the API refused, or is unreachable: said on
 * stderr with the API's own message), 2 (usage).
 */
int ctl_api_command(const struct ctl_api_opts *o, int argc, char **argv);

/* Prints "pitstopctl: <message>" on stderr and returns code (an exit code). */
int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The usage lines of these commands, for pitstopctl --help. */
extern const char ctl_api_usage[];

#endif
