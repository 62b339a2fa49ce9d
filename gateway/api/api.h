/*
 * The gateway's HTTP API (/api/v1, JSON) and the web console's files, in
 * the gateway's own process (docs/console.md, docs/openapi.yaml).
 *
 * Threads: libmicrohttpd runs without a thread of its own. Each listening
 * daemon (the TCP address, and the local unix socket pitstopctl uses) is
 * created in external-epoll mode and its epoll fd is watched by the
 * gateway's loop, which calls MHD_run() when it is readable and when MHD's
 * timeout is due. Every request handler therefore runs on the loop thread,
 * like ingest, and uses the domains directly: no locks, no second copy of
 * any state. The one slow piece, password hashing (PBKDF2, ~0.3 s), runs on
 * a worker thread fed through a bounded queue; the request is suspended
 * meanwhile and resumed through a loop waker. See docs/console.md for why
 * this and not a thread per request.
 *
 * Bounds: API_CONN_MAX connections per daemon, API_BODY_MAX bytes per
 * request body, API_HASH_QUEUE_MAX pending password hashes, API_SSE_MAX
 * event streams of API_SSE_BUF bytes each, connection timeout
 * API_CONN_TIMEOUT_S.
 */
#ifndef PITSTOP_API_H
#define PITSTOP_API_H

#include <stddef.h>
#include <stdint.h>

#define API_CONN_MAX 256
#define API_CONN_PER_IP_MAX 64
#define API_BODY_MAX (256 * 1024)
#define API_HASH_QUEUE_MAX 8
#define API_SSE_MAX 64
#define API_SSE_BUF (64 * 1024)
#define API_CONN_TIMEOUT_S 30

struct loop;
struct db;
struct telemetry;
struct offer_log;
struct accounts;
struct telemetry_vehicle;
struct latency;
struct rules;
struct poi_db;

struct api_params {
	struct loop *loop;
	struct db *db;
	struct telemetry *telemetry;
	struct offer_log *offers;
	struct accounts *accounts;
	struct poi_db *poi; /* points of interest (poi.h) */
	const char *instance_id;
	const char *listen;	 /* "host:port" (port 0: any free one), NULL or "": none */
	const char *socket_path; /* unix socket, NULL or "": none */
	const char *cert_file;	 /* HTTPS on listen when set (with key_file) */
	const char *key_file;
	int allow_plaintext; /* 1: plain HTTP also on a non-loopback address */
	const char *console_dir;
	const char *javascript_dir;
	const char *tiles_dir; /* NULL: no /tiles */
	int64_t session_ttl_ms;
	/* This instance's offer latency (ingest.h), in GET /api/v1/counters; NULL: none */
	const struct latency *offer_latency;
	/* The gateway's promotion engine (rules.h), swapped on reload: read through it */
	struct rules *const *rules;
};

struct api;

/*
 * Opens the listening sockets and starts serving from the loop. Every
 * failure is logged with its cause (which address, which file, why).
 * Returns 0 and *ret, or -errno.
 */
int api_new(const struct api_params *p, struct api **ret);

/* Closes every connection and the sockets. Accepts NULL. */
void api_free(struct api *api);

/* The base URL of the TCP listener ("" when none), e.g. http://127.0.0.1:8080/ */
const char *api_url(const struct api *api);

/*
 * A vehicle's latest state changed (ingest, after its commit): sent to the
 * event streams of the clients that may see it. Cheap when none is open.
 */
void api_vehicle_changed(struct api *api, const struct telemetry_vehicle *v);

#endif
