/*
 * poll()-based event loop; see loop.h. Sizes are small (a handful of fds and
 * timers per daemon), so fds live in a growable array and timers in an
 * unsorted array scanned once per iteration.
 */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_SIGNAL 65

struct loop_fd {
	int fd;
	short events;
	loop_fd_fn fn;
	void *arg;
};

struct loop_timer {
	int id; /* 0 = free slot */
	uint64_t due_ms;
	loop_timer_fn fn;
	void *arg;
};

struct loop_sig {
	loop_signal_fn fn;
	void *arg;
};

struct loop {
	struct loop_fd *fds; /* owned */
	size_t nfds, capfds;
	struct loop_timer *timers; /* owned */
	size_t ntimers;		   /* slots in use or free */
	int next_timer_id;
	int stop;
	int sigpipe[2]; /* self-pipe for signals; -1 until needed */
	struct loop_sig sigs[LOOP_MAX_SIGNAL];
};

struct loop_waker {
	struct loop *loop; /* borrowed */
	int efd;
	loop_timer_fn fn;
	void *arg;
};

/* The loop that signal handlers write to; one per process. */
static struct loop *signal_loop;
static volatile sig_atomic_t signal_pending[LOOP_MAX_SIGNAL];

uint64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t loop_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t loop_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int loop_new(struct loop **ret_loop)
{
	struct loop *loop = calloc(1, sizeof(*loop));

	if (!loop)
		return -ENOMEM;
	loop->sigpipe[0] = loop->sigpipe[1] = -1;
	loop->next_timer_id = 1;
	*ret_loop = loop;
	return 0;
}

void loop_free(struct loop *loop)
{
	if (!loop)
		return;
	if (signal_loop == loop)
		signal_loop = NULL;
	if (loop->sigpipe[0] >= 0) {
		close(loop->sigpipe[0]);
		close(loop->sigpipe[1]);
	}
	free(loop->fds);
	free(loop->timers);
	free(loop);
}

static struct loop_fd *loop_find_fd(struct loop *loop, int fd)
{
	for (size_t i = 0; i < loop->nfds; i++)
		if (loop->fds[i].fd == fd)
			return &loop->fds[i];
	return NULL;
}

int loop_add_fd(struct loop *loop, int fd, short events, loop_fd_fn fn, void *arg)
{
	if (loop_find_fd(loop, fd))
		return -EEXIST;
	if (loop->nfds == loop->capfds) {
		size_t cap = loop->capfds ? loop->capfds * 2 : 8;
		struct loop_fd *n = realloc(loop->fds, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		loop->fds = n;
		loop->capfds = cap;
	}
	loop->fds[loop->nfds++] = (struct loop_fd){ fd, events, fn, arg };
	return 0;
}

int loop_mod_fd(struct loop *loop, int fd, short events)
{
	struct loop_fd *f = loop_find_fd(loop, fd);

	if (!f)
		return -ENOENT;
	f->events = events;
	return 0;
}

void loop_del_fd(struct loop *loop, int fd)
{
	struct loop_fd *f = loop_find_fd(loop, fd);

	/* Mark, do not move: loop_run() may be iterating the array. */
	if (f)
		f->fd = -1;
}

int loop_add_timer(struct loop *loop, uint64_t delay_ms, loop_timer_fn fn, void *arg)
{
	struct loop_timer *t = NULL;

	for (size_t i = 0; i < loop->ntimers; i++) {
		if (loop->timers[i].id == 0) {
			t = &loop->timers[i];
			break;
		}
	}
	if (!t) {
		struct loop_timer *n = realloc(loop->timers, (loop->ntimers + 1) * sizeof(*n));

		if (!n)
			return -ENOMEM;
		loop->timers = n;
		t = &loop->timers[loop->ntimers++];
	}
	if (loop->next_timer_id <= 0)
		loop->next_timer_id = 1;
	*t = (struct loop_timer){ loop->next_timer_id++, loop_now_ms() + delay_ms, fn, arg };
	return t->id;
}

void loop_cancel_timer(struct loop *loop, int id)
{
	if (id <= 0)
		return;
	for (size_t i = 0; i < loop->ntimers; i++)
		if (loop->timers[i].id == id)
			loop->timers[i].id = 0;
}

static void signal_handler(int signo)
{
	int saved = errno;

	if (signo > 0 && signo < LOOP_MAX_SIGNAL)
		signal_pending[signo] = 1;
	if (signal_loop && signal_loop->sigpipe[1] >= 0) {
		char c = 0;

		if (write(signal_loop->sigpipe[1], &c, 1) < 0) {
			/* Pipe full: a wake-up is already pending. */
		}
	}
	errno = saved;
}

static void loop_signal_ready(int fd, short revents, void *arg)
{
	struct loop *loop = arg;
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	for (int s = 1; s < LOOP_MAX_SIGNAL; s++) {
		if (signal_pending[s]) {
			signal_pending[s] = 0;
			if (loop->sigs[s].fn)
				loop->sigs[s].fn(s, loop->sigs[s].arg);
		}
	}
}

int loop_watch_signal(struct loop *loop, int signo, loop_signal_fn fn, void *arg)
{
	struct sigaction sa;
	int r;

	if (signo <= 0 || signo >= LOOP_MAX_SIGNAL)
		return -EINVAL;
	if (loop->sigpipe[0] < 0) {
		if (pipe2(loop->sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
			return -errno;
		r = loop_add_fd(loop, loop->sigpipe[0], POLLIN, loop_signal_ready, loop);
		if (r < 0)
			return r;
		signal_loop = loop;
	}
	loop->sigs[signo] = (struct loop_sig){ fn, arg };
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = signal_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(signo, &sa, NULL) < 0)
		return -errno;
	return 0;
}

void loop_stop(struct loop *loop)
{
	loop->stop = 1;
}

/*
 * Runs due timers, earliest due first (ties: oldest id first), so a slow
 * callback that makes several timers overdue does not reorder them. Returns
 * the poll() timeout until the next one, or -1 when none is pending.
 */
static int loop_run_timers(struct loop *loop)
{
	uint64_t now = loop_now_ms();
	uint64_t next = UINT64_MAX;
	int first_new_id = loop->next_timer_id; /* timers added by callbacks wait a turn */

	while (!loop->stop) {
		struct loop_timer *due = NULL;
		loop_timer_fn fn;
		void *arg;

		for (size_t i = 0; i < loop->ntimers; i++) {
			struct loop_timer *t = &loop->timers[i];

			if (t->id && t->id < first_new_id && t->due_ms <= now &&
			    (!due || t->due_ms < due->due_ms ||
			     (t->due_ms == due->due_ms && t->id < due->id)))
				due = t;
		}
		if (!due)
			break;
		fn = due->fn;
		arg = due->arg;
		due->id = 0;
		fn(arg); /* may add timers: loop->timers may move */
	}
	for (size_t i = 0; i < loop->ntimers; i++)
		if (loop->timers[i].id && loop->timers[i].due_ms < next)
			next = loop->timers[i].due_ms;
	if (next == UINT64_MAX)
		return -1;
	now = loop_now_ms();
	return next <= now ? 0 : (int)(next - now > 60000 ? 60000 : next - now);
}

int loop_run(struct loop *loop)
{
	struct pollfd *pfds = NULL;
	size_t cap = 0;
	int r = 0;

	loop->stop = 0;
	while (!loop->stop) {
		int timeout = loop_run_timers(loop);
		size_t n = 0;

		if (loop->stop)
			break;
		/* Compact deleted entries, then build the poll set. */
		for (size_t i = 0; i < loop->nfds; i++)
			if (loop->fds[i].fd >= 0)
				loop->fds[n++] = loop->fds[i];
		loop->nfds = n;
		if (cap < n) {
			struct pollfd *p = realloc(pfds, n * sizeof(*p));

			if (!p) {
				r = -ENOMEM;
				break;
			}
			pfds = p;
			cap = n;
		}
		for (size_t i = 0; i < n; i++)
			pfds[i] = (struct pollfd){ loop->fds[i].fd, loop->fds[i].events, 0 };
		if (poll(pfds, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		for (size_t i = 0; i < n && !loop->stop; i++) {
			struct loop_fd *f;

			if (!pfds[i].revents)
				continue;
			f = loop_find_fd(loop, pfds[i].fd);
			if (f)
				f->fn(f->fd, pfds[i].revents, f->arg);
		}
	}
	free(pfds);
	return r;
}

static void loop_waker_ready(int fd, short revents, void *arg)
{
	struct loop_waker *w = arg;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: spurious wake-up; run the callback anyway. */
	}
	w->fn(w->arg);
}

int loop_waker_new(struct loop *loop, loop_timer_fn fn, void *arg, struct loop_waker **ret_waker)
{
	struct loop_waker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->efd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	w->loop = loop;
	w->fn = fn;
	w->arg = arg;
	r = loop_add_fd(loop, w->efd, POLLIN, loop_waker_ready, w);
	if (r < 0) {
		close(w->efd);
		free(w);
		return r;
	}
	*ret_waker = w;
	return 0;
}

void loop_waker_signal(struct loop_waker *w)
{
	uint64_t one = 1;

	if (write(w->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: counter saturated, the loop is already due to wake. */
	}
}

void loop_waker_free(struct loop_waker *w)
{
	if (!w)
		return;
	loop_del_fd(w->loop, w->efd);
	close(w->efd);
	free(w);
}

/* sched_setattr(2)'s argument (glibc 2.36 has neither it nor a wrapper). */
struct loop_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime; /* SCHED_OTHER: the requested slice, ns */
	uint64_t sched_deadline;
	uint64_t sched_period;
};

int loop_prefer_latency(void)
{
	struct loop_sched_attr a;

	memset(&a, 0, sizeof(a));
	a.size = sizeof(a);
	a.sched_policy = SCHED_OTHER;
	errno = 0;
	a.sched_nice = getpriority(PRIO_PROCESS, 0); /* the thread's own; keep it */
	if (errno)
		return -errno;
	a.sched_runtime = LOOP_LATENCY_SLICE_NS;
	if (syscall(SYS_sched_setattr, 0, &a, 0) < 0)
		return -errno;
	return 0;
}
