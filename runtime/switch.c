/* A task's first and last moments on its stack, and its overflow report:
 * see switch.h. */
#include <stdio.h>
#include <stdlib.h>

#include "self.h"
#include "switch.h"

bool weft__fp_per_task;

void weft__report_smashed_stack(struct weft_task *t)
{
	fprintf(stderr,
		"weft: task '%s' (id %llu) overflowed its %zu-byte stack\n",
		t->name, (unsigned long long)t->id, t->stack.size);
	abort();
}

void weft__task_entry(struct weft_task *t)
{
#ifdef WEFT_ASAN
	__sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
	t->result = t->fn(t->arg);
	struct weft_worker *w = weft__self();
	w->reason = SWITCH_EXIT;
	w->after_switch = NULL;
	weft__switch_to_scheduler(w, t, true);
	__builtin_unreachable();
}
