// The README's Quick start, run verbatim by a new user on this Debian
// system: a clone of the repository, its first block as written (./setup.sh,
// `sudo ncfence install firefox`, `ncfence doctor`), with nothing else done
// first or after. It installs into the system's Firefox and npm's global
// prefix, so it runs in a sandbox of this system (test/helpers/sandbox.ts:
// an overlay of / in a mount namespace of its own): the real Debian
// packages, npm and sudo, and nothing of the host changes. npm fetches the
// package's dependencies from the npm registry, as it would for the user.

import test from 'ava';
import { existsSync } from 'node:fs';
import { shellBlocks } from '../helpers/docExamples.js';
import { makeSandbox, type Sandbox } from '../helpers/sandbox.js';
import { ROOT } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

const USER = 'ncfence-newcomer';
let box: Sandbox;

test.before(async () => {
  for (const tool of ['unshare', 'nsenter', 'runuser', 'sudo', 'git', 'firefox-esr']) await requireTool(tool);
  box = await makeSandbox();
});
test.after.always(async () => {
  await box?.close();
});

test.serial("README's Quick start, as written, from a clone: Firefox ends up fenced and doctor says every check is ok", async (t) => {
  const blocks = shellBlocks(ROOT, 'README.md');
  const quick = blocks.find((b) => b.text.includes('./setup.sh'));
  t.truthy(quick, 'the Quick start block');
  t.regex(quick!.text, /^sudo ncfence install firefox /m, 'its main job fences Firefox');
  t.regex(quick!.text, /^ncfence doctor /m);

  const ok = async (what: string, cmd: string[], user?: string) => {
    const r = await box.run(cmd, { timeoutMs: 900_000, ...(user ? { user } : {}) });
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stdout.slice(-4000)}\n${r.stderr.slice(-4000)}`);
    return r.stdout + r.stderr;
  };
  // A new user who may use sudo, and a clone of the repository in their home.
  await ok('useradd', ['useradd', '-m', '-s', '/bin/bash', USER]);
  await ok('sudoers', ['sh', '-c', `echo '${USER} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/${USER} && chmod 440 /etc/sudoers.d/${USER}`]);
  await ok('git clone', ['git', 'clone', '--quiet', '--no-local', ROOT, `/home/${USER}/ncfence`]);
  await ok('chown', ['chown', '-R', `${USER}:${USER}`, `/home/${USER}/ncfence`]);
  t.false((await box.run(['sh', '-c', 'command -v ncfence'])).code === 0, 'no ncfence before the Quick start');

  // The block, verbatim, as the user, in the clone; bash -e: every command must succeed.
  const out = await ok('the Quick start', ['bash', '-ec', `cd ~/ncfence\n${quick!.text}`], USER);
  t.regex(out, /installed firefox: module \/usr\/lib\/firefox-esr\/libnssckbi\.so/);
  t.regex(out, /checked: +all \d+ roots Firefox trusts on its own are fenced/);
  t.regex(out, /ok {3}Firefox loads ncfence: its roots module is \/usr\/lib\/firefox-esr\/libnssckbi\.so \(ncfence\)/);
  t.regex(out, /ok {3}Firefox's own roots: all \d+ roots Firefox trusts on its own are fenced with the same purposes and policy; nothing missing, nothing added/);
  t.notRegex(out, /FAIL/);
  t.true(existsSync(ROOT), 'sanity: the host checkout is untouched');
  const host = await run('sh', ['-c', 'test -e /usr/lib/firefox-esr/libnssckbi.so']);
  t.not(host.code, 0, "the host's Firefox was not touched");
});
