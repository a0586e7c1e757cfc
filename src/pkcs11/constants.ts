// PKCS#11 constants ncfence uses, standard and vendor (NSS, p11-kit).
// Values: OASIS PKCS#11 2.40 and 3.2 (trust objects); nss lib/util/pkcs11n.h;
// p11-kit common/pkcs11x.h.

export const CKO = {
  CERTIFICATE: 0x1,
  /** PKCS#11 3.2 trust object (NSS >= 3.114 and Firefox's builtins serve these). */
  TRUST: 0xb,
  NSS_TRUST: 0xce534353,
  NSS_BUILTIN_ROOT_LIST: 0xce534354,
  X_TRUST_ASSERTION: 0xd8444764, // CKO_X_VENDOR + 100 (p11-kit common/pkcs11x.h)
} as const;

export const CKA = {
  CLASS: 0x0,
  TOKEN: 0x1,
  PRIVATE: 0x2,
  LABEL: 0x3,
  VALUE: 0x11,
  CERTIFICATE_TYPE: 0x80,
  ISSUER: 0x81,
  SERIAL_NUMBER: 0x82,
  TRUSTED: 0x86,
  NAME_HASH_ALGORITHM: 0x8c,
  CERTIFICATE_CATEGORY: 0x87,
  JAVA_MIDP_SECURITY_DOMAIN: 0x88,
  URL: 0x89,
  HASH_OF_SUBJECT_PUBLIC_KEY: 0x8a,
  HASH_OF_ISSUER_PUBLIC_KEY: 0x8b,
  CHECK_VALUE: 0x90,
  SUBJECT: 0x101,
  ID: 0x102,
  START_DATE: 0x110,
  END_DATE: 0x111,
  PUBLIC_KEY_INFO: 0x129,
  MODIFIABLE: 0x170,
  // PKCS#11 3.2 trust purposes (NSS: CKA_PKCS_TRUST_*), CK_TRUST values.
  PKCS_TRUST_SERVER_AUTH: 0x62c,
  PKCS_TRUST_CLIENT_AUTH: 0x62d,
  PKCS_TRUST_CODE_SIGNING: 0x62e,
  PKCS_TRUST_EMAIL_PROTECTION: 0x62f,
  PKCS_TRUST_IPSEC_IKE: 0x630,
  PKCS_TRUST_TIME_STAMPING: 0x631,
  PKCS_TRUST_OCSP_SIGNING: 0x632,
  HASH_OF_CERTIFICATE: 0x635,
  NSS_MOZILLA_CA_POLICY: 0xce534372,
  NSS_SERVER_DISTRUST_AFTER: 0xce534373,
  NSS_EMAIL_DISTRUST_AFTER: 0xce534374,
  TRUST_DIGITAL_SIGNATURE: 0xce536351,
  TRUST_TIME_STAMPING: 0xce53635f,
  TRUST_SERVER_AUTH: 0xce536358,
  TRUST_CLIENT_AUTH: 0xce536359,
  TRUST_CODE_SIGNING: 0xce53635a,
  TRUST_EMAIL_PROTECTION: 0xce53635b,
  TRUST_STEP_UP_APPROVED: 0xce536360,
  CERT_SHA1_HASH: 0xce5363b4,
  CERT_MD5_HASH: 0xce5363b5,
  X_ASSERTION_TYPE: 0xd8444701,
  X_CERTIFICATE_VALUE: 0xd8444702,
  X_PURPOSE: 0xd8444703,
  X_PEER: 0xd8444704,
  X_DISTRUSTED: 0xd8444764,
  /**
   * ncfence's own (CKA_VENDOR_DEFINED | "NCF\0" + 1), only in the view file,
   * never served: which processes a view object is for, a CK_ULONG of
   * AUDIENCE (addon/view.c, docs/view-format.md).
   */
  NCFENCE_AUDIENCE: 0xce434601,
} as const;

/**
 * Values of CKA.NCFENCE_AUDIENCE, for policies with two forms of R'
 * (docs/policy.md, 'Two forms of R''): the NSS form is served unless the
 * module knows NSS is not in the process; the plain form only then.
 */
export const AUDIENCE = { NSS_FORM: 1, PLAIN_FORM: 2 } as const;

export const CKT = {
  NSS_TRUSTED: 0xce534351,
  NSS_TRUSTED_DELEGATOR: 0xce534352,
  NSS_MUST_VERIFY_TRUST: 0xce534353,
  NSS_TRUST_UNKNOWN: 0xce534355,
  NSS_NOT_TRUSTED: 0xce53435a,
  NSS_VALID_DELEGATOR: 0xce53435b,
  X_DISTRUSTED_CERTIFICATE: 1,
  X_ANCHORED_CERTIFICATE: 2,
  X_PINNED_CERTIFICATE: 3,
  // PKCS#11 3.2 CK_TRUST
  TRUST_UNKNOWN: 0,
  TRUSTED: 1,
  TRUST_ANCHOR: 2,
  NOT_TRUSTED: 3,
  TRUST_MUST_VERIFY_TRUST: 4,
} as const;

export const CKM_SHA_1 = 0x220;
export const CKM_SHA256 = 0x250;

export const CKC_X_509 = 0;
export const CKR_ATTRIBUTE_TYPE_INVALID = 0x12;

/**
 * Names of the return values (CK_RV) of PKCS#11 v3.0 (OASIS pkcs11t.h, as
 * p11-kit's pkcs11.h carries them), for messages: upstream's answers are
 * reported by name, as pkcs11js did.
 */
const CKR_NAMES = new Map<number, string>([
  [0x0, 'OK'],
  [0x1, 'CANCEL'],
  [0x2, 'HOST_MEMORY'],
  [0x3, 'SLOT_ID_INVALID'],
  [0x5, 'GENERAL_ERROR'],
  [0x6, 'FUNCTION_FAILED'],
  [0x7, 'ARGUMENTS_BAD'],
  [0x8, 'NO_EVENT'],
  [0x9, 'NEED_TO_CREATE_THREADS'],
  [0xa, 'CANT_LOCK'],
  [0x10, 'ATTRIBUTE_READ_ONLY'],
  [0x11, 'ATTRIBUTE_SENSITIVE'],
  [0x12, 'ATTRIBUTE_TYPE_INVALID'],
  [0x13, 'ATTRIBUTE_VALUE_INVALID'],
  [0x1b, 'ACTION_PROHIBITED'],
  [0x20, 'DATA_INVALID'],
  [0x21, 'DATA_LEN_RANGE'],
  [0x30, 'DEVICE_ERROR'],
  [0x31, 'DEVICE_MEMORY'],
  [0x32, 'DEVICE_REMOVED'],
  [0x40, 'ENCRYPTED_DATA_INVALID'],
  [0x41, 'ENCRYPTED_DATA_LEN_RANGE'],
  [0x50, 'FUNCTION_CANCELED'],
  [0x51, 'FUNCTION_NOT_PARALLEL'],
  [0x54, 'FUNCTION_NOT_SUPPORTED'],
  [0x60, 'KEY_HANDLE_INVALID'],
  [0x62, 'KEY_SIZE_RANGE'],
  [0x63, 'KEY_TYPE_INCONSISTENT'],
  [0x64, 'KEY_NOT_NEEDED'],
  [0x65, 'KEY_CHANGED'],
  [0x66, 'KEY_NEEDED'],
  [0x67, 'KEY_INDIGESTIBLE'],
  [0x68, 'KEY_FUNCTION_NOT_PERMITTED'],
  [0x69, 'KEY_NOT_WRAPPABLE'],
  [0x6a, 'KEY_UNEXTRACTABLE'],
  [0x70, 'MECHANISM_INVALID'],
  [0x71, 'MECHANISM_PARAM_INVALID'],
  [0x82, 'OBJECT_HANDLE_INVALID'],
  [0x90, 'OPERATION_ACTIVE'],
  [0x91, 'OPERATION_NOT_INITIALIZED'],
  [0xa0, 'PIN_INCORRECT'],
  [0xa1, 'PIN_INVALID'],
  [0xa2, 'PIN_LEN_RANGE'],
  [0xa3, 'PIN_EXPIRED'],
  [0xa4, 'PIN_LOCKED'],
  [0xb0, 'SESSION_CLOSED'],
  [0xb1, 'SESSION_COUNT'],
  [0xb3, 'SESSION_HANDLE_INVALID'],
  [0xb4, 'SESSION_PARALLEL_NOT_SUPPORTED'],
  [0xb5, 'SESSION_READ_ONLY'],
  [0xb6, 'SESSION_EXISTS'],
  [0xb7, 'SESSION_READ_ONLY_EXISTS'],
  [0xb8, 'SESSION_READ_WRITE_SO_EXISTS'],
  [0xc0, 'SIGNATURE_INVALID'],
  [0xc1, 'SIGNATURE_LEN_RANGE'],
  [0xd0, 'TEMPLATE_INCOMPLETE'],
  [0xd1, 'TEMPLATE_INCONSISTENT'],
  [0xe0, 'TOKEN_NOT_PRESENT'],
  [0xe1, 'TOKEN_NOT_RECOGNIZED'],
  [0xe2, 'TOKEN_WRITE_PROTECTED'],
  [0xf0, 'UNWRAPPING_KEY_HANDLE_INVALID'],
  [0xf1, 'UNWRAPPING_KEY_SIZE_RANGE'],
  [0xf2, 'UNWRAPPING_KEY_TYPE_INCONSISTENT'],
  [0x100, 'USER_ALREADY_LOGGED_IN'],
  [0x101, 'USER_NOT_LOGGED_IN'],
  [0x102, 'USER_PIN_NOT_INITIALIZED'],
  [0x103, 'USER_TYPE_INVALID'],
  [0x104, 'USER_ANOTHER_ALREADY_LOGGED_IN'],
  [0x105, 'USER_TOO_MANY_TYPES'],
  [0x110, 'WRAPPED_KEY_INVALID'],
  [0x112, 'WRAPPED_KEY_LEN_RANGE'],
  [0x113, 'WRAPPING_KEY_HANDLE_INVALID'],
  [0x114, 'WRAPPING_KEY_SIZE_RANGE'],
  [0x115, 'WRAPPING_KEY_TYPE_INCONSISTENT'],
  [0x120, 'RANDOM_SEED_NOT_SUPPORTED'],
  [0x121, 'RANDOM_NO_RNG'],
  [0x130, 'DOMAIN_PARAMS_INVALID'],
  [0x140, 'CURVE_NOT_SUPPORTED'],
  [0x150, 'BUFFER_TOO_SMALL'],
  [0x160, 'SAVED_STATE_INVALID'],
  [0x170, 'INFORMATION_SENSITIVE'],
  [0x180, 'STATE_UNSAVEABLE'],
  [0x190, 'CRYPTOKI_NOT_INITIALIZED'],
  [0x191, 'CRYPTOKI_ALREADY_INITIALIZED'],
  [0x1a0, 'MUTEX_BAD'],
  [0x1a1, 'MUTEX_NOT_LOCKED'],
  [0x1b0, 'NEW_PIN_MODE'],
  [0x1b1, 'NEXT_OTP'],
  [0x1c0, 'EXCEEDED_MAX_ITERATIONS'],
  [0x1c1, 'FIPS_SELF_TEST_FAILED'],
  [0x1c2, 'LIBRARY_LOAD_FAILED'],
  [0x1c3, 'PIN_TOO_WEAK'],
  [0x1c4, 'PUBLIC_KEY_INVALID'],
  [0x200, 'FUNCTION_REJECTED'],
]);

/** `CKR_DEVICE_ERROR` for 0x30; a vendor or unknown value in hex. */
export function rvName(rv: number): string {
  const name = CKR_NAMES.get(rv);
  if (name !== undefined) return `CKR_${name}`;
  return rv >= 0x80000000 ? `CKR_VENDOR_DEFINED+0x${(rv - 0x80000000).toString(16)}` : `CKR_0x${rv.toString(16)}`;
}

const range = (first: number, last: number): number[] => Array.from({ length: last - first + 1 }, (_, i) => first + i);

/** The NSS trust attributes that carry a CK_TRUST value (digital signature .. time stamping). */
export const TRUST_PURPOSE_ATTRS: readonly number[] = range(CKA.TRUST_DIGITAL_SIGNATURE, CKA.TRUST_TIME_STAMPING);

/** The PKCS#11 3.2 trust purposes (server auth .. OCSP signing). */
export const PKCS_TRUST_PURPOSE_ATTRS: readonly number[] = range(CKA.PKCS_TRUST_SERVER_AUTH, CKA.PKCS_TRUST_OCSP_SIGNING);

/** PKCS#11 3.2 trust values that make an object trusted (anything but unknown, not trusted, must verify). */
export function pkcsTrustGrants(value: number): boolean {
  return value !== CKT.TRUST_UNKNOWN && value !== CKT.NOT_TRUSTED && value !== CKT.TRUST_MUST_VERIFY_TRUST;
}

/** Trust values that make an object a trust anchor or a trusted end entity. */
export function trustGrants(value: number): boolean {
  return (
    value !== CKT.NSS_NOT_TRUSTED &&
    value !== CKT.NSS_MUST_VERIFY_TRUST &&
    value !== CKT.NSS_TRUST_UNKNOWN &&
    value !== CKT.NSS_VALID_DELEGATOR
  );
}

/** Attributes read from every upstream object; absent ones are simply not recorded. */
export const CANDIDATE_ATTRS: readonly number[] = [
  CKA.CLASS,
  CKA.TOKEN,
  CKA.PRIVATE,
  CKA.LABEL,
  CKA.VALUE,
  CKA.CERTIFICATE_TYPE,
  CKA.ISSUER,
  CKA.SERIAL_NUMBER,
  CKA.TRUSTED,
  CKA.CERTIFICATE_CATEGORY,
  CKA.JAVA_MIDP_SECURITY_DOMAIN,
  CKA.URL,
  CKA.HASH_OF_SUBJECT_PUBLIC_KEY,
  CKA.HASH_OF_ISSUER_PUBLIC_KEY,
  CKA.CHECK_VALUE,
  CKA.SUBJECT,
  CKA.ID,
  CKA.START_DATE,
  CKA.END_DATE,
  CKA.PUBLIC_KEY_INFO,
  CKA.MODIFIABLE,
  CKA.NSS_MOZILLA_CA_POLICY,
  CKA.NSS_SERVER_DISTRUST_AFTER,
  CKA.NSS_EMAIL_DISTRUST_AFTER,
  ...TRUST_PURPOSE_ATTRS,
  ...PKCS_TRUST_PURPOSE_ATTRS,
  CKA.TRUST_STEP_UP_APPROVED,
  CKA.CERT_SHA1_HASH,
  CKA.CERT_MD5_HASH,
  CKA.X_ASSERTION_TYPE,
  CKA.X_CERTIFICATE_VALUE,
  CKA.X_PURPOSE,
  CKA.X_PEER,
  CKA.X_DISTRUSTED,
  CKA.NAME_HASH_ALGORITHM,
  CKA.HASH_OF_CERTIFICATE,
];
