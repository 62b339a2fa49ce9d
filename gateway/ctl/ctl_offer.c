/*
 * pitstopctl's offer commands (issue 11, docs/offers.md), clients of the
 * gateway's API (ctl_api.h): a car's offers with their lifecycle, the
 * per-rule (or per rule and station) statistics, and redeeming a promo
 * code. "offer sign" stays in ctl.c (it needs no gateway).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_api.h"

#define EXIT_USAGE 2

const char ctl_offer_usage[] =
	"  offer list --vin VIN         a car's offers, newest first, with their states\n"
	"  offer stats [--since T] [--until T] [--by rule|station]\n"
	"                               per rule (or per rule and station): offers created,\n"
	"                               sent, delivered, shown, accepted, redeemed, ... and\n"
	"                               the conversion rate\n"
	"  offer redeem CODE            redeem a promo code (once; 409 when already redeemed)\n";

static int offer_list(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	static const char *const opts[] = { "vin", NULL };
	json_t *reply = NULL, *it;
	const char *vin = NULL;
	size_t i;
	int r;

	r = ctl_vin_arg(argc, argv, "offer list", &vin); /* required, and nothing else */
	if (r == 0)
		r = ctl_get_opts(c, o, "offer list", "/api/v1/offers", argc, argv, 2, opts, &reply);
	if (r == 0 && !o->json) {
		printf("%-26s %-16s %-10s %-10s %-24s %-24s %-12s %s\n", "ID", "RULE", "KIND",
		       "STATE", "CREATED", "VALID UNTIL", "CODE", "TITLE");
		json_array_foreach(json_object_get(reply, "items"), i, it) printf(
			"%-26s %-16s %-10s %-10s %-24s %-24s %-12s %s\n", ctl_str(it, "id"),
			*ctl_str(it, "rule") ? ctl_str(it, "rule") : "(none)", ctl_str(it, "kind"),
			ctl_str(it, "state"), ctl_str(it, "created_at"), ctl_str(it, "valid_until"),
			*ctl_str(it, "promo_code") ? ctl_str(it, "promo_code") : "-",
			ctl_str(it, "title"));
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

/* Member key of o as a number (0 when absent). */
static long long num(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static void stats_line(json_t *it)
{
	char conv[16], acc[16];

	pct(json_object_get(it, "conversion_rate"), conv, sizeof(conv));
	pct(json_object_get(it, "acceptance_rate"), acc, sizeof(acc));
	printf("%-20s %8lld %8lld %9lld %8lld %8lld %9lld %8lld %8lld %10s %10s\n",
	       ctl_str(it, "rule"), num(it, "created"), num(it, "sent"), num(it, "delivered"),
	       num(it, "shown"), num(it, "accepted"), num(it, "dismissed"), num(it, "redeemed"),
	       num(it, "expired"), conv, acc);
}

/* One rule at one station: the POI's name (its id when the POI is gone). */
static void station_line(json_t *it)
{
	char conv[16];

	pct(json_object_get(it, "conversion_rate"), conv, sizeof(conv));
	printf("%-20s %-28s %8lld %8lld %8lld %8lld %10s\n", ctl_str(it, "rule"),
	       *ctl_str(it, "poi_name") ? ctl_str(it, "poi_name") : ctl_str(it, "poi_id"),
	       num(it, "sent"), num(it, "shown"), num(it, "accepted"), num(it, "redeemed"), conv);
}

static int offer_stats(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	static const char *const opts[] = { "since", "until", "by", NULL };
	json_t *reply = NULL, *it;
	size_t i;
	int r = ctl_get_opts(c, o, "offer stats", "/api/v1/offers/stats", argc, argv, 2, opts,
			     &reply);

	if (r == 0 && !o->json && !json_object_get(reply, "total")) { /* --by station */
		printf("%-20s %-28s %8s %8s %8s %8s %10s\n", "RULE", "STATION", "SENT", "SHOWN",
		       "ACCEPTED", "REDEEMED", "CONVERSION");
		json_array_foreach(json_object_get(reply, "items"), i, it) station_line(it);
	} else if (r == 0 && !o->json) {
		printf("%-20s %8s %8s %9s %8s %8s %9s %8s %8s %10s %10s\n", "RULE", "CREATED",
		       "SENT", "DELIVERED", "SHOWN", "ACCEPTED", "DISMISSED", "REDEEMED", "EXPIRED",
		       "CONVERSION", "ACCEPTANCE");
		json_array_foreach(json_object_get(reply, "items"), i, it) stats_line(it);
		stats_line(json_object_get(reply, "total"));
	}
	if (r == 0 && !o->json && json_is_true(json_object_get(reply, "truncated")))
		printf("(truncated: only the first are listed)\n");
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
		printf("redeemed %s: offer %s (rule %s) at %s\n", argv[2],
		       ctl_str(reply, "offer_id"),
		       *ctl_str(reply, "rule") ? ctl_str(reply, "rule") : "(none)",
		       ctl_str(reply, "redeemed_at"));
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
