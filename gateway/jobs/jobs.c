/*
 * The scheduler; see jobs.h. One loop timer per job, re-armed after each
 * run; the lease is taken in the job's own transaction, so "I hold it" and
 * "I did the work" commit together.
 */
#include "jobs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lease.h"
#include "log.h"
#include "loop.h"

struct job {
	const char *name; /* borrowed literal */
	uint64_t period_ms;
	jobs_fn fn;
	void *arg;
	jobs_done_fn done; /* NULL: none */
	void *done_arg;
	int timer; /* loop timer id, 0 none */
	struct jobs *owner;
};

struct jobs {
	struct loop *loop; /* borrowed */
	struct db *db;	   /* borrowed */
	char *holder;	   /* owned */
	jobs_idle_fn idle;
	void *idle_arg;
	struct job job[JOBS_MAX];
	int n;
};

int jobs_new(struct loop *loop, struct db *db, const char *holder, jobs_idle_fn idle,
	     void *idle_arg, struct jobs **ret)
{
	struct jobs *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->holder = strdup(holder);
	if (!j->holder) {
		free(j);
		return -ENOMEM;
	}
	j->loop = loop;
	j->db = db;
	j->idle = idle;
	j->idle_arg = idle_arg;
	*ret = j;
	return 0;
}

void jobs_free(struct jobs *j)
{
	if (!j)
		return;
	for (int i = 0; i < j->n; i++)
		if (j->job[i].timer)
			loop_cancel_timer(j->loop, j->job[i].timer);
	free(j->holder);
	free(j);
}

/* Runs one job under its lease. Returns 1 ran, 0 skipped, or an error class. */
static int run(struct jobs *j, struct job *jb)
{
	int64_t now = loop_wall_ms();
	int r;

	if (j->idle && !j->idle(j->idle_arg))
		return 0;
	r = db_begin(j->db);
	if (r < 0)
		return r;
	r = lease_acquire(j->db, jb->name, j->holder, now, (int64_t)jb->period_ms * 2);
	if (r == 1) {
		r = jb->fn(j->db, now, jb->arg);
		if (r > 0)
			log_debug("jobs: %s changed %d rows", jb->name, r);
		if (r >= 0)
			r = 1;
	}
	if (r >= 0) {
		int c = db_commit(j->db);

		if (c < 0)
			r = c;
	} else {
		db_rollback(j->db);
	}
	if (jb->done)
		jb->done(jb->done_arg, r >= 0);
	if (r < 0)
		log_warn("jobs: %s failed (%s); it runs again in %llu s", jb->name, strerror(-r),
			 (unsigned long long)(jb->period_ms / 1000));
	return r;
}

static void fired(void *arg)
{
	struct job *jb = arg;
	int r;

	jb->timer = 0;
	run(jb->owner, jb);
	r = loop_add_timer(jb->owner->loop, jb->period_ms, fired, jb);
	jb->timer = r > 0 ? r : 0;
}

int jobs_add(struct jobs *j, const char *name, uint64_t period_ms, jobs_fn fn, void *arg)
{
	struct job *jb;
	int r;

	if (!name || !fn || period_ms == 0)
		return -EINVAL;
	if (j->n == JOBS_MAX)
		return -ENOSPC;
	jb = &j->job[j->n];
	memset(jb, 0, sizeof(*jb));
	jb->name = name;
	jb->period_ms = period_ms;
	jb->fn = fn;
	jb->arg = arg;
	jb->owner = j;
	r = loop_add_timer(j->loop, period_ms, fired, jb);
	if (r < 0)
		return r;
	jb->timer = r;
	j->n++;
	return 0;
}

int jobs_set_done(struct jobs *j, const char *name, jobs_done_fn done, void *arg)
{
	for (int i = 0; i < j->n; i++)
		if (strcmp(j->job[i].name, name) == 0) {
			j->job[i].done = done;
			j->job[i].done_arg = arg;
			return 0;
		}
	return -ENOENT;
}

int jobs_run_now(struct jobs *j, const char *name)
{
	for (int i = 0; i < j->n; i++)
		if (strcmp(j->job[i].name, name) == 0)
			return run(j, &j->job[i]);
	return -ENOENT;
}
