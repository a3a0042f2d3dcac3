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

/** An instance of `ephemera run --memory` around `sh -c script`, its files in a scratch directory. */
interface Instance {
  readonly work: string;
  readonly root: string;
  readonly statsFile: string;
  /** Where the script's first line writes the shim's socket ($EPHEMERA_SOCK). */
  readonly info: string;
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;
  /** What the script printed so far, on stdout and on stderr. */
  readonly out: () => string;
  readonly err: () => string;
}

/**
 * Run script (made from the scratch directory and the managed root in it) as an instance limited
 * to limit bytes, after a first line that tells the shim's socket, and give it to use; the scratch
 * directory is removed after.
 */
async function withInstance(limit: number, script: (work: string, root: string) => string, use: (inst: Instance) => Promise<void>): Promise<void> {
  const work = await mkdtemp('/var/tmp/eph-resize-');
  try {
    const root = join(work, 'root');
    await mkdir(root);
    const info = join(work, 'sock');
    const statsFile = join(work, 'stats.json');
    const proc = spawn(EPHEMERA, ['run', '--memory', String(limit), '--root', root, '--stats', statsFile, '--', '/bin/sh', '-c', `echo "$EPHEMERA_SOCK" > ${info}\n${script(work, root)}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await use({ work, root, statsFile, info, exited, out: () => out, err: () => err });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The daemon's control connection once the instance has told the shim's socket, and the limiter of its cgroup. */
async function attach(inst: Instance): Promise<{ client: DaemonClient; limiter: CgroupV1Limiter | CgroupV2Limiter }> {
  const shimSock = await waitForFile(inst.info, 15_000);
  const client = await DaemonClient.connect(join(dirname(shimSock), 'control.sock'));
  try {
    const s = await client.stats();
    assert.ok(s.cgroup !== null, 'ephemera run --memory must report its cgroup');
    return { client, limiter: s.cgroup_version === 2 ? new CgroupV2Limiter(s.cgroup) : new CgroupV1Limiter(s.cgroup) };
  } catch (e) {
    client.close();
    throw e;
  }
}

test('lowering and raising the limit under a running writer and reader loses nothing and kills nothing', { skip: SKIP, timeout: 180_000 }, async (t) => {
  const script = (_work: string, root: string): string =>
    [
      `${PYTHON} ${IO} writer ${root} ${FILES} ${SIZE} & w=$!`,
      `${PYTHON} ${IO} reader ${root} ${FILES} ${SIZE} & r=$!`,
      'wait $w || exit 11',
      'wait $r || exit 12',
    ].join('\n');
  await withInstance(256 * MiB, script, async (inst) => {
    const { root, statsFile, exited } = inst;
    const state = { finished: false };
    void exited.then(() => (state.finished = true));
    const running = (): boolean => !state.finished;

    const { client, limiter } = await attach(inst);
    const resizes: ResizeResult[] = [];
    try {
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
    assert.equal(code, 0, `writer/reader failed (11 = writer, 12 = reader): ${inst.err()}`);
    const lines = inst.out().trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
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
  });
});

test('a limit below what the function itself uses is refused safely: EPH_RESIZE_FAILED, limit kept, nothing killed', { skip: SKIP, timeout: 120_000 }, async () => {
  // 48 MiB of the function's own memory, held until the test says so.
  const hold = (work: string): string =>
    `import os, time\nb = b"x" * (${48 * MiB})\nopen(${JSON.stringify(join(work, 'holding'))}, "w").write("held")\nwhile not os.path.exists(${JSON.stringify(join(work, 'release'))}): time.sleep(0.02)\nprint(len(b))`;
  await withInstance(128 * MiB, (work) => `exec ${PYTHON} -c '${hold(work)}'`, async (inst) => {
    // Written once the 48 MiB are the function's (waitForFile wants text: an empty file never counted).
    assert.equal(await waitForFile(join(inst.work, 'holding'), 15_000), 'held');
    const { client, limiter } = await attach(inst);
    try {
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
    await writeFile(join(inst.work, 'release'), '');
    const [code] = await inst.exited;
    assert.equal(code, 0, inst.err());
    assert.equal(inst.out().trim(), String(48 * MiB));
    const stats = JSON.parse(await readFile(inst.statsFile, 'utf8')) as Record<string, number>;
    assert.equal(stats['oom_kills'], 0);
  });
});
