/*
 * The gateway's configuration table; see gwconfig.h.
 */
#include "gwconfig.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "bus.h"
#include "certcheck.h"
#include "log.h"

#define OPT(name, type, min, max, def, help)                                             \
	{                                                                                \
#name, type, offsetof(struct gw_config, name), min, max, def, help, NULL \
	}

const struct config_option gw_config_table[] = {
	OPT(broker_uri, CONFIG_STRING, 0, 0, "ssl://127.0.0.1:8883", "MQTT broker URI"),
	OPT(allow_plaintext, CONFIG_BOOL, 0, 1, "no",
	    "allow a plaintext tcp:// broker_uri (no TLS, no certificates; tests only)"),
	OPT(client_id, CONFIG_STRING, 0, 0, "pitstop-gateway-1",
	    "MQTT client id; also the instance id of the saved counters"),
	OPT(share_group, CONFIG_STRING, 0, 0, "pitstop-gateway",
	    "shared-subscription group: gateways in one group split the vehicles' messages;"
	    " empty: plain subscriptions (one instance only)"),
	OPT(ca_file, CONFIG_STRING, 0, 0, NULL, "fleet CA certificate (PEM)"),
	OPT(cert_file, CONFIG_STRING, 0, 0, NULL, "gateway client certificate (PEM)"),
	OPT(key_file, CONFIG_STRING, 0, 0, NULL, "gateway client key (PEM)"),
	OPT(offer_key_file, CONFIG_STRING, 0, 0, NULL, "private offer-signing key (PEM)"),
	OPT(db, CONFIG_STRING, 0, 0, "/var/lib/pitstop/gateway.db",
	    "database: a SQLite path, sqlite:PATH, or a PostgreSQL URL postgresql://..."),
	OPT(low_fuel_pct, CONFIG_INT, 0, 100, "15", "send a refuel offer at or below this fuel %"),
	OPT(low_fuel_rearm_pct, CONFIG_INT, 0, 100, "10",
	    "a new low-fuel offer only after fuel rose this far above low_fuel_pct"),
	OPT(low_fuel_rearm_hold_s, CONFIG_INT, 0, 86400, "600",
	    "the re-arm level must hold this long (s) before a new low-fuel offer can follow"),
	OPT(offer_valid_s, CONFIG_INT, 1, 30 * 86400, "3600", "how long an offer is valid (s)"),
	OPT(offers_per_day_max, CONFIG_INT, 0, 1000, "3",
	    "at most this many offers per car in 24 h (0: no cap)"),
	OPT(offer_keep_days, CONFIG_INT, 1, 3650, "90",
	    "the expiry job deletes offers whose validity ended this many days ago (their"
	    " counts stay in the statistics)"),
	OPT(promo_rules_file, CONFIG_STRING, 0, 0, NULL,
	    "promotion rules (docs/promotions.md; re-read on SIGHUP); none: one low-fuel rule"
	    " from low_fuel_*, offer_valid_s and offers_per_day_max"),
	OPT(max_clock_ahead_s, CONFIG_INT, 10, 86400, "300",
	    "samples and status dated further ahead of their receipt are set apart"),
	OPT(max_backlog_mb, CONFIG_INT, 1, 4096, "64",
	    "messages waiting for the loop, at most (MiB): past it telemetry is dropped (the cars"
	    " resend it), past twice that anything"),
	OPT(api_listen, CONFIG_STRING, 0, 0, "127.0.0.1:8080",
	    "HTTP API and console address host:port (empty: none); HTTPS with api_cert_file,"
	    " plain HTTP only on a loopback address"),
	OPT(api_socket, CONFIG_STRING, 0, 0, "/run/pitstop/api.sock",
	    "local API socket for pitstopctl (empty: none): root and the gateway's own user are"
	    " the local operator there"),
	OPT(api_cert_file, CONFIG_STRING, 0, 0, NULL,
	    "HTTPS certificate (PEM, may hold the chain) for api_listen"),
	OPT(api_key_file, CONFIG_STRING, 0, 0, NULL, "HTTPS private key (PEM) for api_listen"),
	OPT(api_session_ttl_s, CONFIG_INT, 300, 7 * 86400, "43200",
	    "how long a console login lasts (s)"),
	OPT(console_dir, CONFIG_STRING, 0, 0, "/usr/share/pitstop/console",
	    "the web console's files"),
	OPT(javascript_dir, CONFIG_STRING, 0, 0, "/usr/share/javascript",
	    "Debian's JavaScript libraries (Leaflet, Chart.js) for the console"),
	OPT(map_tiles_dir, CONFIG_STRING, 0, 0, NULL,
	    "optional offline map tiles Z/X/Y.png for the console (none: vector map only)"),
	OPT(service_plans_file, CONFIG_STRING, 0, 0, "/usr/share/pitstop/plans.json",
	    "the maintenance plans (JSON, docs/service-prediction.md)"),
	OPT(service_remind_first_days, CONFIG_INT, 1, 365, "30",
	    "first service reminder this many days before an item is due"),
	OPT(service_remind_first_km, CONFIG_INT, 0, 100000, "1000",
	    "... or this many km before (0: days only)"),
	OPT(service_remind_second_days, CONFIG_INT, 0, 364, "7",
	    "second service reminder this many days before (below service_remind_first_days)"),
	OPT(service_dealer_name, CONFIG_STRING, 0, 0, "your dealer",
	    "the workshop reminders name: \"Book your service at <name>\""),
	{ "log_level", CONFIG_STRING, offsetof(struct gw_config, log_level), 0, 0, "info",
	  "error, warn, info or debug", log_level_check },
	OPT(log_file, CONFIG_STRING, 0, 0, NULL, "log to this file instead of stderr"),
	CONFIG_END,
};

int gw_config_load(const char *path, struct gw_config *conf, char *err, size_t errlen)
{
	unsigned lines[sizeof(gw_config_table) / sizeof(gw_config_table[0])];
	char msg[512];
	int r;

	if (!path)
		return config_defaults(gw_config_table, conf);
	r = config_load_lines(path, gw_config_table, conf, lines, err, errlen);
	if (r < 0)
		return r;
	if (bus_uri_check(conf->broker_uri, conf->allow_plaintext, msg, sizeof(msg)) < 0) {
		snprintf(err, errlen, "%s:%u: broker_uri: %s", path,
			 config_line(gw_config_table, lines, "broker_uri"), msg);
		gw_config_free(conf);
		return -EINVAL;
	}
	if (conf->service_remind_second_days >= conf->service_remind_first_days) {
		snprintf(err, errlen,
			 "%s:%u: service_remind_second_days: %d is not below "
			 "service_remind_first_days (%d)",
			 path, config_line(gw_config_table, lines, "service_remind_second_days"),
			 conf->service_remind_second_days, conf->service_remind_first_days);
		gw_config_free(conf);
		return -EINVAL;
	}
	return 0;
}

int gw_config_check_files(const struct gw_config *conf, const char *path, char *err, size_t errlen)
{
	char msg[900];
	int r;

	if (bus_uri_tls(conf->broker_uri) != 1)
		return 0; /* plaintext, allowed at load */
	r = certcheck_files(conf->ca_file, conf->cert_file, conf->key_file, CERTCHECK_GATEWAY, NULL,
			    msg, sizeof(msg));
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, msg);
	return r;
}

void gw_config_free(struct gw_config *conf)
{
	config_free(gw_config_table, conf);
}
