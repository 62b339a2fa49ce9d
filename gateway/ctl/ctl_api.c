/*
 * pitstopctl as a client of the gateway's HTTP API (libcurl); see ctl_api.h.
 */
#include "ctl_api.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accounts.h"
#include "gwconfig.h"
#include "service.h"
#include "views.h"

#define EXIT_USAGE 2
#define DEFAULT_CONFIG "/etc/pitstop/gateway.conf"
#define REPLY_MAX (16 * 1024 * 1024) /* a reply bigger than this is refused */
#define TIMEOUT_S 30
#define CHUNK_BYTES (160 * 1024) /* an import chunk: the API takes bodies to 256 KiB */
#define JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(12))

const char ctl_api_usage[] =
	"  user add NAME --role operator|fleet_manager|service_advisor|partner [--fleet F ...]\n"
	"           [--password-stdin]  add a user (no password: API tokens only)\n"
	"  user list                    the users, their roles and fleets\n"
	"  user token NAME [--label L] [--expires TIME]\n"
	"                               print a new API token for NAME (shown once)\n"
	"  user disable|enable NAME     stop (or restore) NAME's logins and tokens\n"
	"  fleet add F                  add fleet F\n"
	"  fleet assign F VIN...        put the cars into fleet F (a car is in one fleet)\n"
	"  fleet list                   the fleets and how many cars each has\n"
	"  audit [--limit N] [--actor U] [--action A]\n"
	"                               the audit trail, newest first\n"
	"  service record VIN --date D --items A;B [--odometer-km KM] [--cost C]\n"
	"           [--workshop W] [--advisories TEXT]  record a completed service\n"
	"  service override VIN ITEM [--every-km N] [--every-months M]\n"
	"                               this car's interval for ITEM instead of the plan's\n"
	"  service import FILE          past services: CSV vin,date,odometer_km,items\n"
	"  telemetry import FILE        odometer readings: CSV vin,time,odometer_km\n"
	"                               (a whole file or nothing; FILE:LINE: errors)\n";

struct buf {
	char *data;
	size_t len;
};

int ctl_fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("pitstopctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int ctl_vin_arg(int argc, char **argv, const char *what, const char **ret_vin)
{
	*ret_vin = NULL;
	for (int k = 2; k < argc; k++) {
		if (strcmp(argv[k], "--vin") == 0 && k + 1 < argc)
			*ret_vin = argv[++k];
		else
			return ctl_fail(2, "%s: unexpected '%s'; try pitstopctl --help", what,
					argv[k]);
	}
	if (!*ret_vin)
		return ctl_fail(2, "%s: --vin VIN is required", what);
	return 0;
}

/*
 * ctl_get_opts()'s options appended to path (size bytes), "?" or "&" before
 * each. Returns 0 or an exit code (said on stderr).
 */
static int query_opts(struct ctl_client *c, int argc, char **argv, int first, const char *what,
		      const char *const *names, char *path, size_t size)
{
	for (int k = first; k < argc; k++) {
		const char *const *nm = names;
		size_t n = strlen(path);
		char *esc;
		int w;

		while (*nm && !(strncmp(argv[k], "--", 2) == 0 && strcmp(argv[k] + 2, *nm) == 0))
			nm++;
		if (!*nm || k + 1 >= argc)
			return ctl_fail(EXIT_USAGE, "%s: unexpected '%s'; try pitstopctl --help",
					what, argv[k]);
		esc = curl_easy_escape(c->curl, argv[++k], 0);
		if (!esc)
			return ctl_fail(1, "out of memory");
		w = snprintf(path + n, size - n, "%s%s=%s", strchr(path, '?') ? "&" : "?", *nm,
			     esc);
		curl_free(esc);
		if (w < 0 || (size_t)w >= size - n)
			return ctl_fail(EXIT_USAGE, "%s: arguments too long", what);
	}
	return 0;
}

int ctl_get_opts(struct ctl_client *c, const struct ctl_api_opts *o, const char *what,
		 const char *base, int argc, char **argv, int first, const char *const *names,
		 json_t **ret)
{
	char path[512];
	int r;

	if (snprintf(path, sizeof(path), "%s", base) >= (int)sizeof(path))
		return ctl_fail(EXIT_USAGE, "%s: arguments too long", what);
	r = query_opts(c, argc, argv, first, what, names, path, sizeof(path));
	if (r)
		return r;
	return ctl_run(c, o, what, "GET", path, NULL, 200, ret);
}

const char *ctl_str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	size_t add = size * n;
	char *d;

	if (b->len + add > REPLY_MAX)
		return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
	d = realloc(b->data, b->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, add);
	b->data = d;
	b->len += add;
	d[b->len] = '\0';
	return add;
}

/* Finds the gateway: --api, else the config's api_socket. Returns 0 or an exit code. */
int ctl_client_open(const struct ctl_api_opts *o, struct ctl_client *c)
{
	const char *token = o->token ? o->token : getenv("PITSTOP_TOKEN");
	const char *path = o->config_path;
	struct gw_config conf;
	char err[512];
	int r;

	memset(c, 0, sizeof(*c));
	memset(&conf, 0, sizeof(conf));
	if (!path && access(DEFAULT_CONFIG, R_OK) == 0)
		path = DEFAULT_CONFIG;
	r = gw_config_load(path, &conf, err, sizeof(err));
	if (r < 0)
		return ctl_fail(EXIT_USAGE, "%s", err);
	if (o->api_url) {
		snprintf(c->base, sizeof(c->base), "%s", o->api_url);
		snprintf(c->where, sizeof(c->where), "%s", o->api_url);
		if (conf.ca_file)
			c->ca_file = strdup(conf.ca_file);
	} else if (conf.api_socket && *conf.api_socket) {
		snprintf(c->base, sizeof(c->base), "http://localhost/");
		snprintf(c->socket_path, sizeof(c->socket_path), "%s", conf.api_socket);
		snprintf(c->where, sizeof(c->where), "the local socket %s", conf.api_socket);
	} else {
		gw_config_free(&conf);
		return ctl_fail(EXIT_USAGE, "%s has no api_socket; give --api URL --token TOKEN",
				path ? path : "the default config");
	}
	gw_config_free(&conf);
	while (strlen(c->base) && c->base[strlen(c->base) - 1] == '/')
		c->base[strlen(c->base) - 1] = '\0';
	if (token)
		snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", token);
	c->curl = curl_easy_init();
	if (!c->curl)
		return ctl_fail(1, "cannot start libcurl");
	return 0;
}

void ctl_client_close(struct ctl_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->ca_file);
	explicit_bzero(c->auth, sizeof(c->auth));
}

/*
 * One request. body (borrowed) is sent as JSON when not NULL. On an HTTP
 * answer returns 0 with *status and *reply (parsed JSON or NULL); on a
 * transport failure prints why and returns 1.
 */
int ctl_call(struct ctl_client *c, const char *method, const char *path, json_t *body, long *status,
	     json_t **reply)
{
	struct curl_slist *hdrs = NULL;
	struct buf b = { 0 };
	char url[1024], errbuf[CURL_ERROR_SIZE] = "";
	char *text = NULL;
	CURLcode cc;

	*reply = NULL;
	snprintf(url, sizeof(url), "%s%s", c->base, path);
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, (long)TIMEOUT_S);
	curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->socket_path[0])
		curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, c->socket_path);
	if (c->ca_file)
		curl_easy_setopt(c->curl, CURLOPT_CAINFO, c->ca_file);
	if (c->auth[0])
		hdrs = curl_slist_append(hdrs, c->auth);
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, text ? text : "");
	}
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	cc = curl_easy_perform(c->curl);
	curl_slist_free_all(hdrs);
	free(text);
	if (cc != CURLE_OK) {
		free(b.data);
		return ctl_fail(1, "cannot reach the gateway's API at %s: %s%s", c->where,
				*errbuf ? errbuf : curl_easy_strerror(cc),
				c->socket_path[0]
					? " (is pitstop-gateway running? api_socket in its "
					  "config says where it listens)"
					: "");
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
	if (b.len)
		*reply = json_loadb(b.data, b.len, 0, NULL);
	free(b.data);
	return 0;
}

/* Says what the API refused, in its own words. Returns 1. */
static int refused(const char *what, long status, json_t *reply)
{
	json_t *e = json_object_get(reply, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));

	ctl_fail(1, "%s: %s%s%s (HTTP %ld)", what, msg ? msg : "refused", code ? "; " : "",
		 code ? code : "", status);
	if (status == 401)
		fprintf(stderr, "pitstopctl: run it as root or the gateway's user on the gateway's "
				"host (local socket), or give --token\n");
	return 1;
}

int ctl_print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_FLAGS);
	fputc('\n', stdout);
	return 0;
}

/* One request that must answer `want`; prints the reply as JSON with --json. */
int ctl_run(struct ctl_client *c, const struct ctl_api_opts *o, const char *what,
	    const char *method, const char *path, json_t *body, long want, json_t **ret)
{
	json_t *reply = NULL;
	long status = 0;
	int r = ctl_call(c, method, path, body, &status, &reply);

	json_decref(body);
	if (r)
		return r;
	if (status != want) {
		r = refused(what, status, reply);
		json_decref(reply);
		return r;
	}
	if (o->json && reply)
		ctl_print_json(reply);
	if (ret)
		*ret = reply;
	else
		json_decref(reply);
	return 0;
}

/* Reads one line (the password) from stdin, without its newline. */
static int read_password(char *buf, size_t size)
{
	size_t n;

	if (!fgets(buf, (int)size, stdin))
		return -EIO;
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return 0;
}

static int user_add(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	json_t *body = json_object(), *fleets = json_array(), *reply = NULL;
	char password[ACCOUNTS_PASSWORD_MAX + 2];
	const char *role = NULL;
	int from_stdin = 0, r;

	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
			role = argv[++i];
		} else if (strcmp(argv[i], "--fleet") == 0 && i + 1 < argc) {
			json_array_append_new(fleets, json_string(argv[++i]));
		} else if (strcmp(argv[i], "--password-stdin") == 0) {
			from_stdin = 1;
		} else {
			json_decref(body);
			json_decref(fleets);
			return ctl_fail(EXIT_USAGE,
					"user add: unexpected '%s'; try pitstopctl --help",
					argv[i]);
		}
	}
	if (!role) {
		json_decref(body);
		json_decref(fleets);
		return ctl_fail(EXIT_USAGE,
				"user add %s: --role operator|fleet_manager|"
				"service_advisor|partner is required",
				argv[2]);
	}
	json_object_set_new(body, "name", json_string(argv[2]));
	json_object_set_new(body, "role", json_string(role));
	json_object_set_new(body, "fleets", fleets);
	if (from_stdin) {
		if (read_password(password, sizeof(password)) < 0) {
			json_decref(body);
			return ctl_fail(EXIT_USAGE, "user add: --password-stdin: nothing on stdin");
		}
		json_object_set_new(body, "password", json_string(password));
		explicit_bzero(password, sizeof(password));
	}
	r = ctl_run(c, o, "user add", "POST", "/api/v1/users", body, 201, &reply);
	if (r == 0 && !o->json)
		printf("user %s added (%s)\n", argv[2], role);
	json_decref(reply);
	return r;
}

static int user_list(struct ctl_client *c, const struct ctl_api_opts *o)
{
	json_t *reply = NULL, *items, *u;
	size_t i;
	int r = ctl_run(c, o, "user list", "GET", "/api/v1/users?limit=1000", NULL, 200, &reply);

	if (r || o->json) {
		json_decref(reply);
		return r;
	}
	items = json_object_get(reply, "items");
	printf("%-24s %-16s %-8s %s\n", "NAME", "ROLE", "STATE", "FLEETS");
	json_array_foreach(items, i, u)
	{
		json_t *f;
		size_t k;

		printf("%-24s %-16s %-8s ", json_string_value(json_object_get(u, "name")),
		       json_string_value(json_object_get(u, "role")),
		       json_is_true(json_object_get(u, "disabled")) ? "disabled" : "active");
		json_array_foreach(json_object_get(u, "fleets"), k, f)
			printf("%s%s", k ? "," : "", json_string_value(f));
		printf("\n");
	}
	json_decref(reply);
	return 0;
}

static int user_token(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	json_t *body = json_object(), *reply = NULL;
	char path[256];
	int r;

	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--label") == 0 && i + 1 < argc) {
			json_object_set_new(body, "label", json_string(argv[++i]));
		} else if (strcmp(argv[i], "--expires") == 0 && i + 1 < argc) {
			json_object_set_new(body, "expires_at", json_string(argv[++i]));
		} else {
			json_decref(body);
			return ctl_fail(EXIT_USAGE,
					"user token: unexpected '%s'; try pitstopctl --help",
					argv[i]);
		}
	}
	snprintf(path, sizeof(path), "/api/v1/users/%s/tokens", argv[2]);
	r = ctl_run(c, o, "user token", "POST", path, body, 201, &reply);
	if (r == 0 && !o->json)
		printf("%s\n", json_string_value(json_object_get(reply, "token")));
	json_decref(reply);
	return r;
}

static int cmd_user(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	char path[256];

	if (argc >= 3 && strcmp(argv[1], "add") == 0)
		return user_add(c, o, argc, argv);
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return user_list(c, o);
	if (argc >= 3 && strcmp(argv[1], "token") == 0)
		return user_token(c, o, argc, argv);
	if (argc == 3 && (strcmp(argv[1], "disable") == 0 || strcmp(argv[1], "enable") == 0)) {
		int r;

		snprintf(path, sizeof(path), "/api/v1/users/%s/%s", argv[2], argv[1]);
		r = ctl_run(c, o, argv[1], "POST", path, NULL, 200, NULL);
		if (r == 0 && !o->json)
			printf("user %s %sd\n", argv[2], argv[1]);
		return r;
	}
	return ctl_fail(EXIT_USAGE, "user: expected add, list, token, disable or enable; try "
				    "pitstopctl --help");
}

static int cmd_fleet(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	json_t *reply = NULL;
	char path[256];
	int r;

	if (argc == 3 && strcmp(argv[1], "add") == 0) {
		r = ctl_run(c, o, "fleet add", "POST", "/api/v1/fleets",
			    json_pack("{s:s}", "name", argv[2]), 201, NULL);
		if (r == 0 && !o->json)
			printf("fleet %s added\n", argv[2]);
		return r;
	}
	if (argc >= 4 && strcmp(argv[1], "assign") == 0) {
		json_t *vins = json_array();

		for (int i = 3; i < argc; i++)
			json_array_append_new(vins, json_string(argv[i]));
		snprintf(path, sizeof(path), "/api/v1/fleets/%s/vehicles", argv[2]);
		r = ctl_run(c, o, "fleet assign", "POST", path, json_pack("{s:o}", "vins", vins),
			    200, &reply);
		if (r == 0 && !o->json)
			printf("%d car(s) in fleet %s (%lld changed fleet)\n", argc - 3, argv[2],
			       (long long)json_integer_value(json_object_get(reply, "moved")));
		json_decref(reply);
		return r;
	}
	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		json_t *f;
		size_t i;

		r = ctl_run(c, o, "fleet list", "GET", "/api/v1/fleets", NULL, 200, &reply);
		if (r == 0 && !o->json) {
			printf("%-24s %s\n", "FLEET", "CARS");
			json_array_foreach(json_object_get(reply, "items"), i, f) printf(
				"%-24s %lld\n", json_string_value(json_object_get(f, "name")),
				(long long)json_integer_value(json_object_get(f, "vehicles")));
		}
		json_decref(reply);
		return r;
	}
	return ctl_fail(EXIT_USAGE,
			"fleet: expected add F, assign F VIN..., or list; try pitstopctl "
			"--help");
}

static int cmd_audit(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	static const char *const opts[] = { "limit", "actor", "action", NULL };
	json_t *reply = NULL, *row;
	size_t i;
	int r = ctl_get_opts(c, o, "audit", "/api/v1/audit", argc, argv, 1, opts, &reply);

	if (r == 0 && !o->json) {
		json_array_foreach(json_object_get(reply, "items"), i, row)
		{
			char *detail = json_dumps(json_object_get(row, "detail"), JSON_COMPACT);

			printf("%s %-16s %-14s %-24s %s\n",
			       json_string_value(json_object_get(row, "at")),
			       json_string_value(json_object_get(row, "actor")),
			       json_string_value(json_object_get(row, "action")),
			       json_string_value(json_object_get(row, "target")),
			       detail ? detail : "");
			free(detail);
		}
	}
	json_decref(reply);
	return r;
}

/* ---- service and telemetry imports (issue 10) -------------------------- */

void ctl_file_error(const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "%s\n", msg);
}

void ctl_file_progress(size_t rows, void *arg)
{
	fprintf(stderr, "%s: %zu rows checked\n", (const char *)arg, rows);
}

/* The row as the API takes it: the file's fields as strings. */
static json_t *import_row_json(enum service_import_kind kind, const struct service_import_row *row)
{
	char when[40], km[32], items[SERVICE_ITEMS_MAX * 48 + 1] = "";
	size_t n = 0;

	if (kind == SERVICE_IMPORT_SERVICES)
		service_day_name(row->time_ms / 86400000, when, sizeof(when));
	else
		views_iso8601(row->time_ms, when, sizeof(when));
	if (row->has_odometer)
		snprintf(km, sizeof(km), "%.3f", row->odometer_m / 1000.0);
	else
		km[0] = '\0';
	if (kind == SERVICE_IMPORT_ODOMETER)
		return json_pack("[s,s,s]", row->vin, when, km);
	for (size_t i = 0; i < row->rec.nitems; i++)
		n += (size_t)snprintf(items + n, sizeof(items) - n, "%s%s", i ? ";" : "",
				      row->rec.items[i]);
	return json_pack("[s,s,s,s]", row->vin, when, km, items);
}

/* The rows of a service import, for ctl_import_send(). */
struct service_rows {
	enum service_import_kind kind;
	const struct service_import_row *rows;
};

static json_t *service_row_json(size_t i, void *arg)
{
	const struct service_rows *s = arg;

	return import_row_json(s->kind, &s->rows[i]);
}

/* Draws "FILE [#####     ] done/n rows" on stderr (a tty), or one line per chunk. */
static void sent_progress(const char *file, size_t done, size_t n, int tty)
{
	char bar[41];
	size_t fill = n ? done * 40 / n : 40;

	if (!tty) {
		fprintf(stderr, "%s: %zu/%zu rows sent\n", file, done, n);
		return;
	}
	memset(bar, '#', fill);
	memset(bar + fill, ' ', 40 - fill);
	bar[40] = '\0';
	fprintf(stderr, "\r%s [%s] %zu/%zu rows", file, bar, done, n);
	if (done == n)
		fputc('\n', stderr);
	fflush(stderr);
}

int ctl_import_send(struct ctl_client *c, const struct ctl_api_opts *o, const char *file,
		    const char *base, json_t *begin, size_t n, size_t chunk_max,
		    json_t *(*row)(size_t i, void *arg), void *arg, long long *ret_id)
{
	json_t *reply = NULL;
	char url[256];
	long long id;
	int r, tty = isatty(STDERR_FILENO);

	r = ctl_run(c, o, "import", "POST", base, begin, 201, &reply);
	if (r)
		return r;
	id = json_integer_value(json_object_get(reply, "id"));
	json_decref(reply);
	snprintf(url, sizeof(url), "%s/%lld/rows", base, id);
	for (size_t done = 0; done < n;) {
		json_t *chunk = json_array();
		size_t bytes = 0, k = 0;

		/* Up to chunk_max rows, and well inside the API's body limit. */
		while (done + k < n && k < chunk_max && bytes < CHUNK_BYTES) {
			json_t *one = row(done + k++, arg);
			char *text = json_dumps(one, JSON_COMPACT);

			bytes += text ? strlen(text) + 1 : 0;
			free(text);
			json_array_append_new(chunk, one);
		}
		r = ctl_run(c, &(struct ctl_api_opts){ 0 }, "import", "POST", url,
			    json_pack("{s:o}", "rows", chunk), 200, NULL);
		if (r) {
			if (tty)
				fputc('\n', stderr);
			return ctl_fail(1,
					"%s: nothing imported (import %lld stays uncommitted and "
					"unseen)",
					file, id);
		}
		done += k;
		if (done < n || k < n)
			sent_progress(file, done, n, tty);
	}
	snprintf(url, sizeof(url), "%s/%lld/commit", base, id);
	r = ctl_run(c, o, "import", "POST", url, NULL, 200, NULL);
	*ret_id = id;
	return r;
}

/*
 * FILE checked whole (every bad line said as FILE:LINE: what), then sent
 * in chunks of SERVICE_IMPORT_CHUNK rows to one import that is committed
 * at the end: the rows become visible together, or (any failure on the
 * way) never. docs/service-prediction.md.
 */
static int cmd_import(struct ctl_client *c, const struct ctl_api_opts *o,
		      enum service_import_kind kind, const char *path)
{
	struct service_import_row *rows = NULL;
	struct service_rows sr;
	long long id = 0;
	int n, r;

	n = service_csv_read(path, kind, ctl_file_error, ctl_file_progress, (void *)path, &rows);
	if (n == -EINVAL)
		return ctl_fail(1, "%s: nothing imported: fix the lines above", path);
	if (n < 0)
		return ctl_fail(1, "%s: nothing imported (%s)", path, strerror(-n));
	sr = (struct service_rows){ kind, rows };
	r = ctl_import_send(c, o, path, "/api/v1/service/imports",
			    json_pack("{s:s,s:s,s:i}", "kind",
				      kind == SERVICE_IMPORT_SERVICES ? "services" : "odometer",
				      "file", path, "rows", n),
			    (size_t)n, SERVICE_IMPORT_CHUNK, service_row_json, &sr, &id);
	free(rows);
	if (r == 0 && !o->json)
		printf("%s: %d rows imported (import %lld)\n", path, n, id);
	return r;
}

static int service_record(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	json_t *body = json_object();
	char path[128];
	int r;

	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc) {
			json_decref(body);
			return ctl_fail(EXIT_USAGE, "service record: %s needs a value", a);
		}
		if (strcmp(a, "--date") == 0)
			json_object_set_new(body, "date", json_string(argv[++i]));
		else if (strcmp(a, "--items") == 0)
			json_object_set_new(body, "items", json_string(argv[++i]));
		else if (strcmp(a, "--workshop") == 0)
			json_object_set_new(body, "workshop", json_string(argv[++i]));
		else if (strcmp(a, "--advisories") == 0)
			json_object_set_new(body, "advisories", json_string(argv[++i]));
		else if (strcmp(a, "--odometer-km") == 0 || strcmp(a, "--cost") == 0) {
			char *end;
			double v = strtod(argv[++i], &end);

			if (*end || end == argv[i]) {
				json_decref(body);
				return ctl_fail(EXIT_USAGE,
						"service record: %s %s: expected a number", a,
						argv[i]);
			}
			json_object_set_new(body, a[2] == 'o' ? "odometer_km" : "cost",
					    json_real(v));
		} else {
			json_decref(body);
			return ctl_fail(EXIT_USAGE,
					"service record: unexpected '%s'; try pitstopctl --help",
					a);
		}
	}
	snprintf(path, sizeof(path), "/api/v1/vehicles/%s/services", argv[2]);
	r = ctl_run(c, o, "service record", "POST", path, body, 201, NULL);
	if (r == 0 && !o->json)
		printf("service recorded for %s\n", argv[2]);
	return r;
}

static int service_override(struct ctl_client *c, const struct ctl_api_opts *o, int argc,
			    char **argv)
{
	long long km = 0, months = 0;
	char path[128], *end;
	int r;

	for (int i = 4; i < argc; i++) {
		long long *dst = strcmp(argv[i], "--every-km") == 0	  ? &km
				 : strcmp(argv[i], "--every-months") == 0 ? &months
									  : NULL;

		if (!dst || i + 1 >= argc)
			return ctl_fail(EXIT_USAGE,
					"service override: unexpected '%s'; expected --every-km N "
					"and/or --every-months M",
					argv[i]);
		*dst = strtoll(argv[++i], &end, 10);
		if (*end || end == argv[i] || *dst < 0)
			return ctl_fail(EXIT_USAGE,
					"service override: %s %s: expected a whole "
					"number >= 0",
					argv[i - 1], argv[i]);
	}
	snprintf(path, sizeof(path), "/api/v1/vehicles/%s/service-overrides", argv[2]);
	r = ctl_run(
		c, o, "service override", "POST", path,
		json_pack("{s:s,s:I,s:I}", "item", argv[3], "every_km", km, "every_months", months),
		200, NULL);
	if (r == 0 && !o->json)
		printf("%s %s: every %lld km / %lld months\n", argv[2], argv[3], km, months);
	return r;
}

static int cmd_service(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "record") == 0)
		return service_record(c, o, argc, argv);
	if (argc >= 4 && strcmp(argv[1], "override") == 0)
		return service_override(c, o, argc, argv);
	if (argc == 3 && strcmp(argv[1], "import") == 0)
		return cmd_import(c, o, SERVICE_IMPORT_SERVICES, argv[2]);
	return ctl_fail(EXIT_USAGE, "service: expected record VIN, override VIN ITEM, import "
				    "FILE, predict VIN or due; try pitstopctl --help");
}

int ctl_api_command(const struct ctl_api_opts *o, int argc, char **argv)
{
	struct ctl_client c;
	int r;

	if (argc < 2 && strcmp(argv[0], "audit") != 0)
		return ctl_fail(EXIT_USAGE, "%s: which subcommand? try pitstopctl --help", argv[0]);
	r = ctl_client_open(o, &c);
	if (r) {
		ctl_client_close(&c);
		return r;
	}
	if (strcmp(argv[0], "user") == 0)
		r = cmd_user(&c, o, argc, argv);
	else if (strcmp(argv[0], "fleet") == 0)
		r = cmd_fleet(&c, o, argc, argv);
	else if (strcmp(argv[0], "service") == 0)
		r = cmd_service(&c, o, argc, argv);
	else if (strcmp(argv[0], "telemetry") == 0 && argc == 3 && strcmp(argv[1], "import") == 0)
		r = cmd_import(&c, o, SERVICE_IMPORT_ODOMETER, argv[2]);
	else if (strcmp(argv[0], "telemetry") == 0)
		r = ctl_fail(EXIT_USAGE, "telemetry: expected import FILE; try pitstopctl --help");
	else if (strcmp(argv[0], "poi") == 0)
		r = ctl_poi_command(&c, o, argc, argv);
	else if (strcmp(argv[0], "offer") == 0)
		r = ctl_offer_command(&c, o, argc, argv);
	else if (strcmp(argv[0], "promo") == 0 || strcmp(argv[0], "vehicle") == 0)
		r = ctl_promo_command(&c, o, argc, argv);
	else
		r = cmd_audit(&c, o, argc, argv);
	ctl_client_close(&c);
	return r;
}
