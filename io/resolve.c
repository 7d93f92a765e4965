/*
 * Name resolution: getaddrinfo, off the workers, for weft_getaddrinfo and
 * for the socket calls that take a host name.
 *
 * A numeric address never blocks, so it is parsed in place. A name goes to
 * the blocking pool as a heap job with a discard function: a task cancelled
 * or timed out while the resolver is still running returns at once, and the
 * pool thread frees the job and its answer when getaddrinfo comes back,
 * even after weft_run returned: runtime/blocking.c detaches it at stop, so
 * a dead DNS server's timeouts hold up nobody who gave up on it.
 */
#include <errno.h>
#include <stdbool.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "weft/resolve.h"
#include "weft/task.h"
#include "runtime/blocking.h"
#include "resolve.h"

struct gai_job {
	struct weft__bjob job;
	struct addrinfo hints;
	struct addrinfo *res;
	int rc;  /* getaddrinfo's EAI_* code */
	int err; /* errno, for EAI_SYSTEM: kept across threads */
	const char *host, *service; /* into names[], or NULL */
	char names[]; /* copies: the caller may be gone when it runs */
};

/* The -errno for getaddrinfo's rc; err is errno after it, for EAI_SYSTEM.
 * EAI_SERVICE is an unknown service name (glibc), so -ENOENT as the header
 * says. */
static int gai_errno(int rc, int err)
{
	switch (rc) {
	case 0:
		return 0;
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return err ? -err : -EIO;
	case EAI_BADFLAGS:
	case EAI_FAMILY:
	case EAI_SOCKTYPE:
		return -EINVAL;
	default: /* EAI_NONAME, EAI_SERVICE, EAI_NODATA, EAI_FAIL, ... */
		return -ENOENT;
	}
}

int (*weft__resolve_hook)(const char *host, const char *service,
			  const struct addrinfo *hints, struct addrinfo **res);

static void *gai_run(void *arg)
{
	struct gai_job *g = arg;
	/* acquire: pairs with the test's release store of the hook, which
	 * published what the hook reads. */
	int (*gai)(const char *, const char *, const struct addrinfo *,
		   struct addrinfo **) =
		__atomic_load_n(&weft__resolve_hook, __ATOMIC_ACQUIRE);

	if (!gai)
		gai = getaddrinfo;
	g->rc = gai(g->host, g->service, &g->hints, &g->res);
	g->err = errno;
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

static bool numeric(const char *service)
{
	if (!service)
		return true;
	for (; *service; service++)
		if (*service < '0' || *service > '9')
			return false;
	return true;
}

/* Copies s (or NULL) to *at, moving *at past it. */
static const char *copy_name(const char *s, char **at)
{
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	memcpy(*at, s, n);
	*at += n;
	return *at - n;
}

/* getaddrinfo on the blocking pool, as a job the pool frees if the caller
 * gives up first. */
static int lookup_on_pool(const char *host, const char *service,
			  const struct addrinfo *hints, struct addrinfo **res)
{
	size_t len = (host ? strlen(host) + 1 : 0) +
		     (service ? strlen(service) + 1 : 0);
	struct gai_job *g = calloc(1, sizeof(*g) + len);
	char *at;
	int rc;

	if (!g)
		return -ENOMEM;
	at = g->names;
	g->host = copy_name(host, &at);
	g->service = copy_name(service, &at);
	g->hints = *hints;
	g->job.fn = gai_run;
	g->job.arg = g;
	g->job.discard = gai_discard;
	/* On failure the pool has consumed g (see weft__blocking_run). */
	if ((rc = weft__blocking_run(&g->job)))
		return rc;
	rc = gai_errno(g->rc, g->err);
	if (!rc)
		*res = g->res;
	free(g);
	return rc;
}

/* getaddrinfo, in place when the answer needs no lookup (or there is no
 * task to spare the worker of), else on the pool. */
static int lookup(const char *host, const char *service,
		  const struct addrinfo *hints, struct addrinfo **res)
{
	struct addrinfo h = *hints;
	int rc;

	*res = NULL;
	if (!weft_current().task) {
		rc = getaddrinfo(host, service, hints, res);
		return gai_errno(rc, errno);
	}
	if (host && !*host)
		return -ENOENT;
	if (numeric(service)) {
		h.ai_flags |= AI_NUMERICHOST | (service ? AI_NUMERICSERV : 0);
		rc = getaddrinfo(host, service, &h, res);
		if (rc != EAI_NONAME || !host)
			return gai_errno(rc, errno);
	}
	return lookup_on_pool(host, service, hints, res);
}

int weft__resolve(const char *host, uint16_t port, int socktype, int flags,
		  struct addrinfo **res)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = socktype,
				  .ai_flags = flags | AI_NUMERICSERV };
	char service[8];
	int rc;

	snprintf(service, sizeof(service), "%u", (unsigned)port);
	rc = lookup(host, service, &hints, res);
	if (rc == 0 && !host)
		*res = v6_first(*res);
	return rc;
}

int weft_getaddrinfo(const char *host, const char *service,
		     const struct addrinfo *hints, struct addrinfo **res)
{
	/* getaddrinfo's defaults for NULL hints. */
	struct addrinfo any = { .ai_family = AF_UNSPEC,
				.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG };

	if (!res || (!host && !service))
		return -EINVAL;
	return lookup(host, service, hints ? hints : &any, res);
}
