/*
 * Private file modes; see fileperm.h. open() is given the mode and fchmod()
 * sets it again, because open() applies the umask and leaves the mode of an
 * existing file alone.
 */
#include "fileperm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int fileperm_private(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, FILEPERM_MODE);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fchmod(fd, FILEPERM_MODE) < 0)
		r = -errno;
	close(fd);
	return r;
}

int fileperm_sqlite_sidecars(const char *db_path)
{
	static const char *const suffixes[] = { "-wal", "-shm", "-journal" };
	int r = 0;

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		char side[4096];
		int n = snprintf(side, sizeof(side), "%s%s", db_path, suffixes[i]);

		if (n < 0 || (size_t)n >= sizeof(side)) {
			if (r == 0)
				r = -ENAMETOOLONG;
			continue;
		}
		if (chmod(side, FILEPERM_MODE) < 0 && errno != ENOENT && r == 0)
			r = -errno;
	}
	return r;
}
