/* Which objects grant trust: the one rule that keeps every trust anchor the
 * module presents inside the fenced view. An object that grants trust is
 * hidden, so anchors come only from the view:
 *   - certificates with CKA_TRUSTED = TRUE (p11-kit consumers' anchors)
 *   - NSS trust records with any purpose not in {NOT_TRUSTED, MUST_VERIFY,
 *     TRUST_UNKNOWN, VALID_DELEGATOR}
 *   - p11-kit trust assertions other than "distrusted certificate"
 *   - PKCS#11 3.2 trust objects (CKO_TRUST) with any purpose not in
 *     {NOT_TRUSTED, MUST_VERIFY_TRUST, TRUST_UNKNOWN}
 *   - objects of any other class that carry a trust attribute at all
 * and anything whose class, CKA_TRUSTED or purposes are malformed.
 *
 * Pure: attributes in, verdict out. One implementation for every reader:
 * classify.c applies it to upstream's objects (read through PKCS#11),
 * view.c to a browser's recorded ones, and the build to the roots it
 * fences (src/compile/plan.ts grantsTrust, through the Node binding:
 * addon/node/trust.cc), so the build fences exactly the roots whose trust
 * the module hides. */
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
	case CKO_CERTIFICATE: {
		/* Anything but a well-formed FALSE grants. */
		const CK_ATTRIBUTE *t = present (attrs, n, CKA_TRUSTED);
		if (t == NULL)
			return NF_TRUST_NONE;
		if (t->ulValueLen != 1 || t->pValue == NULL)
			return NF_TRUST_MALFORMED;
		return *(const CK_BBOOL *)t->pValue == CK_FALSE ? NF_TRUST_NONE : NF_TRUST_GRANTS;
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
	CK_ULONG n = 0;
	switch (cls) {
	case CKO_CERTIFICATE:
		t[n++] = (CK_ATTRIBUTE){ CKA_TRUSTED, &vals[0], sizeof (CK_BBOOL) };
		break;
	case NF_CKO_NSS_TRUST:
		for (CK_ATTRIBUTE_TYPE a = NF_CKA_TRUST_FIRST; a <= NF_CKA_TRUST_LAST; a++, n++)
			t[n] = (CK_ATTRIBUTE){ a, &vals[n], sizeof vals[n] };
		break;
	case NF_CKO_X_TRUST_ASSERTION:
		t[n++] = (CK_ATTRIBUTE){ NF_CKA_X_ASSERTION_TYPE, &vals[0], sizeof vals[0] };
		break;
	case NF_CKO_TRUST:
		for (CK_ATTRIBUTE_TYPE a = NF_CKA_PKCS_TRUST_FIRST; a <= NF_CKA_PKCS_TRUST_LAST; a++, n++)
			t[n] = (CK_ATTRIBUTE){ a, &vals[n], sizeof vals[n] };
		break;
	default:
		/* Presence only: every attribute trust_type names. */
		for (CK_ATTRIBUTE_TYPE a = NF_CKA_TRUST_FIRST; a <= NF_CKA_TRUST_LAST; a++)
			t[n++] = (CK_ATTRIBUTE){ a, NULL, 0 };
		for (CK_ATTRIBUTE_TYPE a = NF_CKA_PKCS_TRUST_FIRST; a <= NF_CKA_PKCS_TRUST_LAST; a++)
			t[n++] = (CK_ATTRIBUTE){ a, NULL, 0 };
		t[n++] = (CK_ATTRIBUTE){ CKA_TRUSTED, NULL, 0 };
		t[n++] = (CK_ATTRIBUTE){ NF_CKA_X_ASSERTION_TYPE, NULL, 0 };
		t[n++] = (CK_ATTRIBUTE){ NF_CKA_TRUST_STEP_UP, NULL, 0 };
	}
	return n;
}

int
trust_answer_grants (const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	for (CK_ULONG i = 0; i < count; i++) {
		CK_ATTRIBUTE_TYPE t = tmpl[i].type;
		if (!trust_type (t) || t == NF_CKA_TRUST_STEP_UP || tmpl[i].pValue == NULL ||
		    tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION)
			continue;
		if (t == CKA_TRUSTED) {
			if (tmpl[i].ulValueLen != 1 || *(const CK_BBOOL *)tmpl[i].pValue != CK_FALSE)
				return 1;
			continue;
		}
		CK_ULONG v;
		if (!ulong_of (&tmpl[i], &v))
			return 1;
		if (t == NF_CKA_X_ASSERTION_TYPE ? v != NF_CKT_X_DISTRUSTED_CERTIFICATE
		    : t >= NF_CKA_PKCS_TRUST_FIRST && t <= NF_CKA_PKCS_TRUST_LAST ? pkcs_purpose_grants (v)
		                                                                     : nss_purpose_grants (v))
			return 1;
	}
	return 0;
}
