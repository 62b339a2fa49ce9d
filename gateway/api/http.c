/*
 * The API's HTTP plumbing: libmicrohttpd daemons driven from the gateway's
 * loop (api.h says why), request bodies, replies, the console's static
 * files, event streams and the password-hashing worker.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api_internal.h"
#include "log.h"
#include "loop.h"
#include "telemetry.h"
#include "unixsock.h"
#include "views.h"

#define SSE_KEEPALIVE_MS 15000
#define CSP                                                                            \
	"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; " \
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

struct sse_client {
	struct api *api;
	struct MHD_Connection *conn;
	struct api_req *req;	       /* NULL once the request is freed (dead) */
	struct accounts_principal who; /* copied at open */
	int local;
	struct sse_client *next;
	char buf[API_SSE_BUF];
	size_t len;
	int suspended;
	int closing;
	int dead; /* the request is gone: never touch conn again */
};

struct login_fail {
	char peer[48];
	int fails;
	int64_t last_ms;
};

struct listener {
	struct api *api;
	struct MHD_Daemon *mhd;
	int epfd;
	int timer;
	int kicked; /* timer is a 0 ms run after a resume */
	int local;  /* the unix socket */
};

struct api {
	struct api_shared sh;
	struct listener tcp, unix_sock;
	char url[200];
	char *console_dir, *javascript_dir, *tiles_dir, *socket_path;
	/* event streams */
	struct sse_client *sse;
	size_t nsse;
	int keepalive_timer;
	/* the hashing worker: jobs in, done out, both bounded by API_HASH_QUEUE_MAX */
	pthread_t worker;
	int worker_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct api_req *todo[API_HASH_QUEUE_MAX];
	size_t ntodo;
	struct api_req *done[API_HASH_QUEUE_MAX];
	size_t ndone;
	size_t inflight; /* queued or running or done-not-collected */
	int stopping;
	struct loop_waker *waker;
	/* failed logins per client address, API_LOGIN_PEERS_MAX of them */
	struct login_fail *fails;
};

struct api_shared *api_shared(struct api *api)
{
	return &api->sh;
}

const char *api_url(const struct api *api)
{
	return api->url;
}

static void kick(struct api *api);

/* ---- replies ----------------------------------------------------------- */

int api_ok(struct api_reply *rep, unsigned status, json_t *body)
{
	rep->status = status;
	json_decref(rep->body);
	rep->body = body;
	return 0;
}

int api_error(struct api_reply *rep, unsigned status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return api_ok(rep, status,
		      json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

int api_error_errno(struct api_reply *rep, int err, const char *what)
{
	switch (err) {
	case -ENOENT:
		return api_error(rep, 404, "not_found", "%s not found", what);
	case -EEXIST:
		return api_error(rep, 409, "conflict", "%s exists already", what);
	case -EINVAL:
		return api_error(rep, 400, "bad_request", "%s: invalid value", what);
	case -E2BIG:
		return api_error(rep, 400, "too_many", "%s: too many", what);
	case -EACCES:
		return api_error(rep, 403, "forbidden", "%s: not allowed", what);
	case -ENOTCONN:
	case -EBUSY:
		return api_error(rep, 503, "unavailable",
				 "the database is not reachable or busy; try again");
	default:
		return api_error(rep, 500, "internal", "%s: %s", what, strerror(-err));
	}
}

const char *api_query(struct api_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void add_common_headers(struct MHD_Response *r)
{
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
}

static enum MHD_Result queue_json(struct MHD_Connection *conn, struct api_reply *rep)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	char *text = NULL;

	if (rep->body)
		text = json_dumps(rep->body, JSON_COMPACT);
	if (rep->body && !text)
		return MHD_NO;
	if (text) {
		size_t n = strlen(text);

		/* jansson's memory comes from malloc(), so MHD may free() it. */
		text[n] = '\0';
		r = MHD_create_response_from_buffer(n, text, MHD_RESPMEM_MUST_FREE);
	} else {
		r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	}
	if (!r) {
		free(text);
		return MHD_NO;
	}
	if (text)
		MHD_add_response_header(r, "Content-Type", "application/json");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (rep->set_cookie[0])
		MHD_add_response_header(r, "Set-Cookie", rep->set_cookie);
	if (rep->status == 401)
		MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"pitstop\"");
	add_common_headers(r);
	ret = MHD_queue_response(conn, rep->status, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- static files ------------------------------------------------------ */

static const char *content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ ".html", "text/html; charset=utf-8" },
		{ ".js", "text/javascript; charset=utf-8" },
		{ ".mjs", "text/javascript; charset=utf-8" },
		{ ".css", "text/css; charset=utf-8" },
		{ ".png", "image/png" },
		{ ".svg", "image/svg+xml" },
		{ ".ico", "image/x-icon" },
		{ ".json", "application/json" },
		{ ".map", "application/json" },
		{ ".txt", "text/plain; charset=utf-8" },
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "application/octet-stream";
}

/*
 * 1 if rel is a safe relative path: segments of [A-Za-z0-9._-], none
 * empty or starting with '.', so no "..", no hidden files, no absolute path.
 */
static int safe_rel_path(const char *rel)
{
	int seg_start = 1;

	if (!*rel)
		return 0;
	for (const char *p = rel; *p; p++) {
		char c = *p;

		if (c == '/') {
			if (seg_start)
				return 0;
			seg_start = 1;
			continue;
		}
		if (seg_start && c == '.')
			return 0;
		seg_start = 0;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return !seg_start;
}

static enum MHD_Result queue_file(struct MHD_Connection *conn, const char *dir, const char *rel,
				  const char *cache)
{
	struct api_reply rep = { 0 };
	struct MHD_Response *r;
	char path[4096];
	struct stat st;
	enum MHD_Result ret;
	int fd;

	if (!dir || !*dir || !safe_rel_path(rel) ||
	    (size_t)snprintf(path, sizeof(path), "%s/%s", dir, rel) >= sizeof(path)) {
		api_error(&rep, 404, "not_found", "no such file");
		goto error;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		api_error(&rep, 404, "not_found", "no such file");
		goto error;
	}
	r = MHD_create_response_from_fd((uint64_t)st.st_size, fd); /* MHD closes fd */
	if (!r) {
		close(fd);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", content_type(rel));
	MHD_add_response_header(r, "Cache-Control", cache);
	if (strstr(rel, ".html"))
		MHD_add_response_header(r, "Content-Security-Policy", CSP);
	add_common_headers(r);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
error:
	ret = queue_json(conn, &rep);
	json_decref(rep.body);
	return ret;
}

/* Serves the console and its libraries; returns -1 when path is none of them. */
static int serve_static(struct api *api, struct MHD_Connection *conn, const char *path,
			enum MHD_Result *ret)
{
	static const struct {
		const char *prefix, *sub;
	} libs[] = { { "/js/leaflet/", "leaflet" }, { "/js/chart.js/", "chart.js" } };
	char rel[1024];

	if (strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0) {
		*ret = queue_file(conn, api->console_dir, "index.html", "no-cache");
		return 0;
	}
	if (strncmp(path, "/console/", 9) == 0) {
		*ret = queue_file(conn, api->console_dir, path + 9, "no-cache");
		return 0;
	}
	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++) {
		size_t n = strlen(libs[i].prefix);

		if (strncmp(path, libs[i].prefix, n) == 0) {
			snprintf(rel, sizeof(rel), "%s/%s", libs[i].sub, path + n);
			*ret = queue_file(conn, api->javascript_dir, rel, "max-age=86400");
			return 0;
		}
	}
	if (strncmp(path, "/tiles/", 7) == 0) {
		*ret = queue_file(conn, api->tiles_dir, path + 7, "max-age=86400");
		return 0;
	}
	return -1;
}

/* ---- failed logins ----------------------------------------------------- */

static struct login_fail *login_entry(struct api *api, const char *peer, int create, int64_t now_ms)
{
	struct login_fail *oldest = NULL;

	if (!api->fails || !*peer)
		return NULL;
	for (size_t i = 0; i < API_LOGIN_PEERS_MAX; i++) {
		struct login_fail *f = &api->fails[i];

		if (f->peer[0] && strcmp(f->peer, peer) == 0) {
			if (now_ms - f->last_ms > API_LOGIN_WINDOW_MS)
				f->fails = 0; /* the window passed: start again */
			return f;
		}
		if (!oldest || !f->peer[0] || (oldest->peer[0] && f->last_ms < oldest->last_ms))
			oldest = f;
	}
	if (!create)
		return NULL;
	memset(oldest, 0, sizeof(*oldest));
	snprintf(oldest->peer, sizeof(oldest->peer), "%s", peer);
	return oldest;
}

int64_t api_login_wait_s(struct api *api, const char *peer, int64_t now_ms)
{
	struct login_fail *f = login_entry(api, peer, 0, now_ms);

	if (!f || f->fails < API_LOGIN_FAILS_MAX)
		return 0;
	return (f->last_ms + API_LOGIN_WINDOW_MS - now_ms + 999) / 1000;
}

void api_login_failed(struct api *api, const char *peer, int64_t now_ms)
{
	struct login_fail *f = login_entry(api, peer, 1, now_ms);

	if (!f)
		return;
	f->fails++;
	f->last_ms = now_ms;
	if (f->fails == API_LOGIN_FAILS_MAX)
		log_warn("api: %d failed logins from %s; refusing its logins for %lld min",
			 f->fails, peer, (long long)(API_LOGIN_WINDOW_MS / 60000));
}

void api_login_succeeded(struct api *api, const char *peer)
{
	struct login_fail *f = login_entry(api, peer, 0, 0);

	if (f)
		memset(f, 0, sizeof(*f));
}

/* ---- the hashing worker ------------------------------------------------ */

static void run_job(struct api_job *job)
{
	if (job->kind == API_JOB_HASH)
		job->result = accounts_password_hash(job->password, job->salt, job->iterations,
						     job->hash);
	else
		job->result =
			accounts_password_prepare(job->password, job->iterations, &job->secret);
	/* The password is not kept longer than the hash takes. */
	explicit_bzero(job->password, sizeof(job->password));
}

static void *worker_main(void *arg)
{
	struct api *api = arg;

	pthread_mutex_lock(&api->mu);
	for (;;) {
		struct api_req *req;

		while (!api->stopping && api->ntodo == 0)
			pthread_cond_wait(&api->cv, &api->mu);
		if (api->stopping)
			break;
		req = api->todo[0];
		memmove(api->todo, api->todo + 1, --api->ntodo * sizeof(api->todo[0]));
		pthread_mutex_unlock(&api->mu);
		run_job(&req->job);
		pthread_mutex_lock(&api->mu);
		api->done[api->ndone++] = req; /* ndone <= inflight <= API_HASH_QUEUE_MAX */
		pthread_mutex_unlock(&api->mu);
		loop_waker_signal(api->waker);
		pthread_mutex_lock(&api->mu);
	}
	pthread_mutex_unlock(&api->mu);
	return NULL;
}

/* On the loop: finish the requests whose job is done and resume them. */
static void on_jobs_done(void *arg)
{
	struct api *api = arg;
	struct api_req *done[API_HASH_QUEUE_MAX];
	size_t n;

	pthread_mutex_lock(&api->mu);
	n = api->ndone;
	memcpy(done, api->done, n * sizeof(done[0]));
	api->ndone = 0;
	api->inflight -= n;
	pthread_mutex_unlock(&api->mu);
	for (size_t i = 0; i < n; i++) {
		struct api_req *req = done[i];

		log_debug("api: %s %s: worker done (%d)", req->method, req->path, req->job.result);
		req->cont(req, &req->reply);
		req->state = API_REQ_DONE;
		MHD_resume_connection(req->conn);
	}
	if (n)
		kick(api);
}

int api_defer(struct api_req *req, struct api_reply *rep, api_cont_fn cont)
{
	struct api *api = req->api;
	int full;

	pthread_mutex_lock(&api->mu);
	full = api->inflight >= API_HASH_QUEUE_MAX;
	if (!full) {
		api->inflight++;
		api->todo[api->ntodo++] = req;
		pthread_cond_signal(&api->cv);
	}
	pthread_mutex_unlock(&api->mu);
	if (full) {
		explicit_bzero(req->job.password, sizeof(req->job.password));
		return api_error(rep, 503, "busy",
				 "too many logins at once; try again in a moment");
	}
	req->cont = cont;
	req->state = API_REQ_WAITING;
	MHD_suspend_connection(req->conn);
	return API_DEFERRED;
}

/* ---- event streams ----------------------------------------------------- */

static void sse_wake(struct sse_client *c)
{
	if (c->suspended && !c->dead) {
		c->suspended = 0;
		MHD_resume_connection(c->conn);
		kick(c->api);
	}
}

/* Appends text to c's buffer; a client that cannot keep up is closed. */
static void sse_append(struct sse_client *c, const char *text, size_t n)
{
	if (c->closing)
		return;
	if (n > sizeof(c->buf) - c->len) {
		log_info("api: closing an event stream of %s: it fell %zu bytes behind",
			 c->who.name, c->len);
		c->closing = 1;
	} else {
		memcpy(c->buf + c->len, text, n);
		c->len += n;
	}
	sse_wake(c);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct sse_client *c = cls;
	size_t n;

	(void)pos;
	if (c->len == 0) {
		if (c->closing)
			return MHD_CONTENT_READER_END_OF_STREAM;
		c->suspended = 1;
		MHD_suspend_connection(c->conn);
		return 0;
	}
	n = c->len < max ? c->len : max;
	memcpy(out, c->buf, n);
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	return (ssize_t)n;
}

static void sse_free(void *cls)
{
	struct sse_client *c = cls;
	struct api *api = c->api;

	for (struct sse_client **pp = &api->sse; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			api->nsse--;
			break;
		}
	}
	if (c->req)
		c->req->sse = NULL;
	free(c);
}

int api_sse_open(struct api_req *req, struct api_reply *rep)
{
	struct api *api = req->api;
	struct sse_client *c;

	if (api->nsse >= API_SSE_MAX)
		return api_error(rep, 503, "busy", "too many event streams open (%d)", API_SSE_MAX);
	c = calloc(1, sizeof(*c));
	if (!c)
		return api_error(rep, 500, "internal", "out of memory");
	c->api = api;
	c->conn = req->conn;
	c->req = req;
	c->who = req->who;
	c->local = req->local;
	/* The browser reconnects after 5 s when the stream ends. */
	c->len = (size_t)snprintf(c->buf, sizeof(c->buf), "retry: 5000\n: connected\n\n");
	c->next = api->sse;
	api->sse = c;
	api->nsse++;
	req->sse = c;
	return API_SSE;
}

static enum MHD_Result queue_sse(struct MHD_Connection *conn, struct sse_client *c)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, c, sse_free);
	if (!r) {
		sse_free(c);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Accel-Buffering", "no");
	add_common_headers(r);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

/*
 * Keep-alive: a comment on every stream, and the principal checked again
 * (a revoked token or disabled user loses its stream within one period).
 */
static void on_keepalive(void *arg)
{
	struct api *api = arg;
	static const char ka[] = ": keepalive\n\n";
	int64_t now = loop_wall_ms();

	api->keepalive_timer = loop_add_timer(api->sh.loop, SSE_KEEPALIVE_MS, on_keepalive, api);
	for (struct sse_client *c = api->sse; c; c = c->next) {
		struct accounts_token t;

		if (c->dead || c->closing)
			continue;
		if (!c->local && (accounts_token_get(api->sh.accounts, c->who.token_id, &t) != 0 ||
				  t.revoked_ms || (t.expires_ms && t.expires_ms <= now))) {
			c->closing = 1;
			sse_wake(c);
			continue;
		}
		sse_append(c, ka, sizeof(ka) - 1);
	}
}

void api_vehicle_changed(struct api *api, const struct telemetry_vehicle *v)
{
	struct accounts_fleet fleet;
	int64_t fleet_id = 0;
	char *text = NULL, *msg = NULL;
	json_t *o;

	if (!api || !api->sse)
		return;
	/* One lookup per event, not per stream: its fleet decides who hears it. */
	if (accounts_fleet_of_vin(api->sh.accounts, v->vin, &fleet_id) <= 0 ||
	    accounts_fleet_get_id(api->sh.accounts, fleet_id, &fleet) != 0)
		fleet_id = 0;
	for (struct sse_client *c = api->sse; c; c = c->next) {
		if (c->closing || c->dead || !api_principal_sees_fleet(&c->who, fleet_id))
			continue;
		if (!msg) {
			o = views_vehicle(v, fleet_id ? fleet.name : NULL, loop_wall_ms());
			text = o ? json_dumps(o, JSON_COMPACT) : NULL;
			json_decref(o);
			if (!text || asprintf(&msg, "event: vehicle\ndata: %s\n\n", text) < 0) {
				msg = NULL;
				break;
			}
		}
		sse_append(c, msg, strlen(msg));
	}
	free(text);
	free(msg);
}

/* ---- requests ---------------------------------------------------------- */

/* 1 if the peer of the unix-socket connection is root or our own user. */
static int local_operator(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	return cred.uid == 0 || cred.uid == geteuid();
}

/* The client's IP address as text ("" when unknown). */
static void peer_address(struct MHD_Connection *conn, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	buf[0] = '\0';
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
			  (socklen_t)size);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
			  (socklen_t)size);
}

static void req_free(struct api_req *req)
{
	if (!req)
		return;
	if (req->sse) { /* the stream's struct goes with its response */
		req->sse->dead = 1;
		req->sse->req = NULL;
	}
	json_decref(req->json);
	json_decref(req->reply.body);
	free(req->path);
	free(req->body);
	explicit_bzero(&req->job, sizeof(req->job));
	free(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	req_free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct listener *l = cls;
	struct api *api = l->api;
	struct api_req *req = *con_cls;
	enum MHD_Result ret;
	int r;

	(void)version;
	if (!req) {
		req = calloc(1, sizeof(*req));
		if (!req)
			return MHD_NO;
		req->api = api;
		req->conn = conn;
		snprintf(req->method, sizeof(req->method), "%s", method);
		req->path = strdup(url);
		if (!req->path) {
			free(req);
			return MHD_NO;
		}
		req->local = l->local && local_operator(conn);
		if (!l->local)
			peer_address(conn, req->peer, sizeof(req->peer));
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_size) {
		if (req->body_len + *upload_size > API_BODY_MAX) {
			req->body_too_large = 1;
		} else {
			char *b = realloc(req->body, req->body_len + *upload_size + 1);

			if (!b)
				return MHD_NO;
			memcpy(b + req->body_len, upload, *upload_size);
			req->body = b;
			req->body_len += *upload_size;
			b[req->body_len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (req->state == API_REQ_DONE) {
		ret = queue_json(conn, &req->reply);
		return ret;
	}
	if (req->state == API_REQ_WAITING)
		return MHD_YES; /* resumed without a result: cannot happen */

	if (strncmp(req->path, "/api/", 5) != 0) {
		if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
			api_error(&req->reply, 405, "method_not_allowed", "%s is not allowed here",
				  method);
			return queue_json(conn, &req->reply);
		}
		if (serve_static(api, conn, req->path, &ret) == 0)
			return ret;
		api_error(&req->reply, 404, "not_found", "no such page");
		return queue_json(conn, &req->reply);
	}
	if (req->body_too_large) {
		api_error(&req->reply, 413, "too_large", "the request body is over %d bytes",
			  API_BODY_MAX);
		return queue_json(conn, &req->reply);
	}
	if (req->body_len) {
		json_error_t jerr;

		req->json = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
		if (!req->json) {
			api_error(&req->reply, 400, "bad_json",
				  "the body is not JSON: %s (line %d, column %d)", jerr.text,
				  jerr.line, jerr.column);
			return queue_json(conn, &req->reply);
		}
	}
	r = api_route(req, &req->reply);
	if (r == API_DEFERRED)
		return MHD_YES;
	if (r == API_SSE)
		return queue_sse(conn, req->sse);
	return queue_json(conn, &req->reply);
}

/* ---- daemons on the loop ----------------------------------------------- */

static void listener_run(struct listener *l);

static void on_listener_timer(void *arg)
{
	struct listener *l = arg;

	l->timer = 0;
	l->kicked = 0;
	listener_run(l);
}

static void on_listener_fd(int fd, short revents, void *arg)
{
	(void)fd;
	(void)revents;
	listener_run(arg);
}

/* Lets MHD work, then arms a timer for its next timeout. */
static void listener_run(struct listener *l)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(l->mhd);
	if (l->timer)
		loop_cancel_timer(l->api->sh.loop, l->timer);
	l->timer = 0;
	l->kicked = 0;
	if (MHD_get_timeout(l->mhd, &ms) == MHD_YES) {
		int id = loop_add_timer(l->api->sh.loop, ms, on_listener_timer, l);

		l->timer = id > 0 ? id : 0;
	}
}

/*
 * A resumed connection is served on MHD's next run, and MHD's own wake-up
 * (its inter-thread channel inside the epoll set) does not reliably make
 * the epoll fd readable to our poll(): run both daemons from the loop at
 * once instead (a 0 ms timer, one per daemon at a time).
 */
static void kick(struct api *api)
{
	struct listener *ls[] = { &api->tcp, &api->unix_sock };

	for (size_t i = 0; i < 2; i++) {
		struct listener *l = ls[i];
		int id;

		if (!l->mhd || l->kicked)
			continue;
		if (l->timer)
			loop_cancel_timer(api->sh.loop, l->timer);
		id = loop_add_timer(api->sh.loop, 0, on_listener_timer, l);
		l->timer = id > 0 ? id : 0;
		l->kicked = l->timer != 0;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_warn("api: %s", msg);
}

static int read_file(const char *path, char **ret)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	if (!f)
		return -errno;
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || n > 1 << 20 ||
	    fseek(f, 0, SEEK_SET) < 0) {
		fclose(f);
		return -EFBIG;
	}
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return -EIO;
	}
	buf[n] = '\0';
	fclose(f);
	*ret = buf;
	return 0;
}

/* Splits "host:port" / "[v6]:port" and binds a listening TCP socket. */
static int listen_tcp(const char *addr, int *ret_fd, int *ret_loopback, char *shown, size_t len)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	const char *port;
	struct addrinfo hints = { 0 }, *ai = NULL;
	int fd, one = 1, r;

	if (!colon || colon == addr || !colon[1]) {
		log_error("api_listen %s: expected host:port, e.g. 127.0.0.1:8080", addr);
		return -EINVAL;
	}
	port = colon + 1;
	if (addr[0] == '[' && colon[-1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr - 2), addr + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	r = getaddrinfo(host, port, &hints, &ai);
	if (r != 0) {
		log_error("api_listen %s: %s", addr, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		freeaddrinfo(ai);
		return r;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
		r = -errno;
		log_error("api: cannot listen on %s: %s", addr, strerror(-r));
		close(fd);
		freeaddrinfo(ai);
		return r;
	}
	if (ai->ai_family == AF_INET) {
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		char ip[INET_ADDRSTRLEN];

		getsockname(fd, (struct sockaddr *)&sa, &sl);
		*ret_loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
		inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof(ip));
		snprintf(shown, len, "%s:%u", ip, ntohs(sa.sin_port));
	} else {
		struct sockaddr_in6 sa;
		socklen_t sl = sizeof(sa);
		char ip[INET6_ADDRSTRLEN];

		getsockname(fd, (struct sockaddr *)&sa, &sl);
		*ret_loopback = IN6_IS_ADDR_LOOPBACK(&sa.sin6_addr);
		inet_ntop(AF_INET6, &sa.sin6_addr, ip, sizeof(ip));
		snprintf(shown, len, "[%s]:%u", ip, ntohs(sa.sin6_port));
	}
	freeaddrinfo(ai);
	*ret_fd = fd;
	return 0;
}

/* Binds the unix socket path (replacing a stale socket), mode 0660. */
static int listen_unix(const char *path, int *ret_fd)
{
	char err[160];
	int r = unixsock_listen(path, 0660, 16, ret_fd, err, sizeof(err));

	if (r < 0)
		log_error("api_socket %s: %s", path, err);
	return r;
}

static int listener_start(struct api *api, struct listener *l, int fd, int local, const char *cert,
			  const char *key)
{
	unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct MHD_OptionItem opts[12];
	size_t n = 0;
	const union MHD_DaemonInfo *di;

	l->api = api;
	l->local = local;
	/* The logger first, or MHD prints its first complaints itself. */
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_SOCKET, fd, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, API_CONN_MAX, NULL };
	opts[n++] =
		(struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, API_CONN_TIMEOUT_S, NULL };
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed,
					     NULL };
	if (!local)
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
						     API_CONN_PER_IP_MAX, NULL };
	if (cert) {
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key };
	}
	opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	l->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l, MHD_OPTION_ARRAY, opts,
				  MHD_OPTION_END);
	if (!l->mhd) {
		close(fd);
		log_error("api: libmicrohttpd refused to start%s (see the lines above)",
			  cert ? " with the HTTPS certificate and key" : "");
		return -EINVAL;
	}
	di = MHD_get_daemon_info(l->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!di) {
		log_error("api: libmicrohttpd has no epoll fd");
		return -ENOTSUP;
	}
	l->epfd = di->epoll_fd;
	return loop_add_fd(api->sh.loop, l->epfd, POLLIN, on_listener_fd, l);
}

static void listener_stop(struct api *api, struct listener *l)
{
	if (!l->mhd)
		return;
	loop_del_fd(api->sh.loop, l->epfd);
	if (l->timer)
		loop_cancel_timer(api->sh.loop, l->timer);
	MHD_stop_daemon(l->mhd);
	l->mhd = NULL;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

int api_new(const struct api_params *p, struct api **ret)
{
	struct api *api = calloc(1, sizeof(*api));
	char *cert = NULL, *key = NULL, shown[160];
	int r, fd = -1, loopback = 0;

	if (!api)
		return -ENOMEM;
	api->sh.loop = p->loop;
	api->sh.db = p->db;
	api->sh.telemetry = p->telemetry;
	api->sh.offers = p->offers;
	api->sh.accounts = p->accounts;
	api->sh.poi = p->poi;
	api->sh.session_ttl_ms = p->session_ttl_ms;
	api->sh.offer_latency = p->offer_latency;
	api->sh.rules = p->rules;
	api->console_dir = dup_or_null(p->console_dir);
	api->javascript_dir = dup_or_null(p->javascript_dir);
	api->tiles_dir = dup_or_null(p->tiles_dir);
	api->socket_path = dup_or_null(p->socket_path);
	api->fails = calloc(API_LOGIN_PEERS_MAX, sizeof(*api->fails));
	if (!api->fails) {
		free(api);
		return -ENOMEM;
	}
	pthread_mutex_init(&api->mu, NULL);
	pthread_cond_init(&api->cv, NULL);
	r = loop_waker_new(p->loop, on_jobs_done, api, &api->waker);
	if (r < 0)
		goto fail;
	r = pthread_create(&api->worker, NULL, worker_main, api);
	if (r != 0) {
		r = -r;
		goto fail;
	}
	api->worker_started = 1;

	if (p->listen && *p->listen) {
		if ((p->cert_file && *p->cert_file) != (p->key_file && *p->key_file)) {
			log_error(
				"api: api_cert_file and api_key_file go together; one is missing");
			r = -EINVAL;
			goto fail;
		}
		if (p->cert_file && *p->cert_file) {
			r = read_file(p->cert_file, &cert);
			if (r < 0) {
				log_error("api_cert_file %s: %s", p->cert_file, strerror(-r));
				goto fail;
			}
			r = read_file(p->key_file, &key);
			if (r < 0) {
				log_error("api_key_file %s: %s", p->key_file, strerror(-r));
				goto fail;
			}
			api->sh.secure_cookie = 1;
		}
		r = listen_tcp(p->listen, &fd, &loopback, shown, sizeof(shown));
		if (r < 0)
			goto fail;
		if (!cert && !loopback && !p->allow_plaintext) {
			close(fd);
			log_error("api_listen %s is not a loopback address: plain HTTP would carry "
				  "passwords and tokens in the clear; set api_cert_file and "
				  "api_key_file, or listen on 127.0.0.1 behind a TLS reverse proxy",
				  p->listen);
			r = -EINVAL;
			goto fail;
		}
		r = listener_start(api, &api->tcp, fd, 0, cert, key);
		if (r < 0)
			goto fail;
		snprintf(api->url, sizeof(api->url), "%s://%s/", cert ? "https" : "http", shown);
	}
	if (api->socket_path) {
		r = listen_unix(api->socket_path, &fd);
		if (r < 0)
			goto fail;
		r = listener_start(api, &api->unix_sock, fd, 1, NULL, NULL);
		if (r < 0)
			goto fail;
	}
	api->keepalive_timer = loop_add_timer(p->loop, SSE_KEEPALIVE_MS, on_keepalive, api);
	if (api->url[0])
		log_info("api: console and API at %s (api/v1)%s%s", api->url,
			 api->socket_path ? ", local socket " : "",
			 api->socket_path ? api->socket_path : "");
	else if (api->socket_path)
		log_info("api: local socket %s only (api_listen is empty)", api->socket_path);
	free(cert);
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	*ret = api;
	return 0;
fail:
	free(cert);
	if (key)
		explicit_bzero(key, strlen(key));
	free(key);
	api_free(api);
	return r;
}

void api_free(struct api *api)
{
	if (!api)
		return;
	if (api->worker_started) {
		pthread_mutex_lock(&api->mu);
		api->stopping = 1;
		pthread_cond_broadcast(&api->cv);
		pthread_mutex_unlock(&api->mu);
		pthread_join(api->worker, NULL);
	}
	/* Suspended connections must be resumed before MHD stops. */
	for (struct sse_client *c = api->sse; c; c = c->next) {
		c->closing = 1;
		sse_wake(c);
	}
	for (size_t i = 0; i < api->ntodo; i++) {
		api->todo[i]->state = API_REQ_DONE;
		api_error(&api->todo[i]->reply, 503, "unavailable", "the gateway is stopping");
		MHD_resume_connection(api->todo[i]->conn);
	}
	api->ntodo = 0;
	on_jobs_done(api);
	if (api->tcp.mhd)
		MHD_run(api->tcp.mhd);
	if (api->unix_sock.mhd)
		MHD_run(api->unix_sock.mhd);
	if (api->keepalive_timer > 0)
		loop_cancel_timer(api->sh.loop, api->keepalive_timer);
	listener_stop(api, &api->tcp);
	listener_stop(api, &api->unix_sock);
	if (api->socket_path)
		unlink(api->socket_path);
	loop_waker_free(api->waker);
	pthread_mutex_destroy(&api->mu);
	pthread_cond_destroy(&api->cv);
	free(api->fails);
	free(api->console_dir);
	free(api->javascript_dir);
	free(api->tiles_dir);
	free(api->socket_path);
	free(api);
}
