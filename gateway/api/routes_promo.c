/*
 * The API's promo routes (issue 11). Handlers call the promo domain's
 * functions; api_internal.h has the shared argument and visibility helpers.
 */
#include "api_internal.h"

const struct route_table api_routes_promo = { NULL, 0 };
