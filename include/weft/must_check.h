/* WEFT_MUST_CHECK: marks the blocking calls whose failure changes what the
 * caller may do next (a cancelled weft_lock_acquire returns -ECANCELED
 * without the lock), so that ignoring their result is a compiler warning,
 * as glibc does for read(2). Part of <weft.h>. */
#ifndef WEFT_MUST_CHECK_H
#define WEFT_MUST_CHECK_H

#if defined(__GNUC__) || defined(__clang__)
#define WEFT_MUST_CHECK __attribute__((warn_unused_result))
#else
#define WEFT_MUST_CHECK
#endif

#endif
