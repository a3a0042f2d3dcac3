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

export const WORKLOADS: Readonly<Record<WorkloadName, { script: string; args: readonly string[]; title: string }>> = {
  'diskio-seq': { script: 'diskio.py', args: ['--pattern', 'seq'], title: 'Sequential disk I/O' },
  'diskio-rand': { script: 'diskio.py', args: ['--pattern', 'rand'], title: 'Random disk I/O' },
  gzip: { script: 'gzipc.py', args: [], title: 'Gzip compression' },
  image: { script: 'image.py', args: [], title: 'Image processing' },
  mapreduce: { script: 'mapreduce.py', args: [], title: 'MapReduce' },
  mlinfer: { script: 'mlinfer.py', args: [], title: 'ML inference' },
  video: { script: 'video.py', args: [], title: 'Video processing' },
  factorial: { script: 'factorial.py', args: [], title: 'Large integer factorial' },
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
