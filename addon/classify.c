/* Which upstream objects stay visible: the rule (trust.c) applied to what
 * upstream answers, a verdict cached per handle; what cannot be read is
 * hidden, and not cached when the call failed. Upstream may change an
 * object in place (p11-kit-trust reloads a changed file under the same
 * handles), so searches on trust attributes classify afresh (find.c) and
 * every answer with trust attributes is checked (object.c). */
#include "nf.h"

enum { HIDE = 0, SHOW = 1, NOCACHE = 2, MALFORMED = 4 };

/* Answers that say something about the object itself (so a verdict built on
 * them can be cached), as opposed to transient failures of the call. */
static int
attr_rv_ok (CK_RV rv)
{
	return rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
	       rv == CKR_BUFFER_TOO_SMALL;
}

/* 1 when an attribute that came back unavailable is there all the same:
 * PKCS#11 lets one error code stand for several (2.40, 5.7), so beside one
 * the object lacks, a value too long for its buffer may come back
 * unavailable under CKR_ATTRIBUTE_TYPE_INVALID. Lengths say. -1: failed. */
static int
unavailable_present (CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_ATTRIBUTE q[NF_TRUST_ATTRS];
	for (CK_ULONG i = 0; i < n; i++)
		q[i] = (CK_ATTRIBUTE){ t[i].type, NULL, 0 };
	if (!attr_rv_ok (fl->C_GetAttributeValue (s, h, q, n)))
		return -1;
	for (CK_ULONG i = 0; i < n; i++)
		if (t[i].ulValueLen == CK_UNAVAILABLE_INFORMATION && q[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			return 1;
	return 0;
}

/* The class, then the attributes the rule reads for it (trust.c). */
static int
classify_lower (CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_OBJECT_CLASS cls;
	CK_ULONG vals[NF_TRUST_ATTRS];
	CK_ATTRIBUTE t[1 + NF_TRUST_ATTRS] = { { CKA_CLASS, &cls, sizeof cls } };
	CK_RV rv = fl->C_GetAttributeValue (s, h, t, 1);
	/* A failing call (a bad handle, a closed session) says nothing about an
	 * object: hidden for now, not cached, not reported as malformed. */
	if (!attr_rv_ok (rv))
		return HIDE | NOCACHE;
	if (rv != CKR_OK || t[0].ulValueLen != sizeof cls)
		return HIDE | MALFORMED;
	CK_ULONG n = trust_template (cls, t + 1, vals);
	int values = t[1].pValue != NULL; /* else only which are there */
	rv = fl->C_GetAttributeValue (s, h, t + 1, n);
	if (!attr_rv_ok (rv))
		return HIDE | NOCACHE;
	/* A value that did not fit is malformed (lengths after
	 * CKR_BUFFER_TOO_SMALL are not trustworthy across modules: harness.c),
	 * and so is a CKA_TRUSTED that cannot be read. */
	if ((values && rv == CKR_BUFFER_TOO_SMALL) || (rv == CKR_ATTRIBUTE_SENSITIVE && cls == CKO_CERTIFICATE))
		return HIDE | MALFORMED;
	int unfit = values && rv != CKR_OK && n > 1 ? unavailable_present (fl, s, h, t + 1, n) : 0;
	if (unfit != 0)
		return unfit < 0 ? HIDE | NOCACHE : HIDE | MALFORMED;
	int verdict = trust_object (t, 1 + n);
	return verdict == NF_TRUST_NONE ? SHOW : verdict == NF_TRUST_GRANTS ? HIDE : HIDE | MALFORMED;
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
	if (handle_is_view (h)) {
		nf_warn ("upstream returned handle 0x%lx inside ncfence's reserved range; hiding it", h);
		return 0;
	}
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
	nf_lock ();
		cached = classify_cached_inlock (slot, h); /* 0 for a handle in ncfence's range */
	nf_unlock ();
	return cached >= 0 ? cached : classify_now (session, slot, h, 0);
}
