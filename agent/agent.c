/*
 * Wiring of the agent's modules and the sampling cycle; see agent.h and
 * docs/agent.md. Everything runs on the loop thread.
 */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent_config.h"
#include "codec.h"
#include "crypto.h"
#include "display.h"
#include "gnss.h"
#include "hmi.h"
#include "log.h"
#include "loop.h"
#include "offers.h"
#include "queue.h"
#include "sampler.h"
#include "signals.h"
#include "uplink.h"

#ifndef PITSTOP_AGENT_VERSION
#define PITSTOP_AGENT_VERSION "0.0.0"
#endif

struct agent {
	struct loop *loop;		  /* borrowed */
	const struct agent_config *conf;  /* borrowed */
	struct queue *queue;		  /* owned */
	struct crypto_verifier *verifier; /* owned, NULL without offer_key_file */
	struct display *card;		  /* owned: the card file */
	struct hmi *hmi;		  /* owned: the head unit's socket */
	struct display *display;	  /* owned: card + hmi */
	struct offers *offers;		  /* owned */
	struct gnss *gnss;		  /* owned */
	struct signals *signals;	  /* owned, NULL without a signal source */
	struct uplink *uplink;		  /* owned */
	int sample_timer;		  /* timer id, 0 = none */
	uint64_t next_sample_ms;	  /* monotonic due time of the next sample */
	unsigned open_samples;		  /* samples stored but not sealed */
	uint64_t first_open_ms;		  /* monotonic time of the oldest open sample */
	uint64_t samples_lost;		  /* samples that could not be stored */
	uint64_t samples_skipped;	  /* taken but not kept (adaptive sampling) */
	struct sampler sampler;		  /* adaptive sampling and parked state */
};

/* Joins dir and name into a malloc'ed path, or NULL. */
static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* The speed that gates offers: vehicle speed, else GNSS; NaN if unknown. */
static double current_speed_kmh(const struct vehicle_signals *vs, const struct gnss_fix *fix,
				int fix_fresh)
{
	if (vs->present & SIGNAL_SPEED)
		return vs->speed_kmh;
	if (fix_fresh && fix->has_speed)
		return fix->speed_ms * 3.6;
	return NAN;
}

/* current_speed_kmh() with the sources read now; also hands offers the position. */
static double speed_now(struct agent *a)
{
	uint64_t now = loop_now_ms();
	struct vehicle_signals vs;
	struct gnss_fix fix;
	int fresh;

	signals_read(a->signals, now, &vs);
	fresh = gnss_get(a->gnss, now, &fix) == 0;
	offers_set_position(a->offers, fresh, fix.lat_deg, fix.lon_deg);
	return current_speed_kmh(&vs, &fix, fresh);
}

/* Hands the queue its limits from the config (in range: the config table checks). */
static void apply_queue_limits(struct agent *a)
{
	struct queue_limits lim = {
		.max_loss_ms = (unsigned)a->conf->max_loss_s * 1000,
		.max_bytes = (size_t)a->conf->queue_max_bytes,
		.thin_every = (unsigned)a->conf->queue_thin_every,
	};

	queue_set_limits(a->queue, &lim);
}

/* Seals open samples into batches (all of them when all is set). */
static void seal(struct agent *a, int all)
{
	do {
		uint64_t seq;
		int n = queue_seal(a->queue, (size_t)a->conf->batch_max_samples, &seq);

		if (n == -ENODATA) {
			a->open_samples = 0;
			return;
		}
		if (n < 0)
			return; /* logged by the queue; retried at the next sample */
		log_debug("batch %" PRIu64 " sealed with %d samples", seq, n);
		a->open_samples =
			(unsigned)n >= a->open_samples ? 0 : a->open_samples - (unsigned)n;
		a->first_open_ms = loop_now_ms();
	} while (all || a->open_samples >= (unsigned)a->conf->batch_max_samples);
}

/* Timer: takes one sample, seals when due, ticks offers, kicks the uplink. */
static void sample_tick(void *arg)
{
	struct agent *a = arg;
	uint64_t now = loop_now_ms();
	struct vehicle_signals vs;
	struct gnss_fix fix;
	struct sampler_config sc;
	struct sample s;
	unsigned verdict;
	int fresh, r, id;

	a->sample_timer = 0;
	signals_read(a->signals, now, &vs);
	fresh = gnss_get(a->gnss, now, &fix) == 0;
	sampler_build(&vs, &fix, fresh, loop_wall_ms(), &s);
	agent_sampler_config(a->conf, &sc);
	verdict = sampler_feed(&a->sampler, &sc, &s, now);
	if (!(verdict & SAMPLER_KEEP)) {
		a->samples_skipped++;
	} else if ((r = queue_add_sample(a->queue, &s)) < 0) {
		a->samples_lost++;
		log_debug("sample not stored (%" PRIu64 " lost since start): %s", a->samples_lost,
			  strerror(-r));
	} else {
		if (a->open_samples++ == 0)
			a->first_open_ms = now;
	}
	if (verdict & SAMPLER_PARKED) {
		/* Parked stands in for ignition off: send what we have now. */
		log_debug("parked: sealing %u open samples", a->open_samples);
		if (a->open_samples)
			seal(a, 1);
	} else if (sampler_batch_due(a->open_samples, a->first_open_ms, now,
				     a->conf->batch_max_samples, a->conf->batch_max_age_ms)) {
		seal(a, 0);
	}
	queue_flush_due(a->queue); /* after the seal, which may have written them */
	offers_set_position(a->offers, fresh, fix.lat_deg, fix.lon_deg);
	offers_tick(a->offers, loop_wall_ms(), current_speed_kmh(&vs, &fix, fresh));
	uplink_kick(a->uplink);

	/* Keep the cadence; after a long stall, skip missed samples. */
	a->next_sample_ms += (uint64_t)a->conf->sample_interval_ms;
	now = loop_now_ms();
	if (a->next_sample_ms <= now)
		a->next_sample_ms = now + (uint64_t)a->conf->sample_interval_ms;
	id = loop_add_timer(a->loop, a->next_sample_ms - now, sample_tick, a);
	if (id > 0)
		a->sample_timer = id;
	else
		log_error("cannot schedule the next sample: %s", strerror(-id));
}

/* A message on our offers topic. */
static void on_offer(const uint8_t *payload, size_t len, void *arg)
{
	struct agent *a = arg;

	offers_handle(a->offers, payload, len, loop_wall_ms(), speed_now(a));
}

/* The driver's choice from the HMI. */
static int on_hmi_decision(const char *id, enum offer_action action, void *arg)
{
	struct agent *a = arg;

	return offers_decide(a->offers, id, action, loop_wall_ms());
}

/* An offer event to publish. */
static void on_offer_event(const struct offer_event *ev, void *arg)
{
	struct agent *a = arg;

	if (a->uplink)
		uplink_send_event(a->uplink, ev);
}

int agent_new(struct loop *loop, const struct agent_config *conf, char *err, size_t errlen,
	      struct agent **ret_a)
{
	struct uplink_config uc;
	struct offers_config oc;
	struct agent *a;
	char *path = NULL;
	struct stat st;
	int r;

	a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->loop = loop;
	a->conf = conf;
	sampler_init(&a->sampler);
	/* Input files first: a bad one stops us before anything is touched. */
	r = signals_open(loop, conf, err, errlen, &a->signals);
	if (r < 0)
		goto fail;
	if (conf->offer_key_file) {
		r = crypto_verifier_load(conf->offer_key_file, &a->verifier);
		if (r < 0) {
			snprintf(err, errlen, "%s: cannot load the offer-signing public key: %s",
				 conf->offer_key_file, strerror(-r));
			r = -EINVAL;
			goto fail;
		}
	} else {
		log_warn("offer_key_file is not set: every offer will be rejected");
	}
	if (mkdir(conf->state_dir, 0700) < 0 && errno != EEXIST) {
		r = -errno;
		snprintf(err, errlen, "cannot create state_dir %s: %s", conf->state_dir,
			 strerror(errno));
		goto fail;
	}
	/* Not changed: it may be a directory the agent does not own alone. */
	if (stat(conf->state_dir, &st) == 0 && (st.st_mode & 077))
		log_warn("state_dir %s is mode %04o: others can list it (its files are 0600)",
			 conf->state_dir, (unsigned)(st.st_mode & 07777));

	path = path_join(conf->state_dir, "queue.db");
	if (!path) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	r = queue_open(path, (unsigned)conf->queue_max_batches, &a->queue);
	if (r < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(-r));
		r = r == -EINVAL ? -EIO : r;
		goto fail;
	}
	apply_queue_limits(a);
	free(path);
	path = NULL;
	r = queue_open_samples(a->queue);
	if (r > 0) {
		log_info("sealing %d samples left open by the last run", r);
		a->open_samples = (unsigned)r;
		seal(a, 1);
	}

	r = display_file_new(conf->display_file, &a->card);
	if (r < 0) {
		snprintf(err, errlen, "display: %s", strerror(-r));
		goto fail;
	}
	r = hmi_new(loop, conf->hmi_socket, conf->hmi_max_clients, on_hmi_decision, a, &a->hmi);
	if (r < 0) {
		snprintf(err, errlen, "hmi_socket %s: %s", conf->hmi_socket, strerror(-r));
		goto fail;
	}
	r = display_tee_new(a->card, hmi_display(a->hmi), &a->display);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	path = path_join(conf->state_dir, "offers.db");
	if (!path) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	memset(&oc, 0, sizeof(oc));
	oc.db_path = path;
	oc.vin = conf->vin;
	oc.verifier = a->verifier;
	oc.max_speed_kmh = conf->display_max_speed_kmh;
	oc.max_validity_ms = (int64_t)conf->offer_max_validity_s * 1000;
	r = offers_new(&oc, a->display, on_offer_event, a, loop_wall_ms(), &a->offers);
	if (r < 0) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(-r));
		r = r == -EINVAL ? -EIO : r;
		goto fail;
	}
	free(path);
	path = NULL;

	r = gnss_new(loop, conf->gpsd_host, conf->gpsd_port, &a->gnss);
	if (r < 0) {
		snprintf(err, errlen, "gnss: %s", strerror(-r));
		goto fail;
	}

	memset(&uc, 0, sizeof(uc));
	uc.vin = conf->vin;
	uc.broker_uri = conf->broker_uri;
	uc.ca_file = conf->ca_file;
	uc.cert_file = conf->cert_file;
	uc.key_file = conf->key_file;
	uc.agent_version = PITSTOP_AGENT_VERSION;
	uc.receipt_timeout_ms = conf->receipt_timeout_ms;
	uc.session_expiry_s = (unsigned)conf->session_expiry_s;
	uc.backlog_max_batches_per_s = (unsigned)conf->backlog_max_batches_per_s;
	uc.keepalive_s = conf->mqtt_keepalive_s;
	r = uplink_new(loop, &uc, a->queue, on_offer, a, &a->uplink);
	if (r < 0) {
		snprintf(err, errlen, "cannot set up MQTT to %s: %s", conf->broker_uri,
			 strerror(-r));
		r = r == -EINVAL ? -EIO : r;
		goto fail;
	}
	/* Choices whose events may have gone with the last run (held offline). */
	offers_resend_decisions(a->offers, loop_wall_ms(), UPLINK_MAX_EVENTS / 2);
	r = uplink_start(a->uplink);
	if (r < 0) {
		snprintf(err, errlen, "cannot start MQTT: %s", strerror(-r));
		goto fail;
	}
	a->next_sample_ms = loop_now_ms() + (uint64_t)conf->sample_interval_ms;
	r = loop_add_timer(loop, (uint64_t)conf->sample_interval_ms, sample_tick, a);
	if (r < 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	a->sample_timer = r;
	*ret_a = a;
	return 0;
fail:
	free(path);
	agent_free(a);
	return r;
}

void agent_shutdown(struct agent *a, int timeout_ms)
{
	loop_cancel_timer(a->loop, a->sample_timer);
	a->sample_timer = 0;
	if (a->open_samples) {
		unsigned n = a->open_samples;

		seal(a, 1);
		if (a->open_samples)
			log_warn("%u samples stay open until the next start", a->open_samples);
		else
			log_info("sealed the last %u samples", n);
	}
	uplink_shutdown(a->uplink, timeout_ms);
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	loop_cancel_timer(a->loop, a->sample_timer);
	uplink_free(a->uplink);
	signals_free(a->signals);
	gnss_free(a->gnss);
	offers_free(a->offers);
	display_free(a->display);
	hmi_free(a->hmi);
	display_free(a->card);
	crypto_verifier_free(a->verifier);
	queue_close(a->queue);
	free(a);
}

uint64_t agent_samples_lost(const struct agent *a)
{
	return a->samples_lost;
}

void agent_activity(const struct agent *a, struct agent_activity *ret)
{
	ret->queued = queue_count(a->queue);
	ret->open_samples = a->open_samples;
	ret->connected = uplink_connected(a->uplink);
	ret->samples_lost = a->samples_lost;
	ret->samples_skipped = a->samples_skipped;
}

void agent_reconfigured(struct agent *a)
{
	offers_set_limits(a->offers, a->conf->display_max_speed_kmh,
			  (int64_t)a->conf->offer_max_validity_s * 1000);
	apply_queue_limits(a);
}
