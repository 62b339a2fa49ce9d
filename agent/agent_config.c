/*
 * The agent's option table and whole-file checks; see agent_config.h. Single
 * options are range-checked by common/config.c; what needs several options
 * or a line number after the fact (the required VIN) is checked here.
 */
#include "agent_config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "certcheck.h"
#include "config.h"
#include "log.h"
#include "obd_elm327.h"
#include "sampler.h"
#include "vin.h"

/* An option whose text value is also checked by check (config_check_fn). */
#define OPT_CHECKED(name, def, help, check)                                                       \
	{                                                                                         \
#name, CONFIG_STRING, offsetof(struct agent_config, name), 0, 0, def, help, check \
	}
#define OPT(name, type, min, max, def, help)                                                \
	{                                                                                   \
#name, type, offsetof(struct agent_config, name), min, max, def, help, NULL \
	}

static int check_vin(const char *value, char *msg, size_t msglen)
{
	if (vin_valid(value))
		return 0;
	snprintf(msg, msglen, "is not a valid VIN (17 characters, 0-9 and A-Z without I, O, Q)");
	return -EINVAL;
}

static int check_nonempty(const char *value, char *msg, size_t msglen)
{
	if (*value)
		return 0;
	snprintf(msg, msglen, "must not be empty");
	return -EINVAL;
}

const struct config_option agent_config_table[] = {
	OPT_CHECKED(vin, NULL, "this car's VIN (required; also the MQTT client id)", check_vin),
	OPT(broker_uri, CONFIG_STRING, 0, 0, "ssl://127.0.0.1:8883", "MQTT broker URI"),
	OPT(allow_plaintext, CONFIG_BOOL, 0, 1, "no",
	    "allow a plaintext tcp:// broker_uri (no TLS, no certificates; tests only)"),
	OPT(ca_file, CONFIG_STRING, 0, 0, NULL, "CA certificate that signed the broker's (PEM)"),
	OPT(cert_file, CONFIG_STRING, 0, 0, NULL, "this car's client certificate (PEM, CN=VIN)"),
	OPT(key_file, CONFIG_STRING, 0, 0, NULL, "private key of cert_file (PEM)"),
	OPT(offer_key_file, CONFIG_STRING, 0, 0, NULL,
	    "the gateway's offer-signing public key (PEM); no offers are shown without it"),
	OPT_CHECKED(state_dir, "/var/lib/pitstop-agent", "directory for queue.db and offers.db",
		    check_nonempty),
	OPT(gpsd_host, CONFIG_STRING, 0, 0, "127.0.0.1", "gpsd host"),
	OPT(gpsd_port, CONFIG_INT, 1, 65535, "2947", "gpsd port"),
	OPT(signals_file, CONFIG_STRING, 0, 0, NULL, "vehicle-signal replay file (CSV)"),
	OPT(signals_loop, CONFIG_BOOL, 0, 1, "false", "replay signals_file again after its end"),
	OPT(obd_device, CONFIG_STRING, 0, 0, NULL,
	    "ELM327-compatible OBD-II adapter (serial device or its symlink) as the signal source"),
	OPT(obd_baud, CONFIG_INT, 9600, 230400, "38400",
	    "obd_device's baud rate: 9600, 19200, 38400, 57600, 115200 or 230400"),
	OPT(obd_timeout_ms, CONFIG_INT, 50, 10000, "1000",
	    "an OBD-II request without an answer this long has failed"),
	OPT(obd_poll_interval_ms, CONFIG_INT, 0, 10000, "200",
	    "pause between OBD-II requests (speed, fuel, odometer in turn)"),
	OPT(can_interface, CONFIG_STRING, 0, 0, NULL,
	    "SocketCAN interface (e.g. can0) for OBD-II as the signal source (ISO 15765-4, "
	    "11-bit)"),
	OPT(sample_interval_ms, CONFIG_INT, 100, 60000, "1000", "time between samples"),
	OPT(batch_max_samples, CONFIG_INT, 1, 3600, "600", "samples per batch at most"),
	OPT(batch_max_age_ms, CONFIG_INT, 100, 86400000, "300000",
	    "seal a batch when its oldest sample is this old"),
	OPT(sample_adaptive, CONFIG_BOOL, 0, 1, "yes",
	    "keep only samples that say something new (the sample_min_* keys); no: every sample"),
	OPT(sample_min_distance_m, CONFIG_INT, 1, 100000, "50",
	    "adaptive: keep a sample after the car moved this far"),
	OPT(sample_min_heading_deg, CONFIG_INT, 1, 180, "15",
	    "adaptive: keep a sample after the car turned this much while moving"),
	OPT(sample_min_fuel_pct, CONFIG_DOUBLE, 0.1, 100, "0.5",
	    "adaptive: keep a sample after the fuel level changed this much"),
	OPT(sample_max_interval_s, CONFIG_INT, 1, 86400, "30",
	    "adaptive: keep a sample at least this often while not parked"),
	OPT(parked_after_s, CONFIG_INT, 1, 86400, "60",
	    "adaptive: standing still (no speed, no movement) this long is parked: the open "
	    "batch is sent (the agent has no ignition signal)"),
	OPT(parked_heartbeat_s, CONFIG_INT, 1, 86400, "600",
	    "adaptive: keep a sample this often while parked"),
	OPT(display_file, CONFIG_STRING, 0, 0, NULL,
	    "offer card file (default <state_dir>/screen.txt)"),
	OPT(display_max_speed_kmh, CONFIG_INT, 0, 300, "5",
	    "offers are shown only at or below this speed"),
	OPT(hmi_socket, CONFIG_STRING, 0, 0, NULL,
	    "unix socket for the head unit's screen (docs/hmi.md; default <state_dir>/hmi.sock)"),
	OPT(hmi_max_clients, CONFIG_INT, 1, 16, "4", "HMI socket connections at most"),
	OPT(offer_max_validity_s, CONFIG_INT, 60, 31536000, "2592000",
	    "offers valid for longer than this (valid_until - valid_from) are refused"),
	OPT(receipt_timeout_ms, CONFIG_INT, 1000, 3600000, "60000",
	    "publish a batch again when the gateway has not confirmed it this long after the "
	    "broker took it"),
	OPT(mqtt_keepalive_s, CONFIG_INT, 2, 1200, "240",
	    "MQTT keep-alive: a ping after this long without traffic; the broker declares the car "
	    "gone (its last will) after 1.5 times this"),
	OPT(session_expiry_s, CONFIG_INT, 60, 31536000, "604800",
	    "the broker keeps this car's session (and the offers sent to it) this long after it "
	    "went offline; 7 days covers a long weekend parked"),
	OPT(queue_max_batches, CONFIG_INT, 1, 10000000, "100000",
	    "batches kept at most; when full the oldest is dropped"),
	OPT(queue_max_bytes, CONFIG_INT, 0, 1073741824, "16777216",
	    "bytes of stored batches at most (0 = no cap); when full the oldest unsent batches are "
	    "thinned (queue_thin_every), then the oldest dropped"),
	OPT(queue_thin_every, CONFIG_INT, 2, 100, "2",
	    "thinning keeps every Nth sample of a batch"),
	OPT(max_loss_s, CONFIG_INT, 0, 60, "5",
	    "samples wait in memory at most this long before they are written to flash (a power "
	    "cut loses at most these); 0 = every sample at once"),
	OPT(backlog_max_batches_per_s, CONFIG_INT, 0, 10000, "10",
	    "after a reconnect, batches stored while offline are sent at most this many a second "
	    "(oldest first; new ones go at once); 0 = no cap"),
	OPT_CHECKED(log_level, "info", "error, warn, info or debug", log_level_check),
	OPT(log_file, CONFIG_STRING, 0, 0, NULL, "log to this file instead of stderr"),
	CONFIG_END
};

/* Writes "path:line: msg" (or "path: msg" when line is 0) into err. */
static void where_error(char *err, size_t errlen, const char *path, unsigned line, const char *msg)
{
	if (line)
		snprintf(err, errlen, "%s:%u: %s", path, line, msg);
	else
		snprintf(err, errlen, "%s: %s", path, msg);
}

/* Sets an unset or empty *value to <state_dir>/name; returns 0 or -ENOMEM. */
static int default_in_state_dir(char **value, const char *state_dir, const char *name)
{
	size_t n = strlen(state_dir) + strlen(name) + 2;
	char *p;

	if (*value && **value)
		return 0;
	p = malloc(n);
	if (!p)
		return -ENOMEM;
	snprintf(p, n, "%s/%s", state_dir, name);
	free(*value);
	*value = p;
	return 0;
}

int agent_config_load(const char *path, struct agent_config *ret_conf, char *err, size_t errlen)
{
	unsigned lines[sizeof(agent_config_table) / sizeof(agent_config_table[0])];
	struct agent_config c;
	char msg[512];
	int r;

	memset(&c, 0, sizeof(c));
	r = config_load_lines(path, agent_config_table, &c, lines, err, errlen);
	if (r < 0)
		return r;
	r = -EINVAL;
	if (!c.vin || !*c.vin) {
		where_error(err, errlen, path, 0, "vin: required option is missing");
		goto fail;
	}
	if (bus_uri_check(c.broker_uri, c.allow_plaintext, msg, sizeof(msg)) < 0) {
		char full[600];

		snprintf(full, sizeof(full), "broker_uri: %s", msg);
		where_error(err, errlen, path, config_line(agent_config_table, lines, "broker_uri"),
			    full);
		goto fail;
	}
	if (!!c.signals_file + !!c.obd_device + !!c.can_interface > 1) {
		const char *second = c.can_interface ? "can_interface" : "obd_device";

		where_error(err, errlen, path, config_line(agent_config_table, lines, second),
			    "signals_file, obd_device and can_interface each choose the signal "
			    "source: set only one");
		goto fail;
	}
	if (!elm327_baud_valid(c.obd_baud)) {
		char full[128];

		snprintf(full, sizeof(full),
			 "obd_baud: %d is not 9600, 19200, 38400, 57600, 115200 or 230400",
			 c.obd_baud);
		where_error(err, errlen, path, config_line(agent_config_table, lines, "obd_baud"),
			    full);
		goto fail;
	}
	if (default_in_state_dir(&c.display_file, c.state_dir, "screen.txt") < 0 ||
	    default_in_state_dir(&c.hmi_socket, c.state_dir, "hmi.sock") < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		r = -ENOMEM;
		goto fail;
	}
	*ret_conf = c;
	return 0;
fail:
	config_free(agent_config_table, &c);
	return r;
}

int agent_config_check_files(const struct agent_config *conf, const char *path, char *err,
			     size_t errlen)
{
	char msg[900];
	int r;

	if (bus_uri_tls(conf->broker_uri) != 1)
		return 0; /* plaintext, allowed at load */
	r = certcheck_files(conf->ca_file, conf->cert_file, conf->key_file, CERTCHECK_VEHICLE,
			    conf->vin, msg, sizeof(msg));
	if (r < 0)
		snprintf(err, errlen, "%s: %s", path, msg);
	return r;
}

void agent_sampler_config(const struct agent_config *conf, struct sampler_config *ret)
{
	ret->adaptive = conf->sample_adaptive;
	ret->min_distance_m = conf->sample_min_distance_m;
	ret->min_heading_deg = conf->sample_min_heading_deg;
	ret->min_fuel_pct = conf->sample_min_fuel_pct;
	ret->max_interval_s = conf->sample_max_interval_s;
	ret->parked_after_s = conf->parked_after_s;
	ret->parked_heartbeat_s = conf->parked_heartbeat_s;
}

void agent_config_free(struct agent_config *conf)
{
	if (!conf)
		return;
	config_free(agent_config_table, conf);
}
