/*
 * The event loop each daemon runs on its main thread: one poll() over file
 * descriptors plus one-shot timers, chrony/Redis style. Everything that owns
 * state (SQLite, counters, rules) runs from these callbacks, so it needs no
 * locks. Other threads (Paho's) hand work over with loop_waker_*.
 *
 * Signals: loop_watch_signal() installs a handler that only records the
 * signal and writes one byte to a self-pipe; the callback then runs on the
 * loop thread like any other event.
 */
#ifndef PITSTOP_LOOP_H
#define PITSTOP_LOOP_H

#include <stdint.h>

struct loop;

/* events/revents use poll()'s POLLIN/POLLOUT/POLLERR/POLLHUP bits. */
typedef void (*loop_fd_fn)(int fd, short revents, void *arg);
typedef void (*loop_timer_fn)(void *arg);
typedef void (*loop_signal_fn)(int signo, void *arg);

/* Creates a loop. Returns 0 and *ret_loop, or -errno. */
int loop_new(struct loop **ret_loop);

/* Frees the loop (not the fds it watched). Accepts NULL. */
void loop_free(struct loop *loop);

/* Watches fd for events. One watch per fd. Returns 0, -EEXIST or -ENOMEM. */
int loop_add_fd(struct loop *loop, int fd, short events, loop_fd_fn fn, void *arg);

/* Changes the events of a watched fd. Returns 0 or -ENOENT. */
int loop_mod_fd(struct loop *loop, int fd, short events);

/* Stops watching fd; safe from inside that fd's callback. */
void loop_del_fd(struct loop *loop, int fd);

/*
 * Calls fn(arg) once, delay_ms from now (monotonic clock). Returns a timer id
 * (> 0) for loop_cancel_timer(), or -ENOMEM.
 */
int loop_add_timer(struct loop *loop, uint64_t delay_ms, loop_timer_fn fn, void *arg);

/* Cancels a pending timer; unknown or fired ids are ignored. */
void loop_cancel_timer(struct loop *loop, int id);

/* Runs fn(signo) on the loop thread when signo arrives. Returns 0 or -errno. */
int loop_watch_signal(struct loop *loop, int signo, loop_signal_fn fn, void *arg);

/* Runs until loop_stop(). Returns 0, or -errno if poll() fails. */
int loop_run(struct loop *loop);

/* Makes loop_run() return after the current callback. Loop thread only. */
void loop_stop(struct loop *loop);

/* Monotonic milliseconds. */
uint64_t loop_now_ms(void);

/* Monotonic microseconds (the same clock); any thread. */
uint64_t loop_now_us(void);

/* Wall-clock unix milliseconds. */
int64_t loop_wall_ms(void);

/*
 * A waker lets another thread wake the loop: loop_waker_new() creates an
 * eventfd watched by the loop that calls fn(arg) on the loop thread after one
 * or more loop_waker_signal() calls (which are thread-safe and never block).
 */
struct loop_waker;
int loop_waker_new(struct loop *loop, loop_timer_fn fn, void *arg, struct loop_waker **ret_waker);
void loop_waker_signal(struct loop_waker *waker);
void loop_waker_free(struct loop_waker *waker);

/* The time slice loop_prefer_latency() asks for (the kernel's least). */
#define LOOP_LATENCY_SLICE_NS 100000ULL

/*
 * Asks the scheduler to run the calling thread promptly when it wakes, for
 * the threads a car's answer waits on (the gateway's loop and its signing
 * thread; docs/performance.md, "Offer latency"): SCHED_OTHER at its nice
 * value, with a time slice of LOOP_LATENCY_SLICE_NS instead of the default
 * (0.7-1.4 ms). Linux's EEVDF scheduler (6.12 and later) lets a thread with
 * a shorter slice preempt one with a longer slice when it wakes; older
 * kernels accept the request and ignore the slice. No privilege is needed
 * and the share of CPU time does not change. Threads the caller creates
 * afterwards inherit it. Returns 0 or -errno.
 */
int loop_prefer_latency(void);

#endif
