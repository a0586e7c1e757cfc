/* FindObjects: upstream's answer minus hidden objects (or, for a browser
 * target, the recorded token's: snapshot.c), plus matching view objects of
 * the session's slot and live .bit objects (live.c). The whole result is
 * kept at Init (lower calls made without the lock) and paged from there. */
#include "nf.h"

#include <stdlib.h>
#include <string.h>

/* A growing handle list that starts in the caller's stack buffer, so the
 * usual search (a handful of results) allocates nothing. push takes it as
 * a void *, as the search callbacks (snapshot.c, live.c) pass it. */
typedef struct {
	CK_OBJECT_HANDLE *v;
	CK_ULONG n, cap;
	int heap;
} handles;

#define HANDLES_INIT(buf) { (buf), 0, sizeof (buf) / sizeof (buf)[0], 0 }

static int
push (void *list, CK_OBJECT_HANDLE h)
{
	handles *hs = list;
	if (hs->n == hs->cap) {
		CK_ULONG cap = hs->cap ? hs->cap * 2 : 32;
		CK_OBJECT_HANDLE *v = hs->heap ? realloc (hs->v, cap * sizeof *v) : malloc (cap * sizeof *v);
		if (v == NULL)
			return -1;
		if (!hs->heap && hs->n > 0)
			memcpy (v, hs->v, hs->n * sizeof *v);
		hs->v = v;
		hs->cap = cap;
		hs->heap = 1;
	}
	hs->v[hs->n++] = h;
	return 0;
}

static void
handles_free (handles *hs)
{
	if (hs->heap)
		free (hs->v);
}

static CK_RV
collect_lower (CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_SLOT_ID slot,
               CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, const nf_view_probe *probe, handles *out)
{
	enum { PAGE = 64 };
	CK_OBJECT_HANDLE page[PAGE];
	signed char verdict[PAGE];
	CK_OBJECT_HANDLE pending_buf[16];
	handles pending = HANDLES_INIT (pending_buf);
	CK_ULONG got = 0;
	CK_RV rv = fl->C_FindObjectsInit (s, tmpl, count), frv = CKR_OK;
	int ended = 0, fresh = trust_template_has (tmpl, count);
	if (rv != CKR_OK)
		return rv;
	view_probe_entry (&nf.view, probe);
	do {
		rv = fl->C_FindObjects (s, page, PAGE, &got);
		if (rv != CKR_OK || got == 0)
			break;
		if (got > PAGE)
			got = PAGE; /* a lower module overrunning our buffer: use what fits */
		for (CK_ULONG i = 0; i < got; i++)
			fast_verdict_prefetch (page[i]);
		/* A short page ends the search only for upstreams known to fill
		 * pages (lower.c full_pages: NSS's builtins, p11-kit-trust); that
		 * saves a call per search. Others are paged until an empty page,
		 * as PKCS#11 allows short pages mid-search (a dropped object could
		 * be a distrust record). Ending the lower search before reading
		 * the verdicts lets its work hide their loads. */
		if (got < PAGE && nf.lower_full_pages) {
			view_probe_value (&nf.view, probe);
			frv = fl->C_FindObjectsFinal (s);
			ended = 1;
		}
		/* Verdicts from the lock-free hints; the misses under one lock. A
		 * search that matches on trust attributes classifies afresh
		 * (pending), since upstream may have changed an object in place. */
		int misses = 0;
		for (CK_ULONG i = 0; i < got; i++)
			misses += (verdict[i] = fresh ? -1 : (signed char)fast_verdict (slot, page[i])) < 0;
		if (misses && !fresh) {
			nf_lock ();
				for (CK_ULONG i = 0; i < got; i++)
					if (verdict[i] < 0)
						verdict[i] = (signed char)classify_cached_inlock (slot, page[i]);
			nf_unlock ();
		}
		for (CK_ULONG i = 0; rv == CKR_OK && i < got; i++)
			if ((verdict[i] > 0 && push (out, page[i]) < 0) || (verdict[i] < 0 && push (&pending, page[i]) < 0))
				rv = CKR_HOST_MEMORY;
	} while (rv == CKR_OK && (got == PAGE || (!nf.lower_full_pages && got > 0)));
	if (!ended)
		frv = fl->C_FindObjectsFinal (s);
	if (rv == CKR_OK)
		rv = frv;
	/* New handles are classified after the lower search has ended, since
	 * classifying reads their attributes on the same session. */
	for (CK_ULONG i = 0; rv == CKR_OK && i < pending.n; i++)
		if ((fresh ? classify_fresh (s, slot, pending.v[i]) : classify_visible (s, slot, pending.v[i])) &&
		    push (out, pending.v[i]) < 0)
			rv = CKR_HOST_MEMORY;
	handles_free (&pending);
	return rv;
}

static int
push_object (void *hs, size_t object)
{
	return push (hs, NF_HANDLE_BASE + object);
}

static CK_RV
collect_view (CK_SLOT_ID slot, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, const nf_view_probe *p, handles *out)
{
	if (nf.mode != NF_MODE_FENCED)
		return CKR_OK;
	return view_search (&nf.view, p, slot, tmpl, count, push_object, out) < 0 ? CKR_HOST_MEMORY : CKR_OK;
}

/* Keeps the result in the session's own buffer, which lives as long as the
 * session, so repeated searches do not allocate. */
static CK_RV
store_inlock (nf_session *s, const handles *found)
{
	if (s->cap < found->n) {
		CK_OBJECT_HANDLE *v = realloc (s->found, found->n * sizeof *v);
		if (v == NULL)
			return CKR_HOST_MEMORY;
		s->found = v;
		s->cap = found->n;
	}
	if (found->n > 0)
		memcpy (s->found, found->v, found->n * sizeof *found->v);
	s->nfound = found->n;
	s->pos = 0;
	s->finding = 1;
	return CKR_OK;
}

CK_RV
nf_C_FindObjectsInit (CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	CK_FUNCTION_LIST_PTR fl = __atomic_load_n (&nf.lower, __ATOMIC_ACQUIRE);
	CK_OBJECT_HANDLE buf[64];
	handles found = HANDLES_INIT (buf);
	nf_session *s;
	CK_SLOT_ID slot = 0;
	CK_RV rv = CKR_OK;

	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (tmpl == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	/* A search already active on the session is refused before any work
	 * (upstream's search, a Namecoin lookup), and again when storing: a
	 * session is used by one thread at a time (PKCS#11 2.40, 6.7.1). */
	nf_session *owned = session_owned (session);
	if (owned != NULL) {
		slot = owned->slot;
		if (owned->finding)
			return CKR_OPERATION_ACTIVE;
	} else {
		nf_lock ();
			s = session_lookup_inlock (session);
			if (s == NULL)
				rv = CKR_SESSION_HANDLE_INVALID;
			else if (s->finding)
				rv = CKR_OPERATION_ACTIVE;
			else
				slot = s->slot;
		nf_unlock ();
	}
	if (rv != CKR_OK || fl == NULL)
		return rv != CKR_OK ? rv : CKR_SESSION_HANDLE_INVALID;

	/* Where the view search will look is known now; its memory is fetched
	 * in steps between the lower calls (view_probe_*). */
	nf_view_probe probe;
	view_probe_start (nf.mode == NF_MODE_FENCED ? &nf.view : NULL, &probe, tmpl, count);
	rv = nf.lower_snapshot ? (snapshot_search (slot, tmpl, count, push, &found) < 0 ? CKR_HOST_MEMORY : CKR_OK)
	                       : collect_lower (fl, session, slot, tmpl, count, &probe, &found);
	if (rv == CKR_OK)
		rv = collect_view (slot, tmpl, count, &probe, &found);
	if (rv == CKR_OK)
		rv = live_collect (slot, tmpl, count, push, &found);
	if (rv == CKR_OK && owned != NULL && session_owned (session) == owned) {
		rv = owned->finding ? CKR_OPERATION_ACTIVE : store_inlock (owned, &found);
	} else if (rv == CKR_OK) {
		nf_lock ();
			s = session_lookup_inlock (session);
			rv = s == NULL ? CKR_SESSION_HANDLE_INVALID /* closed meanwhile */
			     : s->finding ? CKR_OPERATION_ACTIVE : store_inlock (s, &found);
		nf_unlock ();
	}
	handles_free (&found);
	nf_debug (NF_DBG_FIND, "out: C_FindObjectsInit session %lu, %lu attrs -> %s", session, count, debug_rv_name (rv));
	return rv;
}

static CK_RV
page_out (nf_session *s, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count)
{
	if (!s->finding)
		return CKR_OPERATION_NOT_INITIALIZED;
	CK_ULONG n = s->nfound - s->pos;
	if (n > max)
		n = max;
	for (CK_ULONG i = 0; i < n; i++)
		out[i] = s->found[s->pos + i];
	s->pos += n;
	*count = n;
	return CKR_OK;
}

CK_RV
nf_C_FindObjects (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count)
{
	CK_RV rv;
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (count == NULL || (out == NULL && max > 0))
		return CKR_ARGUMENTS_BAD;
	nf_session *owned = session_owned (session);
	if (owned != NULL)
		return page_out (owned, out, max, count);
	nf_lock ();
		nf_session *s = session_lookup_inlock (session);
		rv = s == NULL ? CKR_SESSION_HANDLE_INVALID : page_out (s, out, max, count);
	nf_unlock ();
	return rv;
}

static CK_RV
finish (nf_session *s)
{
	if (!s->finding)
		return CKR_OPERATION_NOT_INITIALIZED;
	s->nfound = s->pos = 0;
	s->finding = 0; /* the buffer stays for the next search */
	return CKR_OK;
}

CK_RV
nf_C_FindObjectsFinal (CK_SESSION_HANDLE session)
{
	CK_RV rv;
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	nf_session *owned = session_owned (session);
	if (owned != NULL)
		return finish (owned);
	nf_lock ();
		nf_session *s = session_lookup_inlock (session);
		rv = s == NULL ? CKR_SESSION_HANDLE_INVALID : finish (s);
	nf_unlock ();
	return rv;
}
