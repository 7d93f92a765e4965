# The sync primitives' suites (sync/).
weft_test(test_sync_lock TIMEOUT 120 SOURCES test_sync_lock.c)
weft_test(test_sync_event TIMEOUT 120 SOURCES test_sync_event.c)
weft_test(test_sync_cond TIMEOUT 120 SOURCES test_sync_cond.c)
weft_test(test_sync_sem TIMEOUT 120 SOURCES test_sync_sem.c)
weft_test(test_sync_queue TIMEOUT 120 SOURCES test_sync_queue.c)
weft_test(test_sync_future TIMEOUT 120 SOURCES test_sync_future.c)
weft_test(test_sync_barrier TIMEOUT 120 SOURCES test_sync_barrier.c)
weft_test(test_sync_stress TIMEOUT 300 SOURCES test_sync_stress.c)
