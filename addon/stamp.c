/* The upstream fingerprint, for the module and (through the Node binding,
 * addon/node/stamp.cc) for the build and `status`, so both make it with this
 * code (docs/configuration.md, "What the stamp covers"). It runs at every
 * C_Initialize: for the NSS CKBI (no trust paths) it is a few stat() calls;
 * for p11-kit-trust it also walks the trust paths, within STAMP_MAX_*
 * bounds. Past a bound, or on any error, there is no stamp (NULL), so the
 * view is never taken as fresh. */
#include "nf.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAMP_VERSION "ncfence-stamp-v2"
/* docs/configuration.md, "What the stamp covers"; a stamp must fit in a view. */
#define STAMP_MAX_DEPTH 8
#define STAMP_MAX_ENTRIES 4096u
#define STAMP_MAX_BYTES NF_VIEW_MAX_STAMP

typedef struct {
	char *buf;
	size_t len, cap;
	int failed;
	size_t entries;
	char *why;
	size_t why_len;
} sbuf;

static __attribute__ ((format (printf, 2, 3))) void
sb_fail (sbuf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->failed)
		return;
	b->failed = 1;
	va_start (ap, fmt);
	vsnprintf (b->why, b->why_len, fmt, ap);
	va_end (ap);
}

static __attribute__ ((format (printf, 2, 3))) void
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
			sb_fail (b, "cannot format the stamp");
			return;
		}
		if (b->buf && b->len + (size_t)n < b->cap) {
			b->len += (size_t)n;
			if (b->len > STAMP_MAX_BYTES)
				sb_fail (b, "cannot fingerprint upstream's trust files: the stamp is over %u bytes", STAMP_MAX_BYTES);
			return;
		}
		size_t cap = (b->cap + (size_t)n + 1) * 2;
		char *p = realloc (b->buf, cap);
		if (p == NULL) {
			sb_fail (b, "out of memory");
			return;
		}
		b->buf = p;
		b->cap = cap;
	}
}

/* A walk path, with %XX for bytes outside 0x21..0x7e and for '%', added a
 * buffer at a time. */
static void
sb_path (sbuf *b, const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	char out[256];
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (*p > 0x20 && *p < 0x7f && *p != '%') {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
		if (n > sizeof out - 3 || p[1] == '\0') {
			sb_add (b, "%.*s", (int)n, out);
			n = 0;
		}
	}
}

/* p11_path_build (p11-kit common/path.c) for a NULL-terminated list of
 * parts: joined with '/', separators trimmed at the joints. malloc'd. */
static char *
path_build (const char *first, ...)
{
	va_list va;
	size_t len = 1;
	va_start (va, first);
	for (const char *p = first; p != NULL; p = va_arg (va, const char *))
		len += strlen (p) + 1;
	va_end (va);
	char *built = malloc (len);
	if (built == NULL)
		return NULL;
	size_t at = 0;
	va_start (va, first);
	for (const char *p = first; p != NULL; p = va_arg (va, const char *)) {
		size_t num = strlen (p);
		while (p[0] == '/') {
			if (at == 0 && p[1] != '/')
				break;
			p++;
			num--;
		}
		size_t until = at > 0 ? 0 : 1;
		while (num > until && p[num - 1] == '/')
			num--;
		if (at != 0) {
			if (num == 0)
				continue;
			if (built[at - 1] != '/')
				built[at++] = '/';
		}
		memcpy (built + at, p, num);
		at += num;
	}
	va_end (va);
	built[at] = '\0';
	return built;
}

/* A trust path as p11-kit-trust opens it (p11_path_expand): `~` and `~/...`
 * become the home directory, `~/.config/...` $XDG_CONFIG_HOME when set.
 * malloc'd; NULL with the reason in b on failure. */
static char *
expand_path (sbuf *b, const char *path)
{
	char *out;
	if (!(path[0] == '~' && (path[1] == '\0' || path[1] == '/'))) {
		out = strdup (path);
	} else if (getauxval (AT_SECURE)) {
		/* p11-kit refuses too, and upstream then fails C_Initialize. */
		sb_fail (b, "a setuid program cannot expand the trust path %s", path);
		return NULL;
	} else {
		const char *rest = path + 1;
		while (*rest == '/')
			rest++;
		const char *xdg = secure_getenv ("XDG_CONFIG_HOME");
		const char *home = secure_getenv ("HOME");
		if (xdg && xdg[0] && strncmp (rest, ".config", 7) == 0 && (rest[7] == '\0' || rest[7] == '/')) {
			out = path_build (xdg, rest[7] ? rest + 8 : "", NULL);
		} else if (home && home[0]) {
			out = path_build (home, rest, NULL);
		} else {
			char pwbuf[4096];
			struct passwd pw, *found = NULL;
			if (getpwuid_r (getuid (), &pw, pwbuf, sizeof pwbuf, &found) != 0 || found == NULL) {
				sb_fail (b, "no home directory to expand the trust path %s", path);
				return NULL;
			}
			out = path_build (pw.pw_dir, rest, NULL);
		}
	}
	if (out == NULL)
		sb_fail (b, "out of memory");
	return out;
}

static int
cmp_names (const void *a, const void *b)
{
	return strcmp (*(char *const *)a, *(char *const *)b);
}

/* 1, with b failed, when n more entries would pass the bound. */
static int
too_many (sbuf *b, size_t n, const char *where)
{
	if (n <= STAMP_MAX_ENTRIES - b->entries)
		return 0;
	sb_fail (b, "cannot fingerprint upstream's trust files: more than %u entries (at %s)", STAMP_MAX_ENTRIES, where);
	return 1;
}

/* The names in dir, sorted bytewise, "." and ".." left out. NULL when it
 * cannot be listed, or with b failed when a bound is passed (every name
 * counts as an entry) or memory runs out. */
static char **
list_dir (sbuf *b, const char *dir, size_t *n)
{
	DIR *d = opendir (dir);
	char **names = NULL;
	size_t cap = 0;
	struct dirent *e;
	*n = 0;
	if (d == NULL)
		return NULL;
	for (;;) {
		errno = 0;
		if ((e = readdir (d)) == NULL)
			break;
		if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
			continue;
		if (too_many (b, *n + 1, dir))
			goto fail;
		if (*n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **p = realloc (names, ncap * sizeof *names);
			if (p == NULL) {
				sb_fail (b, "out of memory");
				goto fail;
			}
			names = p;
			cap = ncap;
		}
		if ((names[*n] = strdup (e->d_name)) == NULL) {
			sb_fail (b, "out of memory");
			goto fail;
		}
		(*n)++;
	}
	if (errno != 0) /* the listing failed part way: as if it could not be listed */
		goto fail;
	closedir (d);
	if (names == NULL && (names = malloc (sizeof *names)) == NULL) /* empty: a listing all the same */
		sb_fail (b, "out of memory");
	else if (*n > 1)
		qsort (names, *n, sizeof *names, cmp_names);
	return names;
fail:
	for (size_t i = 0; i < *n; i++)
		free (names[i]);
	free (names);
	closedir (d);
	*n = 0;
	return NULL;
}

/* One line for path, then (for a directory) its entries, depth levels below a trust path. */
static void
walk (sbuf *b, const char *path, int depth)
{
	struct stat st;
	if (b->failed || too_many (b, 1, path))
		return;
	b->entries++;
	if (stat (path, &st) < 0) {
		sb_add (b, "\n- ");
		sb_path (b, path);
		return;
	}
	if (!S_ISDIR (st.st_mode)) {
		sb_add (b, "\nf %lld %lld.%09ld ", (long long)st.st_size, (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
		sb_path (b, path);
		return;
	}
	if (depth > STAMP_MAX_DEPTH) {
		sb_fail (b, "cannot fingerprint upstream's trust files: %s is nested deeper than %d levels", path, STAMP_MAX_DEPTH);
		return;
	}
	sb_add (b, "\nd %lld.%09ld ", (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
	sb_path (b, path);
	size_t n;
	char **names = list_dir (b, path, &n);
	if (names == NULL) {
		if (!b->failed) {
			sb_add (b, "\n! ");
			sb_path (b, path);
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		char *child = b->failed ? NULL : path_build (path, names[i], NULL);
		if (child == NULL && !b->failed)
			sb_fail (b, "out of memory");
		if (child != NULL)
			walk (b, child, depth + 1);
		free (child);
		free (names[i]);
	}
	free (names);
}

/* parse_argument (p11-kit trust/module.c) for `paths`: the key ends at ':'
 * or '='; the last `paths` wins, one without a value means none. */
static void
sink_argument (sbuf *b, const char *arg, char **paths)
{
	size_t key = strcspn (arg, ":=");
	if (key != 5 || strncmp (arg, "paths", 5) != 0)
		return;
	free (*paths);
	*paths = NULL;
	if (arg[key] != '\0' && (*paths = strdup (arg + key + 1)) == NULL)
		sb_fail (b, "out of memory");
}

/* The value of the `paths` argument in the parameter string (malloc'd), or
 * NULL when none sets one (p11-kit-trust then reads its built-in paths).
 * Splits the string as p11_argv_parse (p11-kit common/argv.c) does: white
 * space outside quotes ends an argument, quotes and backslashes as there,
 * and a trailing backslash drops the last argument. */
static char *
paths_argument (sbuf *b, const char *params)
{
	char *dup = strdup (params), *paths = NULL;
	if (dup == NULL) {
		sb_fail (b, "out of memory");
		return NULL;
	}
	char *src, *at = dup, *arg = dup;
	char quote = '\0';
	for (src = dup; *src; src++) {
		if (quote == *src) {
			quote = '\0';
		} else if (quote != '\0') {
			if (*src == '\\') {
				if (!*++src)
					goto done;
				if (*src != quote)
					*at++ = '\\';
			}
			*at++ = *src;
		} else if (strchr (" \t\n\v\f\r", *src) != NULL) {
			*at = '\0';
			sink_argument (b, arg, &paths);
			arg = at;
		} else if (*src == '\'' || *src == '"') {
			quote = *src;
		} else {
			if (*src == '\\') {
				*at++ = *src++;
				if (!*src)
					goto done;
			}
			*at++ = *src;
		}
	}
	if (at != arg) {
		*at = '\0';
		sink_argument (b, arg, &paths);
	}
done:
	free (dup);
	return paths;
}

char *
stamp_paths_argument (const char *params, int *failed)
{
	char why[128];
	sbuf b = { .why = why, .why_len = sizeof why };
	char *paths = paths_argument (&b, params ? params : "");
	*failed = b.failed;
	return paths;
}

/* Walks every trust path upstream reads: those of the `paths` argument,
 * else the configured built-in ones. */
static void
add_trust_paths (sbuf *b, const char *params, const char *builtin)
{
	char *arg = paths_argument (b, params);
	const char *list = arg ? arg : builtin ? builtin : "";
	const char *p = list;
	while (*p && !b->failed) {
		size_t n = strcspn (p, ":");
		if (n > 0) {
			char *raw = strndup (p, n);
			char *path = raw ? expand_path (b, raw) : NULL;
			if (raw == NULL)
				sb_fail (b, "out of memory");
			if (path != NULL)
				walk (b, path, 0);
			free (path);
			free (raw);
		}
		p += n;
		if (*p == ':')
			p++;
	}
	free (arg);
}

/* The engine that built the view: the content of the package's engine-id
 * file (its version and a digest of its code, written by the package's
 * build), so an update of ncfence itself makes the view stale too. At most
 * a line of printable ASCII is used; anything else stamps as "?". */
static void
add_engine (sbuf *b, const char *engine)
{
	char id[129];
	size_t n = 0;
	FILE *f = fopen (engine, "re");
	int readable = f != NULL;
	if (f != NULL) {
		n = fread (id, 1, sizeof id - 1, f);
		fclose (f);
	}
	while (n > 0 && (id[n - 1] == '\n' || id[n - 1] == ' '))
		n--;
	id[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (id[i] < 0x20 || id[i] > 0x7e)
			n = 0, id[0] = '\0';
	sb_add (b, "\nengine=%s:%s", engine, !readable ? "-" : n == 0 ? "?" : id);
}

char *
stamp_build (const char *library, const char *params, const char *builtin_paths, const char *policy, const char *engine,
             char *why, size_t why_len)
{
	char real[PATH_MAX];
	struct stat st;
	sbuf b = { .why = why, .why_len = why_len };
	if (realpath (library, real) == NULL || stat (real, &st) < 0) {
		snprintf (why, why_len, "cannot stat upstream %s: %s", library, strerror (errno));
		return NULL;
	}
	params = params ? params : "";
	sb_add (&b, STAMP_VERSION "\nlib=%s\nsize=%lld\nmtime=%lld.%09ld\nparams=%s", real, (long long)st.st_size,
	        (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec, params);
	if (builtin_paths && builtin_paths[0])
		sb_add (&b, "\nbuiltin-paths=%s", builtin_paths);
	add_trust_paths (&b, params, builtin_paths);
	if (stat (policy, &st) < 0)
		sb_add (&b, "\npolicy=%s:-:-", policy);
	else
		sb_add (&b, "\npolicy=%s:%lld:%lld.%09ld", policy, (long long)st.st_size, (long long)st.st_mtim.tv_sec,
		        (long)st.st_mtim.tv_nsec);
	if (engine != NULL && engine[0] != '\0')
		add_engine (&b, engine);
	if (b.failed) {
		free (b.buf);
		return NULL;
	}
	return b.buf;
}

void
stamp_diff (const char *view, const char *now, char *out, size_t out_len)
{
	const char *a = view, *b = now;
	for (;;) {
		size_t la = strcspn (a, "\n"), lb = strcspn (b, "\n");
		if (la != lb || memcmp (a, b, la) != 0) {
			snprintf (out, out_len, "first difference: the view has \"%.*s\", now \"%.*s\"",
			          (int)(la < 160 ? la : 160), a, (int)(lb < 160 ? lb : 160), b);
			return;
		}
		if (a[la] == '\0' || b[lb] == '\0') {
			snprintf (out, out_len, "the stamps differ in length");
			return;
		}
		a += la + 1;
		b += lb + 1;
	}
}
