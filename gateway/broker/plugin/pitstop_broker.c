/*
 * pitstop_broker: mosquitto 2.0 plugin (plugin API version 5) that decides
 * every publish, delivery and subscription on the Pitstop broker, and limits
 * how fast each car may publish. It replaces mosquitto's acl_file, which
 * grants every SUBSCRIBE (`#`, `$SYS/#`, any `$share` group) and filters only
 * at delivery: with a shared subscription a rogue group member is dealt its
 * round-robin share, which is then dropped (docs/security.md).
 *
 * Who is who: the broker takes the client certificate's CN as the username
 * (use_identity_as_username) and the username as the client id
 * (use_username_as_clientid). A client is
 *  - a vehicle if its username is a valid VIN (vin_valid()),
 *  - a gateway if it is a gateway name (pki_gateway_name_valid():
 *    pitstop-gateway or pitstop-gateway-<a-z0-9->),
 *  - nobody otherwise, and nobody if its client id is not its username (the
 *    config lost use_username_as_clientid): nobody may do anything.
 *
 * What each may do (topics pitstop/v1/vehicles/<VIN>/<kind>):
 *  - vehicle: publish its own telemetry, events, status (retain: status
 *    only), within its rate budget; subscribe to and receive exactly its own
 *    offers and acks (no wildcards, no $share);
 *  - gateway: subscribe to telemetry, events, status of one VIN or of `+`,
 *    also in a `$share/<group>/` group; receive those; publish offers and
 *    acks to a VIN, never retained;
 *  - everything else is refused; a refused SUBSCRIBE gets reason 135.
 *
 * Rate budget: a token bucket per vehicle, in messages and in payload
 * bytes (plugin_opt_vehicle_msgs_per_s, _msgs_burst, _bytes_per_s,
 * _bytes_burst). A publish over budget is refused (MQTT v5: PUBACK reason
 * 135, the car keeps the message and tries again later). Buckets are kept
 * by client id, not per connection, so reconnecting does not refill one;
 * a bucket that has refilled completely is the same as none and is freed by
 * the periodic sweep, so memory follows the cars that published lately.
 *
 * Runs on mosquitto's one thread: no locking. Links nothing but libc; the
 * broker provides the mosquitto_* functions at load time.
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "pki.h"
#include "vin.h"

#define TOPIC_PREFIX "pitstop/v1/vehicles/"
#define SHARE_PREFIX "$share/"
#define SWEEP_S 60	    /* how often full buckets are freed */
#define LOG_EVERY_S 60	    /* one over-budget line per car per minute */
#define DENY_LOG_EVERY_S 10 /* ACL refusals: one line per 10 s in all */
#define TABLE_MIN 1024	    /* bucket table slots, a power of two */
/* Built with hidden visibility: only the three entry points are exported. */
#define PLUGIN_API __attribute__((visibility("default")))

enum role {
	ROLE_NOBODY,
	ROLE_VEHICLE,
	ROLE_GATEWAY,
};

/* One option: its name after plugin_opt_, range and default. */
struct option_def {
	const char *name;
	long min, max, def;
	size_t offset; /* of the long in struct limits */
};

/* The rate budget of every vehicle. */
struct limits {
	long msgs_per_s;  /* sustained publishes per second */
	long msgs_burst;  /* bucket size in publishes */
	long bytes_per_s; /* sustained payload bytes per second */
	long bytes_burst; /* bucket size in payload bytes */
};

static const struct option_def option_defs[] = {
	{ "vehicle_msgs_per_s", 1, 100000, 5, offsetof(struct limits, msgs_per_s) },
	{ "vehicle_msgs_burst", 1, 10000000, 300, offsetof(struct limits, msgs_burst) },
	{ "vehicle_bytes_per_s", 1024, 1L << 30, 65536, offsetof(struct limits, bytes_per_s) },
	{ "vehicle_bytes_burst", 262144, 1L << 34, 4194304, offsetof(struct limits, bytes_burst) },
};

/* A vehicle's bucket, chained in the table by hash of its VIN. */
struct bucket {
	char vin[VIN_LEN + 1];
	double msgs;	      /* tokens left */
	double bytes;	      /* tokens left */
	double updated;	      /* monotonic seconds of the last refill */
	double logged;	      /* when its over-budget line was last logged */
	unsigned long denied; /* publishes refused since that line */
	struct bucket *next;  /* owned: the rest of the chain */
};

/* The plugin's state (mosquitto's userdata). */
struct plugin {
	mosquitto_plugin_id_t *id; /* borrowed: the broker's */
	struct limits limits;
	struct bucket **slots; /* owned: nslots chains */
	size_t nslots;	       /* a power of two */
	size_t count;	       /* buckets in the table */
	double swept;	       /* when full buckets were last freed */
	double deny_logged;    /* when an ACL refusal was last logged */
	unsigned long deny_suppressed;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- identities and topics ---- */

static enum role role_of(struct mosquitto *client)
{
	const char *user = mosquitto_client_username(client);
	const char *id = mosquitto_client_id(client);

	if (!user || !id || strcmp(user, id) != 0)
		return ROLE_NOBODY;
	if (vin_valid(user))
		return ROLE_VEHICLE;
	if (pki_gateway_name_valid(user))
		return ROLE_GATEWAY;
	return ROLE_NOBODY;
}

/*
 * Splits "pitstop/v1/vehicles/<car>/<kind>" into car (copied, at most
 * VIN_LEN characters) and kind (borrowed). Returns 0, or -1 if topic is not
 * of that shape. car may be "+" (a filter) but never hold '#'.
 */
static int split_topic(const char *topic, char car[VIN_LEN + 1], const char **ret_kind)
{
	const char *p, *slash;
	size_t n;

	if (strncmp(topic, TOPIC_PREFIX, sizeof(TOPIC_PREFIX) - 1) != 0)
		return -1;
	p = topic + sizeof(TOPIC_PREFIX) - 1;
	slash = strchr(p, '/');
	if (!slash)
		return -1;
	n = (size_t)(slash - p);
	if (n == 0 || n > VIN_LEN)
		return -1;
	memcpy(car, p, n);
	car[n] = '\0';
	*ret_kind = slash + 1;
	return 0;
}

/* 1 if kind is one a car sends: telemetry, events, status. */
static int car_sends(const char *kind)
{
	return strcmp(kind, "telemetry") == 0 || strcmp(kind, "events") == 0 ||
	       strcmp(kind, "status") == 0;
}

/* 1 if kind is status: the one topic a car may retain (its last state). */
static int car_status_kind(const char *kind)
{
	return strcmp(kind, "status") == 0;
}

/* 1 if kind is one the gateway sends a car: offers, acks. */
static int car_receives(const char *kind)
{
	return strcmp(kind, "offers") == 0 || strcmp(kind, "acks") == 0;
}

/* 1 if topic is pitstop/v1/vehicles/<vin>/<kind> with kind one of those of is_kind. */
static int own_topic(const char *topic, const char *vin, int (*is_kind)(const char *))
{
	char car[VIN_LEN + 1];
	const char *kind;

	return split_topic(topic, car, &kind) == 0 && strcmp(car, vin) == 0 && is_kind(kind);
}

/* ---- rate buckets ---- */

static uint32_t hash_vin(const char *vin)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *vin; vin++)
		h = (h ^ (uint8_t)*vin) * 16777619u;
	return h;
}

/* Adds what elapsed since b->updated, up to the burst sizes. */
static void refill(const struct limits *l, struct bucket *b, double now)
{
	double dt = now - b->updated;

	if (dt > 0) {
		b->msgs += dt * (double)l->msgs_per_s;
		b->bytes += dt * (double)l->bytes_per_s;
		b->updated = now;
	}
	if (b->msgs > (double)l->msgs_burst)
		b->msgs = (double)l->msgs_burst;
	if (b->bytes > (double)l->bytes_burst)
		b->bytes = (double)l->bytes_burst;
}

/* Doubles the table; on failure keeps the old one (chains just grow). */
static void grow(struct plugin *pl)
{
	size_t n = pl->nslots * 2;
	struct bucket **slots = mosquitto_calloc(n, sizeof(*slots));

	if (!slots)
		return;
	for (size_t i = 0; i < pl->nslots; i++) {
		struct bucket *b = pl->slots[i], *next;

		for (; b; b = next) {
			size_t j = hash_vin(b->vin) & (n - 1);

			next = b->next;
			b->next = slots[j];
			slots[j] = b;
		}
	}
	mosquitto_free(pl->slots);
	pl->slots = slots;
	pl->nslots = n;
}

/* The bucket of vin, made full if it has none; NULL when out of memory. */
static struct bucket *bucket_for(struct plugin *pl, const char *vin, double now)
{
	size_t i = hash_vin(vin) & (pl->nslots - 1);
	struct bucket *b;

	for (b = pl->slots[i]; b; b = b->next)
		if (strcmp(b->vin, vin) == 0)
			return b;
	b = mosquitto_calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	memcpy(b->vin, vin, VIN_LEN + 1);
	b->msgs = (double)pl->limits.msgs_burst;
	b->bytes = (double)pl->limits.bytes_burst;
	b->updated = now;
	b->logged = now - LOG_EVERY_S;
	b->next = pl->slots[i];
	pl->slots[i] = b;
	if (++pl->count > pl->nslots)
		grow(pl);
	return b;
}

/* 1 if vin may publish len payload bytes now (and takes the tokens); else 0. */
static int within_budget(struct plugin *pl, const char *vin, uint32_t len)
{
	double now = now_s();
	struct bucket *b = bucket_for(pl, vin, now);

	if (!b)
		return 0; /* out of memory: refuse, the car tries again later */
	refill(&pl->limits, b, now);
	if (b->msgs >= 1.0 && b->bytes >= (double)len) {
		b->msgs -= 1.0;
		b->bytes -= (double)len;
		return 1;
	}
	b->denied++;
	if (now - b->logged >= LOG_EVERY_S) {
		mosquitto_log_printf(
			MOSQ_LOG_WARNING,
			"pitstop: %s is over its publish budget (%ld msg/s, %ld B/s, "
			"bursts %ld msgs, %ld B): %lu publishes refused since the last "
			"report",
			vin, pl->limits.msgs_per_s, pl->limits.bytes_per_s, pl->limits.msgs_burst,
			pl->limits.bytes_burst, b->denied);
		b->logged = now;
		b->denied = 0;
	}
	return 0;
}

/* Frees the buckets that are full again (as good as none). */
static void sweep(struct plugin *pl, double now)
{
	for (size_t i = 0; i < pl->nslots; i++) {
		struct bucket **link = &pl->slots[i];

		while (*link) {
			struct bucket *b = *link;

			refill(&pl->limits, b, now);
			if (b->msgs >= (double)pl->limits.msgs_burst &&
			    b->bytes >= (double)pl->limits.bytes_burst && b->denied == 0) {
				*link = b->next;
				mosquitto_free(b);
				pl->count--;
			} else {
				link = &b->next;
			}
		}
	}
	pl->swept = now;
}

/* ---- the checks ---- */

/* May a gateway subscribe to filter (with or without a $share/<group>/)? */
static int gateway_may_subscribe(const char *filter)
{
	char car[VIN_LEN + 1];
	const char *kind;

	if (strncmp(filter, SHARE_PREFIX, sizeof(SHARE_PREFIX) - 1) == 0) {
		const char *group = filter + sizeof(SHARE_PREFIX) - 1;
		const char *slash = strchr(group, '/');

		if (!slash || slash == group)
			return 0;
		filter = slash + 1;
	}
	if (split_topic(filter, car, &kind) < 0 || !car_sends(kind))
		return 0;
	return strcmp(car, "+") == 0 || vin_valid(car);
}

/* Logs an ACL refusal, at most one line per DENY_LOG_EVERY_S. */
static void log_denied(struct plugin *pl, struct mosquitto *client, const char *what,
		       const char *topic)
{
	double now = now_s();
	const char *user = mosquitto_client_username(client);

	if (now - pl->deny_logged < DENY_LOG_EVERY_S) {
		pl->deny_suppressed++;
		return;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
			     "pitstop: refused %s %s for %s (%lu more refusals "
			     "not logged)",
			     what, topic, user ? user : "(no identity)", pl->deny_suppressed);
	pl->deny_logged = now;
	pl->deny_suppressed = 0;
}

/* 1 if ev is allowed, 0 if not (see the rules at the top). */
static int decide(struct plugin *pl, const struct mosquitto_evt_acl_check *ev)
{
	const char *user = mosquitto_client_username(ev->client);
	enum role role = role_of(ev->client);
	char car[VIN_LEN + 1];
	const char *kind;

	if (role == ROLE_NOBODY)
		return 0;
	switch (ev->access) {
	case MOSQ_ACL_UNSUBSCRIBE:
		return 1; /* leaving what one never joined changes nothing */
	case MOSQ_ACL_SUBSCRIBE:
		if (role == ROLE_VEHICLE)
			return own_topic(ev->topic, user, car_receives);
		return gateway_may_subscribe(ev->topic);
	case MOSQ_ACL_READ:
		if (role == ROLE_VEHICLE)
			return own_topic(ev->topic, user, car_receives);
		return split_topic(ev->topic, car, &kind) == 0 && vin_valid(car) && car_sends(kind);
	case MOSQ_ACL_WRITE:
		if (role == ROLE_VEHICLE) {
			if (!own_topic(ev->topic, user, car_sends))
				return 0;
			if (ev->retain && !own_topic(ev->topic, user, car_status_kind))
				return 0;
			return within_budget(pl, user, ev->payloadlen);
		}
		return !ev->retain && split_topic(ev->topic, car, &kind) == 0 && vin_valid(car) &&
		       car_receives(kind);
	default:
		return 0;
	}
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *ev = event_data;
	struct plugin *pl = userdata;
	static const char *const what[] = { [MOSQ_ACL_READ] = "delivery of",
					    [MOSQ_ACL_WRITE] = "publish to",
					    [MOSQ_ACL_SUBSCRIBE] = "subscription to" };

	if (!ev->topic)
		return MOSQ_ERR_ACL_DENIED;
	if (decide(pl, ev))
		return MOSQ_ERR_SUCCESS;
	/* Over-budget publishes are logged per car; deliveries are filtered quietly. */
	if (ev->access == MOSQ_ACL_SUBSCRIBE ||
	    (ev->access == MOSQ_ACL_WRITE && role_of(ev->client) != ROLE_VEHICLE))
		log_denied(pl, ev->client, what[ev->access], ev->topic);
	else if (ev->access == MOSQ_ACL_WRITE &&
		 !own_topic(ev->topic, mosquitto_client_username(ev->client), car_sends))
		log_denied(pl, ev->client, what[ev->access], ev->topic);
	return MOSQ_ERR_ACL_DENIED;
}

static int on_tick(int event, void *event_data, void *userdata)
{
	struct plugin *pl = userdata;
	double now = now_s();

	if (now - pl->swept >= SWEEP_S)
		sweep(pl, now);
	return MOSQ_ERR_SUCCESS;
}

/* Parses the plugin_opt_* values into l; logs and returns -1 on a bad one. */
static int parse_options(struct limits *l, const struct mosquitto_opt *opts, int n)
{
	for (size_t d = 0; d < sizeof(option_defs) / sizeof(option_defs[0]); d++)
		*(long *)((char *)l + option_defs[d].offset) = option_defs[d].def;
	for (int i = 0; i < n; i++) {
		const struct option_def *def = NULL;
		char *end;
		long v;

		for (size_t d = 0; d < sizeof(option_defs) / sizeof(option_defs[0]); d++)
			if (strcmp(opts[i].key, option_defs[d].name) == 0)
				def = &option_defs[d];
		if (!def) {
			mosquitto_log_printf(MOSQ_LOG_ERR, "pitstop: unknown option plugin_opt_%s",
					     opts[i].key);
			return -1;
		}
		errno = 0;
		v = strtol(opts[i].value, &end, 10);
		if (errno || end == opts[i].value || *end || v < def->min || v > def->max) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
					     "pitstop: plugin_opt_%s %s: want a whole number from "
					     "%ld to %ld",
					     opts[i].key, opts[i].value, def->min, def->max);
			return -1;
		}
		*(long *)((char *)l + def->offset) = v;
	}
	if (l->bytes_burst < 262144) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "pitstop: plugin_opt_vehicle_bytes_burst must "
						   "hold the largest packet (262144)");
		return -1;
	}
	return 0;
}

PLUGIN_API int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	for (int i = 0; i < supported_version_count; i++)
		if (supported_versions[i] == 5)
			return 5;
	return -1;
}

PLUGIN_API int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
				     struct mosquitto_opt *options, int option_count)
{
	struct plugin *pl = mosquitto_calloc(1, sizeof(*pl));
	int rc;

	if (!pl)
		return MOSQ_ERR_NOMEM;
	if (parse_options(&pl->limits, options, option_count) < 0) {
		mosquitto_free(pl);
		return MOSQ_ERR_INVAL;
	}
	pl->id = identifier;
	pl->nslots = TABLE_MIN;
	pl->slots = mosquitto_calloc(pl->nslots, sizeof(*pl->slots));
	pl->swept = now_s();
	pl->deny_logged = pl->swept - DENY_LOG_EVERY_S;
	if (!pl->slots) {
		mosquitto_free(pl);
		return MOSQ_ERR_NOMEM;
	}
	rc = mosquitto_callback_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, pl);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_callback_register(identifier, MOSQ_EVT_TICK, on_tick, NULL, pl);
	if (rc != MOSQ_ERR_SUCCESS) {
		mosquitto_callback_unregister(identifier, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
		mosquitto_free(pl->slots);
		mosquitto_free(pl);
		return rc;
	}
	*userdata = pl;
	mosquitto_log_printf(
		MOSQ_LOG_INFO,
		"pitstop: broker plugin ready: vehicles %ld msg/s (burst %ld), %ld B/s "
		"(burst %ld)",
		pl->limits.msgs_per_s, pl->limits.msgs_burst, pl->limits.bytes_per_s,
		pl->limits.bytes_burst);
	return MOSQ_ERR_SUCCESS;
}

PLUGIN_API int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options,
					int option_count)
{
	struct plugin *pl = userdata;

	if (!pl)
		return MOSQ_ERR_SUCCESS;
	mosquitto_callback_unregister(pl->id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(pl->id, MOSQ_EVT_TICK, on_tick, NULL);
	for (size_t i = 0; i < pl->nslots; i++) {
		struct bucket *b = pl->slots[i], *next;

		for (; b; b = next) {
			next = b->next;
			mosquitto_free(b);
		}
	}
	mosquitto_free(pl->slots);
	mosquitto_free(pl);
	return MOSQ_ERR_SUCCESS;
}
