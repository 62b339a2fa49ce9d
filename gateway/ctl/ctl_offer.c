/*
 * pitstopctl's offer commands (issue 11, docs/offers.md), clients of the
 * gateway's API (ctl_api.h): a car's offers with their lifecycle, the
 * per-rule statistics, and redeeming a promo code. "offer sign" stays in
 * ctl.c (it needs no gateway).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_api.h"

#define EXIT_USAGE 2

const char ctl_offer_usage[] =
	"  offer list --vin VIN         a car's offers, newest first, with their states\n"
	"  offer stats [--since T] [--until T]\n"
	"                               per rule: offers sent, delivered, shown, accepted,\n"
	"                               redeemed, ... and the conversion rate\n"
	"  offer redeem CODE            redeem a promo code (once; 409 when already redeemed)\n";

/* The text of member key of o, "" when absent or null. */
static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

/* Appends "&name=<escaped value>" to path. Returns 0 or an exit code. */
static int add_arg(struct ctl_client *c, char *path, size_t size, const char *name,
		   const char *value)
{
	char *esc = curl_easy_escape(c->curl, value, 0);
	size_t n = strlen(path);
	int w;

	if (!esc)
		return ctl_fail(1, "out of memory");
	w = snprintf(path + n, size - n, "%s%s=%s", strchr(path, '?') ? "&" : "?", name, esc);
	curl_free(esc);
	if (w < 0 || (size_t)w >= size - n)
		return ctl_fail(EXIT_USAGE, "%s: value too long", name);
	return 0;
}

static int offer_list(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	char path[256] = "/api/v1/offers";
	json_t *reply = NULL, *it;
	const char *vin = NULL;
	size_t i;
	int r;

	r = ctl_vin_arg(argc, argv, "offer list", &vin);
	if (r == 0)
		r = add_arg(c, path, sizeof(path), "vin", vin);
	if (r == 0)
		r = ctl_run(c, o, "offer list", "GET", path, NULL, 200, &reply);
	if (r == 0 && !o->json) {
		printf("%-26s %-16s %-10s %-10s %-24s %-24s %-12s %s\n", "ID", "RULE", "KIND",
		       "STATE", "CREATED", "VALID UNTIL", "CODE", "TITLE");
		json_array_foreach(json_object_get(reply, "items"), i, it) printf(
			"%-26s %-16s %-10s %-10s %-24s %-24s %-12s %s\n", str(it, "id"),
			*str(it, "rule") ? str(it, "rule") : "(none)", str(it, "kind"),
			str(it, "state"), str(it, "created_at"), str(it, "valid_until"),
			*str(it, "promo_code") ? str(it, "promo_code") : "-", str(it, "title"));
		if (json_is_true(json_object_get(reply, "truncated")))
			printf("(truncated: only the newest are listed)\n");
	}
	json_decref(reply);
	return r;
}

/* "12.5 %", or "-" for null. */
static void pct(json_t *v, char *buf, size_t size)
{
	if (json_is_number(v))
		snprintf(buf, size, "%.1f %%", json_number_value(v) * 100.0);
	else
		snprintf(buf, size, "-");
}

static void stats_line(json_t *it)
{
	char conv[16], acc[16];

	pct(json_object_get(it, "conversion_rate"), conv, sizeof(conv));
	pct(json_object_get(it, "acceptance_rate"), acc, sizeof(acc));
	printf("%-20s %8lld %9lld %8lld %8lld %9lld %8lld %8lld %10s %10s\n", str(it, "rule"),
	       (long long)json_integer_value(json_object_get(it, "sent")),
	       (long long)json_integer_value(json_object_get(it, "delivered")),
	       (long long)json_integer_value(json_object_get(it, "shown")),
	       (long long)json_integer_value(json_object_get(it, "accepted")),
	       (long long)json_integer_value(json_object_get(it, "dismissed")),
	       (long long)json_integer_value(json_object_get(it, "redeemed")),
	       (long long)json_integer_value(json_object_get(it, "expired")), conv, acc);
}

static int offer_stats(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	char path[512] = "/api/v1/offers/stats";
	json_t *reply = NULL, *it;
	size_t i;
	int r = 0;

	for (int k = 2; k < argc && r == 0; k++) {
		if ((strcmp(argv[k], "--since") == 0 || strcmp(argv[k], "--until") == 0) &&
		    k + 1 < argc) {
			r = add_arg(c, path, sizeof(path), argv[k] + 2, argv[k + 1]);
			k++;
		} else {
			return ctl_fail(EXIT_USAGE,
					"offer stats: unexpected '%s'; try pitstopctl --help",
					argv[k]);
		}
	}
	if (r == 0)
		r = ctl_run(c, o, "offer stats", "GET", path, NULL, 200, &reply);
	if (r == 0 && !o->json) {
		printf("%-20s %8s %9s %8s %8s %9s %8s %8s %10s %10s\n", "RULE", "SENT", "DELIVERED",
		       "SHOWN", "ACCEPTED", "DISMISSED", "REDEEMED", "EXPIRED", "CONVERSION",
		       "ACCEPTANCE");
		json_array_foreach(json_object_get(reply, "items"), i, it) stats_line(it);
		stats_line(json_object_get(reply, "total"));
	}
	json_decref(reply);
	return r;
}

static int offer_redeem(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	json_t *reply = NULL;
	int r;

	if (argc != 3)
		return ctl_fail(EXIT_USAGE,
				"offer redeem: expected the promo code: offer redeem CODE");
	r = ctl_run(c, o, "offer redeem", "POST", "/api/v1/offers/redeem",
		    json_pack("{s:s}", "code", argv[2]), 200, &reply);
	if (r == 0 && !o->json)
		printf("redeemed %s: offer %s (rule %s) at %s\n", argv[2], str(reply, "offer_id"),
		       *str(reply, "rule") ? str(reply, "rule") : "(none)",
		       str(reply, "redeemed_at"));
	json_decref(reply);
	return r;
}

/* The offer subcommands; "offer sign" never comes here. */
static const struct {
	const char *name;
	int (*fn)(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv);
} commands[] = {
	{ "list", offer_list },
	{ "stats", offer_stats },
	{ "redeem", offer_redeem },
};

int ctl_offer_command(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	for (size_t i = 0; argc >= 2 && i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(c, o, argc, argv);
	return ctl_fail(EXIT_USAGE,
			"offer: expected list --vin VIN, stats, redeem CODE or sign; try "
			"pitstopctl --help");
}
