// test-tier: unit
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { EphemeraError } from '../core/errors.js';
import type { DaemonPeaks, DaemonStats } from '../daemon-client/client.js';
import { readStatsAndPeaks, type StatsPeaksDaemon } from './daemon-reads.js';

const STATS = { fast_reads: 1 } as unknown as DaemonStats;
const PEAKS = { file_bytes_peak: 2 } as unknown as DaemonPeaks;

function fakeDaemon(combined: 'ok' | 'unknown' | 'down', peaks: 'ok' | 'fails' = 'ok'): StatsPeaksDaemon & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    statsPeaks: (o) => {
      calls.push(`stats-peaks reset=${String(o.reset)}`);
      if (combined === 'ok') return Promise.resolve({ stats: STATS, peaks: PEAKS });
      if (combined === 'unknown') return Promise.reject(new EphemeraError('EPH_DAEMON_REPLY', "daemon refused 'stats-peaks': EPH_UNKNOWN_OP", { detail: { daemonCode: 'EPH_UNKNOWN_OP' } }));
      return Promise.reject(new EphemeraError('EPH_DAEMON_CLOSED', 'the daemon closed its control connection'));
    },
    stats: () => {
      calls.push('stats');
      return Promise.resolve(STATS);
    },
    peaks: (o) => {
      calls.push(`peaks reset=${String(o.reset)}`);
      return peaks === 'ok' ? Promise.resolve(PEAKS) : Promise.reject(new Error('no window'));
    },
  };
}

test('a daemon with stats-peaks is asked once per read, with the window reset', { timeout: 5000 }, async () => {
  const d = fakeDaemon('ok');
  const state = { statsPeaks: true };
  const [s, p] = await readStatsAndPeaks(d, state);
  assert.deepEqual([s, p], [{ status: 'fulfilled', value: STATS }, { status: 'fulfilled', value: PEAKS }]);
  assert.deepEqual(d.calls, ['stats-peaks reset=true']);
  assert.equal(state.statsPeaks, true);
});

test('a daemon without the op is asked the two apart, then and from then on', { timeout: 5000 }, async () => {
  const d = fakeDaemon('unknown');
  const state = { statsPeaks: true };
  const [s, p] = await readStatsAndPeaks(d, state);
  assert.deepEqual([s, p], [{ status: 'fulfilled', value: STATS }, { status: 'fulfilled', value: PEAKS }]);
  assert.equal(state.statsPeaks, false);
  await readStatsAndPeaks(d, state);
  assert.deepEqual(d.calls, ['stats-peaks reset=true', 'stats', 'peaks reset=true', 'stats', 'peaks reset=true']);
});

test('apart, each side settles on its own; a daemon that cannot answer fails both and is tried whole again', { timeout: 5000 }, async () => {
  const apart = await readStatsAndPeaks(fakeDaemon('unknown', 'fails'), { statsPeaks: true });
  assert.equal(apart[0].status, 'fulfilled');
  assert.equal(apart[1].status, 'rejected');
  const state = { statsPeaks: true };
  const down = await readStatsAndPeaks(fakeDaemon('down'), state);
  assert.deepEqual(down.map((r) => r.status), ['rejected', 'rejected']);
  assert.equal(state.statsPeaks, true, 'a closed connection says nothing about the op');
});
