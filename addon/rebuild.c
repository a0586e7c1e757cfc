/* Regenerating a stale or unusable view at C_Initialize, when the
 * configuration names a rebuild command: the engine runs as a child process
 * with a hard time limit, and the module then tries the view once more.
 * The child's stdout goes to /dev/null (the module never writes stdout). */
#include "nf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define REBUILD_MAX_MS 120000L

static long
now_ms (void)
{
	struct timespec ts;
	clock_gettime (CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* 0 when the command ran and exited 0 within the time limit. */
int
rebuild_run (const nf_config *cfg, char *why, size_t why_len)
{
	char *view_copy = strdup (cfg->view);
	if (view_copy == NULL)
		return -1;
	char *out_dir = dirname (view_copy);
	/* A browser target is rebuilt from the browser's directory (libxul's). */
	char *lib_copy = strdup (cfg->upstream);
	if (lib_copy == NULL) {
		free (view_copy);
		return -1;
	}
	char *browser_dir = dirname (lib_copy);
	char *module_argv[] = {
		cfg->rebuild, "build", "--upstream", cfg->upstream, "--upstream-params", cfg->params,
		"--out", out_dir, "--policy", cfg->policy, NULL,
	};
	char *browser_argv[] = {
		cfg->rebuild, "build", "--browser", browser_dir, "--out", out_dir, "--policy", cfg->policy, NULL,
	};
	char **argv = cfg->browser ? browser_argv : module_argv;
	/* The environment, plus NCFENCE_REBUILDING=1 so that no module loaded by
	 * what the rebuild starts (a browser, for browser targets) rebuilds in
	 * turn (entry.c). */
	size_t nenv = 0;
	while (environ != NULL && environ[nenv] != NULL) /* clearenv() leaves environ NULL */
		nenv++;
	char **env = malloc ((nenv + 2) * sizeof *env);
	if (env == NULL) {
		free (view_copy);
		free (lib_copy);
		return -1;
	}
	if (nenv > 0)
		memcpy (env, environ, nenv * sizeof *env);
	env[nenv] = "NCFENCE_REBUILDING=1";
	env[nenv + 1] = NULL;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init (&fa);
	posix_spawn_file_actions_addopen (&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen (&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	/* Nothing of the host's but stderr: none of a browser's descriptors
	 * that lack close-on-exec reaches the rebuild, or the browser it starts. */
	posix_spawn_file_actions_addclosefrom_np (&fa, STDERR_FILENO + 1);
	/* Its own process group, so a timeout kills whatever it started too. */
	posix_spawnattr_t attr;
	posix_spawnattr_init (&attr);
	posix_spawnattr_setflags (&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup (&attr, 0);
	pid_t pid;
	int err = posix_spawn (&pid, cfg->rebuild, &fa, &attr, argv, env);
	posix_spawnattr_destroy (&attr);
	posix_spawn_file_actions_destroy (&fa);
	free (view_copy);
	free (lib_copy);
	free (env);
	if (err != 0) {
		snprintf (why, why_len, "cannot run rebuild command %s: %s", cfg->rebuild, strerror (err));
		return -1;
	}
	long limit = cfg->rebuild_timeout_ms > 0 && cfg->rebuild_timeout_ms <= REBUILD_MAX_MS ? cfg->rebuild_timeout_ms : 15000L;
	long deadline = now_ms () + limit;
	int status = 0;
	for (;;) {
		pid_t r = waitpid (pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			/* The host reaps children itself (SIGCHLD ignored): judge by the view. */
			return 0;
		}
		if (now_ms () > deadline) {
			kill (-pid, SIGKILL);
			waitpid (pid, &status, 0);
			snprintf (why, why_len, "rebuild command %s did not finish within %ld ms", cfg->rebuild, limit);
			return -1;
		}
		struct timespec pause = { 0, 5 * 1000000L };
		nanosleep (&pause, NULL);
	}
	if (!WIFEXITED (status) || WEXITSTATUS (status) != 0) {
		snprintf (why, why_len, "rebuild command %s failed (status %d)", cfg->rebuild, status);
		return -1;
	}
	return 0;
}
