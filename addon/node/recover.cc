// Node binding for certified mode (src/namecoin/stapled.ts): the public key a
// compact message signature recovers to, with libsecp256k1, the library and
// the calls Namecoin Core's CPubKey::RecoverCompact uses
// (secp256k1_ecdsa_recoverable_signature_parse_compact, secp256k1_ecdsa_recover,
// secp256k1_ec_pubkey_serialize). Input comes from a TLS peer: every length is
// checked here, and a signature that recovers nothing returns null; nothing
// throws past this function but a TypeError for a caller's wrong argument types.

#include <napi.h>

#include <secp256k1.h>
#include <secp256k1_recovery.h>

static const secp256k1_context *
recover_context ()
{
	// Created once, never written after: verification needs no randomization.
	static secp256k1_context *ctx = secp256k1_context_create (SECP256K1_CONTEXT_NONE);
	return ctx;
}

// recoverCompact(rs: Uint8Array(64), recid: 0..3, hash: Uint8Array(32), compressed: boolean) -> Uint8Array | null
static Napi::Value
recover_compact (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	if (info.Length () != 4 || !info[0].IsTypedArray () || !info[1].IsNumber () || !info[2].IsTypedArray () || !info[3].IsBoolean ()) {
		Napi::TypeError::New (env, "recoverCompact(rs, recid, hash, compressed)").ThrowAsJavaScriptException ();
		return env.Null ();
	}
	Napi::Uint8Array rs = info[0].As<Napi::Uint8Array> ();
	Napi::Uint8Array hash = info[2].As<Napi::Uint8Array> ();
	int32_t recid = info[1].As<Napi::Number> ().Int32Value ();
	bool compressed = info[3].As<Napi::Boolean> ().Value ();
	if (rs.ByteLength () != 64 || hash.ByteLength () != 32 || recid < 0 || recid > 3)
		return env.Null ();
	const secp256k1_context *ctx = recover_context ();
	if (ctx == nullptr)
		return env.Null ();
	secp256k1_ecdsa_recoverable_signature sig;
	secp256k1_pubkey pub;
	if (!secp256k1_ecdsa_recoverable_signature_parse_compact (ctx, &sig, rs.Data (), recid))
		return env.Null ();
	if (!secp256k1_ecdsa_recover (ctx, &pub, &sig, hash.Data ()))
		return env.Null ();
	unsigned char out[65];
	size_t len = sizeof out;
	secp256k1_ec_pubkey_serialize (ctx, out, &len, &pub, compressed ? SECP256K1_EC_COMPRESSED : SECP256K1_EC_UNCOMPRESSED);
	Napi::Uint8Array result = Napi::Uint8Array::New (env, len);
	for (size_t i = 0; i < len; i++)
		result[i] = out[i];
	return result;
}

void
recover_register (Napi::Env env, Napi::Object exports)
{
	exports.Set ("recoverCompact", Napi::Function::New (env, recover_compact, "recoverCompact"));
}
