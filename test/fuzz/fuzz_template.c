/* libFuzzer target: template handling (attrs_match, attrs_read) on view
 * objects, with templates a caller controls: any types, lengths, NULL or
 * exactly-sized buffers (so an overflow hits ASan's redzone).
 * Input: records of { type u32, len u16, flags u8, len bytes of value }. */
#include "../../addon/nf.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static const unsigned char der[] = { 0x30, 0x03, 0x02, 0x01, 0x07 };
static const unsigned char label[] = "ncfence anchor";
static CK_ULONG cls = CKO_CERTIFICATE;
static CK_BBOOL yes = CK_TRUE;

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	nf_attr attrs[] = {
		{ CKA_CLASS, (const unsigned char *)&cls, sizeof cls },
		{ CKA_TOKEN, &yes, 1 },
		{ CKA_LABEL, label, sizeof label - 1 },
		{ CKA_VALUE, der, sizeof der },
		{ CKA_ID, der, 0 },
	};
	nf_object obj = { 1, sizeof attrs / sizeof attrs[0], attrs, CKO_CERTIFICATE, size > 0 && (data[0] & 1) };
	CK_ATTRIBUTE tmpl[32];
	void *bufs[32];
	CK_ULONG n = 0;
	size_t off = 0;
	while (n < 32 && off + 7 <= size) {
		uint32_t type;
		uint16_t len;
		memcpy (&type, data + off, 4);
		memcpy (&len, data + off + 4, 2);
		uint8_t flags = data[off + 6];
		off += 7;
		size_t have = size - off < len ? size - off : len;
		bufs[n] = (flags & 1) ? NULL : malloc (len ? len : 1);
		if (bufs[n] != NULL && have > 0)
			memcpy (bufs[n], data + off, have);
		off += have;
		/* low types are mapped onto the object's own attributes more often */
		tmpl[n] = (CK_ATTRIBUTE){ (flags & 2) ? attrs[type % 5].type : type, bufs[n], len };
		n++;
	}
	(void)attrs_match (&obj, tmpl, n);
	(void)attrs_read (&obj, tmpl, n);
	for (CK_ULONG i = 0; i < n; i++)
		free (bufs[i]);
	return 0;
}
