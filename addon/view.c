/* Reads the compiled view written by the engine (src/view/format.ts).
 * Every length is hostile until checked; the whole file is validated before
 * any object is served, so a view is either used entirely or not at all. */
#include "nf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <pthread.h>

#define VIEW_MAGIC "NCFVIEW\0"
#define VIEW_VERSION 1
#define VIEW_HEADER 24
#define VIEW_MAX_FILE (64u << 20)
#define VIEW_MAX_OBJECTS 65536u
#define VIEW_MAX_ATTRS 64u
#define VIEW_MAX_ATTR_BYTES (1u << 20)
#define VIEW_MAX_STAMP 4096u

/* CRC-32 (IEEE), slice-by-8: eight table lookups per eight bytes. The
 * bytewise loop took most of C_Initialize (callgrind, bench/module.bench.ts). */
static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init (void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++)
		for (int t = 1; t < 8; t++)
			crc_table[t][n] = (crc_table[t - 1][n] >> 8) ^ crc_table[0][crc_table[t - 1][n] & 0xff];
}

static uint32_t
crc32_ieee (const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	pthread_once (&crc_once, crc_init);
	while (n >= 8) {
		uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
		uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
		c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
		    crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
		    crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
		p += 8;
		n -= 8;
	}
	while (n--)
		c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

static uint32_t
rd32 (const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t
rd64 (const unsigned char *p)
{
	return (uint64_t)rd32 (p) | (uint64_t)rd32 (p + 4) << 32;
}

typedef struct {
	const unsigned char *p;
	size_t left;
} cursor;

static int
take (cursor *c, size_t n, const unsigned char **out)
{
	if (n > c->left)
		return -1;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static int
take32 (cursor *c, uint32_t *v)
{
	const unsigned char *p;
	if (take (c, 4, &p) < 0)
		return -1;
	*v = rd32 (p);
	return 0;
}

static int
read_file (const char *path, unsigned char **data, size_t *size, char *why, size_t why_len)
{
	struct stat st;
	int fd = open (path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf (why, why_len, "cannot open view %s: %s", path, strerror (errno));
		return -1;
	}
	if (fstat (fd, &st) < 0 || st.st_size < VIEW_HEADER || (uint64_t)st.st_size > VIEW_MAX_FILE) {
		snprintf (why, why_len, "view %s has an impossible size", path);
		close (fd);
		return -1;
	}
	*size = (size_t)st.st_size;
	*data = malloc (*size);
	if (*data == NULL) {
		snprintf (why, why_len, "out of memory reading view %s", path);
		close (fd);
		return -1;
	}
	size_t got = 0;
	while (got < *size) {
		ssize_t r = read (fd, *data + got, *size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf (why, why_len, "view %s: short read", path);
			free (*data);
			*data = NULL;
			close (fd);
			return -1;
		}
		got += (size_t)r;
	}
	close (fd);
	return 0;
}

static int
parse_objects (nf_view *v, cursor *c, uint32_t count, char *why, size_t why_len)
{
	/* Each attribute costs at least 8 bytes of file, which bounds the pool. */
	size_t max_attrs = c->left / 8 + 1;
	v->objects = calloc (count ? count : 1, sizeof *v->objects);
	v->attr_pool = malloc (max_attrs * sizeof *v->attr_pool); /* filled before use */
	if (!v->objects || !v->attr_pool) {
		snprintf (why, why_len, "out of memory parsing view");
		return -1;
	}
	size_t used = 0;
	for (uint32_t i = 0; i < count; i++) {
		const unsigned char *p;
		uint32_t nattrs;
		if (take (c, 8, &p) < 0 || take32 (c, &nattrs) < 0)
			goto truncated;
		if (nattrs > VIEW_MAX_ATTRS || nattrs > max_attrs - used) {
			snprintf (why, why_len, "view object %u has %u attributes", i, nattrs);
			return -1;
		}
		v->objects[i].slot = (CK_SLOT_ID)rd64 (p);
		v->objects[i].nattrs = nattrs;
		v->objects[i].attrs = v->attr_pool + used;
		for (uint32_t k = 0; k < nattrs; k++) {
			uint32_t type, len;
			const unsigned char *val;
			if (take32 (c, &type) < 0 || take32 (c, &len) < 0)
				goto truncated;
			if (len > VIEW_MAX_ATTR_BYTES || take (c, len, &val) < 0)
				goto truncated;
			v->attr_pool[used + k] = (nf_attr){ type, val, len };
		}
		used += nattrs;
	}
	v->nobjects = count;
	return 0;
truncated:
	snprintf (why, why_len, "view is truncated or has a bad length");
	return -1;
}

/* Validates and indexes a view held in `data` (malloc'd; owned by v after
 * the call, freed with it on failure too). `name` is for messages. */
/* The attributes lookups arrive by (NOTES.md: subject, issuer+serial, value,
 * id); FindObjects on view objects uses the first of these in a template. */
static const CK_ATTRIBUTE_TYPE indexed[] = { CKA_SUBJECT, CKA_VALUE, CKA_ISSUER, CKA_ID };

/* A multiply-mix hash over the type, the length and at most four 8-byte
 * words: the first and the last three of the value (DER names share their
 * first bytes and differ at the end). A collision only adds a candidate that
 * attrs_match rejects; hashing whole values cost most of C_Initialize and a
 * visible share of each search (callgrind, bench/module.bench.ts). */
static uint64_t
mix (uint64_t h, uint64_t w)
{
	h ^= w;
	h *= 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static uint64_t
word_at (const unsigned char *p, CK_ULONG len, CK_ULONG off)
{
	uint64_t w = 0;
	memcpy (&w, p + off, len - off < 8 ? len - off : 8);
	return w;
}

uint64_t
view_attr_hash (CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len)
{
	const unsigned char *p = value;
	uint64_t h = mix (mix (0x243f6a8885a308d3ULL, type), len);
	if (len <= 32) {
		for (CK_ULONG off = 0; off < len; off += 8)
			h = mix (h, word_at (p, len, off));
		return h;
	}
	h = mix (h, word_at (p, len, 0));
	for (CK_ULONG off = len - 24; off < len; off += 8)
		h = mix (h, word_at (p, len, off));
	return h;
}

static int
cmp_entry (const void *a, const void *b)
{
	const nf_index_entry *x = a, *y = b;
	return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : (x->object > y->object) - (x->object < y->object);
}

#define COMPACT_MAX 256 /* indexed values up to this size are copied */

static int
index_build (nf_view *v)
{
	size_t n = 0, compact_size = 0;
	v->index = malloc ((v->nobjects * (sizeof indexed / sizeof indexed[0]) + 1) * sizeof *v->index);
	if (v->index == NULL)
		return -1;
	for (size_t i = 0; i < v->nobjects; i++) {
		const nf_attr *c = view_attr (&v->objects[i], CKA_CLASS);
		v->objects[i].has_cls = c != NULL && c->len == sizeof (CK_ULONG);
		if (v->objects[i].has_cls)
			memcpy (&v->objects[i].cls, c->value, sizeof (CK_ULONG));
		for (size_t k = 0; k < sizeof indexed / sizeof indexed[0]; k++) {
			const nf_attr *a = view_attr (&v->objects[i], indexed[k]);
			if (a == NULL)
				continue;
			v->index[n++] = (nf_index_entry){ view_attr_hash (a->type, a->value, a->len), (uint32_t)i, (uint32_t)a->len, a->type, a->value };
			if (a->len <= COMPACT_MAX)
				compact_size += a->len;
		}
	}
	qsort (v->index, n, sizeof *v->index, cmp_entry);
	v->nindex = n;
	/* Copy short values in index order, so one search reads adjacent bytes. */
	v->compact = malloc (compact_size + 1);
	if (v->compact == NULL)
		return -1;
	for (size_t i = 0, off = 0; i < n; i++) {
		if (v->index[i].len > COMPACT_MAX)
			continue;
		memcpy (v->compact + off, v->index[i].value, v->index[i].len);
		v->index[i].value = v->compact + off;
		off += v->index[i].len;
	}
	/* Open-addressing table from a hash to its first index position, so a
	 * search costs one probe instead of a binary search (module bench). */
	size_t cap = 16;
	while (cap < 2 * n + 1)
		cap *= 2;
	v->buckets = malloc (cap * sizeof *v->buckets);
	if (v->buckets == NULL)
		return -1;
	for (size_t i = 0; i < cap; i++)
		v->buckets[i] = SIZE_MAX;
	v->nbuckets = cap;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && v->index[i].hash == v->index[i - 1].hash)
			continue;
		size_t b = (size_t)(v->index[i].hash >> 7) & (cap - 1);
		while (v->buckets[b] != SIZE_MAX)
			b = (b + 1) & (cap - 1);
		v->buckets[b] = i;
	}
	return 0;
}

int
view_indexed (CK_ATTRIBUTE_TYPE type)
{
	for (size_t k = 0; k < sizeof indexed / sizeof indexed[0]; k++)
		if (indexed[k] == type)
			return 1;
	return 0;
}

/* First index entry with this hash (entries with equal hash follow it), or nindex. */
size_t
view_index_find (const nf_view *v, uint64_t hash)
{
	if (v->nbuckets == 0)
		return v->nindex;
	for (size_t b = (size_t)(hash >> 7) & (v->nbuckets - 1);; b = (b + 1) & (v->nbuckets - 1)) {
		size_t i = v->buckets[b];
		if (i == SIZE_MAX)
			return v->nindex;
		if (v->index[i].hash == hash)
			return i;
	}
}

int
view_parse (unsigned char *data, size_t size, const char *name, nf_view *v, char *why, size_t why_len)
{
	memset (v, 0, sizeof *v);
	v->data = data;
	v->size = size;
	const unsigned char *d = data;
	if (size < VIEW_HEADER || memcmp (d, VIEW_MAGIC, 8) != 0) {
		snprintf (why, why_len, "%s is not an ncfence view (bad magic)", name);
		goto fail;
	}
	if (rd32 (d + 8) != VIEW_VERSION || rd32 (d + 12) != sizeof (CK_ULONG)) {
		snprintf (why, why_len, "view %s has format %u/%u, this module reads %u/%zu",
		          name, rd32 (d + 8), rd32 (d + 12), VIEW_VERSION, sizeof (CK_ULONG));
		goto fail;
	}
	if ((uint64_t)rd32 (d + 16) + VIEW_HEADER != size) {
		snprintf (why, why_len, "view %s is truncated or padded", name);
		goto fail;
	}
	if (crc32_ieee (d + VIEW_HEADER, size - VIEW_HEADER) != rd32 (d + 20)) {
		snprintf (why, why_len, "view %s is corrupt (checksum mismatch)", name);
		goto fail;
	}
	return view_parse_body (v, name, why, why_len);
fail:
	view_free (v);
	return -1;
}

/* Everything after the header; also the entry point of the view fuzzer,
 * which skips the checksum so it can reach the parser. */
int
view_parse_body (nf_view *v, const char *name, char *why, size_t why_len)
{
	cursor c = { v->data + VIEW_HEADER, v->size - VIEW_HEADER };
	uint32_t stamp_len, count;
	const unsigned char *stamp, *policy;
	if (v->size < VIEW_HEADER || take32 (&c, &stamp_len) < 0 || stamp_len > VIEW_MAX_STAMP ||
	    take (&c, stamp_len, &stamp) < 0 || take (&c, 32, &policy) < 0 || take32 (&c, &count) < 0 ||
	    count > VIEW_MAX_OBJECTS) {
		snprintf (why, why_len, "view %s has a bad header", name);
		goto fail;
	}
	char *s = malloc (stamp_len + 1);
	if (s == NULL) {
		snprintf (why, why_len, "out of memory");
		goto fail;
	}
	memcpy (s, stamp, stamp_len);
	s[stamp_len] = '\0';
	v->stamp = s;
	if (parse_objects (v, &c, count, why, why_len) < 0)
		goto fail;
	if (c.left != 0) {
		snprintf (why, why_len, "view %s has %zu trailing bytes", name, c.left);
		goto fail;
	}
	if (index_build (v) < 0) {
		snprintf (why, why_len, "out of memory indexing view %s", name);
		goto fail;
	}
	return 0;
fail:
	view_free (v);
	return -1;
}

int
view_load (const char *path, nf_view *v, char *why, size_t why_len)
{
	unsigned char *data;
	size_t size;
	memset (v, 0, sizeof *v);
	if (read_file (path, &data, &size, why, why_len) < 0)
		return -1;
	return view_parse (data, size, path, v, why, why_len);
}

void
view_free (nf_view *v)
{
	free (v->data);
	free ((char *)v->stamp);
	free (v->objects);
	free (v->attr_pool);
	free (v->index);
	free (v->buckets);
	free (v->compact);
	memset (v, 0, sizeof *v);
}

const nf_attr *
view_attr (const nf_object *obj, CK_ATTRIBUTE_TYPE type)
{
	for (CK_ULONG i = 0; i < obj->nattrs; i++)
		if (obj->attrs[i].type == type)
			return &obj->attrs[i];
	return NULL;
}
