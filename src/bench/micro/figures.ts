/**
 * The three micro-benchmark sweeps of the paper (§5.2, Figs. 7-9) and the targets of issue 3.
 * Pure data: what to run at each point and what to compare it with.
 */

export type FigureId = 'fig7' | 'fig8' | 'fig9';
export const FIGURES: readonly FigureId[] = ['fig7', 'fig8', 'fig9'];

const MiB = 1024 * 1024;

/** One point of a sweep: one invocation of the micro benchmark under one memory limit. */
export interface Point {
  /** The x-axis value as printed, e.g. `64 MiB`. */
  readonly label: string;
  /** cgroup memory limit in bytes, the same for every contender. */
  readonly limit: number;
  /** Size of each of the two files. */
  readonly fileSize: number;
  /** Random 8 KiB operations after the files are written. */
  readonly ops: number;
  /** What the paper reports at this point (latency change of Ephemera vs OverlayFS). */
  readonly paper: string;
  /** Issue 3's required speed-up of ephemera over disk here, if any (disk time / ephemera time). */
  readonly minSpeedup?: number;
}

export interface Figure {
  readonly id: FigureId;
  readonly title: string;
  /** The swept quantity, the first column's heading. */
  readonly axis: string;
  readonly points: readonly Point[];
}

export interface FigureParams {
  /** Operations per point for figs. 7 and 8 (fig. 9 sweeps them). */
  readonly ops: number;
}

export const DEFAULT_OPS = 100_000;

/** The sweep for one figure. */
export function figure(id: FigureId, params: FigureParams = { ops: DEFAULT_OPS }): Figure {
  switch (id) {
    case 'fig7': {
      const paper: Record<number, string> = { 32: '≈ disk (files go to disk)', 64: '−92.67%', 128: '−54.73%', 256: 'n/a' };
      const target: Record<number, number> = { 64: 1.5, 128: 2.5 };
      return {
        id,
        title: `Fig. 7: impact of the memory limit (2 × 32 MiB files, ${params.ops} random 8 KiB ops)`,
        axis: 'memory limit',
        points: [32, 64, 128, 256].map((mb) => ({
          label: `${mb} MiB`,
          limit: mb * MiB,
          fileSize: 32 * MiB,
          ops: params.ops,
          paper: paper[mb] ?? 'n/a',
          ...(target[mb] === undefined ? {} : { minSpeedup: target[mb] }),
        })),
      };
    }
    case 'fig8': {
      const paper: Record<number, string> = {
        32: 'all fit: large gain',
        64: 'all fit: large gain',
        96: 'all fit: large gain',
        128: 'up to −89.5% (some files fit)',
        160: '−41.72% (most of one file fits)',
      };
      return {
        id,
        title: `Fig. 8: impact of file usage (two files, 150 MiB limit, ${params.ops} random 8 KiB ops)`,
        axis: 'file usage',
        points: [32, 64, 96, 128, 160].map((mb) => ({
          label: `${mb} MiB`,
          limit: 150 * MiB,
          fileSize: (mb / 2) * MiB,
          ops: params.ops,
          paper: paper[mb] ?? 'n/a',
        })),
      };
    }
    case 'fig9': {
      const paper: Record<number, string> = { 500: '−28.03%', 5000: 'between', 50000: 'between', 500000: 'up to −53.04%' };
      return {
        id,
        title: 'Fig. 9: impact of the number of operations (2 × 32 MiB files, 128 MiB limit, 8 KiB each)',
        axis: 'operations',
        points: [500, 5000, 50000, 500000].map((n) => ({
          label: n.toLocaleString('en-US'),
          limit: 128 * MiB,
          fileSize: 32 * MiB,
          ops: n,
          paper: paper[n] ?? 'n/a',
        })),
      };
    }
  }
}

/**
 * The points of `fig` named in `wanted` by the number of their label (`32` for `32 MiB`, `5000` for
 * `5,000`), in the figure's order; all points when `wanted` is undefined.
 * @throws {Error} naming the valid values when one of `wanted` is not a point of the figure
 */
export function selectPoints(fig: Figure, wanted: readonly string[] | undefined): Figure {
  if (wanted === undefined) return fig;
  const key = (label: string): string => label.replace(/[^0-9]/g, '');
  const keys = fig.points.map((p) => key(p.label));
  for (const w of wanted) {
    if (!keys.includes(key(w)) || key(w) === '') throw new Error(`${fig.id} has no point ${JSON.stringify(w)}; its points are ${keys.join(', ')}`);
  }
  return { ...fig, points: fig.points.filter((p) => wanted.some((w) => key(w) === key(p.label))) };
}

/** Issue 3: ephemera may never be slower than disk by more than this fraction, at any point. */
export const MAX_SLOWDOWN = 0.05;
