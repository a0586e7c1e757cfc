/* ncfence PKCS#11 module: shared declarations.
 *
 * The module wraps an upstream trust module ("lower"). Upstream objects pass
 * through unless they grant trust (trust.c, classify.c); the compiled
 * view's objects (view.c) are served beside them under synthetic handles
 * (handles.h). */
#ifndef NF_H
#define NF_H

#define _GNU_SOURCE 1
#include <p11-kit/pkcs11.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* NSS and p11-kit vendor values (nss lib/util/pkcs11n.h, p11-kit common/pkcs11x.h). */
#define NF_CKO_NSS_TRUST            0xce534353UL
#define NF_CKO_X_TRUST_ASSERTION    0xd8444764UL
#define NF_CKA_X_ASSERTION_TYPE     0xd8444701UL
#define NF_CKA_TRUST_FIRST          0xce536351UL /* CKA_TRUST_DIGITAL_SIGNATURE */
#define NF_CKA_TRUST_LAST           0xce53635fUL /* CKA_TRUST_TIME_STAMPING */
#define NF_CKT_NSS_MUST_VERIFY      0xce534353UL
#define NF_CKT_NSS_TRUST_UNKNOWN    0xce534355UL
#define NF_CKT_NSS_NOT_TRUSTED      0xce53435aUL
#define NF_CKT_NSS_VALID_DELEGATOR  0xce53435bUL
#define NF_CKT_X_DISTRUSTED_CERTIFICATE 1UL
#define NF_CKA_TRUST_STEP_UP        0xce536360UL
/* PKCS#11 3.2 trust objects (NSS >= 3.114 and Firefox's builtins serve
 * these; NSS calls the purposes CKA_PKCS_TRUST_*). */
#define NF_CKO_TRUST                0x0000000bUL
#define NF_CKA_PKCS_TRUST_FIRST     0x0000062cUL /* CKA_TRUST_SERVER_AUTH */
#define NF_CKA_PKCS_TRUST_LAST      0x00000632UL /* CKA_TRUST_OCSP_SIGNING */
/* ncfence's own, only in the view file (src/pkcs11/constants.ts): which
 * processes an object is for. view.c takes it off the object at load, so
 * it is never served. */
#define NF_CKA_NCFENCE_AUDIENCE     0xce434601UL
#define NF_AUDIENCE_ALL             0u
#define NF_AUDIENCE_NSS_FORM        1u /* R' for processes that may hold NSS */
#define NF_AUDIENCE_PLAIN_FORM      2u /* R' only where NSS is known absent */
#define NF_CKT_TRUST_UNKNOWN        0UL
#define NF_CKT_NOT_TRUSTED          3UL
#define NF_CKT_TRUST_MUST_VERIFY    4UL

/* ---- limits: what the module accepts from the view file (view.c) and the
 * service (live.c). The engine and the service write within the same
 * bounds (src/view/format.ts VIEW_LIMITS, src/service/protocol.ts);
 * test/module/mirrors.test.ts checks that the two languages agree. ---- */
#define NF_VIEW_MAX_OBJECTS 65536u
#define NF_VIEW_MAX_ATTRS 64u
#define NF_VIEW_MAX_ATTR_BYTES (1u << 20)
#define NF_VIEW_MAX_STAMP (1u << 20)
#define NF_WIRE_MAX_NAME 16384
#define NF_WIRE_MAX_RESPONSE (1u << 20)
#define NF_WIRE_MAX_OBJECTS 16
#define NF_WIRE_MAX_ATTRS 32
#define NF_WIRE_MAX_VALUE 65536u
#define NF_WIRE_MAX_TTL 3600u

/* ---- debug.c ---- */
enum {
	NF_DBG_INIT = 1 << 0,
	NF_DBG_FIND = 1 << 1,
	NF_DBG_ATTRS = 1 << 2,
	NF_DBG_VIEW = 1 << 3,
	NF_DBG_SESSION = 1 << 4,
	NF_DBG_CLASSIFY = 1 << 5,
};
extern unsigned nf_debug_flags;
void debug_init (void);
void nf_warn (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
void nf_debug_print (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
const char *debug_rv_name (CK_RV rv);
#define nf_debug(flag, ...) \
	do { if (nf_debug_flags & (flag)) nf_debug_print (__VA_ARGS__); } while (0)

/* ---- map.c: open-addressing map from a 64-bit key to a 64-bit value ---- */
typedef struct {
	uint64_t *keys;
	uint64_t *vals;
	unsigned char *used;
	size_t cap, len;
} nf_map;
int map_get (const nf_map *m, uint64_t key, uint64_t *val);
int map_put (nf_map *m, uint64_t key, uint64_t val); /* 0 ok, -1 no memory */
void map_del (nf_map *m, uint64_t key);
void map_free (nf_map *m);

/* ---- view.c ---- */
typedef struct {
	CK_ATTRIBUTE_TYPE type;
	const unsigned char *value;
	CK_ULONG len;
} nf_attr;

typedef struct {
	CK_SLOT_ID slot;
	CK_ULONG nattrs;
	nf_attr *attrs;
	/* CKA_CLASS, copied here so the common template {CLASS, SUBJECT} is
	 * matched without walking the attribute array (view.c). */
	CK_ULONG cls;
	int has_cls;
	unsigned audience : 8; /* NF_AUDIENCE_*, from NF_CKA_NCFENCE_AUDIENCE */
	unsigned hidden : 1; /* a browser's recorded object that grants trust (view.c) */
} nf_object;

/* The object's attribute of `type`, or NULL. Inline: every template match
 * and attribute read walks it. */
static inline const nf_attr *
view_attr (const nf_object *obj, CK_ATTRIBUTE_TYPE type)
{
	for (CK_ULONG i = 0; i < obj->nattrs; i++)
		if (obj->attrs[i].type == type)
			return &obj->attrs[i];
	return NULL;
}

/* One slot of the view's index: an open-addressed table keyed by the hash
 * of one indexed attribute. A search reads one entry per probe (32 bytes,
 * two to a cache line) and, for the usual {CLASS, SUBJECT} template, never
 * touches the object itself (module bench: each dependent cache miss here
 * showed in the find loop). */
typedef struct {
	uint64_t hash;   /* view_attr_hash of one indexed attribute */
	/* That attribute's value, compared before the object is touched: short
	 * values (names, ids) are copied into one compact block, long ones
	 * (certificates) point into the file. */
	const unsigned char *value;
	uint32_t object;
	uint32_t len;
	uint32_t cls;    /* the object's CKA_CLASS, when flags has NF_IDX_CLS */
	uint16_t type;   /* the indexed attribute (every indexed type fits) */
	uint16_t flags;  /* 0: empty slot */
} nf_index_entry;
#define NF_IDX_USED 1u
#define NF_IDX_CLS 2u /* cls holds the object's class */
#define NF_IDX_NSS_FORM 4u   /* the object's audience, so a search skips it unread */
#define NF_IDX_PLAIN_FORM 8u

typedef struct {
	unsigned char *data; /* the whole file */
	size_t size;
	const char *stamp;   /* NUL-terminated copy */
	size_t nobjects;
	nf_object *objects;
	nf_attr *attr_pool;
	nf_index_entry *index; /* open addressing, linear probing; entries of one
	                        * hash follow each other in object order */
	size_t index_mask;     /* slots - 1 (a power of two minus one) */
	int one_slot;          /* every object is in slot `slot` */
	CK_SLOT_ID slot;
	unsigned char *compact; /* short indexed values, contiguous */
	int two_forms;          /* some objects are for one audience only (host.c) */
	struct nf_snapshot *snapshot; /* browser targets: the browser's own token (snapshot.c); else NULL */
} nf_view;

/* A browser's own roots token as the build read it from inside the browser:
 * what its C_GetSlotInfo and C_GetTokenInfo answered, and its objects (an
 * nf_view that indexes them; it does not own the file data). The module's
 * C_GetInfo is its own (entry.c), so the recorded CK_INFO is not kept. */
typedef struct nf_snapshot {
	CK_SLOT_ID slot;
	CK_SLOT_INFO slot_info;
	CK_TOKEN_INFO token_info;
	nf_view token;
} nf_snapshot;

/* Loads and fully validates a view. On failure returns -1 and writes a
 * one-line reason into why. */
int view_load (const char *path, nf_view *view, char *why, size_t why_len);
int view_parse_body (nf_view *view, const char *name, char *why, size_t why_len);
void view_free (nf_view *view);
/* A view search by one indexed template attribute. Started before the
 * lower search; its memory is then prefetched in steps between the lower
 * calls: the system CKBI's search streams through more data than L1 holds
 * (callgrind: ~1400 L1 misses per search), so a line loaded before
 * C_FindObjectsInit is gone after it, while one requested after it arrives
 * during C_FindObjects and C_FindObjectsFinal. */
typedef struct {
	CK_ULONG k;  /* the indexed template attribute */
	int active;  /* 0: no usable indexed attribute (linear scan) */
	uint64_t hash;
	size_t home;
} nf_view_probe;
/* v may be NULL (no view): the probe is then inactive. */
void view_probe_start (const nf_view *v, nf_view_probe *p, const CK_ATTRIBUTE *tmpl, CK_ULONG count);
void view_probe_entry (const nf_view *v, const nf_view_probe *p); /* after the lower Init */
void view_probe_value (const nf_view *v, const nf_view_probe *p); /* after the lower FindObjects */
/* Calls emit(ctx, object index) for every object of `slot` that matches the
 * template, in object order, through the index when the probe is active and
 * by a linear scan otherwise; the two give the same list (fuzz_view checks).
 * Hidden objects, and the form of R' this process must not see (host.c),
 * are never emitted.
 * Returns -1 as soon as emit does, else 0. */
int view_search (const nf_view *v, const nf_view_probe *p, CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                 int (*emit) (void *ctx, size_t object), void *ctx);

/* ---- host.c: which process hosts the module ---- */
/* Whether the process runs with privileges its invoker lacks (setuid or
 * setgid, file capabilities: AT_SECURE, or effective ids that differ from
 * the real ones). The environment then belongs to someone less trusted:
 * the module reads none of its own variables and starts no process. */
int host_privileged (void);
/* Whether a Java VM hosts the module (libjvm.so is loaded): see attrs.c. */
int host_is_java (void);
/* Views with two forms of R': 1 when the plain form may be served here
 * (NSS has never been loaded in this process and GnuTLS or OpenSSL is), 0
 * for the NSS form (NSS loaded, or unsure). Cheap while the set of loaded
 * objects does not change. */
int host_serves_plain_form (void);

/* ---- stamp.c ---- */
/* Builds the upstream fingerprint (also for the build: src/view/stamp.ts); malloc'd. NULL, with
 * the reason in why, on any error or past a bound: the view is then stale. */
char *stamp_build (const char *library, const char *params, const char *builtin_paths, const char *policy,
                   const char *engine, char *why, size_t why_len);
/* The value of the `paths` argument p11-kit-trust takes from a parameter
 * string (malloc'd), or NULL when none sets it (or on failure: *failed). */
char *stamp_paths_argument (const char *params, int *failed);
/* Describes the first line where two stamps differ, for the stale warning. */
void stamp_diff (const char *view, const char *now, char *out, size_t out_len);

/* ---- config.c ---- */
typedef struct {
	char *upstream;
	char *params;
	char *trust_paths; /* upstream-trust-paths: p11-kit-trust's built-in paths; stamped */
	char *view;
	char *policy; /* part of the staleness stamp */
	int browser;  /* upstream-kind = browser: upstream is a browser's libxul, served from the view's snapshot */
	char *rebuild; /* optional: the package's command that regenerates the view (rebuild.c) */
	char *rebuild_node; /* optional: the interpreter that runs it (rebuild-node) */
	char *engine; /* optional: the package's engine-id file; stamped */
	char *service; /* optional: the live .bit service's socket */
	char *service_command; /* optional: starts the service on demand */
	char *fix;    /* optional: the command that repairs this install, for warnings */
	long service_timeout_ms;
	long rebuild_timeout_ms;
	char *source; /* which file it came from */
} nf_config;
/* 1 found and parsed, 0 none found, -1 unreadable or malformed (reason in
 * why, what to do about it in fix). */
int config_find (nf_config *cfg, char *why, size_t why_len, char *fix, size_t fix_len);
void config_free (nf_config *cfg);

/* ---- live.c ---- */
CK_RV live_collect (CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count, int (*push) (void *, CK_OBJECT_HANDLE), void *out);
/* Copies attributes of a live object out under the lock (its entry may be
 * evicted once the lock is released); count 0 only checks the handle. */
CK_RV live_read (CK_OBJECT_HANDLE h, CK_SLOT_ID slot, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count);
void live_free_all_inlock (void);
/* Drops the questions in flight to the service, closing their sockets (a
 * forked child must not read its parent's answers). */
void live_forget_pending_inlock (void);

/* ---- rebuild.c ---- */
/* Where a fresh view can come from when the configured one is not fresh. */
typedef struct {
	char view[4096]; /* the view file to try after the rebuild */
	char dir[3900];  /* the per-user directory, or "" when rebuilt in place */
	int lock_fd;     /* held while building and reading; -1 when none */
} nf_rebuild_plan;
/* Chooses in place (this process may write the install) or this user's own
 * directory. With `build`, creates that directory and takes the lock
 * (bounded wait); without, only names the view to look at. 0 ok, -1 with
 * why. */
int rebuild_prepare (const nf_config *cfg, int build, nf_rebuild_plan *plan, char *why, size_t why_len);
/* Runs the package's command for the plan, with the time limit. 0 when it
 * ran and exited 0. */
int rebuild_run (const nf_config *cfg, const nf_rebuild_plan *plan, char *why, size_t why_len);
void rebuild_release (nf_rebuild_plan *plan);
/* Starts a child of the module: argv[0] with argv and env (environ when
 * NULL); stdin and stdout on /dev/null, stderr too with NF_SPAWN_QUIET, and
 * no other descriptor of the host's; in a session of its own
 * (NF_SPAWN_SESSION) or a process group of its own (NF_SPAWN_GROUP).
 * 0 or an errno value. */
enum { NF_SPAWN_QUIET = 1, NF_SPAWN_SESSION = 2, NF_SPAWN_GROUP = 4 };
int nf_spawn (char *const argv[], char *const env[], int flags, pid_t *pid);
/* Milliseconds on the monotonic clock. */
long long nf_now_ms (void);
/* $XDG_CACHE_HOME/ncfence, created 0700 and checked private (rebuild.c); -1 with why. */
int nf_user_dir (char *out, size_t len, char *why, size_t why_len);
/* FNV-1a 64 of a string: the per-user directory name of a configuration. */
uint64_t nf_fnv1a (const char *s);

/* ---- notice.c: a closed view says so where people look ---- */
/* From here until notice_clear: token label and slot description say no
 * root is trusted and why (reason: a few words), and a browser target with
 * no view gets an empty slot that says so. */
void notice_closed (const char *reason);
void notice_clear (void);
/* The empty token a browser target shows while closed; NULL otherwise. */
const nf_snapshot *notice_snapshot (void);
/* Overwrite the slot description / token label of an upstream slot while closed. */
void notice_slot_info (CK_SLOT_INFO_PTR info);
void notice_token_info (CK_TOKEN_INFO_PTR info);
/* One desktop notification (rate-limited; only with a session bus). */
void notice_notify (const char *config, const char *why, const char *fix);

/* ---- state.c: shared state ---- */
typedef enum {
	NF_MODE_FENCED,   /* view valid: hide granting upstream objects, serve view */
	NF_MODE_CLOSED,   /* no usable view: hide granting upstream objects only */
} nf_mode;

typedef struct {
	pthread_mutex_t lock;
	int initialized;
	nf_mode mode;
	CK_FUNCTION_LIST_PTR lower;   /* NULL when upstream is missing */
	char *lower_params;
	int lower_full_pages;         /* upstream returns full find pages while more remain (lower.c) */
	int lower_borrowed;           /* upstream was already initialized in this process: not ours to finalize */
	int lower_snapshot;           /* the lower module is the snapshot token (snapshot.c) */
	nf_view view;
	nf_map verdicts;              /* (slot,handle) key -> verdict, classify.c */
	nf_map sessions;              /* session handle -> nf_session*, session.c */
	struct nf_session *free_sessions; /* the pool, session.c */
	char *service_path;           /* live.c; NULL: no live .bit answers */
	char *service_command;        /* live.c; NULL: never start the service */
	long service_timeout_ms;      /* how long a question to the service may stay in flight (live.c) */
	int java_host;                /* the host is a Java VM: nothing is CKA_TRUSTED (attrs.c) */
} nf_state;

extern nf_state nf;

#define nf_lock() pthread_mutex_lock (&nf.lock)
#define nf_unlock() pthread_mutex_unlock (&nf.lock)

/* A PKCS#11 text field: src, cut to len, padded with blanks. */
void nf_pad (unsigned char *dst, size_t len, const char *src);

/* ---- lower.c ---- */
CK_RV lower_load (const char *path, CK_C_INITIALIZE_ARGS_PTR caller, const char *params,
                  char *why, size_t why_len);
/* Browser targets: the lower module is the snapshot token (snapshot.c). */
void lower_use_snapshot (void);
void lower_unload (void);

/* ---- snapshot.c ---- */
/* A browser target's lower module (slot, token and session calls). */
CK_FUNCTION_LIST_PTR snapshot_functions (void);
/* The object behind handle h of the snapshot token, unless hidden; NULL. */
const nf_object *snapshot_object (CK_OBJECT_HANDLE h);
/* emit(ctx, handle) for each of its objects that matches, as view_search. */
int snapshot_search (CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count,
                     int (*emit) (void *ctx, CK_OBJECT_HANDLE h), void *ctx);

/* ---- session.c ---- */
/* Session state. Structures are pooled, never freed before C_Finalize, so a
 * pointer found through the lock-free hint table (fastpath.c) always points
 * at valid memory; `handle` and `live` (atomic) say whether it still is
 * that session. A session is used by one thread at a time (PKCS#11 2.40,
 * 6.7.1), so its find state needs no lock once the session is resolved. */
typedef struct nf_session {
	CK_SESSION_HANDLE handle;
	int live;
	CK_SLOT_ID slot;
	int finding;
	CK_OBJECT_HANDLE *found; /* kept between searches; cap is its size */
	CK_ULONG nfound, pos, cap;
	struct nf_session *next_free;
} nf_session;
nf_session *session_lookup_inlock (CK_SESSION_HANDLE h);
/* The live session for h through the lock-free hints, or NULL (then lock and look up). */
nf_session *session_owned (CK_SESSION_HANDLE h);
void session_free_all_inlock (void);
CK_RV nf_C_OpenSession (CK_SLOT_ID, CK_FLAGS, CK_VOID_PTR, CK_NOTIFY, CK_SESSION_HANDLE_PTR);
CK_RV nf_C_CloseSession (CK_SESSION_HANDLE);
CK_RV nf_C_CloseAllSessions (CK_SLOT_ID);

/* ---- trust.c: which objects grant trust (the rule; pure) ---- */
/* Whether an attribute can make an object a trust anchor (CKA_TRUSTED, NSS
 * or PKCS#11 3.2 trust purposes, p11-kit assertion type). Inline: every
 * GetAttributeValue and FindObjectsInit asks (module bench: as calls they
 * cost the attribute loop 7%). */
static inline int
trust_type (CK_ATTRIBUTE_TYPE type)
{
	return type == CKA_TRUSTED || type == NF_CKA_X_ASSERTION_TYPE || type == NF_CKA_TRUST_STEP_UP ||
	       (type - NF_CKA_TRUST_FIRST) <= (NF_CKA_TRUST_LAST - NF_CKA_TRUST_FIRST) ||
	       (type - NF_CKA_PKCS_TRUST_FIRST) <= (NF_CKA_PKCS_TRUST_LAST - NF_CKA_PKCS_TRUST_FIRST);
}

static inline int
trust_template_has (const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	for (CK_ULONG i = 0; i < count; i++)
		if (trust_type (tmpl[i].type))
			return 1;
	return 0;
}
enum { NF_TRUST_NONE = 0, NF_TRUST_GRANTS = 1, NF_TRUST_MALFORMED = 2 };
/* How many attributes trust_template writes at most. */
#define NF_TRUST_ATTRS (NF_CKA_TRUST_LAST - NF_CKA_TRUST_FIRST + 1 + NF_CKA_PKCS_TRUST_LAST - NF_CKA_PKCS_TRUST_FIRST + 1 + 3)
/* The rule, over an object's attributes (CKA_CLASS among them; an attribute
 * it lacks is missing or has length CK_UNAVAILABLE_INFORMATION):
 * NF_TRUST_NONE, or NF_TRUST_GRANTS / NF_TRUST_MALFORMED (hide it). */
int trust_object (const CK_ATTRIBUTE *attrs, CK_ULONG n);
/* The attributes trust_object reads from an object of class cls, as a
 * C_GetAttributeValue template with buffers from vals, or none (presence
 * only) for a class the rule does not know. Returns how many. */
CK_ULONG trust_template (CK_OBJECT_CLASS cls, CK_ATTRIBUTE *t, CK_ULONG *vals);
/* Whether the values of an answer to GetAttributeValue grant trust (or are
 * malformed), whatever the object's class. */
int trust_answer_grants (const CK_ATTRIBUTE *tmpl, CK_ULONG count);

/* ---- classify.c: the rule applied to upstream's objects, cached ---- */
/* 1 when the upstream object may be shown, 0 when it is hidden. */
int classify_visible (CK_SESSION_HANDLE session, CK_SLOT_ID slot, CK_OBJECT_HANDLE h);
/* The cached verdict: 1 show, 0 hide, -1 not known yet (call classify_visible). */
int classify_cached_inlock (CK_SLOT_ID slot, CK_OBJECT_HANDLE h);
/* classify_visible without the cache: reads upstream again and replaces the
 * cached verdict. For searches that match on trust attributes, whose answer
 * upstream may have changed in place (p11-kit-trust reloads a changed file
 * under the same handles). */
int classify_fresh (CK_SESSION_HANDLE session, CK_SLOT_ID slot, CK_OBJECT_HANDLE h);
/* Records that upstream object h now grants trust (hidden from here on). */
void classify_mark_hidden (CK_SLOT_ID slot, CK_OBJECT_HANDLE h);

/* ---- fastpath.c: lock-free hint caches ---- */
int fast_verdict (CK_SLOT_ID slot, CK_OBJECT_HANDLE h); /* 1, 0, or -1 unknown */
/* Starts loading h's verdict hint, so the fast_verdict that follows does not wait on memory. */
void fast_verdict_prefetch (CK_OBJECT_HANDLE h);
void fast_verdict_put (CK_SLOT_ID slot, CK_OBJECT_HANDLE h, int visible);
int fast_session_slot (CK_SESSION_HANDLE s, CK_SLOT_ID *slot);
void fast_session_put (CK_SESSION_HANDLE s, CK_SLOT_ID slot, struct nf_session *ptr);
struct nf_session *fast_session_ptr (CK_SESSION_HANDLE s);
void fast_session_forget (CK_SESSION_HANDLE s);
void fast_clear (void);

/* ---- handles.h ---- */
#include "handles.h"

/* ---- attrs.c: templates against the module's own objects (pure) ---- */
int attrs_match (const nf_object *obj, const CK_ATTRIBUTE *tmpl, CK_ULONG count);
/* attrs_match, with template entry `skip` already known to match. */
int attrs_match_except (const nf_object *obj, const CK_ATTRIBUTE *tmpl, CK_ULONG count, CK_ULONG skip);
/* C_GetAttributeValue's answer from obj, per attribute (PKCS#11 2.40 5.7). */
CK_RV attrs_read (const nf_object *obj, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count);

/* ---- object.c: the object calls, on any handle ---- */
CK_RV nf_C_GetAttributeValue (CK_SESSION_HANDLE, CK_OBJECT_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG);
CK_RV nf_C_GetObjectSize (CK_SESSION_HANDLE, CK_OBJECT_HANDLE, CK_ULONG_PTR);
CK_RV nf_C_SetAttributeValue (CK_SESSION_HANDLE, CK_OBJECT_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG);
CK_RV nf_C_DestroyObject (CK_SESSION_HANDLE, CK_OBJECT_HANDLE);
CK_RV nf_C_CopyObject (CK_SESSION_HANDLE, CK_OBJECT_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG, CK_OBJECT_HANDLE_PTR);

/* ---- find.c ---- */
CK_RV nf_C_FindObjectsInit (CK_SESSION_HANDLE, CK_ATTRIBUTE_PTR, CK_ULONG);
CK_RV nf_C_FindObjects (CK_SESSION_HANDLE, CK_OBJECT_HANDLE_PTR, CK_ULONG, CK_ULONG_PTR);
CK_RV nf_C_FindObjectsFinal (CK_SESSION_HANDLE);

/* ---- forward.c ---- */
void forward_fill (CK_FUNCTION_LIST *fl);

#endif
