// Node binding for the live service: the uid of the process at the other end
// of a connected Unix stream socket, read with getsockopt(SO_PEERCRED); and
// (recover.cc) certified mode's signature key recovery.
// Not part of the PKCS#11 module (which stays C and links nothing from Node);
// built as its own gyp target, ncfence_node.

#include <napi.h>

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <string>

static Napi::Value
peercred_fail (Napi::Env env, const std::string &what, int err)
{
	Napi::Error e = Napi::Error::New (env, what + ": " + std::strerror (err));
	e.Set ("errno", Napi::Number::New (env, err));
	e.ThrowAsJavaScriptException ();
	return env.Undefined ();
}

/* peerUid(fd: number): number; throws on a bad argument or a failed getsockopt. */
static Napi::Value
peercred_peer_uid (const Napi::CallbackInfo &info)
{
	Napi::Env env = info.Env ();
	if (info.Length () != 1 || !info[0].IsNumber ()) {
		Napi::TypeError::New (env, "peerUid(fd): fd must be a number").ThrowAsJavaScriptException ();
		return env.Undefined ();
	}
	double d = info[0].As<Napi::Number> ().DoubleValue ();
	if (!(d >= 0 && d <= INT_MAX) || std::floor (d) != d) {
		Napi::RangeError::New (env, "peerUid(fd): fd must be a non-negative integer").ThrowAsJavaScriptException ();
		return env.Undefined ();
	}
	int fd = static_cast<int> (d);

	struct ucred cred;
	socklen_t len = sizeof cred;
	std::memset (&cred, 0, sizeof cred);
	if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return peercred_fail (env, "getsockopt(SO_PEERCRED) on fd " + std::to_string (fd), errno);
	if (len != sizeof cred)
		return peercred_fail (env, "getsockopt(SO_PEERCRED) on fd " + std::to_string (fd) + " returned a short answer", EPROTO);
	return Napi::Number::New (env, static_cast<double> (cred.uid));
}

void recover_register (Napi::Env env, Napi::Object exports); // recover.cc
void stamp_register (Napi::Env env, Napi::Object exports); // stamp.cc
void trust_register (Napi::Env env, Napi::Object exports); // trust.cc

static Napi::Object
peercred_init (Napi::Env env, Napi::Object exports)
{
	exports.Set ("peerUid", Napi::Function::New (env, peercred_peer_uid, "peerUid"));
	recover_register (env, exports);
	stamp_register (env, exports);
	trust_register (env, exports);
	return exports;
}

NODE_API_MODULE (ncfence_node, peercred_init)
