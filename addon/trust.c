/* Which objects grant trust: the rule that keeps every trust anchor the
 * module presents inside the fenced view, since it hides every other object
 * that grants trust (docs/design.md, "The rule the module applies").
 * Anything whose class, CKA_TRUSTED or purposes are malformed counts too.
 *
 * Pure, and the only implementation: classify.c applies it to upstream's
 * objects, view.c to a browser's recorded ones, object.c to each answer,
 * and the build to the roots it fences (src/compile/plan.ts grantsTrust,
 * through addon/node/trust.cc). */
#include "nf.h"

#include <string.h>

static int
nss_purpose_grants (CK_ULONG v)
{
	return v != NF_CKT_NSS_NOT_TRUSTED && v != NF_CKT_NSS_MUST_VERIFY &&
	       v != NF_CKT_NSS_TRUST_UNKNOWN && v != NF_CKT_NSS_VALID_DELEGATOR;
}

static int
pkcs_purpose_grants (CK_ULONG v)
{
	return v != NF_CKT_NOT_TRUSTED && v != NF_CKT_TRUST_MUST_VERIFY && v != NF_CKT_TRUST_UNKNOWN;
}

/* The attribute of `type` when the object has it (a length, not
 * CK_UNAVAILABLE_INFORMATION), else NULL. */
static const CK_ATTRIBUTE *
present (const CK_ATTRIBUTE *attrs, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	for (CK_ULONG i = 0; i < n; i++)
		if (attrs[i].type == type && attrs[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			return &attrs[i];
	return NULL;
}

static int
ulong_of (const CK_ATTRIBUTE *a, CK_ULONG *v)
{
	if (a == NULL || a->ulValueLen != sizeof *v || a->pValue == NULL)
		return 0;
	memcpy (v, a->pValue, sizeof *v);
	return 1;
}

/* A trust record's purposes first..last, in the order given: the first
 * malformed or granting one decides. */
static int
purposes (const CK_ATTRIBUTE *attrs, CK_ULONG n, CK_ATTRIBUTE_TYPE first, CK_ATTRIBUTE_TYPE last, int (*grants) (CK_ULONG))
{
	for (CK_ULONG i = 0; i < n; i++) {
		CK_ULONG v;
		if (attrs[i].type < first || attrs[i].type > last || attrs[i].ulValueLen == CK_UNAVAILABLE_INFORMATION)
			continue;
		if (!ulong_of (&attrs[i], &v))
			return NF_TRUST_MALFORMED;
		if (grants (v))
			return NF_TRUST_GRANTS;
	}
	return NF_TRUST_NONE;
}

int
trust_object (const CK_ATTRIBUTE *attrs, CK_ULONG n)
{
	CK_ULONG cls, type;
	if (!ulong_of (present (attrs, n, CKA_CLASS), &cls))
		return NF_TRUST_MALFORMED;
	switch (cls) {
	case CKO_CERTIFICATE: { /* anything but a well-formed FALSE grants */
		const CK_ATTRIBUTE *t = present (attrs, n, CKA_TRUSTED);
		return t == NULL ? NF_TRUST_NONE : t->ulValueLen != 1 || t->pValue == NULL ? NF_TRUST_MALFORMED
		       : *(const CK_BBOOL *)t->pValue == CK_FALSE ? NF_TRUST_NONE : NF_TRUST_GRANTS;
	}
	case NF_CKO_NSS_TRUST:
		return purposes (attrs, n, NF_CKA_TRUST_FIRST, NF_CKA_TRUST_LAST, nss_purpose_grants);
	case NF_CKO_X_TRUST_ASSERTION:
		return ulong_of (present (attrs, n, NF_CKA_X_ASSERTION_TYPE), &type) && type == NF_CKT_X_DISTRUSTED_CERTIFICATE
		       ? NF_TRUST_NONE : NF_TRUST_GRANTS;
	case NF_CKO_TRUST:
		return purposes (attrs, n, NF_CKA_PKCS_TRUST_FIRST, NF_CKA_PKCS_TRUST_LAST, pkcs_purpose_grants);
	default:
		/* A class this module does not know: hidden if it carries any trust
		 * attribute at all (a future or vendor trust object), shown
		 * otherwise (NSS's root-list marker, data objects). */
		for (CK_ULONG i = 0; i < n; i++)
			if (trust_type (attrs[i].type) && attrs[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
				return NF_TRUST_GRANTS;
		return NF_TRUST_NONE;
	}
}

CK_ULONG
trust_template (CK_OBJECT_CLASS cls, CK_ATTRIBUTE *t, CK_ULONG *vals)
{
	CK_ATTRIBUTE_TYPE first, last, a;
	CK_ULONG n = 0;
	switch (cls) {
	case CKO_CERTIFICATE: first = last = CKA_TRUSTED; break;
	case NF_CKO_X_TRUST_ASSERTION: first = last = NF_CKA_X_ASSERTION_TYPE; break;
	case NF_CKO_NSS_TRUST: first = NF_CKA_TRUST_FIRST, last = NF_CKA_TRUST_LAST; break;
	case NF_CKO_TRUST: first = NF_CKA_PKCS_TRUST_FIRST, last = NF_CKA_PKCS_TRUST_LAST; break;
	default: /* presence only: every attribute trust_type names */
		for (a = NF_CKA_TRUST_FIRST; a <= NF_CKA_TRUST_LAST; a++)
			t[n++] = (CK_ATTRIBUTE){ a, NULL, 0 };
		for (a = NF_CKA_PKCS_TRUST_FIRST; a <= NF_CKA_PKCS_TRUST_LAST; a++)
			t[n++] = (CK_ATTRIBUTE){ a, NULL, 0 };
		t[n++] = (CK_ATTRIBUTE){ CKA_TRUSTED, NULL, 0 };
		t[n++] = (CK_ATTRIBUTE){ NF_CKA_X_ASSERTION_TYPE, NULL, 0 };
		t[n++] = (CK_ATTRIBUTE){ NF_CKA_TRUST_STEP_UP, NULL, 0 };
		return n;
	}
	for (a = first; a <= last; a++, n++)
		t[n] = (CK_ATTRIBUTE){ a, &vals[n], a == CKA_TRUSTED ? sizeof (CK_BBOOL) : sizeof vals[n] };
	return n;
}

/* Each trust value in the answer judged as the rule judges it on an object
 * of the class that carries it. */
int
trust_answer_grants (const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	for (CK_ULONG i = 0; i < count; i++) {
		CK_ATTRIBUTE_TYPE t = tmpl[i].type;
		if (!trust_type (t) || t == NF_CKA_TRUST_STEP_UP || tmpl[i].pValue == NULL ||
		    tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION)
			continue;
		CK_ULONG cls = t == CKA_TRUSTED ? CKO_CERTIFICATE : t == NF_CKA_X_ASSERTION_TYPE ? NF_CKO_X_TRUST_ASSERTION
		             : t >= NF_CKA_PKCS_TRUST_FIRST && t <= NF_CKA_PKCS_TRUST_LAST ? NF_CKO_TRUST : NF_CKO_NSS_TRUST;
		CK_ATTRIBUTE one[2] = { { CKA_CLASS, &cls, sizeof cls }, tmpl[i] };
		if (trust_object (one, 2) != NF_TRUST_NONE)
			return 1;
	}
	return 0;
}
