# Observability: thread names, metrics, task dumps, stall reports, gdb.
weft_test(test_observe TIMEOUT 300 SOURCES test_observe.c)
