/* The snapshot token: the lower module of a browser target.
 *
 * A browser's roots are compiled into its libxul, which exports no function
 * list for them, so the build reads them from inside the browser and records
 * them in the view (docs/design.md, "Browser targets"). This read-only token
 * answers as the browser's own module did, in its place, so the rest of the
 * module is the same for every target. With no usable view there is no
 * record, hence no slot (fail closed), or the closed notice's empty token.
 *
 * Only the slot, token and session calls go through its function list. Its
 * sessions are session.c's records (handles from 1 up); its objects are
 * found and read by find.c and object.c, as the view's are, under the
 * record's index plus 1 (never the top bit: handles.h). Those that grant
 * trust were marked hidden when the view was read (view.c). */
#include "nf.h"

static CK_SESSION_HANDLE last_session;

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
	__atomic_store_n (&last_session, 0, __ATOMIC_RELAXED);
	return CKR_OK;
}

static CK_RV
snap_C_Finalize (CK_VOID_PTR reserved)
{
	return CKR_OK;
}

static CK_RV
snap_C_GetSlotList (CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	const nf_snapshot *s = snap ();
	CK_ULONG have = s != NULL;
	CK_RV rv = list != NULL && *count < have ? CKR_BUFFER_TOO_SMALL : CKR_OK;
	if (rv == CKR_OK && list != NULL && have)
		list[0] = s->slot;
	*count = have;
	return rv;
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
	CK_RV rv = slot_answer (slot, count);
	if (rv == CKR_OK)
		*count = 0;
	return rv;
}

static CK_RV
snap_C_GetMechanismInfo (CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	return slot_valid (slot) ? CKR_MECHANISM_INVALID : CKR_SLOT_ID_INVALID;
}

static CK_RV
snap_C_OpenSession (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR out)
{
	CK_RV rv = slot_answer (slot, out);
	if (rv != CKR_OK)
		return rv;
	if (!(flags & CKF_SERIAL_SESSION))
		return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	if (flags & CKF_RW_SESSION)
		return CKR_TOKEN_WRITE_PROTECTED;
	*out = __atomic_add_fetch (&last_session, 1, __ATOMIC_RELAXED);
	return CKR_OK;
}

static CK_RV
snap_C_CloseSession (CK_SESSION_HANDLE h)
{
	int known;
	nf_lock ();
		known = session_lookup_inlock (h) != NULL;
	nf_unlock ();
	return known ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
}

static CK_RV
snap_C_CloseAllSessions (CK_SLOT_ID slot)
{
	return slot_valid (slot) ? CKR_OK : CKR_SLOT_ID_INVALID;
}

static CK_RV
snap_C_GetSessionInfo (CK_SESSION_HANDLE h, CK_SESSION_INFO_PTR info)
{
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = CKR_SESSION_HANDLE_INVALID;
	nf_lock ();
		nf_session *s = session_lookup_inlock (h);
		if (s != NULL) {
			*info = (CK_SESSION_INFO){ .slotID = s->slot, .state = CKS_RO_PUBLIC_SESSION, .flags = CKF_SERIAL_SESSION };
			rv = CKR_OK;
		}
	nf_unlock ();
	return rv;
}

/* Everything else stays NULL: forward.c answers CKR_FUNCTION_NOT_SUPPORTED,
 * and the module never asks for objects through this list. */
static CK_FUNCTION_LIST snap_functions = {
	.version = { 2, 40 },
	.C_Initialize = snap_C_Initialize,
	.C_Finalize = snap_C_Finalize,
	.C_GetSlotList = snap_C_GetSlotList,
	.C_GetSlotInfo = snap_C_GetSlotInfo,
	.C_GetTokenInfo = snap_C_GetTokenInfo,
	.C_GetMechanismList = snap_C_GetMechanismList,
	.C_GetMechanismInfo = snap_C_GetMechanismInfo,
	.C_OpenSession = snap_C_OpenSession,
	.C_CloseSession = snap_C_CloseSession,
	.C_CloseAllSessions = snap_C_CloseAllSessions,
	.C_GetSessionInfo = snap_C_GetSessionInfo,
};

CK_FUNCTION_LIST_PTR
snapshot_functions (void)
{
	return &snap_functions;
}

const nf_object *
snapshot_object (CK_OBJECT_HANDLE h)
{
	const nf_snapshot *s = snap ();
	if (s == NULL || h == 0 || h > s->token.nobjects || s->token.objects[h - 1].hidden)
		return NULL;
	return &s->token.objects[h - 1];
}

typedef struct {
	int (*emit) (void *ctx, CK_OBJECT_HANDLE h);
	void *ctx;
} handle_sink;

static int
emit_handle (void *sink, size_t object)
{
	handle_sink *k = sink;
	return k->emit (k->ctx, (CK_OBJECT_HANDLE)object + 1);
}

int
snapshot_search (CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count, int (*emit) (void *ctx, CK_OBJECT_HANDLE h), void *ctx)
{
	const nf_snapshot *s = snap ();
	handle_sink sink = { emit, ctx };
	nf_view_probe p;
	if (s == NULL)
		return 0;
	view_probe_start (&s->token, &p, tmpl, count);
	return view_search (&s->token, &p, slot, tmpl, count, emit_handle, &sink);
}
