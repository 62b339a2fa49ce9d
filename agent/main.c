/*
 * pitstop-agent: the in-car daemon. Parses the command line, loads the
 * config (errors as "file:line: what is wrong", exit 2), sets up logging,
 * the loop and SIGINT/SIGTERM, runs the agent (agent.c) until a signal, then
 * shuts down cleanly (exit 0): the open batch is sealed into the queue and
 * the broker disconnected within 2 s, reachable or not (bench/stop_time.py).
 * SIGHUP re-reads the config file; systemd gets READY=1, STATUS= and, with
 * WatchdogSec=, WATCHDOG=1 from the loop. See docs/agent.md and
 * docs/operations.md.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "agent_config.h"
#include "config.h"
#include "log.h"
#include "loop.h"
#include "reload.h"
#include "sdnotify.h"

/*
 * How long the clean MQTT disconnect at a stop may wait for in-flight
 * messages. Paho 1.3 re-checks a disconnect that waits for acknowledgements
 * only every 3 s, so anything in flight at the stop (the agent's Status
 * OFFLINE, a receipt) costs this plus the second bus_stop() keeps polling,
 * whether or not the acknowledgement came: 500 ms keeps the whole stop
 * under the 2 s the unit promises (bench/stop_time.py).
 */
#define SHUTDOWN_TIMEOUT_MS 500
/* The STATUS= line is refreshed this often (sent only when it changed). */
#define STATUS_PERIOD_MS 5000

/* Prints the command line and every config option with its default. */
static void usage(FILE *f)
{
	fprintf(f, "usage: pitstop-agent --config FILE | --version | --help\n\n"
		   "options of FILE (name = value):\n");
	for (const struct config_option *o = agent_config_table; o->name; o++)
		fprintf(f, "  %-22s %s%s%s%s\n", o->name, o->help, o->def ? " (default " : "",
			o->def ? o->def : "", o->def ? ")" : "");
}

/* SIGINT/SIGTERM, on the loop thread: stop the loop; main shuts down. */
static void on_signal(int signo, void *arg)
{
	struct loop *loop = arg;

	log_info("%s received: stopping", strsignal(signo));
	sdnotify_send("STOPPING=1\nSTATUS=stopping: sealing the open batch, disconnecting");
	loop_stop(loop);
}

/*
 * --- Service lifecycle -------------------------------------------------
 * systemd status and watchdog (common/sdnotify.c) and SIGHUP reloads, on
 * the loop thread.
 */
struct service {
	struct loop *loop;		    /* borrowed */
	struct agent *agent;		    /* borrowed; NULL until it runs */
	struct agent_config *conf;	    /* borrowed: the agent's, changed in place */
	const char *path;		    /* the config file (argv) */
	struct sdnotify_watchdog *watchdog; /* owned; NULL without WatchdogSec= */
	int status_timer;		    /* loop timer id, 0 = none */
};

/*
 * Options SIGHUP applies while running; every other one is read at start
 * only and a changed value is logged as needing a restart (identity, broker
 * and certificates, state_dir and its files, gpsd, the signal source, the
 * queue bound, the receipt timeout, the log file).
 */
static const char *const reloadable_options[] = {
	"log_level",
	"sample_interval_ms",
	"batch_max_samples",
	"batch_max_age_ms",
	"display_max_speed_kmh",
	"offer_max_validity_s",
	NULL,
};

/* Timer: tells systemd what the agent is doing (sent only when it changed). */
static void status_fired(void *arg)
{
	struct service *sv = arg;
	struct agent_activity act;
	char text[SDNOTIFY_STATUS_MAX];
	int r;

	sv->status_timer = 0;
	agent_activity(sv->agent, &act);
	snprintf(text, sizeof(text), "sampling; %d batch%s queued; %s", act.queued,
		 act.queued == 1 ? "" : "es",
		 act.connected ? "connected" : "offline: telemetry waits in the queue");
	sdnotify_status(text);
	r = loop_add_timer(sv->loop, STATUS_PERIOD_MS, status_fired, sv);
	sv->status_timer = r > 0 ? r : 0;
}

/*
 * SIGHUP: re-reads the config file. An invalid file changes nothing (logged
 * at error with its file:line); otherwise the reloadable options apply from
 * the next sample or offer, and each changed restart-only one is logged.
 */
static void on_sighup(int signo, void *arg)
{
	struct service *sv = arg;
	struct agent_config fresh;
	char err[1024];
	int restart, applied;

	(void)signo;
	log_info("SIGHUP received: reloading %s", sv->path);
	if (agent_config_load(sv->path, &fresh, err, sizeof(err)) < 0) {
		log_error("reload failed: %s; the running configuration stays", err);
		return;
	}
	restart = reload_apply(agent_config_table, sv->conf, &fresh, reloadable_options, &applied);
	log_init("pitstop-agent", (enum log_level)log_level_parse(sv->conf->log_level));
	if (sv->agent)
		agent_reconfigured(sv->agent);
	log_info("reloaded %s: %d change%s applied, %d more take%s effect only after a restart",
		 sv->path, applied, applied == 1 ? "" : "s", restart, restart == 1 ? "s" : "");
	agent_config_free(&fresh);
}

/* Once the agent runs: READY=1, the status timer and the watchdog. */
static void service_start(struct service *sv, struct agent *agent)
{
	uint64_t period = 0;
	int r;

	sv->agent = agent;
	sdnotify_send("READY=1");
	status_fired(sv);
	r = sdnotify_watchdog_start(sv->loop, &sv->watchdog, &period);
	if (r < 0) /* systemd never sets a bad value; run without pings */
		log_warn("no systemd watchdog: WATCHDOG_USEC or WATCHDOG_PID: %s", strerror(-r));
	else if (r > 0)
		log_info("systemd watchdog: WATCHDOG=1 every %llu ms", (unsigned long long)period);
}

/* Undoes service_start(). */
static void service_stop(struct service *sv)
{
	sdnotify_watchdog_free(sv->watchdog);
	sv->watchdog = NULL;
	if (sv->status_timer)
		loop_cancel_timer(sv->loop, sv->status_timer);
	sv->status_timer = 0;
}
/* --- end of service lifecycle ------------------------------------------ */

int main(int argc, char **argv)
{
	struct agent_config conf;
	struct loop *loop = NULL;
	struct agent *agent = NULL;
	struct service sv;
	const char *path = NULL;
	char err[1024];
	int r, rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			path = argv[i] + 9;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("pitstop-agent %s\n", PITSTOP_VERSION);
			return 0;
		} else {
			fprintf(stderr, "pitstop-agent: %s: %s; try pitstop-agent --help\n",
				argv[i],
				strcmp(argv[i], "--config") == 0 ? "needs a FILE"
								 : "unknown argument");
			return 2;
		}
	}
	if (!path) {
		fprintf(stderr,
			"pitstop-agent: --config FILE is required; try pitstop-agent --help\n");
		return 2;
	}
	memset(&conf, 0, sizeof(conf));
	if (agent_config_load(path, &conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	log_init("pitstop-agent", (enum log_level)log_level_parse(conf.log_level));
	if (conf.log_file) {
		r = log_open_file(conf.log_file);
		if (r < 0) {
			fprintf(stderr, "%s: log_file %s: %s\n", path, conf.log_file, strerror(-r));
			rc = 2;
			goto out;
		}
	}
	/* Before connecting: Paho would only say "TCP/TLS connect failure". */
	if (agent_config_check_files(&conf, path, err, sizeof(err)) < 0) {
		log_error("%s", err);
		rc = 2;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	r = loop_new(&loop);
	if (r < 0) {
		fprintf(stderr, "pitstop-agent: %s\n", strerror(-r));
		goto out;
	}
	memset(&sv, 0, sizeof(sv));
	sv.loop = loop;
	sv.conf = &conf;
	sv.path = path;
	if ((r = loop_watch_signal(loop, SIGINT, on_signal, loop)) < 0 ||
	    (r = loop_watch_signal(loop, SIGTERM, on_signal, loop)) < 0 ||
	    (r = loop_watch_signal(loop, SIGHUP, on_sighup, &sv)) < 0) {
		fprintf(stderr, "pitstop-agent: cannot watch signals: %s\n", strerror(-r));
		goto out;
	}
	r = agent_new(loop, &conf, err, sizeof(err), &agent);
	if (r < 0) {
		fprintf(stderr, "%s\n", err);
		if (conf.log_file)
			log_error("cannot start: %s", err);
		rc = r == -EINVAL ? 2 : 1;
		goto out;
	}
	log_info("ready");
	service_start(&sv, agent);
	r = loop_run(loop);
	if (r < 0)
		log_error("event loop failed: %s", strerror(-r));
	service_stop(&sv);
	agent_shutdown(agent, SHUTDOWN_TIMEOUT_MS);
	log_info("stopped");
	rc = r < 0 ? 1 : 0;
out:
	agent_free(agent);
	loop_free(loop);
	agent_config_free(&conf);
	return rc;
}
