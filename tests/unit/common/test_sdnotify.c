/*
 * Unit tests of common/sdnotify.c against a real AF_UNIX datagram socket
 * (what systemd listens on): no $NOTIFY_SOCKET is a no-op, path and abstract
 * names reach the socket, STATUS= is sent only when it changed,
 * $WATCHDOG_USEC/$WATCHDOG_PID are honoured as sd_watchdog_enabled(3) says,
 * and the loop-driven watchdog keeps sending WATCHDOG=1 while the loop runs.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"
#include "sdnotify.h"

struct sink {
	int fd;
	char path[108]; /* the NOTIFY_SOCKET value */
	char dir[64];
};

/* Binds a datagram socket (abstract when abstract is set) and exports it. */
static void sink_open(struct sink *k, int abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;

	memset(k, 0, sizeof(*k));
	k->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(k->fd >= 0);
	if (abstract) {
		snprintf(k->path, sizeof(k->path), "@pitstop-sdnotify-test-%d", (int)getpid());
	} else {
		snprintf(k->dir, sizeof(k->dir), "/tmp/pitstop-sdnotify-XXXXXX");
		assert_non_null(mkdtemp(k->dir));
		snprintf(k->path, sizeof(k->path), "%s/notify", k->dir);
	}
	memcpy(sa.sun_path, k->path, strlen(k->path));
	if (abstract)
		sa.sun_path[0] = '\0';
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(k->path));
	assert_int_equal(bind(k->fd, (struct sockaddr *)&sa, len), 0);
	setenv("NOTIFY_SOCKET", k->path, 1);
}

static void sink_close(struct sink *k)
{
	close(k->fd);
	if (k->dir[0]) {
		unlink(k->path);
		rmdir(k->dir);
	}
	unsetenv("NOTIFY_SOCKET");
}

/* The next datagram into buf ("" when none is waiting). */
static void sink_read(struct sink *k, char *buf, size_t len)
{
	ssize_t n = recv(k->fd, buf, len - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
}

static void test_no_socket_is_noop(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(sdnotify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_int_equal(sdnotify_send("READY=1"), -EINVAL);
	unsetenv("NOTIFY_SOCKET");
}

static void test_path_and_abstract(void **state)
{
	struct sink k;
	char buf[256];

	(void)state;
	for (int abstract = 0; abstract < 2; abstract++) {
		sink_open(&k, abstract);
		assert_int_equal(sdnotify_send("READY=1\nSTATUS=hello"), 1);
		sink_read(&k, buf, sizeof(buf));
		assert_string_equal(buf, "READY=1\nSTATUS=hello");
		sink_close(&k);
	}
}

static void test_status_only_when_changed(void **state)
{
	struct sink k;
	char buf[512], longer[400];

	(void)state;
	sink_open(&k, 0);
	assert_int_equal(sdnotify_status("connected"), 1);
	assert_int_equal(sdnotify_status("connected"), 0);
	assert_int_equal(sdnotify_status("offline"), 1);
	sink_read(&k, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=connected");
	sink_read(&k, buf, sizeof(buf));
	assert_string_equal(buf, "STATUS=offline");
	sink_read(&k, buf, sizeof(buf));
	assert_string_equal(buf, ""); /* the repeat was not sent */
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	assert_int_equal(sdnotify_status(longer), 1);
	sink_read(&k, buf, sizeof(buf));
	assert_int_equal(strlen(buf), strlen("STATUS=") + SDNOTIFY_STATUS_MAX - 1);
	assert_int_equal(sdnotify_status(longer), 0); /* same after the cut */
	sink_close(&k);
}

static void test_watchdog_env(void **state)
{
	uint64_t usec = 0;
	char pid[32];

	(void)state;
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	assert_int_equal(sdnotify_watchdog_usec(&usec), 0);
	setenv("WATCHDOG_USEC", "30000000", 1);
	assert_int_equal(sdnotify_watchdog_usec(&usec), 1);
	assert_int_equal(usec, 30000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	usec = 0;
	assert_int_equal(sdnotify_watchdog_usec(&usec), 1);
	assert_int_equal(usec, 30000000);
	snprintf(pid, sizeof(pid), "%d", (int)getpid() + 1);
	setenv("WATCHDOG_PID", pid, 1); /* another process's watchdog */
	assert_int_equal(sdnotify_watchdog_usec(&usec), 0);
	unsetenv("WATCHDOG_PID");
	for (size_t i = 0; i < 4; i++) {
		static const char *const bad[] = { "0", "-5", "12x", "lots" };

		setenv("WATCHDOG_USEC", bad[i], 1);
		assert_int_equal(sdnotify_watchdog_usec(&usec), -EINVAL);
	}
	setenv("WATCHDOG_USEC", "1000", 1);
	setenv("WATCHDOG_PID", "nope", 1);
	assert_int_equal(sdnotify_watchdog_usec(&usec), -EINVAL);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

struct pings {
	struct loop *loop;
	struct sink *sink;
	int n;
	int deadline_hit;
};

static void on_ping(int fd, short revents, void *arg)
{
	struct pings *p = arg;
	char buf[64];

	(void)fd;
	(void)revents;
	sink_read(p->sink, buf, sizeof(buf));
	if (strcmp(buf, "WATCHDOG=1") == 0 && ++p->n == 4)
		loop_stop(p->loop);
}

static void on_deadline(void *arg)
{
	struct pings *p = arg;

	p->deadline_hit = 1;
	loop_stop(p->loop);
}

static void test_watchdog_pings_from_loop(void **state)
{
	struct sdnotify_watchdog *wd = NULL;
	struct pings p = { 0 };
	struct sink k;
	uint64_t period = 0;

	(void)state;
	assert_int_equal(loop_new(&p.loop), 0);
	unsetenv("WATCHDOG_USEC");
	assert_int_equal(sdnotify_watchdog_start(p.loop, &wd, &period), 0);
	assert_null(wd);
	assert_int_equal(period, 0);

	sink_open(&k, 0);
	p.sink = &k;
	setenv("WATCHDOG_USEC", "40000", 1); /* 40 ms: a ping every 20 ms */
	assert_int_equal(sdnotify_watchdog_start(p.loop, &wd, &period), 1);
	assert_non_null(wd);
	assert_int_equal(period, 20);
	assert_int_equal(loop_add_fd(p.loop, k.fd, POLLIN, on_ping, &p), 0);
	/* Not a timing assertion: only a hang guard. */
	assert_true(loop_add_timer(p.loop, 20000, on_deadline, &p) > 0);
	assert_int_equal(loop_run(p.loop), 0);
	assert_false(p.deadline_hit);
	assert_int_equal(p.n, 4); /* one at start, then one per period */
	sdnotify_watchdog_free(wd);
	sdnotify_watchdog_free(NULL);
	loop_free(p.loop);
	sink_close(&k);
	unsetenv("WATCHDOG_USEC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_socket_is_noop),
		cmocka_unit_test(test_path_and_abstract),
		cmocka_unit_test(test_status_only_when_changed),
		cmocka_unit_test(test_watchdog_env),
		cmocka_unit_test(test_watchdog_pings_from_loop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
