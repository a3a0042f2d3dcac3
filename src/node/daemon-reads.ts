/**
 * The daemon's counters and its peaks window (closed, the next opened) as the node agent reads
 * them after every activation and for a baseline: one `stats-peaks` request, or `stats` and
 * `peaks` side by side for a daemon older than that op (docs/PROTOCOL.md, `stats-peaks`).
 */
import { isEphemeraError } from '../core/errors.js';
import type { DaemonPeaks, DaemonStats } from '../daemon-client/client.js';

/** What the reads need of a daemon's client. */
export interface StatsPeaksDaemon {
  statsPeaks(options: { readonly reset?: boolean }): Promise<{ stats: DaemonStats; peaks: DaemonPeaks }>;
  stats(): Promise<DaemonStats>;
  peaks(options: { readonly reset?: boolean }): Promise<DaemonPeaks>;
}

/** Per daemon: false once it refused `stats-peaks`, and it is asked the two apart from then on. */
export interface StatsPeaksState {
  statsPeaks: boolean;
}

/** Counters, then the window's peaks with a reset. Each side settles on its own, as two requests would. */
export async function readStatsAndPeaks(daemon: StatsPeaksDaemon, state: StatsPeaksState): Promise<[PromiseSettledResult<DaemonStats>, PromiseSettledResult<DaemonPeaks>]> {
  if (state.statsPeaks) {
    try {
      const both = await daemon.statsPeaks({ reset: true });
      return [{ status: 'fulfilled', value: both.stats }, { status: 'fulfilled', value: both.peaks }];
    } catch (err) {
      if (!isEphemeraError(err, 'EPH_DAEMON_REPLY') || err.detail['daemonCode'] !== 'EPH_UNKNOWN_OP') {
        return [{ status: 'rejected', reason: err }, { status: 'rejected', reason: err }];
      }
      state.statsPeaks = false;
    }
  }
  return Promise.allSettled([daemon.stats(), daemon.peaks({ reset: true })]);
}
