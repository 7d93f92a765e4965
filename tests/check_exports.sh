#!/usr/bin/env bash
# exported_symbols: fails if the shared libweft ($1) exports a name that is
# not public API: one outside weft_ (weft__ names are internal), or one no
# header under $2 declares. The version node itself (WEFT_0.1) is no
# symbol of the API.
# And if the static libweft ($3) defines a global name outside weft_: no
# version script hides its internal names, which must be weft__ ones so
# that none can clash with a name of the program it is linked into.
set -euo pipefail
lib=$1 include=$2 static=$3
names=$(nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }')
[[ -n $names ]] || { echo "no exported names in $lib"; exit 1; }
bad=0
for n in $names; do
	if [[ ! $n =~ ^weft_[^_] ]]; then
		echo "exported, not public: $n"
		bad=1
	elif ! grep -rqw -- "$n" "$include"; then
		echo "exported, declared in no public header: $n"
		bad=1
	fi
done
echo "$(wc -w <<<"$names") names exported"
# (ASan adds an __odr_asan.NAME beside each global NAME: not weft's.)
statics=$(nm -g --defined-only "$static" |
	awk 'NF == 3 && $3 !~ /^__odr_asan\./ { print $3 }' | sort -u)
[[ -n $statics ]] || { echo "no global names in $static"; exit 1; }
for n in $statics; do
	if [[ ! $n =~ ^weft_ ]]; then
		echo "global in the static library, not weft_: $n"
		bad=1
	fi
done
echo "$(wc -w <<<"$statics") global names in the static library"
exit $bad
