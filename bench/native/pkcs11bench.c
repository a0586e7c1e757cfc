/* Times one PKCS#11 module through its C ABI and prints one JSON object.
 *
 *   pkcs11bench MODULE [TOKEN-LABEL-PREFIX]
 *
 * Measures, per operation, in nanoseconds (median, p95 over all samples):
 *   init   C_Initialize + first C_GetSlotList (C_Finalize excluded), 30 cycles
 *   find   FindObjectsInit{CLASS=certificate, SUBJECT=s} + FindObjects(16) + Final,
 *          for every certificate subject of the token, 20 rounds
 *   value  C_GetAttributeValue(CKA_VALUE) with a buffer, every certificate, 20 rounds
 * Only certificates with handles below 2^63 take part: for ncfence those are
 * upstream's own (its view objects carry the top bit), so the three modules
 * run the same loop over the same certificates. A find by such a subject
 * through ncfence also returns the matching view objects, as it does for NSS.
 *   value_view  the same read on ncfence's own objects (absent elsewhere)
 * $BENCH_PARAMS is passed as pReserved. The slot used is the first whose token
 * label starts with TOKEN-LABEL-PREFIX (default: the first slot). */
#define _GNU_SOURCE 1
#include <p11-kit/pkcs11.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static CK_FUNCTION_LIST_PTR fl;

static long long
now_ns (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int
cmp_ll (const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

static void
report (const char *name, long long *v, size_t n, int last)
{
	qsort (v, n, sizeof *v, cmp_ll);
	printf ("\"%s\":{\"n\":%zu,\"median_ns\":%lld,\"p95_ns\":%lld}%s", name, n, v[n / 2], v[n * 95 / 100], last ? "" : ",");
}

static void
die (const char *what, CK_RV rv)
{
	fprintf (stderr, "pkcs11bench: %s failed: 0x%lx\n", what, rv);
	exit (1);
}

static CK_RV
init (void)
{
	CK_C_INITIALIZE_ARGS args = { 0 };
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = getenv ("BENCH_PARAMS");
	return fl->C_Initialize (&args);
}

static CK_SLOT_ID
pick_slot (const char *prefix)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;
	CK_RV rv = fl->C_GetSlotList (CK_TRUE, slots, &n);
	if (rv != CKR_OK || n == 0)
		die ("C_GetSlotList", rv);
	for (CK_ULONG i = 0; prefix && i < n; i++) {
		CK_TOKEN_INFO ti;
		if (fl->C_GetTokenInfo (slots[i], &ti) == CKR_OK && strncmp ((char *)ti.label, prefix, strlen (prefix)) == 0)
			return slots[i];
	}
	if (prefix)
		die ("finding the token", CKR_TOKEN_NOT_PRESENT);
	return slots[0];
}

int
main (int argc, char **argv)
{
	if (argc < 2) {
		fprintf (stderr, "usage: pkcs11bench MODULE [TOKEN-LABEL-PREFIX]\n");
		return 2;
	}
	void *dl = dlopen (argv[1], RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get = dl ? (CK_C_GetFunctionList)dlsym (dl, "C_GetFunctionList") : NULL;
	if (get == NULL || get (&fl) != CKR_OK)
		die ("loading the module", CKR_GENERAL_ERROR);
	const char *prefix = argc > 2 ? argv[2] : NULL;

	enum { INIT_CYCLES = 30, ROUNDS = 20 };
	long long init_ns[INIT_CYCLES];
	for (int i = 0; i < INIT_CYCLES; i++) {
		long long t0 = now_ns ();
		CK_RV rv = init ();
		CK_ULONG n = 0;
		if (rv == CKR_OK)
			rv = fl->C_GetSlotList (CK_TRUE, NULL, &n);
		init_ns[i] = now_ns () - t0;
		if (rv != CKR_OK)
			die ("C_Initialize", rv);
		fl->C_Finalize (NULL);
	}

	CK_RV rv = init ();
	if (rv != CKR_OK)
		die ("C_Initialize", rv);
	CK_SESSION_HANDLE s;
	if ((rv = fl->C_OpenSession (pick_slot (prefix), CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK)
		die ("C_OpenSession", rv);
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE all = { CKA_CLASS, &cls, sizeof cls };
	CK_OBJECT_HANDLE certs[4096];
	CK_ULONG ncerts = 0, got;
	CK_OBJECT_HANDLE view[4096];
	CK_ULONG nview = 0;
	fl->C_FindObjectsInit (s, &all, 1);
	for (;;) {
		CK_OBJECT_HANDLE page[64];
		if (fl->C_FindObjects (s, page, 64, &got) != CKR_OK || got == 0)
			break;
		for (CK_ULONG i = 0; i < got; i++) {
			if ((page[i] >> 63) == 0 && ncerts < 4096)
				certs[ncerts++] = page[i];
			else if ((page[i] >> 63) != 0 && nview < 4096)
				view[nview++] = page[i];
		}
	}
	fl->C_FindObjectsFinal (s);
	if (ncerts == 0)
		die ("finding certificates", CKR_GENERAL_ERROR);

	unsigned char (*subj)[1024] = malloc (ncerts * sizeof *subj);
	CK_ULONG *subj_len = malloc (ncerts * sizeof *subj_len);
	for (CK_ULONG i = 0; i < ncerts; i++) {
		CK_ATTRIBUTE a = { CKA_SUBJECT, subj[i], sizeof subj[i] };
		if ((rv = fl->C_GetAttributeValue (s, certs[i], &a, 1)) != CKR_OK)
			die ("reading CKA_SUBJECT", rv);
		subj_len[i] = a.ulValueLen;
	}

	long long *find_ns = malloc (ROUNDS * ncerts * sizeof *find_ns);
	long long *value_ns = malloc (ROUNDS * ncerts * sizeof *value_ns);
	static unsigned char buf[65536];
	size_t nf = 0, nv = 0;
	unsigned long long sink = 0;
	for (int r = 0; r < ROUNDS; r++) {
		for (CK_ULONG i = 0; i < ncerts; i++) {
			CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_SUBJECT, subj[i], subj_len[i] } };
			CK_OBJECT_HANDLE out[16];
			long long t0 = now_ns ();
			fl->C_FindObjectsInit (s, t, 2);
			fl->C_FindObjects (s, out, 16, &got);
			fl->C_FindObjectsFinal (s);
			find_ns[nf++] = now_ns () - t0;
			sink += got;
		}
		for (CK_ULONG i = 0; i < ncerts; i++) {
			CK_ATTRIBUTE a = { CKA_VALUE, buf, sizeof buf };
			long long t0 = now_ns ();
			rv = fl->C_GetAttributeValue (s, certs[i], &a, 1);
			value_ns[nv++] = now_ns () - t0;
			if (rv != CKR_OK)
				die ("reading CKA_VALUE", rv);
			sink += a.ulValueLen;
		}
	}
	long long *view_ns = malloc ((ROUNDS * nview + 1) * sizeof *view_ns);
	size_t nvv = 0;
	for (int r = 0; r < ROUNDS; r++) {
		for (CK_ULONG i = 0; i < nview; i++) {
			CK_ATTRIBUTE a = { CKA_VALUE, buf, sizeof buf };
			long long t0 = now_ns ();
			rv = fl->C_GetAttributeValue (s, view[i], &a, 1);
			view_ns[nvv++] = now_ns () - t0;
			if (rv != CKR_OK)
				die ("reading CKA_VALUE of a view object", rv);
		}
	}
	fl->C_CloseSession (s);
	fl->C_Finalize (NULL);
	printf ("{\"module\":\"%s\",\"certificates\":%lu,\"view_certificates\":%lu,\"checksum\":%llu,", argv[1], ncerts, nview, sink);
	report ("init", init_ns, INIT_CYCLES, 0);
	report ("find", find_ns, nf, 0);
	if (nvv > 0) {
		report ("value", value_ns, nv, 0);
		report ("value_view", view_ns, nvv, 1);
	} else {
		report ("value", value_ns, nv, 1);
	}
	printf ("}\n");
	return 0;
}
