/*
 * The ELM327 source; see obd_elm327.h. One state machine on the loop:
 *
 *   CLOSED --open--> INIT (the AT commands, one at a time) --> QUERY/PAUSE
 *   (obd_poll's requests, poll_interval_ms apart) ; WAIT (the car does not
 *   answer: backoff, then the bitmaps again) ; any read or write error,
 *   EOF or hang-up --> CLOSED with a reopen timer (backoff).
 *
 * Exactly one loop timer is pending at a time (timer): the answer's
 * timeout, the pause before the next request, or a backoff.
 */
#include "obd_elm327.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <poll.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "obd_poll.h"
#include "signals.h"

/* ---- the answer parser ---------------------------------------------- */

/* Value of hex digit c, or -1. */
static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 1 if line equals cmd, ignoring case and spaces (an echo). */
static int is_echo(const char *line, const char *cmd)
{
	if (!cmd || !*cmd)
		return 0;
	for (;;) {
		while (*line == ' ')
			line++;
		while (*cmd == ' ')
			cmd++;
		if (!*line || !*cmd)
			return !*line && !*cmd;
		if (toupper((unsigned char)*line) != toupper((unsigned char)*cmd))
			return 0;
		line++, cmd++;
	}
}

/*
 * Reads the hex bytes of s (spaces between them optional) into out.
 * Returns the number of hex digits, or -1 if s holds anything else, more
 * than max bytes, or an odd number of digits (except 3: a length line).
 */
static int hex_line(const char *s, uint8_t *out, size_t max, size_t *ret_n)
{
	int digits = 0, hi = -1;
	size_t n = 0;

	for (; *s; s++) {
		int v;

		if (*s == ' ')
			continue;
		v = hexval(*s);
		if (v < 0)
			return -1;
		digits++;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == max)
			return -1;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	if (hi >= 0 && digits != 3)
		return -1;
	*ret_n = n;
	return digits;
}

/* Parser state across the lines of one answer. */
struct parse {
	struct elm327_answer *a;
	int kind;      /* a non-DATA kind seen, -1 none */
	int text;      /* an OK / ELM327 line was seen */
	int mf;	       /* message being assembled from "n:" lines, -1 none */
	size_t mf_len; /* its announced length, 0 unknown */
};

static void set_kind(struct parse *ps, enum elm327_kind k, const char *line)
{
	if (ps->kind < 0) {
		ps->kind = (int)k;
		snprintf(ps->a->text, sizeof(ps->a->text), "%s", line);
	}
}

/* A new message slot, or -1 when ELM327_MAX_MSGS are taken (the rest is dropped). */
static int new_msg(struct parse *ps)
{
	if (ps->a->nmsgs == ELM327_MAX_MSGS)
		return -1;
	ps->a->msgs[ps->a->nmsgs].len = 0;
	return (int)ps->a->nmsgs++;
}

static void parse_line(struct parse *ps, char *line, const char *cmd)
{
	uint8_t bytes[ELM327_MAX_BYTES];
	char *p = line, *end;
	size_t n, *len;
	int digits, idx = -1;

	while (*p == ' ')
		p++;
	end = p + strlen(p);
	while (end > p && end[-1] == ' ')
		*--end = '\0';
	if (!*p || is_echo(p, cmd))
		return;
	for (char *q = p; *q; q++)
		*q = (char)toupper((unsigned char)*q);
	if (strncmp(p, "SEARCHING", 9) == 0)
		return;
	if (strcmp(p, "NO DATA") == 0)
		return set_kind(ps, ELM327_NO_DATA, p);
	if (strstr(p, "UNABLE TO CONNECT"))
		return set_kind(ps, ELM327_UNABLE, p);
	if (strncmp(p, "BUS INIT", 8) == 0 && !strstr(p, "ERROR"))
		return; /* "BUS INIT: ...OK" before the data */
	if (strstr(p, "ERROR") || strstr(p, "BUS BUSY") || strstr(p, "BUFFER FULL"))
		return set_kind(ps, ELM327_BUS_ERROR, p);
	if (strcmp(p, "STOPPED") == 0)
		return set_kind(ps, ELM327_STOPPED, p);
	if (strcmp(p, "?") == 0)
		return set_kind(ps, ELM327_UNKNOWN, p);
	if (strcmp(p, "OK") == 0 || strncmp(p, "ELM", 3) == 0) {
		ps->text = 1;
		return;
	}
	/* "n: bytes": frame n of a multi-frame answer (CAN with headers off) */
	if (hexval(p[0]) >= 0 && p[1] == ':') {
		idx = hexval(p[0]);
		p += 2;
	}
	digits = hex_line(p, bytes, sizeof(bytes), &n);
	if (digits < 0)
		return;		      /* garbage: ignored */
	if (digits == 3 && idx < 0) { /* length of the multi-frame answer that follows */
		ps->mf = new_msg(ps);
		ps->mf_len = (size_t)(hexval(p[0]) << 8 | hexval(p[1]) << 4 | hexval(p[2]));
		return;
	}
	if (idx < 0) { /* one ECU's whole answer */
		int m = new_msg(ps);

		ps->mf = -1;
		if (m >= 0) {
			memcpy(ps->a->msgs[m].b, bytes, n);
			ps->a->msgs[m].len = n;
		}
		return;
	}
	if (ps->mf < 0) { /* frames without their length line */
		ps->mf = new_msg(ps);
		ps->mf_len = 0;
		if (ps->mf < 0)
			return;
	}
	len = &ps->a->msgs[ps->mf].len;
	if (n > ELM327_MAX_BYTES - *len)
		n = ELM327_MAX_BYTES - *len;
	memcpy(ps->a->msgs[ps->mf].b + *len, bytes, n);
	*len += n;
	if (ps->mf_len && *len > ps->mf_len)
		*len = ps->mf_len; /* padding of the last frame */
}

void elm327_parse(const char *buf, size_t len, const char *cmd, struct elm327_answer *ret)
{
	char line[ELM327_MAX_ANSWER + 1];
	struct parse ps = { ret, -1, 0, -1, 0 };
	size_t ln = 0;

	memset(ret, 0, sizeof(*ret));
	for (size_t i = 0; i <= len; i++) {
		int c = i < len ? (unsigned char)buf[i] : '\n';

		if (c == '\r' || c == '\n') {
			line[ln] = '\0';
			parse_line(&ps, line, cmd);
			ln = 0;
		} else if (c >= 0x20 && c < 0x7F && c != '>' && ln < ELM327_MAX_ANSWER) {
			line[ln++] = (char)c; /* anything unprintable is noise */
		}
	}
	/* a multi-frame answer whose length line promised more than came is garbage */
	if (ps.mf >= 0 && ps.mf_len && ret->msgs[ps.mf].len < ps.mf_len)
		ret->msgs[ps.mf].len = 0;
	if (ret->nmsgs) {
		size_t k = 0;

		for (size_t i = 0; i < ret->nmsgs; i++) /* drop empty ones */
			if (ret->msgs[i].len)
				ret->msgs[k++] = ret->msgs[i];
		ret->nmsgs = k;
	}
	if (ret->nmsgs)
		ret->kind = ELM327_DATA;
	else if (ps.kind >= 0)
		ret->kind = (enum elm327_kind)ps.kind;
	else
		ret->kind = ps.text ? ELM327_TEXT : ELM327_GARBAGE;
	if (ret->kind == ELM327_DATA || ret->kind == ELM327_TEXT)
		ret->text[0] = '\0';
}

/* ---- the source ----------------------------------------------------- */

/* Reopen backoff after the adapter went away or could not be opened. */
#define REOPEN_MIN_MS 500
#define REOPEN_MAX_MS 10000
/* Backoff while the car does not answer (ignition off, no protocol). */
#define CAR_MIN_MS 1000
#define CAR_MAX_MS 10000
/* ATZ and the first bitmap (which may start a protocol search) may be slow. */
#define SLOW_TIMEOUT_MS 5000
/* Timeouts in a row after which the adapter is set up again. */
#define MAX_TIMEOUTS 3

static const char *const init_cmds[] = { "ATZ", "ATE0", "ATL0", "ATS1", "ATH0", "ATSP0" };
#define NINIT (sizeof(init_cmds) / sizeof(init_cmds[0]))

enum elm_state {
	S_CLOSED, /* no fd; the reopen timer is pending */
	S_INIT,	  /* an AT command of init_cmds[step] is outstanding */
	S_QUERY,  /* the PID request pid is outstanding */
	S_PAUSE,  /* between requests */
	S_WAIT,	  /* the car does not answer: backoff */
};

struct elm327 {
	struct signals head; /* must be first */
	struct loop *loop;   /* borrowed */
	char *device;	     /* owned */
	speed_t speed;	     /* termios baud constant */
	int timeout_ms, poll_ms;
	int fd;	   /* -1 when closed */
	int timer; /* the one pending timer, 0 = none */
	enum elm_state state;
	unsigned step;		     /* S_INIT: index into init_cmds */
	int pid;		     /* S_QUERY: the PID asked for */
	char cmd[16];		     /* the outstanding command, without CR */
	char buf[ELM327_MAX_ANSWER]; /* answer so far */
	size_t len;
	unsigned timeouts;	    /* in a row */
	unsigned reopen_ms, car_ms; /* current backoffs */
	struct obd_said said;	    /* the last state logged (logged once per change) */
	struct obd_poll poll;
};

static void send_next(void *arg);
static void do_open(void *arg);

#define say(e, level, ...) obd_say(&(e)->said, level, __VA_ARGS__)

static void set_timer(struct elm327 *e, uint64_t ms, loop_timer_fn fn)
{
	obd_timer(e->loop, &e->timer, ms, fn, e);
}

/* The adapter is gone (or unusable): close, reopen after a backoff. */
static void lost(struct elm327 *e, const char *cause)
{
	if (e->fd >= 0) {
		loop_del_fd(e->loop, e->fd);
		close(e->fd);
		e->fd = -1;
	}
	say(e, LOG_LEVEL_WARN, "obd: adapter %s lost (%s): reopening", e->device, cause);
	obd_poll_lost(&e->poll);
	e->state = S_CLOSED;
	e->len = 0;
	set_timer(e, e->reopen_ms, do_open);
	e->reopen_ms = obd_backoff(e->reopen_ms, REOPEN_MAX_MS);
}

/* Sends cmd + CR and arms the answer's timeout. */
static void send_cmd(struct elm327 *e, const char *cmd, int timeout_ms, loop_timer_fn on_timeout)
{
	char line[sizeof(e->cmd) + 1];
	int n;

	snprintf(e->cmd, sizeof(e->cmd), "%s", cmd);
	n = snprintf(line, sizeof(line), "%s\r", cmd);
	e->len = 0;
	set_timer(e, (uint64_t)timeout_ms, on_timeout);
	/* A short or refused (EAGAIN) write shows as a timeout. */
	if (write(e->fd, line, (size_t)n) < 0 && errno != EAGAIN && errno != EINTR) {
		char why[96];

		snprintf(why, sizeof(why), "write: %s", strerror(errno));
		lost(e, why);
	}
}

static void on_timeout(void *arg);

/* The next step of the set-up, or the first request when it is done. */
static void init_step(struct elm327 *e)
{
	if (e->step < NINIT) {
		e->state = S_INIT;
		send_cmd(e, init_cmds[e->step], e->step == 0 ? SLOW_TIMEOUT_MS : e->timeout_ms,
			 on_timeout);
		return;
	}
	obd_poll_restart(&e->poll);
	e->state = S_PAUSE;
	send_next(e);
}

/* Waits for the car (backoff), then asks for the bitmaps again. */
static void car_wait(struct elm327 *e, const char *why)
{
	say(e, LOG_LEVEL_INFO, "obd: the car does not answer (%s): asking again", why);
	obd_poll_lost(&e->poll);
	obd_poll_restart(&e->poll);
	e->state = S_WAIT;
	set_timer(e, e->car_ms, send_next);
	e->car_ms = obd_backoff(e->car_ms, CAR_MAX_MS);
}

/* The pause between requests. */
static void pause_next(struct elm327 *e)
{
	e->state = S_PAUSE;
	set_timer(e, (uint64_t)e->poll_ms, send_next);
}

/* Timer: the next request. */
static void send_next(void *arg)
{
	struct elm327 *e = arg;
	char cmd[16];
	int pid;

	e->timer = 0;
	if (e->fd < 0)
		return;
	pid = obd_poll_next(&e->poll);
	if (pid < 0) {
		car_wait(e, "it gives none of the PIDs we sample");
		e->car_ms = CAR_MAX_MS;
		return;
	}
	e->state = S_QUERY;
	e->pid = pid;
	snprintf(cmd, sizeof(cmd), "01%02X", (unsigned)pid & 0xFF);
	send_cmd(e, cmd, pid == 0 ? SLOW_TIMEOUT_MS : e->timeout_ms, on_timeout);
}

/* Timer: no prompt in time. */
static void on_timeout(void *arg)
{
	struct elm327 *e = arg;

	e->timer = 0;
	e->len = 0;
	tcflush(e->fd, TCIFLUSH); /* a late answer is not taken for the next one */
	if (e->state == S_INIT) {
		char why[64];

		snprintf(why, sizeof(why), "no answer to %s", e->cmd);
		lost(e, why);
		return;
	}
	say(e, LOG_LEVEL_WARN, "obd: no answer to %s within %d ms", e->cmd,
	    e->pid == 0 ? SLOW_TIMEOUT_MS : e->timeout_ms);
	if (++e->timeouts >= MAX_TIMEOUTS) {
		say(e, LOG_LEVEL_WARN,
		    "obd: %u requests in a row without an answer: resetting the adapter",
		    e->timeouts);
		e->timeouts = 0;
		obd_poll_lost(&e->poll);
		e->step = 0;
		init_step(e);
		return;
	}
	pause_next(e);
}

/* One answer to a PID request. */
static void on_pid_answer(struct elm327 *e, const struct elm327_answer *a)
{
	const uint8_t *data[ELM327_MAX_MSGS];
	size_t lens[ELM327_MAX_MSGS], n = 0;
	int r;

	switch (a->kind) {
	case ELM327_DATA:
		for (; n < a->nmsgs; n++) {
			data[n] = a->msgs[n].b;
			lens[n] = a->msgs[n].len;
		}
		r = obd_poll_handle(&e->poll, loop_now_ms(), (uint8_t)e->pid, data, lens, n);
		if (r == 0) {
			e->car_ms = CAR_MIN_MS;
			e->reopen_ms = REOPEN_MIN_MS;
			say(e, LOG_LEVEL_INFO, "obd: reading the car through %s", e->device);
		} else if (r > 0) {
			car_wait(e, "it refused the supported-PID request");
			return;
		} else {
			say(e, LOG_LEVEL_WARN, "obd: an answer to %s that is not one", e->cmd);
		}
		break;
	case ELM327_NO_DATA:
		if (obd_poll_no_data(&e->poll, (uint8_t)e->pid)) {
			car_wait(e, "NO DATA");
			return;
		}
		break;
	case ELM327_UNABLE:
	case ELM327_BUS_ERROR:
		car_wait(e, a->text);
		return;
	case ELM327_STOPPED:
	case ELM327_UNKNOWN:
	case ELM327_TEXT:
	case ELM327_GARBAGE:
		say(e, LOG_LEVEL_WARN, "obd: %s answered %s", e->cmd,
		    a->kind == ELM327_STOPPED	? "STOPPED"
		    : a->kind == ELM327_UNKNOWN ? "? (not understood)"
						: "garbage");
		break;
	}
	pause_next(e);
}

/* A whole answer (the text before '>') arrived. */
static void on_answer(struct elm327 *e, const char *buf, size_t len)
{
	struct elm327_answer a;

	if (e->timer)
		loop_cancel_timer(e->loop, e->timer);
	e->timer = 0;
	e->timeouts = 0;
	elm327_parse(buf, len, e->cmd, &a);
	if (e->state == S_INIT) {
		if (a.kind == ELM327_UNKNOWN)
			log_warn("obd: the adapter does not know %s", e->cmd);
		else if (e->step == 0 && a.kind == ELM327_TEXT)
			log_debug("obd: adapter reset");
		e->step++;
		init_step(e);
		return;
	}
	if (e->state == S_QUERY)
		on_pid_answer(e, &a);
}

/* fd readable (or hung up): collects bytes up to the prompt. */
static void on_read(int fd, short revents, void *arg)
{
	struct elm327 *e = arg;
	char tmp[256];

	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n == 0) {
			lost(e, "end of file");
			return;
		}
		if (n < 0) {
			char why[96];

			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && !(revents & (POLLHUP | POLLERR | POLLNVAL)))
				return;
			snprintf(why, sizeof(why), "%s",
				 errno == EAGAIN ? "hang-up" : strerror(errno));
			lost(e, why);
			return;
		}
		if (e->state != S_INIT && e->state != S_QUERY)
			continue; /* nothing asked: a late answer or noise */
		for (ssize_t i = 0; i < n; i++) {
			if (tmp[i] == '>') {
				on_answer(e, e->buf, e->len);
				e->len = 0;
				if (e->fd != fd)
					return; /* the next command's write lost the adapter */
				/* the rest of tmp follows a prompt nobody asked for */
				break;
			}
			if (e->len < sizeof(e->buf))
				e->buf[e->len++] = tmp[i];
			/* past the bound: dropped; the timeout or the prompt ends it */
		}
	}
}

/* Raw mode at the configured speed, no flow control (reads never wait: O_NONBLOCK). */
static int set_raw(int fd, speed_t speed)
{
	struct termios t;

	if (tcgetattr(fd, &t) < 0)
		return -errno;
	cfmakeraw(&t);
	t.c_cflag |= CLOCAL | CREAD;
	t.c_cflag &= ~(tcflag_t)CRTSCTS;
	t.c_cc[VMIN] = 1; /* with O_NONBLOCK: EAGAIN when empty, 0 only at a hang-up */
	t.c_cc[VTIME] = 0;
	if (cfsetispeed(&t, speed) < 0 || cfsetospeed(&t, speed) < 0 ||
	    tcsetattr(fd, TCSANOW, &t) < 0)
		return -errno;
	tcflush(fd, TCIOFLUSH);
	return 0;
}

/* Timer (and at start): opens the device by its path, then sets it up. */
static void do_open(void *arg)
{
	struct elm327 *e = arg;
	char real[PATH_MAX], why[300];
	int fd, r;

	e->timer = 0;
	fd = open(e->device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot open: %s", strerror(errno));
		goto fail;
	}
	r = set_raw(fd, e->speed);
	if (r < 0) {
		snprintf(why, sizeof(why), "not a serial device: %s", strerror(-r));
		close(fd);
		goto fail;
	}
	r = loop_add_fd(e->loop, fd, POLLIN, on_read, e);
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot watch it: %s", strerror(-r));
		close(fd);
		goto fail;
	}
	e->fd = fd;
	say(e, LOG_LEVEL_INFO, "obd: adapter %s opened (%s): setting it up", e->device,
	    realpath(e->device, real) ? real : e->device);
	e->step = 0;
	e->timeouts = 0;
	init_step(e);
	return;
fail:
	lost(e, why);
}

static int elm_read(struct signals *s, uint64_t now_ms, struct vehicle_signals *ret)
{
	struct elm327 *e = (struct elm327 *)s;

	obd_poll_read(&e->poll, now_ms, ret);
	return 0;
}

static void elm_free(struct signals *s)
{
	struct elm327 *e = (struct elm327 *)s;

	if (e->timer)
		loop_cancel_timer(e->loop, e->timer);
	if (e->fd >= 0) {
		loop_del_fd(e->loop, e->fd);
		close(e->fd);
	}
	obd_poll_fini(&e->poll);
	free(e->device);
	free(e);
}

static const struct signals_ops elm_ops = { elm_read, elm_free };

static const struct {
	int baud;
	speed_t speed;
} bauds[] = { { 9600, B9600 },	 { 19200, B19200 },   { 38400, B38400 },
	      { 57600, B57600 }, { 115200, B115200 }, { 230400, B230400 } };

int elm327_baud_valid(int baud)
{
	for (size_t i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++)
		if (bauds[i].baud == baud)
			return 1;
	return 0;
}

int elm327_open(struct loop *loop, const struct elm327_config *conf, struct signals **ret_s)
{
	struct elm327 *e;
	int r;

	if (!elm327_baud_valid(conf->baud) || !conf->device)
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->head.ops = &elm_ops;
	e->loop = loop;
	e->fd = -1;
	e->timeout_ms = conf->timeout_ms;
	e->poll_ms = conf->poll_interval_ms;
	e->reopen_ms = REOPEN_MIN_MS;
	e->car_ms = CAR_MIN_MS;
	for (size_t i = 0; i < sizeof(bauds) / sizeof(bauds[0]); i++)
		if (bauds[i].baud == conf->baud)
			e->speed = bauds[i].speed;
	e->device = strdup(conf->device);
	r = obd_poll_init(&e->poll, conf->odo_path);
	if (!e->device || r < 0) {
		obd_poll_fini(&e->poll);
		free(e->device);
		free(e);
		return -ENOMEM;
	}
	do_open(e);
	*ret_s = &e->head;
	return 0;
}
