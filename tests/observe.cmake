# Observability: thread names, metrics, task dumps, stall reports, gdb.
weft_test(test_observe TIMEOUT 300 SOURCES test_observe.c)
# gdb/weft-gdb.py in batch mode, live and on a core file (default preset:
# the sanitizers' runtimes make gdb's attach slow and noisy).
add_executable(gdb_target gdb_target.c)
target_link_libraries(gdb_target PRIVATE weft)
if(NOT CMAKE_C_FLAGS MATCHES "sanitize")
  add_test(NAME test_gdb
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/gdb_check.sh
                   $<TARGET_FILE:gdb_target>
                   ${PROJECT_SOURCE_DIR}/gdb/weft-gdb.py)
  set_tests_properties(test_gdb PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
endif()
