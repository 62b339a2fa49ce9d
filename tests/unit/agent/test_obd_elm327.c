/*
 * Unit tests of the ELM327 answer parser (agent/obd_elm327.c): one table of
 * answers as adapters really print them (echo, spaces or none, CR/LF,
 * SEARCHING..., several ECUs, multi-frame, every error text, garbage) and
 * what each must parse to.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "obd_elm327.h"

struct want {
	const char *name;
	const char *text; /* the answer before '>' */
	const char *cmd;
	enum elm327_kind kind;
	size_t nmsgs;
	const char *hex[3]; /* each message as hex, no spaces */
};

static const struct want cases[] = {
	{ "plain", "41 0D 32\r\r", "010D", ELM327_DATA, 1, { "410D32" } },
	{ "echo on", "010D\r41 0D 32\r\r", "010D", ELM327_DATA, 1, { "410D32" } },
	{ "echo with spaces", "01 0d\r41 0D 32\r\r", "010D", ELM327_DATA, 1, { "410D32" } },
	{ "no spaces (ATS0)", "410D32\r\r", "010D", ELM327_DATA, 1, { "410D32" } },
	{ "LF too", "\r\n41 0D 32\r\n\r\n", "010D", ELM327_DATA, 1, { "410D32" } },
	{ "lower case", "41 0d 3a\r", "010D", ELM327_DATA, 1, { "410D3A" } },
	{ "searching first",
	  "SEARCHING...\r41 00 BE 3E B8 11\r\r",
	  "0100",
	  ELM327_DATA,
	  1,
	  { "4100BE3EB811" } },
	{ "bus init ok", "BUS INIT: ...OK\r41 2F 80\r", "012F", ELM327_DATA, 1, { "412F80" } },
	{ "two ECUs",
	  "41 00 BE 3E B8 11\r41 00 80 00 00 01\r\r",
	  "0100",
	  ELM327_DATA,
	  2,
	  { "4100BE3EB811", "410080000001" } },
	{ "multi-frame",
	  "00A\r0: 41 A6 00 01 E2\r1: 40 00 00 00 00 00 00\r\r",
	  "01A6",
	  ELM327_DATA,
	  1,
	  { "41A60001E24000000000" } },
	{ "multi-frame short", "00A\r0: 41 A6 00 01 E2\r\r", "01A6", ELM327_GARBAGE, 0, { 0 } },
	{ "negative", "7F 01 12\r\r", "01A6", ELM327_DATA, 1, { "7F0112" } },
	{ "garbage then data",
	  "\x01\xff#%&G@RB\r41 0D 32\r",
	  "010D",
	  ELM327_DATA,
	  1,
	  { "410D32" } },
	{ "odd digits", "41 0D 3\r", "010D", ELM327_GARBAGE, 0, { 0 } },
	{ "empty", "", "010D", ELM327_GARBAGE, 0, { 0 } },
	{ "no data", "NO DATA\r\r", "010D", ELM327_NO_DATA, 0, { 0 } },
	{ "searching, no data", "SEARCHING...\rNO DATA\r", "0100", ELM327_NO_DATA, 0, { 0 } },
	{ "unable", "SEARCHING...\rUNABLE TO CONNECT\r\r", "0100", ELM327_UNABLE, 0, { 0 } },
	{ "bus init error", "BUS INIT: ...ERROR\r\r", "0100", ELM327_BUS_ERROR, 0, { 0 } },
	{ "can error", "CAN ERROR\r", "0100", ELM327_BUS_ERROR, 0, { 0 } },
	{ "stopped", "STOPPED\r", "010D", ELM327_STOPPED, 0, { 0 } },
	{ "unknown", "?\r\r", "ATXX", ELM327_UNKNOWN, 0, { 0 } },
	{ "ok", "ATE0\rOK\r\r", "ATE0", ELM327_TEXT, 0, { 0 } },
	{ "reset", "ATZ\r\r\rELM327 v1.5\r\r", "ATZ", ELM327_TEXT, 0, { 0 } },
};

/* Hex of a parsed message. */
static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02X", b[i]);
	out[2 * n] = '\0';
}

static void test_answers(void **state)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct want *w = &cases[i];
		struct elm327_answer a;
		char got[2 * ELM327_MAX_BYTES + 1];

		print_message("  %s\n", w->name);
		elm327_parse(w->text, strlen(w->text), w->cmd, &a);
		assert_int_equal(a.kind, w->kind);
		assert_int_equal(a.nmsgs, w->nmsgs);
		for (size_t k = 0; k < w->nmsgs; k++) {
			hex(a.msgs[k].b, a.msgs[k].len, got);
			assert_string_equal(got, w->hex[k]);
		}
	}
}

/* Answers with NUL bytes in them (strlen would stop there). */
static void test_nul_bytes(void **state)
{
	static const char inside[] = "41 0D\x00\x80 32\r";
	static const char only[] = "\x00\xff#%&GARB@GE\x7f\r";
	struct elm327_answer a;

	elm327_parse(inside, sizeof(inside) - 1, "010D", &a);
	assert_int_equal(a.kind, ELM327_DATA);
	assert_int_equal(a.nmsgs, 1);
	assert_int_equal(a.msgs[0].len, 3);
	assert_int_equal(a.msgs[0].b[2], 0x32);
	elm327_parse(only, sizeof(only) - 1, "010D", &a);
	assert_int_equal(a.kind, ELM327_GARBAGE);
}

static void test_error_text_kept(void **state)
{
	struct elm327_answer a;

	elm327_parse("BUS INIT: ...ERROR\r", 19, "0100", &a);
	assert_string_equal(a.text, "BUS INIT: ...ERROR");
}

static void test_bounds(void **state)
{
	/* more ECUs than ELM327_MAX_MSGS, and a line longer than a message holds */
	char buf[ELM327_MAX_ANSWER];
	struct elm327_answer a;
	size_t n = 0;

	for (int i = 0; i < ELM327_MAX_MSGS + 3; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "41 0D %02X\r", i);
	elm327_parse(buf, n, "010D", &a);
	assert_int_equal(a.kind, ELM327_DATA);
	assert_int_equal(a.nmsgs, ELM327_MAX_MSGS);
	n = 0;
	for (int i = 0; i < ELM327_MAX_BYTES + 1; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%02X", i);
	elm327_parse(buf, n, "010D", &a);
	assert_int_equal(a.kind, ELM327_GARBAGE);
	assert_true(elm327_baud_valid(38400) && !elm327_baud_valid(38401));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answers),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_error_text_kept),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
