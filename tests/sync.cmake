# The sync primitives' suites (sync/).
weft_test(test_sync_lock TIMEOUT 120 SOURCES test_sync_lock.c)
