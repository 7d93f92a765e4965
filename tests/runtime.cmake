weft_test(test_deque TIMEOUT 120 SOURCES test_deque.c)
weft_test(test_task TIMEOUT 300 SOURCES test_task.c)
