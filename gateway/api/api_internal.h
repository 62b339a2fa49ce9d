/*
 * Inside the API: what the HTTP plumbing (http.c) and the route handlers
 * (routes*.c) share. Not for other modules.
 */
#ifndef PITSTOP_API_INTERNAL_H
#define PITSTOP_API_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "accounts.h"
#include "api.h"

struct MHD_Connection;
struct MHD_Daemon;
struct telemetry_vehicle;

/* What a handler answers: a status and a JSON body (owned; NULL: none). */
struct api_reply {
	unsigned status;
	json_t *body;
	char set_cookie[256]; /* "" none */
};

/* Work a request hands to the hashing worker (accounts' pure functions). */
enum api_job_kind {
	API_JOB_HASH,	 /* accounts_password_hash(password, salt, iterations) */
	API_JOB_PREPARE, /* accounts_password_prepare(password, iterations) */
};

struct api_job {
	enum api_job_kind kind;
	char password[ACCOUNTS_PASSWORD_MAX + 1];
	uint32_t iterations;
	uint8_t salt[ACCOUNTS_SALT_LEN];
	/* out */
	int result;
	uint8_t hash[ACCOUNTS_HASH_LEN];
	struct accounts_secret secret;
	struct api_job *next;
};

struct api_req;
/* Runs on the loop when a request's job is done; fills the reply. */
typedef void (*api_cont_fn)(struct api_req *req, struct api_reply *rep);

#define API_PATH_ARGS_MAX 3

struct api_req {
	struct api *api;
	struct MHD_Connection *conn;
	char method[8];
	char *path; /* owned; without the query */
	char *body; /* owned; NUL-terminated */
	size_t body_len;
	int body_too_large;
	json_t *json;  /* the parsed body; NULL when none */
	int local;     /* the unix socket, from root or the gateway's own user */
	char peer[48]; /* the client's IP address; "" on the unix socket */
	int authed;
	int by_cookie; /* authenticated by the session cookie, not the header */
	struct accounts_principal who;
	const char *args[API_PATH_ARGS_MAX]; /* path captures, into argbuf */
	size_t nargs;
	char argbuf[512];
	/* A request waiting for the worker (suspended), then done. */
	int state;
	struct api_job job;
	struct accounts_login login; /* POST /login between its steps */
	api_cont_fn cont;
	void *cont_arg;
	struct api_reply reply;
	struct sse_client *sse; /* an event stream: owned by http.c */
};

enum { API_REQ_NEW, API_REQ_WAITING, API_REQ_DONE };

/* A handler returns 0 with rep filled, or API_DEFERRED after api_defer(). */
#define API_DEFERRED 1

/* ---- replies (routes use these) ---------------------------------------- */

/* Sets an error reply: {"error": {"code": code, "message": printf(fmt)}}. Returns 0. */
int api_error(struct api_reply *rep, unsigned status, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Sets a JSON reply (body owned by rep). Returns 0. */
int api_ok(struct api_reply *rep, unsigned status, json_t *body);

/* The reply for a domain error class (-ENOENT 404, -EEXIST 409, ...). */
int api_error_errno(struct api_reply *rep, int err, const char *what);

/* A query argument, or NULL. */
const char *api_query(struct api_req *req, const char *name);

/*
 * Hands req->job to the worker with cont to run on the loop when done.
 * Returns API_DEFERRED, or fills rep with 503 when the queue is full.
 */
int api_defer(struct api_req *req, struct api_reply *rep, api_cont_fn cont);

/* ---- failed logins ----------------------------------------------------- */

/*
 * Logins are throttled per client address: after API_LOGIN_FAILS_MAX
 * failures within API_LOGIN_WINDOW_MS, further attempts from that address
 * get 429 until the window has passed since its last failure. The table
 * holds API_LOGIN_PEERS_MAX addresses (the oldest entry is reused).
 */
#define API_LOGIN_FAILS_MAX 10
#define API_LOGIN_WINDOW_MS (15 * 60 * 1000LL)
#define API_LOGIN_PEERS_MAX 1024

/* Seconds until peer may try again (0: it may now). */
int64_t api_login_wait_s(struct api *api, const char *peer, int64_t now_ms);
void api_login_failed(struct api *api, const char *peer, int64_t now_ms);
void api_login_succeeded(struct api *api, const char *peer);

/* ---- event streams ----------------------------------------------------- */

/* Opens an event stream on req (GET /api/v1/events). Returns 0 or fills rep. */
int api_sse_open(struct api_req *req, struct api_reply *rep);

/* ---- routes (routes.c) ------------------------------------------------- */

/*
 * Runs the route for req (authentication, authorization, handler). Returns
 * 0 with rep filled, API_DEFERRED, or API_SSE when the handler opened an
 * event stream (the plumbing then answers with the stream).
 */
#define API_SSE 2
int api_route(struct api_req *req, struct api_reply *rep);

/* The routes table, for `pitstop-gateway --routes` and the OpenAPI test. */
struct api_route_info {
	const char *method;
	const char *pattern;
};
size_t api_routes(const struct api_route_info **ret);

/*
 * Whether the stream's principal may see vin whose fleet is fleet_id (0:
 * none): the check the SSE fan-out runs per client without the database.
 */
int api_principal_sees_fleet(const struct accounts_principal *p, int64_t fleet_id);

/* Shared state the routes use. */
struct api_shared {
	struct loop *loop;
	struct db *db;
	struct telemetry *telemetry;
	struct offer_log *offers;
	struct accounts *accounts;
	struct poi_db *poi;	    /* borrowed */
	struct rules *const *rules; /* borrowed: the gateway's current engine; NULL: none */
	int64_t session_ttl_ms;
	int secure_cookie;		     /* HTTPS: the cookie gets Secure */
	const struct latency *offer_latency; /* borrowed, may be NULL */
};
struct api_shared *api_shared(struct api *api);

/* ---- routes (routes.c, and one routes_<domain>.c per domain) ----------- */

#define R_PUBLIC 1u   /* no authentication */
#define R_OPERATOR 2u /* the operator role only */
#define R_PARTNER 4u  /* the partner role may call it (and nothing without it) */

typedef int (*handler_fn)(struct api_req *req, struct api_reply *rep);

struct route {
	const char *method;
	const char *pattern; /* "{x}" matches one path segment */
	unsigned flags;
	handler_fn fn;
};

/* A domain's routes, looked up after routes.c's own. */
struct route_table {
	const struct route *routes;
	size_t n;
};

#define ROUTE_TABLE(name, array) \
	const struct route_table name = { array, sizeof(array) / sizeof((array)[0]) }

extern const struct route_table api_routes_poi;	   /* routes_poi.c */
extern const struct route_table api_routes_promo;  /* routes_promo.c */
extern const struct route_table api_routes_offers; /* routes_offers.c */

/* The principal accounts functions take as actor: NULL is the local operator. */
const struct accounts_principal *api_actor(struct api_req *req);

/*
 * ISO 8601: 2026-12-01, 2026-12-01T12:00:00Z, ...T12:00:00.250+01:00, or a
 * unix time in ms. Returns 0 or -EINVAL.
 */
int api_parse_time(const char *s, int64_t *ret_ms);

/* A time argument: 0 (and *ret untouched) when absent, 1 when set, or -1 with a 400 filled. */
int api_arg_time(struct api_req *req, struct api_reply *rep, const char *name, int64_t *ret);

/* An integer argument in [min, max], def when absent. Returns 0 or -1 with a 400 filled. */
int api_arg_int(struct api_req *req, struct api_reply *rep, const char *name, long min, long max,
		long def, long *ret);

/* A boolean argument: -1 absent, 0/1, or -2 with a 400 filled. */
int api_arg_bool(struct api_req *req, struct api_reply *rep, const char *name);

/* The {id} of an import path (args[0], an integer > 0): 0, or -1 with a 404 filled. */
int api_import_id(struct api_req *req, struct api_reply *rep, int64_t *ret);

/* A string member of the JSON body, or NULL. */
const char *api_body_str(struct api_req *req, const char *key);

/* A telemetry domain error for vin: unknown is 404 like invisible, the rest by class. */
int api_vehicle_error(struct api_reply *rep, int err, const char *vin, const char *what);

/*
 * The {vin} of the path (args[0]), when the caller may see it: 0, or -1 with
 * a reply filled (404 for an unknown, malformed or invisible VIN alike).
 */
int api_visible_vin(struct api_req *req, struct api_reply *rep, const char **ret_vin);

#endif
