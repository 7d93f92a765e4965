# I/O: sockets, files, the escape hatch, the blocking pool, and running
# without io_uring.
weft_test(test_io_tcp TIMEOUT 300 SOURCES test_io_tcp.c)
weft_test(test_io_udp_unix TIMEOUT 120 SOURCES test_io_udp_unix.c)
weft_test(test_io_file TIMEOUT 120 SOURCES test_io_file.c)
weft_test(test_io_blocking TIMEOUT 120 SOURCES test_io_blocking.c)
weft_test(test_io_nosys TIMEOUT 60 SOURCES test_io_nosys.c)
weft_test(test_io_stress TIMEOUT 300 SOURCES test_io_stress.c)
weft_test(test_io_stream TIMEOUT 300 SOURCES test_io_stream.c)
weft_test(test_io_signal TIMEOUT 120 SOURCES test_io_signal.c)
weft_test(test_io_resolve TIMEOUT 120 SOURCES test_io_resolve.c)
weft_test(test_io_busy TIMEOUT 120 SOURCES test_io_busy.c)
weft_test(test_unsent TIMEOUT 120 SOURCES test_unsent.c)
weft_test(test_io_dontwait TIMEOUT 60 SOURCES test_io_dontwait.c)
