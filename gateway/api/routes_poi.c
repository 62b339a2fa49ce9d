/*
 * The API's poi routes (issue 11). Handlers call the poi domain's
 * functions; api_internal.h has the shared argument and visibility helpers.
 */
#include "api_internal.h"

const struct route_table api_routes_poi = { NULL, 0 };
