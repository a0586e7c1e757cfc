/* Native PKCS#11 harness: dlopens a module and drives it through the C ABI.
 *
 *   harness conformance MODULE   spec checks on every object (run on the
 *                                plain upstream and through ncfence)
 *   harness stress MODULE T N    T threads, N rounds each of open/find/read/close
 *   harness cycles MODULE N      N C_Initialize/C_Finalize cycles
 *   harness livestart MODULE T   T threads search a Namecoin name at once
 *                                while no service listens (the test counts
 *                                how often service-command ran)
 *   harness livestress MODULE T N  T threads, N live lookups each, against
 *                                the test's fake service (more than the
 *                                cache holds), reading their own and each
 *                                other's handles while entries are evicted
 *   harness livehostile MODULE T N R  R rounds of: C_Initialize, T threads
 *                                searching N distinct Namecoin names each
 *                                (and some twice) against whatever the test
 *                                put behind the socket, C_Finalize with
 *                                questions still in flight; no live object,
 *                                and no descriptor left open
 *   harness livefork MODULE      a question in flight when the process
 *                                forks: the child asks its own, and the
 *                                parent still gets its answer
 *
 * $HARNESS_PARAMS is passed as pReserved (p11-kit-trust's paths=...).
 * Prints "N passed, M failed" and exits non-zero on any failure. */
#define _GNU_SOURCE 1
#include <p11-kit/pkcs11.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static CK_FUNCTION_LIST_PTR fl;
static int passed, failed;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond, ...)                                                \
	do {                                                            \
		pthread_mutex_lock (&count_lock);                       \
		if (cond) {                                             \
			passed++;                                       \
		} else {                                                \
			failed++;                                       \
			fprintf (stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf (stderr, __VA_ARGS__);                  \
			fprintf (stderr, "\n");                         \
		}                                                       \
		pthread_mutex_unlock (&count_lock);                     \
	} while (0)

static void
load (const char *path)
{
	void *dl = dlopen (path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		fprintf (stderr, "cannot load %s: %s\n", path, dlerror ());
		exit (2);
	}
	CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym (dl, "C_GetFunctionList");
	if (get == NULL || get (&fl) != CKR_OK) {
		fprintf (stderr, "%s: no function list\n", path);
		exit (2);
	}
}

static CK_RV
init (void)
{
	CK_C_INITIALIZE_ARGS args = { 0 };
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = getenv ("HARNESS_PARAMS");
	return fl->C_Initialize (&args);
}

static CK_RV mutex_create (CK_VOID_PTR_PTR m) { *m = malloc (1); return *m ? CKR_OK : CKR_HOST_MEMORY; }
static CK_RV mutex_destroy (CK_VOID_PTR m) { free (m); return CKR_OK; }
static CK_RV mutex_noop (CK_VOID_PTR m) { (void)m; return CKR_OK; }

/* Objects with the top bit set in the first slot: the view's, so zero means
 * the module went closed (upstream refused or the view was not loaded). */
static CK_ULONG
view_objects (void)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16, got, count = 0;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE page[64];
	if (fl->C_GetSlotList (CK_TRUE, slots, &n) != CKR_OK || n == 0 ||
	    fl->C_OpenSession (slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
		return 0;
	if (fl->C_FindObjectsInit (s, NULL, 0) == CKR_OK) {
		while (fl->C_FindObjects (s, page, 64, &got) == CKR_OK && got > 0)
			for (CK_ULONG i = 0; i < got; i++)
				count += page[i] >> 63;
		fl->C_FindObjectsFinal (s);
	}
	fl->C_CloseSession (s);
	return count;
}

/* C_Initialize's locking cases (PKCS#11 2.40 5.4); each leaves the module
 * uninitialized, or checks that the view is served (upstream accepted the
 * arguments ncfence passed on) and finalizes again. */
static void
check_init_args (void)
{
	CK_ULONG n;
	CK_C_INITIALIZE_ARGS a = { 0 };
	a.pReserved = getenv ("HARNESS_PARAMS");
	a.CreateMutex = mutex_create;
	CHECK (fl->C_Initialize (&a) == CKR_ARGUMENTS_BAD, "C_Initialize with one of the four mutex callbacks");
	a.DestroyMutex = mutex_destroy;
	a.LockMutex = mutex_noop;
	a.UnlockMutex = mutex_noop;
	CHECK (fl->C_Initialize (&a) == CKR_CANT_LOCK, "C_Initialize with callbacks, no CKF_OS_LOCKING_OK");
	CHECK (fl->C_GetSlotList (CK_TRUE, NULL, &n) == CKR_CRYPTOKI_NOT_INITIALIZED, "refused C_Initialize left the module initialized");
	a.flags = CKF_OS_LOCKING_OK;
	CHECK (fl->C_Initialize (&a) == CKR_OK, "C_Initialize with callbacks and CKF_OS_LOCKING_OK");
	CHECK (view_objects () > 0, "no view objects after C_Initialize with callbacks and CKF_OS_LOCKING_OK");
	CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
	/* Single-threaded use: no callbacks and no flag, with and without an
	 * argument structure. p11-kit-trust refuses a structure without
	 * CKF_OS_LOCKING_OK, so what ncfence passes on must still work. */
	CK_C_INITIALIZE_ARGS single = { 0 };
	single.pReserved = getenv ("HARNESS_PARAMS");
	CHECK (fl->C_Initialize (&single) == CKR_OK, "C_Initialize without callbacks or flags");
	CHECK (view_objects () > 0, "no view objects after C_Initialize without callbacks or flags");
	CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
	if (getenv ("HARNESS_PARAMS") == NULL) {
		CHECK (fl->C_Initialize (NULL) == CKR_OK, "C_Initialize(NULL)");
		CHECK (view_objects () > 0, "no view objects after C_Initialize(NULL)");
		CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
	}
}

static CK_SLOT_ID
first_slot (void)
{
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	CK_RV rv = fl->C_GetSlotList (CK_TRUE, slots, &n);
	CHECK (rv == CKR_OK && n >= 1, "C_GetSlotList rv=0x%lx n=%lu", rv, n);
	return n >= 1 ? slots[0] : 0;
}

/* All handles matching tmpl, paged by `page`. Caller frees. */
static CK_OBJECT_HANDLE *
find_all (CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG count, CK_ULONG page, CK_ULONG *n)
{
	CK_ULONG cap = 64, got;
	CK_OBJECT_HANDLE *out = malloc (cap * sizeof *out);
	CK_OBJECT_HANDLE buf[4096];
	*n = 0;
	CK_RV rv = fl->C_FindObjectsInit (s, tmpl, count);
	CHECK (rv == CKR_OK, "C_FindObjectsInit rv=0x%lx", rv);
	if (rv != CKR_OK)
		return out;
	do {
		rv = fl->C_FindObjects (s, buf, page, &got);
		CHECK (rv == CKR_OK && got <= page, "C_FindObjects rv=0x%lx got=%lu page=%lu", rv, got, page);
		if (rv != CKR_OK)
			break;
		for (CK_ULONG i = 0; i < got; i++) {
			if (*n == cap)
				out = realloc (out, (cap *= 2) * sizeof *out);
			out[(*n)++] = buf[i];
		}
	} while (got > 0);
	rv = fl->C_FindObjectsFinal (s);
	CHECK (rv == CKR_OK, "C_FindObjectsFinal rv=0x%lx", rv);
	return out;
}

static int
cmp_handle (const void *a, const void *b)
{
	CK_OBJECT_HANDLE x = *(const CK_OBJECT_HANDLE *)a, y = *(const CK_OBJECT_HANDLE *)b;
	return x < y ? -1 : x > y;
}

static void
check_table (void)
{
	void **p = (void **)&fl->C_Initialize;
	size_t n = (sizeof *fl - sizeof fl->version) / sizeof (void *);
	for (size_t i = 0; i < n; i++)
		CHECK (p[i] != NULL, "function table entry %zu is NULL", i);
	CHECK (fl->version.major == 2, "function list version %d.%d", fl->version.major, fl->version.minor);
}

static void
check_object (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_OBJECT_CLASS cls = 0;
	CK_ATTRIBUTE a = { CKA_CLASS, &cls, sizeof cls };
	CK_RV rv = fl->C_GetAttributeValue (s, h, &a, 1);
	CHECK (rv == CKR_OK && a.ulValueLen == sizeof cls, "CLASS of %lu rv=0x%lx", h, rv);
	/* An attribute no object has: TYPE_INVALID with unavailable length, others still answered. */
	unsigned char lbl[512];
	CK_ATTRIBUTE two[2] = { { 0x7fff1234UL, lbl, sizeof lbl }, { CKA_CLASS, &cls, sizeof cls } };
	rv = fl->C_GetAttributeValue (s, h, two, 2);
	CHECK (rv == CKR_ATTRIBUTE_TYPE_INVALID && two[0].ulValueLen == CK_UNAVAILABLE_INFORMATION &&
	       two[1].ulValueLen == sizeof cls, "bogus attribute on %lu rv=0x%lx len=%ld", h, rv, (long)two[0].ulValueLen);
	if (cls != CKO_CERTIFICATE)
		return;
	/* Size query, then too small, then exact. */
	CK_ATTRIBUTE v = { CKA_VALUE, NULL, 0 };
	rv = fl->C_GetAttributeValue (s, h, &v, 1);
	CHECK (rv == CKR_OK && v.ulValueLen > 0 && v.ulValueLen < 65536, "VALUE size of %lu rv=0x%lx", h, rv);
	if (rv != CKR_OK || v.ulValueLen == 0 || v.ulValueLen >= 65536)
		return;
	CK_ULONG len = v.ulValueLen;
	unsigned char *buf = malloc (len);
	v.pValue = buf;
	v.ulValueLen = len - 1;
	rv = fl->C_GetAttributeValue (s, h, &v, 1);
	/* PKCS#11 2.40 says CK_UNAVAILABLE_INFORMATION; p11-kit reports the
	 * needed length and NSS's CKBI leaves the given length. ncfence forwards
	 * upstream objects' answers unchanged, so only its own (synthetic,
	 * top-bit) objects are held to the letter. */
	int synthetic = (h >> 63) != 0;
	CHECK (rv == CKR_BUFFER_TOO_SMALL && (!synthetic || v.ulValueLen == CK_UNAVAILABLE_INFORMATION),
	       "short VALUE of %lu rv=0x%lx len=%ld want=%lu", h, rv, (long)v.ulValueLen, len);
	v.ulValueLen = len;
	rv = fl->C_GetAttributeValue (s, h, &v, 1);
	CHECK (rv == CKR_OK && v.ulValueLen == len && buf[0] == 0x30, "VALUE of %lu rv=0x%lx", h, rv);
	/* Finding it again by its own subject and class returns it. */
	unsigned char subj[4096];
	CK_ATTRIBUTE sa = { CKA_SUBJECT, subj, sizeof subj };
	if (fl->C_GetAttributeValue (s, h, &sa, 1) == CKR_OK) {
		CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof cls }, { CKA_SUBJECT, subj, sa.ulValueLen } };
		CK_ULONG n;
		CK_OBJECT_HANDLE *found = find_all (s, t, 2, 3, &n);
		int seen = 0;
		for (CK_ULONG i = 0; i < n; i++)
			seen |= found[i] == h;
		CHECK (seen, "object %lu not found by its own subject", h);
		free (found);
	}
	free (buf);
}

static int
conformance (void)
{
	CK_SESSION_HANDLE s;
	CK_ULONG n, n1;
	CK_RV rv;

	check_table ();
	CHECK (fl->C_GetSlotList (CK_TRUE, NULL, &n) == CKR_CRYPTOKI_NOT_INITIALIZED, "GetSlotList before Initialize");
	check_init_args ();
	CHECK ((rv = init ()) == CKR_OK, "C_Initialize rv=0x%lx", rv);
	CHECK (init () == CKR_CRYPTOKI_ALREADY_INITIALIZED, "second C_Initialize");
	CK_INFO info;
	CHECK (fl->C_GetInfo (&info) == CKR_OK, "C_GetInfo");
	CHECK (fl->C_GetInfo (NULL) == CKR_ARGUMENTS_BAD, "C_GetInfo(NULL)");
	CK_SLOT_ID slot = first_slot ();
	CK_TOKEN_INFO ti;
	CHECK (fl->C_GetTokenInfo (slot, &ti) == CKR_OK, "C_GetTokenInfo");
	CHECK ((rv = fl->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) == CKR_OK, "C_OpenSession rv=0x%lx", rv);
	CK_OBJECT_HANDLE out[4];
	CHECK (fl->C_FindObjects (s, out, 4, &n) == CKR_OPERATION_NOT_INITIALIZED, "FindObjects before Init");
	CHECK (fl->C_FindObjectsInit (0xdeadbeefUL, NULL, 0) == CKR_SESSION_HANDLE_INVALID, "FindObjectsInit bad session");

	/* Every page size gives the same set; the empty template matches everything. */
	CK_OBJECT_HANDLE *all = find_all (s, NULL, 0, 4096, &n);
	CHECK (n > 0, "empty template found nothing");
	qsort (all, n, sizeof *all, cmp_handle);
	for (CK_ULONG i = 1; i < n; i++)
		CHECK (all[i] != all[i - 1], "handle %lu returned twice", all[i]);
	static const CK_ULONG pages[] = { 1, 2, 7, 64 };
	for (size_t p = 0; p < sizeof pages / sizeof pages[0]; p++) {
		CK_OBJECT_HANDLE *again = find_all (s, NULL, 0, pages[p], &n1);
		qsort (again, n1, sizeof *again, cmp_handle);
		CHECK (n1 == n && memcmp (again, all, n * sizeof *all) == 0, "page size %lu changed the result", pages[p]);
		free (again);
	}
	CHECK (fl->C_FindObjectsInit (s, NULL, 0) == CKR_OK, "FindObjectsInit");
	CHECK (fl->C_FindObjectsInit (s, NULL, 0) == CKR_OPERATION_ACTIVE, "second FindObjectsInit");
	CHECK (fl->C_FindObjectsFinal (s) == CKR_OK, "FindObjectsFinal");
	CHECK (fl->C_FindObjectsFinal (s) == CKR_OPERATION_NOT_INITIALIZED, "second FindObjectsFinal");

	for (CK_ULONG i = 0; i < n; i++)
		check_object (s, all[i]);
	CK_OBJECT_CLASS cls;
	CK_ATTRIBUTE a = { CKA_CLASS, &cls, sizeof cls };
	CHECK (fl->C_GetAttributeValue (s, 0x7ffffff1UL, &a, 1) == CKR_OBJECT_HANDLE_INVALID, "bad object handle");
	CHECK (fl->C_GetAttributeValue (s, ((CK_OBJECT_HANDLE)1 << 63) | 0x7ffffff1UL, &a, 1) == CKR_OBJECT_HANDLE_INVALID, "bad synthetic handle");
	CHECK (fl->C_GetAttributeValue (s, all[0], NULL, 1) == CKR_ARGUMENTS_BAD, "NULL template");
	free (all);

	/* A visible trust record (a distrust record: NSS's DigiNotar one over
	 * the CKBI) read into a buffer too small for its CK_ULONG stays a
	 * plain CKR_BUFFER_TOO_SMALL, and the record stays visible: ncfence's
	 * check of trust answers must not take the short buffer for a
	 * malformed value (review found it hid the record). */
	CK_OBJECT_CLASS trust_cls = 0xce534353UL; /* CKO_NSS_TRUST */
	CK_ATTRIBUTE tt = { CKA_CLASS, &trust_cls, sizeof trust_cls };
	CK_ULONG ntrust, ntrust_after;
	CK_OBJECT_HANDLE *trust = find_all (s, &tt, 1, 64, &ntrust);
	for (CK_ULONG i = 0; i < ntrust; i++) {
		if (trust[i] >> 63)
			continue; /* the view's own records */
		unsigned char small[4];
		CK_ULONG big = 0;
		CK_ATTRIBUTE a = { 0xce536358UL /* CKA_TRUST_SERVER_AUTH */, small, sizeof small };
		rv = fl->C_GetAttributeValue (s, trust[i], &a, 1);
		CHECK (rv == CKR_BUFFER_TOO_SMALL, "visible trust record into a 4-byte buffer: rv=0x%lx", rv);
		a = (CK_ATTRIBUTE){ 0xce536358UL, &big, sizeof big };
		rv = fl->C_GetAttributeValue (s, trust[i], &a, 1);
		CHECK (rv == CKR_OK || rv == CKR_ATTRIBUTE_TYPE_INVALID, "visible trust record re-read: rv=0x%lx", rv);
	}
	free (find_all (s, &tt, 1, 64, &ntrust_after));
	CHECK (ntrust_after == ntrust, "trust records before and after short reads: %lu, %lu", ntrust, ntrust_after);
	free (trust);
	CHECK (fl->C_CloseSession (s) == CKR_OK, "C_CloseSession");
	CHECK (fl->C_CloseSession (s) == CKR_SESSION_HANDLE_INVALID, "second C_CloseSession");
	CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
	CHECK (fl->C_Finalize (NULL) == CKR_CRYPTOKI_NOT_INITIALIZED, "second C_Finalize");
	return 0;
}

struct stress_arg {
	CK_SLOT_ID slot;
	int rounds;
};

static void *
stress_thread (void *p)
{
	struct stress_arg *arg = p;
	for (int r = 0; r < arg->rounds; r++) {
		CK_SESSION_HANDLE s;
		CK_RV rv = fl->C_OpenSession (arg->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
		CHECK (rv == CKR_OK, "stress OpenSession rv=0x%lx", rv);
		if (rv != CKR_OK)
			continue;
		CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
		CK_ATTRIBUTE t = { CKA_CLASS, &cls, sizeof cls };
		CK_ULONG n;
		CK_OBJECT_HANDLE *found = find_all (s, &t, 1, 1 + (CK_ULONG)(r % 17), &n);
		for (CK_ULONG i = 0; i < n && i < 8; i++) {
			unsigned char subj[4096];
			CK_ATTRIBUTE sa = { CKA_SUBJECT, subj, sizeof subj };
			rv = fl->C_GetAttributeValue (s, found[(i * 31 + (CK_ULONG)r) % n], &sa, 1);
			CHECK (rv == CKR_OK, "stress GetAttributeValue rv=0x%lx", rv);
		}
		free (found);
		CHECK (fl->C_CloseSession (s) == CKR_OK, "stress CloseSession");
	}
	return NULL;
}

static int
stress (int threads, int rounds)
{
	pthread_t tid[64];
	struct stress_arg arg;
	CHECK (init () == CKR_OK, "C_Initialize");
	arg.slot = first_slot ();
	arg.rounds = rounds;
	if (threads > 64)
		threads = 64;
	for (int i = 0; i < threads; i++)
		pthread_create (&tid[i], NULL, stress_thread, &arg);
	for (int i = 0; i < threads; i++)
		pthread_join (tid[i], NULL);
	CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
	return 0;
}

static int
cycles (int count)
{
	for (int i = 0; i < count; i++) {
		CK_RV rv = init ();
		CHECK (rv == CKR_OK, "cycle %d C_Initialize rv=0x%lx", i, rv);
		CK_SESSION_HANDLE s;
		if (i % 10 == 0 && fl->C_OpenSession (first_slot (), CKF_SERIAL_SESSION, NULL, NULL, &s) == CKR_OK) {
			CK_ULONG n;
			free (find_all (s, NULL, 0, 16, &n));
			/* left open on purpose: C_Finalize must release it */
		}
		rv = fl->C_Finalize (NULL);
		CHECK (rv == CKR_OK, "cycle %d C_Finalize rv=0x%lx", i, rv);
	}
	return 0;
}

/* ---- live .bit objects (addon/live.c), against test/helpers/fakeService.ts ---- */

#define LIVE_MARKER "Namecoin TLS Certificate"

static int
is_live (CK_OBJECT_HANDLE h)
{
	return (h >> 62) == 3; /* NF_LIVE_BASE: the top two bits */
}

static pthread_barrier_t live_barrier;

static void *
livestart_thread (void *p)
{
	CK_SLOT_ID slot = *(CK_SLOT_ID *)p;
	CK_SESSION_HANDLE s;
	CK_RV rv = fl->C_OpenSession (slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	CHECK (rv == CKR_OK, "livestart OpenSession rv=0x%lx", rv);
	static const char name[] = LIVE_MARKER "|down|start";
	CK_ATTRIBUTE t = { CKA_SUBJECT, (void *)name, sizeof name - 1 };
	pthread_barrier_wait (&live_barrier);
	if (rv != CKR_OK)
		return NULL;
	CK_ULONG n, live = 0;
	CK_OBJECT_HANDLE *found = find_all (s, &t, 1, 64, &n);
	for (CK_ULONG i = 0; i < n; i++)
		live += is_live (found[i]);
	CHECK (live == 0, "livestart: %lu live objects with no service", live);
	free (found);
	CHECK (fl->C_CloseSession (s) == CKR_OK, "livestart CloseSession");
	return NULL;
}

/* Threads that find nothing listening at the same moment: the test checks
 * that service-command ran once (and ThreadSanitizer that the decision is
 * not a data race). */
static int
livestart (int threads)
{
	pthread_t tid[64];
	if (threads > 64)
		threads = 64;
	CHECK (init () == CKR_OK, "C_Initialize");
	CK_SLOT_ID slot = first_slot ();
	pthread_barrier_init (&live_barrier, NULL, (unsigned)threads);
	for (int i = 0; i < threads; i++)
		pthread_create (&tid[i], NULL, livestart_thread, &slot);
	for (int i = 0; i < threads; i++)
		pthread_join (tid[i], NULL);
	pthread_barrier_destroy (&live_barrier);
	CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
	return 0;
}

static void
sleep_ms (long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep (&ts, NULL);
}

/* Live objects a search by tmpl finds, searching again while there are
 * none: the module waits for the service only within its budget, and a
 * search that comes back empty leaves the question in flight; the same
 * search a moment later finds its answer (as a reload does). Gives up
 * after about 5 s. *last is the last live handle found. */
static CK_ULONG
live_find (CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG count, CK_OBJECT_HANDLE *last)
{
	for (int attempt = 0; attempt < 2500; attempt++) {
		CK_ULONG n, live = 0;
		CK_OBJECT_HANDLE *found = find_all (s, tmpl, count, 8, &n);
		for (CK_ULONG i = 0; i < n; i++)
			if (is_live (found[i]))
				live++, *last = found[i];
		free (found);
		if (live > 0)
			return live;
		sleep_ms (2);
	}
	return 0;
}

/* Every handle any thread was given, for every thread to read back (the
 * early ones are evicted as the run goes on). */
#define LIVE_RING 4096
static struct {
	CK_OBJECT_HANDLE h;
	char id[32];
} live_ring[LIVE_RING];
static unsigned live_ring_next;
static pthread_mutex_t live_ring_lock = PTHREAD_MUTEX_INITIALIZER;

/* Reads h's CKA_LABEL ("<id>#<n>") and CKA_SUBJECT ("<marker>|<mode>|<id>")
 * in one call. 1 read and consistent (and the id is `want` when given), 0
 * CKR_OBJECT_HANDLE_INVALID (evicted or replaced), -1 anything else: an
 * error, or a handle that reads as another object. */
static int
live_check (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, const char *want)
{
	char label[64] = { 0 }, subject[128] = { 0 };
	CK_ATTRIBUTE a[2] = { { CKA_LABEL, label, sizeof label - 1 }, { CKA_SUBJECT, subject, sizeof subject - 1 } };
	CK_RV rv = fl->C_GetAttributeValue (s, h, a, 2);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		return 0;
	if (rv != CKR_OK)
		return -1;
	label[a[0].ulValueLen] = subject[a[1].ulValueLen] = 0;
	const char *id = strrchr (subject, '|');
	char *hash = strchr (label, '#');
	if (id == NULL || hash == NULL)
		return -1;
	*hash = 0;
	if (strcmp (id + 1, label) != 0 || (want != NULL && strcmp (label, want) != 0))
		return -1;
	return 1;
}

struct livestress_arg {
	CK_SLOT_ID slot;
	int thread, rounds;
	int own_ok, ring_ok, invalid; /* counts, for the report */
};

static void *
livestress_thread (void *p)
{
	struct livestress_arg *arg = p;
	CK_SESSION_HANDLE s;
	CK_RV rv = fl->C_OpenSession (arg->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	CHECK (rv == CKR_OK, "livestress OpenSession rv=0x%lx", rv);
	if (rv != CKR_OK)
		return NULL;
	unsigned seed = (unsigned)arg->thread * 7919u + 1;
	for (int r = 0; r < arg->rounds; r++) {
		/* Mostly answers that expire at once (evicted first), some that stay. */
		char id[32], name[96];
		snprintf (id, sizeof id, "t%dr%d", arg->thread, r);
		snprintf (name, sizeof name, LIVE_MARKER "|%s|%s", r % 20 == 0 ? "ok" : "ok0", id);
		CK_ATTRIBUTE t = { CKA_SUBJECT, name, strlen (name) };
		CK_OBJECT_HANDLE mine = 0;
		CK_ULONG live = live_find (s, &t, 1, &mine);
		CHECK (live == 1, "livestress %s: %lu live objects", id, live);
		if (live == 1) {
			int c = live_check (s, mine, id);
			CHECK (c >= 0, "livestress: own handle of %s reads as another object or fails", id);
			arg->own_ok += c == 1;
			pthread_mutex_lock (&live_ring_lock);
				unsigned k = live_ring_next++ % LIVE_RING;
				live_ring[k].h = mine;
				memcpy (live_ring[k].id, id, sizeof id);
			pthread_mutex_unlock (&live_ring_lock);
		}
		/* Someone's handle from earlier: its own object, or invalid. */
		pthread_mutex_lock (&live_ring_lock);
			unsigned filled = live_ring_next < LIVE_RING ? live_ring_next : LIVE_RING;
			unsigned k = filled ? rand_r (&seed) % filled : 0;
			CK_OBJECT_HANDLE old = live_ring[k].h;
			char want[32];
			memcpy (want, live_ring[k].id, sizeof want);
		pthread_mutex_unlock (&live_ring_lock);
		if (filled) {
			int c = live_check (s, old, want);
			CHECK (c >= 0, "livestress: handle of %s reads as another object or fails", want);
			arg->ring_ok += c == 1;
			arg->invalid += c == 0;
		}
		/* Now and then an enumeration: answered from the cache, under eviction. */
		if (r % 25 == 0) {
			CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
			CK_ATTRIBUTE ct = { CKA_CLASS, &cls, sizeof cls };
			CK_ULONG n;
			CK_OBJECT_HANDLE *all = find_all (s, &ct, 1, 64, &n);
			for (CK_ULONG i = 0; i < n; i++)
				if (is_live (all[i]))
					CHECK (live_check (s, all[i], NULL) >= 0, "livestress: enumerated live handle reads as another object or fails");
			free (all);
		}
	}
	CHECK (fl->C_CloseSession (s) == CKR_OK, "livestress CloseSession");
	return NULL;
}

static int
livestress (int threads, int rounds)
{
	pthread_t tid[64];
	struct livestress_arg args[64];
	if (threads > 64)
		threads = 64;
	CHECK (init () == CKR_OK, "C_Initialize");
	CK_SLOT_ID slot = first_slot ();
	for (int i = 0; i < threads; i++) {
		args[i] = (struct livestress_arg){ .slot = slot, .thread = i, .rounds = rounds };
		pthread_create (&tid[i], NULL, livestress_thread, &args[i]);
	}
	int own = 0, ring = 0, invalid = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join (tid[i], NULL);
		own += args[i].own_ok, ring += args[i].ring_ok, invalid += args[i].invalid;
	}
	fprintf (stderr, "livestress: own handles read %d, shared handles read %d, invalid %d\n", own, ring, invalid);
	CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
	return 0;
}

/* ---- live lookups the service never answers well ---- */

static int
open_fds (void)
{
	int n = 0;
	DIR *d = opendir ("/proc/self/fd");
	if (d == NULL)
		return -1;
	for (struct dirent *e; (e = readdir (d)) != NULL;)
		n += e->d_name[0] != '.';
	closedir (d);
	return n - 1; /* the directory's own descriptor */
}

struct livehostile_arg {
	CK_SLOT_ID slot;
	int thread, round, searches;
	CK_ULONG live; /* live objects found: must stay 0 */
};

static void *
livehostile_thread (void *p)
{
	struct livehostile_arg *arg = p;
	CK_SESSION_HANDLE s;
	CK_RV rv = fl->C_OpenSession (arg->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	CHECK (rv == CKR_OK, "livehostile OpenSession rv=0x%lx", rv);
	if (rv != CKR_OK)
		return NULL;
	for (int i = 0; i < arg->searches; i++) {
		char name[96];
		/* Every fourth search repeats an earlier name (a question in flight). */
		int k = i % 4 == 3 ? i / 2 : i;
		snprintf (name, sizeof name, LIVE_MARKER "|hang|r%dt%dn%d", arg->round, arg->thread, k);
		CK_ATTRIBUTE t = { CKA_SUBJECT, name, strlen (name) };
		CK_ULONG n;
		CK_OBJECT_HANDLE *found = find_all (s, &t, 1, 8, &n);
		for (CK_ULONG j = 0; j < n; j++)
			arg->live += is_live (found[j]);
		free (found);
		if (i % 16 == 0) { /* an enumeration files what has arrived */
			CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
			CK_ATTRIBUTE ct = { CKA_CLASS, &cls, sizeof cls };
			free (find_all (s, &ct, 1, 64, &n));
		}
	}
	CHECK (fl->C_CloseSession (s) == CKR_OK, "livehostile CloseSession");
	return NULL;
}

static int
livehostile (int threads, int searches, int rounds)
{
	pthread_t tid[64];
	struct livehostile_arg args[64];
	if (threads > 64)
		threads = 64;
	int before = open_fds ();
	for (int r = 0; r < rounds; r++) {
		CHECK (init () == CKR_OK, "C_Initialize");
		CK_SLOT_ID slot = first_slot ();
		for (int i = 0; i < threads; i++) {
			args[i] = (struct livehostile_arg){ .slot = slot, .thread = i, .round = r, .searches = searches };
			pthread_create (&tid[i], NULL, livehostile_thread, &args[i]);
		}
		for (int i = 0; i < threads; i++) {
			pthread_join (tid[i], NULL);
			CHECK (args[i].live == 0, "livehostile: thread %d found %lu live objects", i, args[i].live);
		}
		CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
		int after = open_fds ();
		CHECK (after == before, "livehostile round %d: %d descriptors open before C_Initialize, %d after C_Finalize", r, before, after);
	}
	return 0;
}

/* The parent asks for a name the service answers a second later, then
 * forks. The child must not read its parent's answer (they share the
 * socket): it asks on its own and gets the service's second answer. The
 * parent then gets the first. Labels are "<id>#<n>", n the service's count
 * of questions for that name. */
static int
livefork (void)
{
	static const char name[] = LIVE_MARKER "|late|forked";
	CK_ATTRIBUTE t = { CKA_SUBJECT, (void *)name, sizeof name - 1 };
	CHECK (init () == CKR_OK, "C_Initialize");
	CK_SESSION_HANDLE s;
	CK_RV rv = fl->C_OpenSession (first_slot (), CKF_SERIAL_SESSION, NULL, NULL, &s);
	CHECK (rv == CKR_OK, "livefork OpenSession rv=0x%lx", rv);
	CK_ULONG n;
	free (find_all (s, &t, 1, 8, &n)); /* asks; the answer is a second away */
	CHECK (n == 0, "livefork: %lu objects before the service answered", n);
	pid_t pid = fork ();
	if (pid == 0) {
		alarm (20);
		CK_OBJECT_HANDLE h = 0;
		char label[64] = { 0 };
		CK_ATTRIBUTE a = { CKA_LABEL, label, sizeof label - 1 };
		if (live_find (s, &t, 1, &h) != 1 || fl->C_GetAttributeValue (s, h, &a, 1) != CKR_OK)
			_exit (4);
		if (strcmp (label, "forked#2") != 0) {
			fprintf (stderr, "livefork child: got %s\n", label);
			_exit (3);
		}
		_exit (0);
	}
	int status = 0;
	CHECK (pid > 0 && waitpid (pid, &status, 0) == pid, "fork/waitpid");
	CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0,
	       "livefork child: status 0x%x (3: it got another answer than its own, 4: none)", status);
	CK_OBJECT_HANDLE h = 0;
	char label[64] = { 0 };
	CK_ATTRIBUTE a = { CKA_LABEL, label, sizeof label - 1 };
	/* (not inside CHECK: its lock is held while the condition runs, and find_all checks too) */
	int got = live_find (s, &t, 1, &h) == 1 && fl->C_GetAttributeValue (s, h, &a, 1) == CKR_OK;
	CHECK (got, "livefork: the parent found no answer");
	CHECK (strcmp (label, "forked#1") == 0, "livefork: the parent got %s, not the answer to its own question", label);
	CHECK (fl->C_CloseSession (s) == CKR_OK, "C_CloseSession");
	CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
	return 0;
}

/* fork while other threads hold the module's own lock: the child must be
 * able to take it (ncfence's pthread_atfork handlers). Only calls that take
 * the lock without calling upstream are used, because upstream modules are
 * not all fork-safe themselves (measured: NSS's CKBI and p11-kit-trust
 * children deadlock now and then when forked mid-search, with or without
 * ncfence). */
static volatile int stop_lockers;

static void *
locker_thread (void *p)
{
	(void)p;
	while (!stop_lockers)
		fl->C_FindObjectsFinal (0x7eadbeefUL); /* looks the session up under the lock */
	return NULL;
}

static int
forking (void)
{
	pthread_t tid[4];
	CHECK (init () == CKR_OK, "C_Initialize");
	for (int i = 0; i < 4; i++)
		pthread_create (&tid[i], NULL, locker_thread, NULL);
	for (int f = 0; f < 200; f++) {
		pid_t pid = fork ();
		if (pid == 0) {
			alarm (5); /* a deadlock ends as SIGALRM, which the parent reports */
			for (int k = 0; k < 100; k++)
				if (fl->C_FindObjectsFinal (0x7eadbeefUL) != CKR_SESSION_HANDLE_INVALID)
					_exit (3);
			_exit (0);
		}
		int status = 0;
		CHECK (pid > 0 && waitpid (pid, &status, 0) == pid, "fork/waitpid");
		CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0, "child %d ended with status 0x%x", f, status);
	}
	stop_lockers = 1;
	for (int i = 0; i < 4; i++)
		pthread_join (tid[i], NULL);
	CHECK (fl->C_Finalize (NULL) == CKR_OK, "C_Finalize");
	return 0;
}

int
main (int argc, char **argv)
{
	if (argc < 3) {
		fprintf (stderr, "usage: harness conformance|stress|cycles|fork|livestart|livestress|livehostile|livefork MODULE [ARGS]\n");
		return 2;
	}
	load (argv[2]);
	if (strcmp (argv[1], "conformance") == 0)
		conformance ();
	else if (strcmp (argv[1], "stress") == 0 && argc == 5)
		stress (atoi (argv[3]), atoi (argv[4]));
	else if (strcmp (argv[1], "cycles") == 0 && argc == 4)
		cycles (atoi (argv[3]));
	else if (strcmp (argv[1], "fork") == 0)
		forking ();
	else if (strcmp (argv[1], "livestart") == 0 && argc == 4)
		livestart (atoi (argv[3]));
	else if (strcmp (argv[1], "livestress") == 0 && argc == 5)
		livestress (atoi (argv[3]), atoi (argv[4]));
	else if (strcmp (argv[1], "livehostile") == 0 && argc == 6)
		livehostile (atoi (argv[3]), atoi (argv[4]), atoi (argv[5]));
	else if (strcmp (argv[1], "livefork") == 0)
		livefork ();
	else {
		fprintf (stderr, "usage: harness conformance|stress|cycles|fork|livestart|livestress|livehostile|livefork MODULE [ARGS]\n");
		return 2;
	}
	printf ("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
