// Which upstream objects grant trust, for the build (src/compile/plan.ts
// grantsTrust): the module's own rule, addon/trust.c.
#include <napi.h>

#include <vector>

#include <p11-kit/pkcs11.h>

extern "C" int trust_object (const CK_ATTRIBUTE *attrs, CK_ULONG n);
extern "C" CK_ULONG trust_template (CK_OBJECT_CLASS cls, CK_ATTRIBUTE *t, CK_ULONG *vals);

// grantsTrust(attrs: [type, Uint8Array][]): whether an object with these
// attributes grants trust (or is malformed), by the module's rule.
static Napi::Value
trust_grants (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	bool ok = info.Length () == 1 && info[0].IsArray ();
	Napi::Array list = ok ? info[0].As<Napi::Array> () : Napi::Array::New (env);
	std::vector<CK_ATTRIBUTE> attrs (list.Length ());
	for (uint32_t i = 0; ok && i < list.Length (); i++) {
		Napi::Value e = list[i];
		Napi::Value type = e.IsArray () ? e.As<Napi::Array> ()[0u] : env.Undefined ();
		Napi::Value value = e.IsArray () ? e.As<Napi::Array> ()[1u] : env.Undefined ();
		ok = type.IsNumber () && value.IsTypedArray () && value.As<Napi::TypedArray> ().TypedArrayType () == napi_uint8_array;
		if (ok)
			attrs[i] = { (CK_ATTRIBUTE_TYPE)type.As<Napi::Number> ().Int64Value (), value.As<Napi::Uint8Array> ().Data (),
			             value.As<Napi::Uint8Array> ().ByteLength () };
	}
	if (!ok) {
		Napi::TypeError::New (env, "grantsTrust(attrs): an array of [type, Uint8Array]").ThrowAsJavaScriptException ();
		return env.Null ();
	}
	return Napi::Boolean::New (env, trust_object (attrs.data (), attrs.size ()) != 0);
}

void
trust_register (Napi::Env env, Napi::Object exports)
{
	exports.Set ("grantsTrust", Napi::Function::New (env, trust_grants, "grantsTrust"));
	// What trust_object reads: CKA_CLASS, and all a class it does not know is asked for.
	CK_ATTRIBUTE t[64] = { { CKA_CLASS, nullptr, 0 } };
	CK_ULONG n = 1 + trust_template ((CK_OBJECT_CLASS)-1, t + 1, nullptr);
	Napi::Array types = Napi::Array::New (env, n);
	for (CK_ULONG i = 0; i < n; i++)
		types[i] = Napi::Number::New (env, (double)t[i].type);
	exports.Set ("trustAttributes", types);
}
