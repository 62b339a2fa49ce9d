/*
 * Unit tests of common/grow.c: doubling from the first capacity, the stated
 * maximum is never passed (-E2BIG at it), a failure changes nothing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "grow.h"

static void test_doubles_up_to_max(void **state)
{
	int *arr = NULL;
	size_t cap = 0;

	(void)state;
	for (size_t n = 0; n < 10; n++) {
		assert_int_equal(grow_for((void **)&arr, &cap, n, sizeof(*arr), 2, 10), 0);
		arr[n] = (int)n; /* room for element n */
		assert_true(cap > n && cap <= 10);
	}
	assert_int_equal(cap, 10); /* 2, 4, 8, then capped at 10 */
	assert_int_equal(grow_for((void **)&arr, &cap, 10, sizeof(*arr), 2, 10), -E2BIG);
	assert_int_equal(cap, 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(arr[i], i);
	free(arr);
}

static void test_overflow_refused(void **state)
{
	void *arr = NULL;
	size_t cap = 0;

	(void)state;
	assert_int_equal(grow_for(&arr, &cap, 0, SIZE_MAX / 2, 4, 100), -ENOMEM);
	assert_null(arr);
	assert_int_equal(cap, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doubles_up_to_max),
		cmocka_unit_test(test_overflow_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
