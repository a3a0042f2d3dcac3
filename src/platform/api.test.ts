/**
 * The controller against the official `openwhisk` npm client, on a real HTTP server (port 0), with
 * activations run as real python3 processes by the FakeNode at the node-agent seam. The same
 * client against the real node agent and Docker is in e2e.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

import type openwhisk from 'openwhisk';

import { FakeNode } from './fake-node.js';
import { readProps, scratchDir, startTestPlatform, type TestPlatform } from './harness.js';
import { Store } from './store.js';

const ECHO = `
import os, sys
def main(args):
    print("hello from", os.environ.get("__OW_ACTION_NAME"))
    print("to stderr", file=sys.stderr)
    return {"args": args, "activation": os.environ.get("__OW_ACTIVATION_ID"), "ns": os.environ.get("__OW_NAMESPACE")}
`;

async function withPlatform(tag: string, body: (p: TestPlatform, node: FakeNode) => Promise<void>, opts: Parameters<typeof startTestPlatform>[2] = {}): Promise<void> {
  const code = scratchDir(`${tag}-code`);
  const node = new FakeNode(code);
  const p = await startTestPlatform(tag, node, opts);
  try {
    await body(p, node);
  } finally {
    await p.close();
    rmSync(code, { recursive: true, force: true });
  }
}

function ann(rec: { annotations?: { key: string; value: unknown }[] }, key: string): unknown {
  return rec.annotations?.find((a) => a.key === key)?.value;
}

async function waitRecord(ow: openwhisk.Client, id: string): Promise<openwhisk.Activation<openwhisk.Dict>> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      return await ow.activations.get({ name: id });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

test('the openwhisk client creates, updates, gets, lists, invokes and deletes; records have every field', { timeout: 60_000 }, async () => {
  await withPlatform('client', async (p, node) => {
    const ow = p.client('guest');
    const created = await ow.actions.create({
      name: 'echo', action: ECHO, kind: 'python:3',
      params: { greeting: 'hi', who: 'default' }, annotations: { team: 'a' }, limits: { memory: 128, timeout: 20_000 },
    });
    assert.equal(created.name, 'echo');
    assert.equal(created.namespace, 'guest');
    assert.equal(created.version, '0.0.1');
    assert.deepEqual(created.limits, { timeout: 20_000, memory: 128, logs: 10, concurrency: 1 });
    assert.deepEqual(created.exec, { kind: 'python:3', code: ECHO, binary: false });
    assert.equal(ann(created, 'team'), 'a');
    assert.equal(ann(created, 'exec'), 'python:3');

    await assert.rejects(ow.actions.create({ name: 'echo', action: ECHO, kind: 'python:3' }), (e: { statusCode?: number; message: string }) => {
      assert.equal(e.statusCode, 409);
      assert.match(e.message, /overwrite=true/);
      return true;
    });
    const updated = await ow.actions.update({ name: 'echo', action: ECHO, kind: 'python:3', params: { greeting: 'hello', who: 'default' }, limits: { memory: 256 } });
    assert.equal(updated.version, '0.0.2');
    assert.equal(updated.limits?.memory, 256);
    assert.equal(updated.limits.timeout, 20_000, 'an update keeps limits it does not give');
    const got = await ow.actions.get({ name: 'echo' });
    assert.equal(got.version, '0.0.2');
    assert.deepEqual(got.parameters, [{ key: 'greeting', value: 'hello' }, { key: 'who', value: 'default' }]);

    for (const n of ['a1', 'a2', 'a3']) await ow.actions.create({ name: n, action: 'def main(a):\n    return a\n', kind: 'python:3' });
    const all = await ow.actions.list();
    assert.equal(all.length, 4);
    assert.equal((all[0] as { exec: unknown }).exec !== undefined, true);
    assert.equal((all[0] as { exec: { code?: string } }).exec.code, undefined, 'listings leave code out');
    assert.equal((await ow.actions.list({ limit: 2 })).length, 2);
    assert.deepEqual((await ow.actions.list({ skip: 3 })).length, 1);
    assert.deepEqual(await ow.actions.list({ count: true }), { actions: 4 });

    // Blocking: the whole record, parameters merged (defaults, then the invocation's).
    const before = Date.now();
    const rec = await ow.actions.invoke({ name: 'echo', blocking: true, params: { who: 'me' } });
    assert.equal(typeof rec.activationId, 'string');
    assert.match(rec.activationId, /^[0-9a-f]{32}$/);
    assert.equal(rec.namespace, 'guest');
    assert.equal(rec.name, 'echo');
    assert.equal(rec.subject, 'guest');
    assert.equal(rec.version, '0.0.2');
    assert.equal(rec.publish, false);
    assert.ok(rec.start >= before && rec.end >= rec.start);
    assert.equal(rec.duration, rec.end - rec.start);
    assert.deepEqual(rec.response, {
      status: 'success', statusCode: 0, success: true,
      result: { args: { greeting: 'hello', who: 'me' }, activation: rec.activationId, ns: 'guest' },
    });
    assert.ok(rec.logs.some((l) => /stdout: hello from \/guest\/echo$/.test(l)), JSON.stringify(rec.logs));
    assert.ok(rec.logs.some((l) => /stderr: to stderr$/.test(l)));
    assert.equal(ann(rec, 'path'), 'guest/echo');
    assert.equal(ann(rec, 'kind'), 'python:3');
    assert.deepEqual(ann(rec, 'limits'), { timeout: 20_000, memory: 256, logs: 10, concurrency: 1 });
    assert.equal(typeof ann(rec, 'waitTime'), 'number');
    assert.equal(typeof ann(rec, 'initTime'), 'number', 'a cold start has initTime');
    assert.deepEqual(ann(rec, 'ephemera'), {
      pool: 'allocation', initialBytes: 256 << 20, grantedBytes: 256 << 20, node: 'fake',
      fast_reads: 1, fast_writes: 2, slow_ops: 0, evictions: 0, bytes_in_memory_peak: 4096,
      ownPeakBytes: 1 << 20, filePeakBytes: 4096,
    });
    // The second invocation is warm: same container, no initTime.
    const warm = await ow.actions.invoke({ name: 'echo', blocking: true });
    assert.equal(ann(warm, 'initTime'), undefined);
    assert.equal(node.created, 1, 'one container served both activations');

    // result=true unwraps; the server's own ?result=true does too.
    assert.deepEqual(await ow.actions.invoke({ name: 'a1', blocking: true, result: true, params: { x: 1 } }), { x: 1 });
    const raw = await p.request('POST', '/api/v1/namespaces/_/actions/a1?blocking=true&result=true', { tenant: 'guest', body: '{"y":2}' });
    assert.equal(raw.status, 200);
    assert.deepEqual(raw.body, { y: 2 });
    assert.match(raw.headers.get('x-openwhisk-activation-id') ?? '', /^[0-9a-f]{32}$/);

    // Non-blocking: 202 with the id, the header, and the record later.
    const nb = await p.request('POST', '/api/v1/namespaces/guest/actions/echo', { tenant: 'guest', body: '{"n":1}' });
    assert.equal(nb.status, 202);
    const nbId = (nb.body as { activationId: string }).activationId;
    assert.equal(nb.headers.get('x-openwhisk-activation-id'), nbId);
    const { activationId } = await ow.actions.invoke({ name: 'echo', params: { n: 2 } });
    const later = await waitRecord(ow, activationId);
    assert.deepEqual((later.response?.result as { args: unknown }).args, { greeting: 'hello', who: 'default', n: 2 });
    await waitRecord(ow, nbId);

    // Activations: list (newest first), name, skip, limit, since, upto, docs; logs and result.
    const list = await ow.activations.list({ name: 'echo' });
    assert.equal(list.length, 4);
    assert.ok(list.every((a) => a.name === 'echo'));
    const starts = list.map((a) => (a as unknown as { start: number }).start);
    for (let i = 1; i < starts.length; i++) assert.ok((starts[i - 1] ?? 0) >= (starts[i] ?? 0));
    const summary = list[0] as unknown as Record<string, unknown>;
    assert.equal(summary.logs, undefined, 'without docs the list is summaries');
    assert.equal(typeof summary.statusCode, 'number');
    const docs = await ow.activations.list({ name: 'echo', docs: true });
    assert.ok(Array.isArray((docs[0] as unknown as { logs?: unknown } | undefined)?.logs));
    assert.equal((await ow.activations.list({ limit: 2 })).length, 2);
    assert.equal((await ow.activations.list({ name: 'echo', skip: 3 })).length, 1);
    const since = await ow.activations.list({ since: rec.start + 1 });
    assert.ok(!since.some((a) => a.activationId === rec.activationId));
    const upto = await ow.activations.list({ upto: rec.start });
    assert.ok(upto.some((a) => a.activationId === rec.activationId));
    const one = await ow.activations.get({ name: rec.activationId });
    assert.deepEqual(one, rec);
    assert.deepEqual(await ow.activations.logs({ name: rec.activationId }), { logs: rec.logs });
    assert.deepEqual(await ow.activations.result({ name: rec.activationId }), rec.response);

    // The profile observed from the runs is shown on the action.
    const prof = ann(await ow.actions.get({ name: 'echo' }), 'ephemera.profile') as Record<string, unknown>;
    assert.deepEqual(prof, { T_mem: (1 << 20) + 4096, ownPeakBytes: 1 << 20, filePeakBytes: 4096, source: 'observed' });

    const deleted = await ow.actions.delete({ name: 'echo' });
    assert.equal(deleted.name, 'echo');
    await assert.rejects(ow.actions.get({ name: 'echo' }), (e: { statusCode?: number }) => e.statusCode === 404);
    assert.equal((await ow.activations.get({ name: rec.activationId })).activationId, rec.activationId, 'records outlive their action');
  });
});

test('a zip action with __main__.py runs; a sequence passes results along; final parameters hold', { timeout: 60_000 }, async () => {
  await withPlatform('seq', async (p) => {
    const ow = p.client('guest');
    const { execFileSync } = await import('node:child_process');
    const zip = execFileSync('python3', ['-c', `
import io, zipfile, sys
b = io.BytesIO()
with zipfile.ZipFile(b, 'w') as z:
    z.writestr('__main__.py', 'from helper import twice\\ndef main(a):\\n    return {"n": twice(a.get("n", 0))}\\n')
    z.writestr('helper.py', 'def twice(x):\\n    return 2 * x\\n')
sys.stdout.buffer.write(b.getvalue())
`]);
    const z = await ow.actions.create({ name: 'double', action: zip, kind: 'python:3' });
    assert.equal((z.exec as { binary?: boolean }).binary, true);
    await ow.actions.create({ name: 'inc', action: 'def main(a):\n    return {"n": a["n"] + a.get("step", 1)}\n', kind: 'python:3', params: { step: 10 } });
    const seq = await ow.actions.create({ name: 'pipeline', sequence: ['/guest/inc', '/_/double', 'inc'] } as unknown as Parameters<typeof ow.actions.create>[0]);
    assert.deepEqual(seq.exec, { kind: 'sequence', components: ['/guest/inc', '/guest/double', '/guest/inc'] });
    const rec = await ow.actions.invoke({ name: 'pipeline', blocking: true, params: { n: 1 } });
    // inc: 1+10=11; double: 22; inc: 22+10=32 (the component's own defaults merge under each input)
    assert.deepEqual(rec.response?.result, { n: 32 });
    assert.equal(rec.logs.length, 3, 'a sequence record lists its components activations');
    assert.equal(ann(rec, 'kind'), 'sequence');
    assert.equal(ann(rec, 'topmost'), true);
    for (const id of rec.logs) {
      const c = await ow.activations.get({ name: id });
      assert.equal(c.response?.success, true);
      assert.equal(ann(c, 'causedBy'), 'sequence');
      assert.equal((c as unknown as { cause: string }).cause, rec.activationId);
    }
    // A sequence may contain a sequence; its record has the outer one as its cause.
    await ow.actions.create({ name: 'outer', sequence: ['pipeline', 'inc'] } as unknown as Parameters<typeof ow.actions.create>[0]);
    const outer = await ow.actions.invoke({ name: 'outer', blocking: true, params: { n: 1 } });
    assert.deepEqual(outer.response?.result, { n: 42 });
    const inner = await ow.activations.get({ name: outer.logs[0] ?? '' });
    assert.equal(inner.name, 'pipeline');
    assert.equal((inner as unknown as { cause: string }).cause, outer.activationId);
    assert.equal(inner.logs.length, 3);
    // A sequence may not contain itself, even through another.
    const cycle = await p.request('PUT', '/api/v1/namespaces/_/actions/pipeline?overwrite=true', { tenant: 'guest', body: JSON.stringify({ exec: { kind: 'sequence', components: ['inc', 'outer'] } }) });
    assert.equal(cycle.status, 400);
    assert.match((cycle.body as { error: string }).error, /would contain itself/);
    // A failing component stops the sequence and its error is the sequence's.
    await ow.actions.create({ name: 'boom', action: 'def main(a):\n    return {"error": "no way"}\n', kind: 'python:3' });
    await ow.actions.create({ name: 'p2', sequence: ['inc', 'boom', 'double'] } as unknown as Parameters<typeof ow.actions.create>[0]);
    const bad = await p.request('POST', '/api/v1/namespaces/_/actions/p2?blocking=true', { tenant: 'guest', body: '{"n":0}' });
    assert.equal(bad.status, 502);
    const br = bad.body as { response: { status: string; result: unknown }; logs: string[]; error: string };
    assert.equal(br.response.status, 'application error');
    assert.deepEqual(br.response.result, { error: 'no way' });
    assert.equal(br.logs.length, 2);
    assert.equal(br.error, 'no way');

    // final parameters cannot be overridden by the invocation.
    await ow.actions.create({ name: 'fixed', action: 'def main(a):\n    return a\n', kind: 'python:3', params: { k: 1 }, annotations: { final: true } });
    assert.deepEqual(await ow.actions.invoke({ name: 'fixed', blocking: true, result: true, params: { other: 2 } }), { k: 1, other: 2 });
    const clash = await p.request('POST', '/api/v1/namespaces/_/actions/fixed?blocking=true', { tenant: 'guest', body: '{"k":5}' });
    assert.equal(clash.status, 400);
    assert.match((clash.body as { error: string }).error, /final.*"k"/);
  });
});

test('tenant A cannot list, get, invoke or delete B\'s actions or activations; the operator can', { timeout: 60_000 }, async () => {
  await withPlatform('isolation', async (p) => {
    const a = p.client('alice');
    const b = p.client('bob');
    await b.actions.create({ name: 'secret', action: 'def main(a):\n    return {"s": 1}\n', kind: 'python:3' });
    const rec = await b.actions.invoke({ name: 'secret', blocking: true });
    assert.deepEqual(await a.actions.list(), []);
    assert.deepEqual(await a.activations.list(), []);
    const denied = (e: { statusCode?: number }) => e.statusCode === 403;
    const missing = (e: { statusCode?: number }) => e.statusCode === 404;
    await assert.rejects(a.actions.list({ namespace: 'bob' }), denied);
    await assert.rejects(a.actions.get({ name: '/bob/secret' }), denied);
    await assert.rejects(a.actions.invoke({ name: '/bob/secret', blocking: true }), denied);
    await assert.rejects(a.actions.delete({ name: '/bob/secret' }), denied);
    await assert.rejects(a.activations.list({ namespace: 'bob' }), denied);
    await assert.rejects(a.activations.get({ name: rec.activationId, namespace: 'bob' }), denied);
    await assert.rejects(a.activations.get({ name: rec.activationId }), missing, "B's activation is not in A's namespace");
    await assert.rejects(a.actions.get({ name: 'secret' }), missing);
    await assert.rejects(
      a.actions.create({ name: 'steal', sequence: ['/bob/secret'] } as unknown as Parameters<typeof a.actions.create>[0]),
      denied,
    );
    // Still there for B.
    assert.equal((await b.actions.get({ name: 'secret' })).name, 'secret');
    // The operator key sees every namespace.
    const admin = p.client('admin');
    assert.equal((await admin.actions.list({ namespace: 'bob' })).length, 1);
    assert.equal((await admin.activations.get({ name: rec.activationId, namespace: 'bob' })).activationId, rec.activationId);
    const nsList = await p.request('GET', '/api/v1/namespaces', { tenant: 'admin' });
    assert.deepEqual(nsList.body, ['admin', 'alice', 'bob']);
  }, { tenants: ['alice', 'bob'] });
});

test('every bad input gets its status and a message saying what to fix, and the server keeps serving', { timeout: 60_000 }, async () => {
  await withPlatform('bad', async (p) => {
    const ok = async (): Promise<void> => {
      const r = await p.request('GET', '/api/v1/namespaces/_/actions', { tenant: 'guest' });
      assert.equal(r.status, 200, 'the server still serves');
    };
    const cases: [string, string, { tenant?: string; body?: string; headers?: Record<string, string> }, number, RegExp][] = [
      ['GET', '/api/v1/namespaces/_/actions', {}, 401, /no Authorization header/],
      ['GET', '/api/v1/namespaces/_/actions', { headers: { authorization: 'Basic ' + Buffer.from('nope:nope').toString('base64') } }, 401, /authentication is invalid/],
      ['GET', '/api/v1/namespaces/_/actions', { headers: { authorization: 'Bearer x' } }, 401, /authentication is invalid/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec": {' }, 400, /not valid JSON/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '[1]' }, 400, /body must be object/],
      ['PUT', '/api/v1/namespaces/_/actions/bad%20name%20', { tenant: 'guest', body: '{}' }, 400, /action name "bad name " is not valid/],
      ['PUT', `/api/v1/namespaces/_/actions/${'n'.repeat(300)}`, { tenant: 'guest', body: '{}' }, 400, /most is 256/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{}' }, 400, /no exec/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec":{"kind":"nodejs:20","code":"x"}}' }, 400, /kind must be equal to one of.*"python:3".*got "nodejs:20"/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec":{"kind":"python:3"}}' }, 400, /exec\.code is missing/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec":{"kind":"python:3","code":"x"},"limits":{"memory":4096}}' }, 400, /limits\.memory must be <= 2048, got 4096/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec":{"kind":"python:3","code":"x"},"limits":{"timeout":10}}' }, 400, /limits\.timeout must be >= 100, got 10/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec":{"kind":"python:3","code":"x"},"limits":{"concurrency":4}}' }, 400, /concurrency must be <= 1/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: `{"exec":{"kind":"python:3","code":"${Buffer.from('PK\x03\x04nothing here').toString('base64')}"}}` }, 400, /no __main__\.py/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec":{"kind":"blackbox"}}' }, 400, /exec\.image is missing/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec":{"kind":"sequence","components":["/guest/none"]}}' }, 400, /component does not exist/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec":{"kind":"sequence","components":["a/b"]}}' }, 400, /not an action name/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: '{"exec":{"kind":"python:3","code":"x"},"annotations":[{"key":"ephemera.profile","value":{"ownPeakBytes":-1}}]}' }, 400, /ephemera\.profile\.ownPeakBytes must be a non-negative integer/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: JSON.stringify({ exec: { kind: 'python:3', code: 'x'.repeat(1_100_000) } }) }, 413, /over 1048576 bytes/],
      ['PUT', '/api/v1/namespaces/_/actions/x', { tenant: 'guest', body: 'code', headers: { 'content-type': 'text/plain' } }, 415, /application\/json/],
      ['GET', '/api/v1/namespaces/_/actions/missing', { tenant: 'guest' }, 404, /does not exist/],
      ['POST', '/api/v1/namespaces/_/actions/missing?blocking=true', { tenant: 'guest', body: '{}' }, 404, /does not exist/],
      ['POST', '/api/v1/namespaces/_/actions/missing', { tenant: 'guest', body: '"str"' }, 400, /body must be object/],
      ['POST', '/api/v1/namespaces/_/actions/missing?blocking=maybe', { tenant: 'guest', body: '{}' }, 400, /querystring\.blocking must be boolean/],
      ['GET', '/api/v1/namespaces/_/actions?limit=500', { tenant: 'guest' }, 400, /limit must be <= 200/],
      ['GET', '/api/v1/namespaces/_/activations?skip=-1', { tenant: 'guest' }, 400, /skip must be >= 0/],
      ['GET', '/api/v1/namespaces/_/activations/xyz', { tenant: 'guest' }, 400, /32 lowercase hex/],
      ['GET', `/api/v1/namespaces/_/activations/${'0'.repeat(32)}`, { tenant: 'guest' }, 404, /no activation/],
      ['GET', '/api/v1/namespaces/other/actions', { tenant: 'guest' }, 403, /not authorized to access 'other'/],
      ['GET', '/api/v1/namespaces/_/packages', { tenant: 'guest' }, 404, /packages, triggers and rules are not supported/],
    ];
    for (const [method, path, o, status, msg] of cases) {
      const r = await p.request(method, path, o);
      const what = `${method} ${path.slice(0, 80)} -> ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;
      assert.equal(r.status, status, what);
      const body = r.body as { error?: unknown; code?: unknown };
      assert.equal(typeof body.error, 'string', what);
      assert.match(String(body.code), /^EPH_[A-Z_]+$/, what);
      assert.match(String(body.error), msg, what);
      await ok();
    }
  });
});

test('an action past its time limit ends with OpenWhisk\'s developer error and its container is destroyed', { timeout: 60_000 }, async () => {
  await withPlatform('timeout', async (p, node) => {
    const ow = p.client('guest');
    await ow.actions.create({ name: 'slow', action: 'import time\ndef main(a):\n    time.sleep(a.get("s", 30))\n    return {}\n', kind: 'python:3', limits: { timeout: 3000 } });
    const r = await p.request('POST', '/api/v1/namespaces/_/actions/slow?blocking=true', { tenant: 'guest', body: '{}' });
    assert.equal(r.status, 502);
    const rec = r.body as { response: { status: string; statusCode: number; result: { error: string } }; annotations: { key: string; value: unknown }[] };
    assert.equal(rec.response.status, 'action developer error');
    assert.equal(rec.response.statusCode, 2);
    assert.equal(rec.response.result.error, 'The action exceeded its time limits of 3000 milliseconds.');
    assert.equal(ann(rec, 'timeout'), true);
    const deadline = Date.now() + 5000;
    while (node.removed < 1 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    assert.equal(node.removed, 1, 'the timed-out container was removed');
    // The next activation gets a fresh container and works.
    assert.deepEqual(await ow.actions.invoke({ name: 'slow', blocking: true, result: true, params: { s: 0 } }), {});
    assert.equal(node.created, 2);
    // An action that raises is a developer error: 502 with the record, and the client throws.
    await ow.actions.create({ name: 'crash', action: 'def main(a):\n    raise ValueError("bad")\n', kind: 'python:3' });
    const c = await p.request('POST', '/api/v1/namespaces/_/actions/crash?blocking=true', { tenant: 'guest', body: '{}' });
    assert.equal(c.status, 502);
    assert.equal((c.body as { code: string }).code, 'EPH_ACTION_FAILED');
    await assert.rejects(ow.actions.invoke({ name: 'crash', blocking: true }), (e: { statusCode?: number }) => e.statusCode === 502);
  });
});

test('a blocking invoke that outlives its wait answers 202 with the id, and the record comes later', { timeout: 60_000 }, async () => {
  await withPlatform('wait', async (p) => {
    const ow = p.client('guest');
    await ow.actions.create({ name: 'sleepy', action: 'import time\ndef main(a):\n    time.sleep(3)\n    return {"done": True}\n', kind: 'python:3' });
    const r = await p.request('POST', '/api/v1/namespaces/_/actions/sleepy?blocking=true', { tenant: 'guest', body: '{}' });
    assert.equal(r.status, 202);
    const id = (r.body as { activationId: string }).activationId;
    assert.equal(r.headers.get('x-openwhisk-activation-id'), id);
    const rec = await waitRecord(ow, id);
    assert.deepEqual(rec.response?.result, { done: true });
  }, { blockingWaitMs: 500 });
});

test('tenants get wskprops files (mode 0600, APIHOST/AUTH/NAMESPACE) and an operator file', { timeout: 30_000 }, async () => {
  await withPlatform('props', (p) => {
    for (const name of ['guest', 'team-2', 'admin']) {
      const path = p.ctl.props.get(name) ?? '';
      assert.equal(statSync(path).mode & 0o777, 0o600, path);
      const props = readProps(path);
      assert.equal(props.APIHOST, p.ctl.url);
      assert.equal(props.NAMESPACE, name);
      assert.match(props.AUTH ?? '', /^[0-9a-f-]{36}:[A-Za-z0-9_-]{64}$/);
    }
    assert.notEqual(p.auth('guest'), p.auth('team-2'));
    return Promise.resolve();
  }, { tenants: ['guest', 'team-2'] });
});

test('a controller closed while an activation runs records it before the store closes', { timeout: 60_000 }, async () => {
  const code = scratchDir('closing-code');
  const node = new FakeNode(code);
  const stateDir = join(code, 'state');
  const p = await startTestPlatform('closing', node, { stateDir });
  try {
    const ow = p.client('guest');
    await ow.actions.create({ name: 'slow', action: 'import time\ndef main(a):\n    time.sleep(30)\n    return {}\n', kind: 'python:3' });
    const { activationId } = await ow.actions.invoke({ name: 'slow' });
    await new Promise((r) => setTimeout(r, 500));
    await p.ctl.close();
    const store = Store.open(stateDir);
    try {
      const rec = store.getActivation('guest', activationId);
      assert.ok(rec !== undefined && rec !== 'running', 'the activation has its record');
      assert.equal(rec.response.success, false);
    } finally {
      store.close();
    }
  } finally {
    await p.close();
    rmSync(code, { recursive: true, force: true });
  }
});
