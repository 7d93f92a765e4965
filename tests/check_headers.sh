#!/usr/bin/env bash
# public_headers: every public header under $2 compiles alone, as the first
# include of a C11 file and of a C++11 file (extern "C"), with every
# warning the strict user turns on an error: a GNU extension, a missing
# include or an unguarded C-only construct in a header fails it. $1 is the
# C compiler; the C++ compiler is the one beside it (g++ for gcc, clang++
# for clang), else c++, and the C++ half is said skipped if none is. A
# declaration follows the include: ISO C wants one in a file, and
# must_check.h declares nothing.
set -euo pipefail
cc=$1 include=$2
cxx=${cc/%gcc/g++}
cxx=${cxx/%clang/clang++}
[[ $cxx != "$cc" ]] && command -v "$cxx" > /dev/null || cxx=c++
command -v "$cxx" > /dev/null || cxx=""
strict=(-Wall -Wextra -Wpedantic -Werror -fsyntax-only -I "$include")
bad=0
for h in "$include"/weft.h "$include"/weft/*.h; do
	name=${h#"$include"/}
	printf '#include "%s"\ntypedef int after_it;\n' "$name" |
		"$cc" -std=c11 "${strict[@]}" -x c - ||
		{ echo "C11: $name does not compile alone"; bad=1; }
	[[ -z $cxx ]] && continue
	printf '#include "%s"\ntypedef int after_it;\n' "$name" |
		"$cxx" -std=c++11 "${strict[@]}" -x c++ - ||
		{ echo "C++11: $name does not compile alone"; bad=1; }
done
[[ -n $cxx ]] || echo "no C++ compiler: the C++11 half skipped"
exit $bad
