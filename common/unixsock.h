/*
 * Listening unix stream sockets, one way for every daemon (the gateway's
 * api_socket, the agent's hmi_socket): a stale socket left at the path by a
 * previous run is replaced, anything else there is refused, and the socket
 * gets the mode asked for whatever the umask. Library-like: does not log;
 * the error text goes to the caller.
 */
#ifndef PITSTOP_UNIXSOCK_H
#define PITSTOP_UNIXSOCK_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Binds and listens on path (non-blocking, close-on-exec), chmod mode.
 * Returns 0 and *ret_fd, or a negative errno with what went wrong in err
 * (without the path): -ENAMETOOLONG, -EEXIST (not a socket there), or the
 * failing call's error.
 */
int unixsock_listen(const char *path, mode_t mode, int backlog, int *ret_fd, char *err,
		    size_t errlen);

#endif
