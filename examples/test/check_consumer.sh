#!/usr/bin/env bash
# check_consumer.sh BUILD_DIR SOURCE_DIR LIBDIR CC [CFLAGS...]
#
# Does what README.md tells a user who builds against weft: installs the
# build into a fresh prefix, then builds examples/consumer both with CMake's
# find_package(weft) and with pkg-config, and runs both programs (under
# $WEFT_EMULATOR, if set: a cross build's emulator, whose toolchain file is
# $WEFT_TOOLCHAIN_FILE). LIBDIR is the build's CMAKE_INSTALL_LIBDIR, where
# the library and weft.pc go under the prefix: lib on Debian by default,
# lib/x86_64-linux-gnu with the prefix /usr (a Debian package's build),
# lib64 on Fedora.
set -euo pipefail
build=$1 src=$2 libdir=$3 cc=$4
shift 4
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

# The same program as a C++ project's (examples/test/consumer_cxx), with
# the C++ compiler of $cc's family. Not for a cross build: scripts/deps
# installs no cross g++, and its libstdc++ would not be where qemu's
# loader looks (cmake/aarch64-linux-gnu.cmake).
# weft::weft's usage requirements must reach its C++ sources too: a task's
# frame larger than the guard page must probe it (docs/concepts.md, Stacks).
cxx=${cc##*/}
case $cxx in # cc, gcc[-N], TRIPLET-gcc[-N], clang[-N]: c++, g++, clang++
*clang*) cxx=${cxx/clang/clang++} ;;
*gcc*) cxx=${cxx/%gcc/g++} cxx=${cxx/gcc-/g++-} ;;
*) cxx=${cxx%cc}c++ ;;
esac
[[ $cc == */* ]] && cxx=${cc%/*}/$cxx
if [[ -n ${WEFT_TOOLCHAIN_FILE:-} ]]; then
	echo "(a cross build: the C++ consumer is not built)"
elif command -v "$cxx" >/dev/null; then
	cmake -S "$src/examples/test/consumer_cxx" -B "$tmp/cxx" \
		-DCMAKE_PREFIX_PATH="$tmp/weft" -DCMAKE_CXX_COMPILER="$cxx" \
		-DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
		-DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
	grep -q -- -fstack-clash-protection "$tmp/cxx/compile_commands.json" ||
		{ echo "weft::weft gave a C++ source no -fstack-clash-protection"
		  exit 1; }
	cmake --build "$tmp/cxx" >/dev/null
	"$tmp/cxx/sum_cxx"
else
	echo "(no C++ compiler $cxx: the C++ consumer is not built)"
fi

# weft as a subproject (examples/test/consumer_subdir): configured only,
# to see that it brings its library and none of its tests, examples or
# benchmarks (the tests would need Check; building weft again here would
# cost a minute).
cmake -S "$src/examples/test/consumer_subdir" -B "$tmp/subdir" \
	${WEFT_TOOLCHAIN_FILE:+-DCMAKE_TOOLCHAIN_FILE="$WEFT_TOOLCHAIN_FILE"} \
	-DWEFT_SOURCE_DIR="$src" -DCMAKE_C_COMPILER="$cc" >/dev/null
targets=$(cmake --build "$tmp/subdir" --target help)
grep -qw sum_subdir <<<"$targets" ||
	{ echo "the subproject consumer has no target sum_subdir"; exit 1; }
for t in test_task tour skynet; do
	if grep -qw "$t" <<<"$targets"; then
		echo "weft as a subproject builds its own $t"
		exit 1
	fi
done

# A packager's install directories may be absolute (GNUInstallDirs allows
# it; an RPM spec's -DCMAKE_INSTALL_LIBDIR=%{_libdir} is /usr/lib64), one
# of them or both: weft.pc, where it is installed (LIBDIR/pkgconfig), must
# still name the directories the headers and the library went to. Only
# configured (weft.pc is written then), weft's library only.
pc_dirs() { # LIBDIR INCLUDEDIR: as given to CMake, relative to $tmp/pc or not
	local b=$tmp/pc-build lib=$1 inc=$2 got
	rm -rf "$b" "$tmp/pc"
	cmake -S "$src" -B "$b" -DWEFT_BUILD_TESTS=OFF \
		-DWEFT_BUILD_EXAMPLES=OFF -DWEFT_BUILD_BENCH=OFF \
		${WEFT_TOOLCHAIN_FILE:+-DCMAKE_TOOLCHAIN_FILE="$WEFT_TOOLCHAIN_FILE"} \
		-DCMAKE_C_COMPILER="$cc" -DCMAKE_INSTALL_PREFIX="$tmp/pc" \
		-DCMAKE_INSTALL_LIBDIR="$lib" \
		-DCMAKE_INSTALL_INCLUDEDIR="$inc" >/dev/null
	[[ $lib == /* ]] || lib=$tmp/pc/$lib
	[[ $inc == /* ]] || inc=$tmp/pc/$inc
	mkdir -p "$lib/pkgconfig"
	cp "$b/weft.pc" "$lib/pkgconfig/"
	for v in libdir:"$lib" includedir:"$inc"; do
		got=$(PKG_CONFIG_PATH="$lib/pkgconfig" \
			pkg-config --variable="${v%%:*}" weft)
		[[ $(realpath -m "$got") == $(realpath -m "${v#*:}") ]] || {
			echo "weft.pc for LIBDIR $1, INCLUDEDIR $2:" \
				"${v%%:*} $got, not ${v#*:}"
			exit 1
		}
	done
}
pc_dirs "$tmp/pc/lib64" include
pc_dirs lib "$tmp/pc/inc"
pc_dirs "$tmp/pc/lib64" "$tmp/pc/inc"

export PKG_CONFIG_PATH="$tmp/weft/$libdir/pkgconfig"
# shellcheck disable=SC2046,SC2086
# With the warnings a careful user has on: a result the API marks
# WEFT_MUST_CHECK must not be dropped in the example everyone copies.
"$cc" $flags -Wall -Wextra -Werror "$src/examples/consumer/sum.c" \
	$(pkg-config --cflags --libs weft) -o "$tmp/sum-pc"
# (A shared libweft is found by the loader only if told where it is.)
# shellcheck disable=SC2086
LD_LIBRARY_PATH="$tmp/weft/$libdir" ${WEFT_EMULATOR:-} "$tmp/sum-pc"
echo "ok: find_package(weft) and pkg-config both build and run"
