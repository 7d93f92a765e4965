weft_test(test_deque TIMEOUT 120 SOURCES test_deque.c)
weft_test(test_inject TIMEOUT 120 SOURCES test_inject.c)
weft_test(test_context TIMEOUT 120 SOURCES test_context.c callee_saved.S)
target_link_libraries(test_context PRIVATE m)
# qemu-user delivers a signal only between translated blocks: one
# instruction a block, so that unwind_through_switch's land inside the
# switch too.
if(CMAKE_CROSSCOMPILING)
  set_property(TEST test_context APPEND PROPERTY ENVIRONMENT
               "QEMU_SINGLESTEP=1")
endif()
weft_test(test_task TIMEOUT 900 SOURCES test_task.c)
# Its checks of how work spreads are the spread runtime's rules: yielders
# reach a sleeping worker, and so do they in the kept-worker check's set-up
# (six yielders on four workers). Beside a busy test under ctest -j2 the
# epoll runtime may crowd (crowd.h), and crowded, the monitor rouses nobody
# for tasks that are merely queued, on purpose. test_crowd checks what
# crowding keeps: a kept worker's woken tasks are still rescued.
set_property(TEST test_task APPEND PROPERTY ENVIRONMENT "WEFT_CROWDING=off")
weft_test(test_lifecycle TIMEOUT 600 SOURCES test_lifecycle.c)
weft_test(test_timer TIMEOUT 300 SOURCES test_timer.c)
# It measures wake-up order and lateness: alone, not beside a heavy suite.
set_tests_properties(test_timer PROPERTIES RUN_SERIAL TRUE)
# The monitor's rescues beside a kept worker: a ready task, the first fd.
weft_test(test_monitor TIMEOUT 300 SOURCES test_monitor.c)
# What a worker does between tasks: searching, sleeping, its timers.
weft_test(test_sched TIMEOUT 300 SOURCES test_sched.c)
# Crowding: it pins itself to one CPU, then needs one idle: alone.
weft_test(test_crowd TIMEOUT 300 SOURCES test_crowd.c)
set_tests_properties(test_crowd PROPERTIES RUN_SERIAL TRUE)

weft_test(test_stack TIMEOUT 120 SOURCES test_stack.c)
weft_test(test_debug TIMEOUT 60 SOURCES test_debug.c)
weft_test(test_cpus TIMEOUT 60 SOURCES test_cpus.c)
# A dropped result of a WEFT_MUST_CHECK call is a compile error under
# -Werror: each must_check_<what>.c drops one, and must not compile (a
# blocking call's, the lock's; a call that writes nothing when it fails,
# weft_metrics; scopes that leave the code after them unbounded or
# unshielded when they fail, the deadline's and the shield's; a stop that
# waited for nothing when it fails, weft_group_shutdown).
foreach(what lock metrics deadline shield shutdown)
  add_test(NAME test_must_check_${what}
           COMMAND ${CMAKE_C_COMPILER} -c -o /dev/null -Werror=unused-result
                   -I${PROJECT_SOURCE_DIR}/include
                   ${CMAKE_CURRENT_SOURCE_DIR}/must_check_${what}.c)
  set_tests_properties(test_must_check_${what} PROPERTIES WILL_FAIL TRUE)
endforeach()
# The chaos test runs for a minute: only with `ctest -L chaos`, or
# scripts/chaos (tsan, several times in a row).
weft_test(test_chaos TIMEOUT 900 SOURCES test_chaos.c)
set_tests_properties(test_chaos PROPERTIES LABELS chaos)
# It defines malloc and mmap to fail them one by one: not under the
# sanitizers, which own the process's memory.
if(NOT CMAKE_C_FLAGS MATCHES "sanitize")
  weft_test(test_alloc_fail TIMEOUT 300 SOURCES test_alloc_fail.c)
endif()
weft_test(test_run_number TIMEOUT 60 SOURCES test_run_number.c)
weft_test(test_pollset_transient TIMEOUT 120 SOURCES test_pollset_transient.c)
