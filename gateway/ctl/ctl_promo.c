/*
 * pitstopctl's promo commands (issue 11, docs/promotions.md), clients of
 * the gateway's API (ctl_api.h): a vehicle's profile (vehicle set), the
 * loaded rules, why a car got no offer; and "promo check FILE", which
 * validates a rules file offline with the gateway's own parser.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_api.h"
#include "promo_rules.h"

#define EXIT_USAGE 2

const char ctl_promo_usage[] =
	"  vehicle set VIN [--make M] [--model M] [--time-zone TZ] [--dealer POI_ID]\n"
	"              [--offers on|off]\n"
	"                               set what the promotion rules know of a vehicle\n"
	"  promo rules                  the promotion rules the gateway runs\n"
	"  promo check FILE             validate a rules file (FILE:LINE errors, exit 1)\n"
	"  promo suppressed --vin VIN   why a car did not get an offer, newest first\n";

static int vehicle_set(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	static const struct {
		const char *opt, *key;
	} map[] = {
		{ "--make", "make" },
		{ "--model", "model" },
		{ "--time-zone", "time_zone" },
		{ "--dealer", "dealer_poi_id" },
	};
	char path[128];
	json_t *body, *reply = NULL;
	int r, k;

	if (argc < 3 || argv[2][0] == '-')
		return ctl_fail(EXIT_USAGE, "vehicle set: which VIN? try pitstopctl --help");
	body = json_object();
	for (k = 3; k < argc; k++) {
		size_t i;

		for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(argv[k], map[i].opt) == 0)
				break;
		if (k + 1 >= argc) {
			json_decref(body);
			return ctl_fail(EXIT_USAGE, "vehicle set: %s needs a value", argv[k]);
		}
		if (i < sizeof(map) / sizeof(map[0])) {
			json_object_set_new(body, map[i].key, json_string(argv[++k]));
		} else if (strcmp(argv[k], "--offers") == 0 &&
			   (strcmp(argv[k + 1], "on") == 0 || strcmp(argv[k + 1], "off") == 0)) {
			json_object_set_new(body, "offers_opt_out",
					    json_boolean(strcmp(argv[++k], "off") == 0));
		} else {
			json_decref(body);
			return ctl_fail(EXIT_USAGE,
					"vehicle set: unexpected '%s' (--offers takes on or off); "
					"try pitstopctl --help",
					argv[k]);
		}
	}
	if (json_object_size(body) == 0) {
		json_decref(body);
		return ctl_fail(EXIT_USAGE, "vehicle set: nothing to set");
	}
	if (snprintf(path, sizeof(path), "/api/v1/vehicles/%s/profile", argv[2]) >=
	    (int)sizeof(path)) {
		json_decref(body);
		return ctl_fail(EXIT_USAGE, "vehicle set: not a VIN: %s", argv[2]);
	}
	r = ctl_run(c, o, "vehicle set", "PUT", path, body, 200, &reply);
	if (r == 0 && !o->json)
		printf("%s: make '%s', model '%s', time zone '%s', dealer '%s', offers %s\n",
		       ctl_str(reply, "vin"), ctl_str(reply, "make"), ctl_str(reply, "model"),
		       ctl_str(reply, "time_zone"), ctl_str(reply, "dealer_poi_id"),
		       json_is_true(json_object_get(reply, "offers_opt_out")) ? "off" : "on");
	json_decref(reply);
	return r;
}

static int promo_rules(struct ctl_client *c, const struct ctl_api_opts *o)
{
	json_t *reply = NULL, *it, *lim;
	size_t i;
	int r = ctl_run(c, o, "promo rules", "GET", "/api/v1/promo/rules", NULL, 200, &reply);

	if (r == 0 && !o->json) {
		lim = json_object_get(reply, "limits");
		printf("rules file: %s\n", json_is_string(json_object_get(reply, "file"))
						   ? ctl_str(reply, "file")
						   : "(none: the built-in low-fuel rule)");
		printf("limits: %lld a day, %lld a week per vehicle (0: no cap); quiet hours %s; "
		       "default time zone %s\n",
		       (long long)json_integer_value(json_object_get(lim, "per_day")),
		       (long long)json_integer_value(json_object_get(lim, "per_week")),
		       *ctl_str(lim, "quiet_hours") ? ctl_str(lim, "quiet_hours") : "none",
		       ctl_str(lim, "time_zone"));
		printf("%-24s %-20s %-10s %-12s %s\n", "RULE", "TRIGGER", "KIND", "POI", "TITLE");
		json_array_foreach(json_object_get(reply, "items"), i, it)
			printf("%-24s %-20s %-10s %-12s %s\n", ctl_str(it, "name"),
			       ctl_str(json_object_get(it, "trigger"), "type"), ctl_str(it, "kind"),
			       *ctl_str(it, "poi_category") ? ctl_str(it, "poi_category") : "-",
			       ctl_str(it, "title"));
	}
	json_decref(reply);
	return r;
}

static int promo_suppressed(struct ctl_client *c, const struct ctl_api_opts *o, int argc,
			    char **argv)
{
	struct ctl_api_opts quiet = *o;
	const char *vin = NULL;
	json_t *reply = NULL, *it;
	char path[128];
	size_t i;
	int r;

	r = ctl_vin_arg(argc, argv, "promo suppressed", &vin);
	if (r)
		return r;
	if (snprintf(path, sizeof(path), "/api/v1/vehicles/%s/suppressed-offers?limit=1000", vin) >=
	    (int)sizeof(path))
		return ctl_fail(EXIT_USAGE, "promo suppressed: not a VIN: %s", vin);
	quiet.json = 0; /* --json prints the list itself, below */
	r = ctl_run(c, &quiet, "promo suppressed", "GET", path, NULL, 200, &reply);
	if (r == 0 && o->json) {
		ctl_print_json(json_object_get(reply, "items"));
	} else if (r == 0) {
		printf("%-24s %-24s %-12s %s\n", "TIME", "RULE", "REASON", "DETAIL");
		json_array_foreach(json_object_get(reply, "items"), i, it)
			printf("%-24s %-24s %-12s %s\n", ctl_str(it, "time"), ctl_str(it, "rule"),
			       ctl_str(it, "reason"), ctl_str(it, "detail"));
		if (json_is_true(json_object_get(reply, "truncated")))
			printf("(truncated: only the newest are listed)\n");
	}
	json_decref(reply);
	return r;
}

/* Validates FILE with the gateway's parser; needs no gateway. */
static int promo_check(const struct ctl_api_opts *o, int argc, char **argv)
{
	struct promo_rules *set = NULL;
	char *err;
	int r;

	if (argc != 3)
		return ctl_fail(EXIT_USAGE, "promo check: expected one FILE");
	err = malloc(65536);
	if (!err)
		return ctl_fail(1, "out of memory");
	r = promo_rules_load(argv[2], &set, err, 65536);
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		free(err);
		return 1;
	}
	free(err);
	if (o->json) {
		json_t *names = json_array();

		for (size_t i = 0; i < set->n; i++)
			json_array_append_new(names, json_string(set->rules[i].name));
		json_t *out =
			json_pack("{s:s,s:b,s:o}", "file", argv[2], "valid", 1, "rules", names);

		ctl_print_json(out);
		json_decref(out);
	} else {
		printf("%s: %zu rule%s, valid\n", argv[2], set->n, set->n == 1 ? "" : "s");
	}
	promo_rules_free(set);
	return 0;
}

int ctl_promo_command(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	if (strcmp(argv[0], "vehicle") == 0)
		return vehicle_set(c, o, argc, argv);
	if (strcmp(argv[1], "rules") == 0 && argc == 2)
		return promo_rules(c, o);
	if (strcmp(argv[1], "check") == 0)
		return promo_check(o, argc, argv);
	if (strcmp(argv[1], "suppressed") == 0)
		return promo_suppressed(c, o, argc, argv);
	return ctl_fail(EXIT_USAGE, "promo %s: unknown; try pitstopctl --help", argv[1]);
}
