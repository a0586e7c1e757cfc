/* Which form of R' a process sees, as the set of loaded libraries changes
 * (addon/host.c). Loads the module, then runs its arguments in order:
 *
 *   load:LIB     dlopen LIB (e.g. libgnutls.so.30, libnss3.so) and keep it
 *   unload       dlclose the last library loaded
 *   search       print "search SERIAL,SERIAL,..." (hex DER of CKA_SERIAL_NUMBER)
 *                for every certificate the module calls CKA_TRUSTED
 *
 *   forms MODULE ACTION...
 *
 * $HARNESS_PARAMS is passed as pReserved. Exits 2 on any PKCS#11 error. */
#define _GNU_SOURCE 1
#include <p11-kit/pkcs11.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static CK_FUNCTION_LIST_PTR fl;

static void
must (CK_RV rv, const char *what)
{
	if (rv != CKR_OK) {
		fprintf (stderr, "%s: 0x%lx\n", what, (unsigned long)rv);
		exit (2);
	}
}

static void
search (CK_SLOT_ID *slots, CK_ULONG nslots)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_TRUSTED, &yes, sizeof yes } };
	printf ("search ");
	const char *sep = "";
	for (CK_ULONG s = 0; s < nslots; s++) {
		CK_SESSION_HANDLE session;
		must (fl->C_OpenSession (slots[s], CKF_SERIAL_SESSION, NULL, NULL, &session), "C_OpenSession");
		must (fl->C_FindObjectsInit (session, tmpl, 2), "C_FindObjectsInit");
		CK_OBJECT_HANDLE found[64];
		CK_ULONG n = 0;
		must (fl->C_FindObjects (session, found, 64, &n), "C_FindObjects");
		must (fl->C_FindObjectsFinal (session), "C_FindObjectsFinal");
		for (CK_ULONG i = 0; i < n; i++) {
			unsigned char serial[64];
			CK_ATTRIBUTE a = { CKA_SERIAL_NUMBER, serial, sizeof serial };
			must (fl->C_GetAttributeValue (session, found[i], &a, 1), "C_GetAttributeValue");
			printf ("%s", sep);
			for (CK_ULONG k = 0; k < a.ulValueLen; k++)
				printf ("%02x", serial[k]);
			sep = ",";
		}
		fl->C_CloseSession (session);
	}
	printf ("\n");
	fflush (stdout);
}

int
main (int argc, char **argv)
{
	if (argc < 2) {
		fprintf (stderr, "usage: forms MODULE ACTION...\n");
		return 2;
	}
	void *dl = dlopen (argv[1], RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get = dl ? (CK_C_GetFunctionList)dlsym (dl, "C_GetFunctionList") : NULL;
	if (get == NULL || get (&fl) != CKR_OK) {
		fprintf (stderr, "cannot load %s: %s\n", argv[1], dlerror ());
		return 2;
	}
	CK_C_INITIALIZE_ARGS init = { .flags = CKF_OS_LOCKING_OK, .pReserved = getenv ("HARNESS_PARAMS") };
	must (fl->C_Initialize (&init), "C_Initialize");
	CK_SLOT_ID slots[16];
	CK_ULONG nslots = 16;
	must (fl->C_GetSlotList (CK_TRUE, slots, &nslots), "C_GetSlotList");
	void *last = NULL;
	for (int i = 2; i < argc; i++) {
		if (strncmp (argv[i], "load:", 5) == 0) {
			last = dlopen (argv[i] + 5, RTLD_NOW | RTLD_LOCAL);
			if (last == NULL) {
				fprintf (stderr, "cannot load %s: %s\n", argv[i] + 5, dlerror ());
				return 2;
			}
		} else if (strcmp (argv[i], "unload") == 0 && last != NULL) {
			dlclose (last);
			last = NULL;
		} else if (strcmp (argv[i], "search") == 0) {
			search (slots, nslots);
		} else {
			fprintf (stderr, "unknown action %s\n", argv[i]);
			return 2;
		}
	}
	fl->C_Finalize (NULL);
	return 0;
}
