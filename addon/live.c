/* Live Namecoin objects: a search whose template names a Namecoin-convention
 * subject or issuer is also answered by the local service (ncfence serve)
 * over a Unix socket (docs/service-protocol.md), with a bounded wait, and the
 * answer is cached for its TTL. Service down, slow, foreign or answering
 * nonsense: no live objects (the .bit chain fails; nothing else changes).
 *
 * The cache is a fixed table of MAX_ENTRIES entries, at most one per
 * (PKCS#11 slot, name). An entry is immutable while published and is read
 * only under the lock (searches, and attribute reads copy out under it). A
 * new answer takes, in order: the table slot of an expired entry for the
 * same name, an unused one, or that of the entry that expires first (expired
 * ones first), whose entry is then freed. So a full cache still takes new
 * answers. An answer with no objects that is already expired (TTL 0, as
 * "unavailable" is) is not cached at all.
 *
 * Handles: NF_LIVE_BASE | generation << 15 | table slot << 5 | object. Each
 * table slot counts the entries it has held, and a handle carries the count
 * of its own: once its entry is replaced or evicted the handle is
 * CKR_OBJECT_HANDLE_INVALID, never another name's object. The counts survive
 * C_Finalize. With a 64-bit CK_ULONG the count has 47 bits: a table slot
 * would have to be refilled 2^47 times before an old handle could name a new
 * object. */
#include "nf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MARKER "Namecoin TLS Certificate"
#define MAX_ENTRIES 1024
#define MAX_OBJECTS 16
#define MAX_ATTRS 32
#define MAX_NAME 16384
#define MAX_RESPONSE (1u << 20)
#define MAX_VALUE 65536u
#define MAX_TTL 3600u

#define OBJ_BITS 5
#define IDX_BITS 10
#define GEN_SHIFT (OBJ_BITS + IDX_BITS)
#define GEN_MASK ((CK_OBJECT_HANDLE)-1 >> (GEN_SHIFT + 2)) /* below NF_LIVE_BASE's two bits */
_Static_assert (MAX_ENTRIES == 1 << IDX_BITS, "a handle's slot field addresses the table");
_Static_assert (MAX_OBJECTS <= 1 << OBJ_BITS, "a handle's object field holds every object");

typedef struct live_entry {
	CK_SLOT_ID slot;
	unsigned char *name;
	size_t name_len;
	long long expires_ms;
	size_t nobjects;
	nf_object objects[MAX_OBJECTS];
	nf_attr *attrs;
	unsigned char *body; /* the response; attribute values point into it */
	CK_OBJECT_HANDLE gen; /* the slot's generation when published */
} live_entry;

/* All under the lock. Slots below nhigh hold an entry, the others were not
 * used since C_Initialize: an entry leaves only by being replaced, so the
 * table fills from the front and searches scan only the used prefix. */
static live_entry *entries[MAX_ENTRIES];
static size_t nhigh;
static CK_OBJECT_HANDLE slot_gen[MAX_ENTRIES]; /* never reset */

static long long
now_ms (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

void live_entry_free (live_entry *e);

void
live_entry_free (live_entry *e)
{
	if (e == NULL)
		return;
	free (e->name);
	free (e->attrs);
	free (e->body);
	free (e);
}

void
live_free_all_inlock (void)
{
	for (size_t i = 0; i < nhigh; i++) {
		live_entry_free (entries[i]);
		entries[i] = NULL;
	}
	nhigh = 0;
}

static CK_OBJECT_HANDLE
handle_of (size_t idx, const live_entry *e, size_t obj)
{
	return NF_LIVE_BASE | e->gen << GEN_SHIFT | (CK_OBJECT_HANDLE)idx << OBJ_BITS | obj;
}

/* The SUBJECT or ISSUER value of the template that carries the Namecoin marker. */
static const CK_ATTRIBUTE *
namecoin_name (const CK_ATTRIBUTE *tmpl, CK_ULONG count)
{
	for (CK_ULONG i = 0; i < count; i++) {
		if ((tmpl[i].type != CKA_SUBJECT && tmpl[i].type != CKA_ISSUER) || tmpl[i].pValue == NULL ||
		    tmpl[i].ulValueLen == 0 || tmpl[i].ulValueLen > MAX_NAME)
			continue;
		if (memmem (tmpl[i].pValue, tmpl[i].ulValueLen, MARKER, sizeof MARKER - 1) != NULL)
			return &tmpl[i];
	}
	return NULL;
}

static uint32_t
rd32 (const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
wr32 (unsigned char *p, uint32_t v)
{
	p[0] = v & 0xff;
	p[1] = (v >> 8) & 0xff;
	p[2] = (v >> 16) & 0xff;
	p[3] = v >> 24;
}

/* Waits for fd to be ready until the deadline; 0 ready, -1 timeout or error. */
static int
wait_fd (int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms ();
		if (left <= 0)
			return -1;
		struct pollfd p = { fd, events, 0 };
		int r = poll (&p, 1, (int)left);
		if (r > 0)
			return (p.revents & (events | POLLHUP)) ? 0 : -1;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static int
io_all (int fd, unsigned char *buf, size_t len, int writing, long long deadline)
{
	size_t done = 0;
	while (done < len) {
		if (wait_fd (fd, writing ? POLLOUT : POLLIN, deadline) < 0)
			return -1;
		ssize_t n = writing ? send (fd, buf + done, len - done, MSG_NOSIGNAL) : recv (fd, buf + done, len - done, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* On-demand start (`service-command` in the configuration): the command is
 * split on spaces (no quoting) and started detached in its own session, its
 * output to /dev/null, at most once every 30 s; the module does not wait for
 * it or stop it. 1 when a start is (or was just) under way. The decision is
 * taken under the lock, so threads that find nothing listening at the same
 * moment start one service between them, not one each. */
static long long last_start_ms = -1; /* under the lock */

static int
start_service (void)
{
	char *copy = NULL;
	int coming = 0, starting = 0;
	nf_lock ();
		long long now = now_ms ();
		if (nf.service_command == NULL) {
			coming = 0;
		} else if (last_start_ms >= 0 && now - last_start_ms < 30000) {
			coming = now - last_start_ms < nf.service_timeout_ms; /* the earlier start is still coming up */
		} else {
			last_start_ms = now;
			starting = 1;
			copy = strdup (nf.service_command);
		}
	nf_unlock ();
	if (!starting)
		return coming;
	if (nf_privileged ()) {
		nf_warn ("not starting the .bit service with %s: this process runs with elevated privileges", copy ? copy : "");
		free (copy);
		return 0;
	}
	char *argv[32];
	int argc = 0;
	for (char *save = NULL, *tok = copy ? strtok_r (copy, " ", &save) : NULL; tok && argc < 31; tok = strtok_r (NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init (&fa);
	posix_spawn_file_actions_addopen (&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen (&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen (&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	posix_spawnattr_init (&attr);
	posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSID);
	pid_t pid;
	int err = argc > 0 ? posix_spawn (&pid, argv[0], &fa, &attr, argv, environ) : EINVAL;
	posix_spawnattr_destroy (&attr);
	posix_spawn_file_actions_destroy (&fa);
	/* argv[0] points into our own copy: nf.service_command may be freed by a
	 * concurrent C_Finalize once the lock is released (review). */
	if (err != 0)
		nf_warn ("cannot start the .bit service with %s: %s", argc > 0 ? argv[0] : "(empty command)", strerror (err));
	else
		nf_debug (NF_DBG_FIND, "live: started the service (pid %d)", (int)pid);
	free (copy);
	return err == 0;
}

/* Asks the service; returns the response body (malloc'd) or NULL. */
static unsigned char *
ask_service (const char *path, long timeout_ms, const unsigned char *name, size_t name_len, size_t *body_len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen (path) >= sizeof sa.sun_path)
		return NULL;
	strcpy (sa.sun_path, path);
	long long deadline = now_ms () + timeout_ms;
	int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return NULL;
	unsigned char *req = NULL, *body = NULL;
	/* Nothing listening yet: start the service if configured, and keep trying until the deadline. */
	while (connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0 && !(errno == EINPROGRESS || errno == EAGAIN)) {
		if ((errno != ENOENT && errno != ECONNREFUSED) || !start_service () || now_ms () >= deadline)
			goto fail;
		struct timespec pause = { 0, 20 * 1000000L };
		nanosleep (&pause, NULL);
	}
	if (wait_fd (fd, POLLOUT, deadline) < 0)
		goto fail;
	/* Only a service run by the user this process acts as may answer (a
	 * shared directory must not let another user's process vouch): the
	 * effective uid, which in a setuid program is not the invoker's. */
	struct ucred cred;
	socklen_t cl = sizeof cred;
	if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != geteuid ()) {
		nf_warn ("service socket %s is not run by this user; ignoring it", path);
		goto fail;
	}
	size_t req_len = 8 + 8 + name_len;
	req = malloc (req_len);
	if (req == NULL)
		goto fail;
	memcpy (req, "NCFS", 4);
	wr32 (req + 4, (uint32_t)(8 + name_len));
	req[8] = 1, req[9] = 0;   /* version */
	req[10] = 1, req[11] = 0; /* kind: objects for a name */
	wr32 (req + 12, (uint32_t)name_len);
	memcpy (req + 16, name, name_len);
	unsigned char hdr[8];
	if (io_all (fd, req, req_len, 1, deadline) < 0 || io_all (fd, hdr, 8, 0, deadline) < 0)
		goto fail;
	uint32_t len = rd32 (hdr + 4);
	if (memcmp (hdr, "NCFS", 4) != 0 || len < 12 || len > MAX_RESPONSE)
		goto fail;
	body = malloc (len);
	if (body == NULL || io_all (fd, body, len, 0, deadline) < 0)
		goto fail;
	free (req);
	close (fd);
	*body_len = len;
	return body;
fail:
	free (req);
	free (body);
	close (fd);
	return NULL;
}

/* Validates a response body and indexes it into a new entry (NULL if malformed). */
live_entry *live_parse_answer (unsigned char *body, size_t len, CK_SLOT_ID slot, const unsigned char *name, size_t name_len);

live_entry *
live_parse_answer (unsigned char *body, size_t len, CK_SLOT_ID slot, const unsigned char *name, size_t name_len)
{
	live_entry *e = calloc (1, sizeof *e);
	if (e == NULL) {
		free (body);
		return NULL;
	}
	e->body = body;
	if (len < 12 || body[0] != 1 || body[1] != 0)
		goto bad;
	unsigned status = body[2] | body[3] << 8;
	uint32_t ttl = rd32 (body + 4), count = rd32 (body + 8);
	if (status > 3 || ttl > MAX_TTL || count > MAX_OBJECTS || (status != 0 && count != 0))
		goto bad;
	e->attrs = calloc (MAX_OBJECTS * MAX_ATTRS, sizeof *e->attrs);
	e->name = malloc (name_len);
	if (e->attrs == NULL || e->name == NULL)
		goto bad;
	memcpy (e->name, name, name_len);
	e->name_len = name_len;
	size_t off = 12;
	for (uint32_t i = 0; i < count; i++) {
		if (len - off < 4)
			goto bad;
		uint32_t nattrs = rd32 (body + off);
		off += 4;
		if (nattrs > MAX_ATTRS)
			goto bad;
		nf_object *o = &e->objects[i];
		o->slot = slot;
		o->nattrs = nattrs;
		o->attrs = e->attrs + i * MAX_ATTRS;
		for (uint32_t k = 0; k < nattrs; k++) {
			if (len - off < 8)
				goto bad;
			uint32_t type = rd32 (body + off), vlen = rd32 (body + off + 4);
			off += 8;
			if (vlen > MAX_VALUE || len - off < vlen)
				goto bad;
			o->attrs[k] = (nf_attr){ type, body + off, vlen };
			off += vlen;
			if (type == CKA_CLASS && vlen == sizeof (CK_ULONG)) {
				memcpy (&o->cls, body + off - vlen, sizeof (CK_ULONG));
				o->has_cls = 1;
			}
		}
	}
	if (off != len)
		goto bad;
	e->nobjects = count;
	e->slot = slot;
	e->expires_ms = now_ms () + (long long)ttl * 1000;
	return e;
bad:
	live_entry_free (e);
	return NULL;
}

static int
same_name (const live_entry *e, CK_SLOT_ID slot, const unsigned char *name, size_t len)
{
	return e->slot == slot && e->name_len == len && memcmp (e->name, name, len) == 0;
}

/* The unexpired entry for (slot, name), or -1. */
static long
find_entry_inlock (CK_SLOT_ID slot, const unsigned char *name, size_t len, long long now)
{
	for (size_t i = 0; i < nhigh; i++)
		if (entries[i]->expires_ms > now && same_name (entries[i], slot, name, len))
			return (long)i;
	return -1;
}

/* Publishes e and returns its slot. *drop is what the caller frees after
 * unlocking: the entry e replaced or evicted, or e itself when another thread
 * published an unexpired answer for the same name meanwhile (that one is
 * kept, so the handles it already gave out stay valid, and its slot is
 * returned). */
static size_t
publish_inlock (live_entry *e, long long now, live_entry **drop)
{
	long same = -1, victim = -1;
	for (size_t i = 0; i < nhigh; i++) {
		live_entry *o = entries[i];
		if (same_name (o, e->slot, e->name, e->name_len)) {
			same = (long)i; /* at most one: every publish goes through here */
			break;
		} else if (victim < 0 || o->expires_ms < entries[victim]->expires_ms) {
			victim = (long)i;
		}
	}
	if (same >= 0 && entries[same]->expires_ms > now) {
		*drop = e;
		return (size_t)same;
	}
	size_t i = same >= 0 ? (size_t)same
	         : nhigh < MAX_ENTRIES ? nhigh++
	         : (size_t)victim; /* full: the entry that expires first goes */
	*drop = entries[i]; /* NULL for an unused slot */
	e->gen = slot_gen[i] = (slot_gen[i] + 1) & GEN_MASK;
	entries[i] = e;
	return i;
}

/* Searches that name no subject or issuer (by CKA_VALUE, by class only, the
 * empty template of a startup enumeration) are answered from what the
 * service already said: the unexpired answer per name. Searches by a
 * public subject or issuer never get here. */
static CK_RV
collect_cached (CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count, int (*push) (void *, CK_OBJECT_HANDLE), void *out)
{
	for (CK_ULONG i = 0; i < count; i++)
		if (tmpl[i].type == CKA_SUBJECT || tmpl[i].type == CKA_ISSUER)
			return CKR_OK;
	long long now = now_ms ();
	CK_RV rv = CKR_OK;
	nf_lock ();
		for (size_t i = 0; i < nhigh && rv == CKR_OK; i++) {
			live_entry *e = entries[i];
			if (e->slot != slot || e->expires_ms <= now)
				continue;
			for (size_t k = 0; k < e->nobjects && rv == CKR_OK; k++)
				if (attrs_match (&e->objects[k], tmpl, count) && push (out, handle_of (i, e, k)) < 0)
					rv = CKR_HOST_MEMORY;
		}
	nf_unlock ();
	return rv;
}

CK_RV
live_collect (CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count, int (*push) (void *, CK_OBJECT_HANDLE), void *out)
{
	if (nf.service_path == NULL)
		return CKR_OK;
	const CK_ATTRIBUTE *name = namecoin_name (tmpl, count);
	if (name == NULL)
		return collect_cached (slot, tmpl, count, push, out);
	CK_OBJECT_HANDLE found[MAX_OBJECTS];
	size_t nfound = 0;
	long idx;
	nf_lock ();
		idx = find_entry_inlock (slot, name->pValue, name->ulValueLen, now_ms ());
		for (size_t i = 0; idx >= 0 && i < entries[idx]->nobjects; i++)
			if (attrs_match (&entries[idx]->objects[i], tmpl, count))
				found[nfound++] = handle_of ((size_t)idx, entries[idx], i);
	nf_unlock ();
	if (idx < 0) {
		size_t blen = 0;
		unsigned char *body = ask_service (nf.service_path, nf.service_timeout_ms, name->pValue, name->ulValueLen, &blen);
		live_entry *e = body ? live_parse_answer (body, blen, slot, name->pValue, name->ulValueLen) : NULL;
		nf_debug (NF_DBG_FIND, "live: service %s -> %s", nf.service_path, e ? "answer" : "no answer");
		if (e == NULL)
			return CKR_OK; /* closed: no live objects */
		long long now = now_ms ();
		if (e->nobjects == 0 && e->expires_ms <= now) {
			live_entry_free (e); /* nothing to serve or remember (an "unavailable" answer has TTL 0) */
			return CKR_OK;
		}
		live_entry *drop = NULL;
		nf_lock ();
			idx = (long)publish_inlock (e, now, &drop);
			e = entries[idx];
			for (size_t i = 0; i < e->nobjects; i++)
				if (attrs_match (&e->objects[i], tmpl, count))
					found[nfound++] = handle_of ((size_t)idx, e, i);
		nf_unlock ();
		live_entry_free (drop);
	}
	for (size_t i = 0; i < nfound; i++)
		if (push (out, found[i]) < 0)
			return CKR_HOST_MEMORY;
	return CKR_OK;
}

/* Reads attributes of the live object h of `slot` (count 0: only checks the
 * handle) under the lock, since an entry may be evicted and freed as soon as
 * the lock is released. CKR_OBJECT_HANDLE_INVALID when the handle never named
 * a live object of this slot, or its entry has been replaced or evicted. */
CK_RV
live_read (CK_OBJECT_HANDLE h, CK_SLOT_ID slot, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count)
{
	if ((h & NF_LIVE_BASE) != NF_LIVE_BASE)
		return CKR_OBJECT_HANDLE_INVALID;
	CK_OBJECT_HANDLE rest = h & ~NF_LIVE_BASE;
	size_t obj = (size_t)(rest & ((1u << OBJ_BITS) - 1));
	size_t idx = (size_t)((rest >> OBJ_BITS) & ((1u << IDX_BITS) - 1));
	CK_OBJECT_HANDLE gen = rest >> GEN_SHIFT;
	CK_RV rv = CKR_OBJECT_HANDLE_INVALID;
	nf_lock ();
		live_entry *e = idx < nhigh ? entries[idx] : NULL;
		if (e != NULL && e->gen == gen && obj < e->nobjects && e->slot == slot)
			rv = attrs_read (&e->objects[obj], tmpl, count);
	nf_unlock ();
	return rv;
}
