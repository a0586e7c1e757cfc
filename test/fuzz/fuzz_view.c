/* libFuzzer target: the compiled-view parser (addon/view.c) on hostile bytes.
 * The input is the file after its 24-byte header (the checksum would stop
 * almost every mutation before the parser). Whatever parses is then walked:
 * every attribute read back through attrs_read, every object matched against
 * templates made from its own attributes. */
#include "../../addon/nf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

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
	}
	view_free (&v);
	return 0;
}
