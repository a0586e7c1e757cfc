/* libFuzzer target: the module's parser of the service's answers
 * (addon/live.c), the one thing in the module a local process other than
 * upstream can feed. Whatever parses is then matched against a template. */
#include "../../addon/nf.h"

#include <stdlib.h>
#include <string.h>

typedef struct live_entry live_entry;
live_entry *live_parse_answer (unsigned char *body, size_t len, CK_SLOT_ID slot, const unsigned char *name, size_t name_len);
void live_entry_free (live_entry *e);

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
	unsigned char *body = malloc (size ? size : 1);
	if (body == NULL)
		return 0;
	memcpy (body, data, size);
	static const unsigned char name[] = "Namecoin TLS Certificate";
	live_entry *e = live_parse_answer (body, size, 1, name, sizeof name - 1); /* takes body */
	live_entry_free (e);
	return 0;
}
