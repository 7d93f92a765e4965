#!/usr/bin/env bash
# test_gdb: gdb/weft-gdb.py against gdb_target, attached to the live
# process and on a core file from `weft gcore`: `weft tasks` lists the
# parked tasks and what they wait on, `weft bt ID` shows the frames of the
# one parked in a lock, and says that a task not yet run has no frames.
# Usage: gdb_check.sh TARGET EXTENSION. Exit 77 (skipped) without gdb.
set -u
prog=$1
ext=$2
if ! command -v gdb >/dev/null || ! command -v gcore >/dev/null; then
	echo "gdb not found: test_gdb skipped (scripts/deps installs it)"
	exit 77
fi
tmp=$(mktemp -d)
pid=
cleanup() {
	exec 3>&- 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $1"
	echo "$2"
	exit 1
}
weft_gdb() {
	gdb -batch -nx -ex "source $ext" "$@" 2>&1
}

mkfifo "$tmp/in"
"$prog" <"$tmp/in" >"$tmp/out" &
pid=$!
exec 3>"$tmp/in"
for _ in $(seq 200); do
	grep -q ready "$tmp/out" && break
	sleep 0.1
done
grep -q ready "$tmp/out" || fail "the target never got ready" ""

# Selects gdb_target's thread asleep inside sleep_inline, an inline frame.
cat >"$tmp/pick.py" <<'EOF2'
for t in gdb.selected_inferior().threads():
    t.switch()
    if gdb.newest_frame().name() == "sleep_inline":
        print("picked the inline sleeper")
        break
EOF2

check() { # $1: where, then the gdb arguments that open it
	local where=$1
	shift
	local tasks bt id nid
	tasks=$(weft_gdb "$@" -ex "weft tasks")
	id=$(sed -n 's/^task \([0-9]*\) "locker" parked: lock 0x.*/\1/p' \
		<<<"$tasks")
	[ -n "$id" ] || fail "$where: no locker parked in a lock" "$tasks"
	grep -q '"eventer" parked: event 0x' <<<"$tasks" ||
		fail "$where: no eventer parked in an event" "$tasks"
	# A name cut inside a UTF-8 character (WEFT_NAME_MAX) is listed too.
	grep -q '^task [0-9]* "cut-.*" parked: event 0x' <<<"$tasks" ||
		fail "$where: no task named cut-... parked in an event" "$tasks"
	bt=$(weft_gdb "$@" -ex "weft bt $id" -ex "bt 1")
	grep -q 'parked_in_lock' <<<"$bt" ||
		fail "$where: weft bt $id shows no parked_in_lock" "$bt"
	# The lock's own frames, whichever function the compiler kept:
	# Clang makes weft_lock_acquire's slow path a tail call.
	grep -q ' at [^ ]*/sync/lock\.c:[0-9]' <<<"$bt" ||
		fail "$where: weft bt $id shows no frame of sync/lock.c" "$bt"
	# From a thread whose innermost frame is an inline one (as a thread
	# asleep in glibc's futex wait has, with glibc's debug information):
	# still the task's frames, none of that thread's.
	bt=$(weft_gdb "$@" -ex "source $tmp/pick.py" -ex "weft bt $id")
	grep -q 'picked the inline sleeper' <<<"$bt" ||
		fail "$where: no thread stopped in sleep_inline" "$bt"
	grep -q 'parked_in_lock' <<<"$bt" ||
		fail "$where: weft bt $id, from a thread in an inline frame, shows no parked_in_lock" "$bt"
	grep -q 'sleep_inline\|inline_sleeper' <<<"$bt" &&
		fail "$where: weft bt $id shows the selected thread's frames" "$bt"
	# A task spawned but not yet run has no saved registers: a clear
	# message, not a Python traceback of a failed memory read.
	nid=$(sed -n 's/^task \([0-9]*\) "notyet" runnable$/\1/p' <<<"$tasks")
	[ -n "$nid" ] || fail "$where: no runnable notyet" "$tasks"
	bt=$(weft_gdb "$@" -ex "weft bt $nid")
	grep -q "^weft: task $nid has not started" <<<"$bt" ||
		fail "$where: weft bt $nid of a task not started" "$bt"
	grep -q 'Traceback\|MemoryError' <<<"$bt" &&
		fail "$where: weft bt $nid of a task not started" "$bt"
	echo "$where: ok (locker is task $id, notyet $nid)"
}

check live -p "$pid"
# A plain gcore leaves the task stacks out (weft-gdb.py says why): weft
# gcore puts them in, and the waits and frames read from the core as live.
weft_gdb -p "$pid" -ex "weft gcore $tmp/core" >"$tmp/gcore.out" ||
	fail "weft gcore could not dump the target" "$(cat "$tmp/gcore.out")"
grep -q "with [1-9][0-9]* bytes of task stacks" "$tmp/gcore.out" ||
	fail "weft gcore copied no task stacks" "$(cat "$tmp/gcore.out")"
check core "$prog" "$tmp/core"
exec 3>&-
wait "$pid" || fail "the target failed once released" ""
pid=
