/**
 * cgroup v2 with the memory controller, for real: this host binds memory to cgroup v1 (see
 * cgroup-v2-kernel.test.ts), so the test boots a guest kernel (Debian's cloud kernel, fetched by
 * scripts/deps.sh into build/vm/) with `cgroup_no_v1=all` under QEMU, with an initramfs of
 * ephemerad, the shim, the paper's micro benchmark and busybox (test/vm/mkinitramfs.sh). Its /init
 * (test/vm/cgroup-v2-init.sh) limits a function cgroup with `memory.max`, runs the daemon for it
 * and the benchmark under the shim with more files than the limit holds, and prints what is
 * checked here: the daemon's budget follows the v2 limit, files went to disk, the benchmark
 * verified its data, no OOM kill, and `memory.peak` stayed under the limit.
 *
 * QEMU emulates the CPU (TCG): this machine's /dev/kvm opens, but a nested KVM guest hangs before
 * its kernel prints anything; under TCG the boot and the run take about 10 s.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { BUILD, bootGuest, guestSkip, makeInitramfs } from './vm-guest.js';

const MiB = 1024 * 1024;
const skip = guestSkip([join(BUILD, 'ephemerad'), join(BUILD, 'libephemera.so'), join(BUILD, 'microbench')]);

test('cgroup v2 with the memory controller (a guest kernel): the daemon budgets by memory.max, files go to disk, no OOM kill', { skip, timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ephemera-v2vm-'));
  try {
    const initramfs = join(dir, 'initramfs.gz');
    makeInitramfs(initramfs);
    const console = await bootGuest(initramfs, 512, 150_000);
    const v2 = new Map<string, string>();
    for (const m of console.matchAll(/V2 (\w+) ?([^\r\n]*)/g)) v2.set(m[1] ?? '', m[2] ?? '');
    const show = `the guest's report:\n${[...v2].map(([k, v]) => `${k}: ${v}`).join('\n')}`;
    assert.equal(v2.get('done'), '', `the guest's /init did not finish; console:\n${console.slice(-3000)}`);
    assert.ok((v2.get('controllers') ?? '').split(' ').includes('memory'), `the guest's v2 hierarchy has the memory controller; ${show}`);
    assert.equal(v2.get('daemon_ready'), 'yes', show);
    // The daemon found the v2 limit of the function's cgroup (memory.max), and budgets below it.
    const budget = /budget (\d+) bytes \(static -1, cgroup \/sys\/fs\/cgroup\/fn, limit (\d+), headroom (\d+)\)/.exec(v2.get('daemon_log_budget') ?? '');
    assert.ok(budget !== null, show);
    assert.equal(Number(budget[2]), 32 * MiB, show);
    assert.ok(Number(budget[1]) < 32 * MiB, show);
    // 2 x 16 MiB of files in 32 MiB: the benchmark finished and verified its data, files went to
    // disk, and the cgroup never OOM-killed.
    assert.equal(v2.get('microbench_status'), '0', show);
    const mb = JSON.parse(v2.get('microbench') ?? '{}') as { files?: number; file_size?: number };
    assert.equal(mb.files, 2, show);
    assert.equal(mb.file_size, 16 * MiB, show);
    assert.ok(Number(v2.get('daemon_evictions')) >= 1, show);
    assert.equal(v2.get('oom_kill'), '0', show);
    const peak = Number(v2.get('peak'));
    assert.ok(peak > 8 * MiB && peak <= 32 * MiB, show);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
