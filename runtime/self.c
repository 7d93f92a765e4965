/* Who is running: see self.h. */
#include "self.h"

__thread struct weft_worker *weft__tls_self
	__attribute__((tls_model("initial-exec")));

void weft__self_set(struct weft_worker *w)
{
	weft__tls_self = w;
}
