// The command line's mistakes, each refused in one line that names the
// mistake and the fix, before any command runs. Node's parseArgs words its
// own refusals for programmers ("Unknown option '--x'. To specify a
// positional argument starting with a '-', place it at the end of the
// command after '--', as in '-- "--x"'), so it only splits the line here
// (strict: false) and these checks decide.

import { parseArgs } from 'node:util';
import { EngineError } from '../engine/errors.js';

export interface CommandLineSpec {
  /** Every option the CLI knows, as parseArgs takes them. */
  options: Readonly<Record<string, { type: 'string' | 'boolean'; short?: string }>>;
  /** Options each command takes. */
  commandOptions: Readonly<Record<string, readonly string[]>>;
  /** Options that only some install targets take. */
  targetOptions: Readonly<Record<string, readonly string[]>>;
  /** Targets of the commands that take one (install, uninstall). */
  targets: Readonly<Record<string, readonly string[]>>;
  /** What an option's value is called in the help (`--out DIR`: DIR). */
  valueName(option: string): string;
}

const usage = (message: string): EngineError => new EngineError('USAGE', message);

/**
 * Checks `args` (what follows the command) and says whether help was asked
 * for; throws EngineError('USAGE') at the first mistake. Help wins over every
 * other mistake: someone who asks for it is finding out how to fix one.
 */
export function checkCommandLine(command: string, args: readonly string[], spec: CommandLineSpec): { help: boolean } {
  const { tokens } = parseArgs({ args: [...args], options: spec.options, strict: false, allowPositionals: true, tokens: true });
  const isHelp = (t: (typeof tokens)[number]): boolean => t.kind === 'option' && t.name === 'help';
  if (tokens.some(isHelp)) return { help: true };
  const tryHelp = `(try: ncfence ${command} --help)`;
  const positionals = tokens.filter((t) => t.kind === 'positional').map((t) => (t as { value: string }).value);
  const targets = spec.targets[command];
  if (targets) {
    const t = positionals[0];
    if (t === undefined) throw usage(`${command} needs a target: ${targets.join(', ')} ${tryHelp}`);
    if (!targets.includes(t)) throw usage(`"${t}" is not something ncfence can ${command}; the targets are ${targets.join(', ')}`);
    if (positionals.length > 1) throw usage(`${command} takes one target, got ${positionals.join(' ')}`);
  } else if (positionals.length > 0) {
    throw usage(`${command} takes no arguments, got ${positionals.join(' ')} ${tryHelp}`);
  }
  const where = targets ? `${command} ${positionals[0]}` : command;
  const seen = new Set<string>();
  for (const tok of tokens) {
    if (tok.kind !== 'option') continue;
    const known = spec.options[tok.name];
    if (!known) throw usage(`${tok.rawName} is not an option of ncfence ${tryHelp}`);
    if (tok.name === 'version') throw usage(`--version is not an option of ${command}; run ncfence --version`);
    if (known.type === 'boolean' && tok.value !== undefined) throw usage(`${tok.rawName} takes no value, got ${tok.rawName}=${tok.value}`);
    if (known.type === 'string') {
      const example = `${tok.rawName} ${spec.valueName(tok.name)}`;
      if (tok.value === undefined) throw usage(`${tok.rawName} needs a value: ${example}`);
      if (!tok.inlineValue && /^--?[a-z]/.test(tok.value) && spec.options[tok.value.replace(/^--?/, '').replace(/=.*/, '')]) {
        throw usage(`${tok.rawName} needs a value, got the option ${tok.value} instead: ${example} (a value that starts with "-": ${tok.rawName}=VALUE)`);
      }
    }
    if (seen.has(tok.name)) throw usage(`${tok.rawName} is given twice; give it once`);
    seen.add(tok.name);
    if (!spec.commandOptions[command]!.includes(tok.name)) throw usage(`${where} does not take ${tok.rawName} ${tryHelp}`);
    const only = spec.targetOptions[tok.name];
    if (targets && only && !only.includes(positionals[0]!)) throw usage(`${where} does not take ${tok.rawName} (it is for ${only.join(', ')})`);
  }
  return { help: false };
}
