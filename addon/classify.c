/* Which upstream objects stay visible. The rule, mirrored by grantsTrust in
 * src/compile/plan.ts: an upstream object that grants trust is hidden, so
 * every trust anchor the module presents comes from the (fenced) view.
 *   - certificates with CKA_TRUSTED = TRUE (p11-kit consumers' anchors)
 *   - NSS trust records with any purpose not in {NOT_TRUSTED, MUST_VERIFY,
 *     TRUST_UNKNOWN, VALID_DELEGATOR}
 *   - p11-kit trust assertions other than "distrusted certificate"
 *   - PKCS#11 3.2 trust objects (CKO_TRUST) with any purpose not in
 *     {NOT_TRUSTED, MUST_VERIFY_TRUST, TRUST_UNKNOWN}
 *   - objects of any other class that carry a trust attribute at all
 * Anything that cannot be read is hidden too. Verdicts are cached per
 * handle; an answer obtained through a failing call is not cached. Since
 * upstream may change an object in place (p11-kit-trust reloads a changed
 * file under the same handles), searches that match on trust attributes
 * classify afresh and every answer carrying trust attributes is checked
 * before it reaches the caller (classify_answer_grants). */
#include "nf.h"

#include <string.h>

enum { HIDE = 0, SHOW = 1, NOCACHE = 2, MALFORMED = 4 };

static int
purpose_grants (CK_ULONG v)
{
	return v != NF_CKT_NSS_NOT_TRUSTED && v != NF_CKT_NSS_MUST_VERIFY &&
	       v != NF_CKT_NSS_TRUST_UNKNOWN && v != NF_CKT_NSS_VALID_DELEGATOR;
}

/* Answers that say something about the object itself (so a verdict built on
 * them can be cached), as opposed to transient failures of the call. */
static int
attr_rv_ok (CK_RV rv)
{
	return rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	       rv == CKR_BUFFER_TOO_SMALL;
}

static int
pkcs_purpose_grants (CK_ULONG v)
{
	return v != NF_CKT_NOT_TRUSTED && v != NF_CKT_TRUST_MUST_VERIFY && v != NF_CKT_TRUST_UNKNOWN;
}

/* A trust record's purposes, first..last (NSS trust records and PKCS#11 3.2
 * CKO_TRUST alike): hidden if any grants, or if any is malformed. */
static int
classify_purposes (CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h,
                   CK_ATTRIBUTE_TYPE first, CK_ATTRIBUTE_TYPE last, int (*grants) (CK_ULONG))
{
	enum { MAXN = NF_CKA_TRUST_LAST - NF_CKA_TRUST_FIRST + 1 };
	CK_ULONG vals[MAXN];
	CK_ATTRIBUTE t[MAXN];
	CK_ULONG n = last - first + 1;
	for (CK_ULONG i = 0; i < n; i++)
		t[i] = (CK_ATTRIBUTE){ first + i, &vals[i], sizeof vals[i] };
	CK_RV rv = fl->C_GetAttributeValue (s, h, t, n);
	if (!attr_rv_ok (rv))
		return HIDE | NOCACHE;
	/* A value longer than a CK_ULONG; lengths after this error are not
	 * trustworthy across modules (harness.c), so nothing is read. */
	if (rv == CKR_BUFFER_TOO_SMALL)
		return HIDE | MALFORMED;
	for (CK_ULONG i = 0; i < n; i++) {
		if (t[i].ulValueLen == CK_UNAVAILABLE_INFORMATION)
			continue;
		if (t[i].ulValueLen != sizeof (CK_ULONG))
			return HIDE | MALFORMED;
		if (grants (vals[i]))
			return HIDE;
	}
	return SHOW;
}

_Static_assert (NF_CKA_PKCS_TRUST_LAST - NF_CKA_PKCS_TRUST_FIRST <= NF_CKA_TRUST_LAST - NF_CKA_TRUST_FIRST,
                "classify_purposes' buffers hold either range");

/* An object of a class this module does not know: hidden if it carries any
 * trust attribute at all (a future or vendor trust object), shown otherwise
 * (NSS's root-list marker, data objects). Only presence is asked for. */
static int
classify_other (CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	enum { NNSS = NF_CKA_TRUST_LAST - NF_CKA_TRUST_FIRST + 1, NPKCS = NF_CKA_PKCS_TRUST_LAST - NF_CKA_PKCS_TRUST_FIRST + 1 };
	CK_ATTRIBUTE t[NNSS + NPKCS + 3];
	CK_ULONG n = 0;
	for (CK_ULONG i = 0; i < NNSS; i++)
		t[n++] = (CK_ATTRIBUTE){ NF_CKA_TRUST_FIRST + i, NULL, 0 };
	for (CK_ULONG i = 0; i < NPKCS; i++)
		t[n++] = (CK_ATTRIBUTE){ NF_CKA_PKCS_TRUST_FIRST + i, NULL, 0 };
	t[n++] = (CK_ATTRIBUTE){ CKA_TRUSTED, NULL, 0 };
	t[n++] = (CK_ATTRIBUTE){ NF_CKA_X_ASSERTION_TYPE, NULL, 0 };
	t[n++] = (CK_ATTRIBUTE){ NF_CKA_TRUST_STEP_UP, NULL, 0 };
	CK_RV rv = fl->C_GetAttributeValue (s, h, t, n);
	if (!attr_rv_ok (rv))
		return HIDE | NOCACHE;
	for (CK_ULONG i = 0; i < n; i++)
		if (t[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			return HIDE;
	return SHOW;
}

static int
classify_lower (CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_OBJECT_CLASS cls;
	CK_ATTRIBUTE a = { CKA_CLASS, &cls, sizeof cls };
	CK_RV rv = fl->C_GetAttributeValue (s, h, &a, 1);
	/* A failing call (a bad handle, a closed session) says nothing about an
	 * object: hidden for now, not cached, not reported as malformed. */
	if (!attr_rv_ok (rv))
		return HIDE | NOCACHE;
	if (rv != CKR_OK || a.ulValueLen != sizeof cls)
		return HIDE | MALFORMED;
	if (cls == CKO_CERTIFICATE) {
		CK_BBOOL trusted = CK_FALSE;
		a = (CK_ATTRIBUTE){ CKA_TRUSTED, &trusted, sizeof trusted };
		rv = fl->C_GetAttributeValue (s, h, &a, 1);
		if (rv == CKR_ATTRIBUTE_TYPE_INVALID || (rv == CKR_OK && a.ulValueLen == 1 && trusted == CK_FALSE))
			return SHOW;
		if (rv == CKR_OK && a.ulValueLen == 1)
			return HIDE;
		return attr_rv_ok (rv) ? HIDE | MALFORMED : HIDE | NOCACHE;
	}
	if (cls == NF_CKO_NSS_TRUST)
		return classify_purposes (fl, s, h, NF_CKA_TRUST_FIRST, NF_CKA_TRUST_LAST, purpose_grants);
	if (cls == NF_CKO_X_TRUST_ASSERTION) {
		CK_ULONG type = 0;
		a = (CK_ATTRIBUTE){ NF_CKA_X_ASSERTION_TYPE, &type, sizeof type };
		rv = fl->C_GetAttributeValue (s, h, &a, 1);
		if (rv == CKR_OK && a.ulValueLen == sizeof type && type == NF_CKT_X_DISTRUSTED_CERTIFICATE)
			return SHOW;
		return attr_rv_ok (rv) ? HIDE : HIDE | NOCACHE;
	}
	if (cls == NF_CKO_TRUST)
		return classify_purposes (fl, s, h, NF_CKA_PKCS_TRUST_FIRST, NF_CKA_PKCS_TRUST_LAST, pkcs_purpose_grants);
	return classify_other (fl, s, h);
}

int
classify_answer_grants (const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	for (CK_ULONG i = 0; i < count; i++) {
		CK_ATTRIBUTE_TYPE t = tmpl[i].type;
		if (!classify_trust_type (t) || t == NF_CKA_TRUST_STEP_UP || tmpl[i].pValue == NULL ||
		    tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION)
			continue;
		if (t == CKA_TRUSTED) {
			if (tmpl[i].ulValueLen != 1 || *(const CK_BBOOL *)tmpl[i].pValue != CK_FALSE)
				return 1;
			continue;
		}
		CK_ULONG v;
		if (tmpl[i].ulValueLen != sizeof v)
			return 1;
		memcpy (&v, tmpl[i].pValue, sizeof v);
		if (t == NF_CKA_X_ASSERTION_TYPE ? v != NF_CKT_X_DISTRUSTED_CERTIFICATE
		    : t >= NF_CKA_PKCS_TRUST_FIRST && t <= NF_CKA_PKCS_TRUST_LAST ? pkcs_purpose_grants (v)
		                                                                     : purpose_grants (v))
			return 1;
	}
	return 0;
}

static void
cache_put (CK_SLOT_ID slot, CK_OBJECT_HANDLE h, int visible, int replace)
{
	if (slot >= (CK_SLOT_ID)1 << 62)
		return;
	nf_lock ();
		/* A failed put only costs a later re-classification. A handle seen
		 * in another slot keeps its first verdict; this one is then
		 * classified again each time (correct, just slower). */
		uint64_t v;
		int have = map_get (&nf.verdicts, h, &v);
		if (!have || (replace && (v >> 1) == slot)) {
			(void)map_put (&nf.verdicts, h, ((uint64_t)slot << 1) | (uint64_t)(visible ? 1 : 0));
			fast_verdict_put (slot, h, visible);
		}
	nf_unlock ();
}

void
classify_mark_hidden (CK_SLOT_ID slot, CK_OBJECT_HANDLE h)
{
	nf_warn ("upstream object %lu in slot %lu now grants trust (changed in place); hidden", h, slot);
	cache_put (slot, h, 0, 1);
}

static int
classify_now (CK_SESSION_HANDLE session, CK_SLOT_ID slot, CK_OBJECT_HANDLE h, int replace)
{
	CK_FUNCTION_LIST_PTR fl = __atomic_load_n (&nf.lower, __ATOMIC_ACQUIRE);
	if (fl == NULL)
		return 0;
	int verdict = classify_lower (fl, session, h);
	if (verdict & MALFORMED)
		nf_warn ("upstream object %lu in slot %lu has a malformed or unreadable trust attribute; hidden", h, slot);
	nf_debug (NF_DBG_CLASSIFY, "classify: slot %lu handle %lu -> %s%s%s", slot, h,
	          (verdict & SHOW) ? "show" : "hide", (verdict & NOCACHE) ? " (not cached)" : "", replace ? " (fresh)" : "");
	if (!(verdict & NOCACHE))
		cache_put (slot, h, verdict & SHOW, replace);
	return verdict & SHOW;
}

int
classify_fresh (CK_SESSION_HANDLE session, CK_SLOT_ID slot, CK_OBJECT_HANDLE h)
{
	if (handle_is_view (h)) {
		nf_warn ("upstream returned handle 0x%lx inside ncfence's reserved range; hiding it", h);
		return 0;
	}
	return classify_now (session, slot, h, 1);
}

int
classify_cached_inlock (CK_SLOT_ID slot, CK_OBJECT_HANDLE h)
{
	uint64_t v;
	if (handle_is_view (h))
		return 0;
	if (map_get (&nf.verdicts, h, &v) && (v >> 1) == slot) {
		fast_verdict_put (slot, h, (int)(v & 1));
		return (int)(v & 1);
	}
	return -1;
}

int
classify_visible (CK_SESSION_HANDLE session, CK_SLOT_ID slot, CK_OBJECT_HANDLE h)
{
	int cached;
	if (handle_is_view (h)) {
		nf_warn ("upstream returned handle 0x%lx inside ncfence's reserved range; hiding it", h);
		return 0;
	}
	nf_lock ();
		cached = classify_cached_inlock (slot, h);
	nf_unlock ();
	if (cached >= 0)
		return cached;
	return classify_now (session, slot, h, 0);
}
