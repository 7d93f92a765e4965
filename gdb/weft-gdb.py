# weft's gdb extension: the tasks of a weft program, live or in a core file.
#
#   (gdb) source /usr/local/share/weft/gdb/weft-gdb.py
#   (gdb) weft tasks        every live task: id, name, state, what it waits on
#   (gdb) weft bt ID        the backtrace of parked task ID, from the
#                           registers it saved when it switched out
#   (gdb) weft gcore [FILE] gcore, with the task stacks in it
#
# Why `weft gcore`: weft guards each task stack with MADV_GUARD_INSTALL
# (Linux 6.13), guard pages inside the one mapping of a slab of stacks.
# gdb's gcore reads a mapping 1 MiB at a time and, when a read fails, as
# it does on a guard page, writes nothing more of that mapping: the stacks
# in a plain gcore's core read as zeros, and with them each task's waiter
# and saved registers. `weft gcore` runs gcore, then copies every live
# task's stack (which ends above its guard) into the core file. A core the
# kernel writes (a crash) is complete: it skips guard pages by itself.
#
# It needs libweft's debug information (the default RelWithDebInfo build has
# it). Tasks are found as weft_dump finds them: every task struct lives in a
# slab of the task pool, and the live ones say so in their `alive` flag.
# `weft bt` makes the task's saved registers those of the caller of the
# selected thread's innermost frame (a frame unwinder, writing no register,
# so that it works on a core file as well as live) and prints gdb's own
# backtrace from there (DWARF unwinding, file and line); Go's
# runtime-gdb.py sets the registers instead, which a core file refuses.
import gdb

import re
import struct

from gdb.unwinder import Unwinder, register_unwinder
try:
    from gdb.unwinder import FrameId
except ImportError:  # gdb before 14 has none: any object with sp and pc
    class FrameId(object):
        def __init__(self, sp, pc):
            self.sp = sp
            self.pc = pc

WAIT_KINDS = ["wait", "lock", "event", "cond", "sem", "queue get",
              "queue put", "queue join", "future", "barrier", "group",
              "join", "sleep", "io", "blocking job", "select"]

# What runtime/arch/<cpu>.S's weft__switch leaves at the saved stack
# pointer: the callee-saved registers, in order from sp up, then where the
# switch returns to, and the size of the whole frame. A parked task
# resumes at that return address with sp just above the frame.
ARCH = {
    # pushes r... then call's return address
    "x86_64": {"saved": ["r15", "r14", "r13", "r12", "rbx", "rbp"],
               "pc_at": 48, "frame": 56, "sp": "rsp", "pc": "rip"},
    # 0 x19 | ... | 72 x28 | 80 x29 (fp) | 88 x30 (lr) | 96.. d8-d15
    "aarch64": {"saved": ["x19", "x20", "x21", "x22", "x23", "x24", "x25",
                          "x26", "x27", "x28", "x29", "x30"],
                "pc_at": 88, "frame": 160, "sp": "sp", "pc": "pc"},
}


def arch():
    name = gdb.selected_frame().architecture().name()
    if "aarch64" in name:
        return ARCH["aarch64"]
    if "x86-64" in name or "x86_64" in name:
        return ARCH["x86_64"]
    raise gdb.GdbError("weft: no saved-register layout for %s" % name)


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
    doing = t["doing"]
    if int(doing) != 0:
        what_doing = doing.string()
        # As weft_dump: a named I/O call on its operation's fd, or on the
        # call's own when it waits in the blocking pool; an open has none.
        if what in ("io", "blocking job"):
            fd = obj if what == "io" else int(t["doing_fd"])
            if fd < 0:
                return "parked: %s" % what_doing
            return "parked: %s on fd %d" % (what_doing, fd)
        return "parked: %s (%s)" % (what_doing, what)
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
            # As weft_dump writes it, byte for byte: a name need not be
            # UTF-8, nor ASCII where gdb's charset is, and spawn cuts a
            # long one at WEFT_NAME_MAX - 1 bytes, maybe inside a
            # character. A byte that does not decode shows as \xNN,
            # rather than the listing ending at that task.
            name = t["name"].string("utf-8", "backslashreplace")
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


class TaskUnwinder(Unwinder):
    """While `weft bt` prints, makes the caller of the selected thread's
    innermost real frame the parked task's: its saved registers are the
    ones that frame's caller had. Registers are not written, so it works
    on a core file too; gdb's own DWARF unwinding does the rest.

    The innermost real frame, at self.level: frames inlined into it come
    first (levels 0 to self.level - 1, as a thread asleep in glibc's
    futex wait has with glibc's debug information), and gdb unwinds
    those itself, asking no Python unwinder."""

    def __init__(self):
        super().__init__("weft-task")
        self.regs = None
        self.arch = None
        self.level = 0

    def __call__(self, pending_frame):
        if self.regs is None or pending_frame.level() != self.level:
            return None
        a = self.arch  # not arch(): no frame may be asked for here
        sp = pending_frame.read_register(a["sp"])
        pc = pending_frame.read_register(a["pc"])
        info = pending_frame.create_unwind_info(FrameId(sp, pc))
        for r, v in self.regs.items():
            typ = pending_frame.read_register(r).type
            info.add_saved_register(r, gdb.Value(v).cast(typ))
        return info


task_unwinder = TaskUnwinder()
register_unwinder(None, task_unwinder, replace=True)


def backtrace(t):
    a = arch()
    sp = int(t["ctx"]["sp"])
    # NULL from spawn to the first run (runtime/task.h): no registers
    # saved yet, nor maybe a stack, and no frame to show.
    if sp == 0:
        raise gdb.GdbError("weft: task %d has not started: no frames yet"
                           % int(t["id"]))
    word = gdb.lookup_type("unsigned long").pointer()
    def at(addr):
        return int(gdb.Value(addr).cast(word).dereference())
    regs = {r: at(sp + 8 * i) for i, r in enumerate(a["saved"])}
    regs[a["pc"]] = at(sp + a["pc_at"])
    regs[a["sp"]] = sp + a["frame"]
    # The innermost real frame, which the unwinder is asked about: a
    # check of level 0 alone missed it behind inline frames, and the
    # thread's own backtrace came out as the task's.
    frame = gdb.newest_frame()
    while frame.type() == gdb.INLINE_FRAME and frame.older() is not None:
        frame = frame.older()
    own = frame.level()
    task_unwinder.arch = a
    task_unwinder.level = own
    task_unwinder.regs = regs
    gdb.invalidate_cached_frames()
    try:
        text = gdb.execute("backtrace", to_string=True)
    finally:
        task_unwinder.regs = None
        gdb.invalidate_cached_frames()
    # Frames #0 to #own are the thread's own; the rest are the task's:
    # renumber.
    out, keep = [], False
    for line in text.splitlines():
        m = re.match(r"#(\d+)(\s.*)", line)
        if m:
            keep = int(m.group(1)) > own
            line = "#%-3d%s" % (int(m.group(1)) - own - 1,
                                m.group(2).lstrip())
        if keep:
            out.append(line)
    print("\n".join(out))


def core_segments(path):
    """The PT_LOAD segments of an ELF64 little-endian core file:
    (vaddr, file offset, file size)."""
    with open(path, "rb") as f:
        eh = f.read(64)
        if eh[:4] != b"\x7fELF" or eh[4] != 2 or eh[5] != 1:
            raise gdb.GdbError("weft: %s is not an ELF64 LE core" % path)
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        f.seek(phoff)
        ph = f.read(phentsize * phnum)
    segs = []
    for i in range(phnum):
        p_type, _, off, vaddr, _, filesz, _, _ = struct.unpack_from(
            "<IIQQQQQQ", ph, i * phentsize)
        if p_type == 1 and filesz:
            segs.append((vaddr, off, filesz))
    return segs


def read_readable(inf, addr, size, page=4096):
    """(address, bytes) runs of [addr, addr + size) that can be read."""
    try:
        return [(addr, bytes(inf.read_memory(addr, size)))]
    except gdb.MemoryError:
        pass
    runs = []
    for a in range(addr, addr + size, page):
        try:
            runs.append((a, bytes(inf.read_memory(a, page))))
        except gdb.MemoryError:
            pass
    return runs


class WeftGcore(gdb.Command):
    """weft gcore [FILE]: gcore, then the live tasks' stacks into FILE."""

    def __init__(self):
        super().__init__("weft gcore", gdb.COMMAND_USER,
                         gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        inf = gdb.selected_inferior()
        path = arg.strip() or "core.%d" % inf.pid
        # Its warnings are about the stack slabs, which we copy next.
        gdb.execute("gcore %s" % path, to_string=True)
        segs = core_segments(path)
        copied = 0
        with open(path, "r+b") as f:
            for t in live_tasks():
                base = int(t["stack"]["base"])
                size = int(t["stack"]["size"])
                if base == 0:
                    continue
                for addr, data in read_readable(inf, base, size):
                    copied += put_in_core(f, segs, addr, data)
        print("weft: saved %s, with %d bytes of task stacks" %
              (path, copied))


def put_in_core(f, segs, addr, data):
    """Writes data, the memory at addr, where the core keeps it."""
    for vaddr, off, filesz in segs:
        if vaddr <= addr and addr + len(data) <= vaddr + filesz:
            f.seek(off + addr - vaddr)
            f.write(data)
            return len(data)
    return 0


Weft()
WeftTasks()
WeftBt()
WeftGcore()
