/* The snapshot token: the lower module of a browser target.
 *
 * A browser's roots are compiled into its libxul, which exports no function
 * list for them, so the build reads them from inside the browser and records
 * them in the view (docs/design.md, "Browser targets"). This read-only token
 * serves that record exactly as the browser's own module answered: its
 * C_GetInfo, slot and token information, and every object with every
 * attribute. It sits where a loaded upstream would, so the rest of the
 * module (hiding what grants trust, adding the view's objects, live .bit
 * answers) is the same for every target. While the view is unusable there
 * is no record, hence no slot: nothing is trusted (fail closed).
 *
 * Sessions have handles from 1 up; object handles are the record's index
 * plus 1 (never the top bit: handles.h). */
#include "nf.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
	int used, finding;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE *found;
	CK_ULONG nfound, pos, cap;
} snap_session;

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static snap_session *sessions;
static size_t nsessions;

void
snapshot_lock (void)
{
	pthread_mutex_lock (&snap_lock);
}

void
snapshot_unlock (void)
{
	pthread_mutex_unlock (&snap_lock);
}

/* The browser's token; while the view is closed, the empty token that says
 * so (notice.c), or nothing. */
static const nf_snapshot *
snap (void)
{
	return nf.view.snapshot != NULL ? nf.view.snapshot : notice_snapshot ();
}

static CK_RV
snap_C_Initialize (CK_VOID_PTR args)
{
	return CKR_OK;
}

static CK_RV
snap_C_Finalize (CK_VOID_PTR reserved)
{
	pthread_mutex_lock (&snap_lock);
		for (size_t i = 0; i < nsessions; i++)
			free (sessions[i].found);
		free (sessions);
		sessions = NULL;
		nsessions = 0;
	pthread_mutex_unlock (&snap_lock);
	return CKR_OK;
}

static CK_RV
snap_C_GetInfo (CK_INFO_PTR info)
{
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	if (snap () != NULL)
		*info = snap ()->info;
	else
		nf_fill_info (info, "ncfence browser snapshot");
	return CKR_OK;
}

static CK_RV
snap_C_GetSlotList (CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	CK_ULONG have = snap () != NULL;
	if (list == NULL) {
		*count = have;
		return CKR_OK;
	}
	if (*count < have) {
		*count = have;
		return CKR_BUFFER_TOO_SMALL;
	}
	if (have)
		list[0] = snap ()->slot;
	*count = have;
	return CKR_OK;
}

static int
slot_valid (CK_SLOT_ID slot)
{
	return snap () != NULL && snap ()->slot == slot;
}

/* CKR_OK once `out` is usable and `slot` is the snapshot's. */
static CK_RV
slot_answer (CK_SLOT_ID slot, const void *out)
{
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	return slot_valid (slot) ? CKR_OK : CKR_SLOT_ID_INVALID;
}

static CK_RV
snap_C_GetSlotInfo (CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	CK_RV rv = slot_answer (slot, info);
	if (rv == CKR_OK)
		*info = snap ()->slot_info;
	return rv;
}

static CK_RV
snap_C_GetTokenInfo (CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv = slot_answer (slot, info);
	if (rv == CKR_OK)
		*info = snap ()->token_info;
	return rv;
}

static CK_RV
snap_C_GetMechanismList (CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!slot_valid (slot))
		return CKR_SLOT_ID_INVALID;
	*count = 0;
	return CKR_OK;
}

static CK_RV
snap_C_GetMechanismInfo (CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	return slot_valid (slot) ? CKR_MECHANISM_INVALID : CKR_SLOT_ID_INVALID;
}

static CK_RV
snap_C_OpenSession (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR out)
{
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	if (!slot_valid (slot))
		return CKR_SLOT_ID_INVALID;
	if (!(flags & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	if (flags & CKF_RW_SESSION)
		return CKR_TOKEN_WRITE_PROTECTED;
	CK_RV rv = CKR_OK;
	pthread_mutex_lock (&snap_lock);
		size_t i = 0;
		while (i < nsessions && sessions[i].used)
			i++;
		if (i == nsessions) {
			size_t cap = nsessions ? nsessions * 2 : 8;
			snap_session *grown = realloc (sessions, cap * sizeof *grown);
			if (grown == NULL) {
				rv = CKR_HOST_MEMORY;
			} else {
				memset (grown + nsessions, 0, (cap - nsessions) * sizeof *grown);
				sessions = grown;
				nsessions = cap;
			}
		}
		if (rv == CKR_OK) {
			sessions[i].used = 1;
			sessions[i].finding = 0;
			sessions[i].slot = slot;
			*out = (CK_SESSION_HANDLE)(i + 1);
		}
	pthread_mutex_unlock (&snap_lock);
	return rv;
}

/* The session for h; call with snap_lock held. */
static snap_session *
session_inlock (CK_SESSION_HANDLE h)
{
	if (h == 0 || h > nsessions || !sessions[h - 1].used)
		return NULL;
	return &sessions[h - 1];
}

static CK_RV
snap_C_CloseSession (CK_SESSION_HANDLE h)
{
	CK_RV rv = CKR_OK;
	pthread_mutex_lock (&snap_lock);
		snap_session *s = session_inlock (h);
		if (s == NULL)
			rv = CKR_SESSION_HANDLE_INVALID;
		else
			s->used = s->finding = 0;
	pthread_mutex_unlock (&snap_lock);
	return rv;
}

static CK_RV
snap_C_CloseAllSessions (CK_SLOT_ID slot)
{
	if (!slot_valid (slot))
		return CKR_SLOT_ID_INVALID;
	pthread_mutex_lock (&snap_lock);
		for (size_t i = 0; i < nsessions; i++)
			if (sessions[i].slot == slot)
				sessions[i].used = sessions[i].finding = 0;
	pthread_mutex_unlock (&snap_lock);
	return CKR_OK;
}

static CK_RV
snap_C_GetSessionInfo (CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = CKR_OK;
	pthread_mutex_lock (&snap_lock);
		snap_session *s = session_inlock (h);
		if (s == NULL)
			rv = CKR_SESSION_HANDLE_INVALID;
		else
			*info = (CK_SESSION_INFO){ .slotID = s->slot, .state = CKS_RO_PUBLIC_SESSION, .flags = CKF_SERIAL_SESSION };
	pthread_mutex_unlock (&snap_lock);
	return rv;
}

static int
push_found (void *ctx, size_t object)
{
	snap_session *s = ctx;
	if (s->nfound == s->cap) {
		CK_ULONG cap = s->cap ? s->cap * 2 : 64;
		CK_OBJECT_HANDLE *grown = realloc (s->found, cap * sizeof *grown);
		if (grown == NULL)
			return -1;
		s->found = grown;
		s->cap = cap;
	}
	s->found[s->nfound++] = (CK_OBJECT_HANDLE)object + 1;
	return 0;
}

static CK_RV
snap_C_FindObjectsInit (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	if (tmpl == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = CKR_OK;
	pthread_mutex_lock (&snap_lock);
		snap_session *s = session_inlock (h);
		if (s == NULL) {
			rv = CKR_SESSION_HANDLE_INVALID;
		} else if (s->finding) {
			rv = CKR_OPERATION_ACTIVE;
		} else if (snap () == NULL) {
			rv = CKR_DEVICE_REMOVED;
		} else if (snap ()->token.nobjects == 0) {
			s->nfound = s->pos = 0; /* the closed notice: an empty token */
			s->finding = 1;
		} else {
			nf_view_probe p;
			view_probe_start (&snap ()->token, &p, tmpl, count);
			s->nfound = s->pos = 0;
			if (view_search (&snap ()->token, &p, s->slot, tmpl, count, push_found, s) < 0)
				rv = CKR_HOST_MEMORY;
			else
				s->finding = 1;
		}
	pthread_mutex_unlock (&snap_lock);
	return rv;
}

static CK_RV
snap_C_FindObjects (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR got)
{
	if ((out == NULL && max > 0) || got == NULL)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = CKR_OK;
	pthread_mutex_lock (&snap_lock);
		snap_session *s = session_inlock (h);
		if (s == NULL) {
			rv = CKR_SESSION_HANDLE_INVALID;
		} else if (!s->finding) {
			rv = CKR_OPERATION_NOT_INITIALIZED;
		} else {
			CK_ULONG n = s->nfound - s->pos < max ? s->nfound - s->pos : max;
			if (n > 0)
				memcpy (out, s->found + s->pos, n * sizeof *out);
			s->pos += n;
			*got = n;
		}
	pthread_mutex_unlock (&snap_lock);
	return rv;
}

static CK_RV
snap_C_FindObjectsFinal (CK_SESSION_HANDLE h)
{
	CK_RV rv = CKR_OK;
	pthread_mutex_lock (&snap_lock);
		snap_session *s = session_inlock (h);
		if (s == NULL)
			rv = CKR_SESSION_HANDLE_INVALID;
		else if (!s->finding)
			rv = CKR_OPERATION_NOT_INITIALIZED;
		else
			s->finding = 0;
	pthread_mutex_unlock (&snap_lock);
	return rv;
}

/* The recorded object behind handle h in session `session`, or NULL. */
static const nf_object *
object_of (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_RV *rv)
{
	int ok;
	pthread_mutex_lock (&snap_lock);
		ok = session_inlock (session) != NULL;
	pthread_mutex_unlock (&snap_lock);
	if (!ok) {
		*rv = CKR_SESSION_HANDLE_INVALID;
		return NULL;
	}
	if (snap () == NULL || h == 0 || h > snap ()->token.nobjects) {
		*rv = CKR_OBJECT_HANDLE_INVALID;
		return NULL;
	}
	return &snap ()->token.objects[h - 1];
}

static CK_RV
snap_C_GetAttributeValue (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	CK_RV rv = CKR_OK;
	if (tmpl == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	const nf_object *o = object_of (session, h, &rv);
	return o == NULL ? rv : attrs_read (o, tmpl, count);
}

static CK_RV
snap_C_GetObjectSize (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE h, CK_ULONG_PTR size)
{
	CK_RV rv = CKR_OK;
	if (size == NULL)
		return CKR_ARGUMENTS_BAD;
	if (object_of (session, h, &rv) == NULL)
		return rv;
	*size = CK_UNAVAILABLE_INFORMATION;
	return CKR_OK;
}

static CK_RV
snap_read_only (void)
{
	return CKR_TOKEN_WRITE_PROTECTED;
}

static CK_RV snap_C_SetAttributeValue (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n) { return snap_read_only (); }
static CK_RV snap_C_DestroyObject (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h) { return snap_read_only (); }
static CK_RV snap_C_CopyObject (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n, CK_OBJECT_HANDLE_PTR o) { return snap_read_only (); }

/* Everything else stays NULL: forward.c answers CKR_FUNCTION_NOT_SUPPORTED. */
static CK_FUNCTION_LIST snap_functions = {
	.version = { 2, 40 },
	.C_Initialize = snap_C_Initialize,
	.C_Finalize = snap_C_Finalize,
	.C_GetInfo = snap_C_GetInfo,
	.C_GetSlotList = snap_C_GetSlotList,
	.C_GetSlotInfo = snap_C_GetSlotInfo,
	.C_GetTokenInfo = snap_C_GetTokenInfo,
	.C_GetMechanismList = snap_C_GetMechanismList,
	.C_GetMechanismInfo = snap_C_GetMechanismInfo,
	.C_OpenSession = snap_C_OpenSession,
	.C_CloseSession = snap_C_CloseSession,
	.C_CloseAllSessions = snap_C_CloseAllSessions,
	.C_GetSessionInfo = snap_C_GetSessionInfo,
	.C_FindObjectsInit = snap_C_FindObjectsInit,
	.C_FindObjects = snap_C_FindObjects,
	.C_FindObjectsFinal = snap_C_FindObjectsFinal,
	.C_GetAttributeValue = snap_C_GetAttributeValue,
	.C_GetObjectSize = snap_C_GetObjectSize,
	.C_SetAttributeValue = snap_C_SetAttributeValue,
	.C_DestroyObject = snap_C_DestroyObject,
	.C_CopyObject = snap_C_CopyObject,
};

CK_FUNCTION_LIST_PTR
snapshot_functions (void)
{
	return &snap_functions;
}
