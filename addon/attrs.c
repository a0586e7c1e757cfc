/* Templates against the module's own objects (the view's, the live
 * answers', a browser's recorded ones): matching for searches, and
 * C_GetAttributeValue's answer. Pure but for the Java workaround. */
#include "nf.h"

#include <string.h>

/* WORKAROUND(java 17): Java's PKIX ignores a trust anchor's NameConstraints,
 * and SunPKCS11 makes every CKA_TRUSTED certificate an anchor: R' (trusted
 * for p11-kit consumers, which enforce the constraint) would be R to it. In
 * a JVM (host.c host_is_java) no view or live object is CKA_TRUSTED: Java
 * then trusts nothing through ncfence (closed, said once), never R'. */
static const CK_BBOOL not_trusted = CK_FALSE;

static const nf_attr *
effective_attr (const nf_object *obj, CK_ATTRIBUTE_TYPE type, nf_attr *scratch)
{
	const nf_attr *a = view_attr (obj, type);
	if (a != NULL && type == CKA_TRUSTED && __atomic_load_n (&nf.java_host, __ATOMIC_RELAXED)) {
		*scratch = (nf_attr){ CKA_TRUSTED, &not_trusted, sizeof not_trusted };
		return scratch;
	}
	return a;
}

int
attrs_match (const nf_object *obj, const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	return attrs_match_except (obj, tmpl, count, count);
}

int
attrs_match_except (const nf_object *obj, const CK_ATTRIBUTE *tmpl, CK_ULONG count, CK_ULONG skip)
{
	for (CK_ULONG i = 0; i < count; i++) {
		if (i == skip)
			continue;
		if (tmpl[i].type == CKA_CLASS && obj->has_cls) {
			if (tmpl[i].ulValueLen != sizeof (CK_ULONG) || tmpl[i].pValue == NULL ||
			    memcmp (&obj->cls, tmpl[i].pValue, sizeof (CK_ULONG)) != 0)
				return 0;
			continue;
		}
		nf_attr scratch;
		const nf_attr *a = effective_attr (obj, tmpl[i].type, &scratch);
		if (a == NULL || a->len != tmpl[i].ulValueLen)
			return 0;
		if (a->len > 0 && (tmpl[i].pValue == NULL || memcmp (a->value, tmpl[i].pValue, a->len) != 0))
			return 0;
	}
	return 1;
}

CK_RV
attrs_read (const nf_object *o, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	CK_RV rv = CKR_OK;
	for (CK_ULONG i = 0; i < count; i++) {
		nf_attr scratch;
		const nf_attr *a = effective_attr (o, tmpl[i].type, &scratch);
		if (a == NULL) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (tmpl[i].pValue == NULL) {
			tmpl[i].ulValueLen = a->len;
		} else if (tmpl[i].ulValueLen < a->len) {
			tmpl[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			if (rv == CKR_OK)
				rv = CKR_BUFFER_TOO_SMALL;
		} else {
			memcpy (tmpl[i].pValue, a->value, a->len);
			tmpl[i].ulValueLen = a->len;
		}
	}
	return rv;
}
