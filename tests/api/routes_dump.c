/*
 * Prints the HTTP API's route table, one "METHOD PATTERN" a line, for
 * tests/api/test_openapi.py, which checks docs/openapi.yaml against it: the
 * description must name exactly the routes that exist.
 */
#include <stdio.h>

#include "api_internal.h"

int main(void)
{
	const struct api_route_info *routes;
	size_t n = api_routes(&routes);

	for (size_t i = 0; i < n; i++)
		printf("%s %s\n", routes[i].method, routes[i].pattern);
	return fflush(stdout) == 0 ? 0 : 1;
}
