# I/O: sockets, files, the escape hatch, the blocking pool, and running
# without io_uring.
weft_test(test_io_tcp TIMEOUT 300 SOURCES test_io_tcp.c)
# peek_waitall_waits_for_more counts a plain thread's recv(2) calls.
target_link_options(test_io_tcp PRIVATE -Wl,--wrap=recv)
weft_test(test_io_udp_unix TIMEOUT 120 SOURCES test_io_udp_unix.c)
weft_test(test_io_file TIMEOUT 120 SOURCES test_io_file.c)
# open_fifo_writer_cancelled_at_second_wait cancels at a wait's begin.
target_link_options(test_io_file PRIVATE
                    -Wl,--wrap=weft__wait_begin_until)
weft_test(test_io_blocking TIMEOUT 120 SOURCES test_io_blocking.c)
weft_test(test_io_nosys TIMEOUT 60 SOURCES test_io_nosys.c)
weft_test(test_io_stress TIMEOUT 300 SOURCES test_io_stress.c)
weft_test(test_cancel_race TIMEOUT 300 SOURCES test_cancel_race.c)
weft_test(test_io_stream TIMEOUT 300 SOURCES test_io_stream.c)
weft_test(test_io_signal TIMEOUT 120 SOURCES test_io_signal.c)
weft_test(test_io_resolve TIMEOUT 120 SOURCES test_io_resolve.c)
weft_test(test_io_busy TIMEOUT 120 SOURCES test_io_busy.c)
weft_test(test_unsent TIMEOUT 120 SOURCES test_unsent.c)
weft_test(test_io_dontwait TIMEOUT 60 SOURCES test_io_dontwait.c)
weft_test(test_io_coop TIMEOUT 60 SOURCES test_io_coop.c)
weft_test(test_fdready_tcp_race TIMEOUT 60 SOURCES test_fdready_tcp_race.c)
weft_test(test_rlimit TIMEOUT 120 SOURCES test_rlimit.c)
# Not under qemu-user, whose fork and exec of the harness, and signals
# sent to the whole process, the test cannot rely on (it aborted at once);
# nor under ThreadSanitizer, which does not support threads started in a
# multi-threaded fork's child, and whose fiber bookkeeping reported the
# stack of one case's weft_run against the next case's once in CI.
if(NOT CMAKE_CROSSCOMPILING AND NOT CMAKE_C_FLAGS MATCHES "sanitize=thread")
  weft_test(test_process TIMEOUT 300 SOURCES test_process.c)
endif()
weft_test(test_plain_close_reuse TIMEOUT 60 SOURCES test_plain_close_reuse.c)
weft_test(test_io_wait_fd TIMEOUT 120 SOURCES test_io_wait_fd.c)
weft_test(test_stream_model TIMEOUT 120 SOURCES test_stream_model.c)
