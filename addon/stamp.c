/* The upstream fingerprint; must produce exactly what src/view/stamp.ts does. */
#include "nf.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct {
	char *buf;
	size_t len, cap;
	int failed;
} sbuf;

static void
sb_add (sbuf *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#include <stdarg.h>
static void
sb_add (sbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->failed)
		return;
	for (;;) {
		va_start (ap, fmt);
		int n = vsnprintf (b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
		va_end (ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if (b->buf && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = realloc (b->buf, cap);
		if (p == NULL) {
			b->failed = 1;
			return;
		}
		b->buf = p;
		b->cap = cap;
	}
}

static void
sb_mtime (sbuf *b, const char *path)
{
	struct stat st;
	if (stat (path, &st) < 0)
		sb_add (b, "-");
	else
		sb_add (b, "%lld.%09ld", (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
}

static void
add_dirs (sbuf *b, const char *params)
{
	const char *p = params;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		size_t tok = strcspn (p, " \t\n");
		if (tok > 6 && strncmp (p, "paths=", 6) == 0) {
			const char *q = p + 6, *end = p + tok;
			while (q < end) {
				size_t n = strcspn (q, ":");
				if (q + n > end)
					n = (size_t)(end - q);
				if (n > 0 && n < PATH_MAX) {
					static const char *const sub[] = { "", "/anchors", "/blocklist" };
					for (int i = 0; i < 3; i++) {
						char path[PATH_MAX + 16];
						snprintf (path, sizeof path, "%.*s%s", (int)n, q, sub[i]);
						sb_add (b, "\ndir=%s:", path);
						sb_mtime (b, path);
					}
				}
				q += n + 1;
			}
		}
		p += tok;
	}
}

char *
stamp_build (const char *library, const char *params, const char *policy)
{
	char real[PATH_MAX];
	struct stat st;
	sbuf b = { 0 };
	if (realpath (library, real) == NULL || stat (real, &st) < 0)
		return NULL;
	sb_add (&b, "ncfence-stamp-v1\nlib=%s\nsize=%lld\nmtime=", real, (long long)st.st_size);
	sb_mtime (&b, real);
	sb_add (&b, "\nparams=%s", params ? params : "");
	if (params)
		add_dirs (&b, params);
	struct stat pst;
	if (stat (policy, &pst) < 0)
		sb_add (&b, "\npolicy=%s:-:", policy);
	else
		sb_add (&b, "\npolicy=%s:%lld:", policy, (long long)pst.st_size);
	sb_mtime (&b, policy);
	if (b.failed) {
		free (b.buf);
		return NULL;
	}
	return b.buf;
}
