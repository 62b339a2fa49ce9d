/*
 * Unit tests of the service domain (gateway/service/service.c) on whichever
 * backend db_test_util.h selects: the plans file (the repo's loads; a bad
 * one is refused naming file:line or the value), overrides, a recorded
 * service resetting its items (and only as of its date), CSV validation
 * (a bad line rejects the file: nothing returned, errors as FILE:LINE) and
 * imports visible only once committed.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "accounts.h"
#include "db.h"
#include "schema.h"
#include "service.h"

static const char VW[] = "WVWZZZ1KZAW000001";	 /* WMI WVW: volkswagen */
static const char OTHER[] = "XTA21099012345678"; /* not in the WMI list: default */
static const char PLANS[] = PITSTOP_SOURCE_DIR "/gateway/service/plans.json";
#define DAY_2024_01_01 19723
#define NOW_MS ((int64_t)DAY_2024_01_01 * 86400000 + 200LL * 86400000)

struct fixture {
	struct db *db;
	struct accounts *acc;
	struct service_plans plans;
};

static int setup(void **state)
{
	static int count;
	struct fixture *f = calloc(1, sizeof(*f));
	char name[64], err[600];

	assert_non_null(f);
	snprintf(name, sizeof(name), "service_%d", count++);
	assert_int_equal(db_test_open(name, &f->db), 0);
	if (schema_migrate(f->db, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(accounts_new(f->db, &f->acc), 0);
	if (service_plans_load(PLANS, &f->plans, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	service_plans_free(&f->plans);
	accounts_free(f->acc);
	db_close(f->db);
	free(f);
	return 0;
}

/* Writes text to a new temp file; returns its path (static buffer per call site). */
static void write_tmp(char *path, size_t size, const char *text)
{
	int fd;

	snprintf(path, size, "/tmp/pitstop-test-service-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static const struct plan_item *item_of(const struct service_plan *p, const char *name)
{
	for (size_t i = 0; i < p->nitems; i++)
		if (strcmp(p->items[i].name, name) == 0)
			return &p->items[i];
	return NULL;
}

static void test_plans_file(void **state)
{
	struct fixture *f = *state;
	const struct service_plan *vw = service_plan_for(&f->plans, VW);
	const struct service_plan *def = service_plan_for(&f->plans, OTHER);
	const struct plan_item *oil;

	assert_string_equal(service_make_of(&f->plans, VW), "volkswagen");
	assert_string_equal(service_make_of(&f->plans, OTHER), "");
	assert_string_equal(vw->make, "volkswagen");
	assert_string_equal(def->make, "default");
	oil = item_of(def, "oil_service");
	assert_non_null(oil);
	assert_int_equal(oil->every_m, 15000 * 1000);
	assert_int_equal(oil->every_months, 24);
	assert_int_equal(item_of(def, "inspection")->first_months, 36);
	assert_int_equal(item_of(vw, "oil_service")->every_m, 30000 * 1000);
	/* A model by its VDS (VIN characters 4..). */
	assert_string_equal(service_plan_for(&f->plans, "JTDBE32K000000001")->model, "Corolla");
	assert_string_equal(service_plan_for(&f->plans, "JTDKB20U000000001")->model, "");
}

static void test_plans_bad(void **state)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "{\"plans\": [\n{\"make\": \"default\",\n \"items\": [}\n]}", ":3:" },
		{ "{\"plans\": [{\"make\": \"bmw\", \"items\": [{\"name\": \"oil_service\", "
		  "\"every_km\": 1}]}]}",
		  "no plan has make \"default\"" },
		{ "{\"plans\": [{\"make\": \"default\", \"items\": [{\"name\": \"oil_service\", "
		  "\"every_km\": -5}]}]}",
		  "plans[0].items[0] (oil_service).every_km" },
		{ "{\"plans\": [{\"make\": \"default\", \"items\": [{\"name\": \"Oil\"}]}]}",
		  "plans[0].items[0].name" },
		{ "{\"plans\": [{\"make\": \"default\", \"items\": [{\"name\": \"x\"}]}]}",
		  "needs every_km or every_months" },
	};
	struct service_plans p;
	char path[64], err[600];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_tmp(path, sizeof(path), cases[i].text);
		assert_int_equal(service_plans_load(path, &p, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].want) || strncmp(err, path, strlen(path)) != 0)
			fail_msg("case %zu: '%s' should name %s and %s", i, err, path,
				 cases[i].want);
		unlink(path);
	}
	assert_int_equal(service_plans_load("/nonexistent/plans.json", &p, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/plans.json"));
}

static int64_t count(struct db *db, const char *sql)
{
	struct db_stmt *st = NULL;
	int64_t v;

	assert_int_equal(db_prepare(db, sql, &st), 0);
	assert_int_equal(db_step(st), 1);
	v = db_column_int64(st, 0);
	db_finalize(st);
	return v;
}

static void record(struct fixture *f, const char *vin, int64_t day, int64_t km, const char *items)
{
	struct service_record rec;
	char err[200];

	memset(&rec, 0, sizeof(rec));
	snprintf(rec.vin, sizeof(rec.vin), "%s", vin);
	rec.day = day;
	rec.has_odometer = 1;
	rec.odometer_m = km * 1000;
	assert_int_equal(service_items_parse(items, &rec, err, sizeof(err)), 0);
	assert_int_equal(service_record_add(f->db, f->acc, NULL, &rec, NOW_MS, NULL), 0);
}

static size_t index_of(const struct service_prediction *p, const char *item)
{
	for (size_t i = 0; i < p->nitems; i++)
		if (strcmp(p->plan_items[i].name, item) == 0)
			return i;
	fail_msg("no item %s", item);
	return 0;
}

static void test_override(void **state)
{
	struct fixture *f = *state;
	struct service_prediction p;
	size_t i;

	record(f, OTHER, DAY_2024_01_01, 40000, "inspection");
	assert_int_equal(service_override_set(f->db, f->acc, NULL, OTHER, "oil_service", 10000000,
					      12, NOW_MS),
			 0);
	assert_int_equal(
		service_override_set(f->db, f->acc, NULL, OTHER, "oil_service", 0, 0, NOW_MS),
		-EINVAL);
	assert_int_equal(service_predict(f->db, NULL, &f->plans, OTHER, DAY_2024_01_01 + 10, &p),
			 0);
	i = index_of(&p, "oil_service");
	assert_true(p.overridden[i]);
	assert_int_equal(p.plan_items[i].every_m, 10000000);
	assert_int_equal(p.plan_items[i].every_months, 12);
	assert_false(p.overridden[index_of(&p, "brake_fluid")]);
	/* Set again: replaced, not added. */
	assert_int_equal(service_override_set(f->db, f->acc, NULL, OTHER, "oil_service", 20000000,
					      0, NOW_MS),
			 0);
	assert_int_equal(count(f->db, "SELECT COUNT(*) FROM service_overrides"), 1);
	assert_int_equal(
		count(f->db, "SELECT COUNT(*) FROM audit_log WHERE action = 'service.override'"),
		2);
}

static void test_record_resets_items(void **state)
{
	struct fixture *f = *state;
	struct service_prediction before, after, early;
	size_t oil, brake;

	record(f, VW, DAY_2024_01_01, 50000, "inspection");
	assert_int_equal(service_predict(f->db, NULL, &f->plans, VW, DAY_2024_01_01 + 100, &before),
			 0);
	oil = index_of(&before, "oil_service");
	brake = index_of(&before, "brake_fluid");
	assert_false(before.last[oil].done);
	record(f, VW, DAY_2024_01_01 + 90, 55000, "oil_service;brake_fluid");
	assert_int_equal(service_predict(f->db, NULL, &f->plans, VW, DAY_2024_01_01 + 100, &after),
			 0);
	assert_true(after.last[oil].done);
	assert_int_equal(after.last[oil].day, DAY_2024_01_01 + 90);
	assert_int_equal(after.last[oil].odometer_m, 55000000);
	assert_true(after.last[brake].done);
	assert_int_equal(after.last[index_of(&after, "inspection")].day, DAY_2024_01_01);
	assert_false(after.last[index_of(&after, "timing_belt")].done);
	/* Reset: the oil service is due 30,000 km after the new one. */
	assert_true(after.items[oil].due_day > before.items[oil].due_day ||
		    after.items[oil].due_odometer_m > before.items[oil].due_odometer_m);
	/* As known before that visit: not done yet. */
	assert_int_equal(service_predict(f->db, NULL, &f->plans, VW, DAY_2024_01_01 + 50, &early),
			 0);
	assert_false(early.last[oil].done);
	assert_int_equal(
		count(f->db, "SELECT COUNT(*) FROM audit_log WHERE action = 'service.record'"), 2);
	assert_int_equal(service_predict(f->db, NULL, &f->plans, "WVWZZZ1KZAW000009",
					 DAY_2024_01_01, &early),
			 -ENOENT);
}

static char errors[4096];

static void collect(const char *msg, void *arg)
{
	(void)arg;
	strncat(errors, msg, sizeof(errors) - strlen(errors) - 2);
	strcat(errors, "\n");
}

static void test_csv_validation(void **state)
{
	struct fixture *f = *state;
	struct service_import_row *rows = NULL;
	struct service_record *hist = NULL;
	size_t nhist = 0;
	char path[64];
	int64_t id = 0;
	int n;

	write_tmp(path, sizeof(path),
		  "vin,date,odometer_km,items\n"
		  "WVWZZZ1KZAW000001,2023-05-01,41000,oil_service;brake_fluid\n"
		  "WVWZZZ1KZAW00000,2023-06-01,42000,oil_service\n"
		  "\"WVWZZZ1KZAW000002\",2023-13-01,42000,oil_service\n"
		  "WVWZZZ1KZAW000002,2023-06-01,-3,oil_service\n"
		  "WVWZZZ1KZAW000002,2023-06-01,42000,Oil Service\n");
	errors[0] = '\0';
	n = service_csv_read(path, SERVICE_IMPORT_SERVICES, collect, NULL, NULL, &rows);
	assert_int_equal(n, -EINVAL);
	assert_null(rows);
	for (int line = 3; line <= 6; line++) {
		char want[96];

		snprintf(want, sizeof(want), "%s:%d: ", path, line);
		if (!strstr(errors, want))
			fail_msg("no error for line %d in:\n%s", line, errors);
	}
	assert_null(strstr(errors, ":2: "));
	assert_non_null(strstr(errors, "vin:"));
	assert_non_null(strstr(errors, "date:"));
	assert_non_null(strstr(errors, "odometer_km:"));
	unlink(path);

	/* A bad header is a bad line too. */
	write_tmp(path, sizeof(path), "vin,time,km\nWVWZZZ1KZAW000001,2023-05-01,41000\n");
	errors[0] = '\0';
	assert_int_equal(
		service_csv_read(path, SERVICE_IMPORT_ODOMETER, collect, NULL, NULL, &rows),
		-EINVAL);
	assert_non_null(strstr(errors, ":1: the header line must be vin,time,odometer_km"));
	unlink(path);

	/* A good file: every row; imported, invisible until committed. */
	write_tmp(path, sizeof(path),
		  "vin,date,odometer_km,items\n"
		  "WVWZZZ1KZAW000001,2023-05-01,41000,oil_service;brake_fluid\n"
		  "WVWZZZ1KZAW000001,2022-05-01,,inspection\n");
	n = service_csv_read(path, SERVICE_IMPORT_SERVICES, collect, NULL, NULL, &rows);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].rec.nitems, 2);
	assert_false(rows[1].has_odometer);
	unlink(path);
	assert_int_equal(service_import_begin(f->db, f->acc, NULL, SERVICE_IMPORT_SERVICES, "x.csv",
					      3, NOW_MS, &id),
			 0);
	assert_int_equal(service_import_add(f->db, id, rows, 2, NOW_MS), 0);
	assert_int_equal(service_record_list(f->db, VW, INT64_MAX, &hist, &nhist), 0);
	assert_int_equal(nhist, 0);
	/* Not every announced row arrived: the commit is refused. */
	assert_int_equal(service_import_commit(f->db, f->acc, NULL, id, NOW_MS), -EINVAL);
	assert_int_equal(service_import_add(f->db, id, rows, 2, NOW_MS), -EINVAL); /* 4 > 3 */
	assert_int_equal(service_import_add(f->db, id, rows, 1, NOW_MS), 0);
	assert_int_equal(service_import_commit(f->db, f->acc, NULL, id, NOW_MS), 3);
	assert_int_equal(service_record_list(f->db, VW, INT64_MAX, &hist, &nhist), 0);
	assert_int_equal(nhist, 3);
	free(hist);
	free(rows);
	assert_int_equal(service_import_commit(f->db, f->acc, NULL, id, NOW_MS), -ENOENT);
	assert_int_equal(
		count(f->db, "SELECT COUNT(*) FROM audit_log WHERE action = 'service.import'"), 1);
}

static void test_odometer_import(void **state)
{
	struct fixture *f = *state;
	struct service_import_row *rows = NULL;
	struct service_prediction p;
	char path[64];
	int64_t id = 0;
	int n;

	write_tmp(path, sizeof(path),
		  "\xef\xbb\xbfVIN,Time,Odometer_km\r\n"
		  "XTA21099012345678,2023-01-01,10000\r\n"
		  "XTA21099012345678,2023-04-01T08:00:00Z,12500.5\n"
		  "XTA21099012345678,2023-07-01T10:00:00+02:00,15000\n");
	n = service_csv_read(path, SERVICE_IMPORT_ODOMETER, collect, NULL, NULL, &rows);
	unlink(path);
	assert_int_equal(n, 3);
	assert_int_equal(rows[1].odometer_m, 12500500);
	assert_int_equal(rows[2].time_ms % 86400000, 8 * 3600000);
	assert_int_equal(service_import_begin(f->db, f->acc, NULL, SERVICE_IMPORT_ODOMETER,
					      "odo.csv", 3, NOW_MS, &id),
			 0);
	assert_int_equal(service_import_add(f->db, id, rows, 3, NOW_MS), 0);
	free(rows);
	/* Uncommitted: nothing known about the car. */
	assert_int_equal(service_predict(f->db, NULL, &f->plans, OTHER, DAY_2024_01_01, &p),
			 -ENOENT);
	assert_int_equal(service_import_commit(f->db, f->acc, NULL, id, NOW_MS), 3);
	assert_int_equal(service_predict(f->db, NULL, &f->plans, OTHER, DAY_2024_01_01, &p), 0);
	assert_int_equal(p.nreadings, 3);
	/* As of spring 2023 only the first two readings were known. */
	assert_int_equal(service_predict(f->db, NULL, &f->plans, OTHER, DAY_2024_01_01 - 200, &p),
			 0);
	assert_int_equal(p.nreadings, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plans_file, setup, teardown),
		cmocka_unit_test(test_plans_bad),
		cmocka_unit_test_setup_teardown(test_override, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_resets_items, setup, teardown),
		cmocka_unit_test_setup_teardown(test_csv_validation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_odometer_import, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
