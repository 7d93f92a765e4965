# weft's gdb extension: the tasks of a weft program, live or in a core file.
#
#   (gdb) source /usr/local/share/weft/gdb/weft-gdb.py
#   (gdb) weft tasks        every live task: id, name, state, what it waits on
#   (gdb) weft bt ID        the backtrace of parked task ID, from the
#                           registers it saved when it switched out
#
# On a core file from gcore the task structs are there but the task stacks
# read as zeros (gdb cannot read through the stack slabs' guard pages), so
# there `weft tasks` shows names and states without what a task waits on,
# and `weft bt` has nothing to unwind: use it on the live process.
#
# It needs libweft's debug information (the default RelWithDebInfo build has
# it). Tasks are found as weft_dump finds them: every task struct lives in a
# slab of the task pool, and the live ones say so in their `alive` flag.
# `weft bt` sets the selected thread's registers to the task's saved ones,
# prints gdb's own backtrace (DWARF unwinding, file and line) and puts the
# registers back, as Go's runtime-gdb.py does for goroutines.
import gdb

WAIT_KINDS = ["wait", "lock", "event", "cond", "sem", "queue get",
              "queue put", "queue join", "future", "barrier", "group",
              "join", "sleep", "io", "blocking job"]

# The registers weft__switch pushes, in the order they sit from sp up.
SAVED = ["r15", "r14", "r13", "r12", "rbx", "rbp"]


def pool():
    for name in ("'task.c'::pool", "'runtime/task.c'::pool"):
        try:
            return gdb.parse_and_eval(name)
        except gdb.error:
            pass
    raise gdb.GdbError("weft: no task pool here (is libweft's debug "
                       "information loaded?)")


def live_tasks():
    slab = pool()["slabs"]
    while int(slab) != 0:
        tasks = slab["tasks"]
        lo, hi = tasks.type.range()
        for i in range(lo, hi + 1):
            t = tasks[i]
            if bool(t["alive"]):
                yield t
        slab = slab["next"]


def running_tasks():
    """task address -> worker id, from the runtime's workers."""
    rt = gdb.parse_and_eval("weft__rt")
    out = {}
    if int(rt) == 0:
        return out
    for i in range(int(rt["nworkers"])):
        cur = rt["workers"][i]["current"]
        if int(cur) != 0:
            out[int(cur)] = i
    return out


def describe(t, running):
    addr = int(t.address)
    if addr in running:
        return "running on worker %d" % running[addr]
    w = t["waiting"]
    if int(w) == 0:
        return "runnable"
    kind = int(w["kind"])
    what = WAIT_KINDS[kind] if kind < len(WAIT_KINDS) else "wait"
    obj = int(w["object"].cast(gdb.lookup_type("long")))
    if what == "io":
        return "parked: io on fd %d" % obj
    if what == "join":
        joined = w["object"].cast(t.type.pointer())
        return "parked: join of task %d" % int(joined["id"])
    if what == "sleep":
        return "parked: sleep"
    if what == "blocking job":
        return "in the blocking pool: job %s" % w["object"]
    return "parked: %s 0x%x" % (what, obj)


class Weft(gdb.Command):
    """weft tasks | weft bt ID: see inside a weft program."""

    def __init__(self):
        super().__init__("weft", gdb.COMMAND_USER, gdb.COMPLETE_NONE, True)


class WeftTasks(gdb.Command):
    """List every live weft task: id, name, state, what it waits on."""

    def __init__(self):
        super().__init__("weft tasks", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        running = running_tasks()
        n = 0
        for t in live_tasks():
            name = t["name"].string()
            print('task %d "%s" %s' % (int(t["id"]), name,
                                        describe(t, running)))
            n += 1
        print("weft: %d tasks" % n)


class WeftBt(gdb.Command):
    """Print the backtrace of parked weft task ID."""

    def __init__(self):
        super().__init__("weft bt", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        try:
            want = int(arg, 0)
        except ValueError:
            raise gdb.GdbError("usage: weft bt ID")
        running = running_tasks()
        for t in live_tasks():
            if int(t["id"]) != want:
                continue
            if int(t.address) in running:
                raise gdb.GdbError("weft: task %d is running on worker %d: "
                                   "see its thread's backtrace" %
                                   (want, running[int(t.address)]))
            return backtrace(t)
        raise gdb.GdbError("weft: no live task %d" % want)


def backtrace(t):
    sp = int(t["ctx"]["sp"])
    word = gdb.lookup_type("unsigned long").pointer()
    def at(a):
        return int(gdb.Value(a).cast(word).dereference())
    regs = {r: at(sp + 8 * i) for i, r in enumerate(SAVED)}
    regs["rip"] = at(sp + 48)
    regs["rsp"] = sp + 56
    gdb.execute("select-frame 0")
    frame = gdb.selected_frame()
    saved = {r: int(frame.read_register(r)) for r in regs}
    try:
        for r, v in regs.items():
            gdb.execute("set $%s = %d" % (r, v))
        gdb.execute("backtrace")
    finally:
        gdb.execute("select-frame 0")
        for r, v in saved.items():
            gdb.execute("set $%s = %d" % (r, v))


Weft()
WeftTasks()
WeftBt()
