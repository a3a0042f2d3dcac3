// test-tier: unit
/**
 * The cgroup peak window on fakes of the kernel's files. This machine runs cgroup v1, so the v2
 * path (a reset through one open `memory.peak`, Linux ≥ 6.12) is tested here only, against a fake
 * that behaves as the kernel documents it (Documentation/admin-guide/cgroup-v2.rst, memory.peak).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isEphemeraError } from '../core/errors.js';
import { CgroupPeakWindow, OomKillCounter, type ControlHandle, type PeakFiles } from './cgroup-peak.js';

/** A memory cgroup whose usage the test moves; v1 or v2 peak semantics. */
class FakeCgroup implements PeakFiles {
  usage = 0;
  life = 0;
  readonly handles = new Set<{ peak: number | undefined }>();
  writes: string[] = [];
  opens: string[] = [];
  constructor(
    readonly version: 1 | 2,
    readonly perFdReset = true,
    readonly hasPeak = true,
  ) {}

  use(bytes: number): void {
    this.usage = bytes;
    this.life = Math.max(this.life, bytes);
    for (const h of this.handles) if (h.peak !== undefined) h.peak = Math.max(h.peak, bytes);
  }

  exists(path: string): boolean {
    return this.hasPeak && path.endsWith(this.version === 1 ? '/memory.max_usage_in_bytes' : '/memory.peak');
  }

  readText(): string {
    return `${String(this.life)}\n`;
  }

  writeText(path: string, text: string): void {
    this.writes.push(`${path}=${text}`);
    if (this.version !== 1) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' });
    this.life = this.usage; // v1: any write sets max_usage_in_bytes to the usage now
  }

  open(path: string): ControlHandle {
    this.opens.push(path);
    const h: { peak: number | undefined } = { peak: undefined };
    this.handles.add(h);
    if (this.version === 1) {
      // v1: a write through any descriptor sets the one max_usage_in_bytes; reads see it.
      return {
        write: (text) => {
          this.writeText(path, text);
        },
        read: () => this.readText(),
        close: () => {
          this.handles.delete(h);
        },
      };
    }
    return {
      write: () => {
        if (!this.perFdReset) throw Object.assign(new Error('EINVAL'), { code: 'EINVAL' }); // before Linux 6.12
        h.peak = this.usage;
      },
      read: () => `${String(h.peak ?? this.life)}\n`,
      close: () => {
        this.handles.delete(h);
      },
    };
  }
}

test('v1: each window resets memory.max_usage_in_bytes to the usage then', { timeout: 5_000 }, () => {
  const cg = new FakeCgroup(1);
  const w = new CgroupPeakWindow(1, '/cg', cg);
  cg.use(100);
  cg.use(10);
  w.open();
  assert.equal(w.windowed, true);
  assert.deepEqual(cg.writes, ['/cg/memory.max_usage_in_bytes=0']);
  cg.use(40);
  assert.equal(w.read(), 40);
  cg.use(10);
  w.open();
  cg.use(20);
  assert.equal(w.read(), 20);
});

test('v1: one descriptor, opened at the first window, serves every reset and read until close', { timeout: 5_000 }, () => {
  const cg = new FakeCgroup(1);
  const w = new CgroupPeakWindow(1, '/cg', cg);
  for (let run = 1; run <= 5; run++) {
    cg.use(5);
    w.open();
    cg.use(run * 10);
    cg.use(1);
    assert.equal(w.read(), run * 10, `run ${String(run)}: the peak since its own reset`);
  }
  assert.deepEqual(cg.opens, ['/cg/memory.max_usage_in_bytes'], 'opened once, not per window');
  assert.equal(cg.writes.length, 5, 'one reset per window, through the kept descriptor');
  w.close();
  assert.equal(cg.handles.size, 0);
});

test('v2 (Linux ≥ 6.12): the window keeps one memory.peak open and resets it through that fd; other readers keep the lifetime peak', { timeout: 5_000 }, () => {
  const cg = new FakeCgroup(2);
  const w = new CgroupPeakWindow(2, '/cg', cg);
  cg.use(100);
  cg.use(30);
  w.open();
  assert.equal(w.windowed, true);
  cg.use(60);
  cg.use(5);
  assert.equal(w.read(), 60, "the window's peak, not the lifetime 100");
  assert.equal(cg.readText().trim(), '100', 'memory.peak read afresh still shows the lifetime peak');
  w.open();
  assert.equal(cg.handles.size, 1, 'one descriptor for every window');
  cg.use(7);
  assert.equal(w.read(), 7);
  assert.deepEqual(cg.writes, [], 'v2 never writes through a fresh open (that would reset nothing)');
  w.close();
  assert.equal(cg.handles.size, 0);
});

test('v2 before Linux 6.12: no reset; the lifetime peak, and the window says it is not one', { timeout: 5_000 }, () => {
  const cg = new FakeCgroup(2, false);
  const w = new CgroupPeakWindow(2, '/cg', cg);
  cg.use(100);
  w.open();
  assert.equal(w.windowed, false);
  cg.use(10);
  assert.equal(w.read(), 100);
});

test('v2 before Linux 5.19 (no memory.peak) or a cgroup gone: no peak, never a throw', { timeout: 5_000 }, () => {
  const w = new CgroupPeakWindow(2, '/cg', new FakeCgroup(2, true, false));
  w.open();
  assert.equal(w.windowed, false);
  assert.equal(w.read(), null);
  const broken: PeakFiles = {
    exists: () => true,
    readText: () => {
      throw new Error('ENOENT');
    },
    writeText: () => {
      throw new Error('ENOENT');
    },
    open: () => {
      throw new Error('ENOENT');
    },
  };
  const gone = new CgroupPeakWindow(1, '/cg', broken);
  gone.open();
  assert.equal(gone.read(), null);
  gone.close();
});

/** A memory.oom_control (v1) or memory.events (v2) whose count the test moves, counting opens. */
function oomFiles(version: 1 | 2): { fs: PeakFiles; kill: () => void; opens: string[]; fail: (on: boolean) => void; open: () => number } {
  let kills = 0;
  let failing = false;
  let live = 0;
  const opens: string[] = [];
  const text = (): string => (version === 1 ? `oom_kill_disable 0\nunder_oom 0\noom_kill ${String(kills)}\n` : `low 0\nhigh 0\nmax 3\noom 1\noom_kill ${String(kills)}\noom_group_kill 0\n`);
  const fs: PeakFiles = {
    exists: () => true,
    readText: () => text(),
    writeText: () => undefined,
    open: (path) => {
      if (failing) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
      opens.push(path);
      live++;
      return {
        write: () => undefined,
        read: () => {
          if (failing) throw Object.assign(new Error('ENODEV'), { code: 'ENODEV' });
          return text();
        },
        close: () => {
          live--;
        },
      };
    },
  };
  return { fs, kill: () => kills++, opens, fail: (on) => (failing = on), open: () => live };
}

test('OOM kills: v1 and v2 counts read through one kept descriptor', { timeout: 5_000 }, () => {
  for (const version of [1, 2] as const) {
    const f = oomFiles(version);
    const c = new OomKillCounter(version, '/cg', f.fs);
    assert.equal(c.read(), 0);
    f.kill();
    assert.equal(c.read(), 1);
    f.kill();
    assert.equal(c.read(), 2);
    assert.deepEqual(f.opens, [version === 1 ? '/cg/memory.oom_control' : '/cg/memory.events'], 'opened once');
    c.close();
    assert.equal(f.open(), 0);
  }
});

test('OOM kills: a file that fails is a clear EPH_CGROUP_IO, and the next read opens it again', { timeout: 5_000 }, () => {
  const f = oomFiles(1);
  const c = new OomKillCounter(1, '/cg', f.fs);
  assert.equal(c.read(), 0);
  f.fail(true);
  assert.throws(() => c.read(), (err: unknown) => isEphemeraError(err, 'EPH_CGROUP_IO') && err.message.includes('/cg/memory.oom_control'));
  assert.equal(f.open(), 0, 'the failed descriptor is closed');
  f.fail(false);
  f.kill();
  assert.equal(c.read(), 1);
  assert.equal(f.opens.length, 2);
  const none: PeakFiles = { ...f.fs, open: () => ({ write: () => undefined, read: () => 'under_oom 0\n', close: () => undefined }) };
  assert.throws(() => new OomKillCounter(1, '/cg', none).read(), (err: unknown) => isEphemeraError(err, 'EPH_CGROUP_IO') && err.message.includes('no oom_kill line'));
});
