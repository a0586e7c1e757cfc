#!/usr/bin/env node
// The `ncfence` command: parses arguments, calls the compile step, formats output.

import { accessSync, constants, realpathSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EngineError, type EngineErrorCode } from '../engine/errors.js';
import { build, DEFAULT_UPSTREAM, type BuildResult } from '../compile/build.js';

const EXIT: Record<EngineErrorCode, number> = {
  BAD_DER: 1,
  ROOT_NOT_CA: 1,
  UNSUPPORTED_ROOT: 1,
  UPSTREAM: 1,
  VIEW: 1,
  USAGE: 2,
  POLICY: 3,
};

const HELP = `Usage: ncfence <command> [options]

Commands:
  build     Read the upstream trust module, fence every root it trusts,
            and write the compiled view and ncfence.conf into --out.

Options for build:
  --upstream PATH          upstream PKCS#11 trust module
                           (default ${DEFAULT_UPSTREAM})
  --upstream-params STR    string passed to upstream's C_Initialize as
                           pReserved, e.g. "paths=DIR" for p11-kit-trust
  --out DIR                where to write view.ncfv and ncfence.conf
                           (default ./ncfence-out)
  --policy FILE            policy file (default rules/default.json)
  --rebuild-command PATH   let the module run \`PATH build ...\` to regenerate
                           the view when it finds it stale or unusable
  --auto-rebuild           the same, with this ncfence command as PATH
  --rebuild-timeout-ms N   time limit for that run (default 15000, max 120000)
  --json                   print the result as JSON on stdout
  -h, --help               show this help

Point the module at the result with NCFENCE_CONFIG=DIR/ncfence.conf.

Exit codes: 0 ok, 1 failure, 2 usage error, 3 policy refused.
Set NCFENCE_DEBUG=1 to see stack traces.
`;

/** This command as an executable path the module can run (the installed, compiled CLI). */
function selfCommand(): string {
  const self = realpathSync(process.argv[1] ?? '');
  try {
    accessSync(self, constants.X_OK);
  } catch {
    throw new EngineError('USAGE', `--auto-rebuild needs the installed ncfence command (${self} is not executable); use --rebuild-command PATH`);
  }
  if (!self.endsWith('.js')) throw new EngineError('USAGE', `--auto-rebuild needs the compiled CLI, not ${self}; use --rebuild-command PATH`);
  return self;
}

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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'build') throw new EngineError('USAGE', `unknown command "${command}" (try: ncfence --help)`);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        upstream: { type: 'string', default: DEFAULT_UPSTREAM },
        'upstream-params': { type: 'string', default: '' },
        out: { type: 'string', default: 'ncfence-out' },
        policy: { type: 'string' },
        'rebuild-command': { type: 'string' },
        'auto-rebuild': { type: 'boolean', default: false },
        'rebuild-timeout-ms': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (e) {
    throw new EngineError('USAGE', `${(e as Error).message} (try: ncfence --help)`);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const result = await build({
    upstream: values.upstream,
    upstreamParams: values['upstream-params'],
    outDir: values.out,
    policyFile: values.policy,
    rebuildCommand: values['auto-rebuild'] ? selfCommand() : values['rebuild-command'],
    rebuildTimeoutMs: values['rebuild-timeout-ms'] === undefined ? undefined : Number(values['rebuild-timeout-ms']),
  });
  if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  else printSummary(result);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof EngineError) {
      process.stderr.write(`ncfence: ${e.message}\n`);
      if (process.env.NCFENCE_DEBUG) process.stderr.write(`${e.stack}\n`);
      process.exitCode = EXIT[e.code];
    } else {
      process.stderr.write(`ncfence: internal error: ${(e as Error).message ?? String(e)}\n`);
      if (process.env.NCFENCE_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      process.exitCode = 1;
    }
  },
);
