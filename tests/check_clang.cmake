# build_clang: README.md says weft builds with GCC or Clang, and the presets
# build it with -Werror; CI builds with GCC. This compiles every C file of
# the build (the library, tests, examples, benchmarks) with Clang instead,
# syntax and warnings only (-fsyntax-only), with the flags the build gives
# GCC, so that what Clang alone rejects (an __atomic builtin on an _Atomic
# object, a GCC-only warning name under -Werror) fails here.
#   cmake -DCLANG=clang -DCOMMANDS=build/compile_commands.json -P this
cmake_minimum_required(VERSION 3.25)
file(READ "${COMMANDS}" json)
string(JSON n LENGTH "${json}")
math(EXPR last "${n} - 1")
set(seen "")
set(failed 0)
set(checked 0)
foreach(i RANGE ${last})
  string(JSON file GET "${json}" ${i} file)
  if(NOT file MATCHES "\\.c$" OR file IN_LIST seen)
    continue() # assembly; a source built twice (libweft, its shared twin)
  endif()
  list(APPEND seen "${file}")
  string(JSON dir GET "${json}" ${i} directory)
  string(JSON command GET "${json}" ${i} command)
  separate_arguments(args UNIX_COMMAND "${command}")
  list(POP_FRONT args) # GCC
  execute_process(COMMAND "${CLANG}" ${args} -fsyntax-only
                  WORKING_DIRECTORY "${dir}" RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE out)
  math(EXPR checked "${checked} + 1")
  if(NOT rc EQUAL 0)
    message("${file}:\n${out}")
    math(EXPR failed "${failed} + 1")
  endif()
endforeach()
if(failed)
  message(FATAL_ERROR "${failed} of ${checked} files do not compile with Clang")
endif()
message("${checked} files compile with Clang")
