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

#include <curl/curl.h>
#include <jansson.h>

#include "accounts.h"

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

/* A connection to the gateway's API (one libcurl handle). */
struct ctl_client {
	CURL *curl;
	char base[512];
	char socket_path[256];
	char auth[ACCOUNTS_TOKEN_LEN + 64];
	char where[600]; /* for messages: the socket or the URL */
	char *ca_file;
};

/* Finds the gateway: --api, else the config's api_socket. Returns 0 or an exit code. */
int ctl_client_open(const struct ctl_api_opts *o, struct ctl_client *c);

/* Accepts a client whose open failed. */
void ctl_client_close(struct ctl_client *c);

/*
 * One request. body (borrowed) is sent as JSON when not NULL. On an HTTP
 * answer returns 0 with *status and *reply (parsed JSON or NULL); on a
 * transport failure prints why and returns 1.
 */
int ctl_call(struct ctl_client *c, const char *method, const char *path, json_t *body, long *status,
	     json_t **reply);

/*
 * One request that must answer `want` (body is consumed); prints the reply
 * as JSON with o->json. Returns 0 with *ret (NULL: not wanted) or an exit
 * code, with the API's own message on stderr.
 */
int ctl_run(struct ctl_client *c, const struct ctl_api_opts *o, const char *what,
	    const char *method, const char *path, json_t *body, long want, json_t **ret);

/*
 * The error and progress callbacks of a file reader (service_csv_read(),
 * poi_file_read()) for pitstopctl: each error line on stderr, and
 * "FILE: N rows checked" (arg is the file's name).
 */
void ctl_file_error(const char *msg, void *arg);
void ctl_file_progress(size_t rows, void *arg);

/*
 * An import over the API, as the service and POI imports run it: POST
 * begin (consumed) to base, which answers 201 with the import's id; then
 * the n rows (row(i, arg) builds row i's JSON) in chunks of at most
 * chunk_max rows and well inside the API's body limit to base/ID/rows, with
 * a progress bar on stderr when it is a terminal (else "FILE: N/M rows
 * sent" per chunk); then POST base/ID/commit. A failure on the way leaves
 * the import uncommitted, so nothing is seen. Returns 0 with *ret_id, or
 * an exit code (said on stderr).
 */
int ctl_import_send(struct ctl_client *c, const struct ctl_api_opts *o, const char *file,
		    const char *base, json_t *begin, size_t n, size_t chunk_max,
		    json_t *(*row)(size_t i, void *arg), void *arg, long long *ret_id);

/* Prints v as JSON on stdout. Returns 0. */
int ctl_print_json(json_t *v);

/*
 * The commands of issue 11, each in its own file, run with an open client
 * (argv[0] is the command): "poi ..." (ctl_poi.c), "offer list|stats|redeem|
 * suppressed ..." (ctl_offer.c), "promo ..." and "vehicle set ..."
 * (ctl_promo.c). Return an exit code.
 */
int ctl_poi_command(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv);
int ctl_offer_command(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv);
int ctl_promo_command(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv);
extern const char ctl_poi_usage[], ctl_offer_usage[], ctl_promo_usage[];

/*
 * The one option "--vin VIN" of command what (argv[2..argc)): 0 and *ret_vin
 * (borrowed from argv), or exit code 2 with the reason on stderr.
 */
int ctl_vin_arg(int argc, char **argv, const char *what, const char **ret_vin);

/*
 * GET base with the options "--NAME VALUE" of command what
 * (argv[first..argc)), each NAME one of names (NULL-terminated), as its
 * query arguments NAME=VALUE (VALUE escaped); it must answer 200 (ctl_run():
 * printed as JSON with o->json). Returns 0 with *ret, or an exit code with
 * the reason on stderr: 2 for an unknown option, one without a value, or
 * arguments too long.
 */
int ctl_get_opts(struct ctl_client *c, const struct ctl_api_opts *o, const char *what,
		 const char *base, int argc, char **argv, int first, const char *const *names,
		 json_t **ret);

/* The text of member key of o, "" when o has none (or not a string). */
const char *ctl_str(json_t *o, const char *key);

/* Prints "pitstopctl: <message>" on stderr and returns code (an exit code). */
int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The usage lines of these commands, for pitstopctl --help. */
extern const char ctl_api_usage[];

#endif
