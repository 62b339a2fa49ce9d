/*
 * Leases: with several gateway instances on one database, a scheduled job
 * (a sweep, a report, a reminder run) must run once, not once per
 * instance. Before each run an instance asks for the job's lease; the
 * jobs domain owns the table job_leases (gateway/jobs/schema/).
 *
 * One atomic statement takes or renews a lease: it is granted when nobody
 * holds it, when the asker holds it already, or when the holder's lease
 * expired (the holder died or lost its database). Nothing is read first,
 * so two instances asking at once cannot both be granted it.
 */
#ifndef PITSTOP_LEASE_H
#define PITSTOP_LEASE_H

#include <stdint.h>

#include "db.h"

/* The jobs domain's migrations, for db_migrate() (generated from schema/). */
extern const struct db_migration jobs_migrations[];
extern const size_t jobs_migrations_count;

/*
 * Takes or renews lease `name` for `holder` until now_ms + ttl_ms (ttl_ms >
 * 0), in its own statement (inside the caller's transaction if one is
 * open). Returns 1 when holder has the lease, 0 when another holder has an
 * unexpired one, or an error class.
 */
int lease_acquire(struct db *db, const char *name, const char *holder, int64_t now_ms,
		  int64_t ttl_ms);

/* Gives the lease up if holder has it (so another instance need not wait
 * for it to expire). Returns 0 or an error class. */
int lease_release(struct db *db, const char *name, const char *holder);

#endif
