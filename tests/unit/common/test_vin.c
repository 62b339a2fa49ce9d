/*
 * Unit tests of common/vin.c: a table of well-formed and malformed VINs
 * (length, the letters I, O and Q, lower case, punctuation, embedded NUL,
 * NULL). The check digit is deliberately not enforced (see vin.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "vin.h"

static void test_vin_table(void **state)
{
	static const struct {
		const char *vin;
		int valid;
	} cases[] = {
		{ "WVWZZZ1JZXW000001", 1 },
		{ "1HGCM82633A004352", 1 },	/* North American, correct check digit */
		{ "1HGCM82603A004352", 1 },	/* wrong check digit: not enforced */
		{ "JH4KA7561PC008269", 1 },
		{ "00000000000000000", 1 },
		{ "ZZZZZZZZZZZZZZZZZ", 1 },
		{ "ABCDEFGHJKLMNPRST", 1 },	/* every letter but I, O, Q appears somewhere */
		{ "UVWXYZ12345678900", 1 },
		{ "", 0 },
		{ "WVWZZZ1JZXW00000", 0 },	/* 16 */
		{ "WVWZZZ1JZXW0000011", 0 },	/* 18 */
		{ "WVWZZZ1JZXW00000I", 0 },
		{ "OVWZZZ1JZXW000001", 0 },
		{ "WVWZZZ1JZXWQ00001", 0 },
		{ "wvwzzz1jzxw000001", 0 },
		{ "WVWZZZ1JZXw000001", 0 },
		{ "WVWZZZ1JZX 000001", 0 },
		{ "WVWZZZ1JZX-000001", 0 },
		{ "WVWZZZ1JZX/000001", 0 },
		{ "WVWZZZ1JZX\xc3\x9c""00001", 0 },
		{ "WVWZZZ1J\0ZXW000001", 0 },	/* embedded NUL: 8 characters */
		{ " WVWZZZ1JZXW000001", 0 },
		{ "WVWZZZ1JZXW000001\n", 0 },
		{ "@[`{WVWZZZ1JZXW00", 0 },	/* neighbours of A-Z */
		{ "/:WVWZZZ1JZXW0000", 0 },	/* neighbours of 0-9 */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("  '%s' -> %d\n", cases[i].vin, cases[i].valid);
		assert_int_equal(vin_valid(cases[i].vin), cases[i].valid);
	}
	assert_int_equal(vin_valid(NULL), 0);
}

static void test_vin_every_character(void **state)
{
	char vin[] = "WVWZZZ1JZXW000001";

	/* Each byte value at each position: valid iff 0-9 or A-Z without I, O, Q. */
	for (size_t pos = 0; pos < VIN_LEN; pos++) {
		for (int c = 1; c < 256; c++) {
			int want = (c >= '0' && c <= '9') ||
				   (c >= 'A' && c <= 'Z' && c != 'I' && c != 'O' && c != 'Q');
			char saved = vin[pos];

			vin[pos] = (char)c;
			assert_int_equal(vin_valid(vin), want);
			vin[pos] = saved;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vin_table),
		cmocka_unit_test(test_vin_every_character),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
