# Observability: thread names, metrics, task dumps, stall reports, gdb.
weft_test(test_observe TIMEOUT 300 SOURCES test_observe.c)
# What weft_run leaves of the signal actions it took; dump signal names.
weft_test(test_sig_restore TIMEOUT 120 SOURCES test_sig_restore.c)
if(WEFT_USES_LIBDW) # the backtraces must then have file:line
  target_compile_definitions(test_observe PRIVATE WEFT_HAVE_LIBDW)
endif()
# gdb/weft-gdb.py in batch mode, live and on a core file (default preset:
# the sanitizers' runtimes make gdb's attach slow and noisy).
add_executable(gdb_target gdb_target.c)
target_link_libraries(gdb_target PRIVATE weft)
# Not for a cross build: the host's gdb cannot attach to an emulated
# program. (weft-gdb.py's aarch64 layout was checked by hand with
# gdb-multiarch on a core qemu-aarch64 wrote, too big, 1.1 GB, for ctest.)
if(NOT CMAKE_C_FLAGS MATCHES "sanitize" AND NOT CMAKE_CROSSCOMPILING)
  add_test(NAME test_gdb
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/gdb_check.sh
                   $<TARGET_FILE:gdb_target>
                   ${PROJECT_SOURCE_DIR}/gdb/weft-gdb.py)
  set_tests_properties(test_gdb PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
# A dump's and a stall report's files are O_CLOEXEC from the start.
weft_test(test_dump_cloexec TIMEOUT 120 SOURCES test_dump_cloexec.c)
if(WEFT_USES_LIBDW) # the dump must then name lines, so libdw read files
  target_compile_definitions(test_dump_cloexec PRIVATE WEFT_HAVE_LIBDW)
endif()
# A shared object test_observe copies to paths of its choosing (a long one,
# a damaged copy) and loads.
add_library(observe_callee SHARED observe_callee.c)
add_dependencies(test_observe observe_callee)
target_compile_definitions(test_observe PRIVATE
  OBSERVE_CALLEE="$<TARGET_FILE:observe_callee>")
# The same without .debug_aranges, as clang builds it by default: a dump
# must find the lines of its code all the same.
set(observe_callee_bare ${CMAKE_CURRENT_BINARY_DIR}/libobserve_callee_bare.so)
add_custom_command(TARGET observe_callee POST_BUILD
  COMMAND ${CMAKE_OBJCOPY} --remove-section=.debug_aranges
          $<TARGET_FILE:observe_callee> ${observe_callee_bare})
target_compile_definitions(test_observe PRIVATE
  OBSERVE_CALLEE_BARE="${observe_callee_bare}")
target_link_libraries(test_observe PRIVATE ${CMAKE_DL_LIBS})
