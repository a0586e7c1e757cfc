/* Which process hosts the module: whether it runs with privileges its
 * invoker lacks, whether a Java VM shares it, and which verifier it holds,
 * for views that hold two forms of R' (docs/design.md, "Two forms of R'";
 * docs/policy.md).
 *
 * NSS falls back to the CN for the host name when the SAN holds no DNS
 * name (lib/certdb/certdb.c CERT_VerifyCertName), yet its constraint check
 * takes the CN only when the SAN holds neither a DNS name nor an IP address
 * (lib/certdb/genname.c CERT_GetConstrainedCertificateNames with
 * certdb.c cert_CountDNSPatterns): so for NSS an R' must exclude every IP
 * address, which costs public CAs' IP-address certificates. GnuTLS (lib/x509/name_constraints.c) and OpenSSL
 * (crypto/x509/v3_ncons.c NAME_CONSTRAINTS_check_CN) check the CN whenever
 * they would fall back to it, and keep them with the plain form.
 *
 * The plain form is served only where the module knows NSS is not in the
 * process: libnss3 has never been seen here, and GnuTLS or OpenSSL (the
 * verifiers known to be safe with it) are loaded. Anything else, unsure
 * included, gets the NSS form: fail closed. Once libnss3 is seen the answer
 * stays "NSS" for the life of the process. The loaded objects are rescanned
 * only when glibc's counts of loads and unloads (dlpi_adds, dlpi_subs)
 * change, so the usual search costs one dl_iterate_phdr call that stops at
 * the first object. Lock-free: the last answer and the counts it was for
 * are packed into one atomic word (the low 32 bits of the load count, the
 * low 31 of the unload count), so no lock can be left held across fork(). */
#include "nf.h"

#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

int
host_privileged (void)
{
	return getauxval (AT_SECURE) != 0 || geteuid () != getuid () || getegid () != getgid ();
}

typedef struct {
	unsigned long long adds, subs;
	int counted;
} counts;

typedef struct {
	int nss, safe, java;
} libs;

static int nss_seen;        /* sticky: libnss3 was loaded in this process */
static uint64_t last_answer; /* 0: none yet; else counts << 1 | plain-form verdict, with bit 63 set */

static int
read_counts (struct dl_phdr_info *info, size_t size, void *data)
{
	counts *c = data;
	if (size >= offsetof (struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
		c->adds = info->dlpi_adds;
		c->subs = info->dlpi_subs;
		c->counted = 1;
	}
	return 1; /* the first object carries the counts */
}

/* Whether the file name of `path` is `lib` or `lib` followed by a version (libnss3.so, libgnutls.so.30). */
static int
is_library (const char *path, const char *lib)
{
	const char *base = strrchr (path, '/');
	base = base ? base + 1 : path;
	size_t n = strlen (lib);
	return strncmp (base, lib, n) == 0 && (base[n] == '\0' || base[n] == '.');
}

static int
scan_libraries (struct dl_phdr_info *info, size_t size, void *data)
{
	libs *l = data;
	const char *name = info->dlpi_name;
	if (name == NULL || name[0] == '\0')
		return 0;
	if (is_library (name, "libnss3.so"))
		l->nss = 1;
	else if (is_library (name, "libgnutls.so") || is_library (name, "libcrypto.so"))
		l->safe = 1;
	else if (is_library (name, "libjvm.so"))
		l->java = 1;
	return 0;
}

int
host_is_java (void)
{
	libs l = { 0 };
	dl_iterate_phdr (scan_libraries, &l);
	return l.java;
}

static uint64_t
pack (const counts *c, int plain)
{
	return (uint64_t)1 << 63 | (uint64_t)(c->adds & 0xffffffffu) << 32 | (uint64_t)(c->subs & 0x7fffffffu) << 1 | (uint64_t)(plain != 0);
}

int
host_serves_plain_form (void)
{
	if (__atomic_load_n (&nss_seen, __ATOMIC_ACQUIRE))
		return 0;
	counts c = { 0 };
	dl_iterate_phdr (read_counts, &c);
	uint64_t last = __atomic_load_n (&last_answer, __ATOMIC_ACQUIRE);
	if (c.counted && last != 0 && (last | 1) == (pack (&c, 1)))
		return (int)(last & 1);
	libs l = { 0 };
	dl_iterate_phdr (scan_libraries, &l);
	if (l.nss && !__atomic_exchange_n (&nss_seen, 1, __ATOMIC_ACQ_REL))
		nf_debug (NF_DBG_FIND, "host: libnss3 is loaded; serving the NSS form of R' from now on");
	int plain = !l.nss && l.safe;
	if (c.counted)
		__atomic_store_n (&last_answer, pack (&c, plain), __ATOMIC_RELEASE);
	nf_debug (NF_DBG_FIND, "host: %s form of R' (%s)", plain ? "plain" : "NSS",
	          l.nss ? "libnss3 loaded" : l.safe ? "GnuTLS or OpenSSL loaded, no NSS" : "no known verifier loaded: the stricter form");
	return plain;
}
