/* Keeping the view fresh with nobody running ncfence (docs/install.md,
 * "Updates"). When the configured view is not fresh at C_Initialize and the
 * configuration names the package's command (`rebuild`), the module has it
 * build a fresh view of the same upstream and policy, within a hard time
 * limit:
 *
 *  - in place, when this process may write the install (root for a system
 *    install, the user for a browser in their home): the command is
 *    `rebuild refresh --config CONFIG`;
 *  - otherwise into a directory of this user's own,
 *    $XDG_CACHE_HOME/ncfence/views/<id of the configuration file>, that only
 *    this user can write: `rebuild refresh --config CONFIG --out DIR`. The
 *    view there is used only when its stamp equals the stamp of what
 *    upstream is now, like any view (entry.c), so it is never served stale,
 *    and it is built from the same configuration, so from the same upstream
 *    and policy.
 *
 * One process builds at a time (flock: on the configuration file in place,
 * on DIR/lock otherwise); the others wait, within the same limit, and then
 * read what it built. A privileged process (setuid, setgid) never gets here
 * (entry.c), and root runs the command only from a configuration and a
 * command root owns. The child's stdout goes to /dev/null (the module never
 * writes stdout), it inherits no descriptor of the host but stderr, and it
 * runs in its own process group, killed whole at the limit. */
#include "nf.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define REBUILD_DEFAULT_MS 15000L
#define REBUILD_MAX_MS 120000L

long long
nf_now_ms (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000LL;
}

int
nf_spawn (char *const argv[], char *const env[], int flags, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init (&fa);
	posix_spawn_file_actions_addopen (&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen (&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	if (flags & NF_SPAWN_QUIET)
		posix_spawn_file_actions_addopen (&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	/* None of a browser's descriptors that lack close-on-exec reaches a child. */
	posix_spawn_file_actions_addclosefrom_np (&fa, STDERR_FILENO + 1);
	posix_spawnattr_t attr;
	posix_spawnattr_init (&attr);
	if (flags & NF_SPAWN_SESSION)
		posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETSID);
	if (flags & NF_SPAWN_GROUP) {
		posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP);
		posix_spawnattr_setpgroup (&attr, 0);
	}
	int err = posix_spawn (pid, argv[0], &fa, &attr, argv, env != NULL ? env : environ);
	posix_spawnattr_destroy (&attr);
	posix_spawn_file_actions_destroy (&fa);
	return err;
}

static long
limit_ms (const nf_config *cfg)
{
	return cfg->rebuild_timeout_ms > 0 && cfg->rebuild_timeout_ms <= REBUILD_MAX_MS ? cfg->rebuild_timeout_ms : REBUILD_DEFAULT_MS;
}

static void
pause_ms (long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep (&ts, NULL);
}

/* FNV-1a, 64 bits: a short, stable directory name for a configuration path
 * (the stamp, not the name, decides whether a view there is fresh). */
uint64_t
nf_fnv1a (const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* This user's cache directory: $XDG_CACHE_HOME when absolute, else
 * $HOME/.cache, else the password database's home (XDG Base Directory
 * Specification). The process is not privileged here, so its environment
 * is its own user's. */
static int
nf_user_cache (char *out, size_t len)
{
	const char *xdg = secure_getenv ("XDG_CACHE_HOME");
	const char *home = secure_getenv ("HOME");
	int n;
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf (out, len, "%s", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf (out, len, "%s/.cache", home);
	else {
		struct passwd *pw = getpwuid (geteuid ());
		if (pw == NULL || pw->pw_dir == NULL || pw->pw_dir[0] != '/')
			return -1;
		n = snprintf (out, len, "%s/.cache", pw->pw_dir);
	}
	return n > 0 && (size_t)n < len ? 0 : -1;
}

typedef struct {
	char *why;
	size_t why_len;
	const char *what;
} chain_ctx;

/* Calls check on `path` and on each directory above it, up to /, with what
 * lstat says of it; stops at the first non-zero answer. */
static int
walk_up (const char *path, int (*check) (const char *p, const struct stat *st, int depth, chain_ctx *c), chain_ctx *c)
{
	char p[4096];
	int n = snprintf (p, sizeof p, "%s", path);
	if (n <= 0 || (size_t)n >= sizeof p || p[0] != '/')
		return -1;
	for (int depth = 0;; depth++) {
		struct stat st;
		if (lstat (p, &st) < 0) {
			snprintf (c->why, c->why_len, "cannot inspect %s: %s", p, strerror (errno));
			return -1;
		}
		int r = check (p, &st, depth, c);
		if (r != 0 || strcmp (p, "/") == 0)
			return r;
		char *slash = strrchr (p, '/');
		if (slash == p)
			p[1] = '\0';
		else
			*slash = '\0';
	}
}

/* The per-user directory and every directory above it: a real directory,
 * owned by this user (the directory itself) or this user or root (those
 * above), and none but a sticky one (/tmp) writable by group or others. So
 * no other user can swap the directory or what is in it. */
static int
private_component (const char *p, const struct stat *st, int depth, chain_ctx *c)
{
	uid_t me = geteuid ();
	const char *bad = S_ISLNK (st->st_mode)                    ? "is a symbolic link"
	                  : !S_ISDIR (st->st_mode)                 ? "is not a directory"
	                  : st->st_uid != me && st->st_uid != 0    ? "belongs to another user"
	                  : depth == 0 && st->st_uid != me         ? "is not this user's"
	                  : (st->st_mode & 022) && (depth == 0 || !(st->st_mode & S_ISVTX)) ? "is writable by group or others"
	                                                           : NULL;
	if (bad == NULL)
		return 0;
	snprintf (c->why, c->why_len, "%s is not private: %s %s", c->what, p, bad);
	return -1;
}

/* A file root may run or read: root's, and in directories only root can
 * write (a sticky one aside). Its path is real (root_may_run): lstat sees
 * what stat would, and a link put there since is not root's alone. */
static int
root_component (const char *p, const struct stat *st, int depth, chain_ctx *c)
{
	int sticky_dir = S_ISDIR (st->st_mode) && (st->st_mode & S_ISVTX) && depth > 0;
	if (st->st_uid == 0 && (!(st->st_mode & 022) || sticky_dir))
		return 0;
	snprintf (c->why, c->why_len, "not running %s as root: %s is not root's alone", c->what, p);
	return -1;
}

/* mkdir -p, with mode 0700 for what it creates. */
static int
make_dirs (const char *dir, char *why, size_t why_len)
{
	char path[4096];
	snprintf (path, sizeof path, "%s", dir);
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir (path, 0700) < 0 && errno != EEXIST) {
			snprintf (why, why_len, "cannot create %s: %s", path, strerror (errno));
			return -1;
		}
		*p = c;
		if (c == '\0')
			return 0;
	}
}

/* flock with a bounded wait. */
static int
lock_within (int fd, long deadline)
{
	for (;;) {
		if (flock (fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if ((errno != EWOULDBLOCK && errno != EINTR) || nf_now_ms () > deadline)
			return -1;
		pause_ms (10);
	}
}

static int
dir_of (const char *file, char *out, size_t len)
{
	const char *slash = strrchr (file, '/');
	if (slash == NULL)
		return -1;
	int n = snprintf (out, len, "%.*s", slash == file ? 1 : (int)(slash - file), file);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

/* Whether this process may rebuild the install itself: it may write the
 * view, its directory and the configuration's directory. Root does so only
 * for a configuration and a command that root owns. */
static int
in_place (const nf_config *cfg)
{
	char vdir[4096], cdir[4096];
	if (dir_of (cfg->view, vdir, sizeof vdir) < 0 || dir_of (cfg->source, cdir, sizeof cdir) < 0)
		return 0;
	if (access (vdir, W_OK) != 0 || access (cdir, W_OK) != 0)
		return 0;
	if (access (cfg->view, F_OK) == 0 && access (cfg->view, W_OK) != 0)
		return 0;
	return 1;
}

/* Root runs nothing another user can write: the configuration that names
 * the command, the command and its interpreter must be root's files, in
 * directories only root can write (real paths: a link's target is what
 * runs). */
static int
root_may_run (const nf_config *cfg, char *why, size_t why_len)
{
	const char *files[] = { cfg->source, cfg->rebuild, cfg->rebuild_node };
	chain_ctx c = { why, why_len, cfg->rebuild };
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		char real[4096];
		if (files[i] == NULL)
			continue;
		if (realpath (files[i], real) == NULL) {
			snprintf (why, why_len, "cannot inspect %s: %s", files[i], strerror (errno));
			return -1;
		}
		if (walk_up (real, root_component, &c) != 0)
			return -1;
	}
	return 0;
}

int
nf_user_dir (char *out, size_t len, char *why, size_t why_len)
{
	char cache[3800];
	if (nf_user_cache (cache, sizeof cache) < 0) {
		snprintf (why, why_len, "this user has no home directory");
		return -1;
	}
	int n = snprintf (out, len, "%s/ncfence", cache);
	if (n <= 0 || (size_t)n >= len)
		return -1;
	chain_ctx c = { why, why_len, "ncfence's directory in this user's cache" };
	if (make_dirs (out, why, why_len) < 0 || walk_up (out, private_component, &c) != 0)
		return -1;
	return 0;
}

int
rebuild_prepare (const nf_config *cfg, int build, nf_rebuild_plan *plan, char *why, size_t why_len)
{
	memset (plan, 0, sizeof *plan);
	plan->lock_fd = -1;
	long long deadline = nf_now_ms () + limit_ms (cfg);
	if (geteuid () == 0 && root_may_run (cfg, why, why_len) < 0)
		return -1;
	if (in_place (cfg)) {
		snprintf (plan->view, sizeof plan->view, "%s", cfg->view);
		if (build)
			plan->lock_fd = open (cfg->source, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	} else {
		char cache[3800];
		if (nf_user_cache (cache, sizeof cache) < 0) {
			snprintf (why, why_len, "this user has no home directory for a view of their own");
			return -1;
		}
		snprintf (plan->dir, sizeof plan->dir, "%s/ncfence/views/%016llx", cache, (unsigned long long)nf_fnv1a (cfg->source));
		chain_ctx c = { why, why_len, "the per-user view directory" };
		if (build && make_dirs (plan->dir, why, why_len) < 0)
			return -1;
		if (walk_up (plan->dir, private_component, &c) != 0)
			return -1;
		snprintf (plan->view, sizeof plan->view, "%s/view.ncfv", plan->dir);
		if (build) {
			char lock[4200];
			snprintf (lock, sizeof lock, "%s/lock", plan->dir);
			plan->lock_fd = open (lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		}
	}
	if (!build)
		return 0;
	if (plan->lock_fd < 0 || lock_within (plan->lock_fd, deadline) < 0) {
		snprintf (why, why_len, "another process has been rebuilding the view for %ld ms", limit_ms (cfg));
		rebuild_release (plan);
		return -1;
	}
	return 0;
}

void
rebuild_release (nf_rebuild_plan *plan)
{
	if (plan->lock_fd >= 0)
		close (plan->lock_fd); /* releases the flock */
	plan->lock_fd = -1;
}

int
rebuild_run (const nf_config *cfg, const nf_rebuild_plan *plan, char *why, size_t why_len)
{
	const char *argv[10];
	int argc = 0;
	if (cfg->rebuild_node != NULL && cfg->rebuild_node[0] != '\0')
		argv[argc++] = cfg->rebuild_node;
	argv[argc++] = cfg->rebuild;
	argv[argc++] = "refresh";
	argv[argc++] = "--config";
	argv[argc++] = cfg->source;
	if (plan->dir[0] != '\0') {
		argv[argc++] = "--out";
		argv[argc++] = plan->dir;
	}
	argv[argc] = NULL;
	/* The environment, plus NCFENCE_REBUILDING=1 so that no module loaded by
	 * what the rebuild starts (a browser, for browser targets) rebuilds in
	 * turn (entry.c). */
	size_t nenv = 0;
	while (environ != NULL && environ[nenv] != NULL) /* clearenv() leaves environ NULL */
		nenv++;
	char **env = malloc ((nenv + 2) * sizeof *env);
	if (env == NULL) {
		snprintf (why, why_len, "out of memory");
		return -1;
	}
	if (nenv > 0)
		memcpy (env, environ, nenv * sizeof *env);
	env[nenv] = "NCFENCE_REBUILDING=1";
	env[nenv + 1] = NULL;
	/* Nothing of the host's but stderr, and its own process group, so a
	 * timeout kills whatever it started too (a browser, for browser targets). */
	pid_t pid;
	int err = nf_spawn ((char *const *)argv, env, NF_SPAWN_GROUP, &pid);
	free (env);
	if (err != 0) {
		snprintf (why, why_len, "cannot run %s: %s", argv[0], strerror (err));
		return -1;
	}
	long limit = limit_ms (cfg);
	long long deadline = nf_now_ms () + limit;
	int status = 0;
	for (;;) {
		pid_t r = waitpid (pid, &status, WNOHANG);
		if (r == pid)
			break;
		/* The host reaps children itself (SIGCHLD ignored): judge by the view. */
		if (r < 0 && errno != EINTR)
			return 0;
		if (nf_now_ms () > deadline) {
			kill (-pid, SIGKILL);
			waitpid (pid, &status, 0);
			snprintf (why, why_len, "rebuild command %s did not finish within %ld ms", cfg->rebuild, limit);
			return -1;
		}
		pause_ms (5);
	}
	if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
		snprintf (why, why_len, "rebuild command %s failed (status %d)", cfg->rebuild, status);
		return -1;
	}
	return 0;
}
