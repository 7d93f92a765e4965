#!/usr/bin/env bash
# check_seed.sh NAME PROGRAM [ARGS...]
# (PROGRAM runs under $WEFT_EMULATOR, if set: a cross build's emulator.)
#
# Runs one of the seed's examples (or the tour, NAME=tour) and checks what it
# printed: exactly the seed's lines, in an order that respects what the
# primitive guarantees. Lines of independent tasks on different threads may
# come in any order, so only the guaranteed orderings are checked.
set -uo pipefail

name=$1 prog=$2
shift 2
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err" "$out".*' EXIT

fail() {
	echo "FAIL ($name): $*" >&2
	echo "--- output:" >&2
	cat "$out" >&2
	exit 1
}

# The line number of the one line equal to $2 in file $1.
at() {
	local n
	n=$(grep -nxF -- "$2" "$1" | cut -d: -f1)
	[[ -n "$n" ]] || fail "no line '$2'"
	[[ "$n" != *$'\n'* ]] || fail "line '$2' printed more than once"
	echo "$n"
}

# before FILE A B: line A comes before line B.
before() {
	local a b
	a=$(at "$1" "$2") && b=$(at "$1" "$3") || exit 1
	((a < b)) || fail "'$2' should come before '$3'"
}

# one_at_a_time FILE IN1 OUT1 IN2 OUT2: of two holders of something
# exclusive, whichever got in first was out before the other got in.
one_at_a_time() {
	local a b
	a=$(at "$1" "$2") && b=$(at "$1" "$4") || exit 1
	if ((a < b)); then
		before "$1" "$3" "$4"
	else
		before "$1" "$5" "$2"
	fi
}

# same_lines FILE LINE...: the file holds exactly these lines, in any order.
same_lines() {
	local f=$1
	shift
	diff <(sort "$f") <(printf '%s\n' "$@" | sort) >/dev/null ||
		fail "expected the lines: $*"
}

check_lock() {
	local f=$1
	same_lines "$f" "worker1 start" "worker1 got lock" "worker1 end" \
		"worker2 start" "worker2 got lock" "worker2 end"
	for w in worker1 worker2; do
		before "$f" "$w start" "$w got lock"
		before "$f" "$w got lock" "$w end"
	done
	one_at_a_time "$f" "worker1 got lock" "worker1 end" \
		"worker2 got lock" "worker2 end"
}

check_event() {
	local f=$1
	same_lines "$f" "worker1 start" "worker1 got event" "worker1 end" \
		"worker2 start" "worker2 got event" "worker2 end" \
		"worker3 start" "worker3 end"
	before "$f" "worker3 start" "worker3 end"
	for w in worker1 worker2; do
		before "$f" "$w start" "$w got event"
		before "$f" "worker3 end" "$w got event"
		before "$f" "$w got event" "$w end"
	done
}

check_condition() {
	local f=$1
	same_lines "$f" "asyncio native start1" "asyncio native stop1" \
		"asyncio native start2" "asyncio native stop2" \
		"asyncio native start3" "asyncio native stop3"
	# 3 first; then 1 and 2, each holding the lock from start to stop.
	before "$f" "asyncio native start3" "asyncio native stop3"
	before "$f" "asyncio native stop3" "asyncio native start1"
	before "$f" "asyncio native stop3" "asyncio native start2"
	one_at_a_time "$f" "asyncio native start1" "asyncio native stop1" \
		"asyncio native start2" "asyncio native stop2"
}

check_semaphore() {
	local f=$1
	same_lines "$f" "worker1 start" "worker1 end" "worker2 start" \
		"worker2 end"
	# Two permits: both are in before either leaves.
	before "$f" "worker1 start" "worker2 end"
	before "$f" "worker2 start" "worker1 end"
}

check_queue() {
	local f=$1
	same_lines "$f" "worker1 start" "worker1 end" "worker2 start" "100" \
		"worker2 end"
	before "$f" "worker1 start" "worker1 end"
	before "$f" "worker1 start" "100"
	before "$f" "worker2 start" "100"
	before "$f" "100" "worker2 end"
}

check_future() {
	local f=$1
	same_lines "$f" "hello ..." "... world"
	before "$f" "hello ..." "... world"
}

# The tour: a preamble, then one "# asyncio.X  (examples/x.c)" section per
# example, in this order, each checked as above.
check_tour() {
	local f=$1 i=0 titles=(Lock Event Condition Semaphore Queue Future)
	grep -q '^weft tour:' "$f" || fail "no preamble"
	[[ $(grep -c '^# asyncio\.' "$f") == 6 ]] || fail "expected 6 headings"
	awk -v base="$f" '
		/^# asyncio\./ { n++; file = base "." n; next }
		n && NF { print > file }' "$f"
	for t in "${titles[@]}"; do
		i=$((i + 1))
		grep -q "^# asyncio\.$t  (examples/" <(grep '^# ' "$f" |
			sed -n "${i}p") || fail "heading $i should be asyncio.$t"
		"check_${t,,}" "$f.$i"
	done
}

[[ $(type -t "check_$name") == function ]] || fail "unknown example"
# Bad options are refused with the usage line (status 2), never run as some
# other value: an empty -s is no number, and a -w past int's range is not
# the count it wraps to (4294967298 would run on 2 workers); a number is
# digits (and a point, for -s), without the blanks and sign strtol and
# strtod take, as the servers' PORT and WORKERS.
for bad in "-s=" "-w=4294967298" "-w=2147483649" "-w=99999999999999999999" \
	"-w= 2" "-w=+2" "-s= 1" "-s=+1"; do
	# shellcheck disable=SC2086 # WEFT_EMULATOR: a cross build's, or empty
	${WEFT_EMULATOR:-} "$prog" "${bad%%=*}" "${bad#*=}" -s 0 >"$out" 2>"$err"
	rc=$?
	if ((rc != 2)) || ! grep -q '^usage: ' "$err"; then
		fail "'${bad%%=*} ${bad#*=}': exit status $rc, not 2 with the usage"
	fi
done
# -h asks for the usage: on stdout, status 0, and nothing run.
# shellcheck disable=SC2086 # WEFT_EMULATOR: a cross build's, or empty
${WEFT_EMULATOR:-} "$prog" -h >"$out" 2>"$err"
rc=$?
if ((rc != 0)) || ! grep -q '^usage: ' "$out" || [[ -s "$err" ]]; then
	fail "'-h': exit status $rc, not 0 with the usage on stdout"
fi
# shellcheck disable=SC2086 # WEFT_EMULATOR: a cross build's, or empty
${WEFT_EMULATOR:-} "$prog" "$@" >"$out" 2>"$err"
rc=$?
cat "$err" >&2
((rc == 0)) || fail "exit status $rc"
[[ ! -s "$err" ]] || fail "wrote to stderr"
"check_$name" "$out"
echo "ok ($name): $(grep -vc '^$' "$out") lines in a guaranteed order"
