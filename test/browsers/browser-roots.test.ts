// ncfence installed into a browser presents that browser's own root
// program, fenced (issue: "fence the browser's builtins, not the OS's").
// The oracle is the browser itself: the roots token it uses is dumped from
// inside it (libncfence-probe.so, loaded by the profile's pkcs11.txt), once
// as it is on its own and once with ncfence installed, and the two are
// compared by src/browser/compare.ts (pkijs + node:crypto, not the engine).
// Browsers: Firefox ESR 153 (CKO_TRUST records), Firefox ESR 140 (the base
// of Tor Browser 15, CKO_NSS_TRUST records), Thunderbird 153, and a Tor
// Browser layout built from ESR 140.

import test from 'ava';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readBrowserRoots } from '../../src/browser/probe.js';
import { compareRootPrograms, excludedNames, totalDifferences } from '../../src/browser/compare.js';
import { CKA, CKO } from '../../src/pkcs11/constants.js';
import type { UpstreamObject } from '../../src/pkcs11/objects.js';
import { FIREFOX_ESR140_DIR, requireFirefoxEsr140, FIREFOX_INSTALL_DIR, THUNDERBIRD_INSTALL_DIR, copyFirefoxInstall, swapBrowser } from '../helpers/firefox.js';
import { assertEquivalent, torBrowserStandIn } from '../helpers/roots.js';
import { CLI, DIST_CLI, SYSTEM_CKBI } from '../helpers/paths.js';
import { requireTool, run } from '../helpers/run.js';
import { treeDigest } from '../helpers/tree.js';

let dir: string;
test.before(async () => {
  await requireTool('firefox-esr');
  await requireTool('thunderbird');
  requireFirefoxEsr140();
  dir = mkdtempSync(join(tmpdir(), 'ncfence-browser-roots-'));
});
test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => run(process.execPath, ['--import', 'tsx', CLI, ...args], { timeoutMs: 120_000, env: { ...process.env, NCFENCE_CONFIG: '' } });
const classOf = (o: UpstreamObject): number => Number(Buffer.from(o.attrs.get(CKA.CLASS)!).readBigUInt64LE());
const countClass = (objects: UpstreamObject[], cls: number): number => objects.filter((o) => classOf(o) === cls).length;

interface Case {
  name: string;
  target: 'firefox' | 'thunderbird';
  src: string;
  /** The kind of trust record this browser's builtins carry (docs/design.md, "Browser targets"), and the other kind it must not. */
  records: number;
  absent: number;
  /** Exactly this many certificates, for the builds pinned by version. */
  certs?: number;
}

const CASES: Case[] = [
  { name: 'Firefox ESR 153', target: 'firefox', src: FIREFOX_INSTALL_DIR, records: CKO.TRUST, absent: CKO.NSS_TRUST },
  { name: 'Firefox ESR 140', target: 'firefox', src: FIREFOX_ESR140_DIR, records: CKO.NSS_TRUST, absent: CKO.TRUST, certs: 182 },
  { name: 'Thunderbird 153', target: 'thunderbird', src: THUNDERBIRD_INSTALL_DIR, records: CKO.TRUST, absent: CKO.NSS_TRUST },
];

for (const c of CASES) {
  test.serial(`${c.name}: after \`install ${c.target}\` with no options, the roots it uses are its own, fenced`, async (t) => {
    const copy = join(dir, c.name.replace(/\W+/g, '-'));
    await copyFirefoxInstall(copy, undefined, c.src);
    const before = treeDigest(copy);
    const stock = await readBrowserRoots(copy, { stock: true });
    t.is(stock.manufacturer, 'Mozilla Foundation');
    t.true(stock.rootList);
    const certs = countClass(stock.objects, CKO.CERTIFICATE);
    t.is(countClass(stock.objects, c.records), certs, 'one trust record per certificate');
    t.is(countClass(stock.objects, c.absent), 0);
    if (c.certs !== undefined) t.is(certs, c.certs);

    const inst = await cli(['install', c.target, '--dir', copy]);
    t.is(inst.code, 0, inst.stderr);
    t.regex(inst.stdout, /the browser's own roots, read from inside it/);
    t.regex(inst.stdout, /checked: +all \d+ roots .* trusts on its own are fenced with the same purposes and policy; nothing missing, nothing added/);

    const used = await readBrowserRoots(copy, { stock: false });
    t.is(used.dll, join(copy, 'libnssckbi.so'));
    t.is(used.manufacturer, 'ncfence');
    const cmp = compareRootPrograms(stock.objects, used.objects);
    assertEquivalent(t, cmp);
    // The same facts counted without the comparison's bookkeeping: one
    // trust record per anchor, of the browser's kind only; every
    // certificate the browser had is still there; the added ones are
    // cross-certificates excluding `bit` and their anchors.
    t.is(countClass(used.objects, c.absent), 0);
    t.is(countClass(used.objects, CKO.NSS_BUILTIN_ROOT_LIST), 1);
    const added = used.objects.filter((o) => classOf(o) === CKO.CERTIFICATE).length - certs;
    t.is(added, 2 * cmp.stockRoots);
    const crosses = used.objects.filter((o) => classOf(o) === CKO.CERTIFICATE && excludedNames(o.attrs.get(CKA.VALUE)!).includes('bit'));
    t.true(crosses.length >= cmp.stockRoots);
    t.log(`${c.name}: ${certs} certificates, ${cmp.stockRoots} roots trusted on its own, all fenced; read in ${stock.millis} ms`);
    // The checker itself: a second trust record of the same kind for one anchor, saying
    // something else, is a difference (NSS would use whichever it finds first).
    const anchorRecord = used.objects.find((o) => classOf(o) === c.records && Buffer.from(o.attrs.get(CKA.LABEL) ?? []).toString().startsWith('ncfence anchor for'))!;
    const purpose = c.records === CKO.TRUST ? CKA.PKCS_TRUST_EMAIL_PROTECTION : CKA.TRUST_EMAIL_PROTECTION;
    const twin = { slot: anchorRecord.slot, attrs: new Map(anchorRecord.attrs) };
    twin.attrs.set(purpose, Buffer.from(anchorRecord.attrs.get(purpose)!).equals(Buffer.alloc(8)) ? Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]) : Buffer.alloc(8));
    t.true(compareRootPrograms(stock.objects, [...used.objects, twin]).differences.length >= 1, 'a conflicting duplicate trust record goes unseen');

    const doc = await cli(['doctor', '--dir', copy]);
    t.is(doc.code, 0, doc.stdout + doc.stderr);
    t.regex(doc.stdout, /ok {3}\w+ loads ncfence: its roots module is .*libnssckbi\.so \(ncfence\)/);
    t.regex(doc.stdout, /ok {3}\w+'s own roots: all \d+ roots \w+ trusts on its own are fenced/);

    const un = await cli(['uninstall', c.target, '--dir', copy]);
    t.is(un.code, 0, un.stderr);
    t.deepEqual(treeDigest(copy), before);
  });
}

test.serial('control: the first round\'s install (the OS roots wrapped) is caught as a different root program', async (t) => {
  const copy = join(dir, 'control');
  await copyFirefoxInstall(copy);
  const stock = await readBrowserRoots(copy, { stock: true });
  const inst = await cli(['install', 'firefox', '--dir', copy, '--upstream', SYSTEM_CKBI]);
  t.is(inst.code, 0, inst.stderr);
  t.regex(inst.stdout, /checked: +\d+ differences from the \d+ roots Firefox trusts on its own/);
  const used = await readBrowserRoots(copy, { stock: false });
  const cmp = compareRootPrograms(stock.objects, used.objects);
  t.true(cmp.missing.length > 0 && cmp.extra.length > 0 && cmp.differences.length > 0, JSON.stringify({ missing: cmp.missing.length, extra: cmp.extra.length }));
  t.log(`system CKBI in Firefox ESR 153: ${cmp.missing.length} roots missing, ${cmp.extra.length} extra anchors, ${cmp.differences.length} other purposes or policy, ${totalDifferences(cmp)} differences`);
  // --upstream is the user's choice: status and doctor say how far it is from Firefox's own.
  const st = await cli(['status', '--dir', copy]);
  t.regex(st.stdout, /\(\d+ differences from its own roots\)/);
  const doc = await cli(['doctor', '--dir', copy]);
  t.regex(doc.stdout, /ok {3}Firefox's own roots: \d+ differences from the \d+ roots Firefox trusts on its own.*named with --upstream/);
  t.is((await cli(['uninstall', 'firefox', '--dir', copy])).code, 0);
});

test.serial('roots that cannot be read: install refuses with one line and changes nothing', async (t) => {
  const fake = join(dir, 'fake');
  mkdirSync(fake);
  writeFileSync(join(fake, 'libxul.so'), '');
  cpSync('/bin/true', join(fake, 'firefox'));
  const before = treeDigest(fake);
  const r = await cli(['install', 'firefox', '--dir', fake]);
  t.is(r.code, 1);
  t.regex(r.stderr, /^ncfence: cannot install into .*: .*exited \(0\) before its roots could be read\. Nothing was changed\. .*--upstream/);
  t.is(r.stderr.trim().split('\n').length, 1);
  t.deepEqual(treeDigest(fake), before);
});

test.serial('a browser update under an installed view: closed with the fix named, then rebuilt by the module, without recursion', async (t) => {
  const copy = join(dir, 'update');
  await copyFirefoxInstall(copy);
  const inst = await run(process.execPath, [DIST_CLI, 'install', 'firefox', '--dir', copy, '--auto-rebuild'], { timeoutMs: 120_000, env: { ...process.env, NCFENCE_CONFIG: '' } });
  t.is(inst.code, 0, inst.stderr);
  await swapBrowser(copy, FIREFOX_ESR140_DIR);
  const stock140 = await readBrowserRoots(copy, { stock: true });

  // The module may not rebuild (as when the user cannot write the directory): closed, one line with the fix.
  let stderr = '';
  const closed = await readBrowserRoots(copy, { stock: false, stderr: (s) => (stderr = s) });
  t.is(closed.manufacturer, 'ncfence');
  t.false(closed.rootList);
  t.is(closed.objects.length, 0, 'no roots at all while the view is stale');
  // Said where a person looks: the Security Devices list shows this token and slot.
  t.is(closed.tokenLabel, 'ncfence: NO ROOTS TRUSTED');
  t.is(closed.slotDescription, 'ncfence: no roots trusted (view stale); run ncfence doctor');
  const warning = stderr.split('\n').find((l) => l.includes('(ncfence:'));
  t.regex(warning ?? '', /view .* is stale: the browser \(.*libxul\.so\), policy .* or ncfence changed since it was built.*no public root is trusted \(closed view\)\. Fix: run `ncfence install firefox --dir .*update`/, stderr);

  // The module rebuilds: the rebuild starts the browser from a shadow
  // without libnssckbi.so, so it reads the builtins and cannot recurse.
  const rebuilt = await readBrowserRoots(copy, { stock: false, allowRebuild: true, timeoutMs: 60_000 });
  assertEquivalent(t, compareRootPrograms(stock140.objects, rebuilt.objects));
  const ordinary = await readBrowserRoots(copy, { stock: false });
  assertEquivalent(t, compareRootPrograms(stock140.objects, ordinary.objects));
  t.log(`start-up to roots loaded: ${rebuilt.millis} ms with the rebuild, ${ordinary.millis} ms after it, ${closed.millis} ms closed`);
  const st = JSON.parse((await cli(['status', '--json', '--dir', copy])).stdout) as { location: string; viewState: string }[];
  t.is(st.find((r) => r.location === copy)?.viewState, 'fresh');
});

test.serial('Tor Browser layout (stand-in from ESR 140): install tor-browser finds Browser/ and fences its own roots', async (t) => {
  const top = await torBrowserStandIn(join(dir, 'tor'));
  const browser = join(top, 'Browser');
  const before = treeDigest(top);
  const inst = await cli(['install', 'tor-browser', '--dir', top]);
  t.is(inst.code, 0, inst.stderr);
  t.regex(inst.stdout, new RegExp(`installed tor-browser: module ${browser}/libnssckbi\\.so`));
  t.regex(inst.stdout, /checked: +all \d{3} roots Tor Browser trusts on its own are fenced/);
  const stock = await readBrowserRoots(browser, { stock: true });
  const used = await readBrowserRoots(browser, { stock: false });
  t.is(used.dll, join(browser, 'libnssckbi.so'));
  assertEquivalent(t, compareRootPrograms(stock.objects, used.objects));
  t.is((await cli(['uninstall', 'tor-browser', '--dir', top])).code, 0);
  t.deepEqual(treeDigest(top), before);
});

test.serial('Firefox installed with its own roots and a .bit service: a Namecoin-anchored .bit site loads, a public CA\'s .bit does not', async (t) => {
  const { makeNamecoinSite } = await import('../helpers/namecoinPki.js');
  const { makeTestPki } = await import('../helpers/pki.js');
  const { startTlsServer } = await import('../helpers/tlsServer.js');
  const { probeUrls } = await import('../helpers/firefox.js');
  const { serve } = await import('../../src/namecoin/serve.js');
  const site = await makeNamecoinSite('example.bit');
  // A CA no browser trusts: its .bit certificate must fail whatever the fence does.
  const pki = await makeTestPki(['www.example.bit']);
  const copy = join(dir, 'with-service');
  const firefox = await copyFirefoxInstall(copy);
  const runDir = join(dir, 'svc-run');
  mkdirSync(runDir, { mode: 0o700 });
  const socket = join(runDir, 'service.sock');
  const rules = join(dir, 'svc-rules.json');
  writeFileSync(rules, JSON.stringify({ schema: 1, domains: { 'example.bit': [[2, 1, 0, site.ownerSpkiB64]] } }));
  const nmc = await startTlsServer({ certChainPem: site.chainPem, keyPem: site.keyPem });
  const pub = await startTlsServer({ certChainPem: pki.leaves.get('www.example.bit')!.chainPem, keyPem: pki.leaves.get('www.example.bit')!.keyPem });
  const svc = await serve({ socket, rules });
  try {
    const inst = await cli(['install', 'firefox', '--dir', copy, '--service', socket]);
    t.is(inst.code, 0, inst.stderr);
    t.regex(inst.stdout, /checked: +all \d+ roots Firefox trusts on its own are fenced/);
    const bitUrl = `https://www.example.bit:${nmc.port}/nmc.js`;
    const pubUrl = `https://www.example.bit:${pub.port}/pub.js`;
    // A first visit may fail closed while the service's answer is on the way (addon/live.c waits only
    // briefly); a script that failed is loaded once more, as a reload would.
    const r = await probeUrls({ firefox, urls: [bitUrl, pubUrl], hosts: ['www.example.bit'], timeoutMs: 60_000, env: { NCFENCE_CONFIG: '' }, retryAfterMs: 1500 });
    t.is(r.results[bitUrl], 'load', r.output.slice(-2000));
    t.is(r.results[pubUrl], 'error');
    t.is((await cli(['uninstall', 'firefox', '--dir', copy])).code, 0);
  } finally {
    await svc.close();
    await nmc.close();
    await pub.close();
    site.cleanup();
    pki.cleanup();
  }
});
