# Valgrind's memcheck over a few suites that cover the runtime, the sync
# primitives and the I/O paths (not under the sanitizer presets: they own
# the process's memory instead), nor for another CPU. Valgrind lowers the file-descriptor limit,
# so the suites that exhaust descriptors on purpose are left to the others.
find_program(VALGRIND valgrind)
if(VALGRIND AND NOT CMAKE_C_FLAGS MATCHES "sanitize" AND NOT CMAKE_CROSSCOMPILING)
  foreach(t test_context test_sync_lock test_sync_future test_sync_group
            test_io_file test_io_udp_unix)
    if(TARGET ${t})
      add_test(NAME valgrind_${t}
               COMMAND ${VALGRIND} --quiet --error-exitcode=9 --leak-check=full
                       --errors-for-leak-kinds=definite $<TARGET_FILE:${t}>)
      set_tests_properties(valgrind_${t} PROPERTIES TIMEOUT 300
                           ENVIRONMENT "CK_FORK=no")
    endif()
  endforeach()
endif()
