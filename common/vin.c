/*
 * VIN syntax check (see vin.h). Only the alphabet and the length are
 * checked: the check digit is a North American rule, so a European or Asian
 * VIN with any character at position 9 is still accepted.
 */
#include "vin.h"

#include <stddef.h>

/* Returns 1 if c may appear in a VIN: 0-9 and A-Z except I, O and Q. */
static int vin_char_ok(char c)
{
	if (c >= '0' && c <= '9')
		return 1;
	if (c < 'A' || c > 'Z')
		return 0;
	return c != 'I' && c != 'O' && c != 'Q';
}

int vin_valid(const char *s)
{
	size_t i;

	if (!s)
		return 0;
	for (i = 0; i < VIN_LEN; i++)
		if (!vin_char_ok(s[i])) /* also stops at a short string's NUL */
			return 0;
	return s[VIN_LEN] == '\0';
}
