/* weft I/O. Part of <weft.h>. */
#ifndef WEFT_IO_H
#define WEFT_IO_H
#endif
