/* Object handles.
 *
 * Upstream handles pass through unchanged. View objects get synthetic handles
 * NF_HANDLE_BASE + index, with the top bit set, so they can never be confused
 * with upstream's; numbering starts well above the bit so an off-by-one or a
 * truncated handle surfaces as CKR_OBJECT_HANDLE_INVALID instead of another
 * object. An upstream handle with the top bit set is a collision: it is
 * hidden and logged (classify.c), never served. */
#ifndef NF_HANDLES_H
#define NF_HANDLES_H

#define NF_HANDLE_TOP  ((CK_OBJECT_HANDLE)1 << (sizeof (CK_OBJECT_HANDLE) * 8 - 1))
#define NF_HANDLE_BASE (NF_HANDLE_TOP | 0x4e460000UL)
/* Live Namecoin objects (live.c): the next bit down marks them. */
#define NF_LIVE_BASE   (NF_HANDLE_TOP | (NF_HANDLE_TOP >> 1))

static inline int
handle_is_view (CK_OBJECT_HANDLE h)
{
	return (h & NF_HANDLE_TOP) != 0;
}

/* Index into nf.view.objects, or -1 when h names no view object. */
static inline long
handle_view_index (CK_OBJECT_HANDLE h, size_t nobjects)
{
	if (h < NF_HANDLE_BASE || h - NF_HANDLE_BASE >= nobjects)
		return -1;
	return (long)(h - NF_HANDLE_BASE);
}

#endif
