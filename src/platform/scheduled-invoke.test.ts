/**
 * The invoke path through the scheduler with a small fake node: an invocation that finds no room
 * waits and runs once memory comes free; one that finds the wait queue full gets a 503 with the
 * scheduler's code, at once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { pino } from 'pino';

import type { NodeLoad } from './agent.js';
import { FakeNode } from './fake-node.js';
import { scratchDir, startTestPlatform, type TestPlatform } from './harness.js';
import { ScheduledSelector } from './scheduled-selector.js';

const MiB = 1 << 20;

/** The fake node, confined to 300 MiB: one 256 MiB container at a time. */
class SmallNode extends FakeNode {
  override async state(): Promise<NodeLoad> {
    const s = await super.state();
    return { ...s, memory: { ...s.memory, limit: 300 * MiB } };
  }
}

const SLOW = 'import time\ndef main(a):\n    time.sleep(a.get("s", 0))\n    return {"done": a.get("tag")}\n';

let platform: TestPlatform | undefined;
let selector: ScheduledSelector | undefined;

before(async () => {
  const node = new SmallNode(scratchDir('sched-invoke-node'));
  selector = new ScheduledSelector({ policy: 'ephemera', nodes: [node], log: pino({ level: 'silent' }), refreshMs: 200, queueCapacity: 1, maxWaitMs: 20_000 });
  platform = await startTestPlatform('sched-invoke', node, { selector, extender: selector.scheduler, keepAliveMs: 60_000 });
});

after(async () => {
  await platform?.close();
});

test('no room: the second invocation waits for the first container, a third finds the queue full and gets 503 EPH_SCHED_QUEUE_FULL', { timeout: 60_000 }, async () => {
  const p = platform;
  assert.ok(p !== undefined && selector !== undefined);
  const ow = p.client('guest');
  for (const name of ['a', 'b', 'c']) await ow.actions.create({ name, action: SLOW, kind: 'python:3', limits: { memory: 256 } });
  const first = ow.actions.invoke({ name: 'a', blocking: true, result: true, params: { s: 2, tag: 'a' } });
  // Wait until a's container holds the node's memory.
  for (let i = 0; i < 100 && p.ctl.invoker.containers().busy === 0; i++) await new Promise((r) => setTimeout(r, 50));
  const second = ow.actions.invoke({ name: 'b', blocking: true, result: true, params: { tag: 'b' } });
  for (let i = 0; i < 100 && selector.waiting() === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(selector.waiting(), 1, 'b waits for room');
  const third = await p.request('POST', '/api/v1/namespaces/_/actions/c?blocking=true', { tenant: 'guest', body: '{}' });
  assert.equal(third.status, 503, JSON.stringify(third.body));
  const body = third.body as { code?: string; error?: string };
  assert.equal(body.code, 'EPH_SCHED_QUEUE_FULL');
  assert.match(body.error ?? '', /invocations already wait/);
  assert.deepEqual(await first, { done: 'a' });
  // a's container is removed rather than kept warm, since b waits: b then runs.
  assert.deepEqual(await second, { done: 'b' });
});

test('the extender is mounted on the controller: a filter round trip on the node\'s figures; bad JSON is a 400 with Error', { timeout: 20_000 }, async () => {
  const p = platform;
  assert.ok(p !== undefined);
  const pod = (memory: string): unknown => ({ metadata: { name: 'x', namespace: 'guest', annotations: { 'ephemera.dev/profile': '{"ownPeakBytes": 4194304, "filePeakBytes": 0}' } }, spec: { containers: [{ name: 'fn', resources: { limits: { memory } } }] } });
  // b's warm container holds 256 of the node's 300 MiB: 32 MiB fit, 128 MiB do not.
  const filter = async (memory: string): Promise<{ NodeNames: string[]; FailedNodes: Record<string, string>; FailedAndUnresolvableNodes: Record<string, string> }> => {
    const r = await p.request('POST', '/extender/filter', { body: JSON.stringify({ Pod: pod(memory), Nodes: null, NodeNames: ['fake', 'gone'] }) });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body as { NodeNames: string[]; FailedNodes: Record<string, string>; FailedAndUnresolvableNodes: Record<string, string> };
  };
  const small = await filter('32Mi');
  assert.deepEqual(small.NodeNames, ['fake']);
  assert.deepEqual(Object.keys(small.FailedAndUnresolvableNodes), ['gone']);
  const large = await filter('128Mi');
  assert.deepEqual(large.NodeNames, []);
  assert.deepEqual(Object.keys(large.FailedNodes), ['fake']);
  const bad = await p.request('POST', '/extender/filter', { body: '{"Pod":' });
  assert.equal(bad.status, 400, JSON.stringify(bad.body));
  assert.match(String((bad.body as { Error?: string }).Error), /not valid JSON/);
});
