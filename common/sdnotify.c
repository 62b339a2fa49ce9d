/*
 * sd_notify(3) by hand (see sdnotify.h): $NOTIFY_SOCKET is a filesystem path
 * or, with a leading '@', an abstract socket name. One SOCK_DGRAM sendto()
 * per call; systemd reads the whole datagram as one notification. The
 * watchdog is one self-rearming loop timer.
 */
#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop.h"

int sdnotify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n;
	ssize_t w;
	int fd, r = 1;

	if (!path || !*path)
		return 0;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa.sun_path))
		return -EINVAL;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n));
	if (w < 0)
		r = -errno;
	close(fd);
	return r;
}

int sdnotify_status(const char *text)
{
	static char last[SDNOTIFY_STATUS_MAX];
	static int have_last;
	const size_t skip = sizeof("STATUS=") - 1;
	char msg[sizeof("STATUS=") - 1 + SDNOTIFY_STATUS_MAX]; /* msg + skip fits last */
	int r;

	snprintf(msg, sizeof(msg), "STATUS=%.*s", SDNOTIFY_STATUS_MAX - 1, text);
	if (have_last && strcmp(last, msg + skip) == 0)
		return 0;
	r = sdnotify_send(msg);
	if (r > 0) {
		snprintf(last, sizeof(last), "%s", msg + skip);
		have_last = 1;
	}
	return r;
}

/* Parses a whole decimal number > 0. Returns 0 and *ret, or -EINVAL. */
static int parse_positive(const char *s, unsigned long long *ret)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

int sdnotify_watchdog_usec(uint64_t *ret_usec)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v, p;

	if (!usec || !*usec)
		return 0;
	if (pid && *pid) {
		if (parse_positive(pid, &p) < 0)
			return -EINVAL;
		if (p != (unsigned long long)getpid())
			return 0; /* meant for the process that started us */
	}
	if (parse_positive(usec, &v) < 0)
		return -EINVAL;
	*ret_usec = (uint64_t)v;
	return 1;
}

struct sdnotify_watchdog {
	struct loop *loop; /* borrowed */
	uint64_t period_ms;
	int timer; /* loop timer id, 0 = none */
};

static void watchdog_fired(void *arg)
{
	struct sdnotify_watchdog *wd = arg;
	int r;

	sdnotify_send("WATCHDOG=1");
	r = loop_add_timer(wd->loop, wd->period_ms, watchdog_fired, wd);
	/* Out of memory: no more pings, so systemd restarts us (what we would want). */
	wd->timer = r > 0 ? r : 0;
}

int sdnotify_watchdog_start(struct loop *loop, struct sdnotify_watchdog **ret_wd,
			    uint64_t *ret_period_ms)
{
	struct sdnotify_watchdog *wd;
	uint64_t usec = 0;
	int r;

	*ret_wd = NULL;
	if (ret_period_ms)
		*ret_period_ms = 0;
	r = sdnotify_watchdog_usec(&usec);
	if (r <= 0)
		return r;
	wd = calloc(1, sizeof(*wd));
	if (!wd)
		return -ENOMEM;
	wd->loop = loop;
	wd->period_ms = usec / 2000; /* half the interval, in ms */
	if (wd->period_ms == 0)
		wd->period_ms = 1;
	sdnotify_send("WATCHDOG=1");
	r = loop_add_timer(loop, wd->period_ms, watchdog_fired, wd);
	if (r < 0) {
		free(wd);
		return r;
	}
	wd->timer = r;
	if (ret_period_ms)
		*ret_period_ms = wd->period_ms;
	*ret_wd = wd;
	return 1;
}

void sdnotify_watchdog_free(struct sdnotify_watchdog *wd)
{
	if (!wd)
		return;
	if (wd->timer)
		loop_cancel_timer(wd->loop, wd->timer);
	free(wd);
}
