/*
 * Unix domain stream sockets. A path starting with '@' names the abstract
 * namespace (no file; the name is the rest of the string), as in ss(8).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "weft/io.h"
#include "call.h"
#include "sock.h"

/* Fills *sun from path; returns the address length or -errno. An abstract
 * name takes all of sun_path, its leading NUL (where path has its '@') and
 * up to 107 bytes, the most the kernel binds. A file name keeps its
 * terminating NUL in sun_path, so at most 107 bytes: the kernel would take
 * 108 unterminated, but then hands back addresses that do not end (from
 * getsockname, accept), and Go and Rust refuse the 108th byte too. */
static int unix_addr(struct sockaddr_un *sun, const char *path)
{
	size_t n;
	bool abstract;

	if (!path)
		return -EFAULT;
	n = strlen(path);
	if (!n)
		return -EINVAL;
	abstract = path[0] == '@';
	if (n > sizeof(sun->sun_path) - (abstract ? 0 : 1))
		return -ENAMETOOLONG;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (abstract) {
		sun->sun_path[0] = '\0';
		return (int)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	return (int)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

/* A socket file no socket is bound to is left over from an earlier
 * server: remove it, as asyncio does. A live one stays, and bind reports
 * -EADDRINUSE; so does one bound and not listening yet (a server starting,
 * whose file a stream connect took for stale: ECONNREFUSED).
 *
 * The probe is a datagram socket's connect, which the live server never
 * sees: a stream connect that got through would be a connection its
 * accept returns, closed at once. The kernel looks up the socket bound to
 * the file either way and answers ECONNREFUSED only if there is none; a
 * bound stream (or seqpacket) socket makes it EPROTOTYPE, a datagram one
 * lets it connect, which sends nothing. Any other answer (EACCES, ...)
 * leaves the file alone. */
static void unlink_stale(const struct sockaddr_un *sun, socklen_t len)
{
	struct stat st;
	int fd;

	if (!sun->sun_path[0] || stat(sun->sun_path, &st) ||
	    !S_ISSOCK(st.st_mode))
		return;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)sun, len) &&
	    errno == ECONNREFUSED)
		unlink(sun->sun_path);
	close(fd);
}

int weft_unix_listen(const char *path, int backlog)
{
	struct sockaddr_un sun;
	int fd, len = unix_addr(&sun, path);

	if (len < 0)
		return len;
	unlink_stale(&sun, (socklen_t)len);
	fd = socket(AF_UNIX, SOCK_STREAM | weft__sock_type_flags(), 0);
	if (fd < 0)
		return -errno;
	weft__fdready_fresh(fd);
	if (bind(fd, (struct sockaddr *)&sun, (socklen_t)len) ||
	    listen(fd, backlog > 0 ? backlog : SOMAXCONN)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

int weft_unix_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd, r, len = unix_addr(&sun, path);

	if (len < 0)
		return len;
	fd = socket(AF_UNIX, SOCK_STREAM | weft__sock_type_flags(), 0);
	if (fd < 0)
		return -errno;
	weft__fdready_fresh(fd);
	r = weft_connect_addr(fd, (struct sockaddr *)&sun, (socklen_t)len);
	if (r) {
		weft_close(fd);
		return r;
	}
	return fd;
}
