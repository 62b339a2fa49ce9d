/* Growing arrays; see grow.h. */
#include "grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int grow_for(void **arr, size_t *cap, size_t n, size_t elem, size_t first, size_t max)
{
	size_t ncap;
	void *g;

	if (n >= max)
		return -E2BIG;
	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : first;
	if (ncap > max)
		ncap = max;
	if (ncap <= n || ncap > SIZE_MAX / elem)
		return -ENOMEM;
	g = realloc(*arr, ncap * elem);
	if (!g)
		return -ENOMEM;
	*arr = g;
	*cap = ncap;
	return 0;
}
