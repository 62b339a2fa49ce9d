/*
 * Scheduled jobs: work a gateway does every so often rather than per
 * message (expiring offers today; reminders, reports and retention later).
 * With several instances on one database each job must run once per
 * period, not once per instance, so before every run the scheduler takes
 * the job's lease (lease.h) for the period; an instance that does not get
 * it skips that run. A lease outlives its holder by at most two periods, so
 * when the instance running a job dies another takes over.
 *
 * Jobs run on the loop thread, each in its own transaction (a job that
 * fails is rolled back and logged; it runs again next period), and never
 * while ingest has a transaction open: the scheduler asks first.
 */
#ifndef PITSTOP_JOBS_H
#define PITSTOP_JOBS_H

#include <stdint.h>

#include "db.h"

struct loop;
struct jobs;

/* The most jobs one scheduler holds. */
#define JOBS_MAX 16

/*
 * A job's work, inside the transaction the scheduler opened. Returns the
 * number of things it changed (logged at debug) or a negative error class
 * (the transaction is rolled back).
 */
typedef int (*jobs_fn)(struct db *db, int64_t now_ms, void *arg);

/*
 * Says whether the database is free for a job now (no ingest transaction
 * open); NULL means always.
 */
typedef int (*jobs_idle_fn)(void *arg);

/*
 * Creates a scheduler on loop and db (both borrowed) for instance `holder`
 * (copied: the lease holder's name, the instance id). Returns 0 and *ret, or
 * -ENOMEM.
 */
int jobs_new(struct loop *loop, struct db *db, const char *holder, jobs_idle_fn idle,
	     void *idle_arg, struct jobs **ret);

/* Cancels every timer and frees. Accepts NULL. */
void jobs_free(struct jobs *j);

/*
 * Adds job `name` (borrowed, a string literal) run every period_ms (> 0),
 * the first time after one period. Returns 0, -EINVAL, -ENOSPC (JOBS_MAX
 * reached) or the loop's error.
 */
int jobs_add(struct jobs *j, const char *name, uint64_t period_ms, jobs_fn fn, void *arg);

/*
 * Told after a run of a job whether its transaction committed (1) or was
 * rolled back (0): a job that handed offers to ingest's sink has them
 * published, or dropped, here (ingest_job_done()).
 */
typedef void (*jobs_done_fn)(void *arg, int committed);

/* Sets job `name`'s done hook (NULL: none). Returns 0 or -ENOENT. */
int jobs_set_done(struct jobs *j, const char *name, jobs_done_fn done, void *arg);

/*
 * Runs job `name` now if this instance can take its lease, as its timer
 * would. Returns 1 when it ran, 0 when another instance holds the lease or
 * the database is busy, or a negative error class. (Tests, and the timer.)
 */
int jobs_run_now(struct jobs *j, const char *name);

#endif
