/* libncfence-probe.so: reads a browser's built-in roots from inside the
 * browser.
 *
 * Firefox compiles its roots into libxul and exports no function list for
 * them; the only faithful reader is the browser itself. `ncfence` starts the
 * browser headless with a throwaway profile whose pkcs11.txt names this
 * library, with the output file as its parameter string. NSS initializes it
 * at start-up; a thread then waits (bounded) for the roots module to appear
 * in NSS's own module list (Firefox loads it a moment later, on another
 * thread), and writes every object of that module's root-list token, with
 * every attribute it answers, to the file (temp file + rename). Then it ends
 * the browser (_exit); the caller kills what remains of its process group.
 * The library has no slots and changes nothing.
 *
 * The roots module is the one whose token holds a CKO_NSS_BUILTIN_ROOT_LIST
 * object (NSS pk11slot.c treats exactly those as root slots). The output
 * names where its functions live (dladdr), so the caller can tell libxul's
 * builtins from a module loaded from a file, ncfence included.
 *
 * NSS structures read here: SECMODModuleList {next, module} and the head of
 * SECMODModule {arena, internal, loaded, isFIPS, dllName, commonName,
 * library, functionList} (nss lib/pk11wrap/secmodt.h), unchanged since NSS
 * 3.x began and relied on by OpenJDK's SunPKCS11 too. Every pointer taken
 * from them is checked with dladdr before it is called. */
#define _GNU_SOURCE 1
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROBE_VERSION "ncfence-probe-v1"
#define CKO_NSS_BUILTIN_ROOT_LIST 0xce534354UL
#define PROBE_WAIT_MS 60000L
#define PROBE_MAX_OBJECTS 16384
#define PROBE_MAX_VALUE (1u << 20)

typedef struct ModuleListStr ModuleList;
typedef struct {
	void *arena;
	int internal, loaded, isFIPS;
	char *dllName;
	char *commonName;
	void *library;
	void *functionList;
} ModuleHead;
struct ModuleListStr {
	ModuleList *next;
	ModuleHead *module;
};

typedef ModuleList *(*get_list_fn) (void);
typedef void *(*get_lock_fn) (void);
typedef void (*rw_lock_fn) (void *);

static CK_FUNCTION_LIST probe_functions;
static pthread_t probe_thread;
static int probe_started;
static _Atomic int probe_stop;
static char *probe_out;

/* Attributes asked of every object: the standard and vendor ones a trust
 * token can carry (src/pkcs11/constants.ts CANDIDATE_ATTRS, and more). */
static const CK_ATTRIBUTE_TYPE probe_attrs[] = {
	0x0, 0x1, 0x2, 0x3, 0x10, 0x11, 0x12, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a,
	0x8b, 0x8c, 0x90, 0x100, 0x101, 0x102, 0x110, 0x111, 0x129, 0x170, 0x171, 0x172, 0x62c, 0x62d, 0x62e,
	0x62f, 0x630, 0x631, 0x632, 0x633, 0x634, 0x635,
	0xce534350, 0xce534351, 0xce534352, 0xce534353, 0xce534354, 0xce534355, 0xce534356, 0xce534357,
	0xce534358, 0xce534359, 0xce53435a, 0xce53435b, 0xce53435c, 0xce53435d, 0xce53435e,
	0xce534364, 0xce534365, 0xce534366, 0xce534367, 0xce534368, 0xce534369, 0xce53436a, 0xce53436b,
	0xce53436c, 0xce53436d, 0xce53436e, 0xce53436f, 0xce534370, 0xce534371, 0xce534372, 0xce534373,
	0xce534374, 0xce534375, 0xce534376,
	0xce536351, 0xce536352, 0xce536353, 0xce536354, 0xce536355, 0xce536356, 0xce536357, 0xce536358,
	0xce536359, 0xce53635a, 0xce53635b, 0xce53635c, 0xce53635d, 0xce53635e, 0xce53635f, 0xce536360,
	0xce5363b4, 0xce5363b5,
	0xd8444701, 0xd8444702, 0xd8444703, 0xd8444704, 0xd8444764,
};

/* Classes searched one by one: Firefox's builtins answer only searches that
 * name a class (an empty template finds nothing there). */
static const CK_OBJECT_CLASS probe_classes[] = {
	0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa, 0xb, 0xc, 0xd,
	0xce534351, 0xce534352, 0xce534353, 0xce534354, 0xce534355, 0xce534356, 0xce534357,
	0xd8444764, 0xd8444765,
};

static long
now_ms (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void
put_escaped (FILE *f, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c > 0x20 && c < 0x7f && c != '%')
			fputc (c, f);
		else
			fprintf (f, "%%%02X", c);
	}
}

static void
put_field (FILE *f, const char *key, const char *s, size_t n)
{
	fprintf (f, "%s ", key);
	put_escaped (f, s, n);
	fputc ('\n', f);
}

static void
put_string (FILE *f, const char *key, const char *s)
{
	put_field (f, key, s ? s : "-", s ? strlen (s) : 1);
}

static void
put_raw (FILE *f, const char *key, const void *p, size_t n)
{
	fprintf (f, "%s ", key);
	for (size_t i = 0; i < n; i++)
		fprintf (f, "%02x", ((const unsigned char *)p)[i]);
	fputc ('\n', f);
}

/* The shared object a code address belongs to, or NULL. */
static const char *
owner_of (const void *addr)
{
	Dl_info info;
	if (addr == NULL || dladdr (addr, &info) == 0)
		return NULL;
	return info.dli_fname;
}

/* A function list taken from NSS's structures is used only when its table
 * and its functions all lie in loaded objects. */
static int
plausible (CK_FUNCTION_LIST_PTR fl)
{
	if (fl == NULL || owner_of (fl) == NULL)
		return 0;
	if (fl->version.major < 2 || fl->version.major > 3)
		return 0;
	const void *fns[] = { (void *)fl->C_GetInfo, (void *)fl->C_GetSlotList, (void *)fl->C_OpenSession,
	                      (void *)fl->C_CloseSession, (void *)fl->C_FindObjectsInit, (void *)fl->C_FindObjects,
	                      (void *)fl->C_FindObjectsFinal, (void *)fl->C_GetAttributeValue };
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
		if (owner_of (fns[i]) == NULL)
			return 0;
	return 1;
}

static int
has_root_list (CK_FUNCTION_LIST_PTR fl, CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE s;
	CK_OBJECT_CLASS cls = CKO_NSS_BUILTIN_ROOT_LIST;
	CK_ATTRIBUTE t = { CKA_CLASS, &cls, sizeof cls };
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 0;
	if (fl->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return 0;
	if (fl->C_FindObjectsInit (s, &t, 1) == CKR_OK) {
		if (fl->C_FindObjects (s, &h, 1, &n) != CKR_OK)
			n = 0;
		fl->C_FindObjectsFinal (s);
	}
	fl->C_CloseSession (s);
	return n > 0;
}

/* The root-list slot of `fl` (1), else its first slot (0, *out set when it
 * has one), -1 when it has no slot. */
static int
root_slot (CK_FUNCTION_LIST_PTR fl, CK_SLOT_ID *out)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	if (fl->C_GetSlotList (CK_TRUE, slots, &n) != CKR_OK || n == 0)
		return -1;
	for (CK_ULONG i = 0; i < n && i < 16; i++) {
		if (has_root_list (fl, slots[i])) {
			*out = slots[i];
			return 1;
		}
	}
	*out = slots[0];
	return 0;
}

typedef struct {
	CK_FUNCTION_LIST_PTR fl;
	char *common, *dll;
	CK_SLOT_ID slot;
	int has_slot, root_list;
} found_module;

/* The name Firefox gives its roots module, wherever it came from
 * (security/manager/ssl/nsNSSComponent.cpp kRootModuleName). */
#define ROOT_MODULE_NAME "Builtin Roots Module"

/* Walks NSS's module list under its read lock for the roots module: the
 * module holding a root-list token, or else the one Firefox named as its
 * roots module (a module that serves no root list, such as a closed view,
 * is still what the browser uses). */
static int
find_roots_module (found_module *found)
{
	void *nss = dlopen ("libnss3.so", RTLD_NOW | RTLD_NOLOAD);
	if (nss == NULL)
		return 0;
	get_list_fn get_list = (get_list_fn)dlsym (nss, "SECMOD_GetDefaultModuleList");
	get_lock_fn get_lock = (get_lock_fn)dlsym (nss, "SECMOD_GetDefaultModuleListLock");
	rw_lock_fn rlock = (rw_lock_fn)dlsym (nss, "SECMOD_GetReadLock");
	rw_lock_fn runlock = (rw_lock_fn)dlsym (nss, "SECMOD_ReleaseReadLock");
	int got = 0;
	if (get_list && get_lock && rlock && runlock) {
		CK_FUNCTION_LIST_PTR fls[32];
		char *common[32], *dll[32];
		int n = 0;
		void *lock = get_lock ();
		if (lock != NULL) {
			rlock (lock);
			for (ModuleList *l = get_list (); l != NULL && n < 32; l = l->next) {
				ModuleHead *m = l->module;
				if (m == NULL || m->functionList == NULL || m->functionList == &probe_functions)
					continue;
				fls[n] = m->functionList;
				common[n] = m->commonName ? strdup (m->commonName) : NULL;
				dll[n] = m->dllName ? strdup (m->dllName) : NULL;
				n++;
			}
			runlock (lock);
		}
		/* The first module with a root list, else the first named one; r
		 * is what root_slot said of it. */
		int pick = -1, r = -1;
		CK_SLOT_ID slot = 0;
		for (int i = 0; i < n && r != 1; i++) {
			if (!plausible (fls[i]))
				continue;
			CK_SLOT_ID s = 0;
			int ri = root_slot (fls[i], &s);
			if (ri == 1 || (pick < 0 && common[i] != NULL && strcmp (common[i], ROOT_MODULE_NAME) == 0)) {
				pick = i;
				r = ri;
				slot = s;
			}
		}
		if (pick >= 0) {
			*found = (found_module){ .fl = fls[pick], .common = common[pick], .dll = dll[pick],
			                         .slot = slot, .has_slot = r >= 0, .root_list = r == 1 };
			common[pick] = dll[pick] = NULL;
			got = 1;
		}
		for (int i = 0; i < n; i++) {
			free (common[i]);
			free (dll[i]);
		}
	}
	dlclose (nss);
	return got;
}

/* Whether an answer means "this object has no such attribute" (anything
 * else is an error: a dump that quietly lost, say, a distrust-after date
 * would make the fenced token trust more than the browser does). */
static int
absent (CK_RV rv)
{
	return rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE;
}

/* 0, or -1 when an attribute could not be read. */
static int
dump_object (FILE *f, CK_FUNCTION_LIST_PTR fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_SLOT_ID slot)
{
	fprintf (f, "object %lu\n", (unsigned long)slot);
	for (size_t i = 0; i < sizeof probe_attrs / sizeof probe_attrs[0]; i++) {
		CK_ATTRIBUTE a = { probe_attrs[i], NULL, 0 };
		CK_RV rv = fl->C_GetAttributeValue (s, h, &a, 1);
		if (absent (rv))
			continue;
		if (rv != CKR_OK || a.ulValueLen == (CK_ULONG)-1 || a.ulValueLen > PROBE_MAX_VALUE)
			return -1;
		CK_ULONG size = a.ulValueLen;
		unsigned char *v = malloc (size ? size : 1);
		if (v == NULL)
			return -1;
		a.pValue = v;
		rv = fl->C_GetAttributeValue (s, h, &a, 1);
		/* A length past the buffer (what a module needed, not what it wrote) would read past it. */
		if (rv != CKR_OK || a.ulValueLen > size) {
			free (v);
			return -1;
		}
		char key[32];
		snprintf (key, sizeof key, "attr %lx", (unsigned long)a.type);
		put_raw (f, key, v, a.ulValueLen);
		free (v);
	}
	return 0;
}

/* Every object of the root slot, found class by class; an object found
 * twice (a module that ignores the class) is written once. */
static int
dump_token (FILE *f, CK_FUNCTION_LIST_PTR fl, CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE s;
	static CK_OBJECT_HANDLE seen[PROBE_MAX_OBJECTS];
	size_t nseen = 0;
	if (fl->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return -1;
	for (size_t c = 0; c < sizeof probe_classes / sizeof probe_classes[0]; c++) {
		CK_OBJECT_CLASS cls = probe_classes[c];
		CK_ATTRIBUTE t = { CKA_CLASS, &cls, sizeof cls };
		CK_RV rv = fl->C_FindObjectsInit (s, &t, 1);
		/* A class the module does not know may be refused as a value; any
		 * other failure loses objects and fails the dump. */
		if (rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_TEMPLATE_INCONSISTENT)
			continue;
		if (rv != CKR_OK)
			goto fail;
		size_t first = nseen;
		for (;;) {
			CK_OBJECT_HANDLE page[64];
			CK_ULONG n = 0;
			if (fl->C_FindObjects (s, page, 64, &n) != CKR_OK) {
				fl->C_FindObjectsFinal (s);
				goto fail;
			}
			if (n == 0)
				break;
			for (CK_ULONG i = 0; i < n && nseen < PROBE_MAX_OBJECTS; i++) {
				int dup = 0;
				for (size_t j = 0; j < nseen && !dup; j++)
					dup = seen[j] == page[i];
				if (!dup)
					seen[nseen++] = page[i];
			}
		}
		fl->C_FindObjectsFinal (s);
		for (size_t i = first; i < nseen; i++)
			if (dump_object (f, fl, s, seen[i], slot) < 0)
				goto fail;
	}
	fl->C_CloseSession (s);
	return nseen >= PROBE_MAX_OBJECTS ? -1 : 0;
fail:
	fl->C_CloseSession (s);
	return -1;
}

/* What the module says about itself, its slot and token: readable fields,
 * and each structure whole (zeroed first, so padding is zero) for a token
 * that answers the same. */
static void
put_info (FILE *f, CK_FUNCTION_LIST_PTR fl, CK_SLOT_ID slot, int has_slot)
{
	CK_INFO info;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	memset (&info, 0, sizeof info);
	memset (&si, 0, sizeof si);
	memset (&ti, 0, sizeof ti);
	if (fl->C_GetInfo (&info) == CKR_OK) {
		put_raw (f, "info-raw", &info, sizeof info);
		put_field (f, "manufacturer", (char *)info.manufacturerID, sizeof info.manufacturerID);
		put_field (f, "description", (char *)info.libraryDescription, sizeof info.libraryDescription);
		fprintf (f, "version %u.%u library %u.%u\n", info.cryptokiVersion.major, info.cryptokiVersion.minor,
		         info.libraryVersion.major, info.libraryVersion.minor);
	}
	if (!has_slot)
		return;
	fprintf (f, "slot %lu\n", (unsigned long)slot);
	if (fl->C_GetSlotInfo (slot, &si) == CKR_OK) {
		put_raw (f, "slot-info-raw", &si, sizeof si);
		put_field (f, "slot-description", (char *)si.slotDescription, sizeof si.slotDescription);
		put_field (f, "slot-manufacturer", (char *)si.manufacturerID, sizeof si.manufacturerID);
	}
	if (fl->C_GetTokenInfo (slot, &ti) == CKR_OK) {
		put_raw (f, "token-info-raw", &ti, sizeof ti);
		put_field (f, "token-label", (char *)ti.label, sizeof ti.label);
		put_field (f, "token-manufacturer", (char *)ti.manufacturerID, sizeof ti.manufacturerID);
		put_field (f, "token-model", (char *)ti.model, sizeof ti.model);
	}
}

static void
write_result (const found_module *m, const char *error)
{
	size_t n = strlen (probe_out) + 16;
	char *tmp = malloc (n);
	if (tmp == NULL)
		return;
	snprintf (tmp, n, "%s.tmp", probe_out);
	int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen (fd, "w") : NULL;
	if (f == NULL) {
		if (fd >= 0)
			close (fd);
		free (tmp);
		return;
	}
	fprintf (f, "%s\n", PROBE_VERSION);
	int ok = error == NULL;
	if (ok) {
		put_string (f, "module", m->common);
		put_string (f, "dll", m->dll);
		put_string (f, "functions-in", owner_of ((void *)m->fl->C_GetInfo));
		fprintf (f, "root-list %s\n", m->root_list ? "yes" : "no");
		put_info (f, m->fl, m->slot, m->has_slot);
		if (m->has_slot && dump_token (f, m->fl, m->slot) < 0) {
			ok = 0;
			error = "cannot read the roots token completely (a search or an attribute failed, or it holds too many objects)";
		}
	}
	if (!ok)
		put_string (f, "error", error);
	else
		fprintf (f, "end\n");
	int bad = fflush (f) != 0 || fsync (fileno (f)) != 0;
	bad |= fclose (f) != 0;
	if (!bad)
		rename (tmp, probe_out);
	else
		unlink (tmp);
	free (tmp);
}

static void *
probe_main (void *arg)
{
	long deadline = now_ms () + PROBE_WAIT_MS;
	found_module m = { 0 };
	while (!probe_stop) {
		/* Once the result is written the browser has done its part: it
		 * ends here, so it never outlives the probe even when whoever
		 * started it is gone (a rebuild killed at its time limit). */
		if (find_roots_module (&m)) {
			write_result (&m, NULL);
			_exit (0);
		}
		if (now_ms () > deadline) {
			write_result (NULL, "no roots module appeared in NSS's module list");
			_exit (1);
		}
		struct timespec pause = { 0, 5 * 1000000L };
		nanosleep (&pause, NULL);
	}
	return NULL;
}

static CK_RV
probe_C_Initialize (CK_VOID_PTR init_args)
{
	CK_C_INITIALIZE_ARGS_PTR args = init_args;
	if (probe_started)
		return CKR_CRYPTOKI_ALREADY_INITIALIZED;
	const char *out = args ? (const char *)args->pReserved : NULL;
	if (out == NULL || out[0] != '/')
		return CKR_ARGUMENTS_BAD;
	free (probe_out);
	probe_out = strdup (out);
	if (probe_out == NULL)
		return CKR_HOST_MEMORY;
	probe_stop = 0;
	if (pthread_create (&probe_thread, NULL, probe_main, NULL) != 0)
		return CKR_GENERAL_ERROR;
	probe_started = 1;
	return CKR_OK;
}

static CK_RV
probe_C_Finalize (CK_VOID_PTR reserved)
{
	if (!probe_started)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	probe_stop = 1;
	pthread_join (probe_thread, NULL);
	probe_started = 0;
	return CKR_OK;
}

static CK_RV
probe_C_GetInfo (CK_INFO_PTR info)
{
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	memset (info, ' ', sizeof *info);
	info->cryptokiVersion.major = 2;
	info->cryptokiVersion.minor = 40;
	memcpy (info->manufacturerID, "ncfence", 7);
	info->flags = 0;
	memcpy (info->libraryDescription, "ncfence roots probe", 19);
	info->libraryVersion.major = 1;
	info->libraryVersion.minor = 0;
	return CKR_OK;
}

static CK_RV
probe_C_GetSlotList (CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	*count = 0;
	return CKR_OK;
}

static CK_RV
probe_C_WaitForSlotEvent (CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved)
{
	return CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV
probe_C_CloseAllSessions (CK_SLOT_ID slot)
{
	return CKR_SLOT_ID_INVALID;
}

static CK_RV
probe_C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = &probe_functions;
	return CKR_OK;
}

__attribute__ ((visibility ("default"))) CK_RV
C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list)
{
	probe_functions.version.major = 2;
	probe_functions.version.minor = 40;
	probe_functions.C_Initialize = probe_C_Initialize;
	probe_functions.C_Finalize = probe_C_Finalize;
	probe_functions.C_GetInfo = probe_C_GetInfo;
	probe_functions.C_GetFunctionList = probe_C_GetFunctionList;
	probe_functions.C_GetSlotList = probe_C_GetSlotList;
	probe_functions.C_WaitForSlotEvent = probe_C_WaitForSlotEvent;
	probe_functions.C_CloseAllSessions = probe_C_CloseAllSessions;
	return probe_C_GetFunctionList (list);
}
