/* Calls ncfence does not change: plain forwards to upstream, generated from
 * one list. With no upstream they answer as a module with no slots would. */
#include "nf.h"

static CK_FUNCTION_LIST_PTR
lower_get (void)
{
	return __atomic_load_n (&nf.lower, __ATOMIC_ACQUIRE);
}

#define FWD(name, missing, params, args)                                  \
	static CK_RV nf_##name params                                     \
	{                                                                 \
		if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE)) \
			return CKR_CRYPTOKI_NOT_INITIALIZED;              \
		CK_FUNCTION_LIST_PTR fl = lower_get ();                   \
		if (fl == NULL)                                           \
			return missing;                                   \
		if (fl->name == NULL)                                     \
			return CKR_FUNCTION_NOT_SUPPORTED;                \
		return fl->name args;                                     \
	}

#define S CKR_SLOT_ID_INVALID
#define H CKR_SESSION_HANDLE_INVALID
#define N CKR_FUNCTION_NOT_SUPPORTED
FWD (C_GetMechanismList, S, (CK_SLOT_ID a, CK_MECHANISM_TYPE_PTR b, CK_ULONG_PTR c), (a, b, c))
FWD (C_GetMechanismInfo, S, (CK_SLOT_ID a, CK_MECHANISM_TYPE b, CK_MECHANISM_INFO_PTR c), (a, b, c))
FWD (C_InitToken, S, (CK_SLOT_ID a, CK_UTF8CHAR_PTR b, CK_ULONG c, CK_UTF8CHAR_PTR d), (a, b, c, d))
FWD (C_InitPIN, H, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c), (a, b, c))
FWD (C_SetPIN, H, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c, CK_UTF8CHAR_PTR d, CK_ULONG e), (a, b, c, d, e))
FWD (C_GetSessionInfo, H, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b))
FWD (C_GetOperationState, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c))
FWD (C_SetOperationState, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e), (a, b, c, d, e))
FWD (C_Login, H, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c, CK_ULONG d), (a, b, c, d))
FWD (C_Logout, H, (CK_SESSION_HANDLE a), (a))
FWD (C_CreateObject, H, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c, CK_OBJECT_HANDLE_PTR d), (a, b, c, d))
FWD (C_EncryptInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
FWD (C_Encrypt, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_EncryptUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_EncryptFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c))
FWD (C_DecryptInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
FWD (C_Decrypt, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_DecryptUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_DecryptFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c))
FWD (C_DigestInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b), (a, b))
FWD (C_Digest, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_DigestUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
FWD (C_DigestKey, H, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b))
FWD (C_DigestFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c))
FWD (C_SignInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
FWD (C_Sign, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_SignUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
FWD (C_SignFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c), (a, b, c))
FWD (C_SignRecoverInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
FWD (C_SignRecover, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_VerifyInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
FWD (C_Verify, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG e), (a, b, c, d, e))
FWD (C_VerifyUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
FWD (C_VerifyFinal, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
FWD (C_VerifyRecoverInit, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c), (a, b, c))
FWD (C_VerifyRecover, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_DigestEncryptUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_DecryptDigestUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_SignEncryptUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_DecryptVerifyUpdate, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))
FWD (C_GenerateKey, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e), (a, b, c, d, e))
FWD (C_GenerateKeyPair, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e, CK_ULONG f, CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h))
FWD (C_WrapKey, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f), (a, b, c, d, e, f))
FWD (C_UnwrapKey, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e, CK_ATTRIBUTE_PTR f, CK_ULONG g, CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h))
FWD (C_DeriveKey, H, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f), (a, b, c, d, e, f))
FWD (C_SeedRandom, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
FWD (C_GenerateRandom, H, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c), (a, b, c))
FWD (C_GetFunctionStatus, H, (CK_SESSION_HANDLE a), (a))
FWD (C_CancelFunction, H, (CK_SESSION_HANDLE a), (a))
FWD (C_WaitForSlotEvent, N, (CK_FLAGS a, CK_SLOT_ID_PTR b, CK_VOID_PTR c), (a, b, c))

/* Slot and token descriptions pass through, except while the view is
 * closed: then they say so (notice.c). */
static CK_RV
nf_C_GetSlotInfo (CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	CK_FUNCTION_LIST_PTR fl = lower_get ();
	if (fl == NULL)
		return CKR_SLOT_ID_INVALID;
	CK_RV rv = fl->C_GetSlotInfo ? fl->C_GetSlotInfo (slot, info) : CKR_FUNCTION_NOT_SUPPORTED;
	if (rv == CKR_OK)
		notice_slot_info (info);
	return rv;
}

static CK_RV
nf_C_GetTokenInfo (CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	CK_FUNCTION_LIST_PTR fl = lower_get ();
	if (fl == NULL)
		return CKR_SLOT_ID_INVALID;
	CK_RV rv = fl->C_GetTokenInfo ? fl->C_GetTokenInfo (slot, info) : CKR_FUNCTION_NOT_SUPPORTED;
	if (rv == CKR_OK)
		notice_token_info (info);
	return rv;
}

/* With no upstream there are no slots. */
static CK_RV
nf_C_GetSlotList (CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	if (!__atomic_load_n (&nf.initialized, __ATOMIC_ACQUIRE))
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	CK_FUNCTION_LIST_PTR fl = lower_get ();
	if (fl == NULL) {
		*count = 0;
		return CKR_OK;
	}
	return fl->C_GetSlotList (present, list, count);
}

void
forward_fill (CK_FUNCTION_LIST *f)
{
#define SET(name) f->name = nf_##name;
	SET (C_GetSlotList) SET (C_GetSlotInfo) SET (C_GetTokenInfo) SET (C_GetMechanismList)
	SET (C_GetMechanismInfo) SET (C_InitToken) SET (C_InitPIN) SET (C_SetPIN) SET (C_GetSessionInfo)
	SET (C_GetOperationState) SET (C_SetOperationState) SET (C_Login) SET (C_Logout)
	SET (C_CreateObject) SET (C_EncryptInit) SET (C_Encrypt) SET (C_EncryptUpdate) SET (C_EncryptFinal)
	SET (C_DecryptInit) SET (C_Decrypt) SET (C_DecryptUpdate) SET (C_DecryptFinal) SET (C_DigestInit)
	SET (C_Digest) SET (C_DigestUpdate) SET (C_DigestKey) SET (C_DigestFinal) SET (C_SignInit)
	SET (C_Sign) SET (C_SignUpdate) SET (C_SignFinal) SET (C_SignRecoverInit) SET (C_SignRecover)
	SET (C_VerifyInit) SET (C_Verify) SET (C_VerifyUpdate) SET (C_VerifyFinal) SET (C_VerifyRecoverInit)
	SET (C_VerifyRecover) SET (C_DigestEncryptUpdate) SET (C_DecryptDigestUpdate)
	SET (C_SignEncryptUpdate) SET (C_DecryptVerifyUpdate) SET (C_GenerateKey) SET (C_GenerateKeyPair)
	SET (C_WrapKey) SET (C_UnwrapKey) SET (C_DeriveKey) SET (C_SeedRandom) SET (C_GenerateRandom)
	SET (C_GetFunctionStatus) SET (C_CancelFunction) SET (C_WaitForSlotEvent)
#undef SET
}
