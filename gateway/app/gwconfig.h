/*
 * The gateway's configuration: one table (names, defaults, ranges, help)
 * shared by pitstop-gateway and pitstopctl, so both read the same file the
 * same way. docs/gateway.md lists the keys.
 */
#ifndef PITSTOP_GATEWAY_GWCONFIG_H
#define PITSTOP_GATEWAY_GWCONFIG_H

#include <stddef.h>

#include "config.h"

struct gw_config {
	char *broker_uri;    /* owned, like every string here */
	int allow_plaintext; /* bool: a tcp:// broker_uri is allowed */
	char *client_id;     /* MQTT client id and counters instance id */
	char *share_group;   /* $share/<group>/... subscriptions */
	char *ca_file;
	char *cert_file;
	char *key_file;
	char *offer_key_file; /* private offer-signing key (PEM) */
	char *db;	      /* SQLite path or sqlite:PATH */
	int low_fuel_pct;
	int low_fuel_rearm_pct;
	int low_fuel_rearm_hold_s;
	int offer_valid_s;
	int offers_per_day_max;
	int offer_keep_days;	/* ended offers are deleted after this long */
	char *promo_rules_file; /* NULL: the built-in low-fuel rule (rules.h) */
	int max_clock_ahead_s;
	int max_backlog_mb;
	char *api_listen;    /* "host:port" or "" */
	char *api_socket;    /* unix socket path or "" */
	char *api_cert_file; /* NULL: plain HTTP (loopback only) */
	char *api_key_file;
	int api_session_ttl_s;
	char *console_dir;
	char *javascript_dir;
	char *map_tiles_dir;	       /* NULL: none */
	char *service_plans_file;      /* the maintenance plans (service.h) */
	int service_remind_first_days; /* reminders.h */
	int service_remind_first_km;
	int service_remind_second_days;
	char *service_dealer_name;
	char *log_level;
	char *log_file; /* NULL: stderr */
};

/* The option table, terminated by CONFIG_END. */
extern const struct config_option gw_config_table[];

/*
 * Loads path (NULL: defaults only) into conf and checks values that the
 * table cannot (log_level). On failure returns -errno with "file:line: what"
 * (or "file: what") in err and conf freed.
 */
int gw_config_load(const char *path, struct gw_config *conf, char *err, size_t errlen);

/*
 * The start-up check of the TLS files (common/certcheck.h: readable, key
 * matches, chain, dates, a gateway CN, never a VIN); nothing to check for a
 * plaintext broker_uri. Returns 0, or a negative errno with "path: what is
 * wrong" in err (path: the config file, for the message).
 */
int gw_config_check_files(const struct gw_config *conf, const char *path, char *err, size_t errlen);

/* Frees the strings of conf. Accepts NULL. */
void gw_config_free(struct gw_config *conf);

#endif
