/* Live Namecoin objects: a search whose template names a Namecoin-convention
 * subject or issuer is also answered by the local service (ncfence serve)
 * over a Unix socket (docs/service-protocol.md), and the answer is cached
 * until its TTL, counted from when the question was sent, runs out. Service
 * down, slow, foreign or answering nonsense: no live objects (the .bit chain
 * fails; nothing else changes).
 *
 * Bounded waiting. NSS searches a token on the slot's default session under
 * the slot's lock (nss lib/dev/devtoken.c find_objects,
 * nssSession_EnterMonitor; lib/pk11wrap/pk11slot.c), so while a search waits
 * in here every other certificate lookup of the process waits too. So the
 * question is asked in the background and the search waits only briefly:
 * - a question is a non-blocking connection in a table of MAX_PENDING
 *   (one per name: a second search for the same name joins it). Every
 *   search for a Namecoin name (and every enumeration) moves all of them on
 *   without blocking, and files the answers that have arrived; a question
 *   not answered within service-timeout-ms is dropped. A full table takes
 *   no new question (that search gets nothing);
 * - a search whose answer is not there waits for it, at most WAIT_MAX_US,
 *   and only while the service has been answering quickly: not at all for
 *   SLOW_HOLD_MS after a wait ran out, nor while another question has gone
 *   unanswered for FAST_MS (so a hung or slow source costs one short wait
 *   every SLOW_HOLD_MS, not one per name);
 * - and only out of a per-process budget: WAIT_CAP_US at most, refilled at
 *   one part in WAIT_REFILL of elapsed time, and not at all below
 *   WAIT_MIN_US. The time a search actually waited is charged (a fast
 *   answer costs what it took). So over any period D, searches here wait
 *   at most WAIT_CAP_US + D / WAIT_REFILL in all, and an ordinary lookup
 *   queued behind any number of them waits at most about WAIT_CAP_US *
 *   WAIT_REFILL / (WAIT_REFILL - 1) (210 ms) for their sake, whatever the
 *   names and the source do;
 * - an answer that arrives after its search gave up is filed when the next
 *   search comes by, so the next search for that name (a reload) finds it;
 *   and its objects also serve searches naming them (the service sends the
 *   TLD CA and the root with an AIA parent), so that reload finds the whole
 *   chain.
 *
 * The cache is a fixed table of MAX_ENTRIES entries, at most one per
 * (PKCS#11 slot, name). An entry's objects are immutable while published
 * and read only under the lock (searches, and attribute reads copy out
 * under it). A new answer takes, in order: the table slot of an expired
 * entry for the same name, an unused one, or that of the entry that expires
 * first (expired ones first), whose entry is then freed. So a full cache
 * still takes new answers. An answer with no objects that is already
 * expired (TTL 0, as "unavailable" is) is not cached at all; one with
 * objects and TTL 0 is served once, to the next search for its name.
 *
 * Handles: NF_LIVE_BASE | generation << 15 | table slot << 5 | object. Each
 * table slot counts the entries it has held, and a handle carries the count
 * of its own: once its entry is replaced or evicted the handle is
 * CKR_OBJECT_HANDLE_INVALID, never another name's object. The counts survive
 * C_Finalize. With a 64-bit CK_ULONG the count has 47 bits: a table slot
 * would have to be refilled 2^47 times before an old handle could name a new
 * object.
 *
 * Everything here is under nf.lock, which is never held across a blocking
 * call: sockets are non-blocking, and a waiting search polls its socket
 * with the lock released, then looks its question up again by name (the
 * question may have been answered, dropped or finalized meanwhile; a stale
 * descriptor number only ends a poll early or late). No thread is started:
 * nothing outlives C_Finalize, and a forked child drops the questions it
 * inherited (live_forget_pending_inlock). */
#include "nf.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MARKER "Namecoin TLS Certificate"
#define MAX_ENTRIES 1024

/* Questions in flight per process (the service serves 64 connections). */
#define MAX_PENDING 16
/* How a search waits: see the top of this file. */
#define WAIT_MAX_US 100000LL
#define FAST_MS 100
#define SLOW_HOLD_MS 2000
#define WAIT_CAP_US 200000LL
#define WAIT_REFILL 20
#define WAIT_MIN_US 10000LL
/* Nothing listening and nothing to start it: ask again only after this. */
#define REFUSED_HOLD_MS 100
/* While nothing listens and service-command is starting the service. */
#define RETRY_CONNECT_MS 20

#define OBJ_BITS 5
#define IDX_BITS 10
#define GEN_SHIFT (OBJ_BITS + IDX_BITS)
#define GEN_MASK ((CK_OBJECT_HANDLE)-1 >> (GEN_SHIFT + 2)) /* below NF_LIVE_BASE's two bits */
_Static_assert (MAX_ENTRIES == 1 << IDX_BITS, "a handle's slot field addresses the table");
_Static_assert (NF_WIRE_MAX_OBJECTS <= 1 << OBJ_BITS, "a handle's object field holds every object");

typedef struct live_entry {
	CK_SLOT_ID slot;
	unsigned char *name;
	size_t name_len;
	long long expires_ms;
	int once;            /* TTL 0: served to the next search for its name, then expired */
	size_t nobjects;
	nf_object objects[NF_WIRE_MAX_OBJECTS];
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

/* A question to the service, in flight. */
typedef struct live_pending {
	CK_SLOT_ID slot;
	unsigned char *name;
	size_t name_len;
	int fd;               /* -1 until connected */
	long long asked_ms;   /* when a search asked it */
	long long next_try_ms; /* nothing listening: when to connect again */
	long long sent_ms;    /* when it was sent: the answer's TTL counts from here */
	long long deadline_ms;
	unsigned char *req;   /* the request frame */
	size_t req_len, req_off;
	unsigned char hdr[8]; /* the answer's frame header, then its body */
	size_t hdr_got;
	unsigned char *body;
	size_t body_len, body_got;
} live_pending;

static live_pending *pending[MAX_PENDING];
static size_t npending;
static long long budget_us = WAIT_CAP_US, budget_at_us = -1;
static long long slow_until_ms; /* no waits before then: a wait ran out */
static long long refused_until_ms; /* no questions before then: nothing listens */
static long long harvested_ms = -1; /* the last harvest_inlock */

static long long
now_us (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

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
live_pending_free (live_pending *p)
{
	if (p == NULL)
		return;
	if (p->fd >= 0)
		close (p->fd);
	free (p->name);
	free (p->req);
	free (p->body);
	free (p);
}

/* Drops every question in flight. In a forked child (entry.c fork_child):
 * the sockets are shared with the parent, whose answers the child must not
 * read; closing the child's copies leaves the parent's intact. */
void
live_forget_pending_inlock (void)
{
	for (size_t i = 0; i < npending; i++) {
		live_pending_free (pending[i]);
		pending[i] = NULL;
	}
	npending = 0;
}

void
live_free_all_inlock (void)
{
	for (size_t i = 0; i < nhigh; i++) {
		live_entry_free (entries[i]);
		entries[i] = NULL;
	}
	nhigh = 0;
	live_forget_pending_inlock ();
	budget_us = WAIT_CAP_US;
	budget_at_us = -1;
	slow_until_ms = refused_until_ms = 0;
	harvested_ms = -1;
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
		    tmpl[i].ulValueLen == 0 || tmpl[i].ulValueLen > NF_WIRE_MAX_NAME)
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

/* ---- on-demand start ---- */

/* `service-command` in the configuration: the command is split on spaces
 * (no quoting) and started detached in its own session, its output to
 * /dev/null, at most once every 30 s; the module neither waits for it nor
 * stops it. The decision is taken under the lock, so threads that find
 * nothing listening at the same moment start one service between them, not
 * one each. */
static long long last_start_ms = -1; /* under the lock */

/* A copy of the command when it is time to start it (the caller runs it
 * with start_spawn after unlocking), else NULL. */
static char *
start_decide_inlock (long long now)
{
	if (nf.service_command == NULL || (last_start_ms >= 0 && now - last_start_ms < 30000))
		return NULL;
	last_start_ms = now;
	/* A copy: nf.service_command may be freed by a concurrent C_Finalize
	 * once the lock is released (review). */
	return strdup (nf.service_command);
}

static void
start_spawn (char *copy)
{
	if (copy == NULL)
		return;
	if (host_privileged ()) {
		nf_warn ("not starting the .bit service with %s: this process runs with elevated privileges", copy);
		free (copy);
		return;
	}
	char *argv[32];
	int argc = 0;
	for (char *save = NULL, *tok = strtok_r (copy, " ", &save); tok && argc < 31; tok = strtok_r (NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	pid_t pid;
	int err = argc > 0 ? nf_spawn (argv, NULL, NF_SPAWN_QUIET | NF_SPAWN_SESSION, &pid) : EINVAL;
	if (err != 0)
		nf_warn ("cannot start the .bit service with %s: %s", argc > 0 ? argv[0] : "(empty command)", strerror (err));
	else
		nf_debug (NF_DBG_FIND, "live: started the service (pid %d)", (int)pid);
	free (copy);
}

/* ---- questions in flight ---- */

enum { STEP_FAIL = -1, STEP_MORE = 0, STEP_DONE = 1 };

/* Takes n bytes of the answer's frame. STEP_DONE once the whole frame is
 * in, STEP_MORE while it is not, STEP_FAIL on a bad magic, a length out of
 * bounds, no memory, or a byte past the frame (one answer per connection). */
int
live_feed (live_pending *p, const unsigned char *data, size_t n)
{
	while (n > 0) {
		if (p->hdr_got < sizeof p->hdr) {
			size_t k = sizeof p->hdr - p->hdr_got < n ? sizeof p->hdr - p->hdr_got : n;
			memcpy (p->hdr + p->hdr_got, data, k);
			p->hdr_got += k, data += k, n -= k;
			if (p->hdr_got < sizeof p->hdr)
				break;
			uint32_t len = rd32 (p->hdr + 4);
			if (memcmp (p->hdr, "NCFS", 4) != 0 || len < 12 || len > NF_WIRE_MAX_RESPONSE || (p->body = malloc (len)) == NULL)
				return STEP_FAIL;
			p->body_len = len;
			continue;
		}
		if (p->body_got == p->body_len)
			return STEP_FAIL;
		size_t k = p->body_len - p->body_got < n ? p->body_len - p->body_got : n;
		memcpy (p->body + p->body_got, data, k);
		p->body_got += k, data += k, n -= k;
	}
	return p->hdr_got == sizeof p->hdr && p->body_got == p->body_len ? STEP_DONE : STEP_MORE;
}

/* A question with no socket yet, and the body its reader read; the fuzzer
 * (test/fuzz/fuzz_live.c, which declares what it uses, as live_feed,
 * live_parse_answer and the two _free) feeds the reader by hand. */
live_pending *
live_reader_new (void)
{
	live_pending *p = calloc (1, sizeof *p);
	if (p != NULL)
		p->fd = -1;
	return p;
}

unsigned char *
live_reader_take (live_pending *p, size_t *len)
{
	unsigned char *body = p->body;
	*len = p->body_len;
	p->body = NULL;
	return body;
}

/* Connects to the service without blocking. 1 connected (fd set), 0 not
 * now (nothing listening yet, or its backlog is full: try again later),
 * -1 failed. */
static int
connect_inlock (live_pending *p, long long now, char **spawn)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (nf.service_path == NULL || strlen (nf.service_path) >= sizeof sa.sun_path)
		return -1;
	strcpy (sa.sun_path, nf.service_path);
	int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	/* A Unix stream connect does not block: it is made, or refused, or
	 * EAGAIN when the listener's backlog is full (Linux unix(7)). */
	if (connect (fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int err = errno;
		close (fd);
		if (err == ENOENT || err == ECONNREFUSED) {
			if (nf.service_command == NULL) {
				refused_until_ms = now + REFUSED_HOLD_MS;
				return -1;
			}
			if (*spawn == NULL)
				*spawn = start_decide_inlock (now);
		} else if (err != EAGAIN) {
			return -1;
		}
		p->next_try_ms = now + RETRY_CONNECT_MS;
		return 0;
	}
	/* Only a service run by the user this process acts as may answer (a
	 * shared directory must not let another user's process vouch): the
	 * effective uid, which in a setuid program is not the invoker's. */
	struct ucred cred;
	socklen_t cl = sizeof cred;
	if (getsockopt (fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != geteuid ()) {
		nf_warn ("service socket %s is not run by this user; ignoring it", nf.service_path);
		close (fd);
		return -1;
	}
	p->fd = fd;
	p->sent_ms = now;
	return 1;
}

/* Moves a question on as far as it goes without blocking: connect, send,
 * read what has arrived. An answer already in is taken even past the
 * deadline (its TTL counts from when it was sent). */
static int
step_io_inlock (live_pending *p, long long now, char **spawn)
{
	if (p->body != NULL && p->body_got == p->body_len)
		return STEP_DONE;
	if (p->fd < 0) {
		if (now < p->next_try_ms)
			return STEP_MORE;
		int c = connect_inlock (p, now, spawn);
		if (c <= 0)
			return c < 0 ? STEP_FAIL : STEP_MORE;
	}
	while (p->req_off < p->req_len) {
		ssize_t k = send (p->fd, p->req + p->req_off, p->req_len - p->req_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return STEP_MORE;
		if (k <= 0)
			return STEP_FAIL;
		p->req_off += (size_t)k;
	}
	for (;;) {
		unsigned char buf[16384];
		ssize_t k = recv (p->fd, buf, sizeof buf, MSG_DONTWAIT);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return STEP_MORE;
		if (k <= 0)
			return STEP_FAIL; /* closed before a whole answer, or an error */
		int r = live_feed (p, buf, (size_t)k);
		if (r != STEP_MORE)
			return r;
	}
}

static long
pending_find_inlock (CK_SLOT_ID slot, const unsigned char *name, size_t len)
{
	for (size_t i = 0; i < npending; i++)
		if (pending[i]->slot == slot && pending[i]->name_len == len && memcmp (pending[i]->name, name, len) == 0)
			return (long)i;
	return -1;
}

static void
pending_remove_inlock (size_t i)
{
	live_pending_free (pending[i]);
	pending[i] = pending[--npending];
	pending[npending] = NULL;
}

/* A new question for (slot, name), not sent yet (advance_inlock sends it).
 * Its index, or -1 (table full, no memory). */
static long
pending_start_inlock (CK_SLOT_ID slot, const unsigned char *name, size_t name_len, long long now)
{
	if (npending == MAX_PENDING)
		return -1;
	live_pending *p = live_reader_new ();
	if (p == NULL)
		return -1;
	p->slot = slot;
	p->asked_ms = now;
	p->deadline_ms = now + nf.service_timeout_ms;
	p->name = malloc (name_len);
	p->req_len = 8 + 8 + name_len;
	p->req = malloc (p->req_len);
	if (p->name == NULL || p->req == NULL) {
		live_pending_free (p);
		return -1;
	}
	memcpy (p->name, name, name_len);
	p->name_len = name_len;
	memcpy (p->req, "NCFS", 4);
	wr32 (p->req + 4, (uint32_t)(8 + name_len));
	p->req[8] = 1, p->req[9] = 0;   /* version */
	p->req[10] = 1, p->req[11] = 0; /* kind: objects for a name */
	wr32 (p->req + 12, (uint32_t)name_len);
	memcpy (p->req + 16, name, name_len);
	pending[npending++] = p;
	return (long)npending - 1;
}

/* ---- answers ---- */

/* Validates a response body and indexes it into a new entry (NULL if
 * malformed). The entry expires ttl seconds after asked_ms, when the
 * question was sent (the service counts its TTL down from its own fetch,
 * which came later). */
live_entry *
live_parse_answer (unsigned char *body, size_t len, CK_SLOT_ID slot, const unsigned char *name, size_t name_len,
                   long long asked_ms)
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
	if (status > 3 || ttl > NF_WIRE_MAX_TTL || count > NF_WIRE_MAX_OBJECTS || (status != 0 && count != 0))
		goto bad;
	e->attrs = calloc (NF_WIRE_MAX_OBJECTS * NF_WIRE_MAX_ATTRS, sizeof *e->attrs);
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
		if (nattrs > NF_WIRE_MAX_ATTRS)
			goto bad;
		nf_object *o = &e->objects[i];
		o->slot = slot;
		o->nattrs = nattrs;
		o->attrs = e->attrs + i * NF_WIRE_MAX_ATTRS;
		for (uint32_t k = 0; k < nattrs; k++) {
			if (len - off < 8)
				goto bad;
			uint32_t type = rd32 (body + off), vlen = rd32 (body + off + 4);
			off += 8;
			if (vlen > NF_WIRE_MAX_VALUE || len - off < vlen)
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
	e->expires_ms = asked_ms + (long long)ttl * 1000;
	e->once = ttl == 0 && count > 0;
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

/* The entry for (slot, name) that a search may use: unexpired, or a TTL-0
 * answer not served yet. -1 when there is none. */
static long
find_entry_inlock (CK_SLOT_ID slot, const unsigned char *name, size_t len, long long now)
{
	for (size_t i = 0; i < nhigh; i++)
		if ((entries[i]->expires_ms > now || entries[i]->once) && same_name (entries[i], slot, name, len))
			return (long)i;
	return -1;
}

/* Publishes e and returns its slot, freeing the entry e replaced or
 * evicted; or frees e when an unexpired answer for the same name is already
 * there (that one is kept, so the handles it already gave out stay valid,
 * and its slot is returned). */
static size_t
publish_inlock (live_entry *e, long long now)
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
		live_entry_free (e);
		return (size_t)same;
	}
	size_t i = same >= 0 ? (size_t)same
	         : nhigh < MAX_ENTRIES ? nhigh++
	         : (size_t)victim; /* full: the entry that expires first goes */
	live_entry_free (entries[i]); /* NULL for an unused slot */
	e->gen = slot_gen[i] = (slot_gen[i] + 1) & GEN_MASK;
	entries[i] = e;
	return i;
}

/* Files the whole answer of question i and removes the question. The
 * entry's index, or -1 when the answer was malformed or had nothing to
 * keep. */
static long
complete_inlock (size_t i, long long now)
{
	live_pending *p = pending[i];
	live_entry *e = live_parse_answer (p->body, p->body_len, p->slot, p->name, p->name_len, p->sent_ms);
	p->body = NULL; /* taken */
	pending_remove_inlock (i);
	nf_debug (NF_DBG_FIND, "live: service %s -> %s", nf.service_path, e ? "answer" : "malformed answer");
	if (e == NULL || (e->nobjects == 0 && e->expires_ms <= now)) {
		live_entry_free (e); /* nothing to serve or remember (an "unavailable" answer has TTL 0) */
		return -1;
	}
	return (long)publish_inlock (e, now);
}

/* Moves question i on; -1 while it is still in flight, else the index of
 * the entry its answer made (-1 too when it failed or had nothing; *ended
 * tells the two apart). */
static long
advance_inlock (size_t i, long long now, char **spawn, int *ended)
{
	int r = step_io_inlock (pending[i], now, spawn);
	if (r == STEP_MORE && now >= pending[i]->deadline_ms)
		r = STEP_FAIL;
	*ended = r != STEP_MORE;
	if (r == STEP_MORE)
		return -1;
	if (r == STEP_DONE)
		return complete_inlock (i, now);
	nf_debug (NF_DBG_FIND, "live: service %s -> no answer", nf.service_path);
	pending_remove_inlock (i);
	return -1;
}

/* What a question's socket is polled for. */
static short
poll_events_inlock (const live_pending *p)
{
	return p->req_off < p->req_len ? POLLIN | POLLOUT : POLLIN;
}

/* Moves every question on and files the answers that have arrived: one
 * poll says which sockets have something, and only those (and questions
 * not connected yet or past their deadline) are stepped; at most once a
 * millisecond. A hostile page makes many searches, each one under NSS's
 * lock, so a search that asks nothing new costs a syscall, not one per
 * question. */
static void
harvest_inlock (long long now, char **spawn)
{
	if (npending == 0 || now == harvested_ms)
		return;
	harvested_ms = now;
	struct pollfd pf[MAX_PENDING];
	for (size_t i = 0; i < npending; i++)
		pf[i] = (struct pollfd){ pending[i]->fd, pending[i]->fd < 0 ? 0 : poll_events_inlock (pending[i]), 0 };
	if (poll (pf, npending, 0) < 0)
		for (size_t i = 0; i < npending; i++)
			pf[i].revents = POLLIN; /* step them all */
	/* Backwards: advance_inlock may remove question i, which moves the last
	 * one, stepped already, into its place and leaves those below as polled. */
	for (size_t i = npending; i-- > 0;) {
		int ended;
		if (pf[i].revents != 0 || pending[i]->fd < 0 || now >= pending[i]->deadline_ms)
			advance_inlock (i, now, spawn, &ended);
	}
}

/* Takes what one wait for question `own` may last, in microseconds (0: no
 * wait), by the rules at the top of this file. */
static long long
grant_inlock (const live_pending *own, long long now_us)
{
	if (budget_at_us < 0)
		budget_at_us = now_us;
	long long earned = (now_us - budget_at_us) / WAIT_REFILL;
	budget_at_us += earned * WAIT_REFILL;
	budget_us = budget_us + earned > WAIT_CAP_US ? WAIT_CAP_US : budget_us + earned;
	if (now_us / 1000 < slow_until_ms)
		return 0;
	for (size_t i = 0; i < npending; i++)
		if (pending[i] != own && now_us / 1000 - pending[i]->asked_ms >= FAST_MS)
			return 0;
	if (budget_us < WAIT_MIN_US)
		return 0;
	long long grant = budget_us < WAIT_MAX_US ? budget_us : WAIT_MAX_US;
	budget_us -= grant;
	return grant;
}

static void
refund_inlock (long long unused)
{
	if (unused > 0)
		budget_us = budget_us + unused > WAIT_CAP_US ? WAIT_CAP_US : budget_us + unused;
}

/* ---- searches ---- */

typedef struct {
	CK_OBJECT_HANDLE v[NF_WIRE_MAX_OBJECTS];
	size_t n;
} found_set;

/* The objects of entry idx that match the template; a TTL-0 answer is
 * served this once. */
static void
take_inlock (long idx, const CK_ATTRIBUTE *tmpl, CK_ULONG count, found_set *found)
{
	if (idx < 0)
		return;
	live_entry *e = entries[idx];
	e->once = 0;
	for (size_t i = 0; i < e->nobjects; i++)
		if (attrs_match (&e->objects[i], tmpl, count))
			found->v[found->n++] = handle_of ((size_t)idx, e, i);
}

/* Objects that came with another name's answer and match the template,
 * from the first unexpired answer that has any: the service sends the chain
 * above an AIA parent (the TLD CA, the root and its trust record) with it,
 * so once a site's answer is in, the searches for the rest of its chain ask
 * nothing (a site whose source is slow costs one round trip, not one per
 * level). */
static int
take_related_inlock (CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count, long long now, found_set *found)
{
	for (size_t i = 0; i < nhigh && found->n == 0; i++)
		if (entries[i]->slot == slot && entries[i]->expires_ms > now)
			take_inlock ((long)i, tmpl, count, found);
	return found->n > 0;
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
	long long now = nf_now_ms ();
	CK_RV rv = CKR_OK;
	char *spawn = NULL;
	nf_lock ();
		harvest_inlock (now, &spawn);
		for (size_t i = 0; i < nhigh && rv == CKR_OK; i++) {
			live_entry *e = entries[i];
			if (e->slot != slot || e->expires_ms <= now)
				continue;
			for (size_t k = 0; k < e->nobjects && rv == CKR_OK; k++)
				if (attrs_match (&e->objects[k], tmpl, count) && push (out, handle_of (i, e, k)) < 0)
					rv = CKR_HOST_MEMORY;
		}
	nf_unlock ();
	start_spawn (spawn);
	return rv;
}

/* Waits, up to `grant` microseconds from `start`, for the answer to the
 * question for (slot, name), whose socket was `fd`; files it and takes its
 * objects. The question is looked up again after every wake-up. */
static void
wait_answer (CK_SLOT_ID slot, const CK_ATTRIBUTE *name, const CK_ATTRIBUTE *tmpl, CK_ULONG count, int fd, short events,
             long long start, long long grant, found_set *found)
{
	long long end = start + grant, left;
	int ended = 0;
	while (!ended && (left = end - now_us ()) > 0) {
		if (fd >= 0) {
			struct pollfd pf = { fd, events, 0 };
			poll (&pf, 1, (int)((left + 999) / 1000)); /* whatever it says, the question is looked at again */
		} else {
			struct timespec pause = { 0, (left < RETRY_CONNECT_MS * 1000LL ? left : RETRY_CONNECT_MS * 1000LL) * 1000 };
			nanosleep (&pause, NULL);
		}
		char *spawn = NULL;
		nf_lock ();
			long long now = nf_now_ms ();
			long i = pending_find_inlock (slot, name->pValue, name->ulValueLen);
			if (i < 0) {
				/* Answered (or dropped) by another search meanwhile. */
				take_inlock (find_entry_inlock (slot, name->pValue, name->ulValueLen, now), tmpl, count, found);
				ended = 1;
			} else {
				take_inlock (advance_inlock ((size_t)i, now, &spawn, &ended), tmpl, count, found);
				if (!ended) {
					fd = pending[i]->fd;
					events = poll_events_inlock (pending[i]);
				}
			}
			if (ended)
				refund_inlock (end - now_us ());
		nf_unlock ();
		start_spawn (spawn);
	}
	if (!ended) {
		nf_lock ();
			slow_until_ms = nf_now_ms () + SLOW_HOLD_MS; /* the service is slow now: no waits for a while */
		nf_unlock ();
	}
}

CK_RV
live_collect (CK_SLOT_ID slot, const CK_ATTRIBUTE *tmpl, CK_ULONG count, int (*push) (void *, CK_OBJECT_HANDLE), void *out)
{
	if (nf.service_path == NULL)
		return CKR_OK;
	const CK_ATTRIBUTE *name = namecoin_name (tmpl, count);
	if (name == NULL)
		return collect_cached (slot, tmpl, count, push, out);
	const unsigned char *nm = name->pValue;
	size_t len = name->ulValueLen;
	found_set found = { .n = 0 };
	char *spawn = NULL;
	long long grant = 0, start = 0;
	int fd = -1;
	short events = 0;
	nf_lock ();
		long long now = nf_now_ms ();
		/* This name's own question first, so its answer is served to this
		 * search even when it has TTL 0; then everyone else's. */
		long i = pending_find_inlock (slot, nm, len);
		int ended = 0;
		if (i >= 0)
			take_inlock (advance_inlock ((size_t)i, now, &spawn, &ended), tmpl, count, &found);
		harvest_inlock (now, &spawn);
		int asking = i >= 0 && !ended; /* its question is still in flight */
		if (found.n == 0) {
			long idx = find_entry_inlock (slot, nm, len, now);
			if (idx >= 0)
				take_inlock (idx, tmpl, count, &found);
			else if (take_related_inlock (slot, tmpl, count, now, &found))
				asking = 0; /* the chain that came with another answer */
			else if (!asking && now >= refused_until_ms && (i = pending_start_inlock (slot, nm, len, now)) >= 0) {
				/* Sent now; fails at once when nothing listens and nothing
				 * can start it, or the service is another user's. */
				take_inlock (advance_inlock ((size_t)i, now, &spawn, &ended), tmpl, count, &found);
				asking = !ended;
			}
		}
		/* No answer yet: wait for it, as far as the budget allows. */
		if (asking && found.n == 0 && (i = pending_find_inlock (slot, nm, len)) >= 0) {
			start = now_us ();
			grant = grant_inlock (pending[i], start);
			fd = pending[i]->fd;
			events = poll_events_inlock (pending[i]);
		}
	nf_unlock ();
	start_spawn (spawn);
	if (grant > 0)
		wait_answer (slot, name, tmpl, count, fd, events, start, grant, &found);
	nf_debug (NF_DBG_FIND, "live: %zu objects, waited up to %lld us", found.n, grant);
	for (size_t k = 0; k < found.n; k++)
		if (push (out, found.v[k]) < 0)
			return CKR_HOST_MEMORY;
	return CKR_OK;
}

/* CKR_OBJECT_HANDLE_INVALID when h never named a live object of `slot`, or
 * its entry has been replaced or evicted since (nf.h says the rest). */
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
