/* WEFT_MUST_CHECK: marks the calls whose failure changes what the caller
 * may do next (a cancelled weft_lock_acquire returns -ECANCELED without
 * the lock, a failed weft_spawn leaves no handle to join, a try_get that
 * found nothing wrote nothing, weft_open's result is a descriptor to
 * close, a deadline or shield scope not entered leaves what follows
 * unbounded or unshielded), so that ignoring their result is a compiler
 * warning, as glibc does for read(2). weft_sleep and weft_yield are not
 * marked: as Go's time.Sleep, they are mostly called where another check
 * ends the loop; a loop that only sleeps should look for their
 * -ECANCELED. Part of <weft.h>. */
#ifndef WEFT_MUST_CHECK_H
#define WEFT_MUST_CHECK_H

#if defined(__GNUC__) || defined(__clang__)
#define WEFT_MUST_CHECK __attribute__((warn_unused_result))
#else
#define WEFT_MUST_CHECK
#endif

#endif
