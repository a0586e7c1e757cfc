/* Open-addressing hash map, 64-bit keys and values, linear probing,
 * backward-shift deletion. Callers hold nf.lock. */
#include "nf.h"

#include <stdlib.h>

static size_t
slot_of (uint64_t key, size_t cap)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return (size_t)key & (cap - 1);
}

int
map_get (const nf_map *m, uint64_t key, uint64_t *val)
{
	if (m->cap == 0)
		return 0;
	for (size_t i = slot_of (key, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (!m->used[i])
			return 0;
		if (m->keys[i] == key) {
			*val = m->vals[i];
			return 1;
		}
	}
}

static int
grow (nf_map *m)
{
	nf_map bigger = { .cap = m->cap ? m->cap * 2 : 64 };
	bigger.keys = calloc (bigger.cap, sizeof *bigger.keys);
	bigger.vals = calloc (bigger.cap, sizeof *bigger.vals);
	bigger.used = calloc (bigger.cap, 1);
	if (!bigger.keys || !bigger.vals || !bigger.used) {
		map_free (&bigger);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->used[i])
			map_put (&bigger, m->keys[i], m->vals[i]);
	map_free (m);
	*m = bigger;
	return 0;
}

int
map_put (nf_map *m, uint64_t key, uint64_t val)
{
	if ((m->len + 1) * 4 > m->cap * 3 && grow (m) < 0)
		return -1;
	size_t i = slot_of (key, m->cap);
	while (m->used[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	if (!m->used[i])
		m->len++;
	m->used[i] = 1;
	m->keys[i] = key;
	m->vals[i] = val;
	return 0;
}

void
map_del (nf_map *m, uint64_t key)
{
	if (m->cap == 0)
		return;
	size_t i = slot_of (key, m->cap);
	while (m->used[i] && m->keys[i] != key)
		i = (i + 1) & (m->cap - 1);
	if (!m->used[i])
		return;
	m->used[i] = 0;
	m->len--;
	/* Shift back later members of the probe run so lookups still find them. */
	for (size_t j = (i + 1) & (m->cap - 1); m->used[j]; j = (j + 1) & (m->cap - 1)) {
		size_t home = slot_of (m->keys[j], m->cap);
		int movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
		if (movable) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			m->used[i] = 1;
			m->used[j] = 0;
			i = j;
		}
	}
}

void
map_free (nf_map *m)
{
	free (m->keys);
	free (m->vals);
	free (m->used);
	*m = (nf_map){ 0 };
}
