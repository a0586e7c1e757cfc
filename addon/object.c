/* The object calls on any handle: the module's own objects are read with
 * attrs.c (live ones by live.c), upstream's forwarded unless hidden. */
#include "nf.h"

#include <stdlib.h>
#include <string.h>

/* Resolves a handle for the session: *obj is the module's own object (the
 * view's, or a browser's recorded one), or NULL for a visible upstream
 * object or a live one (*live set: its attributes are read through
 * live_read, under the lock). *slot_out is the session's slot, for every
 * kind of object. Session and cached verdict are read under one lock. */
static CK_RV
resolve (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, const nf_object **obj, int *live, CK_SLOT_ID *slot_out)
{
	CK_SLOT_ID slot = 0;
	int known, cached = -1;
	*obj = NULL;
	*live = 0;
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	int upstream = !handle_is_view (h) && !nf.lower_snapshot; /* an object classify.c judges */
	/* Fast path: both hints present, no lock taken. */
	known = fast_session_slot (session, &slot);
	if (known && upstream)
		cached = fast_verdict (slot, h);
	if (!known || (upstream && cached < 0)) {
		nf_lock ();
			nf_session *s = session_lookup_inlock (session);
			known = s != NULL;
			if (known) {
				slot = s->slot;
				if (upstream)
					cached = classify_cached_inlock (slot, h);
			}
		nf_unlock ();
	}
	if (!known)
		return CKR_SESSION_HANDLE_INVALID;
	*slot_out = slot;
	if (handle_is_view (h)) {
		if ((h & NF_LIVE_BASE) == NF_LIVE_BASE) {
			*live = 1;
			return live_read (h, slot, NULL, 0);
		}
		long idx = handle_view_index (h, nf.view.nobjects);
		if (nf.mode != NF_MODE_FENCED || idx < 0 || nf.view.objects[idx].slot != slot)
			return CKR_OBJECT_HANDLE_INVALID;
		*obj = &nf.view.objects[idx];
		return CKR_OK;
	}
	if (!upstream)
		return (*obj = snapshot_object (h)) != NULL ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
	if (cached < 0)
		cached = classify_visible (session, slot, h);
	return cached ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
}

/* The caller asks a visible upstream object for trust attributes. Such an
 * object never grants trust; if upstream changed it in place since it was
 * classified, the object is hidden before any of the answer reaches the
 * caller. The answer is judged from the caller's buffers only when upstream
 * filled them within their sizes; otherwise (a buffer too small, a length
 * beyond the buffer) by classifying afresh with the module's own buffers.
 * Review: judging a 4-byte buffer as a malformed value hid NSS's DigiNotar
 * distrust record, and an upstream that reports the needed length made the
 * check read, and the wipe write, past the caller's buffers. */
static CK_RV
read_trust_attrs (CK_SESSION_HANDLE session, CK_SLOT_ID slot, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	CK_ULONG stack[32], *orig = count <= 32 ? stack : malloc (count * sizeof *orig);
	if (orig == NULL)
		return CKR_HOST_MEMORY;
	for (CK_ULONG i = 0; i < count; i++)
		orig[i] = tmpl[i].ulValueLen;
	CK_RV rv = nf.lower->C_GetAttributeValue (session, h, tmpl, count);
	int judge = rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE;
	for (CK_ULONG i = 0; judge && i < count; i++)
		if (trust_type (tmpl[i].type) && tmpl[i].pValue != NULL &&
		    tmpl[i].ulValueLen != CK_UNAVAILABLE_INFORMATION && tmpl[i].ulValueLen > orig[i])
			judge = 0;
	int grants = judge ? trust_answer_grants (tmpl, count) : !classify_fresh (session, slot, h);
	if (grants) {
		for (CK_ULONG i = 0; i < count; i++) {
			if (tmpl[i].pValue != NULL && orig[i] != CK_UNAVAILABLE_INFORMATION)
				memset (tmpl[i].pValue, 0, orig[i]);
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
		}
		if (judge)
			classify_mark_hidden (slot, h);
		rv = CKR_OBJECT_HANDLE_INVALID;
	}
	if (orig != stack)
		free (orig);
	return rv;
}

CK_RV
nf_C_GetAttributeValue (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	const nf_object *o;
	int live;
	CK_SLOT_ID slot;
	if (tmpl == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = resolve (session, h, &o, &live, &slot);
	if (rv != CKR_OK)
		return rv;
	if (live)
		return live_read (h, slot, tmpl, count); /* checks h again: it may have been evicted meanwhile */
	if (o != NULL)
		return attrs_read (o, tmpl, count);
	if (!trust_template_has (tmpl, count))
		return nf.lower->C_GetAttributeValue (session, h, tmpl, count);
	return read_trust_attrs (session, slot, h, tmpl, count);
}

CK_RV
nf_C_GetObjectSize (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ULONG_PTR size)
{
	const nf_object *o;
	int live;
	CK_SLOT_ID slot;
	if (size == NULL)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = resolve (session, h, &o, &live, &slot);
	if (rv != CKR_OK)
		return rv;
	if (o != NULL || live) {
		*size = CK_UNAVAILABLE_INFORMATION;
		return CKR_OK;
	}
	return nf.lower->C_GetObjectSize ? nf.lower->C_GetObjectSize (session, h, size) : CKR_FUNCTION_NOT_SUPPORTED;
}

/* For calls that change objects: ncfence's own objects are read-only, and
 * so is a browser's recorded token. */
static CK_RV
resolve_writable (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h)
{
	const nf_object *o;
	int live;
	CK_SLOT_ID slot;
	CK_RV rv = resolve (session, h, &o, &live, &slot);
	return rv != CKR_OK ? rv : handle_is_view (h) ? CKR_ACTION_PROHIBITED : nf.lower_snapshot ? CKR_TOKEN_WRITE_PROTECTED : CKR_OK;
}

CK_RV
nf_C_SetAttributeValue (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	if (tmpl == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = resolve_writable (session, h);
	if (rv != CKR_OK)
		return rv;
	return nf.lower->C_SetAttributeValue ? nf.lower->C_SetAttributeValue (session, h, tmpl, count) : CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
nf_C_DestroyObject (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h)
{
	CK_RV rv = resolve_writable (session, h);
	if (rv != CKR_OK)
		return rv;
	return nf.lower->C_DestroyObject ? nf.lower->C_DestroyObject (session, h) : CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV
nf_C_CopyObject (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count, CK_OBJECT_HANDLE_PTR out)
{
	if ((tmpl == NULL && count > 0) || out == NULL)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = resolve_writable (session, h);
	if (rv != CKR_OK)
		return rv;
	return nf.lower->C_CopyObject ? nf.lower->C_CopyObject (session, h, tmpl, count, out) : CKR_FUNCTION_NOT_SUPPORTED;
}
