/*
 * Unix domain stream sockets. A path starting with '@' names the abstract
 * namespace (no file; the name is the rest of the string), as in ss(8).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "weft/io.h"
#include "call.h"
#include "sock.h"

/* Fills *sun from path; returns the address length or -errno. */
static int unix_addr(struct sockaddr_un *sun, const char *path)
{
	size_t n;

	if (!path)
		return -EFAULT;
	n = strlen(path);
	if (!n)
		return -EINVAL;
	if (n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@') {
		sun->sun_path[0] = '\0';
		return (int)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	return (int)(offsetof(struct sockaddr_un, sun_path) + n + 1);
}

/* A socket file nobody listens on is left over from an earlier server:
 * remove it, as asyncio does. A live one stays, and bind reports
 * -EADDRINUSE. */
static void unlink_stale(const struct sockaddr_un *sun, socklen_t len)
{
	struct stat st;
	int fd;

	if (!sun->sun_path[0] || stat(sun->sun_path, &st) ||
	    !S_ISSOCK(st.st_mode))
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
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
