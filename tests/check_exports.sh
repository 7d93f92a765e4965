#!/usr/bin/env bash
# exported_symbols: fails if the shared libweft ($1) exports a name that is
# not public API: one outside weft_ (weft__ names are internal), or one no
# header under $2 declares. The version node itself (WEFT_0.1) is no
# symbol of the API.
set -euo pipefail
lib=$1 include=$2
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
exit $bad
