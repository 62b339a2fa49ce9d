/*
 * Private files: everything the agent writes to flash (queue.db with the
 * car's position history, offers.db and the screen file with promo codes)
 * is mode 0600, owned by the agent's user, whatever the umask.
 *
 * SQLite creates a database with 0644 & ~umask, and (3.40, checked) its
 * -wal, -shm and -journal files with the main file's mode. So a database is
 * created 0600 by us before SQLite opens it (fileperm_private), and its side
 * files are set to 0600 afterwards (fileperm_sqlite_sidecars) for those an
 * older agent left 0644. Existing files are tightened too, not only new ones.
 */
#ifndef PITSTOP_FILEPERM_H
#define PITSTOP_FILEPERM_H

#define FILEPERM_MODE 0600

/*
 * Creates path with mode FILEPERM_MODE if it does not exist, and sets an
 * existing one to that mode. Returns 0 or -errno (nothing is logged).
 */
int fileperm_private(const char *path);

/*
 * Sets the -wal, -shm and -journal files of the SQLite database db_path, if
 * they exist, to FILEPERM_MODE. Returns 0 or the first -errno (a missing
 * file is not an error).
 */
int fileperm_sqlite_sidecars(const char *db_path);

#endif
