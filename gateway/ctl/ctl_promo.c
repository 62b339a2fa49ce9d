/*
 * pitstopctl's promo commands (issue 11), clients of the gateway's API
 * (ctl_api.h).
 */
#include "ctl_api.h"

const char ctl_promo_usage[] = "";

int ctl_promo_command(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	(void)c;
	(void)o;
	(void)argc;
	return ctl_fail(2, "%s: not built yet", argv[0]);
}
