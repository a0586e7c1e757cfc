/* Lock-free caches for the per-call hot paths (GetAttributeValue, and the
 * verdicts FindObjects needs): direct-mapped tables of single 64-bit words,
 * read and written atomically. An entry is only a hint that carries its own
 * key, so a collision or a race costs a miss (the locked path then answers),
 * never a wrong answer. Measured in bench/module.bench.ts: a mutex pair per
 * call was most of ncfence's overhead over upstream.
 *
 * verdict word:  1 | handle (46 bits) | slot (16 bits) | visible (1 bit)
 * session word:  1 | session (47 bits) | slot (16 bits) */
#include "nf.h"

#include <string.h>

#define FAST_SIZE 4096u
#define VALID ((uint64_t)1 << 63)

static uint64_t verdict_table[FAST_SIZE];
static uint64_t session_table[FAST_SIZE];
static struct nf_session *session_ptrs[FAST_SIZE];

static size_t
fast_index (uint64_t key)
{
	key ^= key >> 29;
	key *= 0xbf58476d1ce4e5b9ULL;
	key ^= key >> 32;
	return (size_t)(key & (FAST_SIZE - 1));
}

int
fast_verdict (CK_SLOT_ID slot, CK_OBJECT_HANDLE h)
{
	if (h >= ((uint64_t)1 << 46) || slot >= (1u << 16))
		return -1;
	uint64_t e = __atomic_load_n (&verdict_table[fast_index (h)], __ATOMIC_ACQUIRE);
	if (!(e & VALID) || ((e >> 17) & (((uint64_t)1 << 46) - 1)) != h || ((e >> 1) & 0xffff) != slot)
		return -1;
	return (int)(e & 1);
}

void
fast_verdict_prefetch (CK_OBJECT_HANDLE h)
{
	__builtin_prefetch (&verdict_table[fast_index (h)]);
}

void
fast_verdict_put (CK_SLOT_ID slot, CK_OBJECT_HANDLE h, int visible)
{
	if (h >= ((uint64_t)1 << 46) || slot >= (1u << 16))
		return;
	uint64_t e = VALID | ((uint64_t)h << 17) | ((uint64_t)slot << 1) | (visible ? 1 : 0);
	__atomic_store_n (&verdict_table[fast_index (h)], e, __ATOMIC_RELEASE);
}

int
fast_session_slot (CK_SESSION_HANDLE s, CK_SLOT_ID *slot)
{
	if (s >= ((uint64_t)1 << 47))
		return 0;
	uint64_t e = __atomic_load_n (&session_table[fast_index (s)], __ATOMIC_ACQUIRE);
	if (!(e & VALID) || ((e >> 16) & (((uint64_t)1 << 47) - 1)) != s)
		return 0;
	*slot = e & 0xffff;
	return 1;
}

void
fast_session_put (CK_SESSION_HANDLE s, CK_SLOT_ID slot, struct nf_session *ptr)
{
	if (s >= ((uint64_t)1 << 47) || slot >= (1u << 16))
		return;
	size_t i = fast_index (s);
	__atomic_store_n (&session_table[i], 0, __ATOMIC_RELEASE);
	__atomic_store_n (&session_ptrs[i], ptr, __ATOMIC_RELEASE);
	__atomic_store_n (&session_table[i], VALID | ((uint64_t)s << 16) | slot, __ATOMIC_RELEASE);
}

/* The pointer stored with s, read between two reads of the key word so a
 * concurrent overwrite is seen as a miss. The caller still checks the
 * structure's own handle and live flag. */
struct nf_session *
fast_session_ptr (CK_SESSION_HANDLE s)
{
	if (s >= ((uint64_t)1 << 47))
		return NULL;
	size_t i = fast_index (s);
	uint64_t want = (s << 16);
	uint64_t e = __atomic_load_n (&session_table[i], __ATOMIC_ACQUIRE);
	if (!(e & VALID) || ((e & ~VALID) & ~(uint64_t)0xffff) != want)
		return NULL;
	struct nf_session *p = __atomic_load_n (&session_ptrs[i], __ATOMIC_ACQUIRE);
	return __atomic_load_n (&session_table[i], __ATOMIC_ACQUIRE) == e ? p : NULL;
}

void
fast_session_forget (CK_SESSION_HANDLE s)
{
	if (s < ((uint64_t)1 << 47))
		__atomic_store_n (&session_table[fast_index (s)], 0, __ATOMIC_RELEASE);
}

void
fast_clear (void)
{
	for (size_t i = 0; i < FAST_SIZE; i++) {
		__atomic_store_n (&verdict_table[i], 0, __ATOMIC_RELEASE);
		__atomic_store_n (&session_table[i], 0, __ATOMIC_RELEASE);
		__atomic_store_n (&session_ptrs[i], NULL, __ATOMIC_RELEASE);
	}
}
