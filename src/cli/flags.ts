/**
 * A small, strict command-line flag parser: every flag is declared, nothing unknown is ignored.
 *
 * Accepts `--name VALUE`, `--name=VALUE` and boolean `--name`. A lone `--` ends the flags; what
 * follows is returned untouched as `rest`. Positional arguments before `--` are returned in
 * `positionals`, in order, when the spec allows them.
 */
import { EphemeraError } from '../core/errors.js';

export interface FlagSpec {
  /** Takes a value (`--budget 64M`) rather than being a switch (`--keep`). */
  readonly value: boolean;
  /** May be given more than once (`--root A --root B`). */
  readonly repeatable?: boolean;
}

export interface ParsedFlags {
  /** Values by flag name; a switch is recorded as `''`. */
  readonly values: ReadonlyMap<string, readonly string[]>;
  readonly positionals: readonly string[];
  /** Everything after `--`, or `undefined` when there was no `--`. */
  readonly rest: readonly string[] | undefined;
}

/**
 * @param argv the arguments after the subcommand
 * @param spec the flags this subcommand knows, by name without `--`
 * @param context the subcommand, named in error messages (e.g. `ephemera run`)
 * @param maxPositionals how many arguments before `--` are allowed @default 0
 * @throws {EphemeraError} `EPH_CLI_USAGE` for an unknown flag, a missing or unexpected value,
 *   a repeated flag that is not repeatable, or too many positional arguments
 */
export function parseFlags(
  argv: readonly string[],
  spec: Readonly<Record<string, FlagSpec>>,
  context: string,
  maxPositionals = 0,
): ParsedFlags {
  const values = new Map<string, string[]>();
  const positionals: string[] = [];
  const usage = (msg: string): EphemeraError =>
    new EphemeraError('EPH_CLI_USAGE', `${context}: ${msg}; see \`ephemera help ${context.replace(/^ephemera /, '')}\``);

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') return { values, positionals, rest: argv.slice(i + 1) };
    if (!arg.startsWith('-') || arg === '-') {
      if (positionals.length >= maxPositionals) {
        throw usage(
          maxPositionals === 0
            ? `unexpected argument ${JSON.stringify(arg)}; put the command after \`--\``
            : `unexpected extra argument ${JSON.stringify(arg)}`,
        );
      }
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw usage(`unknown flag ${JSON.stringify(arg)} (flags are spelled --name)`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const flag = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (flag === undefined) {
      const known = Object.keys(spec).map((k) => `--${k}`).join(', ');
      throw usage(`unknown flag ${JSON.stringify(`--${name}`)}; known flags: ${known}`);
    }
    let value: string;
    if (flag.value) {
      if (eq >= 0) {
        value = arg.slice(eq + 1);
      } else {
        const next = argv[i + 1];
        if (next === undefined || next === '--') throw usage(`--${name} needs a value`);
        value = next;
        i++;
      }
    } else {
      if (eq >= 0) throw usage(`--${name} takes no value, got ${JSON.stringify(arg.slice(eq + 1))}`);
      value = '';
    }
    const list = values.get(name) ?? [];
    if (list.length > 0 && flag.repeatable !== true) {
      throw usage(`--${name} given twice (${JSON.stringify(list[0])} and ${JSON.stringify(value)}); give it once`);
    }
    list.push(value);
    values.set(name, list);
  }
  return { values, positionals, rest: undefined };
}

/** The single value of a non-repeatable flag, or `undefined`. */
export function flagValue(parsed: ParsedFlags, name: string): string | undefined {
  return parsed.values.get(name)?.[0];
}

/** Whether a switch was given. */
export function flagSet(parsed: ParsedFlags, name: string): boolean {
  return parsed.values.has(name);
}

/**
 * A whole number of zero or more (0 often means "no limit"), else the fallback when absent.
 * @throws {EphemeraError} `EPH_CLI_USAGE` naming the flag and the value received
 */
export function flagCount(parsed: ParsedFlags, name: string, context: string, fallback: number): number {
  const v = flagValue(parsed, name);
  if (v === undefined) return fallback;
  if (!/^(0|[1-9]\d*)$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new EphemeraError('EPH_CLI_USAGE', `${context}: --${name} must be a whole number (0 or more), got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/**
 * The value of a flag that must be a positive integer (a count), or `fallback` when absent.
 *
 * @throws {EphemeraError} `EPH_CLI_USAGE` naming the flag and the value
 */
export function flagPositiveInt(parsed: ParsedFlags, name: string, context: string, fallback: number): number {
  const v = flagValue(parsed, name);
  if (v === undefined) return fallback;
  if (!/^[1-9]\d*$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new EphemeraError('EPH_CLI_USAGE', `${context}: --${name} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return Number(v);
}

/**
 * A CPU count for Docker's `--cpus` (NanoCpus): a decimal from 0.01 up to the cores of this
 * machine, which is what the engine itself accepts (it refuses more than the host has at create).
 */
export function flagCpus(parsed: ParsedFlags, name: string, context: string, cores: number): number | undefined {
  const v = flagValue(parsed, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || n < 0.01 || n > cores) {
    throw new EphemeraError('EPH_CLI_USAGE', `${context}: --${name} must be a number of CPUs from 0.01 to ${String(cores)} (this machine's cores), got ${JSON.stringify(v)}`);
  }
  return n;
}
