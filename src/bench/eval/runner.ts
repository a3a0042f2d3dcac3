/**
 * Runs the cells of an experiment, repeated and interleaved (every cell once per round, so slow
 * drift of the machine spreads over all contenders instead of favouring one).
 */
import type { Cell } from './experiments.js';
import { Progress } from '../progress.js';
import type { FunctionSandbox, RunOutcome } from './sandbox.js';

export interface Sample {
  readonly cell: Cell;
  readonly repeat: number;
  readonly outcome: RunOutcome;
}

export interface RunOptions {
  readonly repeats: number;
  readonly cpuset: string;
  readonly timeoutMs: number;
  readonly progress?: Progress;
}

export async function runCells(sandbox: FunctionSandbox, cells: readonly Cell[], o: RunOptions): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let repeat = 0; repeat < o.repeats; repeat++) {
    for (const cell of cells) {
      // strace inflates times; one traced run gives the syscall shares, which is all it is for.
      if (cell.strace === true && repeat > 0) continue;
      const what = `${cell.id} #${repeat + 1}`;
      o.progress?.start(what);
      const outcome = await sandbox.run({
        invocation: cell.invocation,
        size: cell.size,
        mode: cell.mode,
        memory: cell.memory,
        cpuset: o.cpuset,
        timeoutMs: o.timeoutMs,
        ...(cell.strace === true ? { strace: true } : {}),
      });
      samples.push({ cell, repeat, outcome });
      const result = outcome.ok ? `${(outcome.workload?.timings['total_s'] ?? 0).toFixed(3)}s` : (outcome.error ?? 'failed');
      o.progress?.finish(what, result);
      if (!outcome.ok && !outcome.oomKilled) o.progress?.note(`  ${cell.id}: ${outcome.error ?? 'failed'}${outcome.stderrTail !== '' ? `\n    ${outcome.stderrTail.split('\n').join('\n    ')}` : ''}`);
    }
  }
  return samples;
}

/** How many runs {@link runCells} will make. */
export function runCount(cells: readonly Cell[], repeats: number): number {
  return cells.reduce((n, c) => n + (c.strace === true ? 1 : repeats), 0);
}
