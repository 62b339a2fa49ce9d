/*
 * The HMI socket; see hmi.h and docs/hmi.md. One listening socket and up to
 * max_clients connections, all non-blocking on the agent's loop. Each
 * client has a fixed input buffer (one line, HMI_MAX_LINE) and an output
 * buffer that grows up to HMI_MAX_OUTPUT; writes are attempted at once and
 * the rest waits for POLLOUT.
 */
#include "hmi.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "display.h"
#include "log.h"
#include "loop.h"
#include "unixsock.h"

struct hmi_client {
	int fd;			 /* owned; -1 = free slot */
	char in[HMI_MAX_LINE];	 /* the line being read */
	size_t in_len;		 /* bytes in in */
	char *out;		 /* owned: bytes not yet written */
	size_t out_len, out_cap; /* out_cap <= HMI_MAX_OUTPUT */
};

struct hmi {
	struct display head; /* must be first: the HMI as a display */
	struct loop *loop;   /* borrowed */
	char *path;	     /* owned */
	int fd;		     /* owned: the listening socket */
	int max_clients;
	hmi_decision_fn fn;
	void *arg;
	int has_offer;	     /* an offer is on screen */
	struct offer offer;  /* that offer */
	int64_t shown_at_ms; /* when it was put there */
	struct hmi_client clients[HMI_MAX_CLIENTS];
};

/* Accepts an id: 1..CODEC_MAX_ID-1 printable ASCII characters, no space. */
static int id_valid(const char *s, size_t len)
{
	if (len == 0 || len >= CODEC_MAX_ID)
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

int hmi_parse_line(const char *line, size_t len, struct hmi_command *ret, const char **ret_why)
{
	static const struct {
		const char *word;
		enum hmi_verb verb;
		int takes_id;
	} verbs[] = {
		{ "PING", HMI_PING, 0 },
		{ "ACCEPT", HMI_ACCEPT, 1 },
		{ "DISMISS", HMI_DISMISS, 1 },
	};
	const char *sp, *arg;
	size_t wlen, alen;

	if (len && line[len - 1] == '\r')
		len--;
	sp = memchr(line, ' ', len);
	wlen = sp ? (size_t)(sp - line) : len;
	arg = sp ? sp + 1 : line + len;
	alen = (size_t)(line + len - arg);
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].word) != wlen || memcmp(verbs[i].word, line, wlen) != 0)
			continue;
		if (!verbs[i].takes_id) {
			if (sp) {
				*ret_why = "unexpected argument";
				return -EINVAL;
			}
		} else if (!sp || alen == 0) {
			*ret_why = "missing offer id";
			return -EINVAL;
		} else if (memchr(arg, ' ', alen)) {
			*ret_why = "one offer id expected";
			return -EINVAL;
		} else if (!id_valid(arg, alen)) {
			*ret_why = "bad offer id";
			return -EINVAL;
		}
		memset(ret, 0, sizeof(*ret));
		ret->verb = verbs[i].verb;
		if (verbs[i].takes_id)
			memcpy(ret->id, arg, alen);
		return 0;
	}
	*ret_why = "unknown command";
	return -EINVAL;
}

/* Appends s as a JSON string (quotes included); returns 0 or -ENOSPC. */
static int json_str(char *buf, size_t len, size_t *pos, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	if (*pos + 1 >= len)
		return -ENOSPC;
	buf[(*pos)++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[7];
		size_t n = 0;

		if (*p == '"' || *p == '\\') {
			esc[n++] = '\\';
			esc[n++] = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			n = 6;
		} else {
			esc[n++] = (char)*p;
		}
		if (*pos + n + 1 >= len)
			return -ENOSPC;
		memcpy(buf + *pos, esc, n);
		*pos += n;
	}
	buf[(*pos)++] = '"';
	buf[*pos] = '\0';
	return 0;
}

/* Appends text as it is; returns 0 or -ENOSPC. */
static int put(char *buf, size_t len, size_t *pos, const char *text)
{
	size_t n = strlen(text);

	if (*pos + n >= len)
		return -ENOSPC;
	memcpy(buf + *pos, text, n + 1);
	*pos += n;
	return 0;
}

int hmi_offer_json(const struct offer *o, int64_t shown_at_ms, char *buf, size_t len)
{
	char until[32], num[96];
	const char *fields[][2] = {
		{ "{\"id\":", o->id },
		{ ",\"kind\":", display_kind_name(o->kind) },
		{ ",\"title\":", o->title },
		{ ",\"body\":", o->body },
		{ ",\"promo_code\":", o->promo_code },
		{ ",\"valid_until\":", until },
	};
	size_t pos = 0;

	display_format_time(o->valid_until_ms, until, sizeof(until));
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (put(buf, len, &pos, fields[i][0]) < 0 ||
		    json_str(buf, len, &pos, fields[i][1]) < 0)
			return -ENOSPC;
	snprintf(num, sizeof(num), ",\"valid_until_ms\":%" PRId64 ",\"shown_at_ms\":%" PRId64 "}",
		 o->valid_until_ms, shown_at_ms);
	if (put(buf, len, &pos, num) < 0)
		return -ENOSPC;
	return (int)pos;
}

/* Closes client c and frees its slot. */
static void client_close(struct hmi *h, struct hmi_client *c, const char *why)
{
	log_info("hmi: client %d closed: %s", (int)(c - h->clients), why);
	loop_del_fd(h->loop, c->fd);
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* Writes what c has waiting; returns 0, or -1 if c was closed. */
static int client_flush(struct hmi *h, struct hmi_client *c)
{
	while (c->out_len) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			client_close(h, c, n < 0 ? strerror(errno) : "write failed");
			return -1;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	loop_mod_fd(h->loop, c->fd, POLLIN | (c->out_len ? POLLOUT : 0));
	return 0;
}

/*
 * Queues "text\n" for c and tries to write it. A client whose backlog would
 * pass HMI_MAX_OUTPUT is dropped. Returns 0, or -1 if c was closed.
 */
static int client_send(struct hmi *h, struct hmi_client *c, const char *text)
{
	size_t n = strlen(text) + 1;

	if (c->out_len + n > HMI_MAX_OUTPUT) {
		log_warn("hmi: client %d does not read (%zu bytes waiting): dropped",
			 (int)(c - h->clients), c->out_len);
		client_close(h, c, "too slow");
		return -1;
	}
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 1024;
		char *p;

		while (cap < c->out_len + n)
			cap *= 2;
		if (cap > HMI_MAX_OUTPUT)
			cap = HMI_MAX_OUTPUT;
		p = realloc(c->out, cap);
		if (!p) {
			client_close(h, c, "out of memory");
			return -1;
		}
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, n - 1);
	c->out[c->out_len + n - 1] = '\n';
	c->out_len += n;
	return client_flush(h, c);
}

/* Sends the OFFER line of what is on screen (if anything) to c. */
static int send_offer(struct hmi *h, struct hmi_client *c)
{
	char line[8 + 6 * (CODEC_MAX_TITLE + CODEC_MAX_BODY + CODEC_MAX_PROMO + CODEC_MAX_ID) +
		  256];
	int n;

	if (!h->has_offer)
		return 0;
	memcpy(line, "OFFER ", 6);
	n = hmi_offer_json(&h->offer, h->shown_at_ms, line + 6, sizeof(line) - 6);
	if (n < 0) {
		log_error("hmi: offer %s does not fit a line", h->offer.id);
		return 0;
	}
	return client_send(h, c, line);
}

/* Sends text to every client. */
static void broadcast(struct hmi *h, const char *text)
{
	for (int i = 0; i < h->max_clients; i++)
		if (h->clients[i].fd >= 0)
			client_send(h, &h->clients[i], text);
}

/* Handles one complete line from c; returns 0, or -1 if c was closed. */
static int client_line(struct hmi *h, struct hmi_client *c, char *line, size_t len)
{
	static const char *const names[] = { [HMI_ACCEPT] = "ACCEPT", [HMI_DISMISS] = "DISMISS" };
	struct hmi_command cmd;
	const char *why = NULL;
	char reply[HMI_MAX_LINE + 64];
	int r;

	if (hmi_parse_line(line, len, &cmd, &why) < 0) {
		snprintf(reply, sizeof(reply), "ERR %s", why);
		return client_send(h, c, reply);
	}
	if (cmd.verb == HMI_PING)
		return client_send(h, c, "PONG");
	r = h->fn ? h->fn(cmd.id,
			  cmd.verb == HMI_ACCEPT ? OFFER_ACTION_ACCEPTED : OFFER_ACTION_DISMISSED,
			  h->arg)
		  : -ENOSYS;
	if (r == 0)
		snprintf(reply, sizeof(reply), "OK %s %s", names[cmd.verb], cmd.id);
	else if (r == -ENOENT)
		snprintf(reply, sizeof(reply), "ERR %s %s: not on screen", names[cmd.verb], cmd.id);
	else
		snprintf(reply, sizeof(reply), "ERR %s %s: %s", names[cmd.verb], cmd.id,
			 strerror(-r));
	/* fn may have cleared the screen, which can drop c (too slow). */
	return c->fd >= 0 ? client_send(h, c, reply) : -1;
}

/* Reads from c and handles every complete line. */
static void client_read(struct hmi *h, struct hmi_client *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		size_t start = 0;
		char *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			client_close(h, c, n == 0 ? "disconnected" : strerror(errno));
			return;
		}
		c->in_len += (size_t)n;
		while ((nl = memchr(c->in + start, '\n', c->in_len - start))) {
			size_t len = (size_t)(nl - (c->in + start));

			if (client_line(h, c, c->in + start, len) < 0)
				return;
			start += len + 1;
		}
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
		if (c->in_len == sizeof(c->in)) {
			client_send(h, c, "ERR line too long");
			if (c->fd >= 0)
				client_close(h, c, "line too long");
			return;
		}
	}
}

static void on_client(int fd, short revents, void *arg)
{
	struct hmi *h = arg;
	struct hmi_client *c = NULL;

	for (int i = 0; i < h->max_clients; i++)
		if (h->clients[i].fd == fd)
			c = &h->clients[i];
	if (!c)
		return;
	if (revents & POLLOUT && client_flush(h, c) < 0)
		return;
	if (revents & (POLLIN | POLLHUP | POLLERR))
		client_read(h, c);
}

static void on_accept(int fd, short revents, void *arg)
{
	struct hmi *h = arg;
	struct hmi_client *c = NULL;
	int cfd;

	(void)revents;
	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return;
	for (int i = 0; i < h->max_clients && !c; i++)
		if (h->clients[i].fd < 0)
			c = &h->clients[i];
	if (!c) {
		static const char full[] = "ERR too many clients\n";

		log_warn("hmi: refused a client: %d connected already", h->max_clients);
		send(cfd, full, sizeof(full) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		close(cfd);
		return;
	}
	if (loop_add_fd(h->loop, cfd, POLLIN, on_client, h) < 0) {
		close(cfd);
		return;
	}
	c->fd = cfd;
	log_info("hmi: client %d connected", (int)(c - h->clients));
	if (client_send(h, c, "HELLO pitstop-hmi 1") == 0)
		send_offer(h, c);
}

static int hmi_show(struct display *d, const struct offer *o, int64_t shown_at_ms)
{
	struct hmi *h = (struct hmi *)d;

	h->has_offer = 1;
	h->offer = *o;
	h->shown_at_ms = shown_at_ms;
	for (int i = 0; i < h->max_clients; i++)
		if (h->clients[i].fd >= 0)
			send_offer(h, &h->clients[i]);
	return 0;
}

static int hmi_clear(struct display *d)
{
	struct hmi *h = (struct hmi *)d;
	char line[8 + CODEC_MAX_ID];

	if (!h->has_offer)
		return 0;
	snprintf(line, sizeof(line), "CLEAR %s", h->offer.id);
	h->has_offer = 0;
	broadcast(h, line);
	return 0;
}

/* The HMI's display is freed with the HMI (hmi_free), not through it. */
static void hmi_display_free(struct display *d)
{
	(void)d;
}

static const struct display_ops hmi_ops = { hmi_show, hmi_clear, hmi_display_free };

int hmi_new(struct loop *loop, const char *path, int max_clients, hmi_decision_fn fn, void *arg,
	    struct hmi **ret_h)
{
	char err[160];
	struct hmi *h;
	int r;

	if (!path || !*path || max_clients < 1 || max_clients > HMI_MAX_CLIENTS)
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->head.ops = &hmi_ops;
	h->loop = loop;
	h->fd = -1;
	h->max_clients = max_clients;
	h->fn = fn;
	h->arg = arg;
	for (int i = 0; i < HMI_MAX_CLIENTS; i++)
		h->clients[i].fd = -1;
	h->path = strdup(path);
	if (!h->path) {
		r = -ENOMEM;
		goto fail;
	}
	r = unixsock_listen(path, 0660, 8, &h->fd, err, sizeof(err));
	if (r < 0) {
		log_error("hmi_socket %s: %s", path, err);
		goto fail;
	}
	r = loop_add_fd(loop, h->fd, POLLIN, on_accept, h);
	if (r < 0) {
		close(h->fd);
		h->fd = -1;
		unlink(path);
		goto fail;
	}
	log_info("hmi: listening on %s", path);
	*ret_h = h;
	return 0;
fail:
	free(h->path);
	free(h);
	return r;
}

struct display *hmi_display(struct hmi *h)
{
	return &h->head;
}

int hmi_clients(const struct hmi *h)
{
	int n = 0;

	for (int i = 0; i < h->max_clients; i++)
		n += h->clients[i].fd >= 0;
	return n;
}

void hmi_free(struct hmi *h)
{
	if (!h)
		return;
	for (int i = 0; i < h->max_clients; i++)
		if (h->clients[i].fd >= 0)
			client_close(h, &h->clients[i], "agent stopping");
	if (h->fd >= 0) {
		loop_del_fd(h->loop, h->fd);
		close(h->fd);
		unlink(h->path);
	}
	free(h->path);
	free(h);
}
