/* The plain-thread path of the io/ calls: see call.h. */
#include <poll.h>

#include "call.h"

long weft__plain_try(int fd, enum weft__dir dir, weft__try_fn try, void *arg)
{
	struct pollfd p = { .fd = fd,
			    .events = dir == WEFT__READ ? POLLIN : POLLOUT };
	long r;

	while ((r = try(fd, arg)) == -EAGAIN)
		poll(&p, 1, -1);
	return r;
}
