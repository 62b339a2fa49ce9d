/*
 * Unit tests of common/loop.c (written by the lead; tested here): timers
 * fire in due order and never early, cancel (also of a fired id whose slot
 * was reused), timers added from callbacks, fd readiness through a pipe,
 * loop_mod_fd/loop_del_fd, a waker signalled from another thread (the
 * callback must run on the loop thread), signal delivery via raise(), and
 * loop_stop(). No test asserts an upper bound on time (no timing flakes);
 * a watchdog timer stops a hung loop and fails the test instead.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define WATCHDOG_MS 10000

struct rec {
	struct loop *loop;
	int order[16];
	uint64_t at[16];
	int n;
	int stop_after;		/* loop_stop() once n reaches this (0: never) */
	int watchdog_fired;
};

struct tag {
	struct rec *rec;
	int id;
};

static void on_timer(void *arg)
{
	struct tag *t = arg;
	struct rec *r = t->rec;

	if (r->n < 16) {
		r->order[r->n] = t->id;
		r->at[r->n] = loop_now_ms();
	}
	r->n++;
	if (r->stop_after && r->n == r->stop_after)
		loop_stop(r->loop);
}

static void on_watchdog(void *arg)
{
	struct rec *r = arg;

	r->watchdog_fired = 1;
	loop_stop(r->loop);
}

/* A loop with a watchdog; returns the watchdog's timer id. */
static int new_loop(struct rec *r)
{
	int id;

	memset(r, 0, sizeof(*r));
	assert_int_equal(loop_new(&r->loop), 0);
	id = loop_add_timer(r->loop, WATCHDOG_MS, on_watchdog, r);
	assert_true(id > 0);
	return id;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void test_timers_fire_in_order(void **state)
{
	static const uint64_t delays[] = { 40, 10, 30, 0, 20 };
	struct tag tags[5];
	struct rec r;
	uint64_t start;

	new_loop(&r);
	r.stop_after = 5;
	start = loop_now_ms();
	for (int i = 0; i < 5; i++) {
		tags[i] = (struct tag){ &r, (int)delays[i] };
		assert_true(loop_add_timer(r.loop, delays[i], on_timer, &tags[i]) > 0);
	}
	assert_int_equal(loop_run(r.loop), 0);
	assert_false(r.watchdog_fired);
	assert_int_equal(r.n, 5);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(r.order[i], i * 10);
		assert_true(r.at[i] >= start + (uint64_t)r.order[i]);	/* never early */
	}
	loop_free(r.loop);
}

static void test_overdue_timers_fire_in_due_order(void **state)
{
	/* All due before the loop looks: they must still run earliest first. */
	static const uint64_t delays[] = { 30, 10, 20 };
	struct tag tags[3];
	struct rec r;

	new_loop(&r);
	r.stop_after = 3;
	for (int i = 0; i < 3; i++) {
		tags[i] = (struct tag){ &r, (int)delays[i] };
		assert_true(loop_add_timer(r.loop, delays[i], on_timer, &tags[i]) > 0);
	}
	sleep_ms(60);
	assert_int_equal(loop_run(r.loop), 0);
	assert_int_equal(r.n, 3);
	print_message("  order: %d %d %d\n", r.order[0], r.order[1], r.order[2]);
	assert_int_equal(r.order[0], 10);
	assert_int_equal(r.order[1], 20);
	assert_int_equal(r.order[2], 30);
	loop_free(r.loop);
}

static void test_cancel(void **state)
{
	struct tag a, b, c;
	struct rec r;
	int ida, idc;

	new_loop(&r);
	a = (struct tag){ &r, 1 };
	b = (struct tag){ &r, 2 };
	c = (struct tag){ &r, 3 };
	ida = loop_add_timer(r.loop, 5, on_timer, &a);
	assert_true(ida > 0);
	assert_true(loop_add_timer(r.loop, 20, on_timer, &b) > 0);
	loop_cancel_timer(r.loop, ida);
	loop_cancel_timer(r.loop, 0);		/* ignored */
	loop_cancel_timer(r.loop, -1);		/* ignored */
	loop_cancel_timer(r.loop, 123456);	/* unknown: ignored */
	r.stop_after = 1;
	assert_int_equal(loop_run(r.loop), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.order[0], 2);	/* a never ran */

	/* b fired; its slot is free. c may reuse it: cancelling b's id must not hit c. */
	ida = loop_add_timer(r.loop, 0, on_timer, &a);
	r.stop_after = 2;
	assert_int_equal(loop_run(r.loop), 0);
	idc = loop_add_timer(r.loop, 5, on_timer, &c);
	assert_true(idc > 0 && idc != ida);
	loop_cancel_timer(r.loop, ida);		/* fired already: ignored */
	r.stop_after = 3;
	assert_int_equal(loop_run(r.loop), 0);
	assert_false(r.watchdog_fired);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.order[2], 3);
	loop_free(r.loop);
}

struct chain {
	struct rec *rec;
	struct tag idle;	/* target of the far-away filler timers */
	int left;
};

static void on_chain(void *arg)
{
	struct chain *ch = arg;

	ch->rec->n++;
	if (--ch->left == 0) {
		loop_stop(ch->rec->loop);
		return;
	}
	/* add timers from inside a callback: the timer array grows and moves */
	assert_true(loop_add_timer(ch->rec->loop, 100000, on_timer, &ch->idle) > 0);
	assert_true(loop_add_timer(ch->rec->loop, 100000, on_timer, &ch->idle) > 0);
	assert_true(loop_add_timer(ch->rec->loop, 1, on_chain, ch) > 0);
}

static void test_timer_added_from_callback(void **state)
{
	struct rec r, idle = { 0 };
	struct chain ch;

	new_loop(&r);
	ch = (struct chain){ &r, { &idle, 99 }, 5 };
	assert_true(loop_add_timer(r.loop, 0, on_chain, &ch) > 0);
	assert_int_equal(loop_run(r.loop), 0);
	assert_false(r.watchdog_fired);
	assert_int_equal(r.n, 5);
	assert_int_equal(idle.n, 0);
	loop_free(r.loop);
}

struct pipe_state {
	struct loop *loop;
	int fds[2];
	int reads;
	short revents;
	char got;
	int writes;
};

static void on_readable(int fd, short revents, void *arg)
{
	struct pipe_state *p = arg;

	p->revents = revents;
	assert_int_equal(fd, p->fds[0]);
	assert_int_equal(read(fd, &p->got, 1), 1);
	p->reads++;
	loop_del_fd(p->loop, fd);	/* safe from inside its own callback */
	loop_stop(p->loop);
}

static void write_byte(void *arg)
{
	struct pipe_state *p = arg;

	assert_int_equal(write(p->fds[1], "k", 1), 1);
}

static void on_writable(int fd, short revents, void *arg)
{
	struct pipe_state *p = arg;

	assert_true(revents & POLLOUT);
	p->writes++;
	assert_int_equal(loop_mod_fd(p->loop, fd, 0), 0);	/* no more events */
	loop_stop(p->loop);
}

static void test_fd_readiness(void **state)
{
	struct pipe_state p = { 0 };
	struct rec r;

	new_loop(&r);
	p.loop = r.loop;
	assert_int_equal(pipe2(p.fds, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_equal(loop_add_fd(r.loop, p.fds[0], POLLIN, on_readable, &p), 0);
	assert_int_equal(loop_add_fd(r.loop, p.fds[0], POLLIN, on_readable, &p), -EEXIST);
	assert_int_equal(loop_mod_fd(r.loop, 12345, POLLIN), -ENOENT);
	assert_true(loop_add_timer(r.loop, 10, write_byte, &p) > 0);
	assert_int_equal(loop_run(r.loop), 0);
	assert_false(r.watchdog_fired);
	assert_int_equal(p.reads, 1);
	assert_true(p.revents & POLLIN);
	assert_int_equal(p.got, 'k');

	/* deleted: a second byte must not reach on_readable */
	assert_int_equal(write(p.fds[1], "z", 1), 1);
	assert_int_equal(loop_add_fd(r.loop, p.fds[1], POLLOUT, on_writable, &p), 0);
	assert_int_equal(loop_run(r.loop), 0);
	assert_int_equal(p.writes, 1);
	assert_int_equal(p.reads, 1);
	loop_del_fd(r.loop, p.fds[1]);
	loop_del_fd(r.loop, 9999);	/* unknown: ignored */
	close(p.fds[0]);
	close(p.fds[1]);
	loop_free(r.loop);
}

struct wake_state {
	struct loop *loop;
	struct loop_waker *waker;
	pthread_t loop_thread;
	int calls;
	int on_loop_thread;
};

static void on_wake(void *arg)
{
	struct wake_state *w = arg;

	w->calls++;
	w->on_loop_thread = pthread_equal(pthread_self(), w->loop_thread);
	loop_stop(w->loop);
}

static void *waker_thread(void *arg)
{
	struct wake_state *w = arg;

	sleep_ms(20);
	for (int i = 0; i < 3; i++)
		loop_waker_signal(w->waker);	/* thread-safe, never blocks */
	return NULL;
}

static void test_waker_from_thread(void **state)
{
	struct wake_state w = { 0 };
	struct rec r;
	pthread_t th;

	if (getenv("PITSTOP_EMULATED")) {
		/* qemu-user 7.2 hangs in pthread_create here (any program). */
		print_message("  skipped under emulation: needs a second thread\n");
		skip();
	}
	new_loop(&r);
	w.loop = r.loop;
	w.loop_thread = pthread_self();
	assert_int_equal(loop_waker_new(r.loop, on_wake, &w, &w.waker), 0);
	assert_int_equal(pthread_create(&th, NULL, waker_thread, &w), 0);
	assert_int_equal(loop_run(r.loop), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_false(r.watchdog_fired);
	assert_int_equal(w.calls, 1);	/* three signals, one wake-up */
	assert_true(w.on_loop_thread);
	loop_waker_free(w.waker);
	loop_waker_free(NULL);
	loop_free(r.loop);
	loop_free(NULL);
}

struct sig_state {
	struct loop *loop;
	int signo;
	int calls;
};

static void on_signal(int signo, void *arg)
{
	struct sig_state *s = arg;

	s->signo = signo;
	s->calls++;
	loop_stop(s->loop);
}

static void raise_usr1(void *arg)
{
	assert_int_equal(raise(SIGUSR1), 0);
}

static void test_signal_delivery(void **state)
{
	struct sig_state s = { 0 };
	struct rec r;

	new_loop(&r);
	s.loop = r.loop;
	assert_int_equal(loop_watch_signal(r.loop, 0, on_signal, &s), -EINVAL);
	assert_int_equal(loop_watch_signal(r.loop, 65, on_signal, &s), -EINVAL);
	assert_int_equal(loop_watch_signal(r.loop, SIGUSR1, on_signal, &s), 0);
	assert_int_equal(loop_watch_signal(r.loop, SIGUSR2, on_signal, &s), 0);
	assert_true(loop_add_timer(r.loop, 5, raise_usr1, NULL) > 0);
	assert_int_equal(loop_run(r.loop), 0);
	assert_false(r.watchdog_fired);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.signo, SIGUSR1);	/* not SIGUSR2: only the raised one */
	loop_free(r.loop);
	signal(SIGUSR1, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
}

static void test_stop_ends_the_pass(void **state)
{
	struct tag a, b;
	struct rec r;

	new_loop(&r);
	a = (struct tag){ &r, 1 };
	b = (struct tag){ &r, 2 };
	assert_true(loop_add_timer(r.loop, 0, on_timer, &a) > 0);
	assert_true(loop_add_timer(r.loop, 0, on_timer, &b) > 0);
	sleep_ms(2);
	r.stop_after = 1;
	assert_int_equal(loop_run(r.loop), 0);
	assert_int_equal(r.n, 1);	/* the second due timer waits for the next run */
	r.stop_after = 2;
	assert_int_equal(loop_run(r.loop), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.order[0], 1);
	assert_int_equal(r.order[1], 2);
	loop_free(r.loop);
}

static void test_clocks(void **state)
{
	uint64_t a = loop_now_ms();
	int64_t w = loop_wall_ms();

	sleep_ms(5);
	assert_true(loop_now_ms() >= a + 5);
	assert_true(w > INT64_C(1600000000000));	/* after 2020: a real wall clock */
}

/* The calling thread's se.slice in ns from /proc (CONFIG_SCHED_DEBUG), or 0. */
static unsigned long long thread_slice_ns(void)
{
	char line[256];
	unsigned long long v = 0;
	FILE *f = fopen("/proc/thread-self/sched", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "se.slice", 8) == 0 && sscanf(strchr(line, ':') + 1, "%llu", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* Whether the running kernel is at least major.minor. */
static int kernel_at_least(int major, int minor)
{
	struct utsname u;
	int a = 0, b = 0;

	assert_int_equal(uname(&u), 0);
	assert_true(sscanf(u.release, "%d.%d", &a, &b) == 2);
	return a > major || (a == major && b >= minor);
}

static void *prefer_latency_thread(void *arg)
{
	int *nice_after = arg;

	assert_int_equal(setpriority(PRIO_PROCESS, 0, 5), 0); /* this thread only */
	assert_int_equal(loop_prefer_latency(), 0);
	errno = 0;
	*nice_after = getpriority(PRIO_PROCESS, 0);
	assert_int_equal(errno, 0);
	if (kernel_at_least(6, 12) && thread_slice_ns())
		assert_true(thread_slice_ns() == LOOP_LATENCY_SLICE_NS);
	else
		print_message("kernel without custom slices, or no /proc sched file: "
			      "the slice is not checked\n");
	return NULL;
}

/*
 * loop_prefer_latency() asks for the short slice (where the kernel shows
 * and honours it) without touching the thread's nice value.
 */
static void test_prefer_latency(void **state)
{
	pthread_t t;
	int nice_after = 0;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, prefer_latency_thread, &nice_after), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(nice_after, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_timers_fire_in_order),
		cmocka_unit_test(test_overdue_timers_fire_in_due_order),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_timer_added_from_callback),
		cmocka_unit_test(test_fd_readiness),
		cmocka_unit_test(test_waker_from_thread),
		cmocka_unit_test(test_signal_delivery),
		cmocka_unit_test(test_stop_ends_the_pass),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_prefer_latency),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
