#!/usr/bin/env bash
# branch_protection (aarch64 builds): the context switch, assembled with
# -mbranch-protection=standard as a distribution's flags would build it,
# says BTI and PAC in its GNU property note, so a library of it and of C
# built so stays marked (the linker keeps a mark only if every object has
# it), and each of its functions begins with a landing pad. Assembled
# without, it has no note and no pads: the default build is as before.
# Linked without start files: Debian's are not marked, and would drop the
# mark whatever weft's objects say.
set -euo pipefail
cc=$1 src=$2 objdump=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

echo 'char weft__fp_per_task; /* the switch reads it */' >"$dir/probe.c"
"$cc" -mbranch-protection=standard -fPIC -c "$dir/probe.c" -o "$dir/probe.o"
"$cc" -mbranch-protection=standard -fPIC -c "$src" -o "$dir/switch.o"
"$cc" -shared -nostartfiles "$dir/probe.o" "$dir/switch.o" -o "$dir/lib.so"
if ! readelf -n "$dir/lib.so" | grep -q 'AArch64 feature: BTI, PAC'; then
	echo "a library of the switch and C built with branch protection lost it:"
	readelf -n "$dir/lib.so"
	exit 1
fi

# The first instruction of each function, as "mnemonic operand".
first_instruction() {
	"$objdump" -d "$1" | awk -v f="<$2>:" '$2 == f { getline; print $3, $4; exit }'
}
for f in weft__switch weft__ctx_fp_init weft__ctx_init; do
	got=$(first_instruction "$dir/switch.o" "$f")
	if [[ $got != "bti c" ]]; then
		echo "$f begins with '$got', not bti c"
		exit 1
	fi
done

"$cc" -fPIC -c "$src" -o "$dir/plain.o"
if readelf -n "$dir/plain.o" | grep -q 'AArch64 feature'; then
	echo "assembled without branch protection, the switch claims it"
	exit 1
fi
if [[ $(first_instruction "$dir/plain.o" weft__switch) == "bti c" ]]; then
	echo "assembled without branch protection, the switch has a pad"
	exit 1
fi
echo "BTI and PAC kept; $(basename "$src") unchanged without them"
