// The upstream stamp for the build and `status`: the module's own code
// (addon/stamp.c), so the stamp a view records and the one the module
// recomputes at C_Initialize are made by one implementation.
#include <napi.h>

#include <cstdlib>
#include <string>

extern "C" {
char *stamp_build (const char *library, const char *params, const char *builtin_paths, const char *policy,
                   const char *engine, char *why, size_t why_len);
char *stamp_paths_argument (const char *params, int *failed);
}

static bool
strings (const Napi::CallbackInfo &info, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!info[i].IsString ())
			return false;
	return true;
}

// stamp(library, params, builtinPaths, policy, engine): the stamp text, or
// throws with the module's reason (upstream missing, a bound passed).
static Napi::Value
stamp_stamp (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	if (info.Length () != 5 || !strings (info, 5)) {
		Napi::TypeError::New (env, "stamp(library, params, builtinPaths, policy, engine): five strings").ThrowAsJavaScriptException ();
		return env.Null ();
	}
	std::string a[5];
	for (size_t i = 0; i < 5; i++)
		a[i] = info[i].As<Napi::String> ().Utf8Value ();
	char why[512] = "";
	char *s = stamp_build (a[0].c_str (), a[1].c_str (), a[2].c_str (), a[3].c_str (), a[4].c_str (), why, sizeof why);
	if (s == NULL) {
		Napi::Error::New (env, why[0] ? why : "cannot build the stamp").ThrowAsJavaScriptException ();
		return env.Null ();
	}
	Napi::String out = Napi::String::New (env, s);
	std::free (s);
	return out;
}

// pathsArgument(params): the `paths` argument p11-kit-trust reads, or undefined.
static Napi::Value
stamp_paths (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	if (info.Length () != 1 || !strings (info, 1)) {
		Napi::TypeError::New (env, "pathsArgument(params): a string").ThrowAsJavaScriptException ();
		return env.Null ();
	}
	int failed = 0;
	char *p = stamp_paths_argument (info[0].As<Napi::String> ().Utf8Value ().c_str (), &failed);
	if (failed) {
		std::free (p);
		Napi::Error::New (env, "out of memory").ThrowAsJavaScriptException ();
		return env.Null ();
	}
	if (p == NULL)
		return env.Undefined ();
	Napi::String out = Napi::String::New (env, p);
	std::free (p);
	return out;
}

void
stamp_register (Napi::Env env, Napi::Object exports)
{
	exports.Set ("stamp", Napi::Function::New (env, stamp_stamp, "stamp"));
	exports.Set ("pathsArgument", Napi::Function::New (env, stamp_paths, "pathsArgument"));
}
