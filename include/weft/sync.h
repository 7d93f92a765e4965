/* weft sync primitives. Part of <weft.h>. */
#ifndef WEFT_SYNC_H
#define WEFT_SYNC_H
#include "weft/waitq.h"
#endif
