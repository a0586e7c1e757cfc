/* A real NSS process looking certificates up through the module, while other
 * threads look up Namecoin AIA parents NSS cannot find anywhere else (what a
 * web page's hostile chains make a browser do).
 *
 *   nsslookup MODULE NICKNAME ORDINARY HOSTILE SETTLE_MS DEADLINE_MS
 *
 * NSS loads MODULE (no database), finds NICKNAME ("<token>:<label>" of a
 * public root) once, and then times ORDINARY lookups of that root by its
 * subject with CERT_CreateSubjectCertList, the call mozilla::pkix's issuer
 * search makes (Firefox security/certverifier/NSSCertDBTrustDomain.cpp
 * FindIssuer): first alone, then while HOSTILE threads each look up distinct
 * Namecoin AIA parent names in a loop (started SETTLE_MS before). NSS
 * searches a token on its default session under the slot's lock
 * (nss lib/dev/devtoken.c find_objects, nssSession_EnterMonitor), so a
 * search that waits inside the module holds every other lookup.
 *
 * The lookups under attack stop at DEADLINE_MS after the attack started;
 * the JSON says how many were done. Prints one JSON object: every sample in
 * nanoseconds, how many lookups found the root, how many hostile lookups
 * finished and how many of those found anything. */
#define _GNU_SOURCE 1
#include <nss.h>
#include <cert.h>
#include <pk11pub.h>
#include <secmod.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;
static long long hostile_done, hostile_found;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

static long long
now_ns (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
pause_ms (long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep (&ts, NULL);
}

/* DER of "CN=<domain> Domain AIA Parent CA, serialNumber=Namecoin TLS
 * Certificate", the issuer name ncgencert's Domain CAs carry. */
static size_t
aia_name (unsigned char *out, const char *domain)
{
	static const char suffix[] = " Domain AIA Parent CA", serial[] = "Namecoin TLS Certificate";
	size_t cn = strlen (domain) + sizeof suffix - 1, sn = sizeof serial - 1, n = 0;
	size_t rdn1 = 2 + 5 + 2 + cn, rdn2 = 2 + 5 + 2 + sn;
	out[n++] = 0x30, out[n++] = (unsigned char)(2 + rdn1 + 2 + rdn2);
	out[n++] = 0x31, out[n++] = (unsigned char)rdn1;
	out[n++] = 0x30, out[n++] = (unsigned char)(5 + 2 + cn);
	out[n++] = 0x06, out[n++] = 3, out[n++] = 0x55, out[n++] = 0x04, out[n++] = 0x03;
	out[n++] = 0x0c, out[n++] = (unsigned char)cn;
	memcpy (out + n, domain, strlen (domain)), n += strlen (domain);
	memcpy (out + n, suffix, sizeof suffix - 1), n += sizeof suffix - 1;
	out[n++] = 0x31, out[n++] = (unsigned char)rdn2;
	out[n++] = 0x30, out[n++] = (unsigned char)(5 + 2 + sn);
	out[n++] = 0x06, out[n++] = 3, out[n++] = 0x55, out[n++] = 0x04, out[n++] = 0x05;
	out[n++] = 0x0c, out[n++] = (unsigned char)sn;
	memcpy (out + n, serial, sn), n += sn;
	return n;
}

/* Looks `name` up as mozilla::pkix does; 1 when NSS found a certificate. */
static int
lookup (const unsigned char *name, size_t len)
{
	SECItem item = { siBuffer, (unsigned char *)name, (unsigned int)len };
	CERTCertList *list = CERT_CreateSubjectCertList (NULL, CERT_GetDefaultCertDB (), &item, PR_Now (), PR_FALSE);
	int found = list != NULL && !CERT_LIST_EMPTY (list);
	if (list != NULL)
		CERT_DestroyCertList (list);
	return found;
}

static void *
hostile (void *arg)
{
	int id = (int)(long)arg;
	unsigned char name[256];
	char domain[64];
	for (long i = 0; !stop; i++) {
		snprintf (domain, sizeof domain, "h%dn%ld.bit", id, i);
		int found = lookup (name, aia_name (name, domain));
		pthread_mutex_lock (&count_lock);
		hostile_done++;
		hostile_found += found;
		pthread_mutex_unlock (&count_lock);
	}
	return NULL;
}

/* Times lookups of the root until n are done or the deadline passes. */
static size_t
time_lookups (const SECItem *subject, long long *samples, size_t n, long long deadline, size_t *found)
{
	size_t done = 0;
	*found = 0;
	for (; done < n && now_ns () < deadline; done++) {
		long long t0 = now_ns ();
		*found += lookup (subject->data, subject->len);
		samples[done] = now_ns () - t0;
		pause_ms (1); /* sample at many points of the attack, not back to back */
	}
	return done;
}

static void
print_samples (const char *key, const long long *v, size_t n)
{
	printf ("\"%s\":[", key);
	for (size_t i = 0; i < n; i++)
		printf ("%s%lld", i ? "," : "", v[i]);
	printf ("],");
}

int
main (int argc, char **argv)
{
	if (argc != 7) {
		fprintf (stderr, "usage: nsslookup MODULE NICKNAME ORDINARY HOSTILE SETTLE_MS DEADLINE_MS\n");
		return 2;
	}
	size_t ordinary = (size_t)atol (argv[3]);
	int threads = atoi (argv[4]);
	long settle = atol (argv[5]), deadline_ms = atol (argv[6]);
	if (ordinary == 0 || threads < 0 || threads > 64)
		return 2;
	if (NSS_NoDB_Init (NULL) != SECSuccess) {
		fprintf (stderr, "NSS_NoDB_Init failed: %d\n", PORT_GetError ());
		return 1;
	}
	char spec[4096];
	snprintf (spec, sizeof spec, "library=\"%s\" name=\"ncfence\"", argv[1]);
	SECMODModule *mod = SECMOD_LoadUserModule (spec, NULL, PR_FALSE);
	if (mod == NULL || !mod->loaded) {
		fprintf (stderr, "cannot load %s: %d\n", argv[1], PORT_GetError ());
		return 1;
	}
	CERTCertificate *root = PK11_FindCertFromNickname (argv[2], NULL);
	if (root == NULL) {
		fprintf (stderr, "no certificate %s: %d\n", argv[2], PORT_GetError ());
		return 1;
	}
	SECItem *subject = SECITEM_DupItem (&root->derSubject);
	CERT_DestroyCertificate (root);
	long long *alone = calloc (ordinary, sizeof *alone), *attack = calloc (ordinary, sizeof *attack);
	size_t alone_found, attack_found, scratch;
	long long warm[20];
	time_lookups (subject, warm, 20, now_ns () + 10000000000LL, &scratch);
	size_t alone_n = time_lookups (subject, alone, ordinary, now_ns () + 600000000000LL, &alone_found);
	pthread_t tid[64];
	for (int i = 0; i < threads; i++)
		pthread_create (&tid[i], NULL, hostile, (void *)(long)i);
	long long started = now_ns ();
	pause_ms (settle);
	size_t attack_n = threads > 0 ? time_lookups (subject, attack, ordinary, started + deadline_ms * 1000000LL, &attack_found) : 0;
	if (threads == 0)
		attack_found = 0;
	stop = 1;
	pthread_mutex_lock (&count_lock);
	long long done = hostile_done, found = hostile_found;
	pthread_mutex_unlock (&count_lock);
	printf ("{");
	print_samples ("alone_ns", alone, alone_n);
	print_samples ("attack_ns", attack, attack_n);
	printf ("\"ordinary\":%zu,\"alone_found\":%zu,\"attack_done\":%zu,\"attack_found\":%zu,\"hostile_done\":%lld,\"hostile_found\":%lld}\n",
	        ordinary, alone_found, attack_n, attack_found, done, found);
	fflush (stdout);
	/* Hostile threads may still be inside NSS, held by a module that waits:
	 * give them a bounded time, then leave without the NSS shutdown. */
	long long give_up = now_ns () + 5000000000LL;
	for (int i = 0; i < threads; i++) {
		struct timespec ts;
		clock_gettime (CLOCK_REALTIME, &ts);
		long long left = give_up - now_ns ();
		if (left <= 0)
			_exit (0);
		ts.tv_sec += left / 1000000000LL;
		ts.tv_nsec += left % 1000000000LL;
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_sec++, ts.tv_nsec -= 1000000000L;
		if (pthread_timedjoin_np (tid[i], NULL, &ts) != 0)
			_exit (0);
	}
	SECITEM_FreeItem (subject, PR_TRUE);
	free (alone);
	free (attack);
	SECMOD_DestroyModule (mod);
	NSS_Shutdown ();
	return 0;
}
