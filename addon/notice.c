/* Saying why no root is trusted where a person looks (docs/install.md,
 * "When the view is closed"). A closed view is right when no fresh view can
 * be had, but a browser user sees only "unknown issuer" on every site, and
 * the module's stderr line reaches a terminal, not a desktop. So a closed
 * module also:
 *
 *  - names itself in its token: the label "ncfence: NO ROOTS TRUSTED" and
 *    a slot description with the reason. Firefox, Thunderbird and Tor
 *    Browser show both in Settings > Privacy & Security > Security Devices,
 *    and certutil -U / p11-kit list-modules print them. A browser target
 *    with no view has no slot of its own, so it gets one, empty.
 *  - sends one desktop notification through the session's standard
 *    mechanism (org.freedesktop.Notifications, by /usr/bin/notify-send),
 *    when the process has a session bus and is not privileged; at most once
 *    an hour per configuration, remembered in the user's cache directory.
 *
 * Neither ever makes anything trusted. */
#include "nf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOTIFY_SEND "/usr/bin/notify-send"
#define NOTIFY_EVERY_S 3600
#define NOTICE_SLOT 1
#define NOTICE_LABEL "ncfence: NO ROOTS TRUSTED"

static nf_snapshot notice_snap;
static int notice_on;

void
notice_closed (const char *reason)
{
	char desc[128];
	snprintf (desc, sizeof desc, "ncfence: no roots trusted (%s); run ncfence doctor", reason);
	memset (&notice_snap, 0, sizeof notice_snap);
	notice_snap.slot = NOTICE_SLOT;
	nf_pad (notice_snap.slot_info.slotDescription, sizeof notice_snap.slot_info.slotDescription, desc);
	nf_pad (notice_snap.slot_info.manufacturerID, sizeof notice_snap.slot_info.manufacturerID, "ncfence");
	notice_snap.slot_info.flags = CKF_TOKEN_PRESENT;
	nf_pad (notice_snap.token_info.label, sizeof notice_snap.token_info.label, NOTICE_LABEL);
	nf_pad (notice_snap.token_info.manufacturerID, sizeof notice_snap.token_info.manufacturerID, "ncfence");
	nf_pad (notice_snap.token_info.model, sizeof notice_snap.token_info.model, "closed view");
	nf_pad (notice_snap.token_info.serialNumber, sizeof notice_snap.token_info.serialNumber, "0");
	notice_snap.token_info.flags = CKF_WRITE_PROTECTED | CKF_TOKEN_INITIALIZED;
	notice_snap.token_info.ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
	notice_snap.token_info.ulTotalPublicMemory = notice_snap.token_info.ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
	notice_snap.token_info.ulTotalPrivateMemory = notice_snap.token_info.ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
	__atomic_store_n (&notice_on, 1, __ATOMIC_RELEASE);
}

void
notice_clear (void)
{
	__atomic_store_n (&notice_on, 0, __ATOMIC_RELEASE);
}

const nf_snapshot *
notice_snapshot (void)
{
	return __atomic_load_n (&notice_on, __ATOMIC_ACQUIRE) ? &notice_snap : NULL;
}

void
notice_slot_info (CK_SLOT_INFO_PTR info)
{
	if (notice_snapshot () != NULL)
		memcpy (info->slotDescription, notice_snap.slot_info.slotDescription, sizeof info->slotDescription);
}

void
notice_token_info (CK_TOKEN_INFO_PTR info)
{
	if (notice_snapshot () != NULL)
		memcpy (info->label, notice_snap.token_info.label, sizeof info->label);
}

/* Whether this configuration was notified less than NOTIFY_EVERY_S ago;
 * marks it notified now otherwise. Without a private cache directory:
 * notify. */
static int
notified_recently (const char *config)
{
	char dir[3900], mark[4096], why[256];
	if (nf_user_dir (dir, sizeof dir, why, sizeof why) < 0)
		return 0;
	snprintf (mark, sizeof mark, "%s/notified-%016llx", dir, (unsigned long long)nf_fnv1a (config));
	struct stat st;
	if (lstat (mark, &st) == 0 && S_ISREG (st.st_mode) && st.st_uid == geteuid () && time (NULL) - st.st_mtime < NOTIFY_EVERY_S)
		return 1;
	int fd = open (mark, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0) {
		futimens (fd, NULL);
		close (fd);
	}
	return 0;
}

void
notice_notify (const char *config, const char *why, const char *fix)
{
	const char *bus = secure_getenv ("DBUS_SESSION_BUS_ADDRESS");
	if (host_privileged () || bus == NULL || bus[0] == '\0' || secure_getenv ("NCFENCE_REBUILDING") != NULL)
		return;
	if (access (NOTIFY_SEND, X_OK) != 0 || notified_recently (config))
		return;
	char body[1400];
	snprintf (body, sizeof body, "%s. Until this is fixed, secure sites fail with \"unknown issuer\". Fix: run `%s`, or `ncfence doctor` to see more.",
	          why, fix);
	/* A shell that starts notify-send in the background and exits at once:
	 * the module waits only for the shell, and notify-send, reparented to
	 * init, is never left a zombie of the host. */
	char *argv[] = {
		"/bin/sh", "-c", "\"$0\" \"$@\" </dev/null >/dev/null 2>&1 &", NOTIFY_SEND, "--app-name=ncfence",
		"--urgency=critical", "--icon=dialog-warning", "ncfence: no secure site can be verified", body, NULL,
	};
	pid_t pid;
	if (nf_spawn (argv, NULL, 0, &pid) == 0)
		while (waitpid (pid, NULL, 0) < 0 && errno == EINTR)
			;
}
