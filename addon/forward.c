/* Calls ncfence does not change: plain forwards to upstream, generated from
 * one list. With no upstream they answer as a module with no slots would. */
#include "nf.h"

/* A forward of `name`; `then` runs when the lower module answers CKR_OK. */
#define FWD(name, missing, params, args, then)                                          \
	static CK_RV nf_##name params                                                   \
	{                                                                               \
		if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))               \
			return CKR_CRYPTOKI_NOT_INITIALIZED;                            \
		CK_FUNCTION_LIST_PTR fl = __atomic_load_n (&nf.lower, __ATOMIC_ACQUIRE); \
		if (fl == NULL)                                                         \
			return missing;                                                 \
		if (fl->name == NULL)                                                   \
			return CKR_FUNCTION_NOT_SUPPORTED;                              \
		CK_RV rv = fl->name args;                                               \
		if (rv == CKR_OK)                                                       \
			then;                                                           \
		return rv;                                                              \
	}

#define S CKR_SLOT_ID_INVALID
#define H CKR_SESSION_HANDLE_INVALID
#define N CKR_FUNCTION_NOT_SUPPORTED
#define PLAIN_FORWARDS(X) \
	X (C_GetMechanismList, S, (CK_SLOT_ID a, CK_MECHANISM_TYPE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X (C_GetMechanismInfo, S, (CK_SLOT_ID a, CK_MECHANISM_TYPE b, CK_MECHANISM_INFO_PTR c), (a, b, c)) \
	X (C_InitToken, S, (CK_SLOT_ID a, CK_UTF8CHAR_PTR b, CK_ULONG c, CK_UTF8CHAR_PTR d), (a, b, c, d)) \
	X (C_InitPIN, H, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c), (a, b, c)) \
	X (C_SetPIN, H, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c, CK_UTF8CHAR_PTR d, CK_ULONG e), (a, b, c, d, e)) \
	X (C_GetSessionInfo, H, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b)) \
	X (C_GetOperationState, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X (C_SetOperationState, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e), (a, b, c, d, e)) \
	X (C_Login, H, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c, CK_ULONG d), (a, b, c, d)) \
	X (C_Logout, H, (CK_SESSION_HANDLE a), (a)) \
	X (C_CreateObject, H, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE_PTR d), (a, b, c, d)) \
	X (C_EncryptInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X (C_Encrypt, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_EncryptUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_EncryptFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X (C_DecryptInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X (C_Decrypt, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_DecryptUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_DecryptFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X (C_DigestInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b), (a, b)) \
	X (C_Digest, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_DigestUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X (C_DigestKey, H, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b)) \
	X (C_DigestFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X (C_SignInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X (C_Sign, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_SignUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X (C_SignFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c)) \
	X (C_SignRecoverInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X (C_SignRecover, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_VerifyInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X (C_Verify, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), (a, b, c, d, e)) \
	X (C_VerifyUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X (C_VerifyFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X (C_VerifyRecoverInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c)) \
	X (C_VerifyRecover, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_DigestEncryptUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_DecryptDigestUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_SignEncryptUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_DecryptVerifyUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e)) \
	X (C_GenerateKey, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (a, b, c, d, e)) \
	X (C_GenerateKeyPair, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e, CK_ULONG f, CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h)) \
	X (C_WrapKey, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f), (a, b, c, d, e, f)) \
	X (C_UnwrapKey, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f, CK_ULONG g, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h)) \
	X (C_DeriveKey, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f), (a, b, c, d, e, f)) \
	X (C_SeedRandom, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X (C_GenerateRandom, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c)) \
	X (C_GetFunctionStatus, H, (CK_SESSION_HANDLE a), (a)) \
	X (C_CancelFunction, H, (CK_SESSION_HANDLE a), (a)) \
	X (C_WaitForSlotEvent, N, (CK_FLAGS a, CK_SLOT_ID_PTR b, CK_VOID_PTR c), (a, b, c))

#define PLAIN(name, missing, params, args) FWD (name, missing, params, args, (void)0)
PLAIN_FORWARDS (PLAIN)

/* Slot and token descriptions pass through, except while the view is
 * closed: then they say so (notice.c). */
FWD (C_GetSlotInfo, S, (CK_SLOT_ID a, CK_SLOT_INFO_PTR b), (a, b), notice_slot_info (b))
FWD (C_GetTokenInfo, S, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b), notice_token_info (b))

/* With no upstream there are no slots. */
static CK_RV
nf_C_GetSlotList (CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	CK_FUNCTION_LIST_PTR fl = __atomic_load_n (&nf.lower, __ATOMIC_ACQUIRE);
	if (fl == NULL) {
		*count = 0;
		return CKR_OK;
	}
	return fl->C_GetSlotList (present, list, count);
}

void
forward_fill (CK_FUNCTION_LIST *f)
{
#define SET(name, missing, params, args) f->name = nf_##name;
	PLAIN_FORWARDS (SET)
#undef SET
	f->C_GetSlotList = nf_C_GetSlotList;
	f->C_GetSlotInfo = nf_C_GetSlotInfo;
	f->C_GetTokenInfo = nf_C_GetTokenInfo;
}
