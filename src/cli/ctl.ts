/**
 * `ephemera ctl`: talk to a running ephemerad over its control socket (docs/PROTOCOL.md).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';
import { formatSize, parseSize } from '../core/size.js';
import { DaemonClient, type DaemonEvent, type DaemonStats } from '../daemon-client/client.js';
import { flagSet, flagValue, parseFlags } from './flags.js';

export const CTL_USAGE = `usage: ephemera ctl SOCKET COMMAND [ARG] [--json] [--timeout MS]

Sends one control request to a running ephemerad and prints the answer. SOCKET is the daemon's
control.sock, or its run directory (ephemerad --rundir DIR).

commands:
  stats               limit, usage, budget, file bytes in memory and on disk, evictions, counters
  shrink SIZE         evict until the instance fits in SIZE (e.g. 96M); answers once the memory
                      is really free, so the cgroup limit can be lowered to SIZE afterwards
  grow SIZE           tell the daemon its cgroup limit was raised to SIZE
  subscribe [EVENT]   print events (shortfall, or guard: the OOM guard a containerised
                      daemon asks its host to set; default: shortfall) until interrupted or
                      --count N arrived
  shutdown [MODE]     end the instance; MODE is writeback (default: in-memory files go to their
                      paths on disk) or discard

flags:
  --json              print the daemon's result as JSON instead of a table
  --timeout MS        fail when the daemon does not answer within MS milliseconds (default 30000;
                      0 waits forever)
  --count N           subscribe: stop after N events`;

const FLAGS = {
  json: { value: false },
  timeout: { value: true },
  count: { value: true },
} as const;

const CONTEXT = 'ephemera ctl';

function usage(message: string): EphemeraError {
  return new EphemeraError('EPH_CLI_USAGE', `${CONTEXT}: ${message}; see \`ephemera help ctl\``);
}

function wholeNumber(text: string | undefined, flag: string, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw usage(`${flag} must be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** DIR/control.sock when given a run directory, else the path itself. */
function socketPath(arg: string): string {
  try {
    if (statSync(arg).isDirectory()) return join(arg, 'control.sock');
  } catch {
    // Not there: let connect report it with the path the user gave.
  }
  return arg;
}

function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** The `stats` result as aligned `name  value` lines. */
export function formatStats(s: DaemonStats): string {
  const rows: Array<[string, string]> = [
    ['limit', s.limit === null ? 'unlimited' : formatSize(s.limit)],
    ['usage', s.usage === null ? 'n/a (no cgroup)' : formatSize(s.usage)],
    ['budget', formatSize(s.budget)],
    ['headroom', formatSize(s.headroom)],
    ['files in memory', `${count(s.files_in_memory)} (peak ${count(s.files_in_memory_peak)})`],
    ['bytes in memory', `${formatSize(s.file_bytes_memory)} (peak ${formatSize(s.bytes_in_memory_peak)})`],
    ['bytes on disk', formatSize(s.file_bytes_disk)],
    ['evictions', `${count(s.evictions)} (${formatSize(s.bytes_evicted)})`],
    ['fast reads', count(s.fast_reads)],
    ['fast writes', count(s.fast_writes)],
    ['cgroup', s.cgroup === null ? 'none' : `${s.cgroup} (v${String(s.cgroup_version)})`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

function formatEvent(e: DaemonEvent): string {
  const fields = Object.entries(e)
    .filter(([k]) => k !== 'event' && k !== 'v')
    .map(([k, v]) => `${k}=${typeof v === 'number' && k !== 'count' && v >= 1024 ? formatSize(v) : JSON.stringify(v)}`);
  return `${new Date().toISOString()} ${e.event} ${fields.join(' ')}`;
}

/**
 * Runs `ephemera ctl`.
 * @param argv the arguments after `ctl`
 * @param write where output goes @default process.stdout
 * @returns the exit status
 * @throws {EphemeraError} `EPH_CLI_USAGE`, `EPH_CLI_BAD_SIZE`, or the client's `EPH_DAEMON_*` codes
 */
export async function ctlMain(argv: readonly string[], write: (text: string) => void = (t) => process.stdout.write(t)): Promise<number> {
  const parsed = parseFlags(argv, FLAGS, CONTEXT, 3);
  if (parsed.rest !== undefined) throw usage('`--` is not used by ctl');
  const [sock, command, arg] = parsed.positionals;
  if (sock === undefined) throw usage('missing SOCKET (the daemon\'s control.sock or run directory)');
  if (command === undefined) throw usage('missing COMMAND: one of stats, shrink, grow, subscribe, shutdown');
  const json = flagSet(parsed, 'json');
  const timeoutMs = wholeNumber(flagValue(parsed, 'timeout'), '--timeout', 30_000);
  const maxEvents = flagValue(parsed, 'count') === undefined ? undefined : wholeNumber(flagValue(parsed, 'count'), '--count', 0);

  const needArg = (what: string): string => {
    if (arg === undefined) throw usage(`${command} needs ${what}`);
    return arg;
  };
  const noArg = (): void => {
    if (arg !== undefined) throw usage(`${command} takes no argument, got ${JSON.stringify(arg)}`);
  };
  // Validate everything before connecting.
  let run: (c: DaemonClient) => Promise<number>;
  const printStats = (s: DaemonStats): number => {
    write(json ? `${JSON.stringify(s, null, 2)}\n` : `${formatStats(s)}\n`);
    return 0;
  };
  switch (command) {
    case 'stats':
      noArg();
      run = async (c) => printStats(await c.stats());
      break;
    case 'shrink':
    case 'grow': {
      const bytes = parseSize(needArg('a SIZE such as 96M'), `${CONTEXT} ${command}`);
      run = async (c) => printStats(command === 'shrink' ? await c.shrink(bytes) : await c.grow(bytes));
      break;
    }
    case 'shutdown': {
      const mode = arg ?? 'writeback';
      if (mode !== 'writeback' && mode !== 'discard') throw usage(`shutdown MODE must be writeback or discard, got ${JSON.stringify(mode)}`);
      run = async (c) => printStats(await c.shutdown(mode));
      break;
    }
    case 'subscribe': {
      const events = [arg ?? 'shortfall'];
      run = (c) => subscribe(c, events, json, maxEvents, write);
      break;
    }
    default:
      throw usage(`unknown command ${JSON.stringify(command)}; use one of stats, shrink, grow, subscribe, shutdown`);
  }
  if (command !== 'subscribe' && maxEvents !== undefined) throw usage('--count only applies to subscribe');

  const client = await DaemonClient.connect(socketPath(sock), { requestTimeoutMs: command === 'subscribe' ? 0 : timeoutMs });
  try {
    return await run(client);
  } finally {
    client.close();
  }
}

async function subscribe(c: DaemonClient, events: string[], json: boolean, maxEvents: number | undefined, write: (t: string) => void): Promise<number> {
  let seen = 0;
  let finish: (status: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));
  await c.subscribe(events, (e) => {
    write(json ? `${JSON.stringify(e)}\n` : `${formatEvent(e)}\n`);
    seen++;
    if (maxEvents !== undefined && seen >= maxEvents) finish(0);
  });
  if (maxEvents === 0) return 0;
  if (!json) write(`subscribed to ${events.join(', ')} on ${c.path}; Ctrl-C to stop\n`);
  const onSignal = (): void => finish(0);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // The daemon going away ends the subscription; a stats poll notices a closed connection.
  const watch = setInterval(() => {
    c.request('stats').catch((err: unknown) => {
      process.stderr.write(`ephemera ctl: subscription ended: ${(err as Error).message}\n`);
      finish(1);
    });
  }, 1000);
  try {
    return await done;
  } finally {
    clearInterval(watch);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
