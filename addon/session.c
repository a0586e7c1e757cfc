/* Session table: which slot each upstream session belongs to, and its find
 * snapshot. Session handles are upstream's, passed through unchanged. */
#include "nf.h"

#include <stdlib.h>

nf_session *
session_lookup_inlock (CK_SESSION_HANDLE h)
{
	uint64_t v;
	return map_get (&nf.sessions, h, &v) ? (nf_session *)(uintptr_t)v : NULL;
}

nf_session *
session_owned (CK_SESSION_HANDLE h)
{
	nf_session *s = fast_session_ptr (h);
	if (s == NULL || !__atomic_load_n (&s->live, __ATOMIC_ACQUIRE) || __atomic_load_n (&s->handle, __ATOMIC_ACQUIRE) != h)
		return NULL;
	return s;
}

/* Back to the pool: the memory stays valid for stale hint readers. */
static void
session_retire_inlock (nf_session *s)
{
	__atomic_store_n (&s->live, 0, __ATOMIC_RELEASE);
	s->finding = 0;
	s->next_free = nf.free_sessions;
	nf.free_sessions = s;
}

void
session_free_all_inlock (void)
{
	for (size_t i = 0; i < nf.sessions.cap; i++)
		if (nf.sessions.used[i])
			session_retire_inlock ((nf_session *)(uintptr_t)nf.sessions.vals[i]);
	map_free (&nf.sessions);
	while (nf.free_sessions != NULL) {
		nf_session *next = nf.free_sessions->next_free;
		free (nf.free_sessions->found);
		free (nf.free_sessions);
		nf.free_sessions = next;
	}
}

CK_RV
nf_C_OpenSession (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR out)
{
	CK_FUNCTION_LIST_PTR fl = __atomic_load_n (&nf.lower, __ATOMIC_ACQUIRE);
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	if (fl == NULL)
		return CKR_SLOT_ID_INVALID;
	CK_RV rv = fl->C_OpenSession (slot, flags, app, notify, out);
	if (rv != CKR_OK)
		return rv;
	nf_lock ();
		nf_session *s = nf.free_sessions;
		if (s != NULL)
			nf.free_sessions = s->next_free;
		else
			s = calloc (1, sizeof *s);
		int put = -1;
		if (s != NULL) {
			s->slot = slot;
			s->finding = 0;
			s->nfound = s->pos = 0;
			__atomic_store_n (&s->handle, *out, __ATOMIC_RELEASE);
			__atomic_store_n (&s->live, 1, __ATOMIC_RELEASE);
			put = map_put (&nf.sessions, *out, (uint64_t)(uintptr_t)s);
			if (put == 0)
				fast_session_put (*out, slot, s);
			else
				session_retire_inlock (s);
		}
	nf_unlock ();
	if (put == 0) {
		nf_debug (NF_DBG_SESSION, "out: C_OpenSession slot %lu -> session %lu", slot, *out);
		return CKR_OK;
	}
	fl->C_CloseSession (*out);
	return CKR_HOST_MEMORY;
}

CK_RV
nf_C_CloseSession (CK_SESSION_HANDLE h)
{
	CK_FUNCTION_LIST_PTR fl = __atomic_load_n (&nf.lower, __ATOMIC_ACQUIRE);
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (fl == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	/* The record is taken before upstream closes the handle: once it has,
	 * another thread's C_OpenSession may get the same handle back and its
	 * new record must not be the one retired here (review). */
	nf_session *s;
	nf_lock ();
		s = session_lookup_inlock (h);
	nf_unlock ();
	fast_session_forget (h);
	CK_RV rv = fl->C_CloseSession (h);
	if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID) {
		nf_lock ();
			if (s != NULL && session_lookup_inlock (h) == s)
				map_del (&nf.sessions, h);
			if (s != NULL && __atomic_load_n (&s->live, __ATOMIC_ACQUIRE) && s->handle == h)
				session_retire_inlock (s);
		nf_unlock ();
	}
	return rv;
}

CK_RV
nf_C_CloseAllSessions (CK_SLOT_ID slot)
{
	CK_FUNCTION_LIST_PTR fl = __atomic_load_n (&nf.lower, __ATOMIC_ACQUIRE);
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (fl == NULL)
		return CKR_SLOT_ID_INVALID;
	CK_RV rv = fl->C_CloseAllSessions (slot);
	if (rv != CKR_OK)
		return rv;
	nf_lock ();
		for (int again = 1; again;) {
			again = 0;
			for (size_t i = 0; i < nf.sessions.cap; i++) {
				nf_session *s = (nf_session *)(uintptr_t)nf.sessions.vals[i];
				if (nf.sessions.used[i] && s->slot == slot) {
					fast_session_forget (nf.sessions.keys[i]);
					map_del (&nf.sessions, nf.sessions.keys[i]);
					session_retire_inlock (s);
					again = 1; /* deletion shifts entries: rescan */
					break;
				}
			}
		}
	nf_unlock ();
	return CKR_OK;
}
