# Valgrind's memcheck over a few suites that cover the runtime, the sync
# primitives and the I/O paths (not under the sanitizer presets: they own
# the process's memory instead), nor for another CPU. Valgrind lowers the
# file-descriptor limit, so the suites that exhaust descriptors on purpose
# are left to the others.
#
# Sized for a loaded 2-core CI machine: valgrind runs one thread at a time,
# so the stress cases run at the sanitizers' scale (WEFT_TEST_SCALE=5), with
# --fair-sched=yes (the default lock hands the CPU back to a thread that
# spins, as the plain_threads case of test_sync_lock does in acquire_slow,
# starving the holder: that case took 72-129 s and timed out at 300 s),
# one valgrind at a time (RUN_SERIAL: two would share the cores with each
# other), and a timeout several times their run on an idle machine.
find_program(VALGRIND valgrind)
if(NOT VALGRIND)
  message(STATUS "valgrind not found: valgrind_* tests skipped "
                 "(scripts/deps installs it)")
endif()
if(VALGRIND AND NOT CMAKE_C_FLAGS MATCHES "sanitize" AND
   NOT CMAKE_CROSSCOMPILING)
  foreach(t test_context test_sync_lock test_sync_future test_sync_group
            test_io_file test_io_udp_unix)
    if(TARGET ${t})
      add_test(NAME valgrind_${t}
               COMMAND ${VALGRIND} --quiet --error-exitcode=9 --leak-check=full
                       --errors-for-leak-kinds=definite --fair-sched=yes
                       $<TARGET_FILE:${t}>)
      set_tests_properties(valgrind_${t} PROPERTIES TIMEOUT 900 RUN_SERIAL ON
                           ENVIRONMENT "CK_FORK=no;WEFT_TEST_SCALE=5")
    endif()
  endforeach()
endif()
