/*
 * pitstop-agent: the in-car daemon. Parses the command line, loads the
 * config (errors as "file:line: what is wrong", exit 2), sets up logging,
 * the loop and SIGINT/SIGTERM, runs the agent (agent.c) until a signal, then
 * shuts down cleanly (exit 0). See docs/agent.md.
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
#include "sdnotify.h"

#define SHUTDOWN_TIMEOUT_MS 2000

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
	loop_stop(loop);
}

int main(int argc, char **argv)
{
	struct agent_config conf;
	struct loop *loop = NULL;
	struct agent *agent = NULL;
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
	if ((r = loop_watch_signal(loop, SIGINT, on_signal, loop)) < 0 ||
	    (r = loop_watch_signal(loop, SIGTERM, on_signal, loop)) < 0) {
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
	sdnotify_send("READY=1\nSTATUS=sampling; telemetry is queued and sent when the broker is "
		      "reachable");
	r = loop_run(loop);
	if (r < 0)
		log_error("event loop failed: %s", strerror(-r));
	agent_shutdown(agent, SHUTDOWN_TIMEOUT_MS);
	log_info("stopped");
	rc = r < 0 ? 1 : 0;
out:
	agent_free(agent);
	loop_free(loop);
	agent_config_free(&conf);
	return rc;
}
