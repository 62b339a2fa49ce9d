/*
 * The service domain: plans, history, overrides, imports and what is due;
 * see service.h. The SQL is written once for both backends; statements are
 * prepared per call (these are operator actions and API requests, not the
 * ingest path).
 */
#include "service.h"

#include <csv.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "vin.h"

#define MS_PER_DAY 86400000LL
#define ODOMETER_MAX_M 5000000000LL /* 5 million km */
#define IMPORT_ERRORS_SHOWN 50
#define PROGRESS_EVERY 100000

/* Rows of imports that are committed, or written by the API directly. */
#define VISIBLE                               \
	"(import_id IS NULL OR import_id IN " \
	"(SELECT id FROM service_imports WHERE committed_ms IS NOT NULL))"

static void say(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- days and times ---------------------------------------------------- */

void service_day_name(int64_t day, char *buf, size_t size)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d", &tm);
}

/* "YYYY-MM-DD" at *s: 0 and the day's fields, n the characters read. */
static int date_fields(const char *s, struct tm *tm, int *n)
{
	int y, mo, d;

	*n = 0;
	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, n) != 3 || *n != 10 || mo < 1 || mo > 12 ||
	    d < 1 || d > 31 || y < 1900)
		return -EINVAL;
	memset(tm, 0, sizeof(*tm));
	tm->tm_year = y - 1900;
	tm->tm_mon = mo - 1;
	tm->tm_mday = d;
	return 0;
}

int service_day_parse(const char *s, int64_t *ret_day)
{
	struct tm tm;
	int n;

	if (!s || date_fields(s, &tm, &n) < 0 || s[n])
		return -EINVAL;
	*ret_day = (int64_t)timegm(&tm) / 86400;
	return 0;
}

/* An ISO 8601 date (midnight UTC) or date-time with Z or +hh:mm. */
static int iso_time_parse(const char *s, int64_t *ret_ms)
{
	struct tm tm;
	int n, k = 0, h, mi, sec = 0, oh, om, off = 0;
	const char *p;

	if (!s || date_fields(s, &tm, &n) < 0)
		return -EINVAL;
	p = s + n;
	if (*p == 'T' || *p == ' ') {
		if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &k) != 2)
			return -EINVAL;
		p += 1 + k;
		if (*p == ':') {
			if (sscanf(p + 1, "%2d%n", &sec, &k) != 1)
				return -EINVAL;
			p += 1 + k;
		}
		if (*p == '.')
			for (p++; isdigit((unsigned char)*p); p++)
				;
		if (*p == 'Z') {
			p++;
		} else if ((*p == '+' || *p == '-') &&
			   sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) == 2) {
			off = (oh * 60 + om) * (*p == '+' ? 1 : -1);
			p += 1 + k;
		} else {
			return -EINVAL;
		}
		if (h > 23 || mi > 59 || sec > 60)
			return -EINVAL;
		tm.tm_hour = h;
		tm.tm_min = mi;
		tm.tm_sec = sec;
	}
	if (*p)
		return -EINVAL;
	*ret_ms = ((int64_t)timegm(&tm) - off * 60) * 1000;
	return 0;
}

/* A distance in km ("45000", "45000.5") as metres. */
static int km_parse(const char *s, int64_t *ret_m)
{
	char *end;
	double v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0.0) || v * 1000.0 > (double)ODOMETER_MAX_M)
		return -EINVAL;
	*ret_m = (int64_t)(v * 1000.0 + 0.5);
	return 0;
}

/* ---- plans ------------------------------------------------------------- */

static int name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= 48)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '_'))
			return 0;
	return 1;
}

/* A non-negative integer member (absent: 0). Returns 0 or -EINVAL. */
static int member_int(json_t *o, const char *key, long long max, long long *ret)
{
	json_t *v = json_object_get(o, key);

	*ret = 0;
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
		return -EINVAL;
	*ret = json_integer_value(v);
	return 0;
}

static int plan_item_load(json_t *j, struct plan_item *it, const char *where, char *err,
			  size_t errlen)
{
	static const struct {
		const char *key;
		long long max;
	} keys[] = { { "every_km", 1000000 },
		     { "every_months", 600 },
		     { "first_months", 600 },
		     { "first_km", 1000000 } };
	long long v[4];
	const char *name = json_string_value(json_object_get(j, "name"));

	if (!json_is_object(j) || !name_valid(name)) {
		say(err, errlen, "%s.name: expected a name of a-z, 0-9 and _ (1..47)", where);
		return -EINVAL;
	}
	for (size_t k = 0; k < 4; k++)
		if (member_int(j, keys[k].key, keys[k].max, &v[k]) < 0) {
			say(err, errlen, "%s (%s).%s: expected an integer 0..%lld", where, name,
			    keys[k].key, keys[k].max);
			return -EINVAL;
		}
	memset(it, 0, sizeof(*it));
	snprintf(it->name, sizeof(it->name), "%s", name);
	it->every_m = v[0] * 1000;
	it->every_months = (int)v[1];
	it->first_months = (int)v[2];
	it->first_m = v[3] * 1000;
	if (!it->every_m && !it->every_months) {
		say(err, errlen, "%s (%s): needs every_km or every_months", where, name);
		return -EINVAL;
	}
	return 0;
}

static int plan_load(json_t *j, struct service_plan *pl, size_t idx, char *err, size_t errlen)
{
	const char *make = json_string_value(json_object_get(j, "make"));
	const char *model = json_string_value(json_object_get(j, "model"));
	const char *vds = json_string_value(json_object_get(j, "vds"));
	json_t *items = json_object_get(j, "items"), *it;
	char where[64];
	size_t i;
	int r;

	memset(pl, 0, sizeof(*pl));
	if (!json_is_object(j) || !make || !*make || strlen(make) >= sizeof(pl->make)) {
		say(err, errlen, "plans[%zu].make: expected a make (\"default\" for the rest)",
		    idx);
		return -EINVAL;
	}
	if ((model && strlen(model) >= sizeof(pl->model)) ||
	    (vds && (strlen(vds) >= sizeof(pl->vds) || !*vds)) || (!model != !vds)) {
		say(err, errlen,
		    "plans[%zu]: a model needs \"model\" and \"vds\" (VIN characters "
		    "4.., at most 7)",
		    idx);
		return -EINVAL;
	}
	snprintf(pl->make, sizeof(pl->make), "%s", make);
	snprintf(pl->model, sizeof(pl->model), "%s", model ? model : "");
	snprintf(pl->vds, sizeof(pl->vds), "%s", vds ? vds : "");
	if (!json_is_array(items) || json_array_size(items) == 0 ||
	    json_array_size(items) > SERVICE_ITEMS_MAX) {
		say(err, errlen, "plans[%zu].items: expected 1..%d items", idx, SERVICE_ITEMS_MAX);
		return -EINVAL;
	}
	json_array_foreach(items, i, it)
	{
		snprintf(where, sizeof(where), "plans[%zu].items[%zu]", idx, i);
		r = plan_item_load(it, &pl->items[i], where, err, errlen);
		if (r < 0)
			return r;
		for (size_t k = 0; k < i; k++)
			if (strcmp(pl->items[k].name, pl->items[i].name) == 0) {
				say(err, errlen, "%s: item %s twice", where, pl->items[i].name);
				return -EINVAL;
			}
	}
	pl->nitems = json_array_size(items);
	return 0;
}

static int plans_from_json(json_t *root, struct service_plans *p, char *err, size_t errlen)
{
	json_t *plans = json_object_get(root, "plans"), *wmi = json_object_get(root, "wmi"), *v;
	json_t *km = json_object_get(root, "fleet_km_per_year");
	const char *key;
	int has_default = 0, r;
	size_t i;

	if (!json_is_object(root) || !json_is_array(plans) || json_array_size(plans) == 0 ||
	    json_array_size(plans) > SERVICE_PLANS_MAX) {
		say(err, errlen, "plans: expected an object with 1..%d \"plans\"",
		    SERVICE_PLANS_MAX);
		return -EINVAL;
	}
	if (wmi && !json_is_object(wmi)) {
		say(err, errlen, "wmi: expected an object {\"WMI\": \"make\"}");
		return -EINVAL;
	}
	if (km && (!json_is_number(km) || json_number_value(km) <= 0 ||
		   json_number_value(km) > 1000000)) {
		say(err, errlen, "fleet_km_per_year: expected a number 1..1000000");
		return -EINVAL;
	}
	p->fleet_m_per_day = (km ? json_number_value(km) : 15000.0) * 1000.0 / 365.25;
	p->plans = calloc(json_array_size(plans), sizeof(*p->plans));
	p->wmi = calloc(json_object_size(wmi) + 1, sizeof(*p->wmi));
	if (!p->plans || !p->wmi)
		return -ENOMEM;
	json_array_foreach(plans, i, v)
	{
		r = plan_load(v, &p->plans[i], i, err, errlen);
		if (r < 0)
			return r;
		p->nplans++;
		has_default |= strcmp(p->plans[i].make, "default") == 0;
	}
	if (!has_default) {
		say(err, errlen, "plans: no plan has make \"default\" (the plan for the rest)");
		return -EINVAL;
	}
	json_object_foreach(wmi, key, v)
	{
		const char *make = json_string_value(v);

		if (strlen(key) != 3 || !make || !*make || strlen(make) >= 32) {
			say(err, errlen, "wmi.%s: expected a 3-character WMI and a make", key);
			return -EINVAL;
		}
		snprintf(p->wmi[p->nwmi][0], 32, "%s", key);
		snprintf(p->wmi[p->nwmi][1], 32, "%s", make);
		p->nwmi++;
	}
	return 0;
}

int service_plans_load(const char *path, struct service_plans *ret, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;
	char why[400];
	int r;

	memset(ret, 0, sizeof(*ret));
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		FILE *f = fopen(path, "r");

		if (!f) {
			say(err, errlen, "%s: cannot read the maintenance plans: %s", path,
			    strerror(errno));
			return -ENOENT;
		}
		fclose(f);
		say(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
		return -EINVAL;
	}
	r = plans_from_json(root, ret, why, sizeof(why));
	json_decref(root);
	if (r < 0) {
		say(err, errlen, "%s: %s", path, r == -ENOMEM ? "out of memory" : why);
		service_plans_free(ret);
		return r;
	}
	snprintf(ret->path, sizeof(ret->path), "%s", path);
	return 0;
}

void service_plans_free(struct service_plans *p)
{
	if (!p)
		return;
	free(p->plans);
	free(p->wmi);
	memset(p, 0, sizeof(*p));
}

static struct service_plans plans_in_use;
static int plans_loaded;

int service_plans_use(const char *path, char *err, size_t errlen)
{
	struct service_plans fresh;
	int r = service_plans_load(path, &fresh, err, errlen);

	if (r < 0)
		return r;
	service_plans_free(&plans_in_use);
	plans_in_use = fresh;
	plans_loaded = 1;
	return 0;
}

const struct service_plans *service_plans_current(void)
{
	return plans_loaded ? &plans_in_use : NULL;
}

const char *service_make_of(const struct service_plans *p, const char *vin)
{
	for (size_t i = 0; vin && i < p->nwmi; i++)
		if (strncmp(vin, p->wmi[i][0], 3) == 0)
			return p->wmi[i][1];
	return "";
}

const struct service_plan *service_plan_for(const struct service_plans *p, const char *vin)
{
	const char *make = service_make_of(p, vin);
	const struct service_plan *by_make = NULL, *def = NULL;

	for (size_t i = 0; i < p->nplans; i++) {
		const struct service_plan *pl = &p->plans[i];

		if (strcmp(pl->make, "default") == 0 && !def)
			def = pl;
		if (!*make || strcmp(pl->make, make) != 0)
			continue;
		if (pl->vds[0] && strlen(vin) > 3 &&
		    strncmp(vin + 3, pl->vds, strlen(pl->vds)) == 0)
			return pl;
		if (!pl->vds[0] && !by_make)
			by_make = pl;
	}
	return by_make ? by_make : def;
}

/* ---- small SQL helpers ------------------------------------------------- */

static int audit_end(struct db *db, struct accounts *acc, const struct accounts_principal *actor,
		     const char *action, const char *target, json_t *detail, int64_t now_ms, int r)
{
	char *text = NULL;

	if (r >= 0) {
		text = json_dumps(detail, JSON_COMPACT);
		r = text ? accounts_audit(acc, actor, action, target, text, now_ms) : -ENOMEM;
		free(text);
	}
	json_decref(detail);
	if (r >= 0)
		r = db_commit(db);
	if (r < 0)
		db_rollback(db);
	return r;
}

/* ---- service records --------------------------------------------------- */

int service_items_parse(const char *s, struct service_record *rec, char *err, size_t errlen)
{
	char buf[SERVICE_ITEMS_MAX * 48 + 1], *save = NULL, *tok;

	rec->nitems = 0;
	if (!s || !*s || strlen(s) >= sizeof(buf)) {
		say(err, errlen, "items: expected item names separated by ';'");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
		while (*tok == ' ')
			tok++;
		for (size_t n = strlen(tok); n && tok[n - 1] == ' ';)
			tok[--n] = '\0';
		if (!name_valid(tok)) {
			say(err, errlen, "items: '%s' is not an item name (a-z, 0-9, _)", tok);
			return -EINVAL;
		}
		if (rec->nitems == SERVICE_ITEMS_MAX) {
			say(err, errlen, "items: more than %d", SERVICE_ITEMS_MAX);
			return -EINVAL;
		}
		snprintf(rec->items[rec->nitems++], 48, "%s", tok);
	}
	if (!rec->nitems) {
		say(err, errlen, "items: none given");
		return -EINVAL;
	}
	return 0;
}

static void items_join(const struct service_record *rec, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < rec->nitems && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ";" : "", rec->items[i]);
}

static const char sql_record_insert[] =
	"INSERT INTO service_records (vin, day, odometer_m, items, cost_cents, workshop, "
	"advisories, recorded_ms, source, import_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
	"$10) RETURNING id";

static int record_insert(struct db_stmt *st, const struct service_record *rec, int64_t now_ms,
			 const char *source, int64_t import_id, int64_t *ret_id)
{
	char items[SERVICE_ITEMS_MAX * 48 + 1];
	int r;

	items_join(rec, items, sizeof(items));
	db_bind_text(st, 1, rec->vin);
	db_bind_int64(st, 2, rec->day);
	db_bind_opt_int64(st, 3, rec->has_odometer, rec->odometer_m);
	db_bind_text(st, 4, items);
	db_bind_opt_int64(st, 5, rec->has_cost, rec->cost_cents);
	db_bind_text(st, 6, rec->workshop);
	db_bind_text(st, 7, rec->advisories);
	db_bind_int64(st, 8, now_ms);
	db_bind_text(st, 9, source);
	db_bind_opt_int64(st, 10, import_id > 0, import_id);
	r = db_step(st);
	if (r == 1 && ret_id)
		*ret_id = db_column_int64(st, 0);
	db_reset(st);
	return r < 0 ? r : 0;
}

int service_record_add(struct db *db, struct accounts *acc, const struct accounts_principal *actor,
		       const struct service_record *rec, int64_t now_ms, int64_t *ret_id)
{
	struct db_stmt *st = NULL;
	char items[SERVICE_ITEMS_MAX * 48 + 1];
	int64_t id = 0;
	int r;

	if (!vin_valid(rec->vin) || rec->nitems == 0 || rec->nitems > SERVICE_ITEMS_MAX)
		return -EINVAL;
	r = db_begin(db);
	if (r < 0)
		return r;
	r = db_prepare(db, sql_record_insert, &st);
	if (r == 0)
		r = record_insert(st, rec, now_ms, "api", 0, &id);
	db_finalize(st);
	items_join(rec, items, sizeof(items));
	r = audit_end(
		db, acc, actor, "service.record", rec->vin,
		json_pack("{s:I,s:s,s:o}", "id", (json_int_t)id, "items", items, "odometer_km",
			  rec->has_odometer ? json_real(rec->odometer_m / 1000.0) : json_null()),
		now_ms, r);
	if (r == 0 && ret_id)
		*ret_id = id;
	return r;
}

int service_record_list(struct db *db, const char *vin, int64_t as_of_day,
			struct service_record **ret_rows, size_t *ret_n)
{
	struct db_stmt *st = NULL;
	struct service_record *rows = NULL;
	size_t n = 0;
	int r;

	*ret_rows = NULL;
	*ret_n = 0;
	r = db_prepare(
		db,
		"SELECT id, day, odometer_m, items, cost_cents, workshop, advisories, "
		"recorded_ms, source FROM service_records WHERE vin = $1 AND day <= $2 AND " VISIBLE
		" ORDER BY day DESC, id DESC LIMIT $3",
		&st);
	if (r < 0)
		return r;
	rows = calloc(SERVICE_HISTORY_MAX, sizeof(*rows));
	if (!rows) {
		db_finalize(st);
		return -ENOMEM;
	}
	db_bind_text(st, 1, vin);
	db_bind_int64(st, 2, as_of_day);
	db_bind_int64(st, 3, SERVICE_HISTORY_MAX);
	while ((r = db_step(st)) == 1) {
		struct service_record *rec = &rows[n++];

		rec->id = db_column_int64(st, 0);
		snprintf(rec->vin, sizeof(rec->vin), "%s", vin);
		rec->day = db_column_int64(st, 1);
		rec->has_odometer = !db_column_is_null(st, 2);
		rec->odometer_m = db_column_int64(st, 2);
		service_items_parse(db_column_text(st, 3), rec, NULL, 0);
		rec->has_cost = !db_column_is_null(st, 4);
		rec->cost_cents = db_column_int64(st, 4);
		db_column_copy(st, 5, rec->workshop, sizeof(rec->workshop));
		db_column_copy(st, 6, rec->advisories, sizeof(rec->advisories));
		rec->recorded_ms = db_column_int64(st, 7);
		db_column_copy(st, 8, rec->source, sizeof(rec->source));
	}
	db_finalize(st);
	if (r < 0 || n == 0) {
		free(rows);
		return r < 0 ? r : 0;
	}
	*ret_rows = rows;
	*ret_n = n;
	return 0;
}

int service_override_set(struct db *db, struct accounts *acc,
			 const struct accounts_principal *actor, const char *vin, const char *item,
			 int64_t every_m, int every_months, int64_t now_ms)
{
	struct db_stmt *st = NULL;
	int r;

	if (!vin_valid(vin) || !name_valid(item) || every_m < 0 || every_m > ODOMETER_MAX_M ||
	    every_months < 0 || every_months > 600 || (!every_m && !every_months))
		return -EINVAL;
	r = db_begin(db);
	if (r < 0)
		return r;
	r = db_prepare(db,
		       "INSERT INTO service_overrides (vin, item, every_m, every_months, "
		       "updated_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (vin, item) DO UPDATE "
		       "SET every_m = $3, every_months = $4, updated_ms = $5",
		       &st);
	if (r == 0) {
		db_bind_text(st, 1, vin);
		db_bind_text(st, 2, item);
		db_bind_int64(st, 3, every_m);
		db_bind_int64(st, 4, every_months);
		db_bind_int64(st, 5, now_ms);
		r = db_run(st);
	}
	db_finalize(st);
	return audit_end(db, acc, actor, "service.override", vin,
			 json_pack("{s:s,s:I,s:i}", "item", item, "every_km",
				   (json_int_t)(every_m / 1000), "every_months", every_months),
			 now_ms, r);
}

/* ---- CSV --------------------------------------------------------------- */

#define IMPORT_FIELDS_MAX 8

struct import_file {
	const char *path;
	enum service_import_kind kind;
	size_t line, rec_line; /* the line being fed; where the record began */
	char *fields[IMPORT_FIELDS_MAX];
	size_t nfields;
	int too_many;
	size_t rows, errors;
	struct service_import_row *out;
	size_t cap;
	int header_done, fatal;
	void (*on_error)(const char *msg, void *arg);
	void (*progress)(size_t rows, void *arg);
	void *arg;
};

static const char *const import_header[2][4] = {
	{ "vin", "date", "odometer_km", "items" },
	{ "vin", "time", "odometer_km", NULL },
};

static void line_error(struct import_file *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void line_error(struct import_file *s, const char *fmt, ...)
{
	char msg[600], what[400];
	va_list ap;

	if (++s->errors > IMPORT_ERRORS_SHOWN || !s->on_error)
		return;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s:%zu: %s", s->path, s->rec_line, what);
	s->on_error(msg, s->arg);
}

int service_row_parse(enum service_import_kind kind, const char *const *f, size_t n, int64_t now_ms,
		      struct service_import_row *row, char *err, size_t errlen)
{
	size_t want = kind == SERVICE_IMPORT_SERVICES ? 4 : 3;
	int64_t day;

	memset(row, 0, sizeof(*row));
	if (n != want) {
		say(err, errlen, "expected %zu columns, found %zu", want, n);
		return -EINVAL;
	}
	if (!vin_valid(f[0])) {
		say(err, errlen,
		    "vin: '%s' is not a VIN (17 characters, A-Z without I, O, Q, "
		    "0-9)",
		    f[0]);
		return -EINVAL;
	}
	snprintf(row->vin, sizeof(row->vin), "%s", f[0]);
	if (kind == SERVICE_IMPORT_SERVICES) {
		if (service_day_parse(f[1], &day) < 0) {
			say(err, errlen, "date: '%s' is not a date YYYY-MM-DD", f[1]);
			return -EINVAL;
		}
		row->time_ms = day * MS_PER_DAY;
	} else if (iso_time_parse(f[1], &row->time_ms) < 0) {
		say(err, errlen,
		    "time: '%s' is not an ISO 8601 date or date-time (2024-05-01, "
		    "2024-05-01T08:30:00Z)",
		    f[1]);
		return -EINVAL;
	}
	if (row->time_ms > now_ms + MS_PER_DAY) {
		say(err, errlen, "%s: '%s' is in the future", kind ? "time" : "date", f[1]);
		return -EINVAL;
	}
	if (f[2][0] || kind == SERVICE_IMPORT_ODOMETER) {
		if (km_parse(f[2], &row->odometer_m) < 0) {
			say(err, errlen, "odometer_km: '%s' is not a distance in km (0..5000000)",
			    f[2]);
			return -EINVAL;
		}
		row->has_odometer = 1;
	}
	if (kind == SERVICE_IMPORT_SERVICES) {
		if (service_items_parse(f[3], &row->rec, err, errlen) < 0)
			return -EINVAL;
		snprintf(row->rec.vin, sizeof(row->rec.vin), "%s", row->vin);
		row->rec.day = row->time_ms / MS_PER_DAY;
		row->rec.has_odometer = row->has_odometer;
		row->rec.odometer_m = row->odometer_m;
	}
	return 0;
}

static void on_field(void *p, size_t len, void *arg)
{
	struct import_file *s = arg;

	(void)len;
	if (s->nfields == 0)
		s->rec_line = s->line;
	if (s->nfields == IMPORT_FIELDS_MAX) {
		s->too_many = 1;
		return;
	}
	s->fields[s->nfields++] = strdup(p ? (const char *)p : "");
}

static void on_row(int c, void *arg)
{
	struct import_file *s = arg;
	const char *f[IMPORT_FIELDS_MAX];
	char why[400];
	size_t n = s->nfields;

	(void)c;
	if (n == 0)
		s->rec_line = s->line;
	for (size_t i = 0; i < n; i++)
		f[i] = s->fields[i] ? s->fields[i] : "";
	if (!s->header_done) {
		const char *const *h = import_header[s->kind];
		size_t want = s->kind == SERVICE_IMPORT_SERVICES ? 4 : 3;
		int ok = n == want;

		if (n && strncmp(f[0], "\xef\xbb\xbf", 3) == 0)
			f[0] += 3; /* a UTF-8 byte order mark, as spreadsheets write */
		for (size_t i = 0; ok && i < want; i++)
			ok = strcasecmp(f[i], h[i]) == 0;
		if (!ok)
			line_error(s, "the header line must be %s,%s,%s%s%s", h[0], h[1], h[2],
				   h[3] ? "," : "", h[3] ? h[3] : "");
		s->header_done = 1;
	} else if (s->too_many) {
		line_error(s, "more than %d columns", IMPORT_FIELDS_MAX);
	} else if (s->rows >= SERVICE_IMPORT_ROWS_MAX) {
		s->fatal = -E2BIG;
	} else {
		struct service_import_row row;
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		if (service_row_parse(s->kind, f, n, (int64_t)ts.tv_sec * 1000, &row, why,
				      sizeof(why)) < 0) {
			line_error(s, "%s", why);
		} else if (!s->errors) {
			if (s->rows == s->cap) {
				size_t cap = s->cap ? s->cap * 2 : 1024;
				void *p = realloc(s->out, cap * sizeof(*s->out));

				if (!p) {
					s->fatal = -ENOMEM;
					goto out;
				}
				s->out = p;
				s->cap = cap;
			}
			s->out[s->rows] = row;
		}
		s->rows++;
		if (s->progress && s->rows % PROGRESS_EVERY == 0)
			s->progress(s->rows, s->arg);
	}
out:
	for (size_t i = 0; i < n; i++)
		free(s->fields[i]);
	s->nfields = 0;
	s->too_many = 0;
}

int service_csv_read(const char *path, enum service_import_kind kind,
		     void (*on_error)(const char *msg, void *arg),
		     void (*progress)(size_t rows, void *arg), void *arg,
		     struct service_import_row **ret_rows)
{
	struct import_file s = {
		.path = path, .kind = kind, .on_error = on_error, .progress = progress, .arg = arg
	};
	struct csv_parser p;
	char *line = NULL, msg[600];
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int r = 0;

	*ret_rows = NULL;
	f = fopen(path, "r");
	if (!f) {
		snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
		if (on_error)
			on_error(msg, arg);
		return errno == ENOENT ? -ENOENT : -EIO;
	}
	if (csv_init(&p, CSV_STRICT | CSV_APPEND_NULL | CSV_STRICT_FINI) != 0) {
		fclose(f);
		return -ENOMEM;
	}
	while (!s.fatal && (len = getline(&line, &cap, f)) >= 0) {
		s.line++;
		if (csv_parse(&p, line, (size_t)len, on_field, on_row, &s) != (size_t)len) {
			s.rec_line = s.line;
			line_error(&s, "%s", csv_strerror(csv_error(&p)));
			csv_free(&p);
			csv_init(&p, CSV_STRICT | CSV_APPEND_NULL | CSV_STRICT_FINI);
			s.nfields = 0;
		}
	}
	if (ferror(f)) {
		snprintf(msg, sizeof(msg), "%s: %s", path, strerror(errno));
		if (on_error)
			on_error(msg, arg);
		r = -EIO;
	}
	if (csv_fini(&p, on_field, on_row, &s) != 0) {
		s.rec_line = s.line;
		line_error(&s, "%s", csv_strerror(csv_error(&p)));
	}
	csv_free(&p);
	free(line);
	fclose(f);
	if (!s.header_done) {
		s.rec_line = 1;
		line_error(&s, "empty file: expected a header line");
	}
	if (s.errors > IMPORT_ERRORS_SHOWN && on_error) {
		snprintf(msg, sizeof(msg), "%s: %zu more bad lines not shown", path,
			 s.errors - IMPORT_ERRORS_SHOWN);
		on_error(msg, arg);
	}
	if (s.fatal == -E2BIG && on_error) {
		snprintf(msg, sizeof(msg), "%s: more than %d rows: split the file", path,
			 SERVICE_IMPORT_ROWS_MAX);
		on_error(msg, arg);
	}
	if (r == 0)
		r = s.fatal ? s.fatal : s.errors ? -EINVAL : 0;
	if (r < 0) {
		free(s.out);
		return r;
	}
	*ret_rows = s.out;
	return (int)s.rows;
}

/* ---- imports ----------------------------------------------------------- */

static const char *kind_name(enum service_import_kind k)
{
	return k == SERVICE_IMPORT_SERVICES ? "services" : "odometer";
}

int service_import_begin(struct db *db, struct accounts *acc,
			 const struct accounts_principal *actor, enum service_import_kind kind,
			 const char *file, int64_t expected, int64_t now_ms, int64_t *ret_id)
{
	struct db_stmt *st = NULL;
	int64_t id = 0;
	int r;

	if (expected < 0 || expected > SERVICE_IMPORT_ROWS_MAX || !file)
		return -EINVAL;
	r = db_begin(db);
	if (r < 0)
		return r;
	r = db_prepare(db,
		       "INSERT INTO service_imports (kind, file, expected_rows, created_ms) "
		       "VALUES ($1, $2, $3, $4) RETURNING id",
		       &st);
	if (r == 0) {
		db_bind_text(st, 1, kind_name(kind));
		db_bind_text(st, 2, file);
		db_bind_int64(st, 3, expected);
		db_bind_int64(st, 4, now_ms);
		r = db_step(st);
		if (r == 1) {
			id = db_column_int64(st, 0);
			r = 0;
		} else if (r == 0) {
			r = -EIO;
		}
	}
	db_finalize(st);
	r = audit_end(db, acc, actor, "service.import_begin", file,
		      json_pack("{s:I,s:s,s:I}", "id", (json_int_t)id, "kind", kind_name(kind),
				"rows", (json_int_t)expected),
		      now_ms, r);
	if (r == 0)
		*ret_id = id;
	return r;
}

int service_import_kind_of(struct db *db, int64_t id, enum service_import_kind *ret)
{
	struct db_stmt *st = NULL;
	int r = db_prepare(
		db, "SELECT kind FROM service_imports WHERE id = $1 AND committed_ms IS NULL", &st);

	if (r < 0)
		return r;
	db_bind_int64(st, 1, id);
	r = db_step(st);
	if (r == 1)
		*ret = strcmp(db_column_text(st, 0), "services") == 0 ? SERVICE_IMPORT_SERVICES
								      : SERVICE_IMPORT_ODOMETER;
	db_finalize(st);
	return r == 1 ? 0 : r == 0 ? -ENOENT : r;
}

int service_import_add(struct db *db, int64_t id, const struct service_import_row *rows, size_t n,
		       int64_t now_ms)
{
	struct db_stmt *up = NULL, *ins = NULL;
	enum service_import_kind kind;
	int r;

	if (n > SERVICE_IMPORT_CHUNK)
		return -E2BIG;
	r = db_begin(db);
	if (r < 0)
		return r;
	r = service_import_kind_of(db, id, &kind);
	if (r == 0)
		r = db_prepare(db,
			       "UPDATE service_imports SET received_rows = received_rows + $2 "
			       "WHERE id = $1 AND committed_ms IS NULL AND received_rows + $2 <= "
			       "expected_rows RETURNING id",
			       &up);
	if (r == 0) {
		db_bind_int64(up, 1, id);
		db_bind_int64(up, 2, (int64_t)n);
		r = db_step(up);
		r = r == 1 ? 0 : r == 0 ? -EINVAL : r;
	}
	if (r == 0)
		r = db_prepare(db,
			       kind == SERVICE_IMPORT_SERVICES
				       ? sql_record_insert
				       : "INSERT INTO service_odometer_readings (vin, time_ms, "
					 "odometer_m, import_id) VALUES ($1, $2, $3, $4) ON "
					 "CONFLICT DO NOTHING",
			       &ins);
	for (size_t i = 0; r == 0 && i < n; i++) {
		if (kind == SERVICE_IMPORT_SERVICES) {
			r = record_insert(ins, &rows[i].rec, now_ms, "import", id, NULL);
			continue;
		}
		db_bind_text(ins, 1, rows[i].vin);
		db_bind_int64(ins, 2, rows[i].time_ms);
		db_bind_int64(ins, 3, rows[i].odometer_m);
		db_bind_int64(ins, 4, id);
		r = db_run(ins);
	}
	db_finalize(ins);
	db_finalize(up);
	if (r == 0)
		r = db_commit(db);
	if (r < 0)
		db_rollback(db);
	return r;
}

int service_import_commit(struct db *db, struct accounts *acc,
			  const struct accounts_principal *actor, int64_t id, int64_t now_ms)
{
	struct db_stmt *st = NULL;
	int64_t rows = 0;
	char target[32], kind[16] = "", file[256] = "";
	int r;

	r = db_begin(db);
	if (r < 0)
		return r;
	r = db_prepare(db,
		       "UPDATE service_imports SET committed_ms = $2 WHERE id = $1 AND "
		       "committed_ms IS NULL AND received_rows = expected_rows RETURNING "
		       "received_rows, kind, file",
		       &st);
	if (r == 0) {
		db_bind_int64(st, 1, id);
		db_bind_int64(st, 2, now_ms);
		r = db_step(st);
		if (r == 1) {
			rows = db_column_int64(st, 0);
			db_column_copy(st, 1, kind, sizeof(kind));
			db_column_copy(st, 2, file, sizeof(file));
			r = 0;
		} else if (r == 0) {
			enum service_import_kind k;

			r = service_import_kind_of(db, id, &k) == 0 ? -EINVAL : -ENOENT;
		}
	}
	db_finalize(st);
	snprintf(target, sizeof(target), "import %lld", (long long)id);
	r = audit_end(
		db, acc, actor, "service.import", target,
		json_pack("{s:s,s:s,s:I}", "kind", kind, "file", file, "rows", (json_int_t)rows),
		now_ms, r);
	return r < 0 ? r : (int)rows;
}

/* ---- prediction -------------------------------------------------------- */

static int reading_cmp(const void *a, const void *b)
{
	const struct odo_reading *x = a, *y = b;

	if (x->day != y->day)
		return x->day < y->day ? -1 : 1;
	return x->odometer_m < y->odometer_m ? -1 : x->odometer_m > y->odometer_m;
}

/* Appends a reading unless SERVICE_READINGS_MAX are there. Returns 1 when added. */
static int add_reading(struct odo_reading *r, size_t *n, int64_t day, int64_t odo,
		       enum reading_source src)
{
	if (*n >= SERVICE_READINGS_MAX)
		return 0;
	memset(&r[*n], 0, sizeof(r[*n]));
	r[*n].day = day;
	r[*n].odometer_m = odo;
	r[*n].source = src;
	(*n)++;
	return 1;
}

/* Imported readings up to as_of_day (committed imports only). */
static int imported_readings(struct db *db, const char *vin, int64_t as_of_day,
			     struct odo_reading *out, size_t *n)
{
	struct db_stmt *st = NULL;
	int r = db_prepare(
		db,
		"SELECT time_ms, odometer_m FROM service_odometer_readings WHERE vin = $1 "
		"AND time_ms < $2 AND " VISIBLE " ORDER BY time_ms DESC LIMIT $3",
		&st);

	if (r < 0)
		return r;
	db_bind_text(st, 1, vin);
	db_bind_int64(st, 2, (as_of_day + 1) * MS_PER_DAY);
	db_bind_int64(st, 3, SERVICE_READINGS_MAX / 2);
	while ((r = db_step(st)) == 1)
		add_reading(out, n, telemetry_day_of(db_column_int64(st, 0)),
			    db_column_int64(st, 1), READING_IMPORT);
	db_finalize(st);
	return r;
}

/* The overrides of vin applied to items. */
static int apply_overrides(struct db *db, const char *vin, struct service_prediction *p)
{
	struct db_stmt *st = NULL;
	int r = db_prepare(
		db,
		"SELECT item, every_m, every_months FROM service_overrides WHERE vin = $1 "
		"ORDER BY item",
		&st);

	if (r < 0)
		return r;
	db_bind_text(st, 1, vin);
	while ((r = db_step(st)) == 1) {
		const char *item = db_column_text(st, 0);
		size_t i;

		for (i = 0; i < p->nitems; i++)
			if (strcmp(p->plan_items[i].name, item) == 0)
				break;
		if (i == p->nitems) {
			if (p->nitems == SERVICE_ITEMS_MAX)
				continue;
			memset(&p->plan_items[i], 0, sizeof(p->plan_items[i]));
			snprintf(p->plan_items[i].name, sizeof(p->plan_items[i].name), "%s", item);
			p->nitems++;
		}
		p->plan_items[i].every_m = db_column_int64(st, 1);
		p->plan_items[i].every_months = (int)db_column_int64(st, 2);
		p->overridden[i] = 1;
	}
	db_finalize(st);
	return r;
}

int service_predict(struct db *db, struct telemetry *t, const struct service_plans *plans,
		    const char *vin, int64_t as_of_day, struct service_prediction *ret)
{
	struct odo_reading *rd = NULL;
	struct service_record *hist = NULL;
	struct telemetry_day *days = NULL;
	struct predict_input in = { 0 };
	size_t n = 0, nhist = 0, ndays = 0;
	int truncated = 0, r;

	memset(ret, 0, sizeof(*ret));
	if (!vin_valid(vin))
		return -ENOENT;
	snprintf(ret->vin, sizeof(ret->vin), "%s", vin);
	ret->plan = service_plan_for(plans, vin);
	ret->nitems = ret->plan->nitems;
	memcpy(ret->plan_items, ret->plan->items, ret->nitems * sizeof(ret->plan_items[0]));
	rd = calloc(SERVICE_READINGS_MAX, sizeof(*rd));
	if (!rd)
		return -ENOMEM;
	r = apply_overrides(db, vin, ret);
	if (r >= 0 && t) {
		r = telemetry_days(t, vin, as_of_day - (TELEMETRY_DAYS_MAX - 1), as_of_day, &days,
				   &ndays, &truncated);
		if (r == -ENOENT)
			r = 0;
		for (size_t i = 0; r >= 0 && i < ndays; i++)
			if (days[i].has_odometer &&
			    add_reading(rd, &n, days[i].day, days[i].last_odometer_m,
					READING_CAR)) {
				rd[n - 1].has_first = 1;
				rd[n - 1].first_odometer_m = days[i].first_odometer_m;
			}
	}
	if (r >= 0)
		r = imported_readings(db, vin, as_of_day, rd, &n);
	if (r >= 0)
		r = service_record_list(db, vin, as_of_day, &hist, &nhist);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < nhist; i++)
		if (hist[i].has_odometer)
			add_reading(rd, &n, hist[i].day, hist[i].odometer_m, READING_SERVICE);
	if (n == 0 && nhist == 0) {
		r = -ENOENT;
		goto out;
	}
	qsort(rd, n, sizeof(*rd), reading_cmp);
	in.as_of_day = as_of_day;
	in.readings = rd;
	in.nreadings = n;
	in.first_use_day = n ? rd[0].day : as_of_day;
	if (nhist && hist[nhist - 1].day < in.first_use_day)
		in.first_use_day = hist[nhist - 1].day;
	in.fleet_m_per_day = plans->fleet_m_per_day;
	ret->nreadings = n;
	r = predict_usage(&in, &ret->usage);
	for (size_t i = 0; r >= 0 && i < ret->nitems; i++) {
		struct last_service *ls = &ret->last[i];

		/* hist is newest first: the first record naming the item resets it. */
		for (size_t h = 0; h < nhist && !ls->done; h++)
			for (size_t k = 0; k < hist[h].nitems; k++)
				if (strcmp(hist[h].items[k], ret->plan_items[i].name) == 0) {
					ls->done = 1;
					ls->day = hist[h].day;
					ls->has_odometer = hist[h].has_odometer;
					ls->odometer_m = hist[h].odometer_m;
					break;
				}
		r = predict_item(&ret->plan_items[i], ls, &ret->usage, in.first_use_day, as_of_day,
				 &ret->items[i]);
	}
out:
	free(rd);
	free(hist);
	free(days);
	return r < 0 ? r : 0;
}

static json_t *day_json(int64_t day)
{
	char buf[16];

	service_day_name(day, buf, sizeof(buf));
	return json_string(buf);
}

static json_t *item_json(const struct service_prediction *p, size_t i)
{
	const struct item_prediction *it = &p->items[i];
	const struct plan_item *pi = &p->plan_items[i];
	const struct last_service *ls = &p->last[i];

	return json_pack("{s:s,s:o,s:o,s:s,s:{s:o,s:o},s:s,s:f,s:f,s:b,s:o,s:{s:I,s:i,s:b}}",
			 "item", it->item, "due_date", day_json(it->due_day), "due_odometer_km",
			 it->has_due_odometer ? json_real(it->due_odometer_m / 1000.0)
					      : json_null(),
			 "reason", predict_reason_name(it->reason), "range", "from",
			 day_json(it->due_day_lo), "to", day_json(it->due_day_hi), "basis",
			 predict_basis_name(it->basis), "distance_to_service_km",
			 it->distance_to_service_m / 1000.0, "time_to_service_days",
			 it->time_to_service_s / 86400.0, "is_service_due", it->is_service_due,
			 "last_service",
			 ls->done ? json_pack("{s:o,s:o}", "date", day_json(ls->day), "odometer_km",
					      ls->has_odometer ? json_real(ls->odometer_m / 1000.0)
							       : json_null())
				  : json_null(),
			 "interval", "every_km", (json_int_t)(pi->every_m / 1000), "every_months",
			 pi->every_months, "overridden", p->overridden[i]);
}

json_t *service_next_json(const struct service_prediction *p)
{
	size_t best = 0;

	if (!p->nitems)
		return json_null();
	for (size_t i = 1; i < p->nitems; i++)
		if (p->items[i].due_day < p->items[best].due_day)
			best = i;
	return json_pack("{s:s,s:o,s:o,s:s,s:b}", "item", p->items[best].item, "due_date",
			 day_json(p->items[best].due_day), "due_odometer_km",
			 p->items[best].has_due_odometer
				 ? json_real(p->items[best].due_odometer_m / 1000.0)
				 : json_null(),
			 "reason", predict_reason_name(p->items[best].reason), "is_service_due",
			 p->items[best].is_service_due);
}

json_t *service_prediction_json(const struct service_prediction *p)
{
	json_t *items = json_array();

	for (size_t i = 0; i < p->nitems; i++)
		json_array_append_new(items, item_json(p, i));
	return json_pack("{s:s,s:{s:s,s:o},s:{s:f,s:f,s:f,s:s,s:I},s:o,s:o}", "vin", p->vin, "plan",
			 "make", p->plan->make, "model",
			 p->plan->model[0] ? json_string(p->plan->model) : json_null(), "usage",
			 "km_per_day", p->usage.m_per_day / 1000.0, "km_per_day_lo",
			 p->usage.m_per_day_lo / 1000.0, "km_per_day_hi",
			 p->usage.m_per_day_hi / 1000.0, "basis",
			 predict_basis_name(p->usage.basis), "readings", (json_int_t)p->nreadings,
			 "items", items, "next_service", service_next_json(p));
}

/* ---- the vehicles -------------------------------------------------------- */

static int vin_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int service_vins(struct db *db, struct telemetry *t, char **ret_vins, size_t *ret_n,
		 int *ret_truncated)
{
	size_t cap = SERVICE_DUE_VEHICLES_MAX * 2 + TELEMETRY_LIST_MAX, n = 0, k = 0;
	char *v = calloc(cap, ACCOUNTS_VIN_STRIDE);
	struct db_stmt *st = NULL;
	int r;

	*ret_vins = NULL;
	*ret_n = 0;
	*ret_truncated = 0;
	if (!v)
		return -ENOMEM;
	r = db_prepare(db,
		       "SELECT vin FROM service_records UNION SELECT vin FROM "
		       "service_odometer_readings ORDER BY 1 LIMIT $1",
		       &st);
	if (r == 0) {
		db_bind_int64(st, 1, SERVICE_DUE_VEHICLES_MAX + 1);
		while ((r = db_step(st)) == 1)
			db_column_copy(st, 0, v + ACCOUNTS_VIN_STRIDE * n++, VIN_LEN + 1);
	}
	db_finalize(st);
	if (r >= 0 && t) {
		struct telemetry_list_filter f = { .limit = SERVICE_DUE_VEHICLES_MAX };
		struct telemetry_vehicle *rows = NULL;
		size_t nr = 0;
		int more = 0;

		r = telemetry_list(t, &f, &rows, &nr, &more);
		if (more)
			*ret_truncated = 1;
		for (size_t i = 0; r >= 0 && i < nr; i++)
			snprintf(v + ACCOUNTS_VIN_STRIDE * n++, VIN_LEN + 1, "%s", rows[i].vin);
		free(rows);
	}
	if (r < 0) {
		free(v);
		return r;
	}
	qsort(v, n, ACCOUNTS_VIN_STRIDE, vin_cmp);
	for (size_t i = 0; i < n; i++)
		if (vin_valid(v + ACCOUNTS_VIN_STRIDE * i) &&
		    (k == 0 ||
		     strcmp(v + ACCOUNTS_VIN_STRIDE * i, v + ACCOUNTS_VIN_STRIDE * (k - 1)) != 0))
			memmove(v + ACCOUNTS_VIN_STRIDE * k++, v + ACCOUNTS_VIN_STRIDE * i,
				ACCOUNTS_VIN_STRIDE);
	if (k > SERVICE_DUE_VEHICLES_MAX) {
		k = SERVICE_DUE_VEHICLES_MAX;
		*ret_truncated = 1;
	}
	*ret_vins = v;
	*ret_n = k;
	return 0;
}

json_t *service_due_json(struct db *db, struct telemetry *t, const struct service_plans *plans,
			 int64_t as_of_day, long within, int (*may_see)(const char *vin, void *arg),
			 void *arg, int *ret_err)
{
	json_t *items;
	char *vins = NULL;
	size_t n = 0;
	int truncated = 0;

	*ret_err = service_vins(db, t, &vins, &n, &truncated);
	if (*ret_err < 0)
		return NULL;
	items = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *vin = vins + i * ACCOUNTS_VIN_STRIDE;
		struct service_prediction p;

		if ((may_see && may_see(vin, arg) != 1) ||
		    service_predict(db, t, plans, vin, as_of_day, &p) < 0)
			continue;
		for (size_t k = 0; k < p.nitems; k++) {
			const struct item_prediction *it = &p.items[k];

			if (!it->is_service_due && it->due_day > as_of_day + within)
				continue;
			json_array_append_new(
				items,
				json_pack("{s:s,s:s,s:o,s:o,s:s,s:b}", "vin", vin, "item", it->item,
					  "due_date", day_json(it->due_day), "due_odometer_km",
					  it->has_due_odometer
						  ? json_real(it->due_odometer_m / 1000.0)
						  : json_null(),
					  "reason", predict_reason_name(it->reason),
					  "is_service_due", it->is_service_due));
		}
	}
	free(vins);
	return json_pack("{s:o,s:I,s:o,s:b}", "as_of", day_json(as_of_day), "within_days",
			 (json_int_t)within, "items", items, "truncated", truncated);
}
