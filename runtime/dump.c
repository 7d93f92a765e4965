/*
 * weft_dump: one block per live task (see include/weft/dump.h).
 *
 * The registry is the task pool itself: every struct lives in a slab until
 * weft_run returns, so walking the slabs and skipping the free ones finds
 * every task, with nothing added to spawn or exit. Each task is read as a
 * stranger (task.h): a reference keeps its struct from being recycled while
 * we read what spawn wrote, and its wait_lock keeps its current wait, and
 * so its stack, alive while we describe the wait and scan the stack.
 *
 * Invariants:
 *  - A task's stack is scanned only while its wait is published and no
 *    worker runs it, under its wait_lock: the task cannot end (its wait_end
 *    takes that lock), so the stack stays mapped. If it was woken meanwhile
 *    it may overwrite the innermost frames as we read them: the scan reads
 *    only inside the stack, so the worst is a wrong frame, never a fault.
 *  - A word of the stack is taken for a return address after a look at
 *    the code before it, in a library of the snapshot symbols.c took when
 *    the dump began. A library dlclose(3)d since is unmapped, and that
 *    look faults: a known gap, left open because closing it costs a
 *    system call per word looked at (process_vm_readv) or holds the
 *    loader's lock, which dlopen and C++ unwinding in other threads take,
 *    for the whole scan.
 */
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cycles.h"

#include "weft/dump.h"
#include "weft/select.h"
#include "dump_signal.h"
#include "out.h"
#include "symbols.h"
#include "valgrind.h"
#include "self.h"
#include "task.h"
#include "worker.h"
#include "../sync/select.h"

#define OUT_BUF (64 * 1024)
#define MAX_FRAMES 24

struct dump {
	struct weft_runtime *rt;
	struct weft__symbols *syms;
	struct weft__out out;
	int64_t now;  /* weft_now() at the start */
	uint64_t tsc; /* the time-stamp counter then */
	long tasks;
};

/* ---- output ------------------------------------------------------------- */

/* "1.204 s", "35.2 ms", "18 us", "120 ns". */
static void put_duration(struct weft__out *o, int64_t ns)
{
	if (ns >= 1000000000)
		weft__out_put(o, "%.3f s", ns / 1e9);
	else if (ns >= 1000000)
		weft__out_put(o, "%.1f ms", ns / 1e6);
	else if (ns >= 1000)
		weft__out_put(o, "%" PRId64 " us", ns / 1000);
	else
		weft__out_put(o, "%" PRId64 " ns", ns > 0 ? ns : 0);
}

/* ---- what a task waits for ---------------------------------------------- */

static const char *io_op_name(unsigned op)
{
	switch (op) {
	case IORING_OP_RECV:
		return "recv";
	case IORING_OP_RECVMSG:
		return "recvmsg";
	case IORING_OP_SEND:
		return "send";
	case IORING_OP_SENDMSG:
		return "sendmsg";
	case IORING_OP_ACCEPT:
		return "accept";
	case IORING_OP_CONNECT:
		return "connect";
	case IORING_OP_READ:
	case IORING_OP_READV:
		return "read";
	case IORING_OP_WRITE:
	case IORING_OP_WRITEV:
		return "write";
	case IORING_OP_POLL_ADD:
		return "poll";
	case IORING_OP_OPENAT:
		return "open";
	case IORING_OP_CLOSE:
		return "close";
	case IORING_OP_FSYNC:
		return "fsync";
	case IORING_OP_SHUTDOWN:
		return "shutdown";
	default:
		return NULL;
	}
}

#define SELECT_SHOWN 4 /* cases of a select named; "..." for more */

/* A copy of what the dump shows of a wait, taken under the wait_lock. */
struct wait_view {
	int kind;
	unsigned io_op;
	const void *object;
	uint64_t joined;   /* the id of the task joined */
	const char *doing; /* the user's call, or NULL (wait.h) */
	int doing_fd;      /* its fd, or -1 */
	int ncases;        /* a select's */
	struct {
		int kind;
		const void *object;
		uint64_t joined;
	} cases[SELECT_SHOWN];
	int64_t since; /* time-stamp counter */
	int64_t until;
};

static const char *const kind_names[] = {
	[WEFT__WAIT_OTHER] = "wait",      [WEFT__WAIT_LOCK] = "lock",
	[WEFT__WAIT_EVENT] = "event",     [WEFT__WAIT_COND] = "cond",
	[WEFT__WAIT_SEM] = "sem",         [WEFT__WAIT_QUEUE_GET] = "queue",
	[WEFT__WAIT_QUEUE_PUT] = "queue", [WEFT__WAIT_QUEUE_JOIN] = "queue",
	[WEFT__WAIT_FUTURE] = "future",   [WEFT__WAIT_BARRIER] = "barrier",
	[WEFT__WAIT_GROUP] = "group",
};

static void put_io(struct weft__out *o, const struct wait_view *v)
{
	const char *op = io_op_name(v->io_op);
	if (op)
		weft__out_put(o, "%s on fd", op);
	else if (v->io_op)
		weft__out_put(o, "io op %u on fd", v->io_op);
	else /* epoll, a call that did not name itself */
		weft__out_put(o, "readiness of fd");
	weft__out_put(o, " %d", (int)(intptr_t)v->object);
}

/* One case of a select, in weft_select_kind's terms. */
static void put_case(struct weft__out *o, int kind, const void *object,
		     uint64_t joined)
{
	switch (kind) {
	case WEFT_SELECT_GET:
		weft__out_put(o, "queue %p get", object);
		break;
	case WEFT_SELECT_PUT:
		weft__out_put(o, "queue %p put", object);
		break;
	case WEFT_SELECT_EVENT:
		weft__out_put(o, "event %p", object);
		break;
	case WEFT_SELECT_FUTURE:
		weft__out_put(o, "future %p", object);
		break;
	case WEFT_SELECT_JOIN:
		weft__out_put(o, "join of task %" PRIu64, joined);
		break;
	case WEFT_SELECT_SEM:
		weft__out_put(o, "sem %p", object);
		break;
	case WEFT_SELECT_LOCK:
		weft__out_put(o, "lock %p", object);
		break;
	case WEFT_SELECT_READABLE:
		weft__out_put(o, "fd %d readable", (int)(intptr_t)object);
		break;
	case WEFT_SELECT_WRITABLE:
		weft__out_put(o, "fd %d writable", (int)(intptr_t)object);
		break;
	default:
		weft__out_put_str(o, "timeout");
	}
}

/* What the wait itself is for: "lock 0x...", "recv on fd 7". */
static void put_what(struct dump *d, const struct wait_view *v)
{
	struct weft__out *o = &d->out;
	switch (v->kind) {
	case WEFT__WAIT_JOIN:
		weft__out_put(o, "join of task %" PRIu64, v->joined);
		break;
	case WEFT__WAIT_SLEEP:
		weft__out_put(o, "sleep until +");
		put_duration(o, v->until - d->now);
		break;
	case WEFT__WAIT_IO:
		put_io(o, v);
		break;
	case WEFT__WAIT_BLOCKING:
		weft__out_put_str(o, "job ");
		weft__out_put_str(o, weft__symbols_func(d->syms,
							(uintptr_t)v->object));
		break;
	case WEFT__WAIT_SELECT:
		weft__out_put_str(o, "select of ");
		for (int i = 0; i < v->ncases && i < SELECT_SHOWN; i++) {
			if (i)
				weft__out_put_str(o, ", ");
			put_case(o, v->cases[i].kind, v->cases[i].object,
				 v->cases[i].joined);
		}
		if (v->ncases > SELECT_SHOWN)
			weft__out_put(o, " and %d more",
				      v->ncases - SELECT_SHOWN);
		break;
	case WEFT__WAIT_OTHER:
		weft__out_put_str(o, "wait");
		break;
	default:
		weft__out_put(o, "%s %p", kind_names[v->kind], v->object);
		if (v->kind == WEFT__WAIT_QUEUE_GET)
			weft__out_put(o, " get");
		else if (v->kind == WEFT__WAIT_QUEUE_PUT)
			weft__out_put(o, " put");
		else if (v->kind == WEFT__WAIT_QUEUE_JOIN)
			weft__out_put(o, " join");
	}
}

/* "parked: recv on fd 7, for 1.2 s, deadline in 3.0 s". A wait inside a
 * named call shows the call: "stream readline on fd 5", or "signal wait
 * (cond 0x...)" when the wait is not on an fd. */
static void put_wait(struct dump *d, const struct wait_view *v)
{
	struct weft__out *o = &d->out;
	if (v->doing &&
	    (v->kind == WEFT__WAIT_IO || v->kind == WEFT__WAIT_BLOCKING)) {
		/* A named I/O call, in the same words on both drivers: the fd
		 * of io_uring's operation, or the call's own when it waits in
		 * the blocking pool (a file call under epoll). An open has
		 * none yet. */
		int fd = v->kind == WEFT__WAIT_IO ? (int)(intptr_t)v->object
						  : v->doing_fd;
		weft__out_put(o, "parked: %s", v->doing);
		if (fd >= 0)
			weft__out_put(o, " on fd %d", fd);
	} else if (v->kind == WEFT__WAIT_BLOCKING) {
		weft__out_put_str(o, "in the blocking pool: ");
		put_what(d, v);
	} else if (v->doing) {
		weft__out_put(o, "parked: %s (", v->doing);
		put_what(d, v);
		weft__out_put_str(o, ")");
	} else {
		weft__out_put_str(o, "parked: ");
		put_what(d, v);
	}
	int64_t ticks = (int64_t)d->tsc - v->since;
	weft__out_put(o, ", for ");
	put_duration(o, ticks > 0 ? (int64_t)(((unsigned __int128)ticks *
					       weft__tsc_mult) >>
					      32)
				  : 0);
	if (v->until != WEFT_NO_DEADLINE && v->kind != WEFT__WAIT_SLEEP) {
		weft__out_put(o, ", deadline in ");
		put_duration(o, v->until - d->now);
	}
}

/* The id of the task a handle names. The waiter holds the handle, so the
 * task's struct stays while the wait is published. */
static uint64_t id_of(const struct weft_task *t)
{
	return t ? t->id : 0;
}

static void view_select(struct weft__waiter *w, struct wait_view *v)
{
	const struct weft_select_case *c = w->object;
	v->ncases = (int)w->value;
	for (int i = 0; i < v->ncases && i < SELECT_SHOWN; i++) {
		v->cases[i].kind = (int)c[i].kind;
		/* The union's pointer, or an fd case's fd. */
		v->cases[i].object = weft__select_is_fd_case(&c[i])
					     ? (const void *)(intptr_t)c[i].fd
					     : c[i].queue;
		v->cases[i].joined = c[i].kind == WEFT_SELECT_JOIN
					     ? id_of(c[i].task.task)
					     : 0;
	}
}

static void view_wait(struct weft_task *t, struct weft__waiter *w,
		      struct wait_view *v)
{
	v->kind = w->kind <= WEFT__WAIT_SELECT ? w->kind : WEFT__WAIT_OTHER;
	/* relaxed: a label (the SQE's opcode), set once the SQE is made;
	 * nothing is read through it. */
	v->io_op = atomic_load_explicit(&w->io_op, memory_order_relaxed);
	v->object = w->object;
	v->joined = v->kind == WEFT__WAIT_JOIN ? id_of(w->object) : 0;
	v->doing = t->doing;
	v->doing_fd = t->doing_fd;
	if (v->kind == WEFT__WAIT_SELECT)
		view_select(w, v);
	v->since = t->wait_since;
	v->until = t->wait_until;
}

/* ---- backtraces --------------------------------------------------------- */

/* A word of a stack another thread may be writing: the value only matters
 * if it did not (see the invariants), so tell the sanitizers not to mind,
 * and memcheck that a slot never written is still a word to look at. */
__attribute__((no_sanitize("thread", "address"))) uintptr_t
weft__stack_word(const uintptr_t *p)
{
	uintptr_t v = *(const volatile uintptr_t *)p;
	WEFT_MARK_FILLED(&v, sizeof(v));
	return v;
}

int weft__stack_returns(const struct weft__symbols *s, const uintptr_t *sp,
			const uintptr_t *top, uintptr_t *kept, int room)
{
	int n = 0;
	for (const uintptr_t *p = sp; p < top; p++) {
		uintptr_t a = weft__return_strip(weft__stack_word(p));
		if (!weft__symbols_is_return(s, a))
			continue;
		if (n < room)
			kept[n] = a;
		n++;
	}
	return n;
}

/* ---- one task ----------------------------------------------------------- */

static int running_on(struct weft_runtime *rt, struct weft_task *t)
{
	/* relaxed: a snapshot for the report; a task that starts or stops
	 * running meanwhile is shown either way, and its stack is scanned
	 * only under its wait_lock while its wait is published. */
	for (int i = 0; i < rt->nworkers; i++)
		if (__atomic_load_n(&rt->workers[i].current,
				    __ATOMIC_RELAXED) == t)
			return i;
	return -1;
}

/* Under t->wait_lock: its wait, and its frames if it is parked (the
 * innermost MAX_FRAMES of them). Returns the number of frames found,
 * -1 if it waits for nothing. */
static int look_at_wait(struct dump *d, struct weft_task *t, bool running,
			struct wait_view *v, uintptr_t *frames)
{
	struct weft__waiter *w = t->waiting;
	if (!w)
		return -1;
	view_wait(t, w, v);
	if (running || !t->stack.base)
		return 0;
	/* relaxed: a value only, which the switch may be writing as we
	 * read; it is checked to lie in the stack, and a stale one costs at
	 * worst wrong frames (see the top). */
	const uintptr_t *sp = __atomic_load_n(&t->ctx.sp, __ATOMIC_RELAXED);
	const uintptr_t *top =
		(const uintptr_t *)(t->stack.base + t->stack.size);
	if (sp < (const uintptr_t *)t->stack.base || sp >= top)
		return 0;
	return weft__stack_returns(d->syms, sp, top, frames, MAX_FRAMES);
}

static void dump_task(struct weft_task *t, void *arg)
{
	struct dump *d = arg;
	if (!weft__task_get(t))
		return;
	/* acquire: pairs with task_finished's release store, though a
	 * false only skips t. What we read of t, spawn published through
	 * refs (weft__task_get's acquire CAS); its wait we read under its
	 * wait_lock. */
	if (!atomic_load_explicit(&t->alive, memory_order_acquire)) {
		weft__task_put(t);
		return;
	}
	uintptr_t frames[MAX_FRAMES];
	struct wait_view v = {
		0
	}; /* set when nframes >= 0: GCC cannot see it */
	int worker = running_on(d->rt, t);
	weft__spin_lock(&t->wait_lock);
	int nframes = look_at_wait(d, t, worker >= 0, &v, frames);
	weft__spin_unlock(&t->wait_lock);

	struct weft__out *o = &d->out;
	weft__out_put(o, "task %" PRIu64 " \"%s\" ", t->id, t->name);
	if (worker >= 0)
		weft__out_put(o, "running on worker %d", worker);
	else if (nframes < 0)
		weft__out_put(o, "runnable");
	else
		put_wait(d, &v);
	weft__out_put_str(o, "\n  spawned at ");
	weft__out_put_str(o, weft__symbols_name(d->syms,
						(uintptr_t)t->spawn_site));
	for (int i = 0; i < nframes && i < MAX_FRAMES; i++) {
		char num[9] = "\n  #"; /* i < MAX_FRAMES < 100 */
		int k = 4;
		if (i >= 10)
			num[k++] = (char)('0' + i / 10);
		num[k++] = (char)('0' + i % 10);
		num[k] = ' ';
		weft__out_put_str(o, num);
		weft__out_put_str(o, weft__symbols_name(d->syms, frames[i]));
	}
	/* dump.h promises every live frame: a block cut short says so. */
	if (nframes > MAX_FRAMES)
		weft__out_put(o, "\n  ... and %d more frames",
			      nframes - MAX_FRAMES);
	weft__out_put_str(o, "\n");
	d->tasks++;
	weft__task_put(t);
}

static int dump_all(struct weft_runtime *rt, int fd)
{
	struct dump d = { .rt = rt, .out = { .fd = fd, .size = OUT_BUF } };
	d.out.buf = malloc(OUT_BUF);
	d.syms = weft__symbols_load();
	if (!d.out.buf || !d.syms) {
		free(d.out.buf);
		weft__symbols_free(d.syms);
		return -ENOMEM;
	}
	d.now = weft_now();
	d.tsc = weft__cycles();
	weft__out_put(&d.out, "weft: tasks of %d workers%s\n", rt->nworkers,
		      weft__crowded(&rt->crowd)
			      ? ", crowded (woken tasks stay on the awake ones)"
			      : "");
	weft__task_for_each_alive(dump_task, &d);
	weft__out_put(&d.out, "weft: %ld tasks\n", d.tasks);
	weft__out_flush(&d.out);
	free(d.out.buf);
	weft__symbols_free(d.syms);
	return d.out.err;
}

struct dump_call {
	struct weft_runtime *rt;
	int fd;
	int result;
};

static void *dump_thread(void *arg)
{
	struct dump_call *c = arg;
	c->result = dump_all(c->rt, c->fd);
	return NULL;
}

/* Plain threads' dumps: let in from weft__dump_open to weft__dump_close
 * (dump_signal.h), counted while under way. */
static atomic_bool dumps_open;
static atomic_int dumps_under_way;

void (*weft__dump_enter_hook)(void);

/* fork(2): the child has one thread, the forking one, which is inside no
 * weft_dump (a dump makes no fork), so it starts with none under way. The
 * count it copied may hold the dumps other threads of the parent were
 * inside (a status thread's, -ESRCH between runs): a pre-fork child's
 * weft_run would wait at its end for those threads, which it does not
 * have, for ever (as for weft__foreign_enter's counts, task.c). */
static void dumps_fork_child(void)
{
	atomic_store(&dumps_under_way, 0);
}

static void dumps_fork_once(void)
{
	pthread_atfork(NULL, NULL, dumps_fork_child);
}

void weft__dump_open(void)
{
	atomic_store(&dumps_open, true);
}

void weft__dump_close(void)
{
	/* seq_cst, against weft_dump's count then look: either it sees the
	 * door shut, or we see its count and wait for it. */
	atomic_store(&dumps_open, false);
	while (atomic_load(&dumps_under_way))
		sched_yield();
}

int weft_dump(int fd)
{
	if (weft__task_current()) {
		/* From a task: on a thread of its own, with a thread's stack,
		 * since libdw's DWARF readers need more than a task may have.
		 * The worker waits for it, as it would for the dump itself,
		 * and the task keeps weft_run from returning meanwhile. */
		struct dump_call c = { atomic_load(&weft__rt), fd, 0 };
		pthread_t th;
		/* With SIGURG as weft_run's caller has it (stall.h). */
		sigset_t mask = weft__stall_thread_block();
		int err = pthread_create(&th, NULL, dump_thread, &c);
		weft__stall_thread_restore(&mask);
		if (err)
			return -err;
		pthread_join(th, NULL);
		return c.result;
	}
	/* From a plain thread, which cannot know when weft_run returns:
	 * weft_run waits for the dump (weft__dump_close) before it frees the
	 * runtime, rather than free it under the dump. Not with the plain
	 * threads' spawns (weft__foreign_enter): drain waits for those, and
	 * dumps one after another, as queued dump signals, would hold it. */
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	/* Registered before the first count a fork could copy. */
	pthread_once(&once, dumps_fork_once);
	atomic_fetch_add(&dumps_under_way, 1);
	/* The door, then the runtime: one found open was shut later, so its
	 * weft_run waits for us before it unpublishes and frees the runtime
	 * we then load. Loaded before the door, the runtime could be one
	 * whose weft_run shut it before our count, and freed it while we
	 * looked, the door we then found open a later run's. */
	bool open = atomic_load(&dumps_open);
	if (__builtin_expect(weft__dump_enter_hook != NULL, 0))
		weft__dump_enter_hook();
	struct weft_runtime *rt = open ? atomic_load(&weft__rt) : NULL;
	int r = rt ? dump_all(rt, fd) : -ESRCH;
	atomic_fetch_sub(&dumps_under_way, 1);
	return r;
}
