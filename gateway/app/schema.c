/*
 * The list of the gateway's domains and their migrations; see schema.h.
 * Adding a domain with tables means adding it here, once.
 */
#include "schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounts.h"
#include "counters.h"
#include "lease.h"
#include "offer_log.h"
#include "poi.h"
#include "profiles.h"
#include "service.h"
#include "telemetry.h"

/* Each domain's migrations; their order is the order they are applied in. */
static const struct {
	const struct db_migration *list;
	const size_t *count;
} domains[] = {
	{ telemetry_migrations, &telemetry_migrations_count },
	{ offers_migrations, &offers_migrations_count },
	{ ingest_migrations, &ingest_migrations_count },
	{ jobs_migrations, &jobs_migrations_count },
	{ accounts_migrations, &accounts_migrations_count },
	{ service_migrations, &service_migrations_count },
	{ poi_migrations, &poi_migrations_count },
	{ profiles_migrations, &profiles_migrations_count },
};
#define N_DOMAINS (sizeof(domains) / sizeof(domains[0]))

int schema_migrate(struct db *db, char *err, size_t errlen)
{
	struct db_migration *all = NULL;
	size_t n = 0, k = 0;
	int r;

	for (size_t i = 0; i < N_DOMAINS; i++)
		n += *domains[i].count;
	all = calloc(n, sizeof(*all));
	if (!all) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < N_DOMAINS; i++)
		for (size_t j = 0; j < *domains[i].count; j++)
			all[k++] = domains[i].list[j];
	r = db_migrate(db, all, n, err, errlen);
	free(all);
	return r;
}

int schema_open(const char *url, enum db_mode mode, struct db **ret_db, char *err, size_t errlen)
{
	struct db *db = NULL;
	char why[512], shown[512];
	int r;

	r = db_open(url, mode, &db, err, errlen);
	if (r < 0)
		return r;
	r = schema_migrate(db, why, sizeof(why));
	if (r < 0) {
		db_url_redact(url, shown, sizeof(shown));
		snprintf(err, errlen, "%s: %s", shown, why);
		db_close(db);
		return r;
	}
	*ret_db = db;
	return 0;
}
