/* libFuzzer target: the compiled-view parser (addon/view.c) on hostile bytes.
 * The input is the file after its 24-byte header (the checksum would stop
 * almost every mutation before the parser). Whatever parses is then walked:
 * every attribute read back through attrs_read, every object matched against
 * templates made from its own attributes, and every search by an indexed
 * attribute answered through the index and by a linear scan, which must
 * give the same objects in the same order. */
#include "../../addon/nf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

typedef struct {
	size_t n;
	size_t v[64];
} found;

static int
emit (void *ctx, size_t object)
{
	found *f = ctx;
	if (f->n < 64)
		f->v[f->n] = object;
	f->n++;
	return 0;
}

/* The index and the linear scan agree on this template in this slot. */
static void
same_answer (const nf_view *v, CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	nf_view_probe p;
	found a = { 0 }, b = { 0 };
	view_probe_start (v, &p, tmpl, count);
	view_probe_entry (v, &p);
	view_probe_value (v, &p);
	view_search (v, &p, slot, tmpl, count, emit, &a);
	p.active = 0;
	view_search (v, &p, slot, tmpl, count, emit, &b);
	if (a.n != b.n || memcmp (a.v, b.v, (a.n < 64 ? a.n : 64) * sizeof a.v[0]) != 0)
		abort ();
}

static const CK_ATTRIBUTE_TYPE indexed_types[] = { CKA_SUBJECT, CKA_VALUE, CKA_ISSUER, CKA_ID };

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	nf_view v;
	char why[256];
	unsigned char *buf = malloc (size + 24);
	if (buf == NULL)
		return 0;
	memset (buf, 0, 24);
	memcpy (buf + 24, data, size);
	memset (&v, 0, sizeof v);
	v.data = buf;
	v.size = size + 24;
	if (view_parse_body (&v, "fuzz", why, sizeof why) < 0)
		return 0; /* view_parse_body freed buf */
	for (size_t i = 0; i < v.nobjects; i++) {
		const nf_object *o = &v.objects[i];
		for (CK_ULONG k = 0; k < o->nattrs; k++) {
			CK_ATTRIBUTE t = { o->attrs[k].type, NULL, 0 };
			attrs_read (o, &t, 1);
			unsigned char *out = malloc (t.ulValueLen ? t.ulValueLen : 1);
			t.pValue = out;
			attrs_read (o, &t, 1);
			CK_ATTRIBUTE m = { o->attrs[k].type, out, t.ulValueLen };
			if (!attrs_match (o, &m, 1))
				abort (); /* an object must match its own attribute */
			free (out);
		}
		/* Searches by each indexed attribute the object has: alone, with its
		 * class (or a wrong one), with its label, with a changed last byte,
		 * in its slot and in another. */
		for (size_t k = 0; k < sizeof indexed_types / sizeof indexed_types[0]; k++) {
			const nf_attr *a = view_attr (o, indexed_types[k]);
			if (a == NULL)
				continue;
			const nf_attr *c = view_attr (o, CKA_CLASS);
			const nf_attr *l = view_attr (o, CKA_LABEL);
			CK_ULONG other = CKO_DATA;
			unsigned char *changed = malloc (a->len ? a->len : 1);
			if (a->len > 0)
				memcpy (changed, a->value, a->len);
			if (a->len > 0)
				changed[a->len - 1] ^= 1;
			CK_ATTRIBUTE t[][2] = {
				{ { a->type, (void *)a->value, a->len }, { CKA_CLASS, c ? (void *)c->value : NULL, c ? c->len : 0 } },
				{ { CKA_CLASS, &other, sizeof other }, { a->type, (void *)a->value, a->len } },
				{ { a->type, (void *)a->value, a->len }, { CKA_LABEL, l ? (void *)l->value : NULL, l ? l->len : 0 } },
				{ { a->type, changed, a->len }, { CKA_TOKEN, NULL, 0 } },
			};
			for (size_t j = 0; j < sizeof t / sizeof t[0]; j++) {
				same_answer (&v, o->slot, t[j], 1);
				same_answer (&v, o->slot, t[j], 2);
				same_answer (&v, o->slot + 1, t[j], 2);
			}
			free (changed);
		}
	}
	view_free (&v);
	return 0;
}
