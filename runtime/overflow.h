/* Stack overflow reports: a SIGSEGV in a task's guard pages becomes one
 * clear line naming the task, then abort(). Other faults go to the handler
 * that was there before. */
#ifndef WEFT_RUNTIME_OVERFLOW_H
#define WEFT_RUNTIME_OVERFLOW_H

void weft__overflow_install(void);
/* Puts back the action install found, unless the program has replaced
 * weft's handler since: then its own stays. */
void weft__overflow_remove(void);

#endif
