#!/usr/bin/env node
// The `ncfence` command: parses arguments, calls the compile step, formats output.

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkCommandLine } from './args.js';
import { describePathError, describeSystemError } from '../systemError.js';
import { EngineError, type EngineErrorCode } from '../engine/errors.js';
import { DEFAULT_UPSTREAM, type BuildResult } from '../compile/build.js';
import type { Manifest } from '../install/common.js';
import type { Check, InstallStatus } from '../install/status.js';
import { TARGETS, TARGET_NAMES, targetSpec } from '../install/targets.js';
// Each command loads only what it uses (dynamic imports below): `build` runs
// at every stale start-up of a browser with --auto-rebuild, and loading the
// install, comparison (pkijs) and service code cost it a third of its time
// (node --cpu-prof).

const EXIT: Record<EngineErrorCode, number> = {
  BAD_DER: 1,
  ROOT_NOT_CA: 1,
  UNSUPPORTED_ROOT: 1,
  UPSTREAM: 1,
  SOURCE: 1,
  VIEW: 1,
  USAGE: 2,
  POLICY: 3,
};

const HELP = `Usage: ncfence <command> [options]

Commands:
  build                 Read the upstream trust module (or, with --browser,
                        a browser's own roots), fence every root it trusts,
                        write the compiled view and ncfence.conf.
${TARGETS.map((t) => `  install ${t.name.padEnd(14)}${t.help}`).join('\n')}
  uninstall TARGET      Undo an install, restoring every replaced file, and
                        forget it.
  status                Every install this user can see, and whether what
                        its programs load is fresh; exit 1 when one is
                        stale, closed, tampered with or gone.
  doctor                Check each install as a user would, with fixes.
                        With --bit-name NAME: what a browser gets for that
                        .bit site, step by step (docs/browsing-bit.md).
  refresh               Rebuild every view of this user's installs (root:
                        the system's) that an update made stale; what the
                        Debian hooks run after package changes. With
                        --config: rebuild that configuration's view (what
                        the module runs).
  serve                 Run the live .bit service the module asks for Namecoin
                        anchors (docs/namecoin.md); runs until stopped.
  bench                 Measure rewriting on this machine and upstream: per
                        root by key type, the whole build against the crypto
                        floor, and the module's lookup costs (a table; --json,
                        --svg FILE); says which budgets are met and explains
                        each one missed (--check: exit 1 then).

Options:
  --upstream PATH          upstream PKCS#11 trust module (build default:
                           ${DEFAULT_UPSTREAM}; install nss/p11-kit: what
                           the target used; install of a browser: the
                           browser's own roots, unless named here)
  --browser DIR            build: read the roots of the browser installed in
                           DIR from inside it, instead of --upstream
  --upstream-params STR    passed to upstream's C_Initialize as pReserved,
                           e.g. "paths=DIR" for p11-kit-trust
  --policy FILE            policy file (build: the one for what reads the
                           upstream: rules/nss.json for NSS's libnssckbi.so,
                           rules/p11-kit.json for any other module,
                           rules/default.json with --browser; install: the
                           target's; docs/policy.md)
  --allow-empty            build, install: accept a view that fences no root
                           (otherwise an error: a wrong paths= looks like it)
  --out DIR                build: where to write view.ncfv and ncfence.conf
                           (default ./ncfence-out); the rebuild and service
                           settings of an ncfence.conf there are kept unless
                           given again. refresh --config: write the view
                           there instead of in place
  --rebuild-command PATH   build: let the module run \`PATH refresh --config
                           FILE\` to regenerate the view when it is not fresh
  --auto-rebuild           build: the same, with this package's command, and
                           an update of ncfence itself makes the view stale
                           (installs always do this; kept for old scripts)
  --rebuild-timeout-ms N   build: time limit for that run (default 15000)
  --dir DIR                install/uninstall/status/doctor: the browser's
                           install directory (default: the first found);
                           --firefox-dir is the same
  --user                   install/uninstall p11-kit: for this user only
  --root DIR               install/uninstall nss and p11-kit, status, doctor,
                           refresh: the filesystem root system-wide installs
                           and their records are under (default /, or
                           $NCFENCE_SYSTEM_ROOT)
  --config FILE            refresh: the ncfence.conf whose view to rebuild
  --hook NAME              refresh: run by a Debian hook (apt,
                           ca-certificates): one line per install changed
  --quiet                  status: print only installs that are not ok
  --no-firefox             doctor: skip starting the browsers
  --bit-name NAME[:PORT]   doctor: resolve this .bit site, ask the installs'
                           live service for its anchors, and try its chain
                           through each install's module as NSS does
  --resolver ADDRESS[:PORT]
                           doctor --bit-name: ask this DNS server instead of
                           the system resolver
  --service PATH           build/install: the live .bit service's socket the
                           module asks (absent: the one configured before,
                           if any; --service "": none, no Namecoin anchors)
  --service-command CMD    build: let the module start the service with CMD
                           (split on spaces) when nothing answers on --service
  --socket PATH            serve: socket to listen on (default
                           $XDG_RUNTIME_DIR/ncfence/service.sock, or
                           ~/.cache/ncfence/service.sock when
                           XDG_RUNTIME_DIR is not set)
  --rules FILE             serve: local anchors, domains pinned to keys
  --dns ADDRESS:PORT       serve: ncdns-compatible DNS server (TLSA over TCP)
  --rpc URL                serve: Namecoin Core JSON-RPC, e.g. http://127.0.0.1:8336/
                           (the only source that can check certified-mode
                           owner signatures)
  --rpc-cookie FILE        serve: its .cookie file (or --rpc-user with
                           --rpc-password-file FILE or $NCFENCE_RPC_PASSWORD;
                           a password on the command line shows in ps)
  --rpc-user USER
  --rpc-password-file FILE
  --sources LIST           serve: order of sources, e.g. rules,dns,rpc
  --rounds N               bench: repetitions (default 20)
  --svg FILE               bench: also write the results as an SVG plot
  --check                  bench: exit 1 when a budget is missed (each
                           missed budget is explained in the output)
  --json                   print results as JSON on stdout
  -h, --help               show this help (ncfence COMMAND --help: that
                           command's options only)
  --version                print the version

Point a module built with \`build\` at its configuration with
NCFENCE_CONFIG=DIR/ncfence.conf (docs/configuration.md).

Exit codes: 0 ok, 1 failure (doctor: a check failed; bench --check: a
budget missed), 2 usage error or a refused install, 3 policy refused.
Set NCFENCE_DEBUG=1 to see stack traces.
`;

/** Options each command takes; any other is refused (exit 2). */
const COMMAND_OPTIONS: Record<string, readonly string[]> = {
  build: ['upstream', 'upstream-params', 'browser', 'out', 'policy', 'rebuild-command', 'auto-rebuild', 'rebuild-timeout-ms', 'service', 'service-command', 'allow-empty', 'json'],
  install: ['upstream', 'upstream-params', 'policy', 'service', 'allow-empty', 'json', ...new Set(TARGETS.flatMap((t) => t.options))],
  uninstall: ['json', ...new Set(TARGETS.flatMap((t) => t.options.filter((o) => o !== 'auto-rebuild')))],
  status: ['dir', 'firefox-dir', 'root', 'quiet', 'json'],
  doctor: ['dir', 'firefox-dir', 'root', 'no-firefox', 'bit-name', 'resolver', 'json'],
  refresh: ['config', 'out', 'hook', 'root', 'json'],
  serve: ['socket', 'rules', 'dns', 'rpc', 'rpc-cookie', 'rpc-user', 'rpc-password', 'rpc-password-file', 'sources'],
  bench: ['upstream', 'upstream-params', 'rounds', 'svg', 'check', 'json'],
};
/** The install targets that take an option only some of them take. */
const targetsTaking = (option: string): string[] => TARGETS.filter((t) => t.options.includes(option)).map((t) => t.name);

/** Each command's usage line, where it says more than `ncfence COMMAND [options]`. */
const USAGE: Record<string, string> = {
  build: 'ncfence build [--upstream PATH | --browser DIR] [options]',
  install: `ncfence install ${TARGET_NAMES.join('|')} [options]`,
  uninstall: `ncfence uninstall ${TARGET_NAMES.join('|')} [options]`,
  refresh: 'ncfence refresh [--config FILE [--out DIR]] [options]',
  bench: 'ncfence bench [--upstream PATH] [--rounds N] [--json] [--svg FILE] [--check]',
};

/** One command's help: its line from the command list and the descriptions of the options it takes, cut from HELP. */
function commandHelp(command: string): string {
  // A section's entries: each line that starts in the third column, with the indented lines under it.
  const entries = (heading: string): string[] => HELP.split(`\n${heading}\n`)[1]!.split('\n\n')[0]!.split(/\n(?= {2}\S)/);
  const summary = entries('Commands:').filter((e) => e.startsWith(`  ${command} `));
  const blocks = entries('Options:').filter((e) => {
    const option = /^ {2}(?:-h, )?--([a-z-]+)/.exec(e)![1]!;
    return COMMAND_OPTIONS[command]!.includes(option) || option === 'help';
  });
  return `Usage: ${USAGE[command] ?? `ncfence ${command} [options]`}\n\n${summary.join('\n')}\n\nOptions:\n${blocks.join('\n')}\n`;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

const OPTIONS = {
  upstream: { type: 'string' },
  'upstream-params': { type: 'string' },
  out: { type: 'string' },
  policy: { type: 'string' },
  'rebuild-command': { type: 'string' },
  'auto-rebuild': { type: 'boolean', default: false },
  'rebuild-timeout-ms': { type: 'string' },
  'firefox-dir': { type: 'string' },
  dir: { type: 'string' },
  browser: { type: 'string' },
  user: { type: 'boolean', default: false },
  root: { type: 'string' },
  'no-firefox': { type: 'boolean', default: false },
  config: { type: 'string' },
  hook: { type: 'string' },
  quiet: { type: 'boolean', default: false },
  'bit-name': { type: 'string' },
  resolver: { type: 'string' },
  service: { type: 'string' },
  'service-command': { type: 'string' },
  socket: { type: 'string' },
  rules: { type: 'string' },
  dns: { type: 'string' },
  rpc: { type: 'string' },
  'rpc-cookie': { type: 'string' },
  'rpc-user': { type: 'string' },
  'rpc-password': { type: 'string' },
  'rpc-password-file': { type: 'string' },
  sources: { type: 'string' },
  json: { type: 'boolean', default: false },
  'allow-empty': { type: 'boolean', default: false },
  rounds: { type: 'string' },
  svg: { type: 'string' },
  check: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', default: false },
} as const;

/** The RPC password from a file (first line) or $NCFENCE_RPC_PASSWORD; never from the command line. */
function rpcPassword(file: string | undefined): string | undefined {
  if (file === undefined) return process.env.NCFENCE_RPC_PASSWORD || undefined;
  try {
    return readFileSync(file, 'utf8').split('\n')[0]!.replace(/\r$/, '');
  } catch (cause) {
    throw new EngineError('USAGE', `cannot read --rpc-password-file: ${describePathError(cause, file)}`, { cause });
  }
}

/** `build --auto-rebuild`: the module rebuilds with this package's command. */
async function autoRebuild(): Promise<{ rebuildCommand: string; rebuildNode: string; engine: string }> {
  const { packageRebuild, rebuildKeys } = await import('../install/common.js');
  return rebuildKeys(packageRebuild());
}

/** Where doctor --bit-name tries a chain: each install's module and configuration, and the package's module with $NCFENCE_CONFIG. */
async function bitCheckTargets(dir: string | undefined, root: string | undefined): Promise<import('../install/bitcheck.js').BitCheckTarget[]> {
  const { findInstalls } = await import('../install/status.js');
  const { PACKAGE_MODULE } = await import('../install/common.js');
  const out = findInstalls({ dir, root }).map((m) => ({ label: `${m.target} at ${m.location}`, module: m.module.path, config: m.config }));
  if (process.env.NCFENCE_CONFIG) out.push({ label: `NCFENCE_CONFIG=${process.env.NCFENCE_CONFIG}`, module: PACKAGE_MODULE, config: process.env.NCFENCE_CONFIG });
  return out;
}

/** A whole-number option's value, or a usage error that shows what was typed. */
function wholeNumber(option: string, text: string, min: number, max: number, unit = ''): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new EngineError('USAGE', `${option} must be a whole number${unit ? ` of ${unit}` : ''} from ${min} to ${max}, got ${JSON.stringify(text)}`);
  return n;
}

/** Progress lines on a terminal, silence in pipes. */
const progress = (msg: string): void => {
  if (process.stderr.isTTY) process.stderr.write(`ncfence: ${msg}...\n`);
};

function printSummary(r: BuildResult): void {
  const s = r.summary;
  const lines = [
    `upstream:        ${r.upstream}${r.upstreamParams ? ` (${r.upstreamParams})` : ''}`,
    `roots fenced:    ${s.rootsFenced}`,
    `roots dropped:   ${s.rootsDropped.length}${s.rootsDropped.map((d) => `\n  - ${d.label}: ${d.reason} (${d.rule})`).join('')}`,
    `roots passed:    ${s.rootsPassed.length}${s.rootsPassed.map((d) => `\n  - ${d.label}: ${d.reason} (${d.rule})`).join('')}`,
    `passed through:  ${s.passedThrough} of ${s.upstreamObjects} upstream objects (${s.distrustRecords} distrust records)`,
    `hidden:          ${s.hidden} upstream objects that granted trust`,
    `view:            ${r.view} (${s.viewObjects} objects, ${r.millis} ms)`,
    `config:          ${r.config}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printManifest(verb: string, m: Manifest): void {
  const source = m.upstreamSource === 'browser' ? ' (the browser\'s own roots, read from inside it)' : m.upstreamSource === 'backup' ? ' (the roots module the browser loaded before)' : '';
  const lines = [
    `${verb} ${m.target}: module ${m.module.path}`,
    `upstream:     ${m.upstream}${m.upstreamParams ? ` (${m.upstreamParams})` : ''}${source}`,
    `roots fenced: ${m.rootsFenced}`,
    ...(m.browserCheck ? [`checked:      ${m.browserCheck.summary}`] : []),
    `view:         ${m.view}`,
    `config:       ${m.config}`,
    ...m.backups.map((b) => `kept:         ${b.path} as ${b.savedAs}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function printStatus(rows: InstallStatus[], quiet = false): void {
  if (rows.length === 0) {
    if (!quiet) process.stdout.write('ncfence is not installed anywhere (see ncfence --help: install).\n');
    return;
  }
  const head = ['target', 'location', 'state', 'roots fenced', 'anchors', 'service', 'upstream'];
  const rootsNote = (r: InstallStatus): string => {
    if (!r.roots) return '';
    if (r.roots.source === 'browser') return ' (its own roots)';
    const c = r.roots.check;
    return c && c.differences >= 0 ? ` (${c.differences} differences from its own roots)` : ' (not its own roots)';
  };
  const body = rows.map((r) => [r.target, r.location, r.state, String(r.rootsFenced), String(r.anchors), r.service, `${r.upstream}${rootsNote(r)}`]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  process.stdout.write(`${[line(head), ...body.map(line)].join('\n')}\n`);
  for (const r of rows.filter((x) => x.state !== 'ok')) process.stdout.write(`${r.target} at ${r.location}: ${r.detail} (ncfence doctor says what to do)\n`);
  for (const r of rows.filter((x) => x.upgrade.length > 0)) {
    process.stdout.write(`${r.target} at ${r.location}: this ncfence has ${r.upgrade.join(' and ')}; the install keeps its own until you run it again (ncfence install ${r.target} ...)\n`);
  }
}

/** A heading, then each check, with its fix when it failed (doctor, doctor --bit-name). */
function printChecks(heading: string, checks: Check[]): void {
  process.stdout.write(`${heading}\n`);
  for (const c of checks) process.stdout.write(`  ${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}${c.ok || !c.fix ? '' : `\n       fix: ${c.fix}`}\n`);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === 'version') {
    process.stdout.write(`ncfence ${packageVersion()}\n`);
    return 0;
  }
  if (!(command in COMMAND_OPTIONS)) {
    throw new EngineError('USAGE', command.startsWith('-') ? `${command} is not an option of ncfence, or it came before the command: ncfence COMMAND [options] (try: ncfence --help)` : `unknown command "${command}" (try: ncfence --help)`);
  }
  const { help } = checkCommandLine(command, rest, {
    options: OPTIONS,
    commandOptions: COMMAND_OPTIONS,
    targetOptions: Object.fromEntries([...new Set(TARGETS.flatMap((t) => t.options))].map((o) => [o, targetsTaking(o)])),
    targets: { install: TARGET_NAMES, uninstall: TARGET_NAMES },
    valueName: (option) => new RegExp(`^ {2}--${option} (\\S+)`, 'm').exec(HELP)?.[1] ?? 'VALUE',
  });
  if (help) {
    process.stdout.write(commandHelp(command));
    return 0;
  }
  let values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options: OPTIONS, strict: true, allowPositionals: true }));
  } catch {
    // checkCommandLine refuses everything parseArgs does, in words of its own; this is a backstop.
    throw new EngineError('USAGE', `cannot read the command line (try: ncfence ${command} --help)`);
  }
  // checkCommandLine let through only one known target, and positionals to no other command.
  const target = () => targetSpec(positionals[0]!)!;
  if (values.dir !== undefined && values['firefox-dir'] !== undefined && values.dir !== values['firefox-dir']) {
    throw new EngineError('USAGE', '--dir and --firefox-dir name the same thing; give one');
  }
  const dirOption = values.dir ?? values['firefox-dir'];
  /** Prints `data` as JSON when --json was given, and says whether it did. */
  const printedJson = (data: unknown): boolean => {
    if (values.json) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    return values.json;
  };
  const upstreamOpts = { upstream: values.upstream, upstreamParams: values['upstream-params'], policyFile: values.policy, service: values.service, allowEmpty: values['allow-empty'], progress };
  switch (command) {
    case 'build': {
      if (values.browser !== undefined && values.upstream !== undefined) throw new EngineError('USAGE', 'build reads either --browser DIR or --upstream PATH, not both');
      if (values.browser !== undefined && values['upstream-params'] !== undefined) throw new EngineError('USAGE', '--upstream-params goes with --upstream; --browser reads the browser\'s own roots and takes no parameters');
      progress(values.browser !== undefined ? `reading the roots of the browser in ${values.browser}` : `building the fenced view of ${values.upstream ?? DEFAULT_UPSTREAM}`);
      const { build } = await import('../compile/build.js');
      const result = await build({
        ...(values.browser !== undefined ? { browser: values.browser } : {}),
        upstream: values.upstream ?? DEFAULT_UPSTREAM,
        upstreamParams: values['upstream-params'] ?? '',
        outDir: values.out ?? 'ncfence-out',
        policyFile: values.policy,
        ...(values['auto-rebuild'] ? await autoRebuild() : { rebuildCommand: values['rebuild-command'] }),
        rebuildTimeoutMs: values['rebuild-timeout-ms'] === undefined ? undefined : wholeNumber('--rebuild-timeout-ms', values['rebuild-timeout-ms'], 1, 120_000, 'milliseconds'),
        service: values.service,
        serviceCommand: values['service-command'],
        minRootsFenced: values['allow-empty'] ? undefined : 1,
      });
      if (!printedJson(result)) printSummary(result);
      return 0;
    }
    case 'bench': {
      const rounds = values.rounds === undefined ? 20 : wholeNumber('--rounds', values.rounds, 1, 10_000);
      const upstream = values.upstream ?? DEFAULT_UPSTREAM;
      // Before measuring (a minute or more): a plot that cannot be written, an upstream that is not there.
      if (values.svg !== undefined) (await import('../fsPaths.js')).checkWritableFile(values.svg, '--svg');
      (await import('../compile/upstream.js')).checkUpstreamFile(upstream);
      const { benchBudgets, benchSvg, formatBench, runBench } = await import('../bench/run.js');
      const r = await runBench({ upstream, upstreamParams: values['upstream-params'] ?? '', rounds }, progress);
      if (values.svg) writeFileSync(values.svg, benchSvg(r));
      const budgets = benchBudgets(r);
      if (!printedJson({ ...r, budgets })) process.stdout.write(formatBench(r));
      const missed = budgets.filter((b) => !b.met);
      if (values.check && missed.length > 0) {
        process.stderr.write(`ncfence: bench --check: ${missed.length} budget${missed.length === 1 ? '' : 's'} missed: ${missed.map((b) => `${b.name} ${b.measured.replace(/ \(.*$/, '')}`).join('; ')} (${values.json ? 'budgets in the JSON' : 'explained above'})\n`);
        return 1;
      }
      return 0;
    }
    case 'serve': {
      const { defaultSocketPath, serve } = await import('../namecoin/serve.js');
      if (values['rpc-password'] !== undefined) {
        throw new EngineError('USAGE', '--rpc-password would show the password to every user of this machine (ps, /proc); use --rpc-password-file FILE or set NCFENCE_RPC_PASSWORD');
      }
      const svc = await serve({
        socket: values.socket ?? defaultSocketPath(),
        rules: values.rules,
        dns: values.dns,
        rpc: values.rpc,
        rpcCookie: values['rpc-cookie'],
        rpcUser: values['rpc-user'],
        rpcPassword: rpcPassword(values['rpc-password-file']),
        order: values.sources?.split(',').map((x) => x.trim()),
        checkSources: true,
        log: (line) => process.stderr.write(`ncfence serve: ${line}\n`),
      });
      process.stderr.write(`ncfence: serving .bit anchors on ${svc.socketPath}\n`);
      await new Promise<void>((done) => {
        process.once('SIGTERM', done);
        process.once('SIGINT', done);
      });
      await svc.close();
      return 0;
    }
    case 'install': {
      const m = await target().install({ dir: dirOption, root: values.root, user: values.user, ...upstreamOpts });
      if (!printedJson(m)) printManifest('installed', m);
      return 0;
    }
    case 'uninstall': {
      const m = await target().uninstall({ dir: dirOption, root: values.root, user: values.user });
      if (!printedJson(m)) process.stdout.write(`uninstalled ${m.target}: ${m.module.path} removed${m.backups.map((b) => `, ${b.path} restored`).join('')}\n`);
      return 0;
    }
    case 'status': {
      const { status } = await import('../install/status.js');
      const rows = await status({ dir: dirOption, root: values.root });
      if (!printedJson(rows)) printStatus(values.quiet ? rows.filter((r) => r.state !== 'ok') : rows, values.quiet);
      return rows.some((r) => r.state !== 'ok') ? 1 : 0;
    }
    case 'doctor': {
      if (values['bit-name'] !== undefined) {
        const r = await (await import('../install/bitcheck.js')).checkBitName({ name: values['bit-name'], resolver: values.resolver, targets: await bitCheckTargets(dirOption, values.root) });
        if (!printedJson(r)) printChecks(`${r.name}${r.port === 443 ? '' : `:${r.port}`}`, r.checks);
        return r.checks.every((c) => c.ok) ? 0 : 1;
      }
      progress('checking each install (browsers are started headless, offline, with a throwaway profile)');
      const { doctor } = await import('../install/status.js');
      const reports = await doctor({ dir: dirOption, root: values.root, firefox: !values['no-firefox'] });
      const failed = reports.some((r) => r.checks.some((c) => !c.ok));
      if (values.json) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
      else if (reports.length === 0) process.stdout.write('nothing to check: ncfence is not installed anywhere (ncfence --help: install)\n');
      else for (const r of reports) printChecks(`${r.target} at ${r.location}`, r.checks);
      return failed || reports.length === 0 ? 1 : 0;
    }
    case 'refresh': {
      const { refreshAll, refreshConfig } = await import('../install/refresh.js');
      if (values.config !== undefined) {
        const r = await refreshConfig(values.config, values.out);
        if (!printedJson(r)) process.stdout.write(`rebuilt ${r.view} (${r.rootsFenced} roots fenced)\n`);
        return 0;
      }
      if (values.out !== undefined) throw new EngineError('USAGE', 'refresh takes --out only with --config FILE');
      const results = await refreshAll({ root: values.root, progress });
      if (!printedJson(results)) {
        for (const r of results) {
          if (r.error) process.stderr.write(`ncfence: ${r.target} at ${r.location}: ${r.error}\n`);
          else if (r.actions.length > 0 || !values.hook) process.stdout.write(`${r.target} at ${r.location}: ${r.actions.length > 0 ? r.actions.join(', ') : 'fresh'}\n`);
        }
      }
      return results.some((r) => r.error) ? 1 : 0;
    }
    default:
      throw new EngineError('USAGE', `unknown command "${command}" (try: ncfence --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`ncfence: ${failureMessage(e)}\n`);
    if (process.env.NCFENCE_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
    process.exitCode = e instanceof EngineError ? EXIT[e.code] : 1;
  },
);

/**
 * One line for a failure: an EngineError says it in its own words; a system
 * error that escaped names its path in plain words (src/systemError.ts); only
 * anything else is a bug of ours, and says so.
 */
function failureMessage(e: unknown): string {
  const internal = `internal error (a bug in ncfence; NCFENCE_DEBUG=1 shows where): ${(e as Error)?.message ?? String(e)}`;
  const message = e instanceof EngineError ? e.message : describeSystemError(e) || internal;
  return message.replace(/\s*\n\s*/g, ' ');
}
