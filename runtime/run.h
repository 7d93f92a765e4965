/* weft_run's bookkeeping that other files read. */
#ifndef WEFT_RUNTIME_RUN_H
#define WEFT_RUNTIME_RUN_H

#include <stdint.h>

struct weft_runtime;

/* Tasks spawned and not yet finished. Exact only once it reads 0 (see
 * run.c), which is all shutdown needs. */
int64_t weft__live_tasks(struct weft_runtime *rt);

#endif
