/* Loading and initializing the upstream ("lower") trust module. */
#include "nf.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Upstream stays mapped after C_Finalize and is reused by the next
 * C_Initialize. NSS's CKBI keeps NSPR allocations past its C_Finalize, so a
 * dlclose per cycle orphans them: measured with LeakSanitizer over 1000
 * cycles (test/module/native.test.ts). Guarded by nf.lock (C_Initialize/Finalize). */
static void *kept_dl;
static char *kept_path;

static void *
lower_open (const char *path)
{
	if (kept_dl != NULL && strcmp (kept_path, path) == 0)
		return kept_dl;
	void *dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
	char *copy = dl ? strdup (path) : NULL;
	if (dl != NULL && copy != NULL) {
		free (kept_path);
		kept_dl = dl;   /* a previous, different upstream stays mapped too */
		kept_path = copy;
	}
	return dl;
}

/* PKCS#11 lets C_FindObjects return fewer handles than asked while more
 * remain. NSS's builtins (its ckfw framework) and p11-kit-trust never do:
 * they fill each page until the search is exhausted (checked in their
 * sources and with a harness), so for them a short page ends the search and
 * saves a call per search; any other upstream is paged until it returns
 * nothing. Identified by C_GetInfo. */
static int
full_pages (CK_FUNCTION_LIST_PTR fl)
{
	CK_INFO info;
	if (fl->C_GetInfo == NULL || fl->C_GetInfo (&info) != CKR_OK)
		return 0;
	const char *m = (const char *)info.manufacturerID, *d = (const char *)info.libraryDescription;
	return (memcmp (m, "Mozilla Foundation ", 19) == 0 && memcmp (d, "NSS Builtin Object Cryptoki Modu", 32) == 0) ||
	       (memcmp (m, "PKCS#11 Kit ", 12) == 0 && memcmp (d, "PKCS#11 Kit Trust Module ", 25) == 0);
}

CK_RV
lower_load (const char *path, CK_C_INITIALIZE_ARGS_PTR caller, const char *params, char *why, size_t why_len)
{
	CK_C_INITIALIZE_ARGS args = { 0 };
	CK_C_GetFunctionList get;
	CK_FUNCTION_LIST_PTR fl = NULL;
	CK_RV rv;

	void *dl = lower_open (path);
	if (dl == NULL) {
		snprintf (why, why_len, "cannot load upstream %s: %s", path, dlerror ());
		return CKR_GENERAL_ERROR;
	}
	get = (CK_C_GetFunctionList)dlsym (dl, "C_GetFunctionList");
	/* ncfence itself: upstream's C_GetFunctionList is in this very object. */
	Dl_info self, them;
	int itself = get != NULL && dladdr ((void *)lower_load, &self) && dladdr ((void *)get, &them) &&
	             self.dli_fbase == them.dli_fbase;
	if (get == NULL || itself) {
		snprintf (why, why_len, "upstream %s is %s", path,
		          get ? "ncfence itself (the configuration points the module at its own file)"
		              : "not a PKCS#11 module (no C_GetFunctionList)");
		return CKR_GENERAL_ERROR;
	}
	rv = get (&fl);
	if (rv != CKR_OK || fl == NULL || fl->C_Initialize == NULL || fl->C_Finalize == NULL) {
		snprintf (why, why_len, "upstream %s: C_GetFunctionList failed (%s)", path, debug_rv_name (rv));
		return rv != CKR_OK ? rv : CKR_GENERAL_ERROR;
	}
	/* The caller's callbacks go to upstream unchanged, but upstream is always
	 * told it may lock with the OS: ncfence is upstream's application, and
	 * it is safe under OS locking whatever its own caller said (a caller
	 * that gives callbacks without the flag was refused in C_Initialize).
	 * p11-kit-trust refuses any argument structure without the flag, so
	 * passing on a single-threaded caller's zero flags (pkcs11-tool's
	 * C_Initialize(NULL)) left the view closed. The parameter string is
	 * ours (from the configuration), never the caller's. */
	if (caller != NULL)
		args = *caller;
	args.flags |= CKF_OS_LOCKING_OK;
	free (nf.lower_params);
	nf.lower_params = (params && params[0]) ? strdup (params) : NULL;
	args.pReserved = nf.lower_params;
	rv = fl->C_Initialize (&args);
	/* Already initialized: the application (or another module) loaded the
	 * same library and initialized it; NSS itself treats this as success.
	 * It is then not ours to finalize. */
	nf.lower_borrowed = rv == CKR_CRYPTOKI_ALREADY_INITIALIZED;
	if (rv != CKR_OK && !nf.lower_borrowed) {
		snprintf (why, why_len, "upstream %s: C_Initialize failed (%s)", path, debug_rv_name (rv));
		return rv;
	}
	nf.lower_full_pages = full_pages (fl);
	nf.lower_snapshot = 0;
	__atomic_store_n (&nf.lower, fl, __ATOMIC_RELEASE);
	return CKR_OK;
}

void
lower_use_snapshot (void)
{
	CK_FUNCTION_LIST_PTR fl = snapshot_functions ();
	fl->C_Initialize (NULL);
	free (nf.lower_params);
	nf.lower_params = NULL;
	nf.lower_borrowed = 0;
	nf.lower_snapshot = 1; /* its objects are searched and read directly (find.c, object.c) */
	__atomic_store_n (&nf.lower, fl, __ATOMIC_RELEASE);
}

void
lower_unload (void)
{
	CK_FUNCTION_LIST_PTR fl = nf.lower;
	__atomic_store_n (&nf.lower, NULL, __ATOMIC_RELEASE);
	if (fl != NULL && !nf.lower_borrowed)
		fl->C_Finalize (NULL); /* and stays mapped: see kept_dl */
	nf.lower_borrowed = 0;
	nf.lower_snapshot = 0;
	free (nf.lower_params);
	nf.lower_params = NULL;
}
