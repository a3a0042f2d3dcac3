/**
 * `ephemera up` end to end: the real CLI process, a real node agent, real Docker containers with
 * the action runtime, ephemerad and libephemera.so, driven by the official `openwhisk` client.
 * Ends with SIGTERM and checks that nothing is left running.
 */
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import openwhisk from 'openwhisk';

import { ensureDockerEngine } from '../container/dockerd.js';
import { DockerEngine } from '../container/engine.js';
import { ensureFunctionImage } from '../container/image.js';
import { ensureBusyboxImage } from '../container/testimage.js';
import { startAnnounced, stopChild } from '../platform/child.js';
import { containersOfNode, readProps } from '../platform/harness.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const NAME = `platform-e2e-${String(process.pid)}`;
const NODE = `${NAME}-node-1`;
/** `--container-cpus`: every action container of this platform gets this cap. */
const CPUS = 1.5;

type Ann = { annotations?: { key: string; value: unknown }[] };
const ann = (r: Ann, key: string): unknown => r.annotations?.find((a) => a.key === key)?.value;

const IO_ACTION = `
import os
def main(args):
    n = int(args.get("mb", 4))
    block = b"e" * (1 << 20)
    with open("/tmp/scratch.bin", "wb") as f:
        for _ in range(n):
            f.write(block)
    total = 0
    with open("/tmp/scratch.bin", "rb") as f:
        while True:
            b = f.read(1 << 16)
            if not b:
                break
            total += len(b)
    print("wrote and read", total)
    return {"bytes": total, "who": args.get("who")}
`;

describe('ephemera up with a real node agent and Docker', { timeout: 900_000 }, () => {
  let skip: string | null = null;
  let dir = '';
  let up: ChildProcess | undefined;
  let url = '';
  let ow: openwhisk.Client | undefined;
  let other: openwhisk.Client | undefined;

  before(async () => {
    skip = ensureDockerEngine();
    if (skip !== null) return;
    dir = mkdtempSync('/tmp/platform-up-');
    // The first start may build the function image.
    const started = await startAnnounced(
      [process.execPath, MAIN, 'up', '--port', '0', '--state-dir', join(dir, 'state'), '--name', NAME, '--keep-alive-ms', '120000', '--tenant', 'other', '--container-cpus', String(CPUS)],
      /API on (http:\/\/\S+)/,
      600_000,
      { env: { ...process.env, EPHEMERA_HOME: join(dir, 'home') } },
    );
    up = started.child;
    url = started.match[1] ?? '';
    ow = openwhisk({ apihost: url, api_key: readProps(join(dir, 'home', 'guest.wskprops')).AUTH ?? '' });
    other = openwhisk({ apihost: url, api_key: readProps(join(dir, 'home', 'other.wskprops')).AUTH ?? '' });
  });

  after(async () => {
    if (up !== undefined) await stopChild(up, 'SIGTERM', 120_000);
    for (const id of containersOfNode(NODE)) spawnSync('docker', ['rm', '-f', id], { timeout: 30_000 });
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  test('an I/O action runs in a container on Ephemera; the record carries the node, the grant and the fast operations', async (t) => {
    if (skip !== null || ow === undefined) return t.skip(skip ?? 'no platform');
    await ow.actions.create({ name: 'io', action: IO_ACTION, kind: 'python:3', params: { who: 'default' }, limits: { memory: 256, timeout: 60_000 } });
    const rec = await ow.actions.invoke({ name: 'io', blocking: true, params: { mb: 8 } });
    const res = rec.response;
    assert.ok(res !== undefined);
    assert.deepEqual(res.result, { bytes: 8 << 20, who: 'default' });
    assert.equal(res.status, 'success');
    assert.ok(rec.logs.some((l) => /stdout: wrote and read 8388608$/.test(l)), JSON.stringify(rec.logs));
    assert.equal(typeof ann(rec, 'initTime'), 'number');
    const e = ann(rec, 'ephemera') as Record<string, unknown>;
    assert.equal(e.node, NODE);
    assert.equal(e.initialBytes, 256 << 20);
    assert.equal(typeof e.grantedBytes, 'number');
    assert.equal(typeof e.pool, 'string');
    assert.ok((e.fast_writes as number) > 0, `writes served from memory: ${JSON.stringify(e)}`);
    assert.ok((e.fast_reads as number) > 0, `reads served from memory: ${JSON.stringify(e)}`);
    assert.ok((e.bytes_in_memory_peak as number) >= 8 << 20, JSON.stringify(e));
    const warm = await ow.actions.invoke({ name: 'io', blocking: true, params: { mb: 1, who: 'me' } });
    assert.deepEqual(warm.response?.result, { bytes: 1 << 20, who: 'me' });
    assert.equal(ann(warm, 'initTime'), undefined, 'the second activation reused the warm container');
    // The rest of the client's surface against the real platform.
    assert.deepEqual((await ow.actions.list()).map((a) => a.name), ['io']);
    const listed = await ow.activations.list({ name: 'io' });
    assert.deepEqual(listed.map((a) => a.activationId).sort(), [rec.activationId, warm.activationId].sort());
    assert.deepEqual(await ow.activations.get({ name: rec.activationId }), rec);
    assert.deepEqual(await ow.activations.logs({ name: rec.activationId }), { logs: rec.logs });
    assert.deepEqual(await ow.activations.result({ name: rec.activationId }), rec.response);
    const { activationId } = await ow.actions.invoke({ name: 'io', params: { mb: 1 } });
    for (let i = 0; i < 300; i++) {
      const got = await ow.activations.get({ name: activationId }).catch(() => undefined);
      if (got !== undefined) { assert.equal(got.response?.success, true); break; }
      await new Promise((r) => setTimeout(r, 100));
    }
    const prof = ann(await ow.actions.get({ name: 'io' }), 'ephemera.profile') as Record<string, unknown>;
    assert.equal(prof.source, 'observed');
    assert.ok((prof.filePeakBytes as number) >= 8 << 20, JSON.stringify(prof));
  });

  test('--container-cpus reaches the real container: its HostConfig.NanoCpus is the cap', async (t) => {
    if (skip !== null || ow === undefined) { t.skip(skip ?? 'no client'); return; }
    await ow.actions.update({ name: 'cap', action: 'def main(a):\n    return {"ok": True}\n', kind: 'python:3' });
    const rec = await ow.actions.invoke({ name: 'cap', blocking: true, result: false }) as { response: { success: boolean } };
    assert.equal(rec.response.success, true);
    // The warm container stays for --keep-alive-ms: ask Docker what it was created with.
    const ids = containersOfNode(NODE, { running: true, labels: ['ephemera.function=guest/cap'] });
    assert.equal(ids.length, 1, `one warm container of guest/cap, got ${JSON.stringify(ids)}`);
    const nano = spawnSync('docker', ['inspect', '-f', '{{.HostConfig.NanoCpus}}', ids[0] ?? ''], { encoding: 'utf8', timeout: 30_000 }).stdout.trim();
    assert.equal(Number(nano), CPUS * 1e9);
  });

  test('a sequence runs end to end in containers', async (t) => {
    if (skip !== null || ow === undefined) return t.skip(skip ?? 'no platform');
    await ow.actions.create({ name: 'add', action: 'def main(a):\n    return {"n": a["n"] + a.get("k", 1)}\n', kind: 'python:3', params: { k: 5 } });
    await ow.actions.create({ name: 'sq', action: 'def main(a):\n    return {"n": a["n"] * a["n"]}\n', kind: 'python:3' });
    await ow.actions.create({ name: 'flow', sequence: ['add', 'sq'] } as unknown as Parameters<typeof ow.actions.create>[0]);
    assert.deepEqual(await ow.actions.invoke({ name: 'flow', blocking: true, result: true, params: { n: 1 } }), { n: 36 });
  });

  test('a blackbox action runs in the local image it names; a missing image is a whisk internal error naming it', async (t) => {
    if (skip !== null || ow === undefined) return t.skip(skip ?? 'no platform');
    const image = (await ensureFunctionImage(new DockerEngine())).ref;
    // With an action object, the client sends it as the body as it is (parameters included).
    const box = { exec: { kind: 'blackbox', image, code: 'def main(a):\n    return {"in": "box", "a": a}\n' }, parameters: [{ key: 'p', value: 1 }] };
    await ow.actions.create({ name: 'box', action: box });
    assert.deepEqual(await ow.actions.invoke({ name: 'box', blocking: true, result: true }), { in: 'box', a: { p: 1 } });
    await ow.actions.create({ name: 'nobox', action: { exec: { kind: 'blackbox', image: 'ephemera-platform-no-such-image:1' } } as unknown as openwhisk.Action });
    await assert.rejects(ow.actions.invoke({ name: 'nobox', blocking: true }), (err: { statusCode?: number; error?: { response: { status: string; result: { error?: string } } } }) => {
      assert.equal(err.statusCode, 500);
      const r = err.error?.response;
      assert.ok(r !== undefined);
      assert.equal(r.status, 'whisk internal error');
      assert.match(String(r.result.error), /ephemera-platform-no-such-image/);
      return true;
    });
  });

  test('a blackbox image not built FROM the function image fails at once with its exit status, its output and what to build', async (t) => {
    if (skip !== null || ow === undefined) return t.skip(skip ?? 'no platform');
    // busybox has /bin/sh but neither python3 nor the runtime: the container exits at once.
    const busybox = await ensureBusyboxImage(new DockerEngine());
    await ow.actions.create({ name: 'foreign', action: { exec: { kind: 'blackbox', image: busybox } } as unknown as openwhisk.Action });
    await assert.rejects(ow.actions.invoke({ name: 'foreign', blocking: true }), (err: { statusCode?: number; error?: { response: { status: string; result: { error?: string } } } }) => {
      assert.equal(err.statusCode, 500);
      const r = err.error?.response;
      assert.ok(r !== undefined);
      assert.equal(r.status, 'whisk internal error');
      const msg = String(r.result.error);
      assert.match(msg, /exited with status \d+ before its action runtime answered/);
      assert.match(msg, /ow_entry\.sh/, 'the output names the missing entry point');
      assert.ok(msg.includes(`image ${busybox} is not the function image: a blackbox image must be built FROM ephemera-fn:`), msg);
      return true;
    });
    assert.deepEqual(await ow.actions.invoke({ name: 'box', blocking: true, result: true }), { in: 'box', a: { p: 1 } }, 'the platform serves on');
  });

  test('past limits.timeout: the developer error, and the platform keeps serving', async (t) => {
    if (skip !== null || ow === undefined) return t.skip(skip ?? 'no platform');
    await ow.actions.create({ name: 'sleep', action: 'import time\ndef main(a):\n    time.sleep(a.get("s", 30))\n    return {"slept": a.get("s", 30)}\n', kind: 'python:3', limits: { timeout: 2000 } });
    await assert.rejects(ow.actions.invoke({ name: 'sleep', blocking: true }), (err: { statusCode?: number; error?: { response?: { result?: { error?: string } } } }) => {
      assert.equal(err.statusCode, 502);
      assert.equal(err.error?.response?.result?.error, 'The action exceeded its time limits of 2000 milliseconds.');
      return true;
    });
    assert.deepEqual(await ow.actions.invoke({ name: 'sleep', blocking: true, result: true, params: { s: 0 } }), { slept: 0 });
  });

  test('an action that exhausts its memory ends with "exhausted its memory", not a timeout', async (t) => {
    if (skip !== null || ow === undefined) return t.skip(skip ?? 'no platform');
    const hog = 'def main(a):\n    chunks = []\n    for _ in range(2000):\n        chunks.append(bytearray(1 << 20))\n    return {"held": len(chunks)}\n';
    await ow.actions.create({ name: 'hog', action: hog, kind: 'python:3', limits: { memory: 128, timeout: 120_000 } });
    await assert.rejects(ow.actions.invoke({ name: 'hog', blocking: true }), (err: { statusCode?: number; error?: { response?: { result?: { error?: string } }; annotations?: { key: string; value: unknown }[] } }) => {
      assert.equal(err.statusCode, 502);
      assert.equal(err.error?.response?.result?.error, 'The action exhausted its memory and was aborted.');
      assert.equal(ann(err.error ?? {}, 'timeout'), false);
      return true;
    });
    assert.deepEqual(await ow.actions.invoke({ name: 'add', blocking: true, result: true, params: { n: 1 } }), { n: 6 }, 'the platform keeps serving');
  });

  test("a tenant's I/O-heavy action gets memory from its CPU-bound action through the Manager", async (t) => {
    if (skip !== null || ow === undefined) return t.skip(skip ?? 'no platform');
    const MiB = 1 << 20;
    const cpu = 'import time\ndef main(a):\n    end = time.time() + a.get("s", 1)\n    n = 0\n    while time.time() < end:\n        n += 1\n    return {"spins": n}\n';
    // Profiles set by hand (the profiler's job later): the CPU action needs little of its 256 MiB, the
    // I/O action more files than its 128 MiB hold.
    await ow.actions.create({ name: 'spin', action: cpu, kind: 'python:3', limits: { memory: 256 }, annotations: { 'ephemera.profile': { ownPeakBytes: 12 * MiB, filePeakBytes: 0 } } });
    await ow.actions.create({ name: 'heavy', action: IO_ACTION, kind: 'python:3', limits: { memory: 128 }, annotations: { 'ephemera.profile': { ownPeakBytes: 24 * MiB, filePeakBytes: 160 * MiB } } });
    const spinning = ow.actions.invoke({ name: 'spin', blocking: true, params: { s: 8 } });
    // Wait until the CPU action's container runs (it lends only while running).
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (containersOfNode(NODE, { running: true, labels: ['ephemera.function=guest/spin'], timeoutMs: 10_000 }).length > 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 1500));
    const rec = await ow.actions.invoke({ name: 'heavy', blocking: true, params: { mb: 100 } });
    const e = ann(rec, 'ephemera') as Record<string, number | string>;
    t.diagnostic(`I/O action's ephemera annotation: ${JSON.stringify(e)}`);
    const spun = await spinning;
    assert.equal(spun.response?.success, true);
    assert.equal(ann(spun, 'ephemera') !== undefined, true);
    assert.equal(e.pool, 'allocation', JSON.stringify(e));
    assert.equal(e.initialBytes, 128 * MiB);
    assert.ok((e.grantedBytes as number) > 128 * MiB, `the I/O action was granted more than its 128 MiB: ${JSON.stringify(e)}`);
    assert.ok((e.fast_writes as number) > 0, JSON.stringify(e));
    assert.equal((ann(spun, 'ephemera') as Record<string, unknown>).pool, 'harvest');
  });

  test("another tenant's I/O-heavy action never receives this tenant's memory", async (t) => {
    if (skip !== null || ow === undefined || other === undefined) return t.skip(skip ?? 'no platform');
    const MiB = 1 << 20;
    await other.actions.create({ name: 'heavy', action: IO_ACTION, kind: 'python:3', limits: { memory: 128 }, annotations: { 'ephemera.profile': { ownPeakBytes: 24 * MiB, filePeakBytes: 160 * MiB } } });
    const spinning = ow.actions.invoke({ name: 'spin', blocking: true, params: { s: 6 } });
    await new Promise((r) => setTimeout(r, 1500));
    const rec = await other.actions.invoke({ name: 'heavy', blocking: true, params: { mb: 100 } });
    await spinning;
    const e = ann(rec, 'ephemera') as Record<string, number | string>;
    t.diagnostic(`other tenant's I/O action: ${JSON.stringify(e)}`);
    assert.equal(rec.response?.success, true);
    assert.equal(e.initialBytes, 128 * MiB);
    assert.equal(e.grantedBytes, 128 * MiB, 'no memory crossed from guest to other');
  });

  test('SIGTERM stops it cleanly: exit 0, no container left', async (t) => {
    if (skip !== null || up === undefined) return t.skip(skip ?? 'no platform');
    assert.ok(containersOfNode(NODE).length > 0, 'warm containers exist before the stop');
    assert.equal(await stopChild(up, 'SIGTERM', 120_000), 0);
    assert.deepEqual(containersOfNode(NODE), []);
    const cgroups = readdirSync('/sys/fs/cgroup').flatMap((h) => [join('/sys/fs/cgroup', h, `ephemera-${NODE}`)]).concat(join('/sys/fs/cgroup', `ephemera-${NODE}`)).filter((d) => existsSync(d));
    assert.deepEqual(cgroups, [], 'the node agent\'s parent cgroups are removed');
  });
});
