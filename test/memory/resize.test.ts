/**
 * Issue 3: lowering and raising an instance's limit (resizeInstance, the safe order) while a writer
 * and a reader run in two processes of the instance: no error, no lost bytes, no OOM kill.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { DaemonClient } from '../../build/js/daemon-client/client.js';
import { CgroupV1Limiter } from '../../build/js/limiter/cgroup-v1.js';
import { CgroupV2Limiter } from '../../build/js/limiter/cgroup-v2.js';
import { resizeInstance, type ResizeResult } from '../../build/js/limiter/resize.js';
import { isEphemeraError } from '../../build/js/core/errors.js';
import { cgroupSkipReason, EPHEMERA, MiB, PYTHON, REPO } from './harness.js';

const IO = join(REPO, 'test/memory/resize_io.py');
const SKIP = await cgroupSkipReason();
const FILES = 48;
const SIZE = 2 * MiB;
/** The limits the test walks through, over and over, while the processes run. */
const LIMITS = [128, 64, 48, 96, 256, 64, 40, 160].map((m) => m * MiB);

async function waitForFile(path: string, ms: number): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const text = (await readFile(path, 'utf8')).trim();
      if (text !== '') return text;
    } catch {
      // Not yet written.
    }
    if (Date.now() > deadline) throw new Error(`${path} did not appear within ${ms} ms`);
    await sleep(20);
  }
}

test('lowering and raising the limit under a running writer and reader loses nothing and kills nothing', { skip: SKIP, timeout: 180_000 }, async (t) => {
  const work = await mkdtemp('/var/tmp/eph-resize-');
  try {
    const root = join(work, 'root');
    await mkdir(root);
    const info = join(work, 'sock');
    const statsFile = join(work, 'stats.json');
    const script = [
      `echo "$EPHEMERA_SOCK" > ${info}`,
      `${PYTHON} ${IO} writer ${root} ${FILES} ${SIZE} & w=$!`,
      `${PYTHON} ${IO} reader ${root} ${FILES} ${SIZE} & r=$!`,
      'wait $w || exit 11',
      'wait $r || exit 12',
    ].join('\n');
    const inst = spawn(EPHEMERA, ['run', '--memory', String(256 * MiB), '--root', root, '--stats', statsFile, '--', '/bin/sh', '-c', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    inst.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    inst.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = once(inst, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const state = { finished: false };
    void exited.then(() => (state.finished = true));
    const running = (): boolean => !state.finished;

    const shimSock = await waitForFile(info, 15_000);
    const client = await DaemonClient.connect(join(dirname(shimSock), 'control.sock'));
    const resizes: ResizeResult[] = [];
    try {
      const s = await client.stats();
      assert.ok(s.cgroup !== null, 'ephemera run --memory must report its cgroup');
      const limiter = s.cgroup_version === 2 ? new CgroupV2Limiter(s.cgroup) : new CgroupV1Limiter(s.cgroup);
      assert.equal(await limiter.getLimit(), 256 * MiB);
      for (let i = 0; running(); i++) {
        const target = LIMITS[i % LIMITS.length] ?? 256 * MiB;
        try {
          resizes.push(await resizeInstance(limiter, client, target));
          assert.equal(await limiter.getLimit(), target);
        } catch (e) {
          // The instance may end (daemon gone, cgroup removed) between two steps; anything else
          // is a failure.
          await Promise.race([exited, sleep(5000)]);
          if (!running()) break;
          throw e;
        }
        await sleep(100);
      }
    } finally {
      client.close();
    }
    const [code, signal] = await exited;
    assert.equal(signal, null);
    assert.equal(code, 0, `writer/reader failed (11 = writer, 12 = reader): ${err}`);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
    assert.deepEqual(lines.find((l) => 'written' in l), { written: FILES });
    const reader = lines.find((l) => 'verified' in l);
    assert.equal(reader?.['verified'], FILES);
    const stats = JSON.parse(await readFile(statsFile, 'utf8')) as Record<string, number>;
    assert.equal(stats['oom_kills'], 0);
    const lowered = resizes.filter((r) => r.direction === 'lower').length;
    const raised = resizes.filter((r) => r.direction === 'raise').length;
    assert.ok(lowered >= 3 && raised >= 2, `only ${lowered} lowerings and ${raised} raisings happened while the processes ran`);
    assert.ok((stats['evictions'] ?? 0) > 0, 'lowering to 40 MiB with ~96 MiB of files must have evicted');
    // Written back on exit: every byte of every file and of the journal is on disk.
    for (let i = 0; i < FILES; i++) {
      const unit = createHash('sha256').update(`resize-${i}`).digest();
      const want = Buffer.concat(Array.from({ length: SIZE / 32 }, () => unit));
      assert.ok((await readFile(join(root, `f${i}.dat`))).equals(want), `f${i}.dat differs on disk after the run`);
    }
    assert.equal(await readFile(join(root, 'journal.log'), 'utf8'), Array.from({ length: FILES }, (_, i) => `${i}\n`).join(''));
    t.diagnostic(`${lowered} lowerings, ${raised} raisings, ${resizes.reduce((a, r) => a + r.attempts, 0)} shrink rounds; evictions ${stats['evictions']}, OOM kills 0, reader passes ${String(reader['passes'])}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('a limit below what the function itself uses is refused safely: EPH_RESIZE_FAILED, limit kept, nothing killed', { skip: SKIP, timeout: 120_000 }, async () => {
  const work = await mkdtemp('/var/tmp/eph-resize-');
  try {
    const root = join(work, 'root');
    await mkdir(root);
    const info = join(work, 'sock');
    const statsFile = join(work, 'stats.json');
    // 48 MiB of the function's own memory, held until the test says so.
    const release = join(work, 'release');
    const hold = `import os, time\nb = b"x" * (${48 * MiB})\nopen(${JSON.stringify(join(work, 'holding'))}, "w").close()\nwhile not os.path.exists(${JSON.stringify(release)}): time.sleep(0.02)\nprint(len(b))`;
    const script = `echo "$EPHEMERA_SOCK" > ${info}\nexec ${PYTHON} -c '${hold}'`;
    const inst = spawn(EPHEMERA, ['run', '--memory', String(128 * MiB), '--root', root, '--stats', statsFile, '--', '/bin/sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    inst.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    inst.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = once(inst, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const shimSock = await waitForFile(info, 15_000);
    await waitForFile(join(work, 'holding'), 15_000).catch(() => undefined);
    const client = await DaemonClient.connect(join(dirname(shimSock), 'control.sock'));
    try {
      const s = await client.stats();
      assert.ok(s.cgroup !== null);
      const limiter = s.cgroup_version === 2 ? new CgroupV2Limiter(s.cgroup) : new CgroupV1Limiter(s.cgroup);
      await assert.rejects(resizeInstance(limiter, client, 32 * MiB), (e) => isEphemeraError(e, 'EPH_RESIZE_FAILED') && e.detail['limit'] === 128 * MiB);
      assert.equal(await limiter.getLimit(), 128 * MiB, 'the cgroup limit must be left alone');
      // The daemon got its old limit back and still serves.
      assert.equal((await client.stats()).limit, 128 * MiB);
      // A reachable target still works afterwards.
      const ok = await resizeInstance(limiter, client, 96 * MiB);
      assert.equal(ok.direction, 'lower');
    } finally {
      client.close();
    }
    await writeFile(release, '');
    const [code] = await exited;
    assert.equal(code, 0, err);
    assert.equal(out.trim(), String(48 * MiB));
    const stats = JSON.parse(await readFile(statsFile, 'utf8')) as Record<string, number>;
    assert.equal(stats['oom_kills'], 0);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
