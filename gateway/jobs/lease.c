/*
 * Leases; see lease.h. Statements are prepared per call: leases are asked
 * for once per job run, seconds or minutes apart.
 */
#include "lease.h"

#include <errno.h>

int lease_acquire(struct db *db, const char *name, const char *holder, int64_t now_ms,
		  int64_t ttl_ms)
{
	struct db_stmt *st = NULL;
	int r;

	if (ttl_ms <= 0)
		return -EINVAL;
	/* A row comes back only when holder has the lease after the statement. */
	r = db_prepare(db,
		       "INSERT INTO job_leases AS l(name, holder, expires_ms) VALUES($1, $2, $3)"
		       " ON CONFLICT(name) DO UPDATE SET holder = excluded.holder,"
		       " expires_ms = excluded.expires_ms"
		       " WHERE l.holder = excluded.holder OR l.expires_ms < $4 RETURNING holder",
		       &st);
	if (r < 0)
		return r;
	db_bind_text(st, 1, name);
	db_bind_text(st, 2, holder);
	db_bind_int64(st, 3, now_ms + ttl_ms);
	db_bind_int64(st, 4, now_ms);
	r = db_step(st);
	db_finalize(st);
	return r;
}

int lease_release(struct db *db, const char *name, const char *holder)
{
	struct db_stmt *st = NULL;
	int r = db_prepare(db, "DELETE FROM job_leases WHERE name = $1 AND holder = $2", &st);

	if (r < 0)
		return r;
	db_bind_text(st, 1, name);
	db_bind_text(st, 2, holder);
	r = db_run(st);
	db_finalize(st);
	return r;
}
