// Node binding for `ncfence build` (src/compile/upstream.ts): reads every
// object of the upstream trust module with the attributes ncfence knows.
// Built as its own gyp target, ncfence_upstream, so the build depends on no
// other library; not part of the PKCS#11 module.
//
// Why not pkcs11js: it turns every return value other than CKR_OK into a
// JavaScript exception with a stack trace, and an attribute an object does
// not have (CKR_ATTRIBUTE_TYPE_INVALID) is an ordinary answer when asking
// for every attribute ncfence knows. Here PKCS#11 results come back as
// numbers and one C_GetAttributeValue asks for all of an object's
// attributes: PKCS#11 v2.40, section 5.7, C_GetAttributeValue, says a
// module that answers CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID
// or CKR_BUFFER_TOO_SMALL "MUST nonetheless have processed every attribute
// in the template", marking the ones it cannot give with
// CK_UNAVAILABLE_INFORMATION. A module that leaves an attribute untouched
// (its length still our sentinel), lies about a length, or fails the whole
// call is asked for each such attribute on its own, as pkcs11js was.
//
// Upstream is not trusted: every length it reports is bounded before
// anything is allocated, and nothing here throws for what upstream does.
// JavaScript exceptions are only for a caller's wrong arguments.

#include <napi.h>

#include <p11-kit/pkcs11.h>

#include <dlfcn.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

// A value longer than this is treated as one upstream cannot give (absent):
// no certificate or trust attribute comes near it.
const CK_ULONG MAX_VALUE_BYTES = 64UL << 20;
// Handles one search may return, and bytes one slot's values may take.
const size_t MAX_OBJECTS = 1u << 20;
const size_t MAX_SLOT_BYTES = 1u << 30;
// What a module that processed an attribute can never leave in its length.
const CK_ULONG UNTOUCHED = CK_UNAVAILABLE_INFORMATION - 1;

struct Upstream {
	void *dl = nullptr;
	CK_FUNCTION_LIST_PTR fn = nullptr;
};

Upstream *
upstream_of (const Napi::CallbackInfo &info)
{
	if (info.Length () < 1 || !info[0].IsExternal ())
		return nullptr;
	Upstream *u = info[0].As<Napi::External<Upstream>> ().Data ();
	return u != nullptr && u->fn != nullptr ? u : nullptr;
}

Napi::Value
type_error (Napi::Env env, const char *usage)
{
	Napi::TypeError::New (env, usage).ThrowAsJavaScriptException ();
	return env.Undefined ();
}

bool
slot_of (const Napi::Value &v, CK_SLOT_ID *slot)
{
	if (!v.IsBigInt ())
		return false;
	bool lossless = false;
	uint64_t id = v.As<Napi::BigInt> ().Uint64Value (&lossless);
	*slot = static_cast<CK_SLOT_ID> (id);
	return lossless;
}

// A fixed-width CK_UTF8CHAR field as pkcs11js gave it: all of it, decoded as UTF-8.
Napi::String
field (Napi::Env env, const CK_UTF8CHAR *chars, size_t n)
{
	return Napi::String::New (env, reinterpret_cast<const char *> (chars), n);
}

// open(path) -> { handle } | { dlerror } | { rv }: dlopen and C_GetFunctionList,
// with the flags pkcs11js used (RTLD_LAZY | RTLD_LOCAL).
Napi::Value
upstream_open (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	if (info.Length () != 1 || !info[0].IsString ())
		return type_error (env, "open(path)");
	std::string path = info[0].As<Napi::String> ().Utf8Value ();
	Napi::Object out = Napi::Object::New (env);
	void *dl = dlopen (path.c_str (), RTLD_LAZY | RTLD_LOCAL);
	if (dl == nullptr) {
		const char *why = dlerror ();
		out.Set ("dlerror", why ? why : "dlopen failed");
		return out;
	}
	auto get = reinterpret_cast<CK_C_GetFunctionList> (dlsym (dl, "C_GetFunctionList"));
	if (get == nullptr) {
		const char *why = dlerror ();
		out.Set ("dlerror", why ? why : "no C_GetFunctionList");
		dlclose (dl);
		return out;
	}
	CK_FUNCTION_LIST_PTR fn = nullptr;
	CK_RV rv = get (&fn);
	if (rv == CKR_OK && fn == nullptr)
		rv = CKR_GENERAL_ERROR;
	if (rv != CKR_OK) {
		out.Set ("rv", Napi::Number::New (env, static_cast<double> (rv)));
		dlclose (dl);
		return out;
	}
	Upstream *u = new Upstream;
	u->dl = dl;
	u->fn = fn;
	// Never dlclosed behind the caller's back: close() does that, after C_Finalize.
	out.Set ("handle", Napi::External<Upstream>::New (env, u, [] (Napi::Env, Upstream *p) {
		if (p->dl == nullptr)
			delete p;
	}));
	return out;
}

// close(handle): dlclose; the handle is dead afterwards.
Napi::Value
upstream_close (const Napi::CallbackInfo &info)
{
	Upstream *u = upstream_of (info);
	if (u == nullptr)
		return type_error (info.Env (), "close(handle)");
	dlclose (u->dl);
	u->dl = nullptr;
	u->fn = nullptr;
	return info.Env ().Undefined ();
}

// initialize(handle, params | null) -> rv. OS locking; params go in pReserved,
// where NSS's modules and p11-kit-trust read their parameter string.
Napi::Value
upstream_initialize (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	Upstream *u = upstream_of (info);
	if (u == nullptr || info.Length () != 2 || !(info[1].IsString () || info[1].IsNull ()))
		return type_error (env, "initialize(handle, params)");
	std::string params = info[1].IsString () ? info[1].As<Napi::String> ().Utf8Value () : std::string ();
	CK_C_INITIALIZE_ARGS args;
	std::memset (&args, 0, sizeof args);
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = info[1].IsString () ? const_cast<char *> (params.c_str ()) : nullptr;
	return Napi::Number::New (env, static_cast<double> (u->fn->C_Initialize (&args)));
}

Napi::Value
upstream_finalize (const Napi::CallbackInfo &info)
{
	Upstream *u = upstream_of (info);
	if (u == nullptr)
		return type_error (info.Env (), "finalize(handle)");
	return Napi::Number::New (info.Env (), static_cast<double> (u->fn->C_Finalize (nullptr)));
}

// info(handle) -> { rv, manufacturerID, libraryDescription }
Napi::Value
upstream_info (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	Upstream *u = upstream_of (info);
	if (u == nullptr)
		return type_error (env, "info(handle)");
	CK_INFO ck;
	std::memset (&ck, 0, sizeof ck);
	CK_RV rv = u->fn->C_GetInfo (&ck);
	Napi::Object out = Napi::Object::New (env);
	out.Set ("rv", Napi::Number::New (env, static_cast<double> (rv)));
	if (rv == CKR_OK) {
		out.Set ("manufacturerID", field (env, ck.manufacturerID, sizeof ck.manufacturerID));
		out.Set ("libraryDescription", field (env, ck.libraryDescription, sizeof ck.libraryDescription));
	}
	return out;
}

// slots(handle) -> { rv, slots: bigint[] }: the slots with a token present.
Napi::Value
upstream_slots (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	Upstream *u = upstream_of (info);
	if (u == nullptr)
		return type_error (env, "slots(handle)");
	Napi::Object out = Napi::Object::New (env);
	std::vector<CK_SLOT_ID> ids;
	CK_ULONG n = 0;
	CK_RV rv = u->fn->C_GetSlotList (CK_TRUE, nullptr, &n);
	// The list may grow between the two calls (CKR_BUFFER_TOO_SMALL): ask again, a few times.
	for (int tries = 0; rv == CKR_OK && tries < 4; tries++) {
		if (n > 4096) {
			rv = CKR_GENERAL_ERROR;
			break;
		}
		ids.resize (n);
		rv = u->fn->C_GetSlotList (CK_TRUE, ids.data (), &n);
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
		rv = u->fn->C_GetSlotList (CK_TRUE, nullptr, &n);
	}
	out.Set ("rv", Napi::Number::New (env, static_cast<double> (rv)));
	if (rv == CKR_OK) {
		if (n > ids.size ())
			n = ids.size ();
		Napi::Array list = Napi::Array::New (env, n);
		for (CK_ULONG i = 0; i < n; i++)
			list.Set (static_cast<uint32_t> (i), Napi::BigInt::New (env, static_cast<uint64_t> (ids[i])));
		out.Set ("slots", list);
	}
	return out;
}

// slotText(handle, slot, token) -> { rv, value }: the slot's description
// (C_GetSlotInfo), or with token its token's label (C_GetTokenInfo).
Napi::Value
upstream_slot_text (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	Upstream *u = upstream_of (info);
	CK_SLOT_ID slot;
	if (u == nullptr || info.Length () != 3 || !slot_of (info[1], &slot) || !info[2].IsBoolean ())
		return type_error (env, "slotText(handle, slot, token)");
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	std::memset (&si, 0, sizeof si);
	std::memset (&ti, 0, sizeof ti);
	bool token = info[2].As<Napi::Boolean> ().Value ();
	CK_RV rv = token ? u->fn->C_GetTokenInfo (slot, &ti) : u->fn->C_GetSlotInfo (slot, &si);
	Napi::Object out = Napi::Object::New (env);
	out.Set ("rv", Napi::Number::New (env, static_cast<double> (rv)));
	if (rv == CKR_OK)
		out.Set ("value", token ? field (env, ti.label, sizeof ti.label) : field (env, si.slotDescription, sizeof si.slotDescription));
	return out;
}

// One attribute on its own: size, then value. False when upstream gives none.
bool
read_one (CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type, std::vector<unsigned char> &value)
{
	CK_ATTRIBUTE a = { type, nullptr, 0 };
	if (fn->C_GetAttributeValue (s, h, &a, 1) != CKR_OK || a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > MAX_VALUE_BYTES)
		return false;
	CK_ULONG size = a.ulValueLen;
	value.resize (size + 1);
	a.pValue = value.data ();
	if (fn->C_GetAttributeValue (s, h, &a, 1) != CKR_OK || a.ulValueLen > size)
		return false;
	value.resize (a.ulValueLen);
	return true;
}

bool
attribute_answer (CK_RV rv)
{
	return rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_BUFFER_TOO_SMALL;
}

// What one slot holds, as readObjects returns it.
struct SlotRead {
	std::vector<unsigned char> values;
	// Per object: attribute count, then (candidate index, offset, length) per attribute.
	std::vector<uint32_t> index;
	bool too_big = false;
};

void
append_value (SlotRead &out, uint32_t candidate, const unsigned char *data, size_t len)
{
	if (out.values.size () + len > MAX_SLOT_BYTES) {
		out.too_big = true;
		return;
	}
	out.index.push_back (candidate);
	out.index.push_back (static_cast<uint32_t> (out.values.size ()));
	out.index.push_back (static_cast<uint32_t> (len));
	out.values.insert (out.values.end (), data, data + len);
}

// Every candidate attribute of one object: one call for the sizes, one for
// the values, and each attribute the module did not answer properly on its own.
void
read_object (CK_FUNCTION_LIST_PTR fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, const std::vector<CK_ATTRIBUTE_TYPE> &types, SlotRead &out)
{
	size_t n = types.size ();
	std::vector<CK_ATTRIBUTE> t (n);
	for (size_t i = 0; i < n; i++)
		t[i] = { types[i], nullptr, UNTOUCHED };
	CK_RV rv = fn->C_GetAttributeValue (s, h, t.data (), static_cast<CK_ULONG> (n));
	// 0: absent, 1: size known (t[i] holds it), 2: ask on its own, 3: value read.
	std::vector<unsigned char> state (n, 2);
	if (attribute_answer (rv)) {
		for (size_t i = 0; i < n; i++)
			if (t[i].ulValueLen != UNTOUCHED)
				state[i] = t[i].ulValueLen == CK_UNAVAILABLE_INFORMATION || t[i].ulValueLen > MAX_VALUE_BYTES ? 0 : 1;
	}
	// The values of every attribute whose size came back, in one buffer.
	std::vector<CK_ATTRIBUTE> v;
	std::vector<size_t> which;
	size_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (state[i] != 1)
			continue;
		which.push_back (i);
		total += t[i].ulValueLen;
	}
	std::vector<unsigned char> buf (total + 1);
	size_t at = 0;
	for (size_t i : which) {
		v.push_back ({ types[i], buf.data () + at, t[i].ulValueLen });
		at += t[i].ulValueLen;
	}
	if (!v.empty ()) {
		rv = fn->C_GetAttributeValue (s, h, v.data (), static_cast<CK_ULONG> (v.size ()));
		// A length over what was given is one we must not trust (pre-3.0
		// modules report the size they need there).
		for (size_t k = 0; k < v.size (); k++)
			state[which[k]] = attribute_answer (rv) && v[k].ulValueLen != CK_UNAVAILABLE_INFORMATION && v[k].ulValueLen <= t[which[k]].ulValueLen ? 3 : 2;
	}
	uint32_t count = 0;
	size_t head = out.index.size ();
	out.index.push_back (0);
	std::vector<unsigned char> one;
	size_t vk = 0;
	for (size_t i = 0; i < n && !out.too_big; i++) {
		if (state[i] == 3) {
			while (which[vk] != i)
				vk++;
			append_value (out, static_cast<uint32_t> (i), static_cast<unsigned char *> (v[vk].pValue), v[vk].ulValueLen);
			count++;
		} else if (state[i] == 2 && read_one (fn, s, h, types[i], one)) {
			append_value (out, static_cast<uint32_t> (i), one.data (), one.size ());
			count++;
		}
	}
	out.index[head] = count;
}

// readObjects(handle, slot, types: number[]) -> { rv, call?, objects, values: ArrayBuffer, index: Uint32Array }
// Opens a session, finds every object (an empty template), reads each one's
// candidate attributes, closes the session. A failed call ends the read:
// rv and call say which.
Napi::Value
upstream_read_objects (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	Upstream *u = upstream_of (info);
	CK_SLOT_ID slot;
	if (u == nullptr || info.Length () != 3 || !slot_of (info[1], &slot) || !info[2].IsArray ())
		return type_error (env, "readObjects(handle, slot, types)");
	Napi::Array list = info[2].As<Napi::Array> ();
	std::vector<CK_ATTRIBUTE_TYPE> types;
	for (uint32_t i = 0; i < list.Length (); i++) {
		Napi::Value x = list.Get (i);
		if (!x.IsNumber ())
			return type_error (env, "readObjects(handle, slot, types): types must be numbers");
		types.push_back (static_cast<CK_ATTRIBUTE_TYPE> (x.As<Napi::Number> ().Int64Value ()));
	}
	CK_FUNCTION_LIST_PTR fn = u->fn;
	Napi::Object out = Napi::Object::New (env);
	auto fail = [&] (CK_RV rv, const char *call) {
		out.Set ("rv", Napi::Number::New (env, static_cast<double> (rv)));
		out.Set ("call", call);
		return out;
	};
	CK_SESSION_HANDLE s;
	CK_RV rv = fn->C_OpenSession (slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s);
	if (rv != CKR_OK)
		return fail (rv, "C_OpenSession");
	std::vector<CK_OBJECT_HANDLE> handles;
	const char *failed = nullptr;
	rv = fn->C_FindObjectsInit (s, nullptr, 0);
	if (rv != CKR_OK) {
		failed = "C_FindObjectsInit";
	} else {
		CK_OBJECT_HANDLE page[64];
		for (;;) {
			CK_ULONG got = 0;
			rv = fn->C_FindObjects (s, page, 64, &got);
			if (rv != CKR_OK) {
				failed = "C_FindObjects";
				break;
			}
			if (got == 0)
				break;
			if (got > 64 || handles.size () + got > MAX_OBJECTS) {
				rv = CKR_GENERAL_ERROR;
				failed = got > 64 ? "C_FindObjects (more handles than asked for)" : "C_FindObjects (over a million objects)";
				break;
			}
			handles.insert (handles.end (), page, page + got);
		}
		CK_RV frv = fn->C_FindObjectsFinal (s);
		if (failed == nullptr && frv != CKR_OK) {
			rv = frv;
			failed = "C_FindObjectsFinal";
		}
	}
	SlotRead read;
	for (size_t i = 0; failed == nullptr && i < handles.size (); i++) {
		read_object (fn, s, handles[i], types, read);
		if (read.too_big) {
			rv = CKR_HOST_MEMORY;
			failed = "C_GetAttributeValue (over 1 GiB of values)";
		}
	}
	fn->C_CloseSession (s);
	if (failed != nullptr)
		return fail (rv, failed);
	Napi::ArrayBuffer values = Napi::ArrayBuffer::New (env, read.values.size ());
	if (!read.values.empty ())
		std::memcpy (values.Data (), read.values.data (), read.values.size ());
	Napi::Uint32Array index = Napi::Uint32Array::New (env, read.index.size ());
	if (!read.index.empty ())
		std::memcpy (index.Data (), read.index.data (), read.index.size () * sizeof (uint32_t));
	out.Set ("rv", Napi::Number::New (env, 0));
	out.Set ("objects", Napi::Number::New (env, static_cast<double> (handles.size ())));
	out.Set ("values", values);
	out.Set ("index", index);
	return out;
}

Napi::Object
upstream_init (Napi::Env env, Napi::Object exports)
{
	exports.Set ("open", Napi::Function::New (env, upstream_open, "open"));
	exports.Set ("close", Napi::Function::New (env, upstream_close, "close"));
	exports.Set ("initialize", Napi::Function::New (env, upstream_initialize, "initialize"));
	exports.Set ("finalize", Napi::Function::New (env, upstream_finalize, "finalize"));
	exports.Set ("info", Napi::Function::New (env, upstream_info, "info"));
	exports.Set ("slots", Napi::Function::New (env, upstream_slots, "slots"));
	exports.Set ("slotText", Napi::Function::New (env, upstream_slot_text, "slotText"));
	exports.Set ("readObjects", Napi::Function::New (env, upstream_read_objects, "readObjects"));
	return exports;
}

} // namespace

NODE_API_MODULE (ncfence_upstream, upstream_init)
