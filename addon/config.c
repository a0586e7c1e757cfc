/* Finds and parses ncfence.conf (format: src/config.ts, docs/configuration.md).
 * Search order: $NCFENCE_CONFIG, ncfence.conf beside this module, then
 * /etc/ncfence/ncfence.conf. */
#include "nf.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYSTEM_CONFIG "/etc/ncfence/ncfence.conf"
#define MAX_LINE 8192

static char *
trim (char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen (s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

static int
set_key (nf_config *cfg, const char *key, const char *value)
{
	long *ms = strcmp (key, "rebuild-timeout-ms") == 0   ? &cfg->rebuild_timeout_ms
	           : strcmp (key, "service-timeout-ms") == 0 ? &cfg->service_timeout_ms
	                                                     : NULL;
	if (ms != NULL) {
		char *end;
		long v = strtol (value, &end, 10);
		if (*value == '\0' || *end != '\0' || v <= 0 || v > 120000)
			return -1;
		*ms = v;
		return 0;
	}
	if (strcmp (key, "upstream-kind") == 0) {
		if (strcmp (value, "module") != 0 && strcmp (value, "browser") != 0)
			return -1;
		cfg->browser = strcmp (value, "browser") == 0;
		return 0;
	}
	char **slot = strcmp (key, "upstream") == 0          ? &cfg->upstream
	              : strcmp (key, "upstream-params") == 0 ? &cfg->params
	              : strcmp (key, "upstream-trust-paths") == 0 ? &cfg->trust_paths
	              : strcmp (key, "view") == 0            ? &cfg->view
	              : strcmp (key, "policy") == 0          ? &cfg->policy
	              : strcmp (key, "rebuild") == 0         ? &cfg->rebuild
	              : strcmp (key, "rebuild-node") == 0    ? &cfg->rebuild_node
	              : strcmp (key, "engine") == 0          ? &cfg->engine
	              : strcmp (key, "service") == 0         ? &cfg->service
	              : strcmp (key, "service-command") == 0 ? &cfg->service_command
	              : strcmp (key, "fix") == 0             ? &cfg->fix
	                                                     : NULL;
	if (slot == NULL)
		return -1;
	free (*slot);
	*slot = strdup (value);
	return *slot ? 0 : -1;
}

/* Why the configuration cannot be opened, and the fix for that reason: a
 * permission problem is fixed by its owner, not by a rebuild (which would
 * write the same file with the same owner). docs/troubleshooting.md gives
 * the same fixes. */
static void
config_open_failed (const char *path, int err, char *why, size_t why_len, char *fix, size_t fix_len)
{
	struct stat st;
	if ((err == EACCES || err == EPERM) && stat (path, &st) == 0) {
		snprintf (why, why_len, "cannot read configuration %s: permission denied (owned by uid %ld, mode %04o; this process runs as uid %ld)",
		          path, (long)st.st_uid, (unsigned)(st.st_mode & 07777), (long)getuid ());
		snprintf (fix, fix_len, "let this user read it: as its owner (uid %ld), chmod 644 %s (it holds paths, no secret), "
		          "or point NCFENCE_CONFIG at a configuration this user can read", (long)st.st_uid, path);
	} else if (err == EACCES || err == EPERM) {
		snprintf (why, why_len, "cannot read configuration %s: permission denied on a directory above it (this process runs as uid %ld)", path, (long)getuid ());
		snprintf (fix, fix_len, "let this user reach it: chmod a+x each directory above %s (as its owner), "
		          "or point NCFENCE_CONFIG at a configuration this user can read", path);
	} else if (err == ENOENT) {
		snprintf (why, why_len, "cannot read configuration %s: it does not exist", path);
		snprintf (fix, fix_len, "point NCFENCE_CONFIG at the ncfence.conf that `ncfence build --out DIR` wrote, or run `ncfence build`");
	} else {
		snprintf (why, why_len, "cannot read configuration %s: %s", path, strerror (err));
		snprintf (fix, fix_len, "check %s, or run `ncfence build` to write it again", path);
	}
}

static int
config_parse (const char *path, nf_config *cfg, char *why, size_t why_len, char *fix, size_t fix_len)
{
	FILE *f = fopen (path, "re");
	char line[MAX_LINE];
	int lineno = 0;
	if (f == NULL) {
		config_open_failed (path, errno, why, why_len, fix, fix_len);
		return -1;
	}
	while (fgets (line, sizeof line, f)) {
		lineno++;
		if (strchr (line, '\n') == NULL && !feof (f)) {
			snprintf (why, why_len, "%s:%d: line too long", path, lineno);
			fclose (f);
			return -1;
		}
		char *t = trim (line);
		if (*t == '\0' || *t == '#')
			continue;
		char *eq = strchr (t, '=');
		if (eq == NULL) {
			snprintf (why, why_len, "%s:%d: expected key = value", path, lineno);
			fclose (f);
			return -1;
		}
		*eq = '\0';
		if (set_key (cfg, trim (t), trim (eq + 1)) < 0) {
			snprintf (why, why_len, "%s:%d: unknown key or bad value for \"%s\"", path, lineno, trim (t));
			fclose (f);
			return -1;
		}
	}
	fclose (f);
	if (cfg->upstream == NULL || cfg->view == NULL || cfg->policy == NULL) {
		snprintf (why, why_len, "%s: needs upstream, view and policy", path);
		return -1;
	}
	if (cfg->params == NULL && (cfg->params = strdup ("")) == NULL)
		return -1;
	return 0;
}

static int
beside_module (char *out, size_t len)
{
	Dl_info info;
	if (dladdr ((void *)&config_find, &info) == 0 || info.dli_fname == NULL)
		return -1;
	const char *slash = strrchr (info.dli_fname, '/');
	if (slash == NULL)
		return -1;
	int n = snprintf (out, len, "%.*s/ncfence.conf", (int)(slash - info.dli_fname), info.dli_fname);
	return (n > 0 && (size_t)n < len) ? 0 : -1;
}

int
config_find (nf_config *cfg, char *why, size_t why_len, char *fix, size_t fix_len)
{
	char path[PATH_MAX];
	/* secure_getenv: in a setuid or setgid program the invoker's
	 * environment must not choose the configuration (and with it the
	 * upstream to load and the command to run). */
	const char *env = secure_getenv ("NCFENCE_CONFIG");
	memset (cfg, 0, sizeof *cfg);
	if (env != NULL && env[0] != '\0')
		snprintf (path, sizeof path, "%s", env);
	else if (beside_module (path, sizeof path) == 0 && access (path, F_OK) == 0)
		;
	else if (access (SYSTEM_CONFIG, F_OK) == 0)
		snprintf (path, sizeof path, "%s", SYSTEM_CONFIG);
	else
		return 0;
	/* The default fix, for a configuration that is there but wrong. */
	snprintf (fix, fix_len, "run `ncfence build` to write it again (docs/configuration.md)");
	cfg->source = strdup (path);
	if (cfg->source == NULL || config_parse (path, cfg, why, why_len, fix, fix_len) < 0) {
		config_free (cfg);
		return -1;
	}
	return 1;
}

void
config_free (nf_config *cfg)
{
	free (cfg->upstream);
	free (cfg->params);
	free (cfg->trust_paths);
	free (cfg->view);
	free (cfg->policy);
	free (cfg->rebuild);
	free (cfg->rebuild_node);
	free (cfg->engine);
	free (cfg->service);
	free (cfg->service_command);
	free (cfg->fix);
	free (cfg->source);
	memset (cfg, 0, sizeof *cfg);
}
