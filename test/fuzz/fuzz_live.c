/* libFuzzer target: the module's reading of the service's answers
 * (addon/live.c), the one thing in the module a local process other than
 * upstream can feed. The input is a whole answer frame (header and body) as
 * it comes off the socket, cut into pieces of the size its first byte
 * chooses, fed one by one to the reader of a question in flight; a frame
 * it takes whole is parsed into a cache entry. */
#include "../../addon/nf.h"

#include <stdlib.h>
#include <string.h>

typedef struct live_entry live_entry;
typedef struct live_pending live_pending;
live_entry *live_parse_answer (unsigned char *body, size_t len, CK_SLOT_ID slot, const unsigned char *name, size_t name_len,
                               long long asked_ms);
void live_entry_free (live_entry *e);
int live_feed (live_pending *p, const unsigned char *data, size_t n);
live_pending *live_reader_new (void);
unsigned char *live_reader_take (live_pending *p, size_t *len);
void live_pending_free (live_pending *p);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t piece = 1 + data[0] % 64;
	data++, size--;
	live_pending *p = live_reader_new ();
	if (p == NULL)
		return 0;
	int r = 0;
	for (size_t off = 0; off < size && r == 0; off += piece)
		r = live_feed (p, data + off, size - off < piece ? size - off : piece);
	if (r == 1) {
		static const unsigned char name[] = "Namecoin TLS Certificate";
		size_t len = 0;
		unsigned char *body = live_reader_take (p, &len);
		live_entry_free (live_parse_answer (body, len, 1, name, sizeof name - 1, 0)); /* takes the body */
	}
	live_pending_free (p);
	return 0;
}
