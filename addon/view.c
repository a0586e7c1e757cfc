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
#define VIEW_VERSION 3
#define VIEW_HEADER 24
#define VIEW_MAX_FILE (64u << 20)

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

/* Takes NF_CKA_NCFENCE_AUDIENCE off the object (it is never served) into
 * o->audience. Any value but a CK_ULONG 1 or 2, or two of them, makes the
 * view invalid: an object whose audience is unknown must not be served. */
static int
take_audience (nf_object *o, uint32_t index, char *why, size_t why_len)
{
	for (CK_ULONG k = 0; k < o->nattrs;) {
		if (o->attrs[k].type != NF_CKA_NCFENCE_AUDIENCE) {
			k++;
			continue;
		}
		CK_ULONG value = 0;
		if (o->audience != NF_AUDIENCE_ALL || o->attrs[k].len != sizeof value)
			goto bad;
		memcpy (&value, o->attrs[k].value, sizeof value);
		if (value != NF_AUDIENCE_NSS_FORM && value != NF_AUDIENCE_PLAIN_FORM)
			goto bad;
		o->audience = (unsigned)value;
		memmove (&o->attrs[k], &o->attrs[k + 1], (o->nattrs - k - 1) * sizeof o->attrs[k]);
		o->nattrs--;
	}
	return 0;
bad:
	snprintf (why, why_len, "view object %u has a malformed audience", index);
	return -1;
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
		if (nattrs > NF_VIEW_MAX_ATTRS || nattrs > max_attrs - used) {
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
			if (len > NF_VIEW_MAX_ATTR_BYTES || take (c, len, &val) < 0)
				goto truncated;
			v->attr_pool[used + k] = (nf_attr){ type, val, len };
		}
		if (take_audience (&v->objects[i], i, why, why_len) < 0)
			return -1;
		v->two_forms |= v->objects[i].audience != NF_AUDIENCE_ALL;
		used += nattrs;
	}
	v->nobjects = count;
	return 0;
truncated:
	snprintf (why, why_len, "view is truncated or has a bad length");
	return -1;
}

/* What verifiers look certificates up by; FindObjects on view objects uses
 * the first of these a template holds. NSS searches by subject, issuer and
 * serial (also for trust records), DER value and CKA_ID (lib/dev/devtoken.c
 * nssToken_FindCertificatesBySubject, ..ByIssuerAndSerialNumber,
 * nssToken_FindTrustForCertificate, ..ByEncodedCertificate, ..ByID);
 * Firefox's mozilla::pkix through the subject search (NSSCertDBTrustDomain::
 * FindIssuer); GnuTLS by subject and CKA_ID (lib/pkcs11.c
 * gnutls_pkcs11_get_raw_issuer). */
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
load64 (const unsigned char *p)
{
	uint64_t w;
	memcpy (&w, p, 8);
	return w;
}

static uint64_t
view_attr_hash (CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len)
{
	const unsigned char *p = value;
	uint64_t h = mix (mix (0x243f6a8885a308d3ULL, type), len);
	if (len < 8) {
		uint64_t w = 0;
		if (len > 0)
			memcpy (&w, p, len);
		return mix (h, w);
	}
	/* The first word, then every word up to the end for short values and
	 * the last three for long ones (the last word may overlap the one
	 * before it). Fixed 8-byte loads: the search computes this once per
	 * FindObjectsInit. */
	h = mix (h, load64 (p));
	if (len > 8) {
		for (CK_ULONG off = len >= 32 ? len - 24 : 8; off + 8 < len; off += 8)
			h = mix (h, load64 (p + off));
		h = mix (h, load64 (p + len - 8));
	}
	return h;
}

static int
cmp_entry (const void *a, const void *b)
{
	const nf_index_entry *x = a, *y = b;
	return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : (x->object > y->object) - (x->object < y->object);
}

#define COMPACT_MAX 256 /* indexed values up to this size are copied */

_Static_assert (CKA_SUBJECT <= UINT16_MAX && CKA_VALUE <= UINT16_MAX && CKA_ISSUER <= UINT16_MAX && CKA_ID <= UINT16_MAX,
                "nf_index_entry.type holds every indexed attribute type");

static size_t
view_index_home (const nf_view *v, uint64_t hash)
{
	return (size_t)(hash >> 7) & v->index_mask;
}

static int
index_build (nf_view *v, const char *name, char *why, size_t why_len)
{
	size_t n = 0, compact_size = 0;
	nf_index_entry *sorted = malloc ((v->nobjects * (sizeof indexed / sizeof indexed[0]) + 1) * sizeof *sorted);
	if (sorted == NULL)
		goto oom;
	v->one_slot = 1;
	for (size_t i = 0; i < v->nobjects; i++) {
		nf_object *o = &v->objects[i];
		const nf_attr *c = view_attr (o, CKA_CLASS);
		o->has_cls = c != NULL && c->len == sizeof (CK_ULONG);
		if (o->has_cls)
			memcpy (&o->cls, c->value, sizeof (CK_ULONG));
		if (i == 0)
			v->slot = o->slot;
		else if (o->slot != v->slot)
			v->one_slot = 0;
		for (size_t k = 0; k < sizeof indexed / sizeof indexed[0] && !o->hidden; k++) {
			const nf_attr *a = view_attr (o, indexed[k]);
			if (a == NULL)
				continue;
			int cls32 = o->has_cls && o->cls <= UINT32_MAX;
			sorted[n++] = (nf_index_entry){
				.hash = view_attr_hash (a->type, a->value, a->len),
				.value = a->value,
				.object = (uint32_t)i,
				.len = (uint32_t)a->len,
				.cls = cls32 ? (uint32_t)o->cls : 0,
				.type = (uint16_t)a->type,
				.flags = NF_IDX_USED | (cls32 ? NF_IDX_CLS : 0) |
				         (o->audience == NF_AUDIENCE_NSS_FORM ? NF_IDX_NSS_FORM : 0) |
				         (o->audience == NF_AUDIENCE_PLAIN_FORM ? NF_IDX_PLAIN_FORM : 0),
			};
			if (a->len <= COMPACT_MAX)
				compact_size += a->len;
		}
	}
	qsort (sorted, n, sizeof *sorted, cmp_entry);
	/* Copy short values in index order, so one search reads adjacent bytes. */
	v->compact = malloc (compact_size + 1);
	if (v->compact == NULL)
		goto oom;
	for (size_t i = 0, off = 0; i < n; i++) {
		if (sorted[i].len > COMPACT_MAX)
			continue;
		memcpy (v->compact + off, sorted[i].value, sorted[i].len);
		sorted[i].value = v->compact + off;
		off += sorted[i].len;
	}
	/* At most half full, so a probe sequence is short; inserting in
	 * (hash, object) order keeps entries of one hash in object order along
	 * their probe sequence. */
	size_t cap = 16;
	while (cap < 2 * n + 1)
		cap *= 2;
	v->index = calloc (cap, sizeof *v->index);
	if (v->index == NULL)
		goto oom;
	v->index_mask = cap - 1;
	for (size_t i = 0; i < n; i++) {
		size_t b = view_index_home (v, sorted[i].hash);
		while (v->index[b].flags != 0)
			b = (b + 1) & v->index_mask;
		v->index[b] = sorted[i];
	}
	free (sorted);
	return 0;
oom:
	free (sorted);
	snprintf (why, why_len, "out of memory indexing view %s", name);
	return -1;
}

static int
view_indexed (CK_ATTRIBUTE_TYPE type)
{
	for (size_t k = 0; k < sizeof indexed / sizeof indexed[0]; k++)
		if (indexed[k] == type)
			return 1;
	return 0;
}

/* Validates and indexes a view held in `data` (malloc'd; owned by v after
 * the call, freed with it on failure too). `name` is for messages. */
static int
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

/* A fixed-size structure recorded as u32 length + bytes; the length must be
 * this platform's size of it. */
static int
take_struct (cursor *c, void *out, size_t size)
{
	uint32_t len;
	const unsigned char *p;
	if (take32 (c, &len) < 0 || len != size || take (c, len, &p) < 0)
		return -1;
	memcpy (out, p, size);
	return 0;
}

/* The snapshot section: u32 present (0 or 1), then CK_INFO, slot id (u64),
 * CK_SLOT_INFO, CK_TOKEN_INFO and the token's objects (src/view/format.ts). */
static int
parse_snapshot (nf_view *v, cursor *c, const char *name, char *why, size_t why_len)
{
	uint32_t present, count;
	const unsigned char *p;
	if (take32 (c, &present) < 0 || present > 1)
		goto bad;
	if (present == 0)
		return 0;
	nf_snapshot *s = calloc (1, sizeof *s);
	if (s == NULL) {
		snprintf (why, why_len, "out of memory parsing view");
		return -1;
	}
	v->snapshot = s;
	CK_INFO info;
	if (take_struct (c, &info, sizeof info) < 0 || take (c, 8, &p) < 0 ||
	    take_struct (c, &s->slot_info, sizeof s->slot_info) < 0 ||
	    take_struct (c, &s->token_info, sizeof s->token_info) < 0 || take32 (c, &count) < 0 || count > NF_VIEW_MAX_OBJECTS)
		goto bad;
	s->slot = (CK_SLOT_ID)rd64 (p);
	if (parse_objects (&s->token, c, count, why, why_len) < 0)
		return -1;
	/* The recorded objects that grant trust are hidden, as a loaded
	 * upstream's are (trust.c); the record never changes. */
	for (nf_object *o = s->token.objects; o < s->token.objects + count; o++) {
		CK_ATTRIBUTE t[NF_VIEW_MAX_ATTRS];
		for (CK_ULONG k = 0; k < o->nattrs; k++)
			t[k] = (CK_ATTRIBUTE){ o->attrs[k].type, (void *)o->attrs[k].value, o->attrs[k].len };
		o->hidden = trust_object (t, o->nattrs) != NF_TRUST_NONE;
	}
	return index_build (&s->token, name, why, why_len);
bad:
	snprintf (why, why_len, "view %s has a bad snapshot section", name);
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
	if (v->size < VIEW_HEADER || take32 (&c, &stamp_len) < 0 || stamp_len > NF_VIEW_MAX_STAMP ||
	    take (&c, stamp_len, &stamp) < 0 || take (&c, 32, &policy) < 0 || take32 (&c, &count) < 0 ||
	    count > NF_VIEW_MAX_OBJECTS) {
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
	if (parse_objects (v, &c, count, why, why_len) < 0 || parse_snapshot (v, &c, name, why, why_len) < 0)
		goto fail;
	if (c.left != 0) {
		snprintf (why, why_len, "view %s has %zu trailing bytes", name, c.left);
		goto fail;
	}
	if (index_build (v, name, why, why_len) < 0)
		goto fail;
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

/* A snapshot's token is a view with no file data or stamp of its own. */
void
view_free (nf_view *v)
{
	if (v->snapshot != NULL)
		view_free (&v->snapshot->token);
	free (v->snapshot);
	free (v->data);
	free ((char *)v->stamp);
	free (v->objects);
	free (v->attr_pool);
	free (v->index);
	free (v->compact);
	memset (v, 0, sizeof *v);
}

void
view_probe_start (const nf_view *v, nf_view_probe *p, const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	*p = (nf_view_probe){ .k = count };
	if (v == NULL || v->index == NULL)
		return;
	for (CK_ULONG k = 0; k < count; k++) {
		if (!view_indexed (tmpl[k].type) || (tmpl[k].pValue == NULL && tmpl[k].ulValueLen > 0))
			continue;
		p->k = k;
		p->active = 1;
		p->hash = view_attr_hash (tmpl[k].type, tmpl[k].pValue, tmpl[k].ulValueLen);
		p->home = view_index_home (v, p->hash);
		return;
	}
}

void
view_probe_entry (const nf_view *v, const nf_view_probe *p)
{
	if (p->active)
		__builtin_prefetch (&v->index[p->home]);
}

void
view_probe_value (const nf_view *v, const nf_view_probe *p)
{
	if (!p->active)
		return;
	const nf_index_entry *e = &v->index[p->home];
	if (e->flags != 0 && e->hash == p->hash && e->len > 0) {
		__builtin_prefetch (e->value);
		__builtin_prefetch (e->value + (e->len - 1) / 2);
		__builtin_prefetch (e->value + e->len - 1);
	}
}

/* Whether the object behind index entry e matches the template apart from
 * attribute k (which the caller compared). Slot and class come from the view
 * and the entry when they can, so the usual {CLASS, SUBJECT} search never
 * reads the object. */
static int
entry_matches (const nf_view *v, const nf_index_entry *e, CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count, CK_ULONG k)
{
	const nf_object *o = &v->objects[e->object];
	if (v->one_slot ? v->slot != slot : o->slot != slot)
		return 0;
	for (CK_ULONG i = 0; i < count; i++) {
		if (i == k)
			continue;
		if (tmpl[i].type != CKA_CLASS || !(e->flags & NF_IDX_CLS))
			return attrs_match_except (o, tmpl, count, k);
		CK_ULONG want;
		if (tmpl[i].ulValueLen != sizeof want || tmpl[i].pValue == NULL)
			return 0;
		memcpy (&want, tmpl[i].pValue, sizeof want);
		if (want != e->cls)
			return 0;
	}
	return 1;
}

int
view_search (const nf_view *v, const nf_view_probe *p, CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
             int (*emit) (void *ctx, size_t object), void *ctx)
{
	/* Two forms of R' (host.c): the one this process must not see is
	 * withheld from every search; asked once per search. Hidden objects
	 * are not in the index. */
	unsigned withheld_flag = 0, withheld = NF_AUDIENCE_ALL;
	if (v->two_forms) {
		int plain = host_serves_plain_form ();
		withheld_flag = plain ? NF_IDX_NSS_FORM : NF_IDX_PLAIN_FORM;
		withheld = plain ? NF_AUDIENCE_NSS_FORM : NF_AUDIENCE_PLAIN_FORM;
	}
	if (p->active) {
		/* Candidates: entries with the value's hash, in object order along
		 * the probe sequence; the indexed attribute is compared first, so
		 * most end without the object being touched. */
		const CK_ATTRIBUTE *a = &tmpl[p->k];
		for (size_t b = p->home; v->index[b].flags != 0; b = (b + 1) & v->index_mask) {
			const nf_index_entry *e = &v->index[b];
			if (e->hash != p->hash || e->type != a->type || e->len != a->ulValueLen ||
			    (e->len > 0 && memcmp (e->value, a->pValue, e->len) != 0) || (e->flags & withheld_flag))
				continue;
			if (entry_matches (v, e, slot, tmpl, count, p->k) && emit (ctx, e->object) < 0)
				return -1;
		}
		return 0;
	}
	for (size_t i = 0; i < v->nobjects; i++)
		if (v->objects[i].slot == slot && !v->objects[i].hidden && (withheld == NF_AUDIENCE_ALL || v->objects[i].audience != withheld) &&
		    attrs_match (&v->objects[i], tmpl, count) && emit (ctx, i) < 0)
			return -1;
	return 0;
}
