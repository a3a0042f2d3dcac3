// test-tier: unit
/**
 * The host's hold on a container's OOM guard over a fake cgroup directory (plain files): the v2
 * path this v1 machine cannot run for real (memory.high set under memory.max, kept in step with
 * limit changes in a safe order, lifted by the watchdog after a long throttle and set again later)
 * and the v1 arming. The real v1 path, in a real container under the node agent, is
 * src/node/guard-docker.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { MemoryLimiter } from '../limiter/limiter.js';
import { GUARD_HIGH_GAP, cgroupGuardArm, guardHigh } from './arm.js';
import { ContainerGuard, type ContainerGuardEvent } from './container-guard.js';
import { cgroupGuardKnobs } from './watchdog.js';

const MiB = 1024 * 1024;

async function fakeCgroup(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ephemera-cguard-test-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

const read = (dir: string, f: string): Promise<string> => readFile(join(dir, f), 'utf8');

/** A limiter over the fake directory's memory.max that records the order of the writes. */
function fakeV2Limiter(dir: string, log: string[]): MemoryLimiter {
  return {
    kind: 'cgroup-v2',
    target: dir,
    getLimit: async () => Number(await read(dir, 'memory.max')),
    setLimit: async (bytes) => {
      log.push(`max ${String((bytes ?? 0) / MiB)}M (high ${(await read(dir, 'memory.high')).trim()})`);
      await writeFile(join(dir, 'memory.max'), String(bytes));
    },
    getUsage: () => Promise.resolve(0),
    getPeak: () => Promise.resolve(null),
    oomKills: () => Promise.resolve(0),
  };
}

test('guardHigh: the gap under the limit, whole pages for tiny limits, max for none', () => {
  assert.equal(guardHigh(128 * MiB), 128 * MiB - GUARD_HIGH_GAP);
  assert.equal(guardHigh(null), null);
  assert.equal(guardHigh(6 * MiB), 6 * MiB - 4096);
  assert.equal(guardHigh(4096), 4096);
});

test('v2: memory.high set and lifted as the daemon asks, moved with the limit in a safe order, lifted after a long throttle and set again after the cooling', { timeout: 5000 }, async () => {
  const dir = await fakeCgroup({ 'memory.high': 'max', 'memory.max': String(128 * MiB), 'memory.current': String(20 * MiB) });
  try {
    let now = 0;
    const events: ContainerGuardEvent[] = [];
    const g = new ContainerGuard(cgroupGuardArm(dir, 2), cgroupGuardKnobs(dir, 2), { rearmMs: 20, watchdog: { stallMs: 500, now: () => now, pollMs: 60_000 }, onEvent: (e) => events.push(e) });
    g.start();
    assert.equal(await read(dir, 'memory.high'), 'max', 'not set before the daemon asks');
    await g.want(true);
    assert.equal(await read(dir, 'memory.high'), String(120 * MiB));
    assert.equal(g.armed, true);

    // Lowering: memory.high first, so it is never above the new memory.max; raising: max first.
    const log: string[] = [];
    const lim = g.limiter(fakeV2Limiter(dir, log));
    await lim.setLimit(96 * MiB);
    await lim.setLimit(160 * MiB);
    assert.deepEqual(log, [`max 96M (high ${String(88 * MiB)})`, `max 160M (high ${String(88 * MiB)})`]);
    assert.equal(await read(dir, 'memory.high'), String(152 * MiB));

    // Nothing left to evict: lifted at once; a limit change then leaves it lifted.
    await g.want(false);
    assert.equal(await read(dir, 'memory.high'), 'max');
    await lim.setLimit(150 * MiB);
    assert.equal(await read(dir, 'memory.high'), 'max');
    await g.want(true);
    assert.equal(await read(dir, 'memory.high'), String(142 * MiB));

    // A throttle (usage above memory.high) that lasts: the watchdog lifts it...
    await writeFile(join(dir, 'memory.current'), String(145 * MiB));
    await g.watchdog.tick();
    now = 600;
    await g.watchdog.tick();
    assert.equal(await read(dir, 'memory.high'), 'max');
    assert.equal(g.armed, false);
    // ...the daemon's wish waits for the cooling...
    await g.want(true);
    assert.equal(await read(dir, 'memory.high'), 'max');
    // ...and after rearmMs it is set again, under the limit in force.
    const armed = (): boolean => g.armed; // read afresh (the timer sets it)
    for (let i = 0; i < 100 && !armed(); i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(await read(dir, 'memory.high'), String(142 * MiB));
    assert.deepEqual(events.map((e) => e.action), ['arm', 'disarm', 'arm', 'lift', 'arm']);
    assert.match(events[1]?.message ?? '', /lifted at the daemon's request/);

    await g.stop({ disarm: true });
    assert.equal(await read(dir, 'memory.high'), 'max');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('v2: a limit change while the guard is being set waits for it, so memory.high never ends above a lowered memory.max (or far below a raised one)', { timeout: 5000 }, async () => {
  const dir = await fakeCgroup({ 'memory.high': 'max', 'memory.max': String(128 * MiB), 'memory.current': String(20 * MiB) });
  try {
    // The daemon's first file lands as a move lowers the container: the guard has read the limit
    // (128M) and not yet written memory.high when the move's write comes.
    const real = cgroupGuardArm(dir, 2);
    let reading = (): void => undefined;
    const read1 = new Promise<void>((r) => (reading = r));
    let release = (): void => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const arm = {
      ...real,
      limit: async () => {
        const limit = await real.limit();
        reading();
        await gate;
        return limit;
      },
    };
    const g = new ContainerGuard(arm, cgroupGuardKnobs(dir, 2), { watchdog: { pollMs: 60_000 } });
    g.start();
    const lim = g.limiter(fakeV2Limiter(dir, []));
    const wanted = g.want(true);
    await read1;
    const lowered = lim.setLimit(48 * MiB);
    await new Promise((r) => setTimeout(r, 20));
    release();
    await Promise.all([wanted, lowered]);
    assert.equal(await read(dir, 'memory.max'), String(48 * MiB));
    assert.equal(await read(dir, 'memory.high'), String(40 * MiB), 'the guard sits under the lowered limit');

    // The same with a raise: the guard follows the new limit, not the one it had read.
    await g.want(false);
    const wanted2 = g.want(true);
    const raised = lim.setLimit(160 * MiB);
    await Promise.all([wanted2, raised]);
    assert.equal(await read(dir, 'memory.high'), String(152 * MiB));
    await g.stop({ disarm: true });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('v1: oom_kill_disable follows the wish, the limiter untouched, stop without disarm leaves it set', { timeout: 5000 }, async () => {
  const dir = await fakeCgroup({ 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\n', 'memory.limit_in_bytes': String(128 * MiB), 'memory.usage_in_bytes': '0' });
  try {
    const g = new ContainerGuard(cgroupGuardArm(dir, 1), cgroupGuardKnobs(dir, 1), { watchdog: { pollMs: 60_000 } });
    g.start();
    await g.want(true);
    assert.equal(await read(dir, 'memory.oom_control'), '1');
    await g.want(false);
    assert.equal(await read(dir, 'memory.oom_control'), '0');
    await g.want(true);
    const inner = fakeV2Limiter(dir, []);
    assert.equal(g.limiter(inner), inner);
    await g.stop({ disarm: false });
    assert.equal(await read(dir, 'memory.oom_control'), '1');
    await g.want(false); // after stop: nothing is written any more
    assert.equal(await read(dir, 'memory.oom_control'), '1');

    // A new holder (an agent that took the running container over) writes its first wish even
    // when it is "lifted": it cannot know what its predecessor left set.
    const g2 = new ContainerGuard(cgroupGuardArm(dir, 1), cgroupGuardKnobs(dir, 1), { watchdog: { pollMs: 60_000 } });
    g2.start();
    await g2.want(false);
    assert.equal(await read(dir, 'memory.oom_control'), '0');
    await g2.want(true);
    await g2.stop({ disarm: true });
    assert.equal(await read(dir, 'memory.oom_control'), '0');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
