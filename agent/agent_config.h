/*
 * The agent's configuration: the option table (names, types, ranges,
 * defaults) for common/config.c, the struct it fills in, and the checks that
 * span several options (a valid VIN, the display file and the HMI socket
 * under state_dir by default). docs/agent.md lists every option.
 */
#ifndef PITSTOP_AGENT_CONFIG_H
#define PITSTOP_AGENT_CONFIG_H

#include <stddef.h>

#include "config.h"

struct agent_config {
	char *vin;	      /* owned; required, a valid VIN */
	char *broker_uri;     /* owned; MQTT broker, ssl://host:port */
	int allow_plaintext;  /* bool: a tcp:// broker_uri is allowed */
	char *ca_file;	      /* owned; trust anchor for the broker */
	char *cert_file;      /* owned; this car's client certificate */
	char *key_file;	      /* owned; its private key */
	char *offer_key_file; /* owned; gateway's offer-signing public key */
	char *state_dir;      /* owned; holds queue.db and offers.db */
	char *gpsd_host;      /* owned */
	int gpsd_port;
	char *signals_file;	  /* owned; replay CSV, NULL = no vehicle signals */
	int signals_loop;	  /* bool: replay the file again after its end */
	char *obd_device;	  /* owned; ELM327 serial device, NULL = none */
	int obd_baud;		  /* its baud rate */
	int obd_timeout_ms;	  /* an OBD-II request without an answer this long failed */
	int obd_poll_interval_ms; /* pause between OBD-II requests */
	char *can_interface;	  /* owned; SocketCAN interface for OBD-II, NULL = none */
	int sample_interval_ms;
	int batch_max_samples;
	int batch_max_age_ms;
	int sample_adaptive;	       /* bool: keep only samples that say something new */
	int sample_min_distance_m;     /* adaptive: keep after moving this far */
	int sample_min_heading_deg;    /* adaptive: keep after turning this much */
	double sample_min_fuel_pct;    /* adaptive: keep after the fuel changed this much */
	int sample_max_interval_s;     /* adaptive: keep at least this often */
	int parked_after_s;	       /* adaptive: standing this long counts as ignition off */
	int mqtt_keepalive_s;	       /* MQTT keep-alive (pings only when idle this long) */
	int parked_heartbeat_s;	       /* adaptive: keep this often while parked */
	char *display_file;	       /* owned; default <state_dir>/screen.txt */
	int display_max_speed_kmh;     /* offers wait while driving faster */
	char *hmi_socket;	       /* owned; default <state_dir>/hmi.sock */
	int hmi_max_clients;	       /* HMI socket connections at most */
	int offer_max_validity_s;      /* longer offer validity windows are refused */
	int queue_max_batches;	       /* bound on stored batches; oldest dropped */
	int queue_max_bytes;	       /* bound on their bytes; thin, then drop; 0 = none */
	int queue_thin_every;	       /* thinning keeps every Nth sample */
	int max_loss_s;		       /* samples in memory at most this long; 0 = none */
	int backlog_max_batches_per_s; /* backlog drain rate after a connect; 0 = no cap */
	int receipt_timeout_ms;	       /* sent batch without gateway receipt: resend */
	int session_expiry_s;	       /* broker keeps our session (offers) this long */
	char *log_level;	       /* owned; error, warn, info or debug */
	char *log_file;		       /* owned; NULL = stderr */
};

/* The option table, terminated by CONFIG_END (for --help and tests). */
extern const struct config_option agent_config_table[];

/*
 * Loads path into *ret_conf (zeroed first) and checks it as a whole. Returns
 * 0, or a negative errno with one "file:line: what is wrong" (or "file: ...")
 * message in err; on failure *ret_conf holds nothing to free.
 */
int agent_config_load(const char *path, struct agent_config *ret_conf, char *err, size_t errlen);

/*
 * The start-up check of the TLS files (common/certcheck.h: readable, key
 * matches, chain, dates, CN = vin); nothing to check for a plaintext
 * broker_uri. Returns 0, or a negative errno with "path: what is wrong" in
 * err (path: the config file, for the message).
 */
int agent_config_check_files(const struct agent_config *conf, const char *path, char *err,
			     size_t errlen);

/* The adaptive sampling settings of conf (agent/sampler.h). */
struct sampler_config;
void agent_sampler_config(const struct agent_config *conf, struct sampler_config *ret);

/* Frees the strings conf owns (not conf). Accepts NULL. */
void agent_config_free(struct agent_config *conf);

#endif
