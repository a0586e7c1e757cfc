// The hostile-name corpus of issue 11: leaves a public CA (the test PKI's
// intermediate, under a root a view fences) issues for .bit names in every
// form a verifier reads, and the controls. Shared by test/fence/public-names.test.ts
// (every policy, every verifier), test/fence/p11kit-proxy.test.ts (NSS, GnuTLS and
// OpenSSL through p11-kit) and test/fence/build-policy.test.ts (the README's build).

export interface NameCase {
  name: string;
  subject: string;
  ext: string;
  host: string;
  /** The verdict every verifier must give under both policies, unless an override below says otherwise. */
  ok: boolean;
  /** NSS's verdict (tstclnt, vfychain) under the default policy, where it knowingly differs: the holes rules/nss.json closes. */
  nssDefault?: boolean;
  /** NSS's verdict where R' excludes every IP address (rules/nss.json; the NSS form of rules/p11-kit.json), where it differs from ok: the cost. */
  nssPolicy?: boolean;
  /** OpenSSL's verdict under the default policy, where it knowingly differs: the hole rules/p11-kit.json closes. */
  opensslDefault?: boolean;
  /** Whether the chain alone verifies (vfychain), where that differs from the host verdict. */
  chain?: boolean;
  /** Firefox's verdict, where it differs from ok. */
  firefox?: boolean;
  /** Skip Firefox (a host it cannot be pointed at, e.g. a trailing dot it strips). */
  noFirefox?: boolean;
}

export const cases: NameCase[] = [
  // Controls: what a public CA may vouch for keeps working.
  { name: 'a .com host', subject: '/CN=www.example.com', ext: 'subjectAltName=DNS:www.example.com', host: 'www.example.com', ok: true },
  { name: 'a .com host in upper case', subject: '/CN=WWW.EXAMPLE.COM', ext: 'subjectAltName=DNS:WWW.EXAMPLE.COM', host: 'www.example.com', ok: true },
  { name: 'a .com wildcard', subject: '/CN=*.example.com', ext: 'subjectAltName=DNS:*.example.com', host: 'www.example.com', ok: true },
  { name: 'a name ending in bit that is not the label', subject: '/CN=www.orbit', ext: 'subjectAltName=DNS:www.orbit', host: 'www.orbit', ok: true },
  { name: 'an IP-address certificate (the cost of rules/nss.json)', subject: '/CN=127.0.0.1', ext: 'subjectAltName=IP:127.0.0.1', host: '127.0.0.1', ok: true, nssPolicy: false },
  // The fence itself.
  { name: 'a .bit host', subject: '/CN=www.example.bit', ext: 'subjectAltName=DNS:www.example.bit', host: 'www.example.bit', ok: false },
  { name: 'the bare TLD', subject: '/CN=bit', ext: 'subjectAltName=DNS:bit', host: 'bit', ok: false, noFirefox: true },
  { name: 'a .bit host in upper case', subject: '/CN=WWW.EXAMPLE.BIT', ext: 'subjectAltName=DNS:WWW.EXAMPLE.BIT', host: 'www.example.bit', ok: false },
  { name: 'a .bit wildcard', subject: '/CN=*.example.bit', ext: 'subjectAltName=DNS:*.example.bit', host: 'www.example.bit', ok: false },
  { name: 'a wildcard over the TLD', subject: '/CN=*.bit', ext: 'subjectAltName=DNS:*.bit', host: 'example.bit', ok: false },
  { name: 'punycode under .bit', subject: '/CN=xn--bcher-kva.bit', ext: 'subjectAltName=DNS:xn--bcher-kva.bit', host: 'xn--bcher-kva.bit', ok: false },
  { name: 'a .bit beside a .com', subject: '/CN=www.example.com', ext: 'subjectAltName=DNS:www.example.com,DNS:www.example.bit', host: 'www.example.bit', ok: false },
  { name: 'CN only, a .bit', subject: '/CN=www.example.bit', ext: '', host: 'www.example.bit', ok: false },
  { name: 'two CNs, no SAN: a .com and a .bit', subject: '/CN=www.example.com/CN=www.example.bit', ext: '', host: 'www.example.bit', ok: false },
  // The holes in NSS's own verifiers (review): closed by rules/nss.json.
  { name: 'IPv4-only SAN, CN of a .bit', subject: '/CN=www.example.bit', ext: 'subjectAltName=IP:127.0.0.1', host: 'www.example.bit', ok: false, nssDefault: true, chain: true },
  { name: 'IPv6-only SAN, CN of a .bit', subject: '/CN=www.example.bit', ext: 'subjectAltName=IP:::1', host: 'www.example.bit', ok: false, nssDefault: true, chain: true },
  { name: 'IPv4 and e-mail SAN, CN of a .bit', subject: '/CN=www.example.bit', ext: 'subjectAltName=IP:127.0.0.1,email:a@example.com', host: 'www.example.bit', ok: false, nssDefault: true, chain: true },
  { name: 'a .bit SAN with a trailing dot', subject: '/CN=www.example.bit.', ext: 'subjectAltName=DNS:www.example.bit.', host: 'www.example.bit.', ok: false, nssDefault: true, opensslDefault: true, noFirefox: true },
];
