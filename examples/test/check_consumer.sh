#!/usr/bin/env bash
# check_consumer.sh BUILD_DIR SOURCE_DIR CC [CFLAGS...]
#
# Does what README.md tells a user who builds against weft: installs the
# build into a fresh prefix, then builds examples/consumer both with CMake's
# find_package(weft) and with pkg-config, and runs both programs (under
# $WEFT_EMULATOR, if set: a cross build's emulator, whose toolchain file is
# $WEFT_TOOLCHAIN_FILE).
set -euo pipefail
build=$1 src=$2 cc=$3
shift 3
flags="$*"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The README shows sum.c in full: it must be the program tested here.
awk '/^```c$/ && !n++ { on = 1; next } on && /^```$/ { exit } on' \
	"$src/README.md" | diff -u - "$src/examples/consumer/sum.c" ||
	{ echo "README.md's example differs from examples/consumer/sum.c"; exit 1; }

cmake --install "$build" --prefix "$tmp/weft" >/dev/null
cmake -S "$src/examples/consumer" -B "$tmp/cmake" \
	${WEFT_TOOLCHAIN_FILE:+-DCMAKE_TOOLCHAIN_FILE="$WEFT_TOOLCHAIN_FILE"} \
	-DCMAKE_PREFIX_PATH="$tmp/weft" -DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
# shellcheck disable=SC2086 # WEFT_EMULATOR: a cross build's, or empty
${WEFT_EMULATOR:-} "$tmp/cmake/sum"

export PKG_CONFIG_PATH="$tmp/weft/lib/pkgconfig"
# shellcheck disable=SC2046,SC2086
# With the warnings a careful user has on: a result the API marks
# WEFT_MUST_CHECK must not be dropped in the example everyone copies.
"$cc" $flags -Wall -Wextra -Werror "$src/examples/consumer/sum.c" \
	$(pkg-config --cflags --libs weft) -o "$tmp/sum-pc"
# (A shared libweft is found by the loader only if told where it is.)
# shellcheck disable=SC2086
LD_LIBRARY_PATH="$tmp/weft/lib" ${WEFT_EMULATOR:-} "$tmp/sum-pc"
echo "ok: find_package(weft) and pkg-config both build and run"
