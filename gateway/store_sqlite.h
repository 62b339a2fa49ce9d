/*
 * The SQLite backend of the gateway's store (see store.h). One connection,
 * used from the loop thread only. Callers go through store_open(); this
 * header exists so store.c can reach the backend's constructor.
 */
#ifndef PITSTOP_GATEWAY_STORE_SQLITE_H
#define PITSTOP_GATEWAY_STORE_SQLITE_H

#include <stddef.h>

#include "store.h"

/* The schema version this code writes (PRAGMA user_version). */
#define STORE_SQLITE_SCHEMA_VERSION 1

/*
 * Opens (STORE_READ_WRITE: creates and migrates) the database at path.
 * Returns 0 and *ret_store, or -errno with a one-line reason in err:
 * -ENOENT (read-only and no file), -EPROTO (schema newer than this code or
 * not ours), -EIO/-EACCES/... from SQLite.
 */
int store_sqlite_open(const char *path, enum store_mode mode, struct store **ret_store, char *err,
		      size_t errlen);

#endif
