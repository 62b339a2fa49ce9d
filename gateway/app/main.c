/*
 * pitstop-gateway: the daemon that receives vehicle telemetry, events and
 * status from the broker (a shared subscription, so several gateways can
 * split the fleet), stores them, acknowledges committed telemetry to the car
 * (receipts), runs the rules and publishes signed offers.
 *
 * Start-up order (undone in reverse): config, log, database (migrated) and
 * its domains (telemetry, offers), signing key, loop, bus, ingest (loads the
 * saved counters), rules, scheduled jobs, subscriptions, signals.
 * Everything after start-up runs on the loop thread. SIGINT/SIGTERM commit
 * what is pending, save the counters, disconnect cleanly and exit 0 (within
 * 2 s with the broker gone: bench/stop_time.py). SIGHUP re-reads the config
 * file (see "Service lifecycle" below and docs/operations.md).
 *
 * Exit codes: 0 clean stop, 1 runtime failure, 2 usage or config error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "activity.h"
#include "accounts.h"
#include "api.h"
#include "bus.h"
#include "crypto.h"
#include "gwconfig.h"
#include "ingest.h"
#include "jobs.h"
#include "log.h"
#include "loop.h"
#include "offer_log.h"
#include "pki.h"
#include "poi.h"
#include "promo_rules.h"
#include "reload.h"
#include "reminders.h"
#include "rules.h"
#include "schema.h"
#include "sdnotify.h"
#include "service.h"
#include "telemetry.h"

#define SESSION_EXPIRY_S 86400
/*
 * How long the clean MQTT disconnect at a stop may wait for in-flight
 * messages. Paho 1.3 re-checks a disconnect that waits for acknowledgements
 * only every 3 s, so anything in flight at the stop (the agent's Status
 * OFFLINE, a receipt) costs this plus the second bus_stop() keeps polling,
 * whether or not the acknowledgement came: 500 ms keeps the whole stop
 * under the 2 s the unit promises (bench/stop_time.py).
 */
#define STOP_TIMEOUT_MS 500
/* The activity info line: once a minute; PITSTOP_STATS_INTERVAL_MS (tests) changes it. */
#define STATS_INTERVAL_MS 60000

static const char *const topic_kinds[] = { "telemetry", "events", "status" };

struct gateway {
	struct gw_config conf;
	struct db *db;		      /* owned */
	struct telemetry *telemetry;  /* owned */
	struct offer_log *offers;     /* owned */
	struct crypto_signer *signer; /* owned */
	struct loop *loop;	      /* owned */
	struct bus *bus;	      /* owned */
	struct ingest *ingest;	      /* owned */
	struct rules *rules;	      /* owned */
	struct promo_rules *promo;    /* owned: the rules file's set (NULL: built-in rule) */
	struct poi_db *poi;	      /* owned */
	struct jobs *jobs;	      /* owned */
	struct reminders *reminders;  /* owned */
	struct accounts *accounts;    /* owned */
	struct api *api;	      /* owned; NULL: no API */
	int ready_logged;

	/* Service lifecycle: systemd status and watchdog, SIGHUP, the minute line. */
	const char *config_path;	    /* borrowed (argv): re-read on SIGHUP */
	const char *level_arg;		    /* borrowed (argv): --log-level, wins over the file */
	struct sdnotify_watchdog *watchdog; /* owned; NULL without WatchdogSec= */
	struct activity *activity;	    /* owned */
	int activity_timer;		    /* loop timer id, 0 = none */
	int poi_timer;			    /* loop timer id, 0 = none */
	uint64_t stats_interval_ms;
	int connected;		  /* the bus is connected */
	int have_rate;		  /* batches_per_min is known (a line was logged) */
	uint64_t batches_per_min; /* at the last line, scaled to a minute */
	size_t cars_online;	  /* at the last line */
};

static void update_status(struct gateway *gw);

static void usage(FILE *f)
{
	fprintf(f, "usage: pitstop-gateway --config FILE [--log-level error|warn|info|debug]\n"
		   "       pitstop-gateway --version | --help\n"
		   "Receives vehicle telemetry over MQTT, stores it and sends signed offers.\n\n"
		   "options of FILE (name = value):\n");
	for (const struct config_option *o = gw_config_table; o->name; o++)
		fprintf(f, "  %-22s %s%s%s%s\n", o->name, o->help, o->def ? " (default " : "",
			o->def ? o->def : "", o->def ? ")" : "");
}

/* The rules' settings in conf, on gw's domains. */
static void rules_config_of(const struct gateway *gw, const struct gw_config *conf,
			    struct rules_config *rc)
{
	memset(rc, 0, sizeof(*rc));
	rc->poi = gw->poi;
	rc->accounts = gw->accounts;
	rc->telemetry = gw->telemetry;
	rc->low_fuel_pct = conf->low_fuel_pct;
	rc->low_fuel_rearm_pct = conf->low_fuel_rearm_pct;
	rc->offer_valid_s = conf->offer_valid_s;
	rc->low_fuel_rearm_hold_s = conf->low_fuel_rearm_hold_s;
	rc->offers_per_day_max = conf->offers_per_day_max;
}

/*
 * Loads conf's promo_rules_file (none: *ret NULL, the built-in rule) and
 * makes the engine on it. Returns 0 with *ret_rules and *ret_set (owned by
 * the caller, freed after the rules), or -errno with every FILE:LINE error
 * logged.
 */
static int promo_load(struct gateway *gw, const struct gw_config *conf, struct rules **ret_rules,
		      struct promo_rules **ret_set)
{
	struct promo_rules *set = NULL;
	struct rules_config rc;
	char *err;
	int r = 0;

	if (conf->promo_rules_file && *conf->promo_rules_file) {
		err = malloc(16384);
		if (!err)
			return -ENOMEM;
		r = promo_rules_load(conf->promo_rules_file, &set, err, 16384);
		if (r < 0) {
			char *save = NULL;

			for (char *line = strtok_r(err, "\n", &save); line;
			     line = strtok_r(NULL, "\n", &save))
				log_error("%s", line);
		}
		free(err);
		if (r < 0)
			return r;
	}
	rules_config_of(gw, conf, &rc);
	rc.set = set;
	r = rules_new(&rc, gw->db, gw->offers, ingest_offer_sink, gw->ingest, ret_rules);
	if (r < 0) {
		promo_rules_free(set);
		return r;
	}
	if (set)
		log_info("promotion rules: %zu from %s", set->n, conf->promo_rules_file);
	*ret_set = set;
	return 0;
}

/* Sets the telemetry domain's plausibility limits from conf. */
static void apply_limits(struct gateway *gw)
{
	struct telemetry_limits lim = telemetry_limits_default();

	lim.max_ahead_ms = (int64_t)gw->conf.max_clock_ahead_s * 1000;
	telemetry_set_limits(gw->telemetry, &lim);
}

/* Publishes one signed offer or telemetry receipt; the outboxes call this. */
static int publish_outbox(void *arg, const char *topic, const uint8_t *buf, size_t len,
			  uint64_t cookie)
{
	struct gateway *gw = arg;

	return bus_publish(gw->bus, topic, buf, len, 1, 0, cookie);
}

/* Bus events, on the loop thread. */
static void on_bus_event(const struct bus_event *ev, void *arg)
{
	struct gateway *gw = arg;

	switch (ev->type) {
	case BUS_CONNECTED:
		if (!gw->ready_logged) {
			char db[512];

			db_url_redact(gw->conf.db, db, sizeof(db));
			log_info("ready: connected to %s as %s, subscribed %s%s, db %s (%s)",
				 gw->conf.broker_uri, gw->conf.client_id,
				 *gw->conf.share_group ? "in group " : "without a share group",
				 gw->conf.share_group, db, db_backend_name(db_backend(gw->db)));
			sdnotify_send("READY=1");
			gw->ready_logged = 1;
		}
		gw->connected = 1;
		update_status(gw);
		ingest_connected(gw->ingest);
		break;
	case BUS_DISCONNECTED:
		log_warn("disconnected from the broker (%d); reconnecting", ev->reason_code);
		gw->connected = 0;
		update_status(gw);
		break;
	case BUS_MESSAGE: {
		char vin[VIN_LEN + 1];

		if (ingest_topic_vin(ev->topic, vin) == 0)
			activity_seen(gw->activity, vin, loop_now_ms()); /* full: counted as "+" */
		ingest_message_at(gw->ingest, ev->topic, ev->payload, ev->len, ev->received_us);
		break;
	}
	case BUS_PUBLISHED:
		ingest_published(gw->ingest, ev->cookie, 1);
		break;
	case BUS_PUBLISH_FAILED:
		log_warn("a publish (offer or receipt) was refused: %s (%d)",
			 bus_reason_string(ev->reason_code), ev->reason_code);
		ingest_published(gw->ingest, ev->cookie, 0);
		break;
	case BUS_DROPPED:
		ingest_dropped(gw->ingest, ev->cookie);
		break;
	case BUS_SUBSCRIBE_FAILED:
		log_error("subscription to %s failed: %s (%d)", ev->topic ? ev->topic : "?",
			  bus_reason_string(ev->reason_code), ev->reason_code);
		break;
	}
}

/*
 * The broker takes the client id from the certificate's CN
 * (use_username_as_clientid), so a client_id that differs names counters,
 * leases and the log after an instance the broker does not know. Warns once;
 * not fatal (the gateway works, under the broker's name).
 */
static void warn_identity(const struct gw_config *conf)
{
	char cn[PKI_GATEWAY_NAME_MAX + 1], err[512];
	int r;

	if (!conf->cert_file)
		return;
	r = pki_cert_cn(conf->cert_file, cn, sizeof(cn), err, sizeof(err));
	if (r < 0)
		log_warn("cannot read the CN of cert_file: %s", err);
	else if (strcmp(cn, conf->client_id) != 0)
		log_warn("client_id %s is not the certificate's CN %s: the broker calls this "
			 "instance %s; set client_id = %s",
			 conf->client_id, cn, cn, cn);
}

static void on_signal(int signo, void *arg)
{
	struct gateway *gw = arg;

	log_info("%s received: stopping", strsignal(signo));
	sdnotify_send(
		"STOPPING=1\nSTATUS=stopping: committing, saving the counters, disconnecting");
	loop_stop(gw->loop);
}

/*
 * --- Service lifecycle -------------------------------------------------
 * systemd status and watchdog (common/sdnotify.c), SIGHUP reloads, and the
 * activity line once a minute (activity.h). All on the loop thread.
 */

/*
 * Options SIGHUP applies while running; every other one is read at start
 * only, and a changed value is logged as needing a restart (the broker
 * connection, certificates and keys, the database, the instance id, the
 * backlog bound sized into the bus, the log file).
 */
static const char *const reloadable_options[] = {
	"log_level",
	"low_fuel_pct",
	"low_fuel_rearm_pct",
	"low_fuel_rearm_hold_s",
	"offer_valid_s",
	"offers_per_day_max",
	"max_clock_ahead_s",
	"promo_rules_file",
	NULL,
};

/* Tells systemd what the gateway is doing; sent only when the text changes. */
static void update_status(struct gateway *gw)
{
	char text[SDNOTIFY_STATUS_MAX], rate[96] = "";

	if (gw->have_rate)
		snprintf(rate, sizeof(rate), "; %llu batches/min, %zu cars online",
			 (unsigned long long)gw->batches_per_min, gw->cars_online);
	if (gw->connected)
		snprintf(text, sizeof(text), "connected to the broker, ingesting%s", rate);
	else if (gw->ready_logged)
		snprintf(text, sizeof(text), "reconnecting to the broker%s", rate);
	else
		snprintf(text, sizeof(text), "waiting for the broker%s", rate);
	sdnotify_status(text);
}

/* Timer: logs what happened since the last line, updates the status. */
static void activity_fired(void *arg)
{
	struct gateway *gw = arg;
	uint64_t now = loop_now_ms(), batches;
	char line[512];
	int r;

	gw->activity_timer = 0;
	batches = activity_line(gw->activity, ingest_counters(gw->ingest), now, line, sizeof(line));
	log_info("%s", line);
	gw->batches_per_min = batches * 60000 / gw->stats_interval_ms;
	gw->cars_online = activity_online(gw->activity, now, NULL);
	gw->have_rate = 1;
	update_status(gw);
	r = loop_add_timer(gw->loop, gw->stats_interval_ms, activity_fired, gw);
	if (r > 0)
		gw->activity_timer = r;
	else
		log_error("cannot schedule the activity line: %s", strerror(-r));
}

/* The env var name (ms, min..max; for tests), or def when unset or bad (warned). */
static uint64_t env_ms(const char *name, uint64_t def, unsigned long long min,
		       unsigned long long max)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long ms;

	if (!v || !*v)
		return def;
	errno = 0;
	ms = strtoull(v, &end, 10);
	if (errno || *end || ms < min || ms > max) {
		log_warn("%s=%s is not %llu..%llu; using %llu", name, v, min, max,
			 (unsigned long long)def);
		return def;
	}
	return ms;
}

/* STATS_INTERVAL_MS, or PITSTOP_STATS_INTERVAL_MS (100 ms .. 1 h). */
static uint64_t stats_interval_ms(void)
{
	return env_ms("PITSTOP_STATS_INTERVAL_MS", STATS_INTERVAL_MS, 100, 3600000);
}

/*
 * SIGHUP: re-reads the config file. An invalid file (or a failure to set up
 * the new rules) changes nothing and is logged at error with its file:line.
 * Otherwise the reloadable options take effect at once, between two ingest
 * transactions, and each changed restart-only option is logged at warn.
 */
static void gateway_reload(struct gateway *gw)
{
	struct gw_config fresh;
	struct rules *rules = NULL;
	struct promo_rules *promo = NULL;
	char err[1024];
	int r, restart, applied;

	log_info("SIGHUP received: reloading %s", gw->config_path);
	memset(&fresh, 0, sizeof(fresh));
	r = gw_config_load(gw->config_path, &fresh, err, sizeof(err));
	if (r == 0 && !fresh.offer_key_file) {
		snprintf(err, sizeof(err),
			 "%s: offer_key_file is not set (the key that signs offers)",
			 gw->config_path);
		gw_config_free(&fresh);
		r = -EINVAL;
	}
	if (r < 0) {
		log_error("reload failed: %s; the running configuration stays", err);
		return;
	}
	ingest_flush(gw->ingest); /* rules change between transactions; db logged a failure */
	r = promo_load(gw, &fresh, &rules, &promo);
	if (r < 0) {
		log_error("reload failed: cannot set up the rules: %s; the running configuration "
			  "stays",
			  strerror(-r));
		gw_config_free(&fresh);
		return;
	}
	restart = reload_apply(gw_config_table, &gw->conf, &fresh, reloadable_options, &applied);
	ingest_set_rules(gw->ingest, rules);
	rules_free(gw->rules);
	promo_rules_free(gw->promo);
	gw->rules = rules;
	gw->promo = promo;
	apply_limits(gw);
	if (!gw->level_arg)
		log_init("pitstop-gateway", (enum log_level)log_level_parse(gw->conf.log_level));
	else
		log_info("reload: --log-level %s still wins over log_level", gw->level_arg);
	log_info("reloaded %s: %d change%s applied, %d more take%s effect only after a restart",
		 gw->config_path, applied, applied == 1 ? "" : "s", restart,
		 restart == 1 ? "s" : "");
	gw_config_free(&fresh);
}

static void on_sighup(int signo, void *arg)
{
	(void)signo;
	gateway_reload(arg);
}

/*
 * Timer: lets the POI index follow the table (another instance's import,
 * this one's) outside ingest's transactions, where the rules' queries
 * never rebuild it (poi.h).
 */
static void poi_fired(void *arg)
{
	struct gateway *gw = arg;
	int r;

	gw->poi_timer = 0;
	if (ingest_idle(gw->ingest))
		poi_refresh(gw->poi); /* a failure is logged; queries run in SQL meanwhile */
	r = loop_add_timer(gw->loop, POI_CHECK_MS, poi_fired, gw);
	if (r > 0)
		gw->poi_timer = r;
}

/* Starts SIGHUP, the watchdog and the activity line. Returns 0 or -errno (logged). */
static int lifecycle_start(struct gateway *gw)
{
	uint64_t period = 0;
	int r;

	r = activity_new(ingest_counters(gw->ingest), loop_now_ms(), &gw->activity);
	if (r < 0)
		return r;
	gw->stats_interval_ms = stats_interval_ms();
	r = loop_add_timer(gw->loop, gw->stats_interval_ms, activity_fired, gw);
	if (r < 0)
		return r;
	gw->activity_timer = r;
	r = loop_add_timer(gw->loop, POI_CHECK_MS, poi_fired, gw);
	if (r < 0)
		return r;
	gw->poi_timer = r;
	r = loop_watch_signal(gw->loop, SIGHUP, on_sighup, gw);
	if (r < 0)
		return r;
	r = sdnotify_watchdog_start(gw->loop, &gw->watchdog, &period);
	if (r < 0) /* systemd never sets a bad value; run without pings */
		log_warn("no systemd watchdog: WATCHDOG_USEC or WATCHDOG_PID: %s", strerror(-r));
	else if (r > 0)
		log_info("systemd watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)period);
	update_status(gw);
	return 0;
}

/* Undoes lifecycle_start(); safe on a partly started one. */
static void lifecycle_stop(struct gateway *gw)
{
	sdnotify_watchdog_free(gw->watchdog);
	gw->watchdog = NULL;
	if (gw->activity_timer)
		loop_cancel_timer(gw->loop, gw->activity_timer);
	gw->activity_timer = 0;
	if (gw->poi_timer)
		loop_cancel_timer(gw->loop, gw->poi_timer);
	gw->poi_timer = 0;
	activity_free(gw->activity);
	gw->activity = NULL;
}
/* --- end of service lifecycle ------------------------------------------ */

/*
 * Subscribes to the three vehicle topics through the share group, or with
 * plain subscriptions when share_group is empty (one instance only: mosquitto
 * 2.0.11 does not restore shared subscriptions from its persistence file, so
 * messages published after a broker restart and before we reconnect are lost
 * with $share but kept with a plain subscription).
 */
static int subscribe_all(struct gateway *gw)
{
	char filter[256];
	int r;

	for (size_t i = 0; i < sizeof(topic_kinds) / sizeof(topic_kinds[0]); i++) {
		if (*gw->conf.share_group)
			snprintf(filter, sizeof(filter), "$share/%s/pitstop/v1/vehicles/+/%s",
				 gw->conf.share_group, topic_kinds[i]);
		else
			snprintf(filter, sizeof(filter), "pitstop/v1/vehicles/+/%s",
				 topic_kinds[i]);
		r = bus_subscribe(gw->bus, filter, 1);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Ingest stored new state for these vehicles: the API's event streams hear of it. */
static void on_vehicles(void *arg, const struct telemetry_vehicle *v, size_t n)
{
	struct gateway *gw = arg;

	for (size_t i = 0; gw->api && i < n; i++)
		api_vehicle_changed(gw->api, &v[i]);
}

/* The accounts domain and the HTTP API (console, pitstopctl). Returns 0 or -errno. */
static int api_start(struct gateway *gw)
{
	struct api_params ap;
	int r;

	r = accounts_new(gw->db, &gw->accounts);
	if (r < 0) {
		log_error("cannot prepare the accounts statements: %s", strerror(-r));
		return r;
	}
	accounts_set_instance(gw->accounts, gw->conf.client_id);
	{
		char err[600];

		/* A missing file turns service prediction off; a bad one stops the start. */
		r = service_plans_use(gw->conf.service_plans_file, err, sizeof(err));
		if (r == -ENOENT)
			log_warn("%s (service_plans_file): service predictions are off", err);
		else if (r < 0) {
			log_error("%s (service_plans_file)", err);
			return r;
		}
	}
	accounts_set_session_ttl(gw->accounts, (int64_t)gw->conf.api_session_ttl_s * 1000);
	if (!*gw->conf.api_listen && !*gw->conf.api_socket)
		return 0;
	memset(&ap, 0, sizeof(ap));
	ap.loop = gw->loop;
	ap.db = gw->db;
	ap.telemetry = gw->telemetry;
	ap.offers = gw->offers;
	ap.accounts = gw->accounts;
	ap.poi = gw->poi;
	ap.instance_id = gw->conf.client_id;
	ap.listen = gw->conf.api_listen;
	ap.socket_path = gw->conf.api_socket;
	ap.cert_file = gw->conf.api_cert_file;
	ap.key_file = gw->conf.api_key_file;
	ap.console_dir = gw->conf.console_dir;
	ap.javascript_dir = gw->conf.javascript_dir;
	ap.tiles_dir = gw->conf.map_tiles_dir;
	ap.session_ttl_ms = (int64_t)gw->conf.api_session_ttl_s * 1000;
	ap.offer_latency = ingest_offer_latency(gw->ingest);
	ap.rules = &gw->rules;
	return api_new(&ap, &gw->api);
}

/* The service reminders' job (reminders.h), on the rules' offer sink. Returns 0 or -errno. */
static int reminders_start(struct gateway *gw)
{
	struct reminders_config c;
	int r;

	memset(&c, 0, sizeof(c));
	c.first_days = gw->conf.service_remind_first_days;
	c.first_km = gw->conf.service_remind_first_km;
	c.second_days = gw->conf.service_remind_second_days;
	c.offers_per_day_max = gw->conf.offers_per_day_max;
	snprintf(c.dealer_name, sizeof(c.dealer_name), "%s",
		 gw->conf.service_dealer_name ? gw->conf.service_dealer_name : "");
	r = reminders_new(&c, gw->db, gw->telemetry, gw->offers, ingest_offer_sink, gw->ingest,
			  &gw->reminders);
	if (r == 0)
		r = jobs_add(
			gw->jobs, REMINDERS_JOB,
			env_ms("PITSTOP_REMINDERS_PERIOD_MS", REMINDERS_PERIOD_MS, 100, 86400000),
			reminders_job, gw->reminders);
	if (r == 0) /* the offers it signed are published once its transaction commits */
		r = jobs_set_done(gw->jobs, REMINDERS_JOB, ingest_job_done, gw->ingest);
	return r;
}

/* Everything between config and the loop. Returns 0 or -errno (logged). */
static int gateway_start(struct gateway *gw)
{
	struct bus_config bc;
	struct ingest_params ip;
	char err[512];
	int r;

	r = schema_open(gw->conf.db, DB_READ_WRITE, &gw->db, err, sizeof(err));
	if (r < 0) {
		log_error("cannot open the database: %s", err);
		return r;
	}
	r = telemetry_new(gw->db, &gw->telemetry);
	if (r == 0) {
		apply_limits(gw);
		r = offer_log_new(gw->db, &gw->offers);
	}
	if (r == 0)
		offer_log_set_keep_ms(gw->offers, gw->conf.offer_keep_days * 86400000LL);
	if (r == 0)
		r = poi_db_new(gw->db, &gw->poi);
	if (r < 0) {
		log_error("cannot prepare the database statements: %s", strerror(-r));
		return r;
	}
	r = crypto_signer_load(gw->conf.offer_key_file, &gw->signer);
	if (r < 0) {
		log_error("cannot load the offer-signing key %s: %s", gw->conf.offer_key_file,
			  strerror(-r));
		return r;
	}
	r = loop_new(&gw->loop);
	if (r < 0)
		return r;

	memset(&bc, 0, sizeof(bc));
	bc.uri = gw->conf.broker_uri;
	bc.client_id = gw->conf.client_id;
	bc.ca_file = gw->conf.ca_file;
	bc.cert_file = gw->conf.cert_file;
	bc.key_file = gw->conf.key_file;
	bc.clean_start = 0;
	bc.session_expiry_s = SESSION_EXPIRY_S;
	/* A dropped batch has no receipt: its car sends it again. */
	bc.max_queued_bytes = (size_t)gw->conf.max_backlog_mb << 20;
	bc.droppable_suffix = "/telemetry";
	r = bus_new(gw->loop, &bc, on_bus_event, gw, &gw->bus);
	if (r < 0) {
		log_error("cannot set up the MQTT client: %s", strerror(-r));
		return r;
	}

	memset(&ip, 0, sizeof(ip));
	ip.loop = gw->loop;
	ip.db = gw->db;
	ip.telemetry = gw->telemetry;
	ip.offers = gw->offers;
	ip.signer = gw->signer;
	ip.sign_thread = 1; /* offers are signed while their transaction commits */
	ip.instance_id = gw->conf.client_id;
	ip.publish = publish_outbox;
	ip.publish_arg = gw;
	ip.on_vehicles = on_vehicles;
	ip.on_vehicles_arg = gw;
	r = ingest_new(&ip, &gw->ingest);
	if (r < 0) {
		log_error("cannot start ingest: %s", strerror(-r));
		return r;
	}
	/* Jobs take a lease per run: with several instances each runs once. */
	r = jobs_new(gw->loop, gw->db, gw->conf.client_id, ingest_idle, gw->ingest, &gw->jobs);
	if (r == 0)
		r = jobs_add(gw->jobs, OFFER_LOG_EXPIRE_JOB, OFFER_LOG_EXPIRE_PERIOD_MS,
			     offer_log_expire_job, gw->offers);
	if (r == 0)
		r = reminders_start(gw);
	if (r == 0)
		r = jobs_add(gw->jobs, RULES_CLEANUP_JOB, RULES_CLEANUP_PERIOD_MS,
			     rules_cleanup_job, NULL);
	if (r < 0) {
		log_error("cannot schedule the jobs: %s", strerror(-r));
		return r;
	}
	/* Makes this instance visible to `pitstopctl stats` from the start. */
	if (ingest_save_counters(gw->ingest) < 0)
		log_warn("could not save the counters; carrying on");

	r = api_start(gw);
	if (r < 0)
		return r;
	/* The rules need the accounts (audience.fleet) api_start() opened. */
	r = promo_load(gw, &gw->conf, &gw->rules, &gw->promo);
	if (r < 0) {
		log_error("cannot set up the promotion rules: %s", strerror(-r));
		return r;
	}
	ingest_set_rules(gw->ingest, gw->rules);
	r = subscribe_all(gw);
	if (r < 0)
		return r;
	r = loop_watch_signal(gw->loop, SIGINT, on_signal, gw);
	if (r == 0)
		r = loop_watch_signal(gw->loop, SIGTERM, on_signal, gw);
	if (r < 0)
		return r;
	r = lifecycle_start(gw);
	if (r < 0)
		return r;
	signal(SIGPIPE, SIG_IGN);
	r = bus_start(gw->bus);
	if (r < 0) {
		log_error("cannot start the MQTT client: %s", strerror(-r));
		return r;
	}
	db_url_redact(gw->conf.db, err, sizeof(err));
	log_info("started: broker %s, client id %s, db %s; waiting for the broker",
		 gw->conf.broker_uri, gw->conf.client_id, err);
	return 0;
}

/* Undoes gateway_start() in reverse; safe on a partly started gateway. */
static void gateway_stop(struct gateway *gw)
{
	if (gw->ingest) {
		if (ingest_save_counters(gw->ingest) < 0)
			log_error("could not save the counters at exit");
	}
	if (gw->bus)
		bus_stop(gw->bus, STOP_TIMEOUT_MS);
	lifecycle_stop(gw);
	api_free(gw->api);
	accounts_free(gw->accounts);
	jobs_free(gw->jobs);
	reminders_free(gw->reminders);
	ingest_free(gw->ingest);
	rules_free(gw->rules);
	promo_rules_free(gw->promo);
	bus_free(gw->bus);
	loop_free(gw->loop);
	crypto_signer_free(gw->signer);
	poi_db_free(gw->poi);
	offer_log_free(gw->offers);
	telemetry_free(gw->telemetry);
	db_close(gw->db);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct gateway gw;
	const char *config_path = NULL, *level_arg = NULL;
	char err[512], why[1200];
	int c, level, r, status = 0;

	memset(&gw, 0, sizeof(gw));
	while ((c = getopt_long(argc, argv, "c:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'l':
			level_arg = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("pitstop-gateway %s\n", PITSTOP_VERSION);
			return 0;
		default: /* getopt said what was wrong */
			fprintf(stderr, "try pitstop-gateway --help\n");
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr,
			"pitstop-gateway: unexpected argument '%s'; try pitstop-gateway --help\n",
			argv[optind]);
		return 2;
	}
	if (!config_path) {
		fprintf(stderr,
			"pitstop-gateway: --config FILE is required; try pitstop-gateway --help\n");
		return 2;
	}
	if (level_arg && log_level_parse(level_arg) < 0) {
		fprintf(stderr,
			"pitstop-gateway: --log-level: '%s' is not error, warn, info or debug\n",
			level_arg);
		return 2;
	}
	r = gw_config_load(config_path, &gw.conf, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	if (!gw.conf.offer_key_file) {
		fprintf(stderr, "%s: offer_key_file is not set (the key that signs offers)\n",
			config_path);
		gw_config_free(&gw.conf);
		return 2;
	}
	level = log_level_parse(level_arg ? level_arg : gw.conf.log_level);
	log_init("pitstop-gateway", (enum log_level)level);
	if (gw.conf.log_file) {
		r = log_open_file(gw.conf.log_file);
		if (r < 0) {
			fprintf(stderr, "%s: log_file: cannot open %s: %s\n", config_path,
				gw.conf.log_file, strerror(-r));
			gw_config_free(&gw.conf);
			return 2;
		}
	}

	gw.config_path = config_path;
	gw.level_arg = level_arg;
	/* Before connecting: Paho would only say "TCP/TLS connect failure". */
	if (gw_config_check_files(&gw.conf, config_path, why, sizeof(why)) < 0) {
		log_error("%s", why);
		gw_config_free(&gw.conf);
		return 2;
	}
	warn_identity(&gw.conf);
	r = gateway_start(&gw);
	if (r == 0) {
		/* After gateway_start(): Paho's and the API's threads keep the default. */
		r = loop_prefer_latency();
		if (r < 0)
			log_debug("loop: the scheduler refused a short time slice (%s)",
				  strerror(-r));
		r = loop_run(gw.loop);
		if (r < 0)
			log_error("event loop failed: %s", strerror(-r));
	}
	status = r < 0 ? 1 : 0;
	gateway_stop(&gw);
	if (status == 0)
		log_info("stopped");
	gw_config_free(&gw.conf);
	return status;
}
