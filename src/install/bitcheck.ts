// `ncfence doctor --bit-name NAME[:PORT]`: what a browser gets for one .bit
// site, step by step, each step with its fix (docs/browsing-bit.md):
//   1. the name resolves, through the system resolver (as a browser asks
//      it: getaddrinfo) or a DNS server given with --resolver;
//   2. the site answers TLS there, and sends a chain;
//   3. the chain is a Namecoin one: its top certificate names a
//      "<domain> Domain AIA Parent CA" issuer (namecoin/ncgencert);
//   4. the live service each install names vouches for it: asked with that
//      issuer's exact name, as the module asks (docs/service-protocol.md);
//   5. NSS itself, loading the install's module (tstclnt -R, as
//      test/namecoin/namecoin.test.ts does), accepts the chain or says why not.
// The verdict is NSS's, never this file's: the steps before it say where a
// refusal comes from.

import { execFile } from 'node:child_process';
import { promises as dns } from 'node:dns';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { connect as tlsConnect, type PeerCertificate, type DetailedPeerCertificate } from 'node:tls';
import { EngineError } from '../engine/errors.js';
import { parseCertificate } from '../engine/asn1/certificate.js';
import { parseAiaName } from '../namecoin/chain.js';
import { isBitName } from '../namecoin/names.js';
import { Status, type Response } from '../service/protocol.js';
import { askServiceFor } from '../service/client.js';
import { readConfig } from '../config.js';
import { CKA } from '../pkcs11/constants.js';
import { describeSystemError } from '../systemError.js';
import type { Check } from './status.js';

/** Where the chain is tried: an install's module and configuration, or the module with $NCFENCE_CONFIG. */
export interface BitCheckTarget {
  label: string;
  module: string;
  config: string;
}

export interface BitCheckOptions {
  /** NAME or NAME:PORT (default 443). */
  name: string;
  /** ADDRESS[:PORT] of a DNS server to ask instead of the system resolver. */
  resolver?: string;
  targets: BitCheckTarget[];
}

export interface BitCheckReport {
  name: string;
  port: number;
  checks: Check[];
}

/** `www.example.bit:8443` -> host and port; a USAGE error for anything that is not a .bit host. */
export function parseBitName(text: string): { host: string; port: number } {
  const m = /^([^:]+?)\.?(?::(\d{1,5}))?$/.exec(text.trim());
  const host = m?.[1]?.toLowerCase() ?? '';
  const port = m?.[2] === undefined ? 443 : Number(m[2]);
  if (!host.endsWith('.bit')) throw new EngineError('USAGE', `--bit-name ${text}: not a .bit name (e.g. --bit-name www.example.bit, or www.example.bit:8443)`);
  if (!isBitName(host)) throw new EngineError('USAGE', `--bit-name ${text}: not a valid .bit name (the label before .bit as Namecoin's d/ names allow, labels below it letters, digits, hyphens and "_": docs/namecoin.md)`);
  if (!(port >= 1 && port <= 65535)) throw new EngineError('USAGE', `--bit-name ${text}: port ${m?.[2]} is not in 1..65535`);
  return { host, port };
}

/** `127.0.0.1:5353`, `[::1]:53`, `127.0.0.1` (port 53) -> the form Resolver.setServers takes. */
export function parseResolver(text: string): string {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([0-9.]+))(?::(\d{1,5}))?$/.exec(text.trim()) ?? /^([0-9a-fA-F:]+)()()$/.exec(text.trim());
  const address = m?.[1] || m?.[2];
  const port = m?.[3] ? Number(m[3]) : 53;
  if (!address || isIP(address) === 0 || !(port >= 1 && port <= 65535)) throw new EngineError('USAGE', `--resolver ${text}: expected ADDRESS[:PORT], e.g. 127.0.0.1:53 or [::1]:53`);
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

const DNS_WORDS: Record<string, string> = {
  ENOTFOUND: 'does not exist there (NXDOMAIN)',
  ENODATA: 'has no address record there',
  ESERVFAIL: 'failed there (SERVFAIL: the resolver could not get an answer, e.g. it could not reach the bit. server or could not validate the answer)',
  EREFUSED: 'was refused there (REFUSED)',
  ETIMEOUT: 'got no answer in time',
  ECONNREFUSED: 'got no answer: nothing listens there',
  EAI_AGAIN: 'got no answer in time',
};

async function resolve(host: string, resolver: string | undefined, timeoutMs: number): Promise<Check & { addresses: string[] }> {
  const where = resolver ? `the DNS server ${resolver}` : 'the system resolver';
  const fix =
    'a browser shows "Server Not Found": .bit names resolve only where ncdns (or another server for bit.) sits behind the resolver; docs/browsing-bit.md says how to set it up with unbound or dnssec-trigger, and what Tor Browser does';
  try {
    let addresses: string[];
    if (resolver) {
      const r = new dns.Resolver({ timeout: timeoutMs, tries: 1 });
      r.setServers([resolver]);
      const v4 = await r.resolve4(host).catch((e: NodeJS.ErrnoException) => (e.code === 'ENODATA' ? [] : Promise.reject(e)));
      const v6 = v4.length ? [] : await r.resolve6(host);
      addresses = [...v4, ...v6];
    } else {
      addresses = (await dns.lookup(host, { all: true })).map((a) => a.address);
    }
    if (addresses.length === 0) throw Object.assign(new Error('no address'), { code: 'ENODATA' });
    return { name: 'name resolves', ok: true, detail: `${host} is ${addresses.join(', ')} (asked ${where})`, addresses };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    return { name: 'name resolves', ok: false, detail: `asked ${where}: ${host} ${DNS_WORDS[code] ?? `could not be resolved (${code || (e as Error).message})`}`, fix, addresses: [] };
  }
}

/** The certificates the site sends, leaf first, as DER. */
function fetchChain(address: string, host: string, port: number, timeoutMs: number): Promise<Uint8Array[]> {
  return new Promise((resolveChain, reject) => {
    const s = tlsConnect({ host: address, port, servername: host, rejectUnauthorized: false, timeout: timeoutMs });
    const done = (e?: Error, chain?: Uint8Array[]): void => {
      s.destroy();
      if (e) reject(e);
      else resolveChain(chain!);
    };
    s.once('secureConnect', () => {
      const out: Uint8Array[] = [];
      const seen = new Set<string>();
      let c: PeerCertificate | DetailedPeerCertificate | undefined = s.getPeerCertificate(true);
      while (c && c.raw && !seen.has(c.fingerprint256)) {
        seen.add(c.fingerprint256);
        out.push(new Uint8Array(c.raw));
        c = (c as DetailedPeerCertificate).issuerCertificate;
      }
      done(undefined, out);
    });
    s.once('timeout', () => done(new Error(`no TLS answer within ${timeoutMs} ms`)));
    s.once('error', (e) => done(e));
  });
}

/** What a browser shows for NSS's error code, and what to do about it. */
const VERDICTS: Record<string, { shows: string; fix: string }> = {
  SEC_ERROR_UNKNOWN_ISSUER: {
    shows: 'a browser shows "Warning: Potential Security Risk Ahead" (SEC_ERROR_UNKNOWN_ISSUER): nothing vouches for the chain the site sent',
    fix: 'see the steps above: the service must answer for this key (its log says why not), and the install must name that service (ncfence install ... --service PATH)',
  },
  SEC_ERROR_CERT_NOT_IN_NAME_SPACE: {
    shows: 'a browser refuses it (SEC_ERROR_CERT_NOT_IN_NAME_SPACE): a CA that may not issue for .bit signed it, which is what ncfence is for',
    fix: 'the site must use a Namecoin chain (docs/namecoin.md, "For site owners")',
  },
  SSL_ERROR_BAD_CERT_DOMAIN: { shows: 'a browser refuses it (SSL_ERROR_BAD_CERT_DOMAIN): the certificate is not for this name', fix: 'the site must present a certificate for this host' },
  SEC_ERROR_EXPIRED_CERTIFICATE: { shows: 'a browser refuses it (SEC_ERROR_EXPIRED_CERTIFICATE): a certificate in the chain has expired', fix: 'the site must renew its certificate' },
};

function runTstclnt(t: BitCheckTarget, address: string, host: string, port: number, timeoutMs: number): Promise<{ ok: boolean; code?: string; text: string; missing?: boolean }> {
  return new Promise((resolveRun) => {
    const env = { ...process.env, NCFENCE_CONFIG: t.config };
    execFile('tstclnt', ['-D', '-R', t.module, '-h', address, '-p', String(port), '-a', host, '-Q'], { env, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolveRun({ ok: false, missing: true, text: '' });
      const text = `${stdout}\n${stderr}`;
      const code = /\b((?:SEC|SSL|PR)_ERROR_[A-Z0-9_]+)/.exec(stderr)?.[1];
      resolveRun({ ok: !err, code, text });
    }).stdin?.end();
  });
}

/**
 * The certificates the service answered for the name asked: the AIA
 * parents, whose subject is the site's top certificate's issuer (an answer
 * also carries the chain above them, the TLD CA and the root).
 */
function parents(answer: Response, topDer: Uint8Array): Uint8Array[] {
  const issuer = Buffer.from(parseCertificate(topDer).issuer);
  return answer.objects
    .filter((o) => o.some(([t, v]) => t === CKA.SUBJECT && issuer.equals(Buffer.from(v))))
    .map((o) => o.find(([t]) => t === CKA.VALUE)?.[1])
    .filter((v): v is Uint8Array => v !== undefined);
}

/** Whether one of those holds the key that signed the site's top certificate. */
function signsTop(certs: Uint8Array[], topDer: Uint8Array): boolean {
  const top = new X509Certificate(Buffer.from(topDer));
  return certs.some((value) => {
    try {
      return top.verify(new X509Certificate(Buffer.from(value)).publicKey);
    } catch {
      return false;
    }
  });
}

function serviceCheck(label: string, service: string | undefined, answer: Response | Error | undefined, domain: string, topDer: Uint8Array): Check {
  if (!service) {
    return { name: `.bit service (${label})`, ok: false, detail: 'this install names no live service, so the module never asks for Namecoin anchors', fix: 'start one (ncfence serve ..., docs/namecoin.md) and install again with --service PATH' };
  }
  if (answer instanceof Error) return { name: `.bit service (${label})`, ok: false, detail: `${service}: ${answer.message}`, fix: `start it (systemctl --user start ncfence.socket, or ncfence serve --socket ${service} with your sources; docs/namecoin.md)` };
  const certs = parents(answer!, topDer);
  const n = certs.length;
  if (answer!.status === Status.OK && n > 0 && signsTop(certs, topDer)) {
    return { name: `.bit service (${label})`, ok: true, detail: `${service} vouches for the key that signed ${domain}'s Domain CA (answered with ${n} certificate${n === 1 ? '' : 's'}, kept ${answer!.ttl} s)` };
  }
  if (answer!.status === Status.OK && n > 0) {
    return {
      name: `.bit service (${label})`,
      ok: false,
      detail: `${service} answered with the key${n === 1 ? '' : 's'} ${domain}'s TLS record pins, but the site's Domain CA is signed by another key`,
      fix: 'the site must use a Domain CA signed by the key the name pins, or the name\'s record must pin the key that signed it (docs/namecoin.md, "For site owners")',
    };
  }
  const why = answer!.status === Status.UNAVAILABLE ? 'none of its sources answered' : 'it has no anchor for this key';
  return { name: `.bit service (${label})`, ok: false, detail: `${service}: ${why}; its log (stderr, or the journal under systemd) names the reason: no record, wrong key, source down, ...`, fix: 'check the name\'s TLS record against the site\'s key (docs/namecoin.md, "Seeing what happens")' };
}

export async function checkBitName(o: BitCheckOptions): Promise<BitCheckReport> {
  const { host, port } = parseBitName(o.name);
  const resolver = o.resolver === undefined ? undefined : parseResolver(o.resolver);
  const timeoutMs = 5000;
  const checks: Check[] = [];
  const report = (): BitCheckReport => ({ name: host, port, checks });

  const resolved = await resolve(host, resolver, timeoutMs);
  checks.push({ name: resolved.name, ok: resolved.ok, detail: resolved.detail, ...(resolved.fix ? { fix: resolved.fix } : {}) });
  if (!resolved.ok) return report();
  const address = resolved.addresses[0]!;

  let chain: Uint8Array[];
  try {
    chain = await fetchChain(address, host, port, timeoutMs);
    if (chain.length === 0) throw new Error('the site sent no certificate');
  } catch (e) {
    const why = describeSystemError(e) ?? (e as Error).message;
    checks.push({ name: 'site answers', ok: false, detail: `${address}:${port}: ${why}`, fix: 'a browser shows "Unable to connect": the site is down, or serves HTTPS on another port (NAME:PORT)' });
    return report();
  }
  const certs = chain.map((der) => parseCertificate(der));
  const top = certs[certs.length - 1]!;
  checks.push({ name: 'site answers', ok: true, detail: `${address}:${port} sent ${chain.length} certificate${chain.length === 1 ? '' : 's'}` });

  const aia = parseAiaName(top.issuer);
  checks.push(
    aia
      ? { name: 'Namecoin chain', ok: true, detail: `the site's chain is issued by "${aia.domain} Domain AIA Parent CA"${aia.stapledKey ? ' (its key stapled in the name)' : ''}, whose key the name's TLS record must vouch for` }
      : {
          name: 'Namecoin chain',
          ok: false,
          detail: 'the chain the site sends does not lead to a Namecoin "Domain AIA Parent CA": a public or private CA issued it, and with ncfence no public CA can vouch for a .bit name',
          fix: 'the site must use a Namecoin chain (docs/namecoin.md, "For site owners")',
        },
  );

  if (o.targets.length === 0) {
    checks.push({ name: 'what a browser gets', ok: false, detail: 'no install found and NCFENCE_CONFIG is not set: nothing to try the chain with', fix: 'install ncfence (docs/install.md), or set NCFENCE_CONFIG to the ncfence.conf ncfence build wrote' });
    return report();
  }
  const answers = new Map<string, Response | Error>();
  for (const t of o.targets) {
    let service: string | undefined;
    try {
      service = readConfig(t.config).service || undefined;
    } catch (e) {
      checks.push({ name: `.bit service (${t.label})`, ok: false, detail: `cannot read ${t.config}: ${(e as Error).message}`, fix: 'ncfence status; ncfence doctor' });
      continue;
    }
    if (aia && service && !answers.has(service)) answers.set(service, await askServiceFor(service, top.issuer, timeoutMs).catch((e: Error) => e));
    if (aia) checks.push(serviceCheck(t.label, service, service ? answers.get(service) : undefined, aia.domain, chain[chain.length - 1]!));
    const r = await runTstclnt(t, address, host, port, timeoutMs * 4);
    if (r.missing) {
      checks.push({ name: `what a browser gets (${t.label})`, ok: false, detail: 'tstclnt is not installed, so the chain cannot be tried as NSS tries it', fix: 'apt-get install libnss3-tools' });
      continue;
    }
    const v = r.code ? VERDICTS[r.code] : undefined;
    checks.push(
      r.ok
        ? { name: `what a browser gets (${t.label})`, ok: true, detail: `NSS, through ${t.module}, accepts the chain: a browser using this install loads https://${host}${port === 443 ? '' : `:${port}`}/` }
        : {
            name: `what a browser gets (${t.label})`,
            ok: false,
            detail: `NSS, through ${t.module}, refuses the chain: ${v?.shows ?? `${r.code ?? 'the handshake failed'}`}`,
            fix: v?.fix ?? 'see the steps above',
          },
    );
  }
  return report();
}
