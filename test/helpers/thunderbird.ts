// Thunderbird's own certificate verifier, run headless from inside it.
//
// Thunderbird judges an S/MIME signer with nsIX509CertDB (mozilla::pkix,
// usage "e-mail signer": nsCMSMessage::CommonVerifySignature) and then asks
// the signer's certificate whether it holds the From address
// (nsIX509Cert::ContainsEmailAddress, mailnews/mime/src/mimecms.cpp
// MimeCMSHeadersAndCertsMatch). A copy of the install gets an autoconfig
// script (general.config.filename: privileged JavaScript run at start-up)
// that does both for each certificate of a job file, writes the answers as
// JSON and quits. The roots are whatever the copy's libnssckbi.so serves
// (copyFirefoxInstall with a module), exactly as for the real program.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, unlink, writeFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BASE_PREFS, killByCmdline, killGroup, prefLine, withTimeout } from './firefox.js';

export interface SignerCase {
  name: string;
  certPem: string;
  /** The From address Thunderbird would compare with the certificate. */
  address: string;
}

export interface SignerVerdict {
  /** 0 when mozilla::pkix built a chain for e-mail signing, else its PRErrorCode (e.g. -8080 SEC_ERROR_CERT_NOT_IN_NAME_SPACE). */
  error: number;
  /** Subjects of the verified chain, leaf first (empty on error). */
  chain: string[];
  /** nsIX509Cert::ContainsEmailAddress(address): whether Thunderbird takes the certificate as that sender's. */
  contains: boolean;
  /** The certificate's e-mail addresses as Thunderbird lists them. */
  emails: string[];
  /** An exception from the script, if any (then the other fields mean nothing). */
  fault?: string;
}

export interface SignerRun {
  results: Record<string, SignerVerdict>;
  /** Thunderbird's stdout and stderr (diagnostics). */
  output: string;
}

const SCRIPT = `// ncfence tests: e-mail signer verification from inside Thunderbird (autoconfig skips this first line)
(function () {
  const env = Cc["@mozilla.org/process/environment;1"].getService(Ci.nsIEnvironment);
  const jobPath = env.get("NCFENCE_TB_JOB");
  const outPath = env.get("NCFENCE_TB_OUT");
  if (!jobPath || !outPath) return;
  const readText = (path) => {
    const file = Cc["@mozilla.org/file/local;1"].createInstance(Ci.nsIFile);
    file.initWithPath(path);
    const fis = Cc["@mozilla.org/network/file-input-stream;1"].createInstance(Ci.nsIFileInputStream);
    fis.init(file, -1, 0, 0);
    const sis = Cc["@mozilla.org/scriptableinputstream;1"].createInstance(Ci.nsIScriptableInputStream);
    sis.init(fis);
    const text = sis.read(fis.available());
    sis.close();
    return text;
  };
  const writeText = (path, text) => {
    const file = Cc["@mozilla.org/file/local;1"].createInstance(Ci.nsIFile);
    file.initWithPath(path + ".part");
    const fos = Cc["@mozilla.org/network/file-output-stream;1"].createInstance(Ci.nsIFileOutputStream);
    fos.init(file, 0x02 | 0x08 | 0x20, 0o600, 0);
    fos.write(text, text.length);
    fos.close();
    file.moveTo(null, path.split("/").pop());
  };
  const b64 = (pem) => pem.replace(/-----[^-]+-----/g, "").replace(/\\s+/g, "");
  const quit = () => Cc["@mozilla.org/toolkit/app-startup;1"].getService(Ci.nsIAppStartup).quit(Ci.nsIAppStartup.eForceQuit);
  const run = async () => {
    const out = {};
    try {
      const job = JSON.parse(readText(jobPath));
      const certdb = Cc["@mozilla.org/security/x509certdb;1"].getService(Ci.nsIX509CertDB);
      for (const pem of job.intermediates) certdb.addCertFromBase64(b64(pem), ",,");
      const usageName = Object.keys(Ci.nsIX509CertDB).find((k) => /^verifyUsageEmailSigner$/.test(k));
      if (!usageName) throw new Error("no e-mail signer usage in nsIX509CertDB: " + Object.keys(Ci.nsIX509CertDB).join(","));
      const usage = Ci.nsIX509CertDB[usageName];
      const now = Math.floor(Date.now() / 1000);
      for (const c of job.signers) {
        try {
          const cert = certdb.constructX509FromBase64(b64(c.certPem));
          const verdict = await new Promise((resolve) => {
            // Thunderbird 153: (cert, usage, flags, hostname, time, extra certificates, callback).
            certdb.asyncVerifyCertAtTime(cert, usage, 0, null, now, [], {
              verifyCertFinished(error, chain) {
                const name = (x) => (x.subjectName !== undefined ? x.subjectName : certdb.constructX509(x).subjectName);
                resolve({ error, chain: (chain || []).map(name) });
              },
            });
          });
          out[c.name] = { ...verdict, contains: cert.containsEmailAddress(c.address), emails: cert.getEmailAddresses() };
        } catch (e) {
          out[c.name] = { error: -1, chain: [], contains: false, emails: [], fault: String(e) };
        }
      }
    } catch (e) {
      out["*"] = { error: -1, chain: [], contains: false, emails: [], fault: String(e) + " " + (e && e.stack) };
    }
    writeText(outPath, JSON.stringify(out));
    quit();
  };
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    run();
  };
  Services.obs.addObserver({ observe: start }, "final-ui-startup");
})();
`;

/**
 * Makes a copy made by copyFirefoxInstall run the verification script: its
 * `defaults` link becomes a directory of links with autoconfig.js added
 * (never writing through a link into the real install).
 */
export async function addSignerScript(copy: string): Promise<void> {
  const defaults = join(copy, 'defaults');
  const target = resolve(copy, await readlink(defaults));
  await unlink(defaults);
  await mkdir(join(defaults, 'pref'), { recursive: true });
  for (const entry of await readdir(target)) {
    if (entry !== 'pref') await symlink(join(target, entry), join(defaults, entry));
  }
  for (const entry of await readdir(join(target, 'pref'))) await symlink(join(target, 'pref', entry), join(defaults, 'pref', entry));
  await writeFile(
    join(defaults, 'pref', 'ncfence-autoconfig.js'),
    'pref("general.config.filename", "ncfence-verify.cfg");\npref("general.config.obscure_value", 0);\npref("general.config.sandbox_enabled", false);\n',
  );
  await writeFile(join(copy, 'ncfence-verify.cfg'), SCRIPT);
}

/**
 * Starts the copy's Thunderbird headless with a fresh profile, verifies each
 * signer as an e-mail signer, and returns its verdicts. Bounded by
 * `timeoutMs`; the whole process group is killed afterwards.
 */
export async function verifyEmailSigners(opts: { thunderbird: string; intermediatesPem: string[]; signers: SignerCase[]; env?: Record<string, string>; timeoutMs: number }): Promise<SignerRun> {
  const base = await mkdtemp(join(tmpdir(), 'ncfence-tb-'));
  const profile = join(base, 'profile');
  const home = join(base, 'home');
  const job = join(base, 'job.json');
  const out = join(base, 'out.json');
  let output = '';
  let child: ChildProcess | undefined;
  try {
    await Promise.all([profile, home, join(base, 'cache'), join(base, 'runtime')].map((d) => mkdir(d, { mode: 0o700 })));
    await writeFile(join(profile, 'user.js'), Object.entries(BASE_PREFS).map(([k, v]) => prefLine(k, v)).join('\n') + '\n' + [
      prefLine('mail.shell.checkDefaultClient', false),
      prefLine('mail.provider.enabled', false),
      prefLine('mail.startup.enabledMailCheckOnce', true),
      prefLine('mailnews.start_page.enabled', false),
      prefLine('mail.rights.override', true),
    ].join('\n') + '\n');
    await writeFile(job, JSON.stringify({ intermediates: opts.intermediatesPem, signers: opts.signers }));
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    delete env['DISPLAY'];
    delete env['WAYLAND_DISPLAY'];
    Object.assign(env, {
      HOME: home,
      XDG_CACHE_HOME: join(base, 'cache'),
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_RUNTIME_DIR: join(base, 'runtime'),
      TMPDIR: base,
      MOZ_HEADLESS: '1',
      MOZ_NO_REMOTE: '1',
      MOZ_CRASHREPORTER_DISABLE: '1',
      MOZ_DISABLE_AUTO_SAFE_MODE: '1',
      NCFENCE_TB_JOB: job,
      NCFENCE_TB_OUT: out,
      ...(opts.env ?? {}),
    });
    child = spawn(opts.thunderbird, ['--headless', '-no-remote', '-profile', profile], { env, cwd: base, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const append = (d: Buffer): void => {
      output = (output + d.toString('utf8')).slice(-256 * 1024);
    };
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    await withTimeout(once(child, 'exit'), opts.timeoutMs);
    const text = await readFile(out, 'utf8').catch(() => undefined);
    if (text === undefined) throw new Error(`Thunderbird wrote no verdicts within ${opts.timeoutMs} ms\n${output.slice(-3000)}`);
    const results = JSON.parse(text) as Record<string, SignerVerdict>;
    if (results['*']) throw new Error(`the verification script failed: ${results['*'].fault}\n${output.slice(-3000)}`);
    return { results, output };
  } finally {
    if (child) {
      killGroup(child, 'SIGKILL');
      await killByCmdline(`${base}/`);
    }
    await rm(base, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 }).catch(() => undefined);
  }
}
