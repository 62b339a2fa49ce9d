/*
 * pitstop-screen: the reference in-car display (docs/hmi.md). A separate
 * program so the agent stays small: it connects to the agent's HMI socket
 * (agent/hmi.h's line protocol) and serves one page on 127.0.0.1 for the
 * head unit's browser: the page itself (www/), a server-sent-event stream
 * of what may be shown (GET /events) and the driver's choice (POST
 * /api/accept?id=ID, /api/dismiss?id=ID), which becomes an ACCEPT/DISMISS
 * line to the agent. What may be shown is decided by the agent (speed,
 * expiry, area); this program only relays it, and shows nothing while the
 * agent is not connected.
 *
 * Threads: libmicrohttpd runs a thread per connection (an event stream
 * waits on a condition variable); one thread reads the agent's socket.
 * Everything they share is under one mutex.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef PITSTOP_SCREEN_WWW
#define PITSTOP_SCREEN_WWW "/usr/share/pitstop-agent/screen"
#endif

#define LINE_MAX_BYTES 16384	    /* an agent line at most (an OFFER is < 8 KiB) */
#define EVENT_MAX_BYTES 18432	    /* one SSE event at most */
#define KEEPALIVE_S 15		    /* an SSE comment this often when idle */
#define REPLY_TIMEOUT_S 3	    /* wait this long for the agent's OK/ERR */
#define MAX_CONNECTIONS 16	    /* HTTP connections at most */
#define MAX_FILE_BYTES (256 * 1024) /* a page file at most */

struct page_file {
	const char *url;  /* "/", "/screen.css", ... */
	const char *name; /* file under the www directory */
	const char *type; /* Content-Type */
	char *data;	  /* owned */
	size_t len;
};

static struct page_file files[] = {
	{ "/", "index.html", "text/html; charset=utf-8", NULL, 0 },
	{ "/screen.css", "screen.css", "text/css; charset=utf-8", NULL, 0 },
	{ "/screen.js", "screen.js", "text/javascript; charset=utf-8", NULL, 0 },
};

/* Shared state, under lock. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static unsigned long version = 1; /* bumped on every change of the fields below */
static char *offer_json;	  /* owned: the OFFER line's JSON, NULL = nothing */
static int agent_connected;
static int agent_fd = -1;
static char reply[512];		/* the agent's last OK/ERR line */
static unsigned long reply_seq; /* bumped with reply */
static int stopping;
static const char *socket_path;
static const char *theme = "auto";
static pthread_mutex_t command_lock = PTHREAD_MUTEX_INITIALIZER; /* one command at a time */

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "pitstop-screen: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Handles one line from the agent (lock held). */
static void agent_line(char *line)
{
	if (strncmp(line, "OFFER ", 6) == 0) {
		char *copy = strdup(line + 6);

		if (copy) {
			free(offer_json);
			offer_json = copy;
			version++;
		}
	} else if (strncmp(line, "CLEAR", 5) == 0) {
		free(offer_json);
		offer_json = NULL;
		version++;
	} else if (strncmp(line, "OK ", 3) == 0 || strncmp(line, "ERR ", 4) == 0) {
		/* Bounded (as snprintf cut it before): -O2's format-truncation check. */
		snprintf(reply, sizeof(reply), "%.*s", (int)sizeof(reply) - 1, line);
		reply_seq++;
	}
	pthread_cond_broadcast(&changed);
}

/* Connects to the agent's socket; returns the fd or -1. */
static int agent_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The agent reader: connects (again every second) and follows its lines. */
static void *agent_thread(void *arg)
{
	static char buf[LINE_MAX_BYTES];
	int warned = 0;

	(void)arg;
	for (;;) {
		size_t len = 0;
		int fd;

		pthread_mutex_lock(&lock);
		if (stopping) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		pthread_mutex_unlock(&lock);
		fd = agent_connect();
		if (fd < 0) {
			if (!warned++)
				say("cannot connect to %s: %s (retrying every second)", socket_path,
				    strerror(errno));
			sleep(1);
			continue;
		}
		say("connected to the agent at %s", socket_path);
		warned = 0;
		pthread_mutex_lock(&lock);
		agent_fd = fd;
		agent_connected = 1;
		version++;
		pthread_cond_broadcast(&changed);
		pthread_mutex_unlock(&lock);
		for (;;) {
			ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
			char *start = buf, *nl;

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += (size_t)n;
			buf[len] = '\0';
			pthread_mutex_lock(&lock);
			while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
				*nl = '\0';
				agent_line(start);
				start = nl + 1;
			}
			pthread_mutex_unlock(&lock);
			len -= (size_t)(start - buf);
			memmove(buf, start, len);
			if (len == sizeof(buf) - 1) {
				say("a line from the agent is longer than %d bytes: reconnecting",
				    LINE_MAX_BYTES);
				break;
			}
		}
		say("the agent closed the connection: showing nothing until it is back");
		pthread_mutex_lock(&lock);
		agent_fd = -1;
		agent_connected = 0;
		free(offer_json);
		offer_json = NULL;
		version++;
		pthread_cond_broadcast(&changed);
		pthread_mutex_unlock(&lock);
		close(fd);
	}
}

/* One event stream: what it has sent and what waits to be copied out. */
struct stream {
	unsigned long seen; /* version last sent */
	char buf[EVENT_MAX_BYTES];
	size_t len, off;
};

/* Fills s->buf with the next event or a keepalive (lock held). */
static void stream_next(struct stream *s)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += KEEPALIVE_S;
	while (s->seen == version && !stopping)
		if (pthread_cond_timedwait(&changed, &lock, &until) == ETIMEDOUT)
			break;
	s->off = 0;
	if (s->seen == version || stopping) {
		s->len = (size_t)snprintf(s->buf, sizeof(s->buf), ": keepalive\n\n");
		return;
	}
	s->seen = version;
	s->len = (size_t)snprintf(s->buf, sizeof(s->buf),
				  "event: state\ndata: {\"connected\":%s,\"theme\":\"%s\","
				  "\"offer\":%s}\n\n",
				  agent_connected ? "true" : "false", theme,
				  offer_json ? offer_json : "null");
	if (s->len >= sizeof(s->buf)) /* cannot happen: lines are bounded */
		s->len = (size_t)snprintf(s->buf, sizeof(s->buf), ": too long\n\n");
}

static ssize_t stream_read(void *cls, uint64_t pos, char *out, size_t max)
{
	struct stream *s = cls;
	size_t n;

	(void)pos;
	pthread_mutex_lock(&lock);
	if (stopping) {
		pthread_mutex_unlock(&lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	if (s->off == s->len)
		stream_next(s);
	pthread_mutex_unlock(&lock);
	n = s->len - s->off < max ? s->len - s->off : max;
	memcpy(out, s->buf + s->off, n);
	s->off += n;
	return (ssize_t)n;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
			       const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Cache-Control", "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'self'; frame-ancestors 'none'");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
	char body[700];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	return respond(c, status, "application/json", body, (size_t)n, MHD_RESPMEM_MUST_COPY);
}

/* An offer id as the agent takes it (hmi.c's rule): printable, no spaces. */
static int id_valid(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 63)
		return 0;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return 0;
	return 1;
}

/* Sends "VERB id" to the agent and waits for its answer. */
static enum MHD_Result decide(struct MHD_Connection *c, const char *verb)
{
	const char *id = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id");
	char line[128], answer[sizeof(reply)];
	struct timespec until;
	unsigned long seq;
	int fd, got = 0;

	/* A custom header: a cross-site form or fetch cannot send it. */
	if (!MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Pitstop-Screen"))
		return respond_json(c, 403, "{\"error\":\"missing X-Pitstop-Screen header\"}");
	if (!id || !id_valid(id))
		return respond_json(c, 400, "{\"error\":\"bad offer id\"}");
	snprintf(line, sizeof(line), "%s %s\n", verb, id);
	pthread_mutex_lock(&command_lock);
	pthread_mutex_lock(&lock);
	fd = agent_fd;
	seq = reply_seq;
	if (fd >= 0 && send(fd, line, strlen(line), MSG_NOSIGNAL) == (ssize_t)strlen(line)) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += REPLY_TIMEOUT_S;
		while (reply_seq == seq && agent_fd == fd && !stopping)
			if (pthread_cond_timedwait(&changed, &lock, &until) == ETIMEDOUT)
				break;
		got = reply_seq != seq;
		snprintf(answer, sizeof(answer), "%s", reply);
	}
	pthread_mutex_unlock(&lock);
	pthread_mutex_unlock(&command_lock);
	if (fd < 0)
		return respond_json(c, 503, "{\"error\":\"the agent is not connected\"}");
	if (!got)
		return respond_json(c, 504, "{\"error\":\"no answer from the agent\"}");
	if (strncmp(answer, "OK ", 3) != 0) {
		/* "ERR ACCEPT id: not on screen": ids are checked, no quotes inside. */
		return respond_json(c, 409, "{\"error\":\"%s\"}", answer + 4);
	}
	return respond_json(c, 200, "{\"ok\":true}");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *ver, const char *upload,
				  size_t *upload_len, void **req_cls)
{
	static int marker;

	(void)cls;
	(void)ver;
	(void)upload;
	if (!*req_cls) { /* headers only so far */
		*req_cls = &marker;
		return MHD_YES;
	}
	if (*upload_len) { /* a body is not used: skip it */
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, "POST") == 0) {
		if (strcmp(url, "/api/accept") == 0)
			return decide(c, "ACCEPT");
		if (strcmp(url, "/api/dismiss") == 0)
			return decide(c, "DISMISS");
		return respond_json(c, 404, "{\"error\":\"no such path\"}");
	}
	if (strcmp(method, "GET") != 0)
		return respond_json(c, 405, "{\"error\":\"method not allowed\"}");
	if (strcmp(url, "/events") == 0) {
		struct stream *s = calloc(1, sizeof(*s));
		struct MHD_Response *r;
		enum MHD_Result ret;

		if (!s)
			return MHD_NO;
		r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, s, free);
		if (!r) {
			free(s);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "text/event-stream");
		MHD_add_response_header(r, "Cache-Control", "no-store");
		ret = MHD_queue_response(c, MHD_HTTP_OK, r);
		MHD_destroy_response(r);
		return ret;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (strcmp(url, files[i].url) == 0)
			return respond(c, MHD_HTTP_OK, files[i].type, files[i].data, files[i].len,
				       MHD_RESPMEM_PERSISTENT);
	return respond_json(c, 404, "{\"error\":\"no such path\"}");
}

/* Reads dir/name into *f; returns 0 or -1 (said why). */
static int load_file(const char *dir, struct page_file *f)
{
	char path[4096];
	FILE *fp;
	long n;

	snprintf(path, sizeof(path), "%s/%s", dir, f->name);
	fp = fopen(path, "rb");
	if (!fp || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || n > MAX_FILE_BYTES ||
	    fseek(fp, 0, SEEK_SET) != 0) {
		say("%s: %s", path, fp ? "unreadable or larger than 256 KiB" : strerror(errno));
		if (fp)
			fclose(fp);
		return -1;
	}
	f->data = malloc((size_t)n + 1);
	if (!f->data || fread(f->data, 1, (size_t)n, fp) != (size_t)n) {
		say("%s: cannot read it", path);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	f->len = (size_t)n;
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out, "usage: pitstop-screen --socket PATH [--port N] [--www DIR] [--theme "
		     "auto|day|night]\n"
		     "  --socket PATH  the agent's hmi_socket\n"
		     "  --port N       listen on 127.0.0.1:N (default 8090; 0: any free port)\n"
		     "  --www DIR      the page's files (default " PITSTOP_SCREEN_WWW ")\n"
		     "  --theme T      auto (by the head unit's clock), day or night\n");
}

int main(int argc, char **argv)
{
	const char *www = PITSTOP_SCREEN_WWW;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	pthread_t reader;
	sigset_t set;
	long port = 8090;
	int sig;

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		char *end;

		if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (!val) {
			say("%s: needs a value", opt);
			usage(stderr);
			return 2;
		}
		i++;
		if (strcmp(opt, "--socket") == 0) {
			socket_path = val;
		} else if (strcmp(opt, "--www") == 0) {
			www = val;
		} else if (strcmp(opt, "--theme") == 0 &&
			   (strcmp(val, "auto") == 0 || strcmp(val, "day") == 0 ||
			    strcmp(val, "night") == 0)) {
			theme = val;
		} else if (strcmp(opt, "--port") == 0) {
			errno = 0;
			port = strtol(val, &end, 10);
			if (errno || *end || port < 0 || port > 65535) {
				say("--port %s: not a port number (0 to 65535)", val);
				return 2;
			}
		} else {
			say("%s %s: unknown option or bad value", opt, val);
			usage(stderr);
			return 2;
		}
	}
	if (!socket_path) {
		say("--socket is required");
		usage(stderr);
		return 2;
	}
	if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		say("--socket %s: too long for a unix socket", socket_path);
		return 2;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (load_file(www, &files[i]) < 0)
			return 1;
	/* Signals are taken by sigwait below; every thread inherits the mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	d = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS, MHD_OPTION_END);
	if (!d) {
		say("cannot listen on 127.0.0.1:%ld: %s", port, strerror(errno));
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (pthread_create(&reader, NULL, agent_thread, NULL) != 0) {
		say("cannot start the agent reader thread");
		MHD_stop_daemon(d);
		return 1;
	}
	say("serving http://127.0.0.1:%u/ for the agent at %s",
	    info ? (unsigned)info->port : (unsigned)port, socket_path);
	sigwait(&set, &sig);
	say("stopping (%s)", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	pthread_mutex_lock(&lock);
	stopping = 1;
	if (agent_fd >= 0)
		shutdown(agent_fd, SHUT_RDWR);
	pthread_cond_broadcast(&changed);
	pthread_mutex_unlock(&lock);
	MHD_stop_daemon(d);
	pthread_join(reader, NULL);
	free(offer_json);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		free(files[i].data);
	return 0;
}
