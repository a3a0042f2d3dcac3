/**
 * `ephemera watchdog`: the OOM guard watchdog (src/guard/) for a cgroup someone else created, run
 * from outside it. `ephemera run --memory` runs the same watchdog itself; this command is for a
 * cgroup created by hand or by a test harness.
 */
import { EphemeraError } from '../core/errors.js';
import { GuardWatchdog, cgroupGuardKnobs, cgroupVersionOf } from '../guard/watchdog.js';
import { flagPositiveInt, parseFlags } from './flags.js';

export const WATCHDOG_USAGE = `usage: ephemera watchdog CGROUP_DIR [--stall-ms MS] [--poll-ms MS]

Watches the memory cgroup CGROUP_DIR (v1 or v2) from outside it, until the directory is removed
or a signal ends the watch. When the instance stays stalled at its limit with ephemerad's OOM
guard set for longer than --stall-ms (default 1000), it first raises the limit a little for a
moment (cgroup v1, where a stall is a freeze) so that ephemerad can evict, and if the stall goes
on it lifts the guard: the kernel's OOM handling applies. Each intervention is a line on stderr.

flags:
  --stall-ms MS   how long a stall may last before the watchdog acts (default 1000)
  --poll-ms MS    sampling period (default 50)`;

const CONTEXT = 'ephemera watchdog';

export async function watchdogMain(argv: readonly string[]): Promise<number> {
  const parsed = parseFlags(argv, { 'stall-ms': { value: true }, 'poll-ms': { value: true } }, CONTEXT, 1);
  const dir = parsed.positionals[0];
  if (dir === undefined || !dir.startsWith('/')) {
    throw new EphemeraError('EPH_CLI_USAGE', `${CONTEXT}: give the cgroup's absolute directory, e.g. /sys/fs/cgroup/memory/ephemera/fn1; see \`ephemera help watchdog\``);
  }
  const version = await cgroupVersionOf(dir);
  const w = new GuardWatchdog(cgroupGuardKnobs(dir, version), {
    stallMs: flagPositiveInt(parsed, 'stall-ms', CONTEXT, 1000),
    pollMs: flagPositiveInt(parsed, 'poll-ms', CONTEXT, 50),
    onEvent: (e) => process.stderr.write(`ephemera watchdog: ${e.message}\n`),
  });
  const stop = (): void => void w.stop();
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, stop);
  // The watchdog's timer does not hold the process: this interval does, until the watch ends.
  const hold = setInterval(() => undefined, 60_000);
  w.start();
  await w.ended;
  clearInterval(hold);
  const c = w.counts;
  process.stderr.write(`ephemera watchdog: ${dir}: done (${String(c.graces)} graces, ${String(c.lifts)} lifts, ${String(c.restores)} restores, ${String(c.errors)} errors)\n`);
  return 0;
}
