/*
 * Counters; see counters.h. The statements are prepared per call: saving
 * runs once a second and with each ingest commit (a few per second), which
 * prepare costs nothing next to.
 */
#include "counters.h"

#include "grow.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reject_names[REJECT_COUNT] = {
#define X(e, name) [REJECT_##e] = #name,
	COUNTERS_REJECTS(X)
#undef X
};

const char *counters_reject_name(enum reject r)
{
	return (unsigned)r < REJECT_COUNT ? reject_names[r] : NULL;
}

void counters_each(const struct counters *c,
		   void (*fn)(const char *name, uint64_t value, void *arg), void *arg)
{
#define X(field, help) fn(#field, c->field, arg);
	COUNTERS_PLAIN(X)
#undef X
#define X(e, name) fn("rejected." #name, c->rejected[REJECT_##e], arg);
	COUNTERS_REJECTS(X)
#undef X
#define X(e, name, what) fn("implausible." #name, c->implausible[TELEMETRY_IMPL_##e], arg);
	TELEMETRY_IMPLAUSIBLE(X)
#undef X
}

void counters_add(struct counters *sum, const struct counters *c)
{
#define X(field, help) sum->field += c->field;
	COUNTERS_PLAIN(X)
#undef X
	for (int i = 0; i < REJECT_COUNT; i++)
		sum->rejected[i] += c->rejected[i];
	for (int i = 0; i < TELEMETRY_IMPL_COUNT; i++)
		sum->implausible[i] += c->implausible[i];
}

/* The field of c stored as name, or NULL for a name we do not know. */
static uint64_t *slot(struct counters *c, const char *name)
{
#define X(field, help)                 \
	if (strcmp(name, #field) == 0) \
		return &c->field;
	COUNTERS_PLAIN(X)
#undef X
#define X(e, nm)                                \
	if (strcmp(name, "rejected." #nm) == 0) \
		return &c->rejected[REJECT_##e];
	COUNTERS_REJECTS(X)
#undef X
#define X(e, nm, what)                             \
	if (strcmp(name, "implausible." #nm) == 0) \
		return &c->implausible[TELEMETRY_IMPL_##e];
	TELEMETRY_IMPLAUSIBLE(X)
#undef X
	return NULL; /* written by a newer gateway: ignored */
}

/* Every counter's (instance, name, value, updated_ms), as the rows of one upsert. */
static const struct db_rows save_rows = {
	.head = "INSERT INTO counters(instance, name, value, updated_ms) VALUES",
	.tail = "ON CONFLICT(instance, name) DO UPDATE"
		" SET value = excluded.value, updated_ms = excluded.updated_ms",
	.first = 1,
	.ncols = 4,
};

struct save_ctx {
	struct db_stmt *st;
	const char *id;
	int64_t now_ms;
	int k; /* counters bound so far */
};

static void count_one(const char *name, uint64_t value, void *arg)
{
	(void)name;
	(void)value;
	(*(int *)arg)++;
}

static void bind_one(const char *name, uint64_t value, void *arg)
{
	struct save_ctx *x = arg;
	int o = 4 * x->k++;

	db_bind_text(x->st, o + 1, x->id);
	db_bind_text(x->st, o + 2, name);
	db_bind_int64(x->st, o + 3, (int64_t)value);
	db_bind_int64(x->st, o + 4, x->now_ms);
}

/*
 * One statement for all counters (it runs with every ingest commit: on
 * PostgreSQL a statement per counter was two dozen round trips a commit),
 * prepared once per cache: parsing its ~100 parameters at every commit was
 * a quarter of the loop's time at 1,000 batches/s (perf, issue 11).
 */
int counters_save_cached(struct db *db, struct db_stmt **cache, const char *id,
			 const struct counters *c, int64_t now_ms)
{
	struct save_ctx x = { .id = id, .now_ms = now_ms };

	if (!*cache) {
		int n = 0, r;
		char *sql;

		counters_each(c, count_one, &n);
		sql = db_rows_sql(&save_rows, n);
		if (!sql)
			return -ENOMEM;
		r = db_prepare(db, sql, cache);
		free(sql);
		if (r < 0)
			return r;
	}
	x.st = *cache;
	counters_each(c, bind_one, &x);
	return db_run(x.st);
}

int counters_save(struct db *db, const char *id, const struct counters *c, int64_t now_ms)
{
	struct db_stmt *st = NULL;
	int r = counters_save_cached(db, &st, id, c, now_ms);

	db_finalize(st);
	return r;
}

int counters_load(struct db *db, const char *id, struct counters *ret_c)
{
	struct db_stmt *st = NULL;
	struct counters c;
	int r = db_prepare(db, "SELECT name, value FROM counters WHERE instance = $1", &st);

	if (r < 0)
		return r;
	memset(&c, 0, sizeof(c));
	db_bind_text(st, 1, id);
	while ((r = db_step(st)) == 1) {
		const char *name = db_column_text(st, 0);
		uint64_t *p = name ? slot(&c, name) : NULL;

		if (p)
			*p = (uint64_t)db_column_int64(st, 1);
	}
	db_finalize(st);
	if (r == 0)
		*ret_c = c;
	return r;
}

int counters_list(struct db *db, struct counters_instance **ret_rows, size_t *ret_n, int *ret_more)
{
	struct counters_instance *rows = NULL, *cur = NULL;
	struct db_stmt *st = NULL;
	size_t n = 0, cap = 0;
	int r = db_prepare(db,
			   "SELECT instance, name, value, updated_ms FROM counters"
			   " ORDER BY instance",
			   &st);

	if (r < 0)
		return r;
	*ret_more = 0;
	while ((r = db_step(st)) == 1) {
		const char *inst = db_column_text(st, 0), *name = db_column_text(st, 1);
		int64_t updated = db_column_int64(st, 3);
		uint64_t *p;

		if (!inst || !name)
			continue;
		if (!cur || strcmp(cur->id, inst) != 0) {
			if (n == COUNTERS_INSTANCES_MAX) {
				*ret_more = 1;
				break;
			}
			r = grow_for((void **)&rows, &cap, n, sizeof(*rows), 4,
				     COUNTERS_INSTANCES_MAX);
			if (r < 0)
				break;
			cur = &rows[n++];
			memset(cur, 0, sizeof(*cur));
			snprintf(cur->id, sizeof(cur->id), "%s", inst);
		}
		if (updated > cur->updated_at_ms)
			cur->updated_at_ms = updated;
		p = slot(&cur->c, name);
		if (p)
			*p = (uint64_t)db_column_int64(st, 2);
	}
	db_finalize(st);
	if (r < 0) {
		free(rows);
		return r;
	}
	*ret_rows = rows;
	*ret_n = n;
	return 0;
}
