# I/O: timers as seen by tasks, sockets, files, the escape hatch, the
# blocking pool, and running without io_uring.
weft_test(test_io_sleep TIMEOUT 300 SOURCES test_io_sleep.c)
# It measures wake-up order and lateness: alone, not beside a heavy suite.
set_tests_properties(test_io_sleep PROPERTIES RUN_SERIAL TRUE)
weft_test(test_io_tcp TIMEOUT 300 SOURCES test_io_tcp.c)
weft_test(test_io_udp_unix TIMEOUT 120 SOURCES test_io_udp_unix.c)
weft_test(test_io_file TIMEOUT 120 SOURCES test_io_file.c)
weft_test(test_io_blocking TIMEOUT 120 SOURCES test_io_blocking.c)
weft_test(test_io_nosys TIMEOUT 60 SOURCES test_io_nosys.c)
weft_test(test_io_stress TIMEOUT 300 SOURCES test_io_stress.c)
weft_test(test_io_stream TIMEOUT 300 SOURCES test_io_stream.c)
weft_test(test_io_signal TIMEOUT 120 SOURCES test_io_signal.c)
weft_test(test_io_resolve TIMEOUT 120 SOURCES test_io_resolve.c)
