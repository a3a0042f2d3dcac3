// test-tier: unit
/**
 * The cgroup peak window on fakes of the kernel's files. This machine runs cgroup v1, so the v2
 * path (a reset through one open `memory.peak`, Linux ≥ 6.12) is tested here only, against a fake
 * that behaves as the kernel documents it (Documentation/admin-guide/cgroup-v2.rst, memory.peak).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { CgroupPeakWindow, type ControlHandle, type PeakFiles } from './cgroup-peak.js';

/** A memory cgroup whose usage the test moves; v1 or v2 peak semantics. */
class FakeCgroup implements PeakFiles {
  usage = 0;
  life = 0;
  readonly handles = new Set<{ peak: number | undefined }>();
  writes: string[] = [];
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

  open(): ControlHandle {
    const h: { peak: number | undefined } = { peak: undefined };
    this.handles.add(h);
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
