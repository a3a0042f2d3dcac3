/**
 * The guard sentinel's wire lines and its record of the guards it holds, without I/O.
 *
 * The sentinel (sentinel-main.ts) is a small process the node agent starts with a pipe on its
 * stdin. Before the agent sets a container's OOM guard it tells the sentinel the cgroup (`hold`);
 * after it lifted the guard, or let go of the container, it says so (`release`). When the pipe
 * ends (the agent exited, even by SIGKILL) the sentinel lifts every guard it holds: a guard that
 * nobody watches could freeze its container for good. One JSON object per line (docs/PROTOCOL.md,
 * "Guard sentinel").
 */
import { EphemeraError } from '../core/errors.js';

export type SentinelCommand = { readonly op: 'hold'; readonly dir: string; readonly version: 1 | 2 } | { readonly op: 'release'; readonly dir: string };

/** One line of the pipe (without its newline). */
export function formatCommand(c: SentinelCommand): string {
  return `${JSON.stringify(c)}\n`;
}

/**
 * Parses one line of the pipe.
 * @throws EphemeraError `EPH_GUARD_SENTINEL` for a line that is not a command
 */
export function parseCommand(line: string): SentinelCommand {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    v = undefined;
  }
  const bad = (): EphemeraError =>
    new EphemeraError('EPH_GUARD_SENTINEL', `the guard sentinel got ${JSON.stringify(line.slice(0, 200))}, not {"op":"hold","dir":ABSOLUTE_PATH,"version":1|2} or {"op":"release","dir":ABSOLUTE_PATH}; the node agent and the sentinel must be the same build`);
  if (typeof v !== 'object' || v === null) throw bad();
  const r = v as Record<string, unknown>;
  const dir = r['dir'];
  if (typeof dir !== 'string' || !dir.startsWith('/') || dir.includes('\0')) throw bad();
  if (r['op'] === 'release') return { op: 'release', dir };
  if (r['op'] === 'hold' && (r['version'] === 1 || r['version'] === 2)) return { op: 'hold', dir, version: r['version'] };
  throw bad();
}

/** The guards held, by cgroup directory: the record a command updates. */
export function applyCommand(held: Map<string, 1 | 2>, c: SentinelCommand): void {
  if (c.op === 'hold') held.set(c.dir, c.version);
  else held.delete(c.dir);
}
