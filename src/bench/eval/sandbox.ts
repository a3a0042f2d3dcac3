/**
 * Where one function invocation runs, and the storage under its scratch directory.
 *
 * A {@link FunctionSandbox} runs a workload under a memory limit and a CPU set in one of three
 * storage modes and returns what the workload and the launcher (workloads/launch.py) printed.
 * The Docker sandbox is the evaluation proper; the cgroup sandbox is the fallback where no Docker
 * engine can run.
 */
import type { Size, WorkloadInvocation } from './workloads.js';

export type Mode = 'overlay' | 'tmpfs' | 'ephemera';
export const MODES: readonly Mode[] = ['overlay', 'tmpfs', 'ephemera'];

export interface RunRequest {
  readonly invocation: WorkloadInvocation;
  readonly size: Size;
  readonly mode: Mode;
  /** Memory limit in bytes (no swap). */
  readonly memory: number;
  readonly cpuset: string;
  /** Trace the measured phases with `strace -f -c` and return its per-syscall table. */
  readonly strace?: boolean;
  readonly timeoutMs: number;
}

/** What workloads/launch.py reports about the run. */
export interface LaunchReport {
  readonly exit: number;
  readonly wall_s: number;
  readonly utime_s: number;
  readonly stime_s: number;
  readonly maxrss_kb: number;
  readonly strace?: Record<string, { seconds: number; calls: number }>;
  readonly daemon?: Record<string, unknown> | null;
}

/** What the workload itself reports (workloads/contract.py). */
export interface WorkloadReport {
  readonly workload: string;
  readonly params: Record<string, unknown>;
  readonly timings: Record<string, number>;
  readonly setup_s: number;
  /** CPU seconds of the measured phases (the process and the children it waited for). */
  readonly cpu?: { readonly utime_s: number; readonly stime_s: number };
  readonly digest: string;
}

export interface RunOutcome {
  readonly ok: boolean;
  readonly exitCode: number;
  readonly oomKilled: boolean;
  readonly timedOut: boolean;
  readonly wallMs: number;
  readonly workload: WorkloadReport | null;
  readonly launch: LaunchReport | null;
  /** Why the run failed, in one line, when it did. */
  readonly error: string | null;
  readonly stderrTail: string;
}

export interface FunctionSandbox {
  readonly kind: 'docker' | 'cgroup';
  /** One line: the engine, its storage driver and so on. */
  readonly description: string;
  /** Modes this sandbox can run now, and for the others why not. */
  availability(): Promise<Record<Mode, string | null>>;
  run(req: RunRequest): Promise<RunOutcome>;
}

/** Reads the two JSON lines the workload and the launcher print, from a run's stdout. */
export function parseRunOutput(stdout: string): { workload: WorkloadReport | null; launch: LaunchReport | null } {
  let workload: WorkloadReport | null = null;
  let launch: LaunchReport | null = null;
  for (const line of stdout.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(t);
    } catch {
      continue;
    }
    if (typeof obj !== 'object' || obj === null) continue;
    const o = obj as Record<string, unknown>;
    if (typeof o['launch'] === 'object' && o['launch'] !== null) launch = o['launch'] as LaunchReport;
    else if (typeof o['workload'] === 'string' && typeof o['digest'] === 'string' && typeof o['timings'] === 'object') workload = o as unknown as WorkloadReport;
  }
  return { workload, launch };
}

/** Turns raw results of a run into an outcome with a one-line error when something is off. */
export function outcomeOf(raw: { exitCode: number; oomKilled: boolean; timedOut: boolean; wallMs: number; stdout: string; stderr: string }): RunOutcome {
  const { workload, launch } = parseRunOutput(raw.stdout);
  const stderrTail = raw.stderr.trim().split('\n').slice(-6).join('\n');
  let error: string | null = null;
  if (raw.oomKilled) error = 'OOM-killed';
  else if (raw.timedOut) error = 'timed out';
  else if (raw.exitCode !== 0) error = `exit status ${raw.exitCode}: ${stderrTail.split('\n').pop() ?? ''}`;
  else if (workload === null) error = 'the workload printed no result line';
  return { ok: error === null, exitCode: raw.exitCode, oomKilled: raw.oomKilled, timedOut: raw.timedOut, wallMs: raw.wallMs, workload, launch, error, stderrTail };
}
