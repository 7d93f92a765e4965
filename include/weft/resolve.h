/*
 * weft name resolution: getaddrinfo off the workers (asyncio's
 * loop.getaddrinfo). Part of <weft.h>; include <netdb.h> to use it.
 */
#ifndef WEFT_RESOLVE_H
#define WEFT_RESOLVE_H

#include "weft/must_check.h"

#ifdef __cplusplus
extern "C" {
#endif

struct addrinfo;

/*
 * getaddrinfo(3) that suspends only the calling task. A numeric host (or
 * none) with a numeric service (or none) is parsed in place, without a
 * wait, so a cancellation or deadline does not end it; anything else is
 * looked up on the blocking pool, so a slow resolver never stalls a
 * worker. Cancellation and deadlines apply there as to weft_blocking, except
 * that the caller need not wait for a lookup that has started: it returns
 * -ECANCELED / -ETIMEDOUT at once, and the pool frees the late answer,
 * even after weft_run returned: weft_run does not wait for such a lookup
 * (as Go's exit does not), its thread ends on its own. On a plain thread
 * it is getaddrinfo itself. hints may be NULL (as for
 * getaddrinfo: any family, AI_V4MAPPED | AI_ADDRCONFIG). Free *res with
 * freeaddrinfo(). Returns 0 or -errno: -ENOENT (no such name or service,
 * or no address of the family asked), -EAGAIN (the resolver failed for
 * now: try again), -EINVAL (NULL res, both host and service NULL, bad
 * hints), -ENOMEM, -ECANCELED, -ETIMEDOUT, -ESHUTDOWN (the runtime is
 * stopping), or the errno of a system error.
 */
WEFT_MUST_CHECK int weft_getaddrinfo(const char *host, const char *service,
				     const struct addrinfo *hints,
				     struct addrinfo **res);

#ifdef __cplusplus
}
#endif
#endif
