/*
 * weft_dump: what every task is doing, and since when (Go's goroutine
 * dump, asyncio's all_tasks() and print_stack()). Part of <weft.h>.
 */
#ifndef WEFT_DUMP_H
#define WEFT_DUMP_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Writes one block per live task to fd:
 *
 *   task 2049 "worker" parked: lock 0x7ffd5a1c2e40, for 1.204 s
 *     spawned at main_task+0x3c (server+0x1a3c)
 *     #0 weft__task_park+0x5b (libweft.so.0+0x9a1b)
 *     #1 weft_lock_acquire+0x121 (libweft.so.0+0xb2c1)
 *     #2 handle_client+0x44 (server+0x1c84)
 *
 * State: running on worker N, runnable, parked (with what it waits for:
 * lock, event, cond, sem, queue get/put/join, future, barrier, group,
 * join of task N, sleep until +T, recv/send/accept/... on fd N, or the
 * blocking pool with its job's function), for how long, and the deadline
 * of the wait if it has one. Each name is "function+offset (object+offset)":
 * `addr2line -e object offset` gives file and line.
 *
 * The backtrace of a parked task is a scan of its stack, from the
 * registers it saved when it switched out, for return addresses (words
 * pointing into code just after a call instruction): every live frame is
 * there, and now and then a stale word left in a frame's slot shows as one
 * more. gdb's `weft bt ID` (gdb/weft-gdb.py) unwinds exactly. Running and
 * runnable tasks show no backtrace.
 *
 * Safe from any task or thread while weft_run runs; tasks go on running
 * meanwhile, so each block is true of its moment. With cfg.dump_signal
 * (or WEFT_DUMP_SIGNAL=SIGUSR1) the runtime writes it to stderr when the
 * signal arrives. Returns 0, -ESRCH (no runtime), -ENOMEM, or the -errno
 * of a failed write.
 */
int weft_dump(int fd);

#ifdef __cplusplus
}
#endif
#endif
