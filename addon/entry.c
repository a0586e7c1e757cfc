/* Exported symbols, the function table, C_Initialize and C_Finalize.
 *
 * C_Initialize never fails because of upstream or the view: Firefox falls
 * back to its own unconstrained roots when the roots module fails to
 * initialize, so every fault leads to a closed view instead, said loudly. */
#include "nf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static CK_FUNCTION_LIST function_list;
static pthread_once_t function_list_once = PTHREAD_ONCE_INIT;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* fork() while another thread holds nf.lock would leave the child's copy
 * locked forever: take the lock around fork, release it on both sides. The
 * lock is never held across a call into upstream after C_Initialize, so
 * this never waits on upstream. The child drops the .bit questions in
 * flight: their sockets are its parent's too. */
static void fork_prepare (void) { nf_lock (); }
static void fork_parent (void) { nf_unlock (); }
static void fork_child (void) { live_forget_pending_inlock (); nf_unlock (); }

static void
register_atfork (void)
{
	pthread_atfork (fork_prepare, fork_parent, fork_child);
}

/* Loads the view at `path` (the configured one, or this user's own:
 * rebuild.c) and checks its stamp against what upstream is now; 0 when it
 * can be served. `brief` gets a few words for the closed notice. */
static int
try_view_inlock (const nf_config *cfg, const char *path, char *why, size_t why_len, const char **brief)
{
	*brief = "view unusable";
	if (view_load (path, &nf.view, why, why_len) < 0) {
		if (access (path, F_OK) != 0)
			*brief = "no view";
		return -1;
	}
	if (cfg->browser && nf.view.snapshot == NULL) {
		snprintf (why, why_len, "view %s holds no record of the browser's roots (it was built from a module, not from %s)", path, cfg->upstream);
		view_free (&nf.view);
		return -1;
	}
	char reason[512] = "";
	char *stamp = stamp_build (cfg->upstream, cfg->params, cfg->trust_paths, cfg->policy, cfg->engine, reason, sizeof reason);
	int fresh = stamp != NULL && strcmp (stamp, nf.view.stamp) == 0;
	if (stamp != NULL && !fresh)
		stamp_diff (nf.view.stamp, stamp, reason, sizeof reason);
	free (stamp);
	if (fresh)
		return 0;
	*brief = "view stale";
	if (cfg->browser)
		snprintf (why, why_len, "view %s is stale: the browser (%s), policy %s or ncfence changed since it was built, so its roots may have too (%s)",
		          path, cfg->upstream, cfg->policy, reason);
	else
		snprintf (why, why_len, "view %s is stale: upstream %s, its trust files, policy %s or ncfence changed since it was built (%s)",
		          path, cfg->upstream, cfg->policy, reason);
	view_free (&nf.view);
	return -1;
}

/* A view that is not fresh is rebuilt by the package's command, in place or
 * in this user's own directory (rebuild.c), and then served if it is fresh.
 * 0 when a fresh view is loaded; otherwise `why` says why not. */
static int
refresh_inlock (const nf_config *cfg, char *why, size_t why_len, const char **brief)
{
	char rwhy[1024] = "";
	const char *b;
	if (cfg->rebuild == NULL)
		return -1;
	/* A privileged process never runs the rebuild, nor reads a view from a
	 * directory its (less trusted) environment names: the command would
	 * run with privileges its invoker lacks (review: setuid programs). */
	if (host_privileged ()) {
		nf_warn ("%s; not running %s to rebuild it: this process runs with elevated privileges", why, cfg->rebuild);
		return -1;
	}
	/* A rebuild never runs inside a rebuild (the browser a browser build
	 * starts; doctor's checks: rebuild.c sets the variable), but a view of
	 * this user's own that is fresh is still used. */
	if (secure_getenv ("NCFENCE_REBUILDING") != NULL) {
		nf_rebuild_plan look;
		if (rebuild_prepare (cfg, 0, &look, rwhy, sizeof rwhy) == 0 && look.dir[0] != '\0' &&
		    try_view_inlock (cfg, look.view, rwhy, sizeof rwhy, &b) == 0)
			return 0;
		return -1;
	}
	nf_rebuild_plan plan;
	if (rebuild_prepare (cfg, 1, &plan, rwhy, sizeof rwhy) < 0) {
		nf_warn ("%s; cannot rebuild it: %s", why, rwhy);
		*brief = "rebuild refused";
		return -1;
	}
	/* Built already: by another process while this one waited for the lock,
	 * or earlier into this user's directory. */
	if (try_view_inlock (cfg, plan.view, rwhy, sizeof rwhy, &b) == 0) {
		nf_debug (NF_DBG_INIT, "init: %s is stale; serving the fresh view %s", cfg->view, plan.view);
		rebuild_release (&plan);
		return 0;
	}
	nf_warn ("%s; running %s to rebuild it%s", why, cfg->rebuild, plan.dir[0] ? " in this user's own directory" : "");
	int rc = rebuild_run (cfg, &plan, rwhy, sizeof rwhy);
	if (rc == 0)
		rc = try_view_inlock (cfg, plan.view, rwhy, sizeof rwhy, &b);
	rebuild_release (&plan);
	if (rc == 0)
		return 0;
	snprintf (why, why_len, "%s", rwhy);
	*brief = "rebuild failed";
	return -1;
}

/* Loads config, upstream and view; leaves nf.mode saying what is served. */
static void
init_view_inlock (CK_C_INITIALIZE_ARGS_PTR args)
{
	char why[1024] = "";
	char fix[512] = "";
	nf_config cfg;
	nf.mode = NF_MODE_CLOSED;
	notice_clear ();
	int found = config_find (&cfg, why, sizeof why, fix, sizeof fix);
	if (found <= 0) {
		if (found == 0)
			nf_warn ("no configuration (set NCFENCE_CONFIG or run `ncfence build`); presenting no roots at all");
		else
			nf_warn ("%s; presenting no roots at all. Fix: %s", why, fix);
		notice_closed (found == 0 ? "no configuration" : "bad configuration");
		lower_use_snapshot (); /* its one slot says so */
		return;
	}
	nf_debug (NF_DBG_INIT, "init: configuration %s, upstream %s%s", cfg.source, cfg.upstream, cfg.browser ? " (browser)" : "");
	if (cfg.browser)
		lower_use_snapshot ();
	else if (lower_load (cfg.upstream, args, cfg.params, why, sizeof why) != CKR_OK) {
		nf_warn ("%s; presenting no roots at all. Fix: check `upstream` in %s", why, cfg.source);
		notice_closed ("upstream missing");
		lower_use_snapshot ();
		config_free (&cfg);
		return;
	}
	const char *brief = "";
	int fresh = try_view_inlock (&cfg, cfg.view, why, sizeof why, &brief) == 0 || refresh_inlock (&cfg, why, sizeof why, &brief) == 0;
	if (cfg.service != NULL && cfg.service[0] != '\0') {
		nf.service_path = strdup (cfg.service);
		nf.service_command = cfg.service_command && cfg.service_command[0] ? strdup (cfg.service_command) : NULL;
		/* A question stays in flight this long (no search waits that long:
		 * live.c); longer than the service's own bound on a lookup
		 * (src/service/server.ts), so its answer is still taken. */
		nf.service_timeout_ms = cfg.service_timeout_ms > 0 ? cfg.service_timeout_ms : 6000;
	}
	nf.java_host = host_is_java ();
	if (nf.java_host)
		nf_warn ("the host is a Java VM, whose PKIX ignores the name constraints of a trust anchor; ncfence presents "
		         "no certificate as CKA_TRUSTED to it, so Java trusts nothing through this module (docs/security-model.md)");
	if (fresh) {
		nf.mode = NF_MODE_FENCED;
		nf_debug (NF_DBG_INIT, "init: view %s, %zu objects%s", cfg.view, nf.view.nobjects,
		          nf.view.two_forms ? ", two forms of R' (which one a search sees: host.c)" : "");
	} else {
		/* Said where people look: stderr, the token (notice.c) and, on a
		 * desktop, a notification. */
		const char *mend = cfg.fix ? cfg.fix : "ncfence build";
		nf_warn ("%s; no public root is trusted (closed view). Fix: run `%s`", why, mend);
		notice_closed (brief);
		notice_notify (cfg.source != NULL ? cfg.source : "", why, mend);
	}
	config_free (&cfg);
}

static CK_RV
nf_C_Initialize (CK_VOID_PTR init_args)
{
	CK_C_INITIALIZE_ARGS_PTR args = init_args;
	CK_RV rv = CKR_OK;
	if (args != NULL) {
		int have = (args->CreateMutex != NULL) + (args->DestroyMutex != NULL) +
		           (args->LockMutex != NULL) + (args->UnlockMutex != NULL);
		if (have != 0 && have != 4)
			return CKR_ARGUMENTS_BAD;
		/* PKCS#11 2.40 5.4: callbacks without CKF_OS_LOCKING_OK oblige the
		 * module to lock with them. ncfence locks with pthreads (and
		 * lock-free hints), as p11-kit-trust and NSS's softoken do, so it
		 * refuses like they do instead of locking some other way. */
		if (have == 4 && !(args->flags & CKF_OS_LOCKING_OK)) {
			nf_warn ("C_Initialize: the application supplied mutex callbacks without CKF_OS_LOCKING_OK; "
			         "ncfence can only lock with the OS (CKR_CANT_LOCK)");
			return CKR_CANT_LOCK;
		}
	}
	pthread_once (&atfork_once, register_atfork);
	/* The lock is held across upstream's C_Initialize on purpose: nothing
	 * else can run before initialization finishes. */
	nf_lock ();
		if (nf.initialized) {
			rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
			/* A JVM started after the first C_Initialize (JNI_CreateJavaVM in
			 * an NSS program) reaches us here: SunPKCS11 tolerates this
			 * answer, so the Java check is made again (review). Once set it
			 * stays set until C_Finalize. */
			if (!nf.java_host && host_is_java ()) {
				__atomic_store_n (&nf.java_host, 1, __ATOMIC_RELAXED);
				nf_warn ("a Java VM now shares this process; from here on ncfence presents no certificate as CKA_TRUSTED (docs/security-model.md)");
			}
		} else {
			debug_init ();
			init_view_inlock (args);
			__atomic_store_n (&nf.initialized, 1, __ATOMIC_RELEASE);
		}
	nf_unlock ();
	nf_debug (NF_DBG_INIT, "out: C_Initialize -> %s, %s", debug_rv_name (rv),
	          nf.mode == NF_MODE_FENCED ? "fenced view" : "closed view");
	return rv;
}

static CK_RV
nf_C_Finalize (CK_VOID_PTR reserved)
{
	if (reserved != NULL)
		return CKR_ARGUMENTS_BAD;
	nf_lock ();
		if (!nf.initialized) {
			nf_unlock ();
			return CKR_CRYPTOKI_NOT_INITIALIZED;
		}
		__atomic_store_n (&nf.initialized, 0, __ATOMIC_RELEASE);
		lower_unload ();
		view_free (&nf.view);
		session_free_all_inlock ();
		map_free (&nf.verdicts);
		fast_clear ();
		live_free_all_inlock ();
		notice_clear ();
		free (nf.service_path);
		free (nf.service_command);
		nf.service_path = nf.service_command = NULL;
		nf.mode = NF_MODE_CLOSED;
	nf_unlock ();
	return CKR_OK;
}

static CK_RV
nf_C_GetInfo (CK_INFO_PTR info)
{
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	*info = (CK_INFO){ .cryptokiVersion = { 2, 40 }, .libraryVersion = { 0, 1 } };
	nf_pad (info->manufacturerID, sizeof info->manufacturerID, "ncfence");
	nf_pad (info->libraryDescription, sizeof info->libraryDescription, "ncfence fenced trust roots");
	return CKR_OK;
}

static CK_RV nf_C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list);

static void
fill_function_list (void)
{
	function_list.version.major = 2;
	function_list.version.minor = 40;
	forward_fill (&function_list);
	function_list.C_Initialize = nf_C_Initialize;
	function_list.C_Finalize = nf_C_Finalize;
	function_list.C_GetInfo = nf_C_GetInfo;
	function_list.C_GetFunctionList = nf_C_GetFunctionList;
	function_list.C_OpenSession = nf_C_OpenSession;
	function_list.C_CloseSession = nf_C_CloseSession;
	function_list.C_CloseAllSessions = nf_C_CloseAllSessions;
	function_list.C_GetAttributeValue = nf_C_GetAttributeValue;
	function_list.C_GetObjectSize = nf_C_GetObjectSize;
	function_list.C_SetAttributeValue = nf_C_SetAttributeValue;
	function_list.C_DestroyObject = nf_C_DestroyObject;
	function_list.C_CopyObject = nf_C_CopyObject;
	function_list.C_FindObjectsInit = nf_C_FindObjectsInit;
	function_list.C_FindObjects = nf_C_FindObjects;
	function_list.C_FindObjectsFinal = nf_C_FindObjectsFinal;
}

static CK_RV
nf_C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_once (&function_list_once, fill_function_list);
	*list = &function_list;
	return CKR_OK;
}

__attribute__ ((visibility ("default"))) CK_RV
C_GetFunctionList (CK_FUNCTION_LIST_PTR_PTR list)
{
	return nf_C_GetFunctionList (list);
}
