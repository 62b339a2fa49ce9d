/*
 * pitstopctl's poi commands (issue 11), clients of the gateway's API
 * (ctl_api.h).
 */
#include "ctl_api.h"

const char ctl_poi_usage[] = "";

int ctl_poi_command(struct ctl_client *c, const struct ctl_api_opts *o, int argc, char **argv)
{
	(void)c;
	(void)o;
	(void)argc;
	return ctl_fail(2, "%s: not built yet", argv[0]);
}
