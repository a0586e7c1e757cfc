// Every mistake a person can make with build, bench, serve and the command
// line in general (issue 20, "a new user's first hour"): refused with the
// documented exit code, in one or two lines on stderr that name what is
// wrong and the fix; never an internal error, a raw errno (ENOENT, EACCES,
// ...), a stack, or a library's own words (Node's parseArgs, JSON.parse,
// ajv, the dynamic loader). Checks that can run before slow work do: each
// "before" case gives two mistakes and expects the cheap one named.
// Cases marked `as: 'nobody'` run as uid 65534 against root's files.

import test from 'ava';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, MODULE, ROOT } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';

let dir: string; // 0755, so uid 65534 can reach what it should
let closedPort: number;
let spki: string;

test.before(async () => {
  await requireTool('setpriv');
  dir = mkdtempSync(join(tmpdir(), 'ncfence-cli-errors-'));
  chmodSync(dir, 0o755);
  const s: Server = createServer();
  closedPort = await new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as { port: number }).port)));
  await new Promise((r) => s.close(r));
  spki = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  writeFileSync(join(dir, 'a-file'), 'not a directory\n');
  writeFileSync(join(dir, 'not-json.json'), '{\n  "schema": 1,,\n}\n');
  writeFileSync(join(dir, 'root-only.json'), '{}\n', { mode: 0o600 });
  chmodSync(join(dir, 'root-only.json'), 0o600);
  mkdirSync(join(dir, 'root-dir'), { mode: 0o755 });
  mkdirSync(join(dir, 'private'), { mode: 0o700 });
  writeFileSync(join(dir, 'policy-unknown-field.json'), JSON.stringify({ schema: 1, excluded: { dNSName: ['bit'] }, bogus: 1 }));
  writeFileSync(join(dir, 'policy-bad-purpose.json'), JSON.stringify({ schema: 1, excluded: { dNSName: ['bit'] }, trustedFor: ['serverAuth', 'webAuth'] }));
  const pins = (domains: unknown): string => JSON.stringify({ schema: 1, domains });
  writeFileSync(join(dir, 'pin-short-hash.json'), pins({ 'example.bit': [[2, 1, 1, 'AAAA']] }));
  writeFileSync(join(dir, 'pin-bad-key.json'), pins({ 'example.bit': [[2, 1, 0, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]).toString('base64')]] }));
  writeFileSync(join(dir, 'pin-usage-3.json'), pins({ 'example.bit': [[2, 1, 0, 'PLACEHOLDER'], [3, 1, 0, 'PLACEHOLDER']] }).replace(/PLACEHOLDER/g, spki));
  writeFileSync(join(dir, 'pin-selector-0.json'), pins({ 'www.example.bit': [[2, 0, 0, spki]] }));
  writeFileSync(join(dir, 'pin-sha512.json'), pins({ 'example.bit': [[2, 1, 2, Buffer.alloc(64, 1).toString('base64')]] }));
  writeFileSync(join(dir, 'pin-not-base64.json'), pins({ 'example.bit': [[2, 1, 0, 'not base64!']] }));
  writeFileSync(join(dir, 'pin-bad-domain.json'), pins({ 'Example.BIT': [[2, 1, 0, spki]] }));
  writeFileSync(join(dir, 'pins-ok.json'), pins({ 'example.bit': [[2, 1, 0, spki]] }));
  writeFileSync(join(dir, 'cookie'), '__cookie__:abc\n');
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Case {
  name: string;
  args: () => string[];
  code: number;
  message: RegExp;
  as?: 'nobody';
}

const d = (name: string): string => join(dir, name);
const LIB_NOT_PKCS11 = '/usr/lib/x86_64-linux-gnu/libz.so.1';

const cases: Case[] = [
  // The command line in general.
  { name: 'an unknown option', args: () => ['build', '--bogus'], code: 2, message: /^ncfence: --bogus is not an option of ncfence \(try: ncfence build --help\)$/ },
  { name: 'an option without its value', args: () => ['build', '--out'], code: 2, message: /^ncfence: --out needs a value: --out DIR$/ },
  { name: 'the next option taken for a value', args: () => ['build', '--out', '--json'], code: 2, message: /^ncfence: --out needs a value, got the option --json instead: --out DIR/ },
  { name: 'a value for a switch', args: () => ['build', '--json=yes'], code: 2, message: /^ncfence: --json takes no value, got --json=yes$/ },
  { name: 'an option given twice', args: () => ['build', '--out', 'a', '--out', 'b'], code: 2, message: /^ncfence: --out is given twice; give it once$/ },
  { name: 'an install target that does not exist, before its options', args: () => ['install', 'chrome', '--dir', 'X'], code: 2, message: /^ncfence: "chrome" is not something ncfence can install; the targets are firefox, thunderbird, tor-browser, nss, p11-kit$/ },
  { name: 'no target', args: () => ['uninstall'], code: 2, message: /^ncfence: uninstall needs a target: firefox, thunderbird, tor-browser, nss, p11-kit/ },
  { name: 'an argument to a command that takes none', args: () => ['bench', 'now'], code: 2, message: /^ncfence: bench takes no arguments, got now/ },
  { name: 'an option before the command', args: () => ['--json', 'build'], code: 2, message: /^ncfence: --json is not an option of ncfence, or it came before the command/ },
  { name: 'an unknown command', args: () => ['frobnicate'], code: 2, message: /^ncfence: unknown command "frobnicate" \(try: ncfence --help\)$/ },
  { name: '--version after a command', args: () => ['serve', '--version'], code: 2, message: /^ncfence: --version is not an option of serve; run ncfence --version$/ },

  // build
  { name: 'build: a time limit that is not a number', args: () => ['build', '--rebuild-timeout-ms', 'soon'], code: 2, message: /^ncfence: --rebuild-timeout-ms must be a whole number of milliseconds from 1 to 120000, got "soon"$/ },
  { name: 'build: a relative rebuild command', args: () => ['build', '--rebuild-command', 'ncfence', '--out', d('out-rel')], code: 2, message: /--rebuild-command must be an absolute path, got ncfence/ },
  { name: 'build: a rebuild command that does not exist', args: () => ['build', '--rebuild-command', d('no-ncfence'), '--out', d('out-rel2')], code: 2, message: /^ncfence: --rebuild-command: .*no-ncfence does not exist$/ },
  { name: 'build: a rebuild command that is not executable', args: () => ['build', '--rebuild-command', d('a-file'), '--out', d('out-rel3')], code: 2, message: /^ncfence: --rebuild-command: .*a-file is not executable$/ },
  { name: 'build: parameters for a browser', args: () => ['build', '--browser', '/usr/lib/firefox-esr', '--upstream-params', 'paths=/x', '--out', d('out-rel4')], code: 2, message: /^ncfence: --upstream-params goes with --upstream; --browser reads the browser's own roots and takes no parameters$/ },
  { name: 'build: a policy that does not exist', args: () => ['build', '--policy', d('missing.json'), '--out', d('out-1')], code: 3, message: /^ncfence: cannot read the policy: .*missing\.json does not exist$/ },
  { name: 'build: a policy that is a directory', args: () => ['build', '--policy', dir, '--out', d('out-2')], code: 3, message: /^ncfence: cannot read the policy: .* is a directory$/ },
  { name: 'build: a policy that is not JSON', args: () => ['build', '--policy', d('not-json.json'), '--out', d('out-3')], code: 3, message: /^ncfence: .*not-json\.json: not valid JSON: line 2, column 15: expected a member name in double quotes, found ","$/ },
  { name: 'build: a policy this user may not read', as: 'nobody', args: () => ['build', '--policy', d('root-only.json'), '--out', '/tmp/ncfence-nobody-out'], code: 3, message: /^ncfence: cannot read the policy: .*root-only\.json is not accessible to this user \(permission denied; owned by uid 0, mode 0600; this is uid 65534\)$/ },
  { name: 'build: a policy with an unknown field (the schema check)', args: () => ['build', '--policy', d('policy-unknown-field.json'), '--out', d('out-4')], code: 3, message: /policy-unknown-field\.json: bogus: unknown field \(allowed: /  },
  { name: 'build: a policy with an unknown purpose (the schema check)', args: () => ['build', '--policy', d('policy-bad-purpose.json'), '--out', d('out-5')], code: 3, message: /policy-bad-purpose\.json: trustedFor\[1\]: expected one of "serverAuth", "clientAuth", "emailProtection", "codeSigning", got "webAuth"$/ },
  { name: 'build: an upstream that does not exist', args: () => ['build', '--upstream', d('libmissing.so'), '--out', d('out-6')], code: 1, message: /^ncfence: cannot load the upstream module: .*libmissing\.so does not exist \(--upstream names the trust module to wrap/ },
  { name: 'build: an upstream that is a directory', args: () => ['build', '--upstream', dir, '--out', d('out-7')], code: 1, message: /is a directory, not a PKCS#11 module$/ },
  { name: 'build: an upstream that is not a library', args: () => ['build', '--upstream', d('a-file'), '--out', d('out-8')], code: 1, message: /a-file is not a shared library$/ },
  { name: 'build: an upstream library that is not a PKCS#11 module', args: () => ['build', '--upstream', LIB_NOT_PKCS11, '--out', d('out-9')], code: 1, message: /libz\.so\.1 is a shared library but not a PKCS#11 module \(it has no C_GetFunctionList\)$/ },
  { name: 'build: --out under a file', args: () => ['build', '--out', d('a-file/view')], code: 2, message: /^ncfence: --out .*a-file\/view: .*a-file exists and is not a directory$/ },
  { name: 'build: --out where this user may not write', as: 'nobody', args: () => ['build', '--out', d('root-dir/view')], code: 2, message: /^ncfence: --out .*root-dir\/view: .*root-dir is not writable by this user \(owned by uid 0, mode 0755; this is uid 65534\)$/ },
  { name: 'build: --out is checked before upstream is read', args: () => ['build', '--out', d('a-file/view'), '--upstream', d('libmissing.so')], code: 2, message: /a-file exists and is not a directory$/ },
  { name: 'build: --out is checked before a browser is started', args: () => ['build', '--out', d('a-file/view'), '--browser', '/usr/lib/firefox-esr'], code: 2, message: /a-file exists and is not a directory$/ },
  { name: 'build: a browser directory that does not exist', args: () => ['build', '--browser', d('no-firefox'), '--out', d('out-10')], code: 2, message: /^ncfence: --browser .*no-firefox does not exist$/ },
  { name: 'build: a directory that holds no browser', args: () => ['build', '--browser', dir, '--out', d('out-11')], code: 2, message: /is not a browser install directory \(it has no libxul\.so\)$/ },

  // bench
  { name: 'bench: --svg in a directory that does not exist, before measuring', args: () => ['bench', '--svg', d('no-dir/plot.svg'), '--upstream', d('libmissing.so')], code: 2, message: /^ncfence: --svg .*no-dir\/plot\.svg: .*no-dir does not exist; create it first or name another place$/ },
  { name: 'bench: --svg naming a directory', args: () => ['bench', '--svg', dir], code: 2, message: /^ncfence: --svg .* is a directory; name a file in it$/ },
  { name: 'bench: --svg where this user may not write', as: 'nobody', args: () => ['bench', '--svg', d('root-dir/plot.svg')], code: 2, message: /root-dir is not writable by this user \(owned by uid 0, mode 0755; this is uid 65534\)$/ },
  { name: 'bench: no rounds', args: () => ['bench', '--rounds', '0'], code: 2, message: /^ncfence: --rounds must be a whole number from 1 to 10000, got "0"$/ },
  { name: 'bench: an upstream that does not exist, before measuring', args: () => ['bench', '--upstream', d('libmissing.so')], code: 1, message: /libmissing\.so does not exist/ },

  // serve
  { name: 'serve: no source', args: () => ['serve', '--socket', d('s0/s.sock')], code: 2, message: /^ncfence: no anchor source: give --rules FILE, --dns HOST:PORT or --rpc URL$/ },
  { name: 'serve: a rules file that does not exist', args: () => ['serve', '--rules', d('missing.json'), '--socket', d('s1/s.sock')], code: 3, message: /^ncfence: cannot read the Namecoin rules: .*missing\.json does not exist$/ },
  { name: 'serve: a rules file that is a directory', args: () => ['serve', '--rules', dir, '--socket', d('s1/s.sock')], code: 3, message: /is a directory$/ },
  { name: 'serve: a rules file that is not JSON', args: () => ['serve', '--rules', d('not-json.json'), '--socket', d('s1/s.sock')], code: 3, message: /not valid JSON: line 2, column 15/ },
  { name: 'serve: a rules file this user may not read', as: 'nobody', args: () => ['serve', '--rules', d('root-only.json'), '--socket', '/tmp/ncfence-nobody-sock/s.sock'], code: 3, message: /root-only\.json is not accessible to this user \(permission denied; owned by uid 0, mode 0600; this is uid 65534\)$/ },
  { name: 'serve: a pinned SHA-256 of 3 bytes', args: () => ['serve', '--rules', d('pin-short-hash.json'), '--socket', d('s1/s.sock')], code: 3, message: /pin-short-hash\.json: domains\.example\.bit\[0\]: data: matching type 1 is a SHA-256 digest, 32 bytes, got 3$/ },
  { name: 'serve: a pinned key that does not parse', args: () => ['serve', '--rules', d('pin-bad-key.json'), '--socket', d('s1/s.sock')], code: 3, message: /pin-bad-key\.json: domains\.example\.bit\[0\]: data: not a public key \(matching type 0 is the whole DER SubjectPublicKeyInfo/ },
  { name: 'serve: a pin with usage 3', args: () => ['serve', '--rules', d('pin-usage-3.json'), '--socket', d('s1/s.sock')], code: 3, message: /domains\.example\.bit\[1\]: usage 3: expected 2 \(DANE-TA/ },
  { name: 'serve: a pin with selector 0', args: () => ['serve', '--rules', d('pin-selector-0.json'), '--socket', d('s1/s.sock')], code: 3, message: /domains\.www\.example\.bit\[0\]: selector 0: expected 1 \(the SubjectPublicKeyInfo\)/ },
  { name: 'serve: a pin with matching type 2', args: () => ['serve', '--rules', d('pin-sha512.json'), '--socket', d('s1/s.sock')], code: 3, message: /domains\.example\.bit\[0\]: matchingType 2: expected 0 \(the whole key\) or 1/ },
  { name: 'serve: a pin that is not base64', args: () => ['serve', '--rules', d('pin-not-base64.json'), '--socket', d('s1/s.sock')], code: 3, message: /domains\.example\.bit\[0\]: data: expected standard base64/ },
  { name: 'serve: a pin for a name that is not a lowercase .bit name', args: () => ['serve', '--rules', d('pin-bad-domain.json'), '--socket', d('s1/s.sock')], code: 3, message: /domains\.Example\.BIT: not a lowercase \.bit domain or subdomain$/ },
  { name: 'serve: --dns without a port', args: () => ['serve', '--dns', '127.0.0.1', '--socket', d('s1/s.sock')], code: 2, message: /^ncfence: --dns expects ADDRESS:PORT \(e\.g\. 127\.0\.0\.1:5391\), got 127\.0\.0\.1$/ },
  { name: 'serve: --dns on another host', args: () => ['serve', '--dns', '192.0.2.53:53', '--socket', d('s1/s.sock')], code: 2, message: /^ncfence: --dns 192\.0\.2\.53:53: DNS server 192\.0\.2\.53 is not a loopback address/ },
  { name: 'serve: --dns where nothing listens', args: () => ['serve', '--dns', `127.0.0.1:${closedPort}`, '--socket', d('s1/s.sock')], code: 2, message: /^ncfence: source dns 127\.0\.0\.1:\d+ cannot answer: DNS server 127\.0\.0\.1:\d+ refused the connection: nothing listens there\. Start it first, or leave it out of --sources$/ },
  { name: 'serve: --rpc that is not a URL', args: () => ['serve', '--rpc', 'namecoind', '--rpc-cookie', d('cookie'), '--socket', d('s1/s.sock')], code: 2, message: /^ncfence: --rpc: RPC url "namecoind" is not a URL/ },
  { name: 'serve: --rpc without credentials', args: () => ['serve', '--rpc', `http://127.0.0.1:${closedPort}/`, '--socket', d('s1/s.sock')], code: 2, message: /^ncfence: --rpc needs --rpc-cookie FILE/ },
  { name: 'serve: an RPC cookie that does not exist', args: () => ['serve', '--rpc', `http://127.0.0.1:${closedPort}/`, '--rpc-cookie', d('no-cookie'), '--socket', d('s1/s.sock')], code: 2, message: /RPC cookie file: .*no-cookie does not exist \(Namecoin Core writes it when it starts/ },
  { name: 'serve: an RPC password on the command line', args: () => ['serve', '--rpc', `http://127.0.0.1:${closedPort}/`, '--rpc-user', 'u', '--rpc-password', 'p'], code: 2, message: /--rpc-password would show the password to every user/ },
  { name: 'serve: an RPC password file that does not exist', args: () => ['serve', '--rpc', `http://127.0.0.1:${closedPort}/`, '--rpc-user', 'u', '--rpc-password-file', d('no-password')], code: 2, message: /^ncfence: cannot read --rpc-password-file: .*no-password does not exist$/ },
  { name: 'serve: --sources naming a source not configured', args: () => ['serve', '--rules', d('pins-ok.json'), '--sources', 'rules,dns', '--socket', d('s1/s.sock')], code: 2, message: /^ncfence: source "dns" in --sources is not configured$/ },
  { name: 'serve: a socket path too long for a Unix socket', args: () => ['serve', '--rules', d('pins-ok.json'), '--socket', d(`${'x'.repeat(120)}/s.sock`)], code: 2, message: /is longer than 107 bytes, the limit for a Unix socket; choose a shorter --socket$/ },
  { name: 'serve: a socket under a file', args: () => ['serve', '--rules', d('pins-ok.json'), '--socket', d('a-file/s.sock')], code: 2, message: /^ncfence: socket directory .*a-file is not a directory/ },
  { name: 'serve: a socket where a file is', args: () => { mkdirSync(d('s-file'), { recursive: true, mode: 0o700 }); writeFileSync(d('s-file/s.sock'), ''); return ['serve', '--rules', d('pins-ok.json'), '--socket', d('s-file/s.sock')]; }, code: 2, message: /s-file\/s\.sock exists and is not a socket; refusing to replace it$/ },
  { name: 'serve: a socket under /proc fails at once', args: () => ['serve', '--rules', d('pins-ok.json'), '--socket', '/proc/ncfence-x/s.sock'], code: 2, message: /^ncfence: socket directory: cannot create directory \/proc\/ncfence-x: the file system at \/proc does not allow creating it$/ },
  { name: 'serve: a socket directory this user may not create', as: 'nobody', args: () => ['serve', '--rules', d('pins-ok.json'), '--socket', d('root-dir/run/s.sock')], code: 2, message: /cannot create directory .*root-dir\/run: .*root-dir is not writable by this user \(owned by uid 0, mode 0755; this is uid 65534\)$/ },
  { name: 'serve: the socket is checked before the sources', args: () => ['serve', '--dns', `127.0.0.1:${closedPort}`, '--socket', d('a-file/s.sock')], code: 2, message: /socket directory .*a-file is not a directory/ },
  // install, uninstall, status, doctor, refresh (issue 20: raw errno texts, "not installed anywhere it looks" with exit 0).
  { name: 'uninstall: a directory that does not exist', args: () => ['uninstall', 'firefox', '--dir', '/nonexistent'], code: 2, message: /^ncfence: ncfence has no record of a firefox install in \/nonexistent; `ncfence status` lists the installs it knows$/ },
  { name: 'status: a directory ncfence has no record of', args: () => ['status', '--dir', '/nonexistent'], code: 2, message: /^ncfence: ncfence has no record of an install in \/nonexistent; `ncfence status` without --dir lists the installs it knows$/ },
  { name: 'doctor: a directory ncfence has no record of', args: () => ['doctor', '--dir', d('root-dir')], code: 2, message: /^ncfence: ncfence has no record of an install in .*root-dir; `ncfence status` without --dir lists the installs it knows$/ },
  { name: 'install: a directory that is not a browser', args: () => ['install', 'firefox', '--dir', d('root-dir')], code: 2, message: /root-dir does not look like a Firefox install directory \(it has no libxul\.so\)$/ },
  { name: 'install: an option of another target', args: () => ['install', 'firefox', '--user'], code: 2, message: /^ncfence: install firefox does not take --user \(it is for p11-kit\)$/ },
  { name: 'install p11-kit system-wide as a user', as: 'nobody', args: () => ['install', 'p11-kit'], code: 2, message: /^ncfence: a system-wide p11-kit install needs root; use --user for this user only$/ },
  { name: 'refresh: --out without --config', args: () => ['refresh', '--out', d('x')], code: 2, message: /^ncfence: refresh takes --out only with --config FILE$/ },
  { name: 'refresh: a configuration that does not exist', args: () => ['refresh', '--config', d('missing.conf')], code: 2, message: /missing\.conf/ },
];

/** Texts no refusal may show: our own internal errors, errno names, stacks, and other programs' words. */
const FORBIDDEN: [string, RegExp][] = [
  ['an internal error', /internal error/i],
  ['an errno name', /\bE(NOENT|ACCES|ISDIR|NOTDIR|PERM|ROFS|EXIST|LOOP|NAMETOOLONG|CONNREFUSED|ADDRINUSE|INVAL|NOSPC|MFILE)\b/],
  ['a stack', /^\s+at .*[(:]\d+/m],
  ["Node's parseArgs", /Unknown option|argument missing|To specify a positional|argument is ambiguous|ERR_PARSE_ARGS/],
  ['JSON.parse', /Unexpected token|Unexpected end of JSON|is not valid JSON|in JSON at position|Expected property name/],
  ['ajv', /must NOT have|must have required property|must be equal to one of|must match pattern/],
  ['the dynamic loader', /cannot open shared object file|undefined symbol|invalid ELF header|cannot read file data/],
  ['Node internals', /node:internal|ERR_[A-Z_]+/],
];

const nobodyEnv = ['env', '-i', 'PATH=/usr/bin:/bin', 'HOME=/tmp', 'NCFENCE_CONFIG='];

// Two commands at a time: each starts Node with tsx (about a second of CPU), and ava would start them all at once.
let running = 0;
const waiting: (() => void)[] = [];
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

for (const c of cases) {
  test(`refused in at most two lines with exit ${c.code}: ${c.name}`, async (t) => {
    const args = c.args();
    const cmd = [process.execPath, '--import', 'tsx', CLI, ...args];
    const r = await limited(() =>
      c.as === 'nobody'
        ? run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...nobodyEnv, ...cmd], { timeoutMs: 60_000, cwd: ROOT })
        : run(cmd[0]!, cmd.slice(1), { timeoutMs: 60_000, env: { ...process.env, NCFENCE_CONFIG: '', NCFENCE_DEBUG: '' } }),
    );
    t.false(r.timedOut, `ncfence ${args.join(' ')} did not return within 60 s`);
    const err = r.stderr.trim();
    t.is(r.code, c.code, `ncfence ${args.join(' ')}\n${r.stdout}${r.stderr}`);
    t.regex(err, c.message);
    t.true(err.split('\n').length <= 2, `more than two lines:\n${err}`);
    for (const [what, re] of FORBIDDEN) t.notRegex(err, re, `shows ${what}`);
  });
}

test('the module\'s warning for a configuration this user may not read names its owner and mode and the fix docs/troubleshooting.md gives', async (t) => {
  const conf = d('root-owned.conf');
  writeFileSync(conf, `upstream = /usr/lib/x86_64-linux-gnu/libnssckbi.so\nview = ${d('view.ncfv')}\npolicy = ${d('policy.json')}\n`, { mode: 0o600 });
  chmodSync(conf, 0o600);
  const script = `const p = new (require(process.argv[1]).PKCS11)(); p.load(process.argv[2]); p.C_Initialize({ flags: 2 }); p.C_Finalize();`;
  const pkcs11js = join(ROOT, 'node_modules/pkcs11js');
  const r = await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-i', 'PATH=/usr/bin:/bin', `NCFENCE_CONFIG=${conf}`, process.execPath, '-e', script, pkcs11js, MODULE], { timeoutMs: 30_000 });
  t.is(r.code, 0, r.stderr);
  const warning = r.stderr.split('\n').find((l) => l.includes('WARNING')) ?? '';
  t.regex(warning, /WARNING: cannot read configuration .*root-owned\.conf: permission denied \(owned by uid 0, mode 0600; this process runs as uid 65534\); presenting no roots at all\. Fix: let this user read it: as its owner \(uid 0\), chmod 644 .*root-owned\.conf/);
  t.notRegex(warning, /run `ncfence build`/, 'a rebuild cannot fix a permission');
  const fix = warning.slice(warning.indexOf('Fix: ') + 5).split(conf).join('F').replace('uid 0', 'uid U');
  const doc = (await import('node:fs')).readFileSync(join(ROOT, 'docs/troubleshooting.md'), 'utf8');
  t.true(doc.includes(fix), `docs/troubleshooting.md does not give the module's fix: ${fix}`);
});
