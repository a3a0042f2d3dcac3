// test-tier: unit
/**
 * The invoker's decisions at the NodeAgent seam, with a scripted agent: what becomes of an OOM, a
 * failed create or init, a node that never answers, an update, the keep-alive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { pino } from 'pino';

import type { ContainerSpec, InitValue, NodeAgent, NodeLoad, RunRequest, RunResult } from './agent.js';
import { EphemeraError } from '../core/errors.js';
import { Invoker, newActivationId } from './invoker.js';
import { AgentProfileRunner } from './profiler.js';
import { buildAction, isActivationId, type ActionDoc, type ActivationRecord, type Profile } from './model.js';
import { MostFreeSelector } from './selector.js';

class ScriptedNode implements NodeAgent {
  constructor(readonly name = 'scripted', readonly limit = 1) {}
  readonly log: string[] = [];
  private n = 0;
  createFails = false;
  full = false;
  allocated = 0;
  initReply: { statusCode: number; body: unknown } = { statusCode: 200, body: { ok: true } };
  runReply: (req: RunRequest) => Promise<RunResult> = (req) => Promise.resolve({ statusCode: 200, body: { echo: req.value }, logs: [], durationMs: 1 });
  create(spec: ContainerSpec): Promise<{ id: string }> {
    if (this.createFails) return Promise.reject(new Error('EPH_NODE_FULL: the node has no memory left'));
    if (this.full) return Promise.reject(new EphemeraError('EPH_NODE_FULL', `node ${this.name} is full`));
    const id = `${this.name === 'scripted' ? '' : `${this.name}-`}c${++this.n}`;
    this.log.push(`create ${id} ${spec.function}${spec.workflow === undefined ? '' : ` in ${spec.workflow}`} ${spec.memoryBytes}${spec.profile === undefined ? '' : ` profile ${spec.profile.ownPeakBytes}/${spec.profile.filePeakBytes}`}${spec.cpus === undefined ? '' : ` cpus ${spec.cpus}`}`);
    // The node's own figures count a container once its creation is done.
    return new Promise((resolve) => setTimeout(() => { this.allocated += spec.memoryBytes; resolve({ id }); }, 20));
  }
  init(id: string, value: InitValue): Promise<{ statusCode: number; body: unknown }> {
    this.log.push(`init ${id} ${value.name}`);
    return Promise.resolve(this.initReply);
  }
  run(id: string, req: RunRequest): Promise<RunResult> {
    this.log.push(`run ${id}`);
    return this.runReply(req);
  }
  remove(id: string): Promise<void> {
    this.log.push(`remove ${id}`);
    return Promise.resolve();
  }
  state(): Promise<NodeLoad> {
    return Promise.resolve({ node: this.name, memory: { limit: this.limit, allocated: this.allocated, requested: this.allocated } });
  }
}

function setup(node: ScriptedNode | ScriptedNode[], opts: { keepAliveMs?: number; graceMs?: number; containerCpus?: number } = {}) {
  const records = new Map<string, ActivationRecord>();
  const begun: string[] = [];
  const actions = new Map<string, ActionDoc>();
  const profiles = new Map<string, Profile>();
  const invoker = new Invoker({
    nodes: Array.isArray(node) ? node : [node],
    selector: new MostFreeSelector(),
    ledger: { begin: (m) => begun.push(m.activationId), finish: (r) => records.set(r.activationId, r) },
    actions: { getAction: (ns, name) => actions.get(`${ns}/${name}`) },
    profiles: {
      observedProfile: (ns, name) => profiles.get(`${ns}/${name}`),
      observePeaks: (a, own, file) => profiles.set(`${a.namespace}/${a.name}`, { T_mem: 0, ownPeakBytes: own, filePeakBytes: file, source: 'observed' }),
    },
    log: pino({ level: 'silent' }),
    keepAliveMs: opts.keepAliveMs ?? 60_000,
    graceMs: opts.graceMs ?? 15_000,
    ...(opts.containerCpus === undefined ? {} : { containerCpus: opts.containerCpus }),
  });
  const put = (name: string, prev?: ActionDoc, timeout = 1000): ActionDoc => {
    const a = buildAction('t', name, { exec: { kind: 'python:3', code: 'def main(a): return a' }, limits: { timeout } }, prev, Date.now());
    actions.set(`t/${name}`, a);
    return a;
  };
  let n = 0;
  const ctx = () => ({ activationId: (++n).toString(16).padStart(32, '0'), subject: 't', received: Date.now() });
  return { invoker, records, begun, put, ctx, profiles };
}

test('an OOM ends as "exhausted its memory", the container is removed, the next activation gets a new one', { timeout: 10_000 }, async () => {
  const node = new ScriptedNode();
  const { invoker, put, ctx } = setup(node);
  const a = put('hog');
  node.runReply = () => Promise.resolve({ statusCode: 502, body: { error: 'killed' }, logs: ['x'], durationMs: 5, oom: true });
  const r = await invoker.activate(a, {}, ctx());
  assert.equal(r.response.status, 'action developer error');
  assert.deepEqual(r.response.result, { error: 'The action exhausted its memory and was aborted.' });
  node.runReply = (req) => Promise.resolve({ statusCode: 200, body: { v: req.value }, logs: [], durationMs: 1 });
  const ok = await invoker.activate(a, { k: 1 }, ctx());
  assert.deepEqual(ok.response.result, { v: { k: 1 } });
  assert.deepEqual(node.log.filter((l) => !l.startsWith('run')), ['create c1 t/hog 268435456', 'init c1 hog', 'remove c1', 'create c2 t/hog 268435456', 'init c2 hog']);
  await invoker.close();
});

test('a failed create is a whisk internal error naming the cause; a failed init a developer error with its body', { timeout: 10_000 }, async () => {
  const node = new ScriptedNode();
  const { invoker, put, ctx, begun, records } = setup(node);
  const a = put('x');
  node.createFails = true;
  const r = await invoker.activate(a, {}, ctx());
  assert.equal(r.response.statusCode, 3);
  assert.match(String(r.response.result.error), /no container could be created for t\/x: EPH_NODE_FULL/);
  node.createFails = false;
  node.initReply = { statusCode: 502, body: { error: 'SyntaxError: invalid syntax' } };
  const i = await invoker.activate(a, {}, ctx());
  assert.equal(i.response.statusCode, 2);
  assert.deepEqual(i.response.result, { error: 'SyntaxError: invalid syntax' });
  assert.equal(typeof i.annotations.find((x) => x.key === 'initTime')?.value, 'number');
  assert.deepEqual(node.log, ['create c1 t/x 268435456', 'init c1 x', 'remove c1']);
  assert.deepEqual(begun, [...records.keys()], 'every activation begun is finished');
  await invoker.close();
});

test('a node that never answers a run ends the activation at timeout + grace, as a timeout', { timeout: 10_000 }, async () => {
  const node = new ScriptedNode();
  const { invoker, put, ctx } = setup(node, { graceMs: 100 });
  const a = put('stuck', undefined, 200);
  node.runReply = () => new Promise(() => undefined);
  const r = await invoker.activate(a, {}, ctx());
  assert.deepEqual(r.response.result, { error: 'The action exceeded its time limits of 200 milliseconds.' });
  assert.ok(node.log.includes('remove c1'));
  await invoker.close();
});

test('warm reuse per version; an update retires old containers; idle ones go after the keep-alive; profiles are passed on', { timeout: 10_000 }, async () => {
  const node = new ScriptedNode();
  const { invoker, put, ctx, profiles } = setup(node, { keepAliveMs: 150 });
  let a = put('w');
  node.runReply = () => Promise.resolve({
    statusCode: 200, body: {}, logs: [], durationMs: 1,
    ephemera: { pool: 'harvest', initialBytes: 1, grantedBytes: 2, node: 'scripted', stats: { fast_reads: 3, fast_writes: 4, slow_ops: 5, evictions: 6, bytes_in_memory_peak: 7, ownPeakBytes: 100, filePeakBytes: 200 } },
  });
  const r1 = await invoker.activate(a, {}, ctx());
  assert.deepEqual(r1.annotations.find((x) => x.key === 'ephemera')?.value, {
    pool: 'harvest', initialBytes: 1, grantedBytes: 2, node: 'scripted', fast_reads: 3, fast_writes: 4, slow_ops: 5, evictions: 6, bytes_in_memory_peak: 7,
    ownPeakBytes: 100, filePeakBytes: 200,
  });
  assert.deepEqual(profiles.get('t/w'), { T_mem: 0, ownPeakBytes: 100, filePeakBytes: 200, source: 'observed' });
  await invoker.activate(a, {}, ctx());
  assert.deepEqual(invoker.containers(), { warm: 1, busy: 0 });
  a = put('w', a);
  await invoker.activate(a, {}, ctx());
  assert.deepEqual(node.log.filter((l) => !l.startsWith('run') && !l.startsWith('init')), ['create c1 t/w 268435456', 'remove c1', 'create c2 t/w 268435456 profile 100/200']);
  await new Promise((r) => setTimeout(r, 400));
  assert.ok(node.log.includes('remove c2'), 'removed after the keep-alive');
  assert.deepEqual(invoker.containers(), { warm: 0, busy: 0 });
  await invoker.close();
});

test('concurrent cold starts spread over the nodes; a full node is skipped for the next', { timeout: 10_000 }, async () => {
  const a = new ScriptedNode('a', 1 << 30);
  const b = new ScriptedNode('b', 1 << 30);
  const { invoker, put, ctx } = setup([a, b]);
  const action = put('p');
  {
    const recs = await Promise.all([1, 2, 3, 4].map(() => invoker.activate(action, {}, ctx())));
    assert.ok(recs.every((r) => r.response.success));
    assert.equal(a.log.filter((l) => l.startsWith('create')).length, 2, a.log.join('; '));
    assert.equal(b.log.filter((l) => l.startsWith('create')).length, 2, b.log.join('; '));

  }
  // b is emptier now but full by its own account: the container goes to a.
  a.allocated = 900 << 20;
  b.allocated = 0;
  b.full = true;
  const other = put('q');
  const r = await invoker.activate(other, {}, ctx());
  assert.equal(r.response.success, true);
  assert.ok(a.log.some((l) => l.includes('t/q')), a.log.join('; '));
  await invoker.close();
});

test("a sequence's components are created in its workflow, each with its own record", { timeout: 10_000 }, async () => {
  const node = new ScriptedNode();
  const { invoker, put, ctx, records } = setup(node);
  put('one');
  put('two');
  const seq = buildAction('t', 'flow', { exec: { kind: 'sequence', components: ['/t/one', 'two'] } }, undefined, Date.now());
  node.runReply = (req) => Promise.resolve({ statusCode: 200, body: { n: ((req.value as { n?: number }).n ?? 0) + 1 }, logs: [], durationMs: 1 });
  const rec = await invoker.activate(seq, { n: 1 }, ctx());
  assert.deepEqual(rec.response.result, { n: 3 });
  assert.deepEqual(node.log.filter((l) => l.startsWith('create')), ['create c1 t/one in t/flow 268435456', 'create c2 t/two in t/flow 268435456']);
  assert.equal(records.size, 3);
  await invoker.close();
});

test('activation ids are 32 lowercase hex digits (as the API checks them) and do not repeat', { timeout: 5000 }, () => {
  const ids = Array.from({ length: 2000 }, () => newActivationId());
  for (const id of ids) assert.ok(isActivationId(id), id);
  assert.equal(new Set(ids).size, ids.length);
});

test('the CPU cap (ephemera up --container-cpus) is in every container spec: the action\'s and a profile run\'s', { timeout: 10_000 }, async () => {
  const node = new ScriptedNode();
  const { invoker, put, ctx } = setup(node, { containerCpus: 0.5 });
  const a = put('capped');
  const r = await invoker.activate(a, {}, ctx());
  assert.equal(r.response.status, 'success');
  assert.deepEqual(node.log.filter((l) => l.startsWith('create')), ['create c1 t/capped 268435456 cpus 0.5']);
  await invoker.close();

  const profiled = new ScriptedNode('profiling');
  profiled.runReply = () => Promise.resolve({
    statusCode: 200, body: {}, logs: [], durationMs: 1,
    ephemera: { pool: 'allocation', initialBytes: 1, grantedBytes: 1, node: 'profiling', stats: { fast_reads: 0, fast_writes: 0, slow_ops: 0, evictions: 0, bytes_in_memory_peak: 0, ownPeakBytes: 1, filePeakBytes: 2 } },
  });
  const peaks = await new AgentProfileRunner(profiled, a, 0.5).run({ action: '/t/capped', limit: 64 << 20, input: {}, timeoutMs: 1000 });
  assert.equal(peaks.ownPeak, 1);
  assert.deepEqual(profiled.log.filter((l) => l.startsWith('create')), ['create profiling-c1 t/capped 67108864 cpus 0.5']);
});
