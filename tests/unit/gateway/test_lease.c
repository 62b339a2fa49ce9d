/*
 * Unit tests of job leases (gateway/jobs/lease.c) with two handles on one
 * database, as two gateway instances have them, on whichever backend
 * db_test_util.h selects: the first asker holds the lease, the other does
 * not get it until it expires, renewing keeps it, releasing hands it over.
 */
#include "db_test_util.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "lease.h"
#include "schema.h"

static const char SWEEP[] = "sweep";

static void test_two_instances(void **state)
{
	struct db *a = NULL, *b = NULL;
	char url[512], err[512];

	(void)state;
	assert_int_equal(db_test_open("lease", &a), 0);
	if (schema_migrate(a, err, sizeof(err)) < 0)
		fail_msg("schema_migrate: %s", err);
	assert_int_equal(db_test_url("lease", url, sizeof(url)), 0);
	assert_int_equal(db_open(url, DB_READ_WRITE, &b, err, sizeof(err)), 0);
	assert_int_equal(schema_migrate(b, err, sizeof(err)), 0);

	/* A asks first and holds it until 6000 */
	assert_int_equal(lease_acquire(a, SWEEP, "gw-a", 1000, 5000), 1);
	assert_int_equal(lease_acquire(b, SWEEP, "gw-b", 2000, 5000), 0);
	/* A renews at 4000: now until 9000, so B still waits at 7000 */
	assert_int_equal(lease_acquire(a, SWEEP, "gw-a", 4000, 5000), 1);
	assert_int_equal(lease_acquire(b, SWEEP, "gw-b", 7000, 5000), 0);
	assert_int_equal(lease_acquire(b, SWEEP, "gw-b", 9000, 5000), 0); /* not yet expired */
	/* A stopped renewing: once expired, B takes it, and A no longer has it */
	assert_int_equal(lease_acquire(b, SWEEP, "gw-b", 9001, 5000), 1);
	assert_int_equal(lease_acquire(a, SWEEP, "gw-a", 9002, 5000), 0);

	/* other leases are independent */
	assert_int_equal(lease_acquire(a, "report", "gw-a", 9003, 5000), 1);

	/* releasing what one does not hold changes nothing */
	assert_int_equal(lease_release(a, SWEEP, "gw-a"), 0);
	assert_int_equal(lease_acquire(a, SWEEP, "gw-a", 9004, 5000), 0);
	/* the holder releases: the other takes it at once, long before expiry */
	assert_int_equal(lease_release(b, SWEEP, "gw-b"), 0);
	assert_int_equal(lease_acquire(a, SWEEP, "gw-a", 9005, 5000), 1);
	assert_int_equal(lease_acquire(b, SWEEP, "gw-b", 9006, 5000), 0);

	/* inside a transaction of the asker's, committed with it */
	assert_int_equal(db_begin(a), 0);
	assert_int_equal(lease_acquire(a, "inside", "gw-a", 10000, 5000), 1);
	assert_int_equal(db_commit(a), 0);
	assert_int_equal(lease_acquire(b, "inside", "gw-b", 11000, 5000), 0);

	assert_int_equal(lease_acquire(a, SWEEP, "gw-a", 9007, 0), -EINVAL);
	assert_int_equal(lease_acquire(a, SWEEP, "gw-a", 9007, -1), -EINVAL);
	db_close(b);
	db_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_two_instances),
	};

	fprintf(stderr, "lease tests on %s\n", db_test_backend());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
