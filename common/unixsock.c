/* Listening unix sockets; see unixsock.h. */
#include "unixsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int unixsock_listen(const char *path, mode_t mode, int backlog, int *ret_fd, char *err,
		    size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(path);
	struct stat st;
	const char *op;
	int fd, r;

	if (n >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "the path is too long for a unix socket (%zu bytes at most)",
			 sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, n + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "exists and is not a socket; not replacing it");
			return -EEXIST;
		}
		unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "socket: %s", strerror(-r));
		return r;
	}
	op = "bind";
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (r == 0) {
		op = "chmod";
		r = chmod(path, mode);
	}
	if (r == 0) {
		op = "listen";
		r = listen(fd, backlog);
	}
	if (r < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", op, strerror(-r));
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}
