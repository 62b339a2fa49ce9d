/*
 * The gateway's database as a whole: every domain's migrations, in the
 * order they depend on each other, and the one call that opens a database
 * and brings it up to date (the daemon) or checks that it is (pitstopctl).
 */
#ifndef PITSTOP_SCHEMA_H
#define PITSTOP_SCHEMA_H

#include <stddef.h>

#include "db.h"

/*
 * Runs db_migrate() over all domains on db (opened by the caller: a test's
 * fresh database, or schema_open()): a read-write handle migrates, a
 * read-only one fails unless the schema is current. On failure err says
 * which migration and why. Returns 0 or -errno.
 */
int schema_migrate(struct db *db, char *err, size_t errlen);

/*
 * Opens url (db_open()) and runs db_migrate() over all domains: read-write
 * handles migrate, read-only ones fail unless the schema is current. On
 * failure err says what and the handle is closed. Returns 0 or -errno.
 */
int schema_open(const char *url, enum db_mode mode, struct db **ret_db, char *err, size_t errlen);

#endif
