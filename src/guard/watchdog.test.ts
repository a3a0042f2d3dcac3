/**
 * The watchdog's shell over fake knobs with a scripted clock, and over a fake cgroup directory
 * (plain files) for the reading and writing of the v1 and v2 control files. The real cgroup path,
 * with a real ephemerad under a real limit, is test/memory/guard.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';
import { GuardWatchdog, cgroupGuardKnobs, cgroupVersionOf, type GuardKnobs, type WatchdogEvent } from './watchdog.js';
import type { GuardSample } from './watchdog-core.js';

const MiB = 1024 * 1024;

class FakeKnobs implements GuardKnobs {
  readonly target = '/fake/cgroup';
  readonly log: string[] = [];
  sample: GuardSample = { armed: true, stalled: true, usage: 128 * MiB, limit: 128 * MiB };
  refuse = 0;
  constructor(readonly version: 1 | 2) {}
  read(): Promise<GuardSample> {
    return Promise.resolve(this.sample);
  }
  setLimit(bytes: number): Promise<void> {
    if (this.refuse > 0) {
      this.refuse--;
      return Promise.reject(new EphemeraError('EPH_LIMIT_BELOW_USAGE', 'EBUSY'));
    }
    this.log.push(`limit ${String(bytes / MiB)}M`);
    this.sample = { ...this.sample, limit: bytes };
    return Promise.resolve();
  }
  lift(): Promise<void> {
    this.log.push('lift');
    this.sample = { ...this.sample, armed: false };
    return Promise.resolve();
  }
}

test('v1: graces, then lift when the stall goes on; a refused restore is retried', { timeout: 5000 }, async () => {
  const knobs = new FakeKnobs(1);
  let now = 0;
  const events: WatchdogEvent[] = [];
  const w = new GuardWatchdog(knobs, { stallMs: 1000, now: () => now, onEvent: (e) => events.push(e) });
  await w.tick();
  now = 1000;
  for (let i = 1; i <= 5; i++) {
    await w.tick(); // graces 1..4 (16 MiB each), then the lift
    knobs.sample = { ...knobs.sample, usage: knobs.sample.limit ?? 0, stalled: true };
    now += 1;
    await w.tick(); // a new stall begins
    now += 1000;
  }
  knobs.sample = { armed: false, stalled: false, usage: 10 * MiB, limit: 192 * MiB };
  knobs.refuse = 1;
  now = 9000;
  await w.tick(); // restore refused (EBUSY): no event, no error
  await w.tick(); // restore
  assert.deepEqual(knobs.log, ['limit 144M', 'limit 160M', 'limit 176M', 'limit 192M', 'lift', 'limit 128M']);
  assert.deepEqual(w.counts, { graces: 4, lifts: 1, restores: 1, errors: 0 });
  assert.deepEqual(events.map((e) => e.action), ['grace', 'grace', 'grace', 'grace', 'lift', 'restore']);
  assert.match(events[0]?.message ?? '', /stalled at its memory limit for 1000 ms.*raising the limit to 144 MiB/);
});

test('v2: a long throttle lifts memory.high at once', { timeout: 5000 }, async () => {
  const knobs = new FakeKnobs(2);
  let now = 0;
  const w = new GuardWatchdog(knobs, { stallMs: 500, now: () => now });
  await w.tick();
  now = 600;
  await w.tick();
  assert.deepEqual(knobs.log, ['lift']);
});

test('the timer runs by itself and stop() waits for it', { timeout: 5000 }, async () => {
  const knobs = new FakeKnobs(2);
  const w = new GuardWatchdog(knobs, { pollMs: 5, stallMs: 20 });
  w.start();
  for (let i = 0; i < 200 && knobs.log.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  await w.stop();
  assert.deepEqual(knobs.log, ['lift']);
});

async function fakeCgroup(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ephemera-guard-test-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

test('cgroup knobs, v1: oom_control read and written, limits through the limiter', { timeout: 5000 }, async () => {
  const dir = await fakeCgroup({
    'memory.oom_control': 'oom_kill_disable 1\nunder_oom 1\noom_kill 0\n',
    'memory.usage_in_bytes': String(128 * MiB),
    'memory.limit_in_bytes': String(128 * MiB),
  });
  try {
    assert.equal(await cgroupVersionOf(dir), 1);
    const k = cgroupGuardKnobs(dir, 1);
    assert.deepEqual(await k.read(), { armed: true, stalled: true, usage: 128 * MiB, limit: 128 * MiB });
    await k.lift();
    assert.equal(await readFile(join(dir, 'memory.oom_control'), 'utf8'), '0');
    await k.setLimit(144 * MiB);
    assert.equal(await readFile(join(dir, 'memory.limit_in_bytes'), 'utf8'), String(144 * MiB));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('cgroup knobs, v2: armed while memory.high is below memory.max; lift writes max', { timeout: 5000 }, async () => {
  const dir = await fakeCgroup({ 'memory.high': String(120 * MiB), 'memory.max': String(128 * MiB), 'memory.current': String(121 * MiB) });
  try {
    assert.equal(await cgroupVersionOf(dir), 2);
    const k = cgroupGuardKnobs(dir, 2);
    assert.deepEqual(await k.read(), { armed: true, stalled: true, usage: 121 * MiB, limit: 128 * MiB });
    await k.lift();
    assert.equal(await readFile(join(dir, 'memory.high'), 'utf8'), 'max');
    assert.deepEqual(await k.read(), { armed: false, stalled: false, usage: 121 * MiB, limit: 128 * MiB });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a cgroup that disappears ends the watch quietly', { timeout: 5000 }, async () => {
  const dir = await fakeCgroup({ 'memory.high': 'max', 'memory.max': 'max', 'memory.current': '0' });
  const events: WatchdogEvent[] = [];
  const w = new GuardWatchdog(cgroupGuardKnobs(dir, 2), { onEvent: (e) => events.push(e) });
  await rm(dir, { recursive: true, force: true });
  await w.tick();
  await w.stop();
  assert.deepEqual(events, []);
  assert.equal(w.counts.errors, 0);
});
