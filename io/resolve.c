/*
 * Name resolution: getaddrinfo, off the workers.
 *
 * A numeric address never blocks, so it is parsed in place. A name goes to
 * the blocking pool as a heap job with a discard function: a task cancelled
 * or timed out while the resolver is still running returns at once, and the
 * pool thread frees the job and its answer when getaddrinfo comes back.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "weft/task.h"
#include "runtime/blocking.h"
#include "resolve.h"

struct gai_job {
	struct weft__bjob job;
	struct addrinfo hints;
	struct addrinfo *res;
	int rc;
	char service[8];
	char host[]; /* a copy: the caller may be gone when it runs */
};

static int gai_errno(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	case EAI_BADFLAGS:
	case EAI_FAMILY:
	case EAI_SOCKTYPE:
	case EAI_SERVICE:
		return -EINVAL;
	default: /* EAI_NONAME, EAI_NODATA, EAI_FAIL, EAI_ADDRFAMILY */
		return -ENOENT;
	}
}

static void *gai_run(void *arg)
{
	struct gai_job *g = arg;

	g->rc = getaddrinfo(g->host, g->service, &g->hints, &g->res);
	if (g->rc == EAI_SYSTEM)
		g->rc = errno ? -errno : -EIO; /* keep errno across threads */
	return NULL;
}

static void gai_discard(struct weft__bjob *job)
{
	struct gai_job *g = (struct gai_job *)job;

	if (!g->rc && g->res)
		freeaddrinfo(g->res);
	free(g);
}

/* IPv6 first, keeping the order within each family. */
static struct addrinfo *v6_first(struct addrinfo *ai)
{
	struct addrinfo *v6 = NULL, **v6t = &v6, *rest = NULL, **rt = &rest;

	for (; ai; ai = ai->ai_next) {
		if (ai->ai_family == AF_INET6) {
			*v6t = ai;
			v6t = &ai->ai_next;
		} else {
			*rt = ai;
			rt = &ai->ai_next;
		}
	}
	*rt = NULL;
	*v6t = rest;
	return v6;
}

int weft__resolve(const char *host, uint16_t port, int socktype, int flags,
		  struct addrinfo **res)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = socktype,
				  .ai_flags = flags | AI_NUMERICSERV };
	char service[8];
	struct gai_job *g;
	size_t hlen;
	int rc;

	*res = NULL;
	snprintf(service, sizeof(service), "%u", (unsigned)port);
	if (!host || !weft_current().task) {
		rc = getaddrinfo(host, service, &hints, res);
		if (rc == 0 && !host)
			*res = v6_first(*res);
		return gai_errno(rc);
	}
	if (!*host)
		return -ENOENT;
	hints.ai_flags |= AI_NUMERICHOST;
	rc = getaddrinfo(host, service, &hints, res);
	if (rc != EAI_NONAME)
		return gai_errno(rc);

	hlen = strlen(host) + 1;
	if (!(g = calloc(1, sizeof(*g) + hlen)))
		return -ENOMEM;
	memcpy(g->host, host, hlen);
	memcpy(g->service, service, sizeof(service));
	g->hints = hints;
	g->hints.ai_flags &= ~AI_NUMERICHOST;
	g->job.fn = gai_run;
	g->job.arg = g;
	g->job.discard = gai_discard;
	/* On failure the pool has consumed g (see weft__blocking_run). */
	if ((rc = weft__blocking_run(&g->job)))
		return rc;
	rc = g->rc < 0 ? g->rc : gai_errno(g->rc);
	if (!rc)
		*res = g->res;
	free(g);
	return rc;
}
