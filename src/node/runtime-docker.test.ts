/**
 * The action runtime of the function image, driven through the node agent's API in real
 * containers: OpenWhisk's /init and /run, one /init only, code as a string or a zip, the __OW_
 * environment, the activation logs cut at the sentinel, and the action running on Ephemera.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { dockerReady, startTestNode, stillManager, type TestNode } from './testkit.js';

const MiB = 1024 * 1024;

const ACTION = `
import os, subprocess
def main(args):
    print("hello from", args.get("name"))
    with open("/tmp/scratch.txt", "w") as f:
        f.write("x" * 100000)
    n = int(subprocess.run(["wc", "-c", "/tmp/scratch.txt"], capture_output=True, text=True).stdout.split()[0])
    print("to stderr", file=__import__("sys").stderr)
    subprocess.run(["echo", "from a child"])
    return {"greeting": "hi " + args.get("name", "?"), "bytes": n,
            "ns": os.environ.get("__OW_NAMESPACE"), "act": os.environ.get("__OW_ACTIVATION_ID"),
            "deadline": os.environ.get("__OW_DEADLINE"), "secret": os.environ.get("SECRET"),
            "preload": os.environ.get("LD_PRELOAD", "")}
`;

describe('the action runtime in a real container', { timeout: 240_000 }, () => {
  let skip: string | null = null;
  let node: TestNode | undefined;

  before(async () => {
    skip = await dockerReady();
    if (skip === null) node = await startTestNode(stillManager);
  });
  after(async () => {
    await node?.close();
  });

  test('init once, run with the __OW_ environment, logs up to the sentinel, scratch in memory', { timeout: 120_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const c = await node.client.createContainer({ tenant: 'alice', function: 'greet', memoryBytes: 128 * MiB });
    assert.match(c.id, /^[0-9a-f]{64}$/);
    const init = await node.client.init(c.id, { value: { name: 'greet', main: 'main', code: ACTION, binary: false, env: { SECRET: 's3' } } });
    assert.deepEqual(init, { statusCode: 200, body: { ok: true } });
    const again = await node.client.init(c.id, { value: { code: ACTION } });
    assert.equal(again.statusCode, 403);
    assert.match(JSON.stringify(again.body), /more than once/);

    const run = await node.client.run(c.id, {
      value: { name: 'bob' },
      namespace: 'guest',
      action_name: '/guest/greet',
      activation_id: 'a1b2c3',
      transaction_id: 't1',
      deadline: String(Date.now() + 60_000),
      timeoutMs: 30_000,
    });
    assert.equal(run.statusCode, 200);
    const body = run.body as Record<string, string | number>;
    assert.equal(body['greeting'], 'hi bob');
    assert.equal(body['bytes'], 100000);
    assert.equal(body['ns'], 'guest');
    assert.equal(body['act'], 'a1b2c3');
    assert.equal(body['secret'], 's3');
    assert.match(String(body['preload']), /libephemera\.so/);
    assert.match(String(body['deadline']), /^\d+$/);
    assert.ok(run.logs.some((l) => / stdout: hello from bob$/.test(l)), run.logs.join('\n'));
    assert.ok(run.logs.some((l) => / stderr: to stderr$/.test(l)), run.logs.join('\n'));
    assert.ok(run.logs.some((l) => / stdout: from a child$/.test(l)), `a child process's output is the action's: ${run.logs.join('\n')}`);
    assert.ok(!run.logs.some((l) => l.includes('XXX_THE_END')), 'the sentinel itself is not a log line');
    // The output went to the run directory's files, not through the engine's log path.
    const engineOut = await node.engine.logs(c.id);
    assert.ok(!`${engineOut.stdout}${engineOut.stderr}`.includes('hello from bob'), `the engine saw the action's output: ${JSON.stringify(engineOut)}`);
    assert.ok(run.ephemera.stats.fast_writes > 0, `the action wrote /tmp through the fast path: ${JSON.stringify(run.ephemera.stats)}`);
    assert.equal(run.ephemera.initialBytes, 128 * MiB);

    // A second activation gets only its own lines.
    const run2 = await node.client.run(c.id, { value: { name: 'eve' }, namespace: 'guest', activation_id: 'z9' });
    assert.equal((run2.body as Record<string, string>)['act'], 'z9');
    assert.ok(run2.logs.some((l) => l.endsWith('hello from eve')));
    assert.ok(!run2.logs.some((l) => l.endsWith('hello from bob')));
    await node.client.removeContainer(c.id);
    await assert.rejects(node.client.run(c.id, { value: {} }), { code: 'EPH_NODE_UNKNOWN_CONTAINER' });
  });

  test('a zip action with __main__.py, an application error, and a bad zip', { timeout: 120_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const dir = await mkdtemp(join(tmpdir(), 'eph-node-zip-'));
    try {
      await writeFile(join(dir, '__main__.py'), 'from helper import shout\ndef handler(args):\n    if args.get("fail"):\n        raise ValueError("asked to fail")\n    return {"said": shout(args["word"])}\n');
      await writeFile(join(dir, 'helper.py'), 'def shout(w):\n    return w.upper() + "!"\n');
      execFileSync('python3', ['-m', 'zipfile', '-c', join(dir, 'a.zip'), join(dir, '__main__.py'), join(dir, 'helper.py')]);
      const zip = (await readFile(join(dir, 'a.zip'))).toString('base64');
      const c = await node.client.createContainer({ tenant: 'alice', function: 'zipped', memoryBytes: 96 * MiB });
      assert.equal((await node.client.init(c.id, { value: { main: 'handler', code: zip, binary: true } })).statusCode, 200);
      const ok = await node.client.run(c.id, { value: { word: 'hey' } });
      assert.deepEqual([ok.statusCode, ok.body], [200, { said: 'HEY!' }]);
      const bad = await node.client.run(c.id, { value: { word: 'x', fail: true } });
      assert.equal(bad.statusCode, 502);
      assert.deepEqual(bad.body, { error: 'asked to fail' });
      assert.ok(bad.logs.some((l) => l.includes('ValueError: asked to fail')), `the traceback is in the logs: ${bad.logs.join('\n')}`);
      await node.client.removeContainer(c.id);

      const c2 = await node.client.createContainer({ tenant: 'alice', function: 'broken', memoryBytes: 64 * MiB });
      const r = await node.client.init(c2.id, { value: { code: Buffer.from('not a zip').toString('base64'), binary: true } });
      assert.equal(r.statusCode, 502);
      assert.match(JSON.stringify(r.body), /not a zip file/);
      await node.client.removeContainer(c2.id);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a run past its timeout and a run the OOM killer ends: 502, flagged, the container removed', { timeout: 120_000 }, async (t) => {
    if (skip !== null || node === undefined) return t.skip(skip ?? 'no node');
    const slow = await node.client.createContainer({ tenant: 'alice', function: 'slow', memoryBytes: 64 * MiB });
    await node.client.init(slow.id, { value: { code: 'import time\ndef main(a):\n    print("starting")\n    time.sleep(30)\n    return {}\n' } });
    const late = await node.client.run(slow.id, { value: {}, timeoutMs: 1500 });
    assert.equal(late.statusCode, 502);
    assert.equal(late.timedOut, true);
    assert.deepEqual(late.body, { error: 'The action exceeded its time limits of 1500 milliseconds.' });
    assert.ok(!(await node.client.listContainers()).some((v) => v.id === slow.id), 'a timed-out container is not reused');

    const hog = await node.client.createContainer({ tenant: 'alice', function: 'hog', memoryBytes: 64 * MiB });
    await node.client.init(hog.id, { value: { code: 'def main(a):\n    x = [bytearray(b"h") * (8 << 20) for _ in range(32)]\n    return {"n": len(x)}\n' } });
    const dead = await node.client.run(hog.id, { value: {}, timeoutMs: 60_000 });
    assert.equal(dead.statusCode, 502);
    assert.equal(dead.oom, true, JSON.stringify(dead));
    // The agent's journal has the kill, for the controller's /metrics (ephemera_oom_kills_total).
    const kills = (await node.client.events(0)).events.filter((e) => e.type === 'oom-kill');
    assert.deepEqual(kills.map((e) => [e.tenant, e.container]), [['alice', hog.id]]);
    assert.ok(!(await node.client.listContainers()).some((v) => v.id === hog.id), 'a container whose action died is removed');
  });
});
