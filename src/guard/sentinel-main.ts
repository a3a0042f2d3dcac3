/**
 * The guard sentinel process: `node build/js/guard/sentinel-main.js`, started by the node agent
 * (spawnGuardSentinel in sentinel.ts) with a pipe on its stdin. It reads the agent's `hold` and
 * `release` lines (sentinel-core.ts) and, when the pipe ends or on SIGTERM/SIGINT, lifts the OOM
 * guard of every cgroup it still holds (v1 `oom_kill_disable=0`, v2 `memory.high=max`) and exits.
 * Lifting a v1 guard wakes the tasks waiting under OOM, so a container stalled at that instant is
 * killed by the kernel at once instead of staying frozen.
 *
 * It prints one ready line on stdout; what it lifted goes to stderr (the agent's log).
 */
import { createInterface } from 'node:readline';

import { isEphemeraError } from '../core/errors.js';
import { cgroupGuardArm } from './arm.js';
import { applyCommand, parseCommand } from './sentinel-core.js';

const held = new Map<string, 1 | 2>();
let ending = false;

function say(msg: string): void {
  try {
    process.stderr.write(`guard sentinel ${String(process.pid)}: ${msg}\n`);
  } catch {
    // Nobody reads the log any more: the lifting is what matters.
  }
}

async function liftAll(why: string): Promise<void> {
  if (ending) return;
  ending = true;
  const lifted: string[] = [];
  await Promise.all(
    [...held].map(async ([dir, version]) => {
      try {
        await cgroupGuardArm(dir, version).disarm();
        lifted.push(dir);
      } catch (err) {
        // A cgroup that went away with its container has no guard left to lift.
        if (!(isEphemeraError(err, 'EPH_CGROUP_IO') && /ENOENT|ENODEV/.test(err.message))) say(`lifting the OOM guard of ${dir}: ${(err as Error).message}`);
      }
    }),
  );
  if (lifted.length > 0) say(`${why}: lifted the OOM guard of ${String(lifted.length)} container cgroup(s) nobody watches any more: ${lifted.join(', ')}`);
  process.exit(0);
}

process.on('SIGTERM', () => void liftAll('SIGTERM'));
process.on('SIGINT', () => void liftAll('SIGINT'));
const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (line === '') return;
  try {
    applyCommand(held, parseCommand(line));
  } catch (err) {
    say((err as Error).message);
  }
});
lines.on('close', () => void liftAll('the node agent is gone (its pipe ended)'));
process.stdin.on('error', () => void liftAll('the node agent is gone (its pipe failed)'));
process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
