/*
 * weft: asyncio for C on a multi-threaded work-stealing runtime.
 *
 * One header for the whole public API. Conventions, as liburing's:
 *   - calls return 0 (or a count) on success and a negative errno on failure;
 *   - there is no global error state;
 *   - structs the user owns (locks, queues, ...) are plain and embeddable, each
 *     with a static initialiser, and need no destroy call while nobody waits
 *     (but a queue with heap storage needs weft_queue_destroy);
 *   - every blocking call returns -ECANCELED when its task is cancelled and
 *     -ETIMEDOUT when the enclosing deadline passes, and has then consumed
 *     nothing.
 */
#ifndef WEFT_H
#define WEFT_H

#include "weft/task.h"
#include "weft/time.h"
#include "weft/sync.h"
#include "weft/select.h"
#include "weft/group.h"
#include "weft/io.h"
#include "weft/stream.h"
#include "weft/signal.h"
#include "weft/resolve.h"
#include "weft/metrics.h"
#include "weft/dump.h"

#endif
