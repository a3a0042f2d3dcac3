/**
 * The workloads of the evaluation (workloads/*.py) and how each is invoked. The Python side owns
 * the work and its sizes; this side only names scripts and flags.
 */

export type WorkloadName = 'diskio-seq' | 'diskio-rand' | 'gzip' | 'image' | 'mapreduce' | 'mlinfer' | 'video' | 'factorial';
export type Size = 'tiny' | 'small' | 'full';

export const SIZES: readonly Size[] = ['tiny', 'small', 'full'];

export interface WorkloadInvocation {
  readonly workload: WorkloadName;
  /** Script file name in workloads/. */
  readonly script: string;
  /** Flags after `--scratch DIR --size SIZE`. */
  readonly args: readonly string[];
}

/** `fileIo`: the workload reads and writes files in its scratch directory (factorial is the CPU-only control). */
export const WORKLOADS: Readonly<Record<WorkloadName, { script: string; args: readonly string[]; title: string; fileIo: boolean }>> = {
  'diskio-seq': { script: 'diskio.py', args: ['--pattern', 'seq'], title: 'Sequential disk I/O', fileIo: true },
  'diskio-rand': { script: 'diskio.py', args: ['--pattern', 'rand'], title: 'Random disk I/O', fileIo: true },
  gzip: { script: 'gzipc.py', args: [], title: 'Gzip compression', fileIo: true },
  image: { script: 'image.py', args: [], title: 'Image processing', fileIo: true },
  mapreduce: { script: 'mapreduce.py', args: [], title: 'MapReduce', fileIo: true },
  mlinfer: { script: 'mlinfer.py', args: [], title: 'ML inference', fileIo: true },
  video: { script: 'video.py', args: [], title: 'Video processing', fileIo: true },
  factorial: { script: 'factorial.py', args: [], title: 'Large integer factorial', fileIo: false },
};

export const WORKLOAD_NAMES = Object.keys(WORKLOADS) as WorkloadName[];

export function invocation(workload: WorkloadName, extra: readonly string[] = []): WorkloadInvocation {
  const w = WORKLOADS[workload];
  return { workload, script: w.script, args: [...w.args, ...extra] };
}

/** The command a sandbox runs, given where workloads/ and the scratch dir are inside it. */
export function workloadArgv(python: string, workloadsDir: string, inv: WorkloadInvocation, scratch: string, size: Size): string[] {
  return [python, `${workloadsDir}/${inv.script}`, '--scratch', scratch, '--size', size, ...inv.args];
}
