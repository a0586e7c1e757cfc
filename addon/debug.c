/* Logging: NCFENCE_DEBUG=all or a comma list of keys; "help" lists them.
 * Warnings (fail-closed reasons) are always printed. Everything goes to
 * stderr with a (ncfence:<pid>) prefix; the module never writes stdout. */
#include "nf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

unsigned nf_debug_flags;

static const struct { const char *name; unsigned flag; } debug_keys[] = {
	{ "init", NF_DBG_INIT }, { "find", NF_DBG_FIND }, { "attrs", NF_DBG_ATTRS },
	{ "view", NF_DBG_VIEW }, { "session", NF_DBG_SESSION }, { "classify", NF_DBG_CLASSIFY },
};

void
debug_init (void)
{
	const char *env = secure_getenv ("NCFENCE_DEBUG");
	char buf[256];
	nf_debug_flags = 0;
	if (env == NULL || env[0] == '\0')
		return;
	snprintf (buf, sizeof buf, "%s", env);
	for (char *save = NULL, *tok = strtok_r (buf, ",", &save); tok; tok = strtok_r (NULL, ",", &save)) {
		if (strcmp (tok, "all") == 0 || strcmp (tok, "1") == 0) {
			nf_debug_flags = ~0U;
		} else if (strcmp (tok, "help") == 0) {
			fprintf (stderr, "(ncfence:%d) NCFENCE_DEBUG keys: all", (int)getpid ());
			for (size_t i = 0; i < sizeof debug_keys / sizeof debug_keys[0]; i++)
				fprintf (stderr, " %s", debug_keys[i].name);
			fprintf (stderr, "\n");
		} else {
			for (size_t i = 0; i < sizeof debug_keys / sizeof debug_keys[0]; i++)
				if (strcmp (tok, debug_keys[i].name) == 0)
					nf_debug_flags |= debug_keys[i].flag;
		}
	}
}

static void
vlog (const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	vsnprintf (line, sizeof line, fmt, ap);
	fprintf (stderr, "(ncfence:%d) %s%s\n", (int)getpid (), level, line);
}

void
nf_warn (const char *fmt, ...)
{
	va_list ap;
	va_start (ap, fmt);
	vlog ("WARNING: ", fmt, ap);
	va_end (ap);
}

void
nf_debug_print (const char *fmt, ...)
{
	va_list ap;
	va_start (ap, fmt);
	vlog ("", fmt, ap);
	va_end (ap);
}

const char *
debug_rv_name (CK_RV rv)
{
	switch (rv) {
#define RV(x) case x: return #x;
	RV (CKR_OK) RV (CKR_HOST_MEMORY) RV (CKR_SLOT_ID_INVALID) RV (CKR_GENERAL_ERROR)
	RV (CKR_FUNCTION_FAILED) RV (CKR_ARGUMENTS_BAD) RV (CKR_CANT_LOCK)
	RV (CKR_ATTRIBUTE_READ_ONLY) RV (CKR_ATTRIBUTE_SENSITIVE) RV (CKR_ATTRIBUTE_TYPE_INVALID)
	RV (CKR_ATTRIBUTE_VALUE_INVALID) RV (CKR_ACTION_PROHIBITED) RV (CKR_DEVICE_ERROR)
	RV (CKR_FUNCTION_NOT_SUPPORTED) RV (CKR_OBJECT_HANDLE_INVALID) RV (CKR_OPERATION_ACTIVE)
	RV (CKR_OPERATION_NOT_INITIALIZED) RV (CKR_SESSION_HANDLE_INVALID) RV (CKR_TEMPLATE_INCONSISTENT)
	RV (CKR_TOKEN_NOT_PRESENT) RV (CKR_TOKEN_WRITE_PROTECTED) RV (CKR_BUFFER_TOO_SMALL)
	RV (CKR_CRYPTOKI_NOT_INITIALIZED) RV (CKR_CRYPTOKI_ALREADY_INITIALIZED)
#undef RV
	default: return "CKR_(other)";
	}
}
