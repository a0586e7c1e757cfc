/* Times .bit lookups through the module: for each name in NAMES (u32 length +
 * DER, repeated), a search {CLASS=certificate, SUBJECT=name} the first time
 * (cold: module -> service -> source) and then WARM times (module cache).
 * Prints one JSON object with every sample in nanoseconds.
 *
 * The module waits for the service only briefly and out of a per-process
 * budget (addon/live.c), so a cold lookup back to back with 200 others can
 * come back empty: when the budget is spent, or the service took longer
 * than the module waits on a busy machine (the module then waits for no one
 * for a while). Such a lookup is not a sample: it is counted (cold_empty),
 * and the name is searched again after that while, until its answer is in.
 *   lookupbench MODULE NAMES WARM */
#define _GNU_SOURCE 1
#include <p11-kit/pkcs11.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOW_HOLD_MS 2100 /* addon/live.c SLOW_HOLD_MS, and a little */

static long long
now_ns (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int
main (int argc, char **argv)
{
	if (argc != 4)
		return 2;
	void *dl = dlopen (argv[1], RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get = dl ? (CK_C_GetFunctionList)dlsym (dl, "C_GetFunctionList") : NULL;
	CK_FUNCTION_LIST_PTR fl;
	if (get == NULL || get (&fl) != CKR_OK)
		return 1;
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_SLOT_ID slot;
	CK_ULONG n = 1;
	CK_SESSION_HANDLE s;
	if (fl->C_Initialize (&args) != CKR_OK || fl->C_GetSlotList (CK_TRUE, &slot, &n) != CKR_OK || n < 1 ||
	    fl->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return 1;
	FILE *f = fopen (argv[2], "rb");
	int warm = atoi (argv[3]);
	unsigned char name[4096];
	unsigned char len4[4];
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	printf ("{\"cold_ns\":[");
	long long *warm_ns = malloc (sizeof (long long) * 100000);
	size_t nw = 0, found = 0, count = 0, empty = 0, samples = 0;
	while (f && fread (len4, 1, 4, f) == 4) {
		unsigned len = len4[0] | len4[1] << 8 | len4[2] << 16 | (unsigned)len4[3] << 24;
		if (len > sizeof name || fread (name, 1, len, f) != len)
			break;
		CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_SUBJECT, name, len } };
		for (int r = 0; r <= warm; r++) {
			CK_OBJECT_HANDLE out[8];
			CK_ULONG got = 0;
			long long t0 = now_ns ();
			fl->C_FindObjectsInit (s, t, 2);
			fl->C_FindObjects (s, out, 8, &got);
			fl->C_FindObjectsFinal (s);
			long long dt = now_ns () - t0;
			if (r == 0 && got == 0 && empty < 1000) {
				empty++;
				for (int again = 0; again < 3 && got == 0; again++) {
					struct timespec hold = { SLOW_HOLD_MS / 1000, (SLOW_HOLD_MS % 1000) * 1000000L };
					nanosleep (&hold, NULL);
					fl->C_FindObjectsInit (s, t, 2);
					fl->C_FindObjects (s, out, 8, &got);
					fl->C_FindObjectsFinal (s);
				}
				found += got;
			} else if (r == 0) {
				printf ("%s%lld", samples++ ? "," : "", dt);
				found += got;
			} else if (nw < 100000) {
				warm_ns[nw++] = dt;
			}
		}
		count++;
	}
	printf ("],\"warm_ns\":[");
	for (size_t i = 0; i < nw; i++)
		printf ("%s%lld", i ? "," : "", warm_ns[i]);
	printf ("],\"names\":%zu,\"found\":%zu,\"cold_empty\":%zu}\n", count, found, empty);
	fl->C_CloseSession (s);
	fl->C_Finalize (NULL);
	return 0;
}
