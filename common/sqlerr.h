/*
 * SQLite result codes as negative errno values, one mapping for every module
 * that keeps data in SQLite (the agent's queue and offers, the gateway's
 * store), so callers see the same error for the same failure everywhere.
 */
#ifndef PITSTOP_SQLERR_H
#define PITSTOP_SQLERR_H

/*
 * Returns 0 for SQLITE_OK/ROW/DONE, else a negative errno: -ENOSPC (disk
 * full), -ENOMEM, -EBUSY (busy/locked), -EROFS (read-only database), -EACCES
 * (permission, authorizer), -EEXIST (constraint), -ENOENT (cannot open),
 * -EBADMSG (corrupt, not a database), -EMSGSIZE (too big), -EIO otherwise.
 * Extended result codes are accepted.
 */
int sqlerr_errno(int rc);

#endif
