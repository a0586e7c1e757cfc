/* FindObjects: upstream's answer minus hidden objects, plus matching view
 * objects of the session's slot. The whole result is snapshotted at Init
 * (lower calls made without the lock) and paged from the snapshot. */
#include "nf.h"

#include <stdlib.h>

typedef struct {
	CK_OBJECT_HANDLE *v;
	CK_ULONG n, cap;
} handles;

static int
push (handles *hs, CK_OBJECT_HANDLE h)
{
	if (hs->n == hs->cap) {
		CK_ULONG cap = hs->cap ? hs->cap * 2 : 32;
		CK_OBJECT_HANDLE *v = realloc (hs->v, cap * sizeof *v);
		if (v == NULL)
			return -1;
		hs->v = v;
		hs->cap = cap;
	}
	hs->v[hs->n++] = h;
	return 0;
}

static CK_RV
collect_lower (CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_SLOT_ID slot,
               CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, handles *out)
{
	CK_OBJECT_HANDLE page[64];
	CK_ULONG got = 0;
	handles raw = { 0 };
	CK_RV rv = fl->C_FindObjectsInit (s, tmpl, count);
	if (rv != CKR_OK)
		return rv;
	do {
		rv = fl->C_FindObjects (s, page, 64, &got);
		for (CK_ULONG i = 0; rv == CKR_OK && i < got && i < 64; i++)
			if (push (&raw, page[i]) < 0)
				rv = CKR_HOST_MEMORY;
	} while (rv == CKR_OK && got > 0);
	CK_RV frv = fl->C_FindObjectsFinal (s);
	if (rv == CKR_OK)
		rv = frv;
	for (CK_ULONG i = 0; rv == CKR_OK && i < raw.n; i++)
		if (classify_visible (s, slot, raw.v[i]) && push (out, raw.v[i]) < 0)
			rv = CKR_HOST_MEMORY;
	free (raw.v);
	return rv;
}

static CK_RV
collect_view (CK_SLOT_ID slot, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, handles *out)
{
	if (nf.mode != NF_MODE_FENCED)
		return CKR_OK;
	for (size_t i = 0; i < nf.view.nobjects; i++) {
		const nf_object *o = &nf.view.objects[i];
		if (o->slot == slot && attrs_match (o, tmpl, count) && push (out, NF_HANDLE_BASE + i) < 0)
			return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

CK_RV
nf_C_FindObjectsInit (CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	CK_FUNCTION_LIST_PTR fl = __atomic_load_n (&nf.lower, __ATOMIC_ACQUIRE);
	handles found = { 0 };
	nf_session *s;
	CK_SLOT_ID slot = 0;
	CK_RV rv = CKR_OK;

	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (tmpl == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	nf_lock ();
		s = session_lookup_inlock (session);
		if (s == NULL)
			rv = CKR_SESSION_HANDLE_INVALID;
		else if (s->finding)
			rv = CKR_OPERATION_ACTIVE;
		else {
			s->finding = 1; /* reserve the operation while we collect */
			slot = s->slot;
		}
	nf_unlock ();
	if (rv != CKR_OK || fl == NULL)
		return rv != CKR_OK ? rv : CKR_SESSION_HANDLE_INVALID;

	rv = collect_lower (fl, session, slot, tmpl, count, &found);
	if (rv == CKR_OK)
		rv = collect_view (slot, tmpl, count, &found);
	nf_lock ();
		s = session_lookup_inlock (session);
		if (s != NULL && rv == CKR_OK) {
			s->found = found.v;
			s->nfound = found.n;
			s->pos = 0;
			found.v = NULL;
		} else if (s != NULL) {
			s->finding = 0;
		} else {
			rv = CKR_SESSION_HANDLE_INVALID; /* closed while we searched */
		}
	nf_unlock ();
	free (found.v);
	nf_debug (NF_DBG_FIND, "out: C_FindObjectsInit session %lu, %lu attrs -> %s", session, count, debug_rv_name (rv));
	return rv;
}

CK_RV
nf_C_FindObjects (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count)
{
	CK_RV rv = CKR_OK;
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (count == NULL || (out == NULL && max > 0))
		return CKR_ARGUMENTS_BAD;
	nf_lock ();
		nf_session *s = session_lookup_inlock (session);
		if (s == NULL)
			rv = CKR_SESSION_HANDLE_INVALID;
		else if (!s->finding)
			rv = CKR_OPERATION_NOT_INITIALIZED;
		else {
			CK_ULONG n = s->nfound - s->pos;
			if (n > max)
				n = max;
			for (CK_ULONG i = 0; i < n; i++)
				out[i] = s->found[s->pos + i];
			s->pos += n;
			*count = n;
		}
	nf_unlock ();
	return rv;
}

CK_RV
nf_C_FindObjectsFinal (CK_SESSION_HANDLE session)
{
	CK_RV rv = CKR_OK;
	CK_OBJECT_HANDLE *found = NULL;
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	nf_lock ();
		nf_session *s = session_lookup_inlock (session);
		if (s == NULL)
			rv = CKR_SESSION_HANDLE_INVALID;
		else if (!s->finding)
			rv = CKR_OPERATION_NOT_INITIALIZED;
		else {
			found = s->found;
			s->found = NULL;
			s->nfound = s->pos = 0;
			s->finding = 0;
		}
	nf_unlock ();
	free (found);
	return rv;
}
