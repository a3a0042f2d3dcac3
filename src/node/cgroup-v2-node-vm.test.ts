/**
 * The node agent's own cgroup v2 code against the real memory controller: this host binds memory
 * to cgroup v1, so a QEMU guest boots Debian's cloud kernel with `cgroup_no_v1=all` and an
 * initramfs that also holds Node.js and the compiled JavaScript (test/vm/mkinitramfs.sh node), and
 * runs src/node/cgroup-v2-guest.ts there. That script wires the v2 limiter, the container guard
 * and ephemerad as the agent does for one container and prints what is checked here:
 *
 * - the v2 limiter's resize (resizeInstance) in the safe order, the guard's `memory.high` lowered
 *   before `memory.max` and raised after it, the daemon's own limit following;
 * - a heap pushing against the limit while files are in memory: files go to disk, no OOM kill,
 *   every byte intact (`cmp` under the shim), and the daemon's `peaks` window saw the heap;
 * - the agent's peak window (`memory.peak`; kernel 6.1 has no per-descriptor reset, so it reports
 *   the lifetime peak and says so) and its OOM count from `memory.events`, with one real OOM kill;
 * - the whole agent (NodeAgent, its tenant's Manager in the same process) with a donor and a
 *   recipient registered as processes in cgroups: a loan and its reclaim carried out on v2, with
 *   the recipient's files in memory thanks to the loan and on disk, intact, after it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { BUILD, bootGuest, guestSkip, makeInitramfs } from './vm-guest.js';

const MiB = 1024 * 1024;
/** As in cgroup-v2-guest.ts. */
const QUOTA = 128 * MiB;
const LOWERED = 48 * MiB;
const FILES = 3 * 16 * MiB;
const HEAP = 88 * MiB;
/** GUARD_HIGH_GAP (src/guard/arm.ts). */
const GAP = 8 * MiB;

const skip = guestSkip([join(BUILD, 'ephemerad'), join(BUILD, 'libephemera.so'), join(BUILD, 'js', 'node', 'cgroup-v2-guest.js'), '/usr/local/bin/node', '/bin/dd', '/usr/bin/cmp']);

/** As in cgroup-v2-guest.ts's agent phase: the donor's and the recipient's quotas, and the loan (88 - 64 MiB: the
 * recipient's 64 MiB of files, its 24 MiB of own memory, which covers the daemon's headroom). */
const DONOR = 160 * MiB;
const RECIPIENT = 64 * MiB;
const LOAN = 24 * MiB;

interface AgentView {
  moves: { from: string; to: string; bytes: number; reason: string }[];
  limits: { donor: number; recipient: number };
  highs: { donor: string; recipient: string };
  daemons: { donor: DaemonFiles; recipient: DaemonFiles };
}
interface DaemonFiles {
  limit: number;
  memory: number;
  disk: number;
  evictions: number;
}
interface Resized {
  result: { direction: string };
  order: string[];
  max: string;
  high: string;
  daemon: DaemonFiles;
  oom_kill: number;
}

test('cgroup v2 in a guest kernel, driven by the agent’s own code: safe resizes with memory.high tied to memory.max, a heap against the limit sends files to disk, peak and OOM count, a loan and its reclaim by the whole agent', { skip, timeout: 200_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ephemera-v2vm-node-'));
  try {
    const initramfs = join(dir, 'initramfs.cpio');
    const began = Date.now();
    makeInitramfs(initramfs, 'node');
    const console = await bootGuest(initramfs, 1024, 170_000);
    t.diagnostic(`initramfs and guest run took ${((Date.now() - began) / 1000).toFixed(1)} s`);
    const lines = new Map<string, unknown[]>();
    for (const m of console.matchAll(/V2N (\w+) ([^\r\n]*)/g)) {
      const key = m[1] ?? '';
      let value: unknown;
      try {
        value = JSON.parse(m[2] ?? '');
      } catch {
        value = m[2];
      }
      lines.set(key, [...(lines.get(key) ?? []), value]);
    }
    const show = `the guest's report:\n${[...lines].map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n')}`;
    const one = (key: string): unknown => {
      const v = lines.get(key);
      assert.ok(v?.length === 1, `one '${key}' line expected; ${show}`);
      return v[0];
    };
    assert.equal(lines.get('done')?.[0], true, `the guest script did not finish; console:\n${console.slice(-4000)}`);
    assert.equal(one('node_status'), '0', show);

    // The agent's detection finds memory on v2, and a container's cgroup from a pid in it.
    assert.deepEqual(one('location'), { version: 2, layout: 'v2', mountPoint: '/sys/fs/cgroup', dir: '/sys/fs/cgroup' }, show);
    const fn = one('fn') as { path: string; version: number; max: string; swap_max: string };
    assert.deepEqual(fn, { path: '/sys/fs/cgroup/ephemera/fn', version: 2, max: String(QUOTA), swap_max: '0' }, show);
    assert.equal(one('located'), fn.path, show);
    // The daemon's word on the guard (since the guard lease, its first line is the lease's): it follows the host's.
    const daemonLog = one('daemon_log');
    assert.ok(Array.isArray(daemonLog), `the daemon's log lines, as a list; ${show}`);
    const guardLine = (daemonLog as string[]).find((l) => l.includes('oom guard:')) ?? '';
    assert.ok(guardLine.includes('read-only'), `the daemon follows the host's guard, as in a container; ${show}`);

    // The files are in memory, and the daemon asked for the guard: memory.high = memory.max - gap.
    for (const dd of lines.get('dd') ?? []) assert.equal((dd as { status: number }).status, 0, show);
    assert.deepEqual(one('files_written'), { limit: QUOTA, memory: FILES, disk: 0, evictions: 0 }, show);
    assert.equal(one('armed'), true, show);
    assert.equal(one('armed_high'), String(QUOTA - GAP), show);

    // Lowering: the daemon shrinks (with the resize's margin) and acks, memory.high goes down
    // before memory.max, then the daemon may grow to the new limit; the files it moved are on disk.
    const lower = one('lower') as Resized;
    assert.equal(lower.result.direction, 'lower', show);
    assert.deepEqual(lower.order, [`shrink ${String(LOWERED - MiB)}`, `high ${String(LOWERED - GAP)}`, `max ${String(LOWERED)}`, `grow ${String(LOWERED)}`], show);
    assert.equal(lower.max, String(LOWERED), show);
    assert.equal(lower.high, String(LOWERED - GAP), show);
    assert.equal(lower.daemon.limit, LOWERED, show);
    assert.ok(lower.daemon.memory < LOWERED && lower.daemon.disk > 0, show);
    assert.equal(lower.daemon.memory + lower.daemon.disk, FILES, show);
    assert.equal(lower.oom_kill, 0, show);
    // Raising: memory.max first, memory.high after it, then the daemon grows.
    const raise = one('raise') as Resized;
    assert.deepEqual(raise.order, [`max ${String(QUOTA)}`, `high ${String(QUOTA - GAP)}`, `grow ${String(QUOTA)}`], show);
    assert.equal(raise.max, String(QUOTA), show);
    assert.equal(raise.high, String(QUOTA - GAP), show);
    assert.equal(raise.daemon.limit, QUOTA, show);
    assert.equal(raise.oom_kill, 0, show);

    // The heap pushed against the limit: the daemon moved more files to disk, nobody was killed,
    // and every file reads back as written.
    const before = one('before_heap') as { daemon: DaemonFiles };
    const heap = one('heap') as { status: number; out: string };
    assert.equal(heap.status, 0, show);
    assert.match(heap.out, /heap 88/, show);
    const after = one('after_heap') as { daemon: DaemonFiles; events: Record<string, number> };
    assert.ok(after.daemon.disk > before.daemon.disk && after.daemon.evictions > before.daemon.evictions, show);
    assert.equal(after.daemon.memory + after.daemon.disk, FILES, show);
    assert.equal(after.events['oom'], 0, show);
    assert.equal(after.events['oom_kill'], 0, show);
    t.diagnostic(`heap run: files ${JSON.stringify(before.daemon)} -> ${JSON.stringify(after.daemon)}, memory.events ${JSON.stringify(after.events)}`);
    const cmp = lines.get('cmp') ?? [];
    assert.equal(cmp.length, 3, show);
    for (const c of cmp) assert.equal((c as { status: number }).status, 0, show);
    // The daemon's window over the run: the heap is its own memory, the files its file peak.
    const usage = one('usage') as { peaks: { own_memory_peak: number }; used: { ownPeakBytes: number; filePeakBytes: number } };
    assert.ok(usage.peaks.own_memory_peak >= HEAP, show);
    assert.ok(usage.used.ownPeakBytes >= usage.peaks.own_memory_peak, show);
    assert.equal(usage.used.filePeakBytes, FILES, show);

    // The agent's peak window: no per-descriptor reset before Linux 6.12, so the lifetime peak,
    // said so; the heap and the files that stayed are in it, and it never passed the limit.
    const peak = one('peak') as { windowed: boolean; read: number; file: number; limiter: number };
    assert.equal(peak.windowed, false, show);
    assert.equal(peak.read, peak.file, show);
    assert.equal(peak.limiter, peak.file, show);
    assert.ok(peak.read >= HEAP && peak.read <= QUOTA, show);
    assert.deepEqual(one('fn_oom'), { counter: 0, limiter: 0 }, show);

    // One real OOM kill, counted by the agent's counter and the limiter alike.
    assert.deepEqual(one('oom'), { before: 0, after: 1, limiter: 1, status: null, signal: 'SIGKILL' }, show);

    // The whole agent, on v2, with a donor and a recipient registered as processes in cgroups:
    // the donor that arrives while the recipient runs lends it the recipient's shortfall.
    const info = one('agent_info') as { cgroupVersion: number };
    assert.equal(info.cgroupVersion, 2, show);
    const lend = one('agent_lend') as AgentView;
    assert.deepEqual(
      lend.moves.map((m) => [m.from, m.to, m.bytes, m.reason]),
      [['donor', 'recipient', LOAN, 'lend']],
      show,
    );
    assert.deepEqual(lend.limits, { donor: DONOR - LOAN, recipient: RECIPIENT + LOAN }, show);
    assert.equal(lend.daemons.donor.limit, DONOR - LOAN, show);
    assert.equal(lend.daemons.recipient.limit, RECIPIENT + LOAN, show);
    // Thanks to the loan the recipient's 64 MiB of files stay in memory (its quota alone is 64 MiB),
    // and its guard sits under the raised limit.
    const written = one('agent_files') as AgentView & { dd: number[] };
    assert.deepEqual(written.dd, [0, 0, 0, 0], show);
    assert.deepEqual(written.daemons.recipient, { limit: RECIPIENT + LOAN, memory: 4 * 16 * MiB, disk: 0, evictions: 0 }, show);
    assert.equal(written.highs.recipient, String(RECIPIENT + LOAN - GAP), show);
    // The donor ends first and takes its memory back: the recipient's daemon shrinks first, its
    // files go to disk, its limit and guard come down, nobody is OOM-killed.
    const reclaim = one('agent_reclaim') as AgentView & { oom_kill: number[] };
    assert.deepEqual(
      reclaim.moves.map((m) => [m.from, m.to, m.bytes, m.reason]),
      [['recipient', 'donor', LOAN, 'reclaim']],
      show,
    );
    assert.deepEqual(reclaim.limits, { donor: DONOR, recipient: RECIPIENT }, show);
    assert.equal(reclaim.highs.recipient, String(RECIPIENT - GAP), show);
    assert.equal(reclaim.daemons.recipient.limit, RECIPIENT, show);
    assert.equal(reclaim.daemons.donor.limit, DONOR, show);
    assert.ok(reclaim.daemons.recipient.disk > 0, show);
    assert.equal(reclaim.daemons.recipient.memory + reclaim.daemons.recipient.disk, 4 * 16 * MiB, show);
    assert.deepEqual(reclaim.oom_kill, [0, 0], show);
    // Every file intact; each move in the safe order, and at no step did the tenant's limits,
    // read from the cgroup files, add up to more than its quotas.
    const end = one('agent_end') as { cmp: number[]; limits: AgentView['limits']; steps: string[]; worst: number; quotas: number; updates: string[] };
    assert.deepEqual(end.cmp, [0, 0, 0, 0], show);
    assert.deepEqual(end.limits, { donor: DONOR, recipient: RECIPIENT }, show);
    assert.deepEqual(
      end.steps.map((x) => x.split(' ').slice(0, 2).join(' ')),
      ['shrink donor', 'lower donor', 'raise recipient', 'grow donor', 'grow recipient', 'shrink recipient', 'lower recipient', 'raise donor', 'grow recipient', 'grow donor'],
      show,
    );
    assert.equal(end.quotas, DONOR + RECIPIENT, show);
    assert.ok(end.worst <= end.quotas, show);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
