/* The module's shared state (nf, under nf.lock: nf.h), kept apart from the
 * entry points so that every file below them can use it without depending
 * on entry.c. */
#include "nf.h"

#include <string.h>

nf_state nf = { .lock = PTHREAD_MUTEX_INITIALIZER };

void
nf_pad (unsigned char *dst, size_t len, const char *src)
{
	size_t n = strlen (src);
	memset (dst, ' ', len);
	memcpy (dst, src, n < len ? n : len);
}
