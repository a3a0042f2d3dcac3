/**
 * `ephemera bench platform-demo` (what `make demo` shows first): `ephemera up`, one tenant's
 * CPU-bound and I/O-heavy actions deployed through the OpenWhisk API, invoked together, once with
 * the node agent's sharing off and once with tenant sharing; a table of each activation's latency,
 * granted memory and share of file operations served from memory, read from its record.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { EphemeraError } from '../core/errors.js';
import { startAnnounced, stopChild } from '../platform/child.js';
import { readProps } from '../platform/harness.js';

const MiB = 1024 * 1024;

/** A CPU-bound action: spins for `s` seconds. */
export const CPU_ACTION = 'import time\ndef main(a):\n    end = time.time() + a.get("s", 4)\n    n = 0\n    while time.time() < end:\n        n += 1\n    return {"spins": n}\n';

/** An I/O-heavy action: writes `mb` MiB in 4 MiB files, reads them three times, removes them. */
export const IO_ACTION = `
import os
import time
def main(args):
    block = b"e" * (1 << 20)
    names = []
    for i in range(int(args.get("mb", 100)) // 4):
        name = "/tmp/part-%d.bin" % i
        with open(name, "wb") as f:
            for _ in range(4):
                f.write(block)
        names.append(name)
    total = 0
    for _ in range(3):
        for name in names:
            with open(name, "rb") as f:
                while True:
                    b = f.read(1 << 16)
                    if not b:
                        break
                    total += len(b)
    # "hold": keep the files (and so the memory lent for them) this many seconds more.
    time.sleep(float(args.get("hold", 0)))
    for name in names:
        os.unlink(name)
    return {"read": total}
`;

export interface DemoRow {
  readonly sharing: string;
  readonly action: string;
  readonly durationMs: number;
  readonly initialMiB: number;
  readonly grantedMiB: number;
  readonly pool: string;
  readonly fastSharePct: number;
  readonly evictions: number;
  readonly peakMiB: number;
}

interface Record_ {
  duration?: number;
  response?: { success?: boolean; result?: unknown };
  annotations?: { key: string; value: unknown }[];
}

function rowOf(sharing: string, action: string, rec: Record_): DemoRow {
  const e = (rec.annotations?.find((a) => a.key === 'ephemera')?.value ?? {}) as Record<string, number | string>;
  const fast = Number(e.fast_reads ?? 0) + Number(e.fast_writes ?? 0);
  const all = fast + Number(e.slow_ops ?? 0);
  return {
    sharing,
    action,
    durationMs: rec.duration ?? Number.NaN,
    initialMiB: Number(e.initialBytes ?? Number.NaN) / MiB,
    grantedMiB: Number(e.grantedBytes ?? Number.NaN) / MiB,
    pool: String(e.pool ?? '?'),
    fastSharePct: all > 0 ? (fast / all) * 100 : 0,
    evictions: Number(e.evictions ?? 0),
    peakMiB: Number(e.bytes_in_memory_peak ?? 0) / MiB,
  };
}

export async function runPlatformDemo(opts: { cli: readonly string[]; progress: (line: string) => void }): Promise<{ rows: DemoRow[]; table: string }> {
  const rows: DemoRow[] = [];
  for (const sharing of ['none', 'tenant']) {
    const dir = mkdtempSync('/tmp/platform-demo-');
    const name = `platform-demo-${String(process.pid)}-${sharing}`;
    let child: ChildProcess | undefined;
    try {
      opts.progress(`platform demo: ephemera up --sharing ${sharing}`);
      const up = await startAnnounced(
        [...opts.cli, 'up', '--port', '0', '--state-dir', join(dir, 'state'), '--name', name, '--sharing', sharing, '--tenant', 'demo'],
        /API on (http:\/\/\S+)/, 600_000, { env: { ...process.env, EPHEMERA_HOME: join(dir, 'home') }, stderr: 'ignore' },
      );
      child = up.child;
      const base = `${up.match[1] ?? ''}/api/v1/namespaces/_/actions`;
      const headers = { authorization: `Basic ${Buffer.from(readProps(join(dir, 'home', 'demo.wskprops')).AUTH ?? '').toString('base64')}`, 'content-type': 'application/json' };
      const put = async (action: string, code: string, memory: number, profile: { ownPeakBytes: number; filePeakBytes: number }): Promise<void> => {
        const r = await fetch(`${base}/${action}`, {
          method: 'PUT', headers,
          body: JSON.stringify({ exec: { kind: 'python:3', code }, limits: { memory }, annotations: [{ key: 'ephemera.profile', value: profile }] }),
        });
        if (r.status !== 200) throw new EphemeraError('EPH_BENCH_FAILED', `deploying ${action} answered ${r.status}: ${await r.text()}`);
      };
      const invoke = async (action: string, params: object): Promise<Record_> => {
        const r = await fetch(`${base}/${action}?blocking=true`, { method: 'POST', headers, body: JSON.stringify(params), signal: AbortSignal.timeout(120_000) });
        const rec = (await r.json()) as Record_;
        if (r.status !== 200) throw new EphemeraError('EPH_BENCH_FAILED', `invoking ${action} answered ${r.status}: ${JSON.stringify(rec.response?.result)}`);
        return rec;
      };
      // The profiles say what the profiler would: the CPU action needs little of its 256 MiB, the
      // I/O action more file space than its 128 MiB hold.
      await put('cpu', CPU_ACTION, 256, { ownPeakBytes: 12 * MiB, filePeakBytes: 0 });
      await put('io', IO_ACTION, 128, { ownPeakBytes: 24 * MiB, filePeakBytes: 160 * MiB });
      // Only the CPU action is warmed: a run replaces the hand-set profile with what it measured,
      // and the I/O action's first run is the one that shows the grant. Its cold start is not in
      // its latency (a record's duration is the run; the start is in waitTime and initTime).
      opts.progress(`platform demo (${sharing}): warming the CPU action`);
      await invoke('cpu', { s: 0.1 });
      opts.progress(`platform demo (${sharing}): both actions together`);
      const cpu = invoke('cpu', { s: 8 });
      await sleep(1500);
      const io = await invoke('io', { mb: 160 });
      rows.push(rowOf(sharing, 'io (128 MiB)', io), rowOf(sharing, 'cpu (256 MiB)', await cpu));
    } finally {
      if (child !== undefined) await stopChild(child, 'SIGTERM', 120_000);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const head = 'sharing  action          latency ms  initial MiB  granted MiB  pool        fast ops  files in memory (peak MiB)  evictions';
  const lines = rows.map((r) =>
    `${r.sharing.padEnd(8)} ${r.action.padEnd(15)} ${r.durationMs.toFixed(0).padStart(10)} ${r.initialMiB.toFixed(0).padStart(12)} ${r.grantedMiB.toFixed(0).padStart(12)}  ${r.pool.padEnd(10)} ${`${r.fastSharePct.toFixed(1)}%`.padStart(8)} ${r.peakMiB.toFixed(0).padStart(27)} ${String(r.evictions).padStart(10)}`);
  return {
    rows,
    table: [
      'ephemera up: one tenant\'s CPU-bound and I/O-heavy actions, invoked together (from each activation record)',
      head,
      ...lines,
      'fast ops: the share of file operations the daemon served from memory without a system call; evicted files are read from disk.',
    ].join('\n'),
  };
}
