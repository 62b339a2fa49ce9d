/*
 * pitstopctl: the operator's tool. It makes the fleet PKI, reads what the
 * gateway stored (counters, vehicles, history, offers) through a read-only
 * store, and signs offers by hand exactly as the gateway does. It never
 * writes to the gateway's database, so it is safe next to a running gateway
 * (SQLite WAL lets readers and the writer run side by side).
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
#include "crypto.h"
#include "gwconfig.h"
#include "log.h"
#include "offer_signing.h"
#include "offers.h"
#include "pki.h"
#include "store.h"
#include "vin.h"

#define EXIT_USAGE 2
#define MAX_ARGS 64
#define JSON_FLAGS (JSON_INDENT(2) | JSON_REAL_PRECISION(12))

struct ctl {
	const char *config_path; /* borrowed from argv, NULL = none */
	const char *db;		 /* borrowed, --db */
	int json;
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
		"  pki vehicle VIN DIR          issue a vehicle certificate (CN=VIN)\n"
		"  stats                        gateway counters, totals and per instance\n"
		"  vehicle show VIN             latest state of a vehicle\n"
		"  vehicle history VIN [--limit N]  stored samples, oldest first\n"
		"  vehicle offers VIN           offers issued to a vehicle\n"
		"  offer sign --key PEM --vin VIN --title T --out FILE [--body B] [--promo P]\n"
		"             [--kind refuel|service|inspection|loyalty|test_drive] [--id ID]\n"
		"             [--valid-from-ms MS] [--valid-until-ms MS]\n"
		"                               write a SignedOffer as the gateway would publish "
		"it\n"
		"\n"
		"--config FILE reads the database path (db) from the gateway's config;\n"
		"--db PATH overrides it. Exit codes: 0 ok, 1 failure, 2 usage error.\n");
}

/* Prints one line to stderr and returns the exit code. */
static int die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("pitstopctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* Formats unix ms as ISO 8601 UTC with milliseconds. */
static void iso8601(int64_t ms, char *buf, size_t size)
{
	time_t sec = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int milli = (int)(ms - (int64_t)sec * 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&sec, &tm);
	n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%03dZ", milli);
}

static json_t *json_time(int64_t ms)
{
	char buf[40];

	iso8601(ms, buf, sizeof(buf));
	return json_string(buf);
}

/* "none", "2d", "3d", or NULL for an unknown fix. */
static const char *fix_name(enum fix_mode f)
{
	switch (f) {
	case FIX_NONE:
		return "none";
	case FIX_2D:
		return "2d";
	case FIX_3D:
		return "3d";
	case FIX_UNKNOWN:
		break;
	}
	return NULL;
}

static json_t *json_fix(enum fix_mode f)
{
	const char *n = fix_name(f);

	return n ? json_string(n) : json_null();
}

/* Prints root and frees it. Returns 0 or 1. */
static int json_print(json_t *root)
{
	int r;

	if (!root)
		return die(1, "out of memory");
	r = json_dumpf(root, stdout, JSON_FLAGS);
	fputc('\n', stdout);
	json_decref(root);
	return r < 0 ? 1 : 0;
}

/* Opens the gateway database read-only. Returns 0 or an exit code. */
static int open_store(const struct ctl *ctl, struct store **ret_store)
{
	struct gw_config conf;
	char err[512];
	int r;

	memset(&conf, 0, sizeof(conf));
	r = gw_config_load(ctl->config_path, &conf, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	r = store_open(ctl->db ? ctl->db : conf.db, STORE_READ_ONLY, ret_store, err, sizeof(err));
	gw_config_free(&conf);
	if (r < 0)
		return die(1, "cannot open the database: %s", err);
	return 0;
}

/* ---- pki ---- */

/* The commands: each returns the process exit code. */
static int cmd_pki(struct ctl *ctl)
{
	char err[512] = "";
	int r;

	if (ctl->argc == 3 && strcmp(ctl->argv[1], "init") == 0) {
		r = pki_init(ctl->argv[2], err, sizeof(err));
		if (r < 0)
			return die(1, "pki init: %s", *err ? err : strerror(-r));
		printf("fleet PKI written to %s\n", ctl->argv[2]);
		return 0;
	}
	if (ctl->argc == 4 && strcmp(ctl->argv[1], "vehicle") == 0) {
		if (!vin_valid(ctl->argv[2]))
			return die(EXIT_USAGE, "'%s' is not a valid VIN", ctl->argv[2]);
		r = pki_issue_vehicle(ctl->argv[3], ctl->argv[2], err, sizeof(err));
		if (r < 0)
			return die(1, "pki vehicle: %s", *err ? err : strerror(-r));
		printf("certificate for %s written to %s/vehicles/\n", ctl->argv[2], ctl->argv[3]);
		return 0;
	}
	usage(stderr);
	return EXIT_USAGE;
}

/* ---- stats ---- */

/* sum += c, field by field. */
static void add_counters(struct store_counters *sum, const struct store_counters *c)
{
	sum->received += c->received;
	sum->stored += c->stored;
	sum->samples_stored += c->samples_stored;
	sum->duplicates += c->duplicates;
	for (int i = 0; i < STORE_REJECT_COUNT; i++)
		sum->rejected[i] += c->rejected[i];
	sum->offers_sent += c->offers_sent;
	sum->offers_failed += c->offers_failed;
	sum->acks_sent += c->acks_sent;
	sum->events += c->events;
	sum->status += c->status;
}

/* Adds the counters of c to obj (json_integer is 64-bit signed). */
static void json_counters(json_t *obj, const struct store_counters *c)
{
	json_t *rej = json_object();

	json_object_set_new(obj, "received", json_integer((json_int_t)c->received));
	json_object_set_new(obj, "stored", json_integer((json_int_t)c->stored));
	json_object_set_new(obj, "samples_stored", json_integer((json_int_t)c->samples_stored));
	json_object_set_new(obj, "duplicates", json_integer((json_int_t)c->duplicates));
	for (int i = 0; i < STORE_REJECT_COUNT; i++)
		json_object_set_new(rej, store_reject_name((enum store_reject)i),
				    json_integer((json_int_t)c->rejected[i]));
	json_object_set_new(obj, "rejected", rej);
	json_object_set_new(obj, "offers_sent", json_integer((json_int_t)c->offers_sent));
	json_object_set_new(obj, "offers_failed", json_integer((json_int_t)c->offers_failed));
	json_object_set_new(obj, "acks_sent", json_integer((json_int_t)c->acks_sent));
	json_object_set_new(obj, "events", json_integer((json_int_t)c->events));
	json_object_set_new(obj, "status", json_integer((json_int_t)c->status));
}

/* The text form of one set of counters, each line prefixed with indent. */
static void print_counters(const struct store_counters *c, const char *indent)
{
	printf("%sreceived        %" PRIu64 "\n", indent, c->received);
	printf("%sstored          %" PRIu64 " batches, %" PRIu64 " samples\n", indent, c->stored,
	       c->samples_stored);
	printf("%sduplicates      %" PRIu64 "\n", indent, c->duplicates);
	printf("%srejected       ", indent);
	for (int i = 0; i < STORE_REJECT_COUNT; i++)
		printf(" %s=%" PRIu64, store_reject_name((enum store_reject)i), c->rejected[i]);
	printf("\n%soffers          %" PRIu64 " sent, %" PRIu64 " failed\n", indent, c->offers_sent,
	       c->offers_failed);
	printf("%sreceipts        %" PRIu64 " sent\n", indent, c->acks_sent);
	printf("%sevents          %" PRIu64 "\n", indent, c->events);
	printf("%sstatus          %" PRIu64 "\n", indent, c->status);
}

static int cmd_stats(struct ctl *ctl)
{
	struct store *s = NULL;
	struct store_instance *rows = NULL;
	struct store_counters sum;
	size_t n = 0;
	char when[40];
	int r;

	if (ctl->argc != 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	r = open_store(ctl, &s);
	if (r)
		return r;
	r = s->ops->counters_list(s, &rows, &n);
	if (r < 0) {
		r = die(1, "reading the counters failed: %s", strerror(-r));
		goto out;
	}
	memset(&sum, 0, sizeof(sum));
	for (size_t i = 0; i < n; i++)
		add_counters(&sum, &rows[i].c);
	if (ctl->json) {
		json_t *root = json_object(), *inst = json_array();

		json_counters(root, &sum);
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object();

			json_object_set_new(o, "id", json_string(rows[i].id));
			json_object_set_new(o, "updated_at", json_time(rows[i].updated_at_ms));
			json_counters(o, &rows[i].c);
			json_array_append_new(inst, o);
		}
		json_object_set_new(root, "instances", inst);
		r = json_print(root);
		goto out;
	}
	printf("total over %zu instance%s\n", n, n == 1 ? "" : "s");
	print_counters(&sum, "  ");
	for (size_t i = 0; i < n; i++) {
		iso8601(rows[i].updated_at_ms, when, sizeof(when));
		printf("instance %s (updated %s)\n", rows[i].id, when);
		print_counters(&rows[i].c, "  ");
	}
	r = 0;
out:
	free(rows);
	store_close(s);
	return r;
}

/* ---- vehicle ---- */

/* A JSON number, or null when the value was never reported. */
static json_t *opt_real(int present, double v)
{
	return present ? json_real(v) : json_null();
}

/*
 * The vehicle subcommands print to stdout and return the exit code (errors
 * are one line on stderr).
 */
static int vehicle_show(struct ctl *ctl, struct store *s, const char *vin)
{
	struct store_vehicle v;
	char when[40] = "-";
	int r;

	r = s->ops->vehicle_get(s, vin, &v);
	if (r == -ENOENT)
		return die(1, "unknown vehicle %s", vin);
	if (r < 0)
		return die(1, "reading vehicle %s failed: %s", vin, strerror(-r));
	if (ctl->json) {
		json_t *o = json_object();

		json_object_set_new(o, "vin", json_string(v.vin));
		json_object_set_new(
			o, "odometer_km",
			opt_real(v.present & SAMPLE_ODOMETER, (double)v.odometer_m / 1000.0));
		json_object_set_new(o, "fuel_pct",
				    opt_real(v.present & SAMPLE_FUEL, v.fuel_permille / 10.0));
		json_object_set_new(o, "lat",
				    opt_real(v.present & SAMPLE_POSITION, v.lat_e7 / 1e7));
		json_object_set_new(o, "lon",
				    opt_real(v.present & SAMPLE_POSITION, v.lon_e7 / 1e7));
		json_object_set_new(o, "speed_kmh",
				    opt_real(v.present & SAMPLE_SPEED, v.speed_cms * 0.036));
		json_object_set_new(o, "heading_deg",
				    opt_real(v.present & SAMPLE_HEADING, v.heading_cdeg / 100.0));
		json_object_set_new(o, "fix", v.has_sample ? json_fix(v.fix) : json_null());
		json_object_set_new(o, "online",
				    v.online == STORE_ONLINE_UNKNOWN
					    ? json_null()
					    : json_boolean(v.online == STORE_ONLINE));
		json_object_set_new(o, "updated_at",
				    v.has_sample ? json_time(v.time_ms) : json_null());
		return json_print(o);
	}
	if (v.has_sample)
		iso8601(v.time_ms, when, sizeof(when));
	printf("vin          %s\n", v.vin);
	printf("updated_at   %s\n", when);
	printf("online       %s\n", v.online == STORE_ONLINE_UNKNOWN ? "unknown"
				    : v.online == STORE_ONLINE	     ? "yes"
								     : "no");
	if (v.present & SAMPLE_ODOMETER)
		printf("odometer     %.3f km\n", (double)v.odometer_m / 1000.0);
	if (v.present & SAMPLE_FUEL)
		printf("fuel         %.1f %%\n", v.fuel_permille / 10.0);
	if (v.present & SAMPLE_POSITION)
		printf("position     %.7f, %.7f\n", v.lat_e7 / 1e7, v.lon_e7 / 1e7);
	if (v.present & SAMPLE_SPEED)
		printf("speed        %.1f km/h\n", v.speed_cms * 0.036);
	if (v.present & SAMPLE_HEADING)
		printf("heading      %.2f deg\n", v.heading_cdeg / 100.0);
	if (v.has_sample && fix_name(v.fix))
		printf("fix          %s\n", fix_name(v.fix));
	return 0;
}

/* Formats an optional number for the text tables. */
static const char *opt_fmt(char *buf, size_t size, int present, int decimals, double v)
{
	if (!present)
		return "-";
	snprintf(buf, size, "%.*f", decimals, v);
	return buf;
}

static int vehicle_history(struct ctl *ctl, struct store *s, const char *vin, size_t limit)
{
	struct store_history_row *rows = NULL;
	size_t n = 0;
	int r;

	r = s->ops->vehicle_history(s, vin, limit, &rows, &n);
	if (r == -ENOENT)
		return die(1, "unknown vehicle %s", vin);
	if (r < 0)
		return die(1, "reading the history of %s failed: %s", vin, strerror(-r));
	if (ctl->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++) {
			const struct sample *x = &rows[i].s;
			json_t *o = json_object();

			json_object_set_new(o, "seq", json_integer((json_int_t)rows[i].seq));
			json_object_set_new(o, "time_ms", json_integer(x->time_ms));
			json_object_set_new(o, "time", json_time(x->time_ms));
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
			json_object_set_new(o, "fix", json_fix(x->fix));
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

		iso8601(x->time_ms, when, sizeof(when));
		printf("%-8" PRIu64 " %-24s %12s %6s %12s %13s %7s %7s %4s\n", rows[i].seq, when,
		       opt_fmt(b1, sizeof(b1), x->present & SAMPLE_ODOMETER, 0,
			       (double)x->odometer_m),
		       opt_fmt(b2, sizeof(b2), x->present & SAMPLE_FUEL, 1,
			       x->fuel_permille / 10.0),
		       opt_fmt(b3, sizeof(b3), x->present & SAMPLE_POSITION, 7, x->lat_e7 / 1e7),
		       opt_fmt(b4, sizeof(b4), x->present & SAMPLE_POSITION, 7, x->lon_e7 / 1e7),
		       opt_fmt(b5, sizeof(b5), x->present & SAMPLE_SPEED, 1, x->speed_cms * 0.036),
		       opt_fmt(b6, sizeof(b6), x->present & SAMPLE_HEADING, 2,
			       x->heading_cdeg / 100.0),
		       fix_name(x->fix) ? fix_name(x->fix) : "-");
	}
	free(rows);
	return 0;
}

static int vehicle_offers(struct ctl *ctl, struct store *s, const char *vin)
{
	struct store_offer_row *rows = NULL;
	size_t n = 0;
	int r;

	r = s->ops->offer_list(s, vin, &rows, &n);
	if (r == -ENOENT)
		return die(1, "unknown vehicle %s", vin);
	if (r < 0)
		return die(1, "reading the offers of %s failed: %s", vin, strerror(-r));
	if (ctl->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object();

			json_object_set_new(o, "id", json_string(rows[i].id));
			json_object_set_new(o, "kind", json_string(offers_kind_name(rows[i].kind)));
			json_object_set_new(o, "title", json_string(rows[i].title));
			json_object_set_new(o, "promo_code", json_string(rows[i].promo_code));
			json_object_set_new(o, "valid_from", json_time(rows[i].valid_from_ms));
			json_object_set_new(o, "valid_until", json_time(rows[i].valid_until_ms));
			json_object_set_new(o, "created_at", json_time(rows[i].created_ms));
			json_object_set_new(o, "state",
					    json_string(store_offer_state_name(rows[i].state)));
			json_array_append_new(arr, o);
		}
		free(rows);
		return json_print(arr);
	}
	printf("%-32s %-10s %-9s %-12s %-24s %s\n", "id", "kind", "state", "promo", "valid_until",
	       "title");
	for (size_t i = 0; i < n; i++) {
		char until[40];

		iso8601(rows[i].valid_until_ms, until, sizeof(until));
		printf("%-32s %-10s %-9s %-12s %-24s %s\n", rows[i].id,
		       offers_kind_name(rows[i].kind), store_offer_state_name(rows[i].state),
		       rows[i].promo_code, until, rows[i].title);
	}
	free(rows);
	return 0;
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

static int cmd_vehicle(struct ctl *ctl)
{
	struct store *s = NULL;
	const char *sub, *vin;
	uint64_t limit = 0;
	int r;

	if (ctl->argc < 3) {
		usage(stderr);
		return EXIT_USAGE;
	}
	sub = ctl->argv[1];
	vin = ctl->argv[2];
	if (strcmp(sub, "history") == 0) {
		for (int i = 3; i < ctl->argc; i++) {
			if (strcmp(ctl->argv[i], "--limit") == 0 && i + 1 < ctl->argc &&
			    parse_u64(ctl->argv[i + 1], &limit) == 0 && limit > 0) {
				i++;
				continue;
			}
			return die(EXIT_USAGE, "vehicle history: bad argument '%s'", ctl->argv[i]);
		}
	} else if (strcmp(sub, "show") != 0 && strcmp(sub, "offers") != 0) {
		usage(stderr);
		return EXIT_USAGE;
	} else if (ctl->argc != 3) {
		return die(EXIT_USAGE, "vehicle %s: unexpected argument '%s'", sub, ctl->argv[3]);
	}
	if (!vin_valid(vin))
		return die(EXIT_USAGE, "'%s' is not a valid VIN", vin);
	r = open_store(ctl, &s);
	if (r)
		return r;
	if (strcmp(sub, "show") == 0)
		r = vehicle_show(ctl, s, vin);
	else if (strcmp(sub, "history") == 0)
		r = vehicle_history(ctl, s, vin, (size_t)limit);
	else
		r = vehicle_offers(ctl, s, vin);
	store_close(s);
	return r;
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
			return die(EXIT_USAGE, "offer sign: %s needs a value", opt);
		val = ctl->argv[++i];
		r = 0;
		if (strcmp(opt, "--key") == 0) {
			key = val;
		} else if (strcmp(opt, "--out") == 0) {
			out = val;
		} else if (strcmp(opt, "--vin") == 0) {
			if (!vin_valid(val))
				return die(EXIT_USAGE, "'%s' is not a valid VIN", val);
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
				return die(EXIT_USAGE, "offer sign: unknown kind '%s'", val);
			o.kind = (enum offer_kind)k;
		} else if (strcmp(opt, "--valid-from-ms") == 0) {
			r = parse_i64(val, &o.valid_from_ms);
			have_from = 1;
		} else if (strcmp(opt, "--valid-until-ms") == 0) {
			r = parse_i64(val, &o.valid_until_ms);
			have_until = 1;
		} else {
			return die(EXIT_USAGE, "offer sign: unknown option '%s'", opt);
		}
		if (r < 0)
			return die(EXIT_USAGE, "offer sign: bad value for %s", opt);
	}
	if (!key || !out || !*o.vin || !*o.title)
		return die(EXIT_USAGE, "offer sign: --key, --vin, --title and --out are required");
	if (!have_id && offers_new_id(o.id) < 0)
		return die(1, "offer sign: no randomness for the offer id");
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
		r = die(1, "offer sign: cannot load key %s: %s", key, strerror(-r));
		goto out;
	}
	r = offer_signing_encode(signer, &o, &buf, &len);
	if (r < 0) {
		r = die(1, "offer sign: %s", strerror(-r));
		goto out;
	}
	f = fopen(out, "wb");
	if (!f || fwrite(buf, 1, len, f) != len) {
		r = die(1, "offer sign: cannot write %s: %s", out, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		r = die(1, "offer sign: cannot write %s: %s", out, strerror(errno));
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
 * --help, or EXIT_USAGE.
 */
static int parse_globals(struct ctl *ctl, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--config") == 0 || strcmp(a, "--db") == 0) {
			if (i + 1 >= argc) {
				die(EXIT_USAGE, "%s needs a value", a);
				return EXIT_USAGE;
			}
			if (a[2] == 'c')
				ctl->config_path = argv[++i];
			else
				ctl->db = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			ctl->config_path = a + 9;
		} else if (strncmp(a, "--db=", 5) == 0) {
			ctl->db = a + 5;
		} else if (strcmp(a, "--json") == 0) {
			ctl->json = 1;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			return 1;
		} else {
			if (ctl->argc == MAX_ARGS) {
				die(EXIT_USAGE, "too many arguments");
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
	/* Only errors from the library layers (the store logs SQLite failures). */
	log_init("pitstopctl", LOG_LEVEL_ERROR);
	r = parse_globals(&ctl, argc, argv);
	if (r == 1) {
		usage(stdout);
		return 0;
	}
	if (r)
		return r;
	if (ctl.argc == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(ctl.argv[0], "pki") == 0)
		return cmd_pki(&ctl);
	if (strcmp(ctl.argv[0], "stats") == 0)
		return cmd_stats(&ctl);
	if (strcmp(ctl.argv[0], "vehicle") == 0)
		return cmd_vehicle(&ctl);
	if (strcmp(ctl.argv[0], "offer") == 0)
		return cmd_offer(&ctl);
	if (strcmp(ctl.argv[0], "help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "pitstopctl: unknown command '%s'\n", ctl.argv[0]);
	usage(stderr);
	return EXIT_USAGE;
}
