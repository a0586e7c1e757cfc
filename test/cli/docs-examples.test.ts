// Every shell example in README.md and docs/*.md runs as written (issue 20):
// the unmarked `sh` blocks of each page, in order, in one bash, in a scratch
// directory, with `ncfence` on PATH from a temporary npm prefix, compared with
// the output the page shows (test/helpers/docExamples.ts says how). A page
// passes only when its commands succeed, show what the page says, and leave
// nothing running. A block that needs changes to this machine (an install
// into the system's Firefox) or runs forever carries a marker naming the test
// that runs its commands; the marker is checked, and a block that is neither
// runnable nor marked fails.
//
// The session's world: HOME, TMPDIR and the working directory are in the
// scratch directory; `sudo` runs its command as is (the tests run as root);
// `apt-get install` only checks that the packages are installed (.ci/run
// installs them; a test never changes the machine's packages); a page that
// installs ncfence with npm gets an empty npm prefix and a copy of this
// checkout as its working directory, as if cloned, and npm works offline
// from the runner's cache (which `npm ci` filled); every other page gets a
// prefix whose ncfence is this checkout's built CLI (run `npm run build`
// first). Each page runs in a network namespace of its own, so its fixed
// ports (8443, ...) are its own and nothing else on the machine can answer
// on them.

import test from 'ava';
import { spawn, execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { markerProblems, outputMatches, shellBlocks, steps, type ShellBlock } from '../helpers/docExamples.js';
import { DIST_CLI, ROOT } from '../helpers/paths.js';
import { requireTool } from '../helpers/run.js';

const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];
const STEP = '@@ncfence-doc-step@@';

test.before(async () => {
  for (const tool of ['unshare', 'ip', 'dpkg-query', 'pgrep']) await requireTool(tool);
  if (!existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run npm run build`);
});

const SUDO = '#!/bin/sh\n# The tests run as root: run the command as it is, keeping the environment.\nexec "$@"\n';
const APT_GET = `#!/bin/sh
# A doc example's apt-get: checks that the packages it names are installed
# (.ci/run installs them); never changes the machine.
[ "$1" = install ] || { echo "apt-get shim: only 'install' is supported, got $1" >&2; exit 2; }
shift; missing=
for p in "$@"; do
  case "$p" in -*) continue;; esac
  dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
[ -z "$missing" ] || { echo "apt-get shim: not installed:$missing (.ci/run installs them)" >&2; exit 1; }
`;

/** A copy of this checkout's files as git knows them (tracked and untracked, not ignored), like a fresh clone with its node_modules. */
function cloneCheckout(to: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT }).toString().split('\0').filter(Boolean);
  for (const f of files) {
    if (!existsSync(join(ROOT, f))) continue; // deleted in the work tree
    mkdirSync(dirname(join(to, f)), { recursive: true });
    cpSync(join(ROOT, f), join(to, f));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(to, 'node_modules'));
}

interface Session {
  code: number | null;
  output: string;
  leftover: string;
  timedOut: boolean;
}

async function runSession(script: string, opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number; scratch: string }): Promise<Session> {
  const file = join(opts.scratch, 'session.sh');
  writeFileSync(file, `exec 2>&1\nset -eo pipefail\ncd ${JSON.stringify(opts.cwd)}\n${script}\n`);
  const child = spawn('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec bash "$0"', file], { env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone already
    }
  }, opts.timeoutMs);
  // 'exit', not 'close': a process the page left running holds the output pipe open.
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(timer);
  // What the page left running: processes still in the session's process group.
  let leftover = '';
  try {
    leftover = execFileSync('pgrep', ['-a', '-g', String(child.pid)]).toString().trim();
  } catch {
    // pgrep exits 1 when there is none
  }
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // nothing left
  }
  await new Promise((r) => {
    const t = setTimeout(r, 5000); // the pipes close once the group is gone
    child.once('close', () => r(clearTimeout(t)));
  });
  return { code, output, leftover, timedOut };
}

for (const page of PAGES) {
  const blocks = shellBlocks(ROOT, page);
  const runnable = blocks.filter((b) => !b.marker);
  const marked = blocks.filter((b) => b.marker);
  for (const b of marked) {
    test(`${page}:${b.line}: the marked example names files that run its ncfence commands (${b.marker!.skip})`, (t) => {
      t.deepEqual(markerProblems(ROOT, b), []);
    });
  }
  if (runnable.length === 0) continue;
  test(`${page}: every unmarked example runs as written, shows the output the page shows, and leaves nothing running`, async (t) => {
    t.timeout(20 * 60_000);
    const all = runnable.map((b) => b.text).join('\n');
    const installs = /\bnpm (install -g|pack)\b/.test(all);
    const scratch = mkdtempSync(join(tmpdir(), 'ncfence-docs-'));
    chmodSync(scratch, 0o755);
    try {
      const shims = join(scratch, 'shims');
      const prefix = join(scratch, 'prefix');
      const home = join(scratch, 'home');
      for (const d of [shims, join(prefix, 'bin'), join(prefix, 'lib', 'node_modules'), home, join(scratch, 'tmp')]) mkdirSync(d, { recursive: true });
      writeFileSync(join(shims, 'sudo'), SUDO, { mode: 0o755 });
      writeFileSync(join(shims, 'apt-get'), APT_GET, { mode: 0o755 });
      let cwd = join(scratch, 'work');
      if (installs) {
        cwd = join(scratch, 'ncfence');
        cloneCheckout(cwd);
      } else {
        mkdirSync(cwd);
        symlinkSync(ROOT.replace(/\/$/, ''), join(prefix, 'lib', 'node_modules', 'ncfence'));
        symlinkSync(DIST_CLI, join(prefix, 'bin', 'ncfence'));
      }
      const env: NodeJS.ProcessEnv = {
        PATH: `${shims}:${join(prefix, 'bin')}:${dirname(process.execPath)}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
        HOME: home,
        TMPDIR: join(scratch, 'tmp'),
        LANG: 'C.UTF-8',
        npm_config_prefix: prefix,
        npm_config_cache: join(homedir(), '.npm'), // the runner's cache: packages the page installs come from it
        npm_config_offline: 'true',
        // The runner's own npm settings (here nodedir=/usr, the headers node-gyp builds against), which the scratch HOME would hide.
        npm_config_userconfig: join(homedir(), '.npmrc'),
        npm_config_update_notifier: 'false',
        npm_config_fund: 'false',
        npm_config_audit: 'false',
      };
      // One script: each step's commands, then a line marking where its output ends.
      const plan: { block: ShellBlock; expected?: string[] }[] = [];
      const script = runnable
        .flatMap((b) => steps(b.text).map((s) => {
          plan.push({ block: b, expected: s.expected });
          return `${s.script}\nprintf '\\n%s\\n' '${STEP}'`;
        }))
        .join('\n');
      const r = await runSession(script, { cwd, env, timeoutMs: 18 * 60_000, scratch });
      const outputs = r.output.split(`\n${STEP}\n`);
      const done = outputs.length - 1; // steps that finished
      const where = (i: number): string => `${page}:${plan[i]!.block.line}, step ${i + 1}`;
      t.false(r.timedOut, `timed out in ${done < plan.length ? where(done) : 'the end'}:\n${r.output.slice(-3000)}`);
      t.is(r.code, 0, `failed in ${done < plan.length ? where(done) : 'the end'} (exit ${r.code}):\n${(outputs[done] ?? '').slice(-3000)}`);
      plan.forEach((p, i) => {
        if (!p.expected || i >= done) return;
        const got = outputs[i]!.split('\n');
        t.true(outputMatches(p.expected, got), `${where(i)}: the page shows\n${p.expected.join('\n')}\nbut the commands printed\n${got.join('\n')}`);
      });
      t.is(r.leftover, '', `${page} leaves these running: ${r.leftover}`);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
}
