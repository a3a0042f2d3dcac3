/**
 * The experiments of `ephemera bench`, named after the paper's figures: which workloads run, in
 * which storage modes, under which memory limit, which timings are compared, and what the paper
 * reported for the same comparison.
 */
import type { Mode } from './sandbox.js';
import type { Size, WorkloadInvocation, WorkloadName } from './workloads.js';
import { invocation, WORKLOADS } from './workloads.js';

const MB = 1024 * 1024;

/** The memory limit each workload runs under (paper: 150 MB for disk I/O, 64 MB for gzip). */
export const MEMORY: Readonly<Record<WorkloadName, number>> = {
  'diskio-seq': 150 * MB,
  'diskio-rand': 150 * MB,
  gzip: 64 * MB,
  image: 512 * MB,
  mapreduce: 512 * MB,
  mlinfer: 512 * MB,
  video: 512 * MB,
  factorial: 512 * MB,
};

/** A contender is a storage mode, or for Fig. 3 the page-cache file accessed through mmap. */
export type Contender = Mode | 'mmap';

export interface Cell {
  readonly id: string;
  /** Cells of one group do the same work, so their output digests must agree. */
  readonly group: string;
  /** How the group is shown in tables and plots. */
  readonly label: string;
  readonly contender: Contender;
  readonly mode: Mode;
  readonly invocation: WorkloadInvocation;
  readonly size: Size;
  readonly memory: number;
  /** Run once under strace for the I/O share (Table 3), not repeated. */
  readonly strace?: boolean;
}

export interface Metric {
  readonly key: string;
  readonly title: string;
}

/** A reduction the paper reports: `contender` against `baseline` on `metric` in `group`. */
export interface PaperClaim {
  readonly group: string;
  readonly metric: string;
  readonly contender: Contender;
  readonly baseline: Contender;
  readonly reductionPct: number;
}

export interface Experiment {
  readonly name: string;
  readonly title: string;
  readonly metrics: readonly Metric[];
  readonly claims: readonly PaperClaim[];
  cells(size: Size, modes: readonly Mode[]): Cell[];
}

function cellsFor(exp: string, group: string, label: string, workload: WorkloadName, extra: readonly string[], size: Size, contenders: readonly Contender[], memory = MEMORY[workload]): Cell[] {
  return contenders.map((contender) => {
    const mode: Mode = contender === 'mmap' ? 'overlay' : contender;
    const args = contender === 'mmap' ? [...extra, '--access', 'mmap'] : extra;
    return { id: `${exp}/${group}/${contender}`, group, label, contender, mode, invocation: invocation(workload, args), size, memory };
  });
}

const DISK_METRICS: readonly Metric[] = [
  { key: 'write_s', title: 'write latency (s)' },
  { key: 'read_s', title: 'read latency (s)' },
  { key: 'total_s', title: 'total latency (s)' },
];

const REALISTIC: readonly WorkloadName[] = ['image', 'mapreduce', 'mlinfer', 'video'];

function gzipSizes(size: Size): number[] {
  return size === 'tiny' ? [1, 2] : size === 'small' ? [1, 4] : [1, 2, 4, 8, 16];
}

export const EXPERIMENTS: Readonly<Record<string, Experiment>> = {
  fig3: {
    name: 'fig3',
    title: 'Fig. 3: random disk I/O on OverlayFS, tmpfs, mmap (and Ephemera), 150 MB limit',
    metrics: DISK_METRICS.slice(0, 2),
    claims: [
      { group: 'rand', metric: 'read_s', contender: 'tmpfs', baseline: 'overlay', reductionPct: 8 },
      { group: 'rand', metric: 'write_s', contender: 'tmpfs', baseline: 'overlay', reductionPct: 28 },
      { group: 'rand', metric: 'read_s', contender: 'mmap', baseline: 'overlay', reductionPct: 63 },
      { group: 'rand', metric: 'write_s', contender: 'mmap', baseline: 'overlay', reductionPct: 69 },
    ],
    cells: (size, modes) => cellsFor('fig3', 'rand', 'random disk I/O', 'diskio-rand', [], size, [...modes.filter((m) => m !== 'ephemera'), 'mmap', ...modes.filter((m) => m === 'ephemera')]),
  },
  fig10: {
    name: 'fig10',
    title: 'Fig. 10: sequential disk I/O (32 MB file, 8 KiB ops), 150 MB limit',
    metrics: DISK_METRICS,
    claims: [{ group: 'seq', metric: 'total_s', contender: 'ephemera', baseline: 'overlay', reductionPct: 55 }],
    cells: (size, modes) => cellsFor('fig10', 'seq', 'sequential disk I/O', 'diskio-seq', [], size, modes),
  },
  fig11: {
    name: 'fig11',
    title: 'Fig. 11: random disk I/O (32 MB file, 8 KiB ops), 150 MB limit',
    metrics: DISK_METRICS,
    claims: [{ group: 'rand', metric: 'total_s', contender: 'ephemera', baseline: 'overlay', reductionPct: 62 }],
    cells: (size, modes) => cellsFor('fig11', 'rand', 'random disk I/O', 'diskio-rand', [], size, modes),
  },
  fig12: {
    name: 'fig12',
    title: 'Fig. 12: gzip compression of 1-16 MB, 64 MB limit',
    metrics: [
      { key: 'disk_s', title: 'disk latency (s)' },
      { key: 'compress_s', title: 'compress latency (s)' },
    ],
    claims: [
      { group: 'gzip-16', metric: 'disk_s', contender: 'ephemera', baseline: 'overlay', reductionPct: 50 },
      { group: 'gzip-16', metric: 'compress_s', contender: 'ephemera', baseline: 'overlay', reductionPct: 81.8 },
    ],
    cells: (size, modes) => gzipSizes(size).flatMap((mb) => cellsFor('fig12', `gzip-${mb}`, `${mb} MB`, 'gzip', ['--mb', String(mb)], size, modes)),
  },
  fig13: {
    name: 'fig13',
    title: 'Fig. 13: realistic workloads (and the CPU-bound factorial), 512 MB limit',
    metrics: [{ key: 'total_s', title: 'latency (s)' }],
    claims: [
      ...(
        [
          ['image', 47.2, 27.3],
          ['mapreduce', 92.0, 88.5],
          ['mlinfer', 19.9, 13.9],
          ['video', 44.3, 25.1],
        ] as const
      ).flatMap(([group, vsOverlay, vsTmpfs]) => [
        { group, metric: 'total_s', contender: 'ephemera' as const, baseline: 'overlay' as const, reductionPct: vsOverlay },
        { group, metric: 'total_s', contender: 'ephemera' as const, baseline: 'tmpfs' as const, reductionPct: vsTmpfs },
      ]),
      { group: 'factorial', metric: 'total_s', contender: 'ephemera', baseline: 'overlay', reductionPct: -1.29 },
    ],
    cells: (size, modes) => [...REALISTIC, 'factorial' as const].flatMap((w) => cellsFor('fig13', w, WORKLOADS[w].title, w, [], size, modes)),
  },
  table3: {
    name: 'table3',
    title: 'Table 3: I/O intensity of every workload (overlay, t_k × p / (t_k + t_u))',
    metrics: [{ key: 'total_s', title: 'latency (s)' }],
    claims: [],
    cells: (size) =>
      (Object.keys(WORKLOADS) as WorkloadName[]).flatMap((w) => {
        const extra = w === 'gzip' ? ['--mb', String(gzipSizes(size).at(-1))] : [];
        const plain = cellsFor('table3', w, WORKLOADS[w].title, w, extra, size, ['overlay']);
        const traced = plain.map((c) => ({ ...c, id: `${c.id}/strace`, strace: true }));
        return [...plain, ...traced];
      }),
  },
};

/** The paper's Table 3 I/O intensities, in percent (gzip and the micro benchmark: "dynamic"). */
export const PAPER_INTENSITY: Readonly<Partial<Record<WorkloadName, number>>> = {
  'diskio-seq': 96.34,
  'diskio-rand': 94.23,
  image: 64.17,
  mapreduce: 87.84,
  mlinfer: 19.93,
  video: 62.12,
  factorial: 0,
};

/** `quick` (make demo): every comparison once at the small size; `all`: every figure and table. */
export const COMPOSITES: Readonly<Record<string, readonly string[]>> = {
  quick: ['fig10', 'fig11', 'fig12', 'fig13'],
  all: ['fig3', 'fig10', 'fig11', 'fig12', 'fig13', 'table3'],
};
