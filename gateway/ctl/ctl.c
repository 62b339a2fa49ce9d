/*
 * pitstopctl: the operator's tool. It makes the fleet PKI, reads what the
 * gateway stored (counters, vehicles, history, daily rollups, offers)
 * through a read-only database handle and the domains' own functions, and
 * signs offers by hand exactly as the gateway does. It never writes to the
 * gateway's database, so it is safe next to running gateways (SQLite WAL
 * lets readers and the writer run side by side; PostgreSQL handles are
 * opened read-only).
 *
 * Global options, accepted anywhere on the command line: --config FILE (the
 * gateway's config; its db key says where the database is), --db PATH (wins
 * over the config), --json (machine-readable output through jansson), --help.
 *
 * Exit codes: 0 success, 1 failure (unknown vehicle, I/O, crypto), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"
#include "counters.h"
#include "crypto.h"
#include "ctl_api.h"
#include "gwconfig.h"
#include "log.h"
#include "offer_signing.h"
#include "offers.h"
#include "offer_log.h"
#include "pki.h"
#include "reminders.h"
#include "schema.h"
#include "service.h"
#include "telemetry.h"
#include "views.h"
#include "vin.h"

#define EXIT_USAGE 2
#define MAX_ARGS 64
#define JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(12))
/* vehicle list --online: seen within this many minutes (--online-within). */
#define ONLINE_WITHIN_MIN (VIEWS_ONLINE_WINDOW_MS / 60000) /* the API's "online" too */

struct ctl {
	const char *config_path; /* borrowed from argv, NULL = none */
	const char *db;		 /* borrowed, --db */
	int json;
	const char *api_url;  /* borrowed, --api */
	const char *token;    /* borrowed, --token */
	int argc;	      /* what is left after the global options */
	char *argv[MAX_ARGS]; /* borrowed from argv */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pitstopctl [--config FILE] [--db PATH] [--json] COMMAND ...\n"
		"\n"
		"commands:\n"
		"  pki init DIR                 make the fleet CA, broker, gateway and offer keys\n"
		"                               (creates DIR and its missing parents)\n"
		"  pki broker DIR --dns NAME|--ip ADDR ...\n"
		"                               (re)issue broker.crt/.key for the names clients\n"
		"                               connect to (repeat --dns/--ip; at most 16)\n"
		"  pki api DIR --dns NAME|--ip ADDR ...\n"
		"                               issue api.crt/.key: the gateway's HTTPS "
		"certificate\n"
		"                               (api_cert_file) for the names browsers dial\n"
		"  pki vehicle VIN DIR          issue a vehicle certificate (CN=VIN); DIR needs\n"
		"                               only ca.crt and ca.key (an offline CA)\n"
		"  pki gateway NAME DIR         issue a gateway instance's certificate (CN=NAME:\n"
		"                               pitstop-gateway-<a-z0-9->)\n"
		"  pki revoke VIN|NAME DIR      revoke that certificate: add it to DIR/ca.crl\n"
		"                               (reload the broker: docs/operations.md)\n"
		"  pki crl DIR                  write DIR/ca.crl anew (for a PKI older than it)\n"
		"  stats                        gateway counters, totals and per instance\n"
		"  vehicle list [--after VIN] [--limit N] [FILTERS]  vehicles, in VIN order\n"
		"      --online | --offline     seen within (not within) the last 10 minutes\n"
		"      --online-within MIN      ... the last MIN minutes instead\n"
		"      --seen-since T, --not-seen-since T\n"
		"                               T: ISO 8601 UTC, unix ms or an age: 30m, 2h, 7d\n"
		"      --low-fuel [PCT]         fuel at or below PCT %% (default: the config's\n"
		"                               low_fuel_pct, 15)\n"
		"  vehicle show VIN             latest state of a vehicle\n"
		"  vehicle history VIN [--from T] [--to T] [--limit N]\n"
		"                               stored samples, oldest first (T: unix ms or\n"
		"                               ISO 8601 UTC; --limit N: the newest N)\n"
		"  vehicle days VIN [--from DATE] [--to DATE]  daily rollups (UTC days)\n"
		"  vehicle offers VIN           offers issued to a vehicle\n"
		"  service predict VIN [--as-of DATE]\n"
		"                               when each maintenance item is due (as known on "
		"DATE)\n"
		"  service due [--as-of DATE] [--within-days N]\n"
		"                               what is due or due within N days (default 30)\n"
		"  task list                    the CRM team's open tasks (service reminders)\n"
		"  offer sign --key PEM --vin VIN --title T --out FILE [--body B] [--promo P]\n"
		"             [--kind refuel|service|inspection|loyalty|test_drive] [--id ID]\n"
		"             [--valid-from-ms MS] [--valid-until-ms MS]\n"
		"                               write a SignedOffer as the gateway would publish "
		"it\n"
		"through the gateway's API (its checks and audit trail apply):\n"
		"%s%s%s%s"
		"\n"
		"--config FILE reads the database (db) from the gateway's config;\n"
		"--db PATH|URL overrides it. The API commands use the config's api_socket\n"
		"(root or the gateway's user: the local operator), or --api URL with\n"
		"--token TOKEN (or $PITSTOP_TOKEN). Exit codes: 0 ok, 1 failure, 2 usage error.\n",
		ctl_api_usage, ctl_poi_usage, ctl_offer_usage, ctl_promo_usage);
}

/* Prints root and frees it. Returns 0 or 1. */
static int json_print(json_t *root)
{
	int r;

	if (!root)
		return ctl_fail(1, "out of memory");
	r = json_dumpf(root, stdout, JSON_FLAGS);
	fputc('\n', stdout);
	json_decref(root);
	return r < 0 ? 1 : 0;
}

/* The read-only database and the domains pitstopctl reads through. */
struct ctl_db {
	struct db *db;		     /* owned */
	struct telemetry *telemetry; /* owned */
	struct offer_log *offers;    /* owned */
	int low_fuel_pct;	     /* the gateway config's (its default without --config) */
	char plans_file[512];	     /* the gateway config's service_plans_file */
};

static void close_db(struct ctl_db *d)
{
	offer_log_free(d->offers);
	telemetry_free(d->telemetry);
	db_close(d->db);
	memset(d, 0, sizeof(*d));
}

/* Opens the gateway database read-only. Returns 0 or an exit code. */
static int open_db(const struct ctl *ctl, struct ctl_db *d)
{
	struct gw_config conf;
	char err[512];
	int r;

	memset(d, 0, sizeof(*d));
	memset(&conf, 0, sizeof(conf));
	r = gw_config_load(ctl->config_path, &conf, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	d->low_fuel_pct = conf.low_fuel_pct;
	snprintf(d->plans_file, sizeof(d->plans_file), "%s",
		 conf.service_plans_file ? conf.service_plans_file : "");
	r = schema_open(ctl->db ? ctl->db : conf.db, DB_READ_ONLY, &d->db, err, sizeof(err));
	gw_config_free(&conf);
	if (r < 0)
		return ctl_fail(1, "cannot open the database: %s", err);
	r = telemetry_new(d->db, &d->telemetry);
	if (r == 0)
		r = offer_log_new(d->db, &d->offers);
	if (r < 0) {
		close_db(d);
		return ctl_fail(1, "cannot read the database: %s", strerror(-r));
	}
	return 0;
}

/* ---- pki ---- */

/* pki broker DIR --dns NAME ... --ip ADDR ...: the broker's certificate for its real names. */
static int pki_server(struct ctl *ctl)
{
	const char *kind = ctl->argv[1]; /* broker or api */
	const char *dns[PKI_BROKER_NAMES_MAX], *ip[PKI_BROKER_NAMES_MAX], *dir = NULL;
	struct pki_names names = { dns, 0, ip, 0 };
	char err[512] = "";
	int r;

	for (int i = 2; i < ctl->argc; i++) {
		const char *a = ctl->argv[i];
		int is_dns = strcmp(a, "--dns") == 0;

		if (!is_dns && strcmp(a, "--ip") != 0) {
			if (*a == '-' || dir)
				return ctl_fail(EXIT_USAGE, "pki %s: unexpected argument '%s'",
						kind, a);
			dir = a;
			continue;
		}
		if (i + 1 >= ctl->argc)
			return ctl_fail(EXIT_USAGE, "pki %s: %s needs a value", kind, a);
		if (names.n_dns + names.n_ip == PKI_BROKER_NAMES_MAX)
			return ctl_fail(EXIT_USAGE, "pki %s: at most %d names in all", kind,
					PKI_BROKER_NAMES_MAX);
		if (is_dns)
			dns[names.n_dns++] = ctl->argv[++i];
		else
			ip[names.n_ip++] = ctl->argv[++i];
	}
	if (!dir || names.n_dns + names.n_ip == 0)
		return ctl_fail(EXIT_USAGE, "pki %s: usage: pki %s DIR --dns NAME|--ip ADDR ...",
				kind, kind);
	if (pki_names_check(&names, err, sizeof(err)) < 0)
		return ctl_fail(EXIT_USAGE, "pki %s: %s", kind, err);
	if (strcmp(kind, "api") == 0)
		r = pki_issue_api(dir, &names, err, sizeof(err));
	else
		r = pki_issue_broker(dir, &names, err, sizeof(err));
	if (r < 0)
		return ctl_fail(1, "pki %s: %s", kind, *err ? err : strerror(-r));
	if (strcmp(kind, "api") == 0)
		printf("API certificate written to %s/api.crt (%zu name%s); set api_cert_file and "
		       "api_key_file to api.crt and api.key and restart the gateway\n",
		       dir, names.n_dns + names.n_ip, names.n_dns + names.n_ip == 1 ? "" : "s");
	else
		printf("broker certificate written to %s/broker.crt (%zu name%s); copy broker.crt "
		       "and broker.key to the broker and restart it\n",
		       dir, names.n_dns + names.n_ip, names.n_dns + names.n_ip == 1 ? "" : "s");
	return 0;
}

/* The commands: each returns the process exit code. */
static int cmd_pki(struct ctl *ctl)
{
	char err[512] = "";
	int r;

	if (ctl->argc == 3 && strcmp(ctl->argv[1], "init") == 0) {
		r = pki_init(ctl->argv[2], err, sizeof(err));
		if (r < 0)
			return ctl_fail(1, "pki init: %s", *err ? err : strerror(-r));
		printf("fleet PKI written to %s\n", ctl->argv[2]);
		return 0;
	}
	if (ctl->argc == 4 && strcmp(ctl->argv[1], "vehicle") == 0) {
		if (!vin_valid(ctl->argv[2]))
			return ctl_fail(EXIT_USAGE, "'%s' is not a valid VIN", ctl->argv[2]);
		r = pki_issue_vehicle(ctl->argv[3], ctl->argv[2], err, sizeof(err));
		if (r < 0)
			return ctl_fail(1, "pki vehicle: %s", *err ? err : strerror(-r));
		printf("certificate for %s written to %s/vehicles/\n", ctl->argv[2], ctl->argv[3]);
		return 0;
	}
	if (ctl->argc == 4 && strcmp(ctl->argv[1], "gateway") == 0) {
		if (!pki_gateway_name_valid(ctl->argv[2]))
			return ctl_fail(EXIT_USAGE,
					"'%s' is not a gateway name: " PKI_GATEWAY_CN
					" or " PKI_GATEWAY_CN
					"-<suffix> (a-z, 0-9, -), at most %d characters",
					ctl->argv[2], PKI_GATEWAY_NAME_MAX);
		r = pki_issue_gateway(ctl->argv[3], ctl->argv[2], err, sizeof(err));
		if (r < 0)
			return ctl_fail(1, "pki gateway: %s", *err ? err : strerror(-r));
		printf("certificate for gateway %s written to %s\n", ctl->argv[2], ctl->argv[3]);
		return 0;
	}
	if (ctl->argc >= 2 &&
	    (strcmp(ctl->argv[1], "broker") == 0 || strcmp(ctl->argv[1], "api") == 0))
		return pki_server(ctl);
	if (ctl->argc == 3 && strcmp(ctl->argv[1], "crl") == 0) {
		r = pki_write_crl(ctl->argv[2], err, sizeof(err));
		if (r < 0)
			return ctl_fail(1, "pki crl: %s", *err ? err : strerror(-r));
		printf("revocation list written to %s/ca.crl\n", ctl->argv[2]);
		return 0;
	}
	if (ctl->argc == 4 && strcmp(ctl->argv[1], "revoke") == 0) {
		r = pki_revoke(ctl->argv[3], ctl->argv[2], err, sizeof(err));
		if (r == -EINVAL && !vin_valid(ctl->argv[2]) &&
		    !pki_gateway_name_valid(ctl->argv[2]))
			return ctl_fail(EXIT_USAGE, "pki revoke: %s", err);
		if (r < 0)
			return ctl_fail(1, "pki revoke: %s", *err ? err : strerror(-r));
		printf("%s revoked in %s/ca.crl; reload the broker to apply it\n", ctl->argv[2],
		       ctl->argv[3]);
		return 0;
	}
	usage(stderr);
	return EXIT_USAGE;
}

/* ---- stats ---- */

static void print_counter(const char *name, uint64_t value, void *arg)
{
	printf("%s%-22s %" PRIu64 "\n", (const char *)arg, name, value);
}

/* The text form of one set of counters, each line prefixed with indent. */
static void print_counters(const struct counters *c, const char *indent)
{
	counters_each(c, print_counter, (void *)indent);
}

static int cmd_stats(struct ctl *ctl)
{
	struct ctl_db d;
	struct counters_instance *rows = NULL;
	struct counters sum;
	size_t n = 0;
	char when[40];
	int r, more = 0;

	if (ctl->argc != 1)
		return ctl_fail(EXIT_USAGE, "stats: unexpected argument '%s'", ctl->argv[1]);
	r = open_db(ctl, &d);
	if (r)
		return r;
	r = counters_list(d.db, &rows, &n, &more);
	if (r < 0) {
		r = ctl_fail(1, "reading the counters failed: %s", strerror(-r));
		goto out;
	}
	memset(&sum, 0, sizeof(sum));
	for (size_t i = 0; i < n; i++)
		counters_add(&sum, &rows[i].c);
	if (ctl->json) {
		json_t *root = json_object(), *inst = json_array();

		views_counters(root, &sum);
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object();

			json_object_set_new(o, "id", json_string(rows[i].id));
			json_object_set_new(o, "updated_at", views_time(rows[i].updated_at_ms));
			views_counters(o, &rows[i].c);
			json_array_append_new(inst, o);
		}
		json_object_set_new(root, "instances", inst);
		json_object_set_new(root, "instances_truncated", json_boolean(more));
		r = json_print(root);
		goto out;
	}
	printf("total over %zu instance%s%s\n", n, n == 1 ? "" : "s",
	       more ? " (more instances not listed)" : "");
	print_counters(&sum, "  ");
	for (size_t i = 0; i < n; i++) {
		views_iso8601(rows[i].updated_at_ms, when, sizeof(when));
		printf("instance %s (updated %s)\n", rows[i].id, when);
		print_counters(&rows[i].c, "  ");
	}
	r = 0;
out:
	free(rows);
	close_db(&d);
	return r;
}

/* ---- vehicle ---- */

/* A JSON number, or null when the value was never reported. */
static json_t *opt_real(int present, double v)
{
	return present ? json_real(v) : json_null();
}

/* Parses a non-negative decimal; returns 0 or -EINVAL. */
static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* Parses a signed decimal; returns 0 or -EINVAL. */
static int parse_i64(const char *s, int64_t *ret)
{
	char *end;
	long long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

/*
 * Parses a time: unix milliseconds, or ISO 8601 UTC as YYYY-MM-DD or
 * YYYY-MM-DDTHH:MM[:SS][Z]. Returns 0 or -EINVAL.
 */
static int parse_time(const char *s, int64_t *ret_ms)
{
	struct tm tm;
	const char *end;

	if (parse_i64(s, ret_ms) == 0)
		return 0;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%d", &tm);
	if (!end)
		return -EINVAL;
	if (*end == 'T') {
		const char *e2 = strptime(end + 1, "%H:%M:%S", &tm);

		if (!e2)
			e2 = strptime(end + 1, "%H:%M", &tm);
		if (!e2)
			return -EINVAL;
		end = e2;
	}
	if (*end == 'Z')
		end++;
	if (*end)
		return -EINVAL;
	*ret_ms = (int64_t)timegm(&tm) * 1000;
	return 0;
}

/* The wall clock in unix ms. */
static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Parses a time for the seen filters: what parse_time() takes, or an age
 * N{s,m,h,d,w} (that long before now). Returns 0 or -EINVAL.
 */
static int parse_when(const char *s, int64_t *ret_ms)
{
	static const struct {
		char unit;
		int64_t ms;
	} units[] = { { 's', 1000 },
		      { 'm', 60000 },
		      { 'h', 3600000 },
		      { 'd', 86400000 },
		      { 'w', 7 * 86400000LL } };
	size_t len = s ? strlen(s) : 0;
	char num[24];
	uint64_t n;

	if (len >= 2 && len < sizeof(num)) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (s[len - 1] != units[i].unit)
				continue;
			memcpy(num, s, len - 1);
			num[len - 1] = '\0';
			if (parse_u64(num, &n) < 0 || n > (uint64_t)(INT64_MAX / 4 / units[i].ms))
				return -EINVAL;
			*ret_ms = wall_ms() - (int64_t)n * units[i].ms;
			return 0;
		}
	}
	return parse_time(s, ret_ms);
}

/* Parses a fuel percentage 0..100 with at most one decimal into permille. */
static int parse_pct(const char *s, int *ret_permille)
{
	char *end;
	double v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0.0 && v <= 100.0))
		return -EINVAL;
	*ret_permille = (int)(v * 10.0 + 0.5);
	return 0;
}

/* "2026-12-01" for a UTC day number. */
static void day_name(int64_t day, char *buf, size_t size)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d", &tm);
}

static const char *online_name(enum telemetry_online o)
{
	return o == TELEMETRY_ONLINE_UNKNOWN ? "unknown" : o == TELEMETRY_ONLINE ? "yes" : "no";
}

/* The JSON form of a vehicle's latest state. */
static json_t *json_vehicle(const struct telemetry_vehicle *v)
{
	json_t *o = json_object();

	json_object_set_new(o, "vin", json_string(v->vin));
	json_object_set_new(o, "odometer_km",
			    opt_real(v->present & SAMPLE_ODOMETER, (double)v->odometer_m / 1000.0));
	json_object_set_new(o, "odometer_estimated",
			    (v->present & SAMPLE_ODOMETER)
				    ? json_boolean(v->present & SAMPLE_ODOMETER_EST)
				    : json_null());
	json_object_set_new(o, "fuel_pct",
			    opt_real(v->present & SAMPLE_FUEL, v->fuel_permille / 10.0));
	json_object_set_new(o, "lat", opt_real(v->present & SAMPLE_POSITION, v->lat_e7 / 1e7));
	json_object_set_new(o, "lon", opt_real(v->present & SAMPLE_POSITION, v->lon_e7 / 1e7));
	json_object_set_new(o, "speed_kmh",
			    opt_real(v->present & SAMPLE_SPEED, v->speed_cms * 0.036));
	json_object_set_new(o, "heading_deg",
			    opt_real(v->present & SAMPLE_HEADING, v->heading_cdeg / 100.0));
	json_object_set_new(o, "fix", v->has_sample ? views_fix(v->fix) : json_null());
	json_object_set_new(o, "online",
			    v->online == TELEMETRY_ONLINE_UNKNOWN
				    ? json_null()
				    : json_boolean(v->online == TELEMETRY_ONLINE));
	json_object_set_new(o, "updated_at", v->has_sample ? views_time(v->time_ms) : json_null());
	json_object_set_new(o, "last_seen", v->seen_ms ? views_time(v->seen_ms) : json_null());
	json_object_set_new(o, "batches", json_integer(v->batches));
	json_object_set_new(o, "samples", json_integer(v->samples));
	return o;
}

/* The bounds a vehicle list applied, so a script can tell what it got. */
static json_t *json_filter(const struct telemetry_list_filter *f)
{
	json_t *o = json_object();

	json_object_set_new(o, "seen_since",
			    f->seen_since_ms ? views_time(f->seen_since_ms) : json_null());
	json_object_set_new(o, "not_seen_since",
			    f->seen_before_ms ? views_time(f->seen_before_ms) : json_null());
	json_object_set_new(o, "max_fuel_pct",
			    f->has_max_fuel ? json_real(f->max_fuel_permille / 10.0) : json_null());
	return o;
}

/* Formats an optional number for the text tables. */
static const char *opt_fmt(char *buf, size_t size, int present, int decimals, double v)
{
	if (!present)
		return "-";
	snprintf(buf, size, "%.*f", decimals, v);
	return buf;
}

static json_t *next_service(struct ctl_db *d, const char *vin);

/*
 * The vehicle subcommands print to stdout and return the exit code (errors
 * are one line on stderr).
 */
static int vehicle_show(struct ctl *ctl, struct ctl_db *d, const char *vin)
{
	struct telemetry_vehicle v;
	char when[40] = "-";
	int r;

	r = telemetry_vehicle_get(d->telemetry, vin, &v);
	if (r == -ENOENT)
		return ctl_fail(1, "unknown vehicle %s", vin);
	if (r < 0)
		return ctl_fail(1, "reading vehicle %s failed: %s", vin, strerror(-r));
	if (ctl->json) {
		json_t *o = json_vehicle(&v);

		json_object_set_new(o, "next_service", next_service(d, vin));
		return json_print(o);
	}
	if (v.has_sample)
		views_iso8601(v.time_ms, when, sizeof(when));
	printf("vin          %s\n", v.vin);
	printf("updated_at   %s\n", when);
	printf("online       %s\n", online_name(v.online));
	if (v.present & SAMPLE_ODOMETER)
		printf("odometer     %.3f km%s\n", (double)v.odometer_m / 1000.0,
		       (v.present & SAMPLE_ODOMETER_EST) ? " (estimated by the car)" : "");
	if (v.present & SAMPLE_FUEL)
		printf("fuel         %.1f %%\n", v.fuel_permille / 10.0);
	if (v.present & SAMPLE_POSITION)
		printf("position     %.7f, %.7f\n", v.lat_e7 / 1e7, v.lon_e7 / 1e7);
	if (v.present & SAMPLE_SPEED)
		printf("speed        %.1f km/h\n", v.speed_cms * 0.036);
	if (v.present & SAMPLE_HEADING)
		printf("heading      %.2f deg\n", v.heading_cdeg / 100.0);
	if (v.has_sample && views_fix_name(v.fix))
		printf("fix          %s\n", views_fix_name(v.fix));
	printf("stored       %" PRId64 " batch%s, %" PRId64 " sample%s\n", v.batches,
	       v.batches == 1 ? "" : "es", v.samples, v.samples == 1 ? "" : "s");
	{
		json_t *ns = next_service(d, vin);

		if (json_is_object(ns))
			printf("next service %s on %s (%s)%s\n",
			       json_string_value(json_object_get(ns, "item")),
			       json_string_value(json_object_get(ns, "due_date")),
			       json_string_value(json_object_get(ns, "reason")),
			       json_is_true(json_object_get(ns, "is_service_due")) ? ": due now"
										   : "");
		json_decref(ns);
	}
	return 0;
}

/* What vehicle list was asked for, beyond the page (struct telemetry_list_filter). */
struct list_opts {
	int online, offline;			  /* --online / --offline */
	int64_t online_within_ms;		  /* --online-within MIN */
	int64_t seen_since_ms, not_seen_since_ms; /* 0: not given */
	int low_fuel;				  /* --low-fuel */
	int low_fuel_permille;			  /* its PCT; -1: the gateway's low_fuel_pct */
};

static int vehicle_list(struct ctl *ctl, struct ctl_db *d, const char *after, size_t limit,
			const struct list_opts *lo)
{
	struct telemetry_list_filter f = { .after_vin = after, .limit = limit };
	struct telemetry_vehicle *rows = NULL;
	int64_t now = wall_ms(), cut = now - lo->online_within_ms;
	size_t n = 0;
	int r, more = 0;

	/* every bound holds at once: the latest "since", the earliest "before" */
	f.seen_since_ms = lo->seen_since_ms;
	if (lo->online && (!f.seen_since_ms || cut > f.seen_since_ms))
		f.seen_since_ms = cut;
	f.seen_before_ms = lo->not_seen_since_ms;
	if (lo->offline && (!f.seen_before_ms || cut < f.seen_before_ms))
		f.seen_before_ms = cut;
	if (lo->low_fuel) {
		f.has_max_fuel = 1;
		f.max_fuel_permille =
			lo->low_fuel_permille >= 0 ? lo->low_fuel_permille : d->low_fuel_pct * 10;
	}
	r = telemetry_list(d->telemetry, &f, &rows, &n, &more);
	if (r < 0)
		return ctl_fail(1, "listing the vehicles failed: %s", strerror(-r));
	if (ctl->json) {
		json_t *root = json_object(), *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_vehicle(&rows[i]));
		json_object_set_new(root, "vehicles", arr);
		json_object_set_new(root, "next_after",
				    more ? json_string(rows[n - 1].vin) : json_null());
		json_object_set_new(root, "filter", json_filter(&f));
		free(rows);
		return json_print(root);
	}
	printf("%-17s %-7s %-24s %-24s %12s %6s\n", "vin", "online", "last_seen", "updated_at",
	       "odometer_km", "fuel%");
	for (size_t i = 0; i < n; i++) {
		const struct telemetry_vehicle *v = &rows[i];
		char seen[40] = "never", when[40] = "-", b1[32], b2[32];

		if (v->seen_ms)
			views_iso8601(v->seen_ms, seen, sizeof(seen));
		if (v->has_sample)
			views_iso8601(v->time_ms, when, sizeof(when));
		printf("%-17s %-7s %-24s %-24s %12s %6s\n", v->vin, online_name(v->online), seen,
		       when,
		       opt_fmt(b1, sizeof(b1), v->present & SAMPLE_ODOMETER, 3,
			       (double)v->odometer_m / 1000.0),
		       opt_fmt(b2, sizeof(b2), v->present & SAMPLE_FUEL, 1,
			       v->fuel_permille / 10.0));
	}
	if (more)
		printf("(more: pitstopctl vehicle list --after %s)\n", rows[n - 1].vin);
	free(rows);
	return 0;
}

static int vehicle_history(struct ctl *ctl, struct ctl_db *d, const char *vin, int64_t from,
			   int64_t to, size_t limit)
{
	struct telemetry_sample *rows = NULL;
	size_t n = 0;
	int r, truncated = 0;

	r = telemetry_history(d->telemetry, vin, from, to, limit, &rows, &n, &truncated);
	if (r == -ENOENT)
		return ctl_fail(1, "unknown vehicle %s", vin);
	if (r < 0)
		return ctl_fail(1, "reading the history of %s failed: %s", vin, strerror(-r));
	if (truncated)
		fprintf(stderr,
			"pitstopctl: the range holds more than %d samples: only the newest are "
			"listed (narrow it with --from/--to)\n",
			TELEMETRY_HISTORY_MAX);
	if (ctl->json) {
		json_t *arr = json_array();
		char ep[24];

		for (size_t i = 0; i < n; i++) {
			const struct sample *x = &rows[i].s;
			json_t *o = json_object();

			snprintf(ep, sizeof(ep), "%016" PRIx64, rows[i].epoch);
			json_object_set_new(o, "epoch", json_string(ep));
			json_object_set_new(o, "seq", json_integer((json_int_t)rows[i].seq));
			json_object_set_new(o, "time_ms", json_integer(x->time_ms));
			json_object_set_new(o, "time", views_time(x->time_ms));
			json_object_set_new(o, "odometer_m",
					    x->present & SAMPLE_ODOMETER
						    ? json_integer(x->odometer_m)
						    : json_null());
			json_object_set_new(
				o, "fuel_pct",
				opt_real(x->present & SAMPLE_FUEL, x->fuel_permille / 10.0));
			json_object_set_new(
				o, "lat", opt_real(x->present & SAMPLE_POSITION, x->lat_e7 / 1e7));
			json_object_set_new(
				o, "lon", opt_real(x->present & SAMPLE_POSITION, x->lon_e7 / 1e7));
			json_object_set_new(
				o, "speed_kmh",
				opt_real(x->present & SAMPLE_SPEED, x->speed_cms * 0.036));
			json_object_set_new(
				o, "heading_deg",
				opt_real(x->present & SAMPLE_HEADING, x->heading_cdeg / 100.0));
			json_object_set_new(o, "fix", views_fix(x->fix));
			json_object_set_new(o, "implausible", json_boolean(rows[i].implausible));
			json_array_append_new(arr, o);
		}
		free(rows);
		return json_print(arr);
	}
	printf("%-8s %-24s %12s %6s %12s %13s %7s %7s %4s\n", "seq", "time", "odometer_m", "fuel%",
	       "lat", "lon", "km/h", "hdg", "fix");
	for (size_t i = 0; i < n; i++) {
		const struct sample *x = &rows[i].s;
		char when[40], b1[32], b2[32], b3[32], b4[32], b5[32], b6[32];

		views_iso8601(x->time_ms, when, sizeof(when));
		printf("%-8" PRIu64 " %-24s %12s %6s %12s %13s %7s %7s %4s%s\n", rows[i].seq, when,
		       opt_fmt(b1, sizeof(b1), x->present & SAMPLE_ODOMETER, 0,
			       (double)x->odometer_m),
		       opt_fmt(b2, sizeof(b2), x->present & SAMPLE_FUEL, 1,
			       x->fuel_permille / 10.0),
		       opt_fmt(b3, sizeof(b3), x->present & SAMPLE_POSITION, 7, x->lat_e7 / 1e7),
		       opt_fmt(b4, sizeof(b4), x->present & SAMPLE_POSITION, 7, x->lon_e7 / 1e7),
		       opt_fmt(b5, sizeof(b5), x->present & SAMPLE_SPEED, 1, x->speed_cms * 0.036),
		       opt_fmt(b6, sizeof(b6), x->present & SAMPLE_HEADING, 2,
			       x->heading_cdeg / 100.0),
		       views_fix_name(x->fix) ? views_fix_name(x->fix) : "-",
		       rows[i].implausible ? "  (implausible: set apart)" : "");
	}
	free(rows);
	return 0;
}

static int vehicle_days(struct ctl *ctl, struct ctl_db *d, const char *vin, int64_t from,
			int64_t to)
{
	struct telemetry_day *rows = NULL;
	size_t n = 0;
	int r, truncated = 0;

	r = telemetry_days(d->telemetry, vin, telemetry_day_of(from), telemetry_day_of(to), &rows,
			   &n, &truncated);
	if (r == -ENOENT)
		return ctl_fail(1, "unknown vehicle %s", vin);
	if (r < 0)
		return ctl_fail(1, "reading the daily rollups of %s failed: %s", vin, strerror(-r));
	if (truncated)
		fprintf(stderr, "pitstopctl: only the first %d days are listed\n",
			TELEMETRY_DAYS_MAX);
	if (ctl->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++) {
			const struct telemetry_day *x = &rows[i];
			json_t *o = json_object();
			char day[16];

			day_name(x->day, day, sizeof(day));
			json_object_set_new(o, "day", json_string(day));
			json_object_set_new(o, "samples", json_integer(x->samples));
			json_object_set_new(o, "distance_km",
					    opt_real(x->has_odometer, x->distance_m / 1000.0));
			json_object_set_new(
				o, "first_odometer_km",
				opt_real(x->has_odometer, x->first_odometer_m / 1000.0));
			json_object_set_new(o, "last_odometer_km",
					    opt_real(x->has_odometer, x->last_odometer_m / 1000.0));
			json_object_set_new(o, "driving_s", json_real(x->driving_ms / 1000.0));
			json_object_set_new(o, "fuel_used_pct",
					    opt_real(x->has_fuel, x->fuel_used_permille / 10.0));
			json_object_set_new(o, "fuel_refuelled_pct",
					    json_real(x->fuel_refuelled_permille / 10.0));
			json_array_append_new(arr, o);
		}
		free(rows);
		return json_print(arr);
	}
	printf("%-10s %8s %11s %10s %9s %11s\n", "day", "samples", "distance_km", "driving_h",
	       "fuel_used%", "refuelled%");
	for (size_t i = 0; i < n; i++) {
		const struct telemetry_day *x = &rows[i];
		char day[16], b1[32], b2[32];

		day_name(x->day, day, sizeof(day));
		printf("%-10s %8" PRId64 " %11s %10.2f %9s %11.1f\n", day, x->samples,
		       opt_fmt(b1, sizeof(b1), x->has_odometer, 3, x->distance_m / 1000.0),
		       x->driving_ms / 3600000.0,
		       opt_fmt(b2, sizeof(b2), x->has_fuel, 1, x->fuel_used_permille / 10.0),
		       x->fuel_refuelled_permille / 10.0);
	}
	free(rows);
	return 0;
}

static int vehicle_offers(struct ctl *ctl, struct ctl_db *d, const char *vin)
{
	struct telemetry_vehicle v;
	struct offer_row *rows = NULL;
	size_t n = 0;
	int r, more = 0;

	r = telemetry_vehicle_get(d->telemetry, vin, &v);
	if (r == 0)
		r = offer_log_list(d->offers, vin, &rows, &n, &more);
	if (r == -ENOENT)
		return ctl_fail(1, "unknown vehicle %s", vin);
	if (r < 0)
		return ctl_fail(1, "reading the offers of %s failed: %s", vin, strerror(-r));
	if (more)
		fprintf(stderr, "pitstopctl: only the oldest %d offers are listed\n",
			OFFER_LOG_LIST_MAX);
	if (ctl->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object();

			json_object_set_new(o, "id", json_string(rows[i].id));
			json_object_set_new(o, "kind", json_string(offers_kind_name(rows[i].kind)));
			json_object_set_new(o, "title", json_string(rows[i].title));
			json_object_set_new(o, "promo_code", json_string(rows[i].promo_code));
			json_object_set_new(o, "valid_from", views_time(rows[i].valid_from_ms));
			json_object_set_new(o, "valid_until", views_time(rows[i].valid_until_ms));
			json_object_set_new(o, "created_at", views_time(rows[i].created_ms));
			json_object_set_new(o, "state",
					    json_string(offer_state_name(rows[i].state)));
			json_array_append_new(arr, o);
		}
		free(rows);
		return json_print(arr);
	}
	printf("%-32s %-10s %-9s %-12s %-24s %s\n", "id", "kind", "state", "promo", "valid_until",
	       "title");
	for (size_t i = 0; i < n; i++) {
		char until[40];

		views_iso8601(rows[i].valid_until_ms, until, sizeof(until));
		printf("%-32s %-10s %-9s %-12s %-24s %s\n", rows[i].id,
		       offers_kind_name(rows[i].kind), offer_state_name(rows[i].state),
		       rows[i].promo_code, until, rows[i].title);
	}
	free(rows);
	return 0;
}

/* The options of the vehicle subcommands, parsed from argv[from..]. */
struct vehicle_opts {
	int64_t from_ms, to_ms;
	uint64_t limit;
	const char *after;
};

/*
 * Parses --from/--to/--limit/--after where `allowed` lists them (e.g.
 * "ftl"). Returns 0 or an exit code (after printing what was wrong).
 */
static int parse_vehicle_opts(struct ctl *ctl, int from, const char *sub, const char *allowed,
			      struct vehicle_opts *o)
{
	for (int i = from; i < ctl->argc; i++) {
		const char *opt = ctl->argv[i], *val = i + 1 < ctl->argc ? ctl->argv[i + 1] : NULL;
		int r = -EINVAL;

		if (strcmp(opt, "--from") == 0 && strchr(allowed, 'f') && val)
			r = parse_time(val, &o->from_ms);
		else if (strcmp(opt, "--to") == 0 && strchr(allowed, 't') && val)
			r = parse_time(val, &o->to_ms);
		else if (strcmp(opt, "--limit") == 0 && strchr(allowed, 'l') && val)
			r = parse_u64(val, &o->limit) == 0 && o->limit > 0 ? 0 : -EINVAL;
		else if (strcmp(opt, "--after") == 0 && strchr(allowed, 'a') && val) {
			o->after = val;
			r = 0;
		} else
			return ctl_fail(EXIT_USAGE, "vehicle %s: unexpected argument '%s'", sub,
					opt);
		if (r < 0)
			return ctl_fail(EXIT_USAGE, "vehicle %s: bad value for %s: '%s'", sub, opt,
					val ? val : "");
		i++;
	}
	return 0;
}

/*
 * Takes vehicle list's filter options out of ctl->argv (what is left goes
 * to parse_vehicle_opts()). Returns 0 or an exit code.
 */
static int parse_list_opts(struct ctl *ctl, struct list_opts *lo)
{
	int out = 2;

	for (int i = 2; i < ctl->argc; i++) {
		const char *opt = ctl->argv[i], *val = i + 1 < ctl->argc ? ctl->argv[i + 1] : NULL;
		int64_t *when = NULL;
		uint64_t min = 0;
		int r = 0, takes = 1;

		if (strcmp(opt, "--online") == 0) {
			lo->online = 1;
			takes = 0;
		} else if (strcmp(opt, "--offline") == 0) {
			lo->offline = 1;
			takes = 0;
		} else if (strcmp(opt, "--online-within") == 0) {
			r = parse_u64(val, &min) == 0 && min > 0 && min <= 525600 ? 0 : -EINVAL;
			lo->online_within_ms = (int64_t)min * 60000;
		} else if (strcmp(opt, "--seen-since") == 0) {
			when = &lo->seen_since_ms;
		} else if (strcmp(opt, "--not-seen-since") == 0) {
			when = &lo->not_seen_since_ms;
		} else if (strcmp(opt, "--low-fuel") == 0) {
			/* PCT is optional: taken when the next word is a number */
			lo->low_fuel = 1;
			takes = val && parse_pct(val, &lo->low_fuel_permille) == 0;
		} else {
			ctl->argv[out++] = ctl->argv[i];
			continue;
		}
		/* 0 means "no bound" in the filter: a time must be after 1970 */
		if (when)
			r = val && parse_when(val, when) == 0 && *when > 0 ? 0 : -EINVAL;
		if (takes && (r < 0 || !val))
			return ctl_fail(EXIT_USAGE, "vehicle list: bad value for %s: '%s'", opt,
					val ? val : "");
		i += takes;
	}
	ctl->argc = out;
	if (lo->online && lo->offline)
		return ctl_fail(EXIT_USAGE,
				"vehicle list: --online and --offline exclude each other");
	return 0;
}

static int cmd_vehicle(struct ctl *ctl)
{
	struct vehicle_opts o = { .from_ms = INT64_MIN / 2, .to_ms = INT64_MAX / 2 };
	struct list_opts lo = { .online_within_ms = ONLINE_WITHIN_MIN * 60000,
				.low_fuel_permille = -1 };
	struct ctl_db d;
	const char *sub, *vin = NULL;
	int r;

	if (ctl->argc < 2)
		return ctl_fail(EXIT_USAGE,
				"vehicle: which subcommand? (list, show, history, days, "
				"offers)");
	sub = ctl->argv[1];
	if (strcmp(sub, "list") == 0) {
		o.limit = 100;
		r = parse_list_opts(ctl, &lo);
		if (r)
			return r;
		r = parse_vehicle_opts(ctl, 2, sub, "la", &o);
		if (r)
			return r;
		if (o.limit > TELEMETRY_LIST_MAX)
			return ctl_fail(EXIT_USAGE, "vehicle list: --limit is at most %d",
					TELEMETRY_LIST_MAX);
	} else {
		const char *allowed = strcmp(sub, "history") == 0 ? "ftl"
				      : strcmp(sub, "days") == 0  ? "ft"
								  : "";

		if (!*allowed && strcmp(sub, "show") != 0 && strcmp(sub, "offers") != 0)
			return ctl_fail(EXIT_USAGE, "vehicle: unknown subcommand '%s'", sub);
		if (ctl->argc < 3)
			return ctl_fail(EXIT_USAGE, "vehicle %s: which VIN?", sub);
		vin = ctl->argv[2];
		r = parse_vehicle_opts(ctl, 3, sub, allowed, &o);
		if (r)
			return r;
		if (!vin_valid(vin))
			return ctl_fail(EXIT_USAGE, "'%s' is not a valid VIN", vin);
	}
	r = open_db(ctl, &d);
	if (r)
		return r;
	if (strcmp(sub, "list") == 0)
		r = vehicle_list(ctl, &d, o.after, (size_t)o.limit, &lo);
	else if (strcmp(sub, "show") == 0)
		r = vehicle_show(ctl, &d, vin);
	else if (strcmp(sub, "history") == 0)
		r = vehicle_history(ctl, &d, vin, o.from_ms, o.to_ms, (size_t)o.limit);
	else if (strcmp(sub, "days") == 0)
		r = vehicle_days(ctl, &d, vin, o.from_ms, o.to_ms);
	else
		r = vehicle_offers(ctl, &d, vin);
	close_db(&d);
	return r;
}

/* ---- service predict / due (issue 10; writes are in ctl_api.c) ---- */

/* Loads the gateway's maintenance plans (its service_plans_file). Returns 0 or an exit code. */
static int load_plans(const struct ctl_db *d, struct service_plans *ret)
{
	char err[600];

	if (service_plans_load(d->plans_file, ret, err, sizeof(err)) < 0)
		return ctl_fail(1, "%s", err);
	return 0;
}

/* What is due next for vin as of today, as vehicle show gives it (null: nothing known). */
static json_t *next_service(struct ctl_db *d, const char *vin)
{
	struct service_plans plans;
	struct service_prediction p;
	json_t *o = NULL;

	if (service_plans_load(d->plans_file, &plans, NULL, 0) < 0)
		return json_null();
	if (service_predict(d->db, d->telemetry, &plans, vin, telemetry_day_of(wall_ms()), &p) == 0)
		o = service_next_json(&p);
	service_plans_free(&plans);
	return o ? o : json_null();
}

/* --as-of DATE and --within-days N from argv[from..). Returns 0 or an exit code. */
static int parse_service_opts(struct ctl *ctl, int from, int64_t *as_of, long *within)
{
	*as_of = telemetry_day_of(wall_ms());
	for (int i = from; i < ctl->argc; i++) {
		const char *a = ctl->argv[i];
		char *end;

		if (i + 1 >= ctl->argc)
			return ctl_fail(EXIT_USAGE, "service: %s needs a value", a);
		if (strcmp(a, "--as-of") == 0) {
			if (service_day_parse(ctl->argv[++i], as_of) < 0)
				return ctl_fail(EXIT_USAGE, "--as-of %s: expected YYYY-MM-DD",
						ctl->argv[i]);
		} else if (strcmp(a, "--within-days") == 0 && within) {
			*within = strtol(ctl->argv[++i], &end, 10);
			if (*end || *within < 0 || *within > 3660)
				return ctl_fail(EXIT_USAGE, "--within-days %s: expected 0..3660",
						ctl->argv[i]);
		} else {
			return ctl_fail(EXIT_USAGE,
					"service: unexpected '%s'; try pitstopctl --help", a);
		}
	}
	return 0;
}

static void print_prediction(const struct service_prediction *p)
{
	char due[16], lo[16], hi[16];

	printf("%-14s %-10s %-12s %-8s %s\n", "ITEM", "DUE", "AT_KM", "REASON", "RANGE");
	for (size_t i = 0; i < p->nitems; i++) {
		const struct item_prediction *it = &p->items[i];
		char km[24] = "-";

		service_day_name(it->due_day, due, sizeof(due));
		service_day_name(it->due_day_lo, lo, sizeof(lo));
		service_day_name(it->due_day_hi, hi, sizeof(hi));
		if (it->has_due_odometer)
			snprintf(km, sizeof(km), "%.0f", it->due_odometer_m / 1000.0);
		printf("%-14s %-10s %-12s %-8s %s..%s%s\n", it->item, due, km,
		       predict_reason_name(it->reason), lo, hi, it->is_service_due ? " DUE" : "");
	}
}

static int service_predict_cmd(struct ctl *ctl, struct ctl_db *d, struct service_plans *plans,
			       const char *vin, int64_t as_of)
{
	struct service_prediction p;
	char day[16];
	json_t *o;
	int r = service_predict(d->db, d->telemetry, plans, vin, as_of, &p);

	if (r == -ENOENT)
		return ctl_fail(1, "nothing known about vehicle %s (no readings, no services)",
				vin);
	if (r < 0)
		return ctl_fail(1, "predicting %s failed: %s", vin, strerror(-r));
	o = service_prediction_json(&p);
	service_day_name(as_of, day, sizeof(day));
	json_object_set_new(o, "as_of", json_string(day));
	if (ctl->json)
		return json_print(o);
	printf("%s  plan %s%s%s  %.1f km/day (%s, %zu readings)  as of %s\n", vin, p.plan->make,
	       p.plan->model[0] ? " " : "", p.plan->model, p.usage.m_per_day / 1000.0,
	       json_string_value(json_object_get(json_object_get(o, "usage"), "basis")),
	       p.nreadings, day);
	json_decref(o);
	print_prediction(&p);
	return 0;
}

static int service_due_cmd(struct ctl *ctl, struct ctl_db *d, struct service_plans *plans,
			   int64_t as_of, long within)
{
	json_t *o, *it;
	size_t i;
	int r;

	o = service_due_json(d->db, d->telemetry, plans, as_of, within, NULL, NULL, &r);
	if (!o)
		return ctl_fail(1, "listing vehicles failed: %s", strerror(-r));
	if (ctl->json)
		return json_print(o);
	printf("%-17s %-14s %-10s %-8s %s\n", "VIN", "ITEM", "DUE", "REASON", "STATE");
	json_array_foreach(json_object_get(o, "items"), i, it)
	{
		printf("%-17s %-14s %-10s %-8s %s\n", json_string_value(json_object_get(it, "vin")),
		       json_string_value(json_object_get(it, "item")),
		       json_string_value(json_object_get(it, "due_date")),
		       json_string_value(json_object_get(it, "reason")),
		       json_is_true(json_object_get(it, "is_service_due")) ? "due" : "coming");
	}
	json_decref(o);
	return 0;
}

static int cmd_service(struct ctl *ctl)
{
	struct service_plans plans;
	struct ctl_db d;
	const char *sub = ctl->argc >= 2 ? ctl->argv[1] : "";
	const char *vin = NULL;
	int64_t as_of;
	long within = 30;
	int r;

	if (strcmp(sub, "predict") == 0) {
		if (ctl->argc < 3 || !vin_valid(ctl->argv[2]))
			return ctl_fail(EXIT_USAGE, "service predict: expected a VIN");
		vin = ctl->argv[2];
		r = parse_service_opts(ctl, 3, &as_of, NULL);
	} else if (strcmp(sub, "due") == 0) {
		r = parse_service_opts(ctl, 2, &as_of, &within);
	} else {
		struct ctl_api_opts o = { .config_path = ctl->config_path,
					  .api_url = ctl->api_url,
					  .token = ctl->token,
					  .json = ctl->json };

		return ctl_api_command(&o, ctl->argc, ctl->argv);
	}
	if (r)
		return r;
	r = open_db(ctl, &d);
	if (r)
		return r;
	r = load_plans(&d, &plans);
	if (r == 0) {
		r = vin ? service_predict_cmd(ctl, &d, &plans, vin, as_of)
			: service_due_cmd(ctl, &d, &plans, as_of, within);
		service_plans_free(&plans);
	}
	close_db(&d);
	return r;
}

/* ---- task ---- */

/* task list: the CRM team's open tasks (service reminders), oldest first. */
static int cmd_task(struct ctl *ctl)
{
	struct ctl_db d;
	json_t *a;
	size_t i;
	json_t *t;
	int r, truncated = 0, err = 0;

	if (ctl->argc != 2 || strcmp(ctl->argv[1], "list") != 0)
		return ctl_fail(EXIT_USAGE, "task: usage: pitstopctl task list [--json]");
	r = open_db(ctl, &d);
	if (r)
		return r;
	a = reminders_tasks_json(d.db, NULL, NULL, &truncated, &err);
	close_db(&d);
	if (!a)
		return ctl_fail(1, "task list: cannot read the tasks: %s", strerror(-err));
	if (ctl->json) {
		json_t *root = json_pack("{so sb}", "tasks", a, "truncated", truncated);

		return json_print(root);
	}
	printf("%-6s %-17s %-12s %-14s %-8s %-10s %s\n", "ID", "VIN", "KIND", "ITEM", "STAGE",
	       "DUE", "STATE");
	json_array_foreach(a, i, t)
		printf("%-6" JSON_INTEGER_FORMAT " %-17s %-12s %-14s %-8s %-10s %s\n",
		       json_integer_value(json_object_get(t, "id")),
		       json_string_value(json_object_get(t, "vin")),
		       json_string_value(json_object_get(t, "kind")),
		       json_string_value(json_object_get(t, "item")),
		       json_string_value(json_object_get(t, "stage")),
		       json_string_value(json_object_get(t, "due_date")),
		       json_string_value(json_object_get(t, "state")));
	if (truncated)
		printf("(the first %d tasks; there are more)\n", REMINDERS_TASKS_MAX);
	json_decref(a);
	return 0;
}

/* ---- offer sign ---- */

/* Copies src into a fixed field; returns -EMSGSIZE if it does not fit. */
static int copy_field(char *dst, size_t size, const char *src)
{
	if (strlen(src) >= size)
		return -EMSGSIZE;
	memcpy(dst, src, strlen(src) + 1);
	return 0;
}

static int cmd_offer(struct ctl *ctl)
{
	const char *key = NULL, *out = NULL;
	struct crypto_signer *signer = NULL;
	struct offer o;
	int have_from = 0, have_until = 0, have_promo = 0, have_id = 0, k;
	uint8_t *buf = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int r;

	if (ctl->argc < 2 || strcmp(ctl->argv[1], "sign") != 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	memset(&o, 0, sizeof(o));
	o.kind = OFFER_REFUEL;
	for (int i = 2; i < ctl->argc; i++) {
		const char *opt = ctl->argv[i], *val;

		if (i + 1 >= ctl->argc)
			return ctl_fail(EXIT_USAGE, "offer sign: %s needs a value", opt);
		val = ctl->argv[++i];
		r = 0;
		if (strcmp(opt, "--key") == 0) {
			key = val;
		} else if (strcmp(opt, "--out") == 0) {
			out = val;
		} else if (strcmp(opt, "--vin") == 0) {
			if (!vin_valid(val))
				return ctl_fail(EXIT_USAGE, "'%s' is not a valid VIN", val);
			r = copy_field(o.vin, sizeof(o.vin), val);
		} else if (strcmp(opt, "--title") == 0) {
			r = copy_field(o.title, sizeof(o.title), val);
		} else if (strcmp(opt, "--body") == 0) {
			r = copy_field(o.body, sizeof(o.body), val);
		} else if (strcmp(opt, "--promo") == 0) {
			r = copy_field(o.promo_code, sizeof(o.promo_code), val);
			have_promo = 1;
		} else if (strcmp(opt, "--id") == 0) {
			r = copy_field(o.id, sizeof(o.id), val);
			have_id = 1;
		} else if (strcmp(opt, "--kind") == 0) {
			k = offers_kind_parse(val);
			if (k < 0)
				return ctl_fail(EXIT_USAGE, "offer sign: unknown kind '%s'", val);
			o.kind = (enum offer_kind)k;
		} else if (strcmp(opt, "--valid-from-ms") == 0) {
			r = parse_i64(val, &o.valid_from_ms);
			have_from = 1;
		} else if (strcmp(opt, "--valid-until-ms") == 0) {
			r = parse_i64(val, &o.valid_until_ms);
			have_until = 1;
		} else {
			return ctl_fail(EXIT_USAGE, "offer sign: unknown option '%s'", opt);
		}
		if (r < 0)
			return ctl_fail(EXIT_USAGE, "offer sign: bad value for %s", opt);
	}
	if (!key || !out || !*o.vin || !*o.title)
		return ctl_fail(EXIT_USAGE,
				"offer sign: --key, --vin, --title and --out are required");
	if (!have_id && offers_new_id(o.id) < 0)
		return ctl_fail(1, "offer sign: no randomness for the offer id");
	if (!have_promo)
		o.promo_code[0] = '\0';
	if (!have_from) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		o.valid_from_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	}
	if (!have_until)
		o.valid_until_ms = o.valid_from_ms + 3600 * 1000;

	r = crypto_signer_load(key, &signer);
	if (r < 0) {
		r = ctl_fail(1, "offer sign: cannot load key %s: %s", key, strerror(-r));
		goto out;
	}
	r = offer_signing_encode(signer, &o, &buf, &len);
	if (r < 0) {
		r = ctl_fail(1, "offer sign: %s", strerror(-r));
		goto out;
	}
	f = fopen(out, "wb");
	if (!f || fwrite(buf, 1, len, f) != len) {
		r = ctl_fail(1, "offer sign: cannot write %s: %s", out, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		r = ctl_fail(1, "offer sign: cannot write %s: %s", out, strerror(errno));
		goto out;
	}
	f = NULL;
	if (ctl->json) {
		json_t *j = json_object();

		json_object_set_new(j, "id", json_string(o.id));
		json_object_set_new(j, "out", json_string(out));
		json_object_set_new(j, "bytes", json_integer((json_int_t)len));
		r = json_print(j);
	} else {
		printf("offer %s signed (key %s): %zu bytes written to %s\n", o.id,
		       crypto_signer_key_id(signer), len, out);
		r = 0;
	}
out:
	if (f)
		fclose(f);
	free(buf);
	crypto_signer_free(signer);
	return r;
}

/*
 * Takes the global options out of argv wherever they are. Returns 0, 1 for
 * --help, 3 for --version, or EXIT_USAGE.
 */
static int parse_globals(struct ctl *ctl, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--config") == 0 || strcmp(a, "--db") == 0 ||
		    strcmp(a, "--api") == 0 || strcmp(a, "--token") == 0) {
			if (i + 1 >= argc) {
				ctl_fail(EXIT_USAGE, "%s needs a value", a);
				return EXIT_USAGE;
			}
			if (a[2] == 'c')
				ctl->config_path = argv[++i];
			else if (a[2] == 'd')
				ctl->db = argv[++i];
			else if (a[2] == 'a')
				ctl->api_url = argv[++i];
			else
				ctl->token = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			ctl->config_path = a + 9;
		} else if (strncmp(a, "--db=", 5) == 0) {
			ctl->db = a + 5;
		} else if (strcmp(a, "--json") == 0) {
			ctl->json = 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			return 1;
		} else if (strcmp(a, "--version") == 0) {
			return 3;
		} else {
			if (ctl->argc == MAX_ARGS) {
				ctl_fail(EXIT_USAGE, "too many arguments");
				return EXIT_USAGE;
			}
			ctl->argv[ctl->argc++] = argv[i];
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ctl ctl;
	int r;

	memset(&ctl, 0, sizeof(ctl));
	/* Only errors from the library layers (db logs the backends' failures). */
	log_init("pitstopctl", LOG_LEVEL_ERROR);
	r = parse_globals(&ctl, argc, argv);
	if (r == 1) {
		usage(stdout);
		return 0;
	}
	if (r == 3) {
		printf("pitstopctl %s\n", PITSTOP_VERSION);
		return 0;
	}
	if (r)
		return r;
	if (ctl.argc == 0)
		return ctl_fail(EXIT_USAGE, "which command? try pitstopctl --help");
	if (strcmp(ctl.argv[0], "pki") == 0)
		return cmd_pki(&ctl);
	if (strcmp(ctl.argv[0], "stats") == 0)
		return cmd_stats(&ctl);
	if (strcmp(ctl.argv[0], "vehicle") == 0 &&
	    !(ctl.argc >= 2 && strcmp(ctl.argv[1], "set") == 0))
		return cmd_vehicle(&ctl);
	if (strcmp(ctl.argv[0], "offer") == 0 && ctl.argc >= 2 && strcmp(ctl.argv[1], "sign") == 0)
		return cmd_offer(&ctl);
	if (strcmp(ctl.argv[0], "service") == 0)
		return cmd_service(&ctl);
	if (strcmp(ctl.argv[0], "task") == 0)
		return cmd_task(&ctl);
	if (strcmp(ctl.argv[0], "user") == 0 || strcmp(ctl.argv[0], "fleet") == 0 ||
	    strcmp(ctl.argv[0], "audit") == 0 || strcmp(ctl.argv[0], "telemetry") == 0 ||
	    strcmp(ctl.argv[0], "poi") == 0 || strcmp(ctl.argv[0], "offer") == 0 ||
	    strcmp(ctl.argv[0], "promo") == 0 || strcmp(ctl.argv[0], "vehicle") == 0) {
		struct ctl_api_opts o = { .config_path = ctl.config_path,
					  .api_url = ctl.api_url,
					  .token = ctl.token,
					  .json = ctl.json };

		return ctl_api_command(&o, ctl.argc, ctl.argv);
	}
	if (strcmp(ctl.argv[0], "help") == 0) {
		usage(stdout);
		return 0;
	}
	return ctl_fail(EXIT_USAGE, "unknown command '%s'; try pitstopctl --help", ctl.argv[0]);
}
