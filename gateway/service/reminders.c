/*
 * Service reminders; see reminders.h. Per item: compute the stage, read the
 * stages already acted on in this cycle, claim the row, then build the
 * offer, hand it to the sink, record it and open the task, all in the
 * caller's transaction (a failure rolls every piece back together).
 */
#include "reminders.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "offers.h"

enum stmt_id {
	ST_STAGES,
	ST_CLAIM,
	ST_UNCLAIM,
	ST_TASK,
	ST_LINK,
	ST_TASKS,
	ST_COUNT,
};

/* clang-format off */
static const char *const stmt_sql[ST_COUNT] = {
	[ST_STAGES] =
		"SELECT stage FROM service_reminders WHERE vin = $1 AND item = $2 AND cycle_day = $3",
	/* A row comes back only to the run that created it. */
	[ST_CLAIM] =
		"INSERT INTO service_reminders(vin, item, cycle_day, stage, due_day, created_ms)"
		" VALUES($1, $2, $3, $4, $5, $6)"
		" ON CONFLICT(vin, item, cycle_day, stage) DO NOTHING RETURNING id",
	[ST_UNCLAIM] = "DELETE FROM service_reminders WHERE id = $1",
	[ST_TASK] =
		"INSERT INTO tasks(vin, kind, item, stage, due_day, created_ms, state)"
		" VALUES($1, 'service_call', $2, $3, $4, $5, 'open') RETURNING id",
	[ST_LINK] = "UPDATE service_reminders SET offer_id = $1, task_id = $2 WHERE id = $3",
	[ST_TASKS] =
		"SELECT id, vin, kind, item, stage, due_day, created_ms, state FROM tasks"
		" WHERE state = 'open' ORDER BY id",
};
/* clang-format on */

struct reminders {
	struct reminders_config conf;
	struct db *db;		      /* borrowed */
	struct telemetry *t;	      /* borrowed */
	struct offer_log *log;	      /* borrowed */
	struct db_stmt *st[ST_COUNT]; /* owned */
	rules_offer_fn sink;
	void *arg;
	struct service_prediction pred; /* scratch of a run */
};

static const char *const stage_names[] = {
	[REMINDER_NONE] = "none",
	[REMINDER_FIRST] = "first",
	[REMINDER_SECOND] = "second",
	[REMINDER_OVERDUE] = "overdue",
};

const char *reminders_stage_name(enum reminder_stage s)
{
	return (unsigned)s <= REMINDER_OVERDUE ? stage_names[s] : "none";
}

static enum reminder_stage stage_parse(const char *s)
{
	for (int i = REMINDER_FIRST; i <= REMINDER_OVERDUE; i++)
		if (s && strcmp(s, stage_names[i]) == 0)
			return (enum reminder_stage)i;
	return REMINDER_NONE;
}

int reminders_new(const struct reminders_config *conf, struct db *db, struct telemetry *t,
		  struct offer_log *log, rules_offer_fn sink, void *arg, struct reminders **ret)
{
	struct reminders *r;
	int ret_code;

	if (conf->first_days <= 0 || conf->first_km < 0 || conf->second_days < 0 ||
	    conf->second_days >= conf->first_days || conf->offers_per_day_max < 0 || !sink)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->conf = *conf;
	if (!*r->conf.dealer_name)
		snprintf(r->conf.dealer_name, sizeof(r->conf.dealer_name), "your dealer");
	r->db = db;
	r->t = t;
	r->log = log;
	r->sink = sink;
	r->arg = arg;
	ret_code = db_prepare_all(db, stmt_sql, ST_COUNT, r->st);
	if (ret_code < 0) {
		reminders_free(r);
		return ret_code;
	}
	*ret = r;
	return 0;
}

void reminders_free(struct reminders *r)
{
	if (!r)
		return;
	db_finalize_all(r->st, ST_COUNT);
	free(r);
}

enum reminder_stage reminders_stage_of(const struct reminders_config *conf,
				       const struct item_prediction *p, int64_t today)
{
	int64_t days = p->due_day - today;

	if (p->is_service_due || days <= 0 || (p->has_due_odometer && p->distance_to_service_m < 0))
		return REMINDER_OVERDUE;
	if (days <= conf->second_days)
		return REMINDER_SECOND;
	if (days <= conf->first_days ||
	    (conf->first_km > 0 && p->has_due_odometer &&
	     p->distance_to_service_m <= (int64_t)conf->first_km * 1000))
		return REMINDER_FIRST;
	return REMINDER_NONE;
}

/*
 * The voucher code of (vin, item, cycle, stage): "SVC-" and 6 characters
 * of its FNV-1a hash, from an alphabet without look-alikes, so the same
 * reminder always carries the same code (the dealer can check it).
 */
static void voucher_code(const char *vin, const char *item, int64_t cycle,
			 enum reminder_stage stage, char *buf, size_t size)
{
	static const char alphabet[] = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
	char key[128], code[7];
	uint64_t h = 14695981039346656037ULL;
	int n = snprintf(key, sizeof(key), "%s|%s|%lld|%s", vin, item, (long long)cycle,
			 reminders_stage_name(stage));

	for (int i = 0; i < n && i < (int)sizeof(key) - 1; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ULL;
	}
	for (int i = 0; i < 6; i++) {
		code[i] = alphabet[h % (sizeof(alphabet) - 1)];
		h /= sizeof(alphabet) - 1;
	}
	code[6] = '\0';
	snprintf(buf, size, "SVC-%s", code);
}

/* Fills o with the service offer for item of vin. Returns 0 or -errno. */
static int build_offer(const struct reminders *r, const char *vin, const struct item_prediction *p,
		       int64_t cycle, enum reminder_stage stage, int64_t now_ms, struct offer *o)
{
	char item[sizeof(p->item)], due[16];
	int ret;

	memset(o, 0, sizeof(*o));
	ret = offers_new_id(o->id);
	if (ret < 0)
		return ret;
	snprintf(item, sizeof(item), "%s", p->item);
	for (char *c = item; *c; c++)
		if (*c == '_')
			*c = ' ';
	voucher_code(vin, p->item, cycle, stage, o->promo_code, sizeof(o->promo_code));
	service_day_name(p->due_day, due, sizeof(due));
	o->kind = OFFER_SERVICE;
	snprintf(o->title, sizeof(o->title), "Service due: %s", item);
	snprintf(o->body, sizeof(o->body),
		 "Book your service at %s. Your %s is %s %s; show code %s for your voucher.",
		 r->conf.dealer_name, item, stage == REMINDER_OVERDUE ? "overdue since" : "due on",
		 due, o->promo_code);
	o->valid_from_ms = now_ms;
	o->valid_until_ms = now_ms + (int64_t)REMINDERS_OFFER_VALID_DAYS * 86400000;
	snprintf(o->vin, sizeof(o->vin), "%s", vin);
	return 0;
}

/* The highest stage already acted on for (vin, item, cycle), or an error class. */
static int stage_done(struct reminders *r, const char *vin, const char *item, int64_t cycle)
{
	struct db_stmt *st = r->st[ST_STAGES];
	int ret, best = REMINDER_NONE;

	db_bind_text(st, 1, vin);
	db_bind_text(st, 2, item);
	db_bind_int64(st, 3, cycle);
	while ((ret = db_step(st)) == 1) {
		int s = stage_parse(db_column_text(st, 0));

		if (s > best)
			best = s;
	}
	db_reset(st);
	return ret < 0 ? ret : best;
}

/* Runs st (bound) for its one RETURNING id into *ret_id. Returns 1, 0 (no row) or an error. */
static int step_id(struct db_stmt *st, int64_t *ret_id)
{
	int ret = db_step(st);

	if (ret == 1)
		*ret_id = db_column_int64(st, 0);
	db_reset(st);
	return ret;
}

/*
 * Acts on item i of r->pred at stage. Returns 1 (sent), 0 (nothing: done
 * before, the car is at the offers cap, claimed by another run), -ENOBUFS (the sink is full: the run
 * stops, the claim is undone) or an error class.
 */
static int act(struct reminders *r, size_t i, enum reminder_stage stage, int64_t now_ms)
{
	const struct item_prediction *p = &r->pred.items[i];
	const char *vin = r->pred.vin, *sname = reminders_stage_name(stage);
	int64_t cycle = r->pred.last[i].done ? r->pred.last[i].day : -1, id = 0, task = 0;
	struct db_stmt *st;
	struct offer o;
	int ret;

	ret = stage_done(r, vin, p->item, cycle);
	if (ret < 0 || ret >= (int)stage)
		return ret < 0 ? ret : 0;
	if (r->conf.offers_per_day_max) {
		ret = offer_log_count_since(r->log, vin, now_ms - 86400000LL);
		if (ret < 0)
			return ret;
		if (ret >= r->conf.offers_per_day_max) {
			log_info("reminders: a vehicle got %d offers in 24 h: its %s %s reminder "
				 "waits for a later run",
				 ret, p->item, sname);
			return 0;
		}
	}
	st = r->st[ST_CLAIM];
	db_bind_text(st, 1, vin);
	db_bind_text(st, 2, p->item);
	db_bind_int64(st, 3, cycle);
	db_bind_text(st, 4, sname);
	db_bind_int64(st, 5, p->due_day);
	db_bind_int64(st, 6, now_ms);
	ret = step_id(st, &id);
	if (ret <= 0)
		return ret; /* 0: another run has it */
	ret = build_offer(r, vin, p, cycle, stage, now_ms, &o);
	if (ret == 0)
		ret = r->sink(r->arg, &o);
	if (ret < 0) {
		int u;

		log_warn("reminders: no %s offer for %s of a vehicle now (%s); next run", sname,
			 p->item, strerror(-ret));
		st = r->st[ST_UNCLAIM];
		db_bind_int64(st, 1, id);
		u = db_run(st);
		if (u < 0)
			return u;
		return ret == -ENOBUFS ? ret : 0;
	}
	ret = offer_log_put(r->log, &o, now_ms);
	if (ret < 0)
		return ret;
	st = r->st[ST_TASK];
	db_bind_text(st, 1, vin);
	db_bind_text(st, 2, p->item);
	db_bind_text(st, 3, sname);
	db_bind_int64(st, 4, p->due_day);
	db_bind_int64(st, 5, now_ms);
	ret = step_id(st, &task);
	if (ret <= 0)
		return ret < 0 ? ret : -EIO;
	st = r->st[ST_LINK];
	db_bind_text(st, 1, o.id);
	db_bind_int64(st, 2, task);
	db_bind_int64(st, 3, id);
	ret = db_run(st);
	if (ret < 0)
		return ret;
	log_debug("reminders: %s %s %s: offer %s, task %lld", vin, p->item, sname, o.id,
		  (long long)task);
	return 1;
}

/* One vehicle's items. Returns the reminders sent, -ENOBUFS or an error class. */
static int run_vehicle(struct reminders *r, const struct service_plans *plans, const char *vin,
		       int64_t today, int64_t now_ms)
{
	int sent = 0, ret;

	ret = service_predict(r->db, r->t, plans, vin, today, &r->pred);
	if (ret == -ENOENT)
		return 0;
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < r->pred.nitems; i++) {
		enum reminder_stage s = reminders_stage_of(&r->conf, &r->pred.items[i], today);

		if (s == REMINDER_NONE)
			continue;
		ret = act(r, i, s, now_ms);
		if (ret < 0)
			return ret;
		sent += ret;
	}
	return sent;
}

int reminders_run(struct reminders *r, const struct service_plans *plans, int64_t now_ms)
{
	int64_t today = telemetry_day_of(now_ms);
	char *vins = NULL;
	size_t n = 0;
	int truncated = 0, sent = 0, ret;

	if (!plans)
		return 0;
	ret = service_vins(r->db, r->t, &vins, &n, &truncated);
	if (ret < 0)
		return ret;
	if (truncated)
		log_warn("reminders: more than %d vehicles; this run looks at the first %zu",
			 SERVICE_DUE_VEHICLES_MAX, n);
	for (size_t k = 0; k < n; k++) {
		ret = run_vehicle(r, plans, vins + k * (VIN_LEN + 1), today, now_ms);
		if (ret == -ENOBUFS) {
			log_info("reminders: %d sent; the rest waits for the next run", sent);
			ret = 0;
			break;
		}
		if (ret < 0)
			break;
		sent += ret;
	}
	free(vins);
	return ret < 0 ? ret : sent;
}

int reminders_job(struct db *db, int64_t now_ms, void *arg)
{
	(void)db;
	return reminders_run(arg, service_plans_current(), now_ms);
}

json_t *reminders_tasks_json(struct db *db, int (*may_see)(const char *vin, void *arg), void *arg,
			     int *ret_truncated, int *ret_err)
{
	struct db_stmt *st = NULL;
	json_t *a = NULL;
	int ret, n = 0;

	*ret_truncated = 0;
	ret = db_prepare(db, stmt_sql[ST_TASKS], &st);
	if (ret < 0)
		goto fail;
	a = json_array();
	if (!a) {
		ret = -ENOMEM;
		goto fail;
	}
	while ((ret = db_step(st)) == 1) {
		char due[16];
		json_t *o;

		if (may_see && !may_see(db_column_text(st, 1), arg))
			continue;
		if (++n > REMINDERS_TASKS_MAX) {
			*ret_truncated = 1;
			ret = 0;
			break;
		}
		service_day_name(db_column_int64(st, 5), due, sizeof(due));
		o = json_pack("{sI ss ss ss ss ss sI ss}", "id", (json_int_t)db_column_int64(st, 0),
			      "vin", db_column_text(st, 1), "kind", db_column_text(st, 2), "item",
			      db_column_text(st, 3), "stage", db_column_text(st, 4), "due_date",
			      due, "created_ms", (json_int_t)db_column_int64(st, 6), "state",
			      db_column_text(st, 7));
		if (!o || json_array_append_new(a, o) < 0) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	if (ret < 0)
		goto fail;
	db_finalize(st);
	return a;
fail:
	db_finalize(st);
	json_decref(a);
	*ret_err = ret;
	return NULL;
}
