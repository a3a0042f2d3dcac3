// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';

import Fastify from 'fastify';

import { isEphemeraError } from '../core/errors.js';
import { extenderFilter, extenderPrioritize, parseQuantity, POD_ANNOTATIONS, type ExtenderFilterResult, type HostPriority } from './extender.js';
import { extenderRoutes } from './extender-routes.js';
import { mulberry32, randomInt } from '../core/random.js';
import { Scheduler } from './scheduler.js';

const MiB = 1024 * 1024;

/** Node agents' reports: node-c is full, node-x has no agent. Tenant team-a's gaps: a 188, b −108, d 0 MiB. */
function cluster(): Scheduler {
  const s = new Scheduler({ policy: 'ephemera' });
  const rep = (node: string, alloc: number, req: number, tAlloc: number, tReq: number): void => {
    s.report({ node, seq: 1, lim: 1024 * MiB, alloc: alloc * MiB, req: req * MiB, tenants: { 'team-a': { alloc: tAlloc * MiB, req: tReq * MiB } }, running: [] }, 0);
  };
  rep('node-a', 450, 262, 450, 262);
  rep('node-b', 150, 258, 150, 258);
  rep('node-c', 1000, 900, 0, 0);
  rep('node-d', 100, 100, 0, 0);
  return s;
}

/** A v1.Pod as kube-scheduler marshals it (API object: lower-case keys). */
function pod(annotations: Record<string, string> = { [POD_ANNOTATIONS.profile]: JSON.stringify({ T_mem: 258 * MiB }) }, memory: string | null = '150Mi'): Record<string, unknown> {
  return {
    metadata: { name: 'io-task-7f9c', namespace: 'team-a', uid: '3c1e7d2a-5f0b-4a7e-9c2d-0e6f1b2a3c4d', resourceVersion: '4711', creationTimestamp: '2026-12-06T03:00:00Z', annotations },
    spec: {
      containers: [
        {
          name: 'action',
          image: 'ephemera/action-python:latest',
          resources: memory === null ? {} : { limits: { memory, cpu: '1' }, requests: { memory, cpu: '500m' } },
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Never',
      schedulerName: 'default-scheduler',
      priority: 0,
    },
    status: { phase: 'Pending', qosClass: 'Guaranteed' },
  };
}

/** A v1.Node as kube-scheduler marshals it. */
function node(name: string): Record<string, unknown> {
  return {
    metadata: { name, uid: `uid-${name}`, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux' }, creationTimestamp: '2026-12-01T00:00:00Z' },
    spec: { podCIDR: '10.244.1.0/24' },
    status: { capacity: { cpu: '2', memory: '2036452Ki', pods: '110' }, allocatable: { cpu: '2', memory: '1934052Ki', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

const NAMES = ['node-a', 'node-b', 'node-c', 'node-d', 'node-x'];
const cacheArgs = (p = pod()): unknown => ({ Pod: p, Nodes: null, NodeNames: NAMES });
const listArgs = (p = pod()): unknown => ({ Pod: p, Nodes: { metadata: { resourceVersion: '' }, items: NAMES.map(node) }, NodeNames: null });

test('filter with NodeNames (nodeCacheCapable): fitting nodes pass, a full node fails, a node without an agent is unresolvable', { timeout: 5_000 }, () => {
  const r = extenderFilter(cacheArgs(), cluster());
  assert.equal(r.status, 200);
  assert.deepEqual(r.body.NodeNames, ['node-a', 'node-b', 'node-d']);
  assert.equal(r.body.Nodes, null);
  assert.deepEqual(Object.keys(r.body.FailedNodes), ['node-c']);
  assert.match(r.body.FailedNodes['node-c'] ?? '', /needs 150\.0 MiB \(T_lim\); node node-c has 24\.0 MiB free of 1024\.0 MiB/);
  assert.deepEqual(Object.keys(r.body.FailedAndUnresolvableNodes), ['node-x']);
  assert.equal(r.body.Error, '');
});

test('filter with a v1.NodeList: the passing v1.Node objects come back unchanged', { timeout: 5_000 }, () => {
  const r = extenderFilter(listArgs(), cluster());
  assert.equal(r.status, 200);
  assert.equal(r.body.NodeNames, null);
  assert.deepEqual(r.body.Nodes, { metadata: { resourceVersion: '' }, items: ['node-a', 'node-b', 'node-d'].map(node) });
});

test('prioritize: Algorithm 1 scores scaled to 0..10 in the order given, in both forms', { timeout: 5_000 }, () => {
  // I/O task (T_lim 150, T_mem 258 MiB): shortfall 108. Distances: a |188−108| = 80, b 216, d 108.
  const want: HostPriority[] = [
    { Host: 'node-a', Score: 10 },
    { Host: 'node-b', Score: 0 },
    { Host: 'node-c', Score: 0 },
    { Host: 'node-d', Score: 8 },
    { Host: 'node-x', Score: 0 },
  ];
  assert.deepEqual(extenderPrioritize(cacheArgs(), cluster()), { status: 200, body: want });
  assert.deepEqual(extenderPrioritize(listArgs(), cluster()), { status: 200, body: want });
});

test('the extender is stateless: filter and prioritize reserve nothing', { timeout: 5_000 }, () => {
  const s = cluster();
  const before = NAMES.map((n) => s.figures(n)?.node);
  for (let i = 0; i < 3; i++) {
    extenderFilter(cacheArgs(), s);
    extenderPrioritize(cacheArgs(), s);
  }
  assert.deepEqual(NAMES.map((n) => s.figures(n)?.node), before);
  assert.equal(s.reservationCount, 0);
});

test('a pod without ephemera.dev/profile is not ours: every node passes and scores 0', { timeout: 5_000 }, () => {
  const plain = pod({}, null);
  assert.deepEqual(extenderFilter(cacheArgs(plain), cluster()).body.NodeNames, NAMES);
  assert.deepEqual(
    (extenderPrioritize(cacheArgs(plain), cluster()).body as HostPriority[]).map((h) => h.Score),
    [0, 0, 0, 0, 0],
  );
});

test('the tenant, the limit and an input-sensitive T_mem come from annotations', { timeout: 5_000 }, () => {
  const fit = { intercept: 4 * MiB, slope: 2, residual: 0, margin: 0, maxInput: 200 * MiB, maxMem: 600 * MiB, samples: 50 };
  const annotations = {
    [POD_ANNOTATIONS.profile]: JSON.stringify({ T_mem: 600 * MiB, source: 'observed', runs: 50, fit }),
    [POD_ANNOTATIONS.inputBytes]: String(50 * MiB),
    [POD_ANNOTATIONS.limit]: '200Mi',
    [POD_ANNOTATIONS.tenant]: 'team-a',
  };
  // T_mem for 50 MiB of input: 4 + 2·50 = 104 MiB; T_lim 200 MiB: c = −96. Gaps: a 188 (284), b −108 (12), d 0 (96).
  const r = extenderPrioritize(cacheArgs(pod(annotations, '1Gi')), cluster());
  assert.deepEqual((r.body as HostPriority[]).map((h) => h.Score), [0, 10, 0, 7, 0]);
});

test('empty candidate lists in both forms', { timeout: 5_000 }, () => {
  const s = cluster();
  assert.deepEqual(extenderFilter({ Pod: pod(), NodeNames: [] }, s).body.NodeNames, []);
  const r = extenderFilter({ Pod: pod(), Nodes: { metadata: {}, items: null } }, s);
  assert.deepEqual(r.body.Nodes, { metadata: {}, items: [] });
  assert.deepEqual(extenderPrioritize({ Pod: pod(), NodeNames: [] }, s).body, []);
});

test('keys match without regard to case, as Go\'s encoding/json does', { timeout: 5_000 }, () => {
  const r = extenderFilter({ pod: pod(), nodenames: ['node-a', 'node-c'] }, cluster());
  assert.deepEqual(r.body.NodeNames, ['node-a']);
});

test('malformed requests get 400 with the reason in Error; a bad pod gets it in a 200 filter result, where kube-scheduler reports it', { timeout: 5_000 }, () => {
  const cases: readonly [string, unknown, RegExp, 200 | 400][] = [
    ['not an object', [1, 2], /expected ExtenderArgs/, 400],
    ['no Pod', { NodeNames: [] }, /Pod is missing/, 400],
    ['neither form', { Pod: pod() }, /neither Nodes .* nor NodeNames; check nodeCacheCapable/, 400],
    ['NodeNames not strings', { Pod: pod(), NodeNames: [1] }, /NodeNames must be a list of node names/, 400],
    ['node without a name', { Pod: pod(), Nodes: { items: [{ metadata: {} }] } }, /items\[0\] has no metadata\.name/, 400],
    ['bad profile', cacheArgs(pod({ [POD_ANNOTATIONS.profile]: '{"T_mem": -1}' })), /team-a\/io-task-7f9c: annotation ephemera\.dev\/profile: .*-1/, 200],
    ['no memory limit', cacheArgs(pod(undefined, null)), /container action has no memory limit/, 200],
    ['bad quantity', cacheArgs(pod(undefined, '150 MB')), /"150 MB" is not a Kubernetes quantity/, 200],
  ];
  for (const [name, body, re, filterStatus] of cases) {
    const f = extenderFilter(body, cluster());
    assert.equal(f.status, filterStatus, name);
    assert.match(f.body.Error, re, name);
    assert.equal(f.body.NodeNames, null, name);
    const p = extenderPrioritize(body, cluster());
    assert.equal(p.status, 400, name);
    assert.match((p.body as { Error: string }).Error, re, name);
  }
});

test('Kubernetes quantities as bytes', { timeout: 5_000 }, () => {
  const cases: readonly [string, number][] = [
    ['134217728', 134217728],
    ['128Mi', 128 * MiB],
    ['1Gi', 1024 * MiB],
    ['0.5Gi', 512 * MiB],
    ['500M', 500e6],
    ['1G', 1e9],
    ['1e9', 1e9],
    ['1E3', 1000],
    ['2k', 2000],
    ['1500m', 2],
  ];
  for (const [text, want] of cases) assert.equal(parseQuantity(text, 'q'), want, text);
  for (const text of ['', 'Mi', '1 Gi', '1GB', '-1', 'x']) assert.throws(() => parseQuantity(text, 'q'), (e: unknown) => isEphemeraError(e, 'EPH_EXTENDER_BAD_REQUEST'), text);
});

test('routes: round trips, bad JSON and a wrong content type through fastify.inject', { timeout: 10_000 }, async () => {
  const app = Fastify();
  await app.register(extenderRoutes, { source: cluster() });
  try {
    const ok = await app.inject({ method: 'POST', url: '/extender/filter', payload: JSON.stringify(cacheArgs()), headers: { 'content-type': 'application/json' } });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual((ok.json<ExtenderFilterResult>()).NodeNames, ['node-a', 'node-b', 'node-d']);
    const badJson = await app.inject({ method: 'POST', url: '/extender/filter', payload: '{"Pod": {', headers: { 'content-type': 'application/json' } });
    assert.equal(badJson.statusCode, 400);
    assert.match(badJson.json<{ Error: string }>().Error, /^\/extender\/filter: .*JSON/);
    const empty = await app.inject({ method: 'POST', url: '/extender/prioritize', payload: '', headers: { 'content-type': 'application/json' } });
    assert.equal(empty.statusCode, 400);
    assert.ok(empty.json<{ Error: string }>().Error.length > 0);
    const text = await app.inject({ method: 'POST', url: '/extender/prioritize', payload: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.equal(text.statusCode, 400);
    assert.match(text.json<{ Error: string }>().Error, /expected ExtenderArgs/);
    const xml = await app.inject({ method: 'POST', url: '/extender/prioritize', payload: '<Pod/>', headers: { 'content-type': 'application/xml' } });
    assert.equal(xml.statusCode, 415);
    assert.match(xml.json<{ Error: string }>().Error, /^\/extender\/prioritize: Unsupported Media Type \("application\/xml"\); send Content-Type: application\/json/);
    const semantic = await app.inject({ method: 'POST', url: '/extender/prioritize', payload: { Pod: pod() } });
    assert.equal(semantic.statusCode, 400);
    assert.match(semantic.json<{ Error: string }>().Error, /neither Nodes/);
  } finally {
    await app.close();
  }
});

test('routes: a real server on port 0 answers kube-scheduler-shaped requests (NodeList body over 1 MiB included)', { timeout: 15_000 }, async () => {
  const app = Fastify();
  await app.register(extenderRoutes, { source: cluster() });
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const addr = app.server.address();
    assert.ok(addr !== null && typeof addr === 'object');
    const base = `http://127.0.0.1:${addr.port}/extender`;
    const post = (verb: string, body: string): Promise<Response> => fetch(`${base}/${verb}`, { method: 'POST', body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(5_000) });
    const pr = await post('prioritize', JSON.stringify(cacheArgs()));
    assert.equal(pr.status, 200);
    assert.deepEqual(((await pr.json()) as HostPriority[]).map((h) => h.Score), [10, 0, 0, 8, 0]);
    // 4000 full v1.Node objects, as a non-cache-capable kube-scheduler would send for a large cluster.
    const many = Array.from({ length: 4000 }, (_, i) => node(i < 4 ? (NAMES[i] ?? '') : `node-z${i}`));
    const big = JSON.stringify({ Pod: pod(), Nodes: { metadata: {}, items: many }, NodeNames: null });
    assert.ok(big.length > 1024 * 1024, `body ${big.length} bytes`);
    const fr = await post('filter', big);
    assert.equal(fr.status, 200);
    const result = (await fr.json()) as ExtenderFilterResult;
    assert.deepEqual(result.Nodes?.items?.map((n) => (n['metadata'] as { name: string }).name), ['node-a', 'node-b', 'node-d']);
    assert.equal(Object.keys(result.FailedAndUnresolvableNodes).length, 3996);
    const bad = await post('filter', 'not json');
    assert.equal(bad.status, 400);
    assert.ok(((await bad.json()) as { Error: string }).Error.length > 0);
  } finally {
    await app.close();
  }
});

test('property: the extender agrees with the scheduler: filter passes exactly the fitting nodes, and the node Algorithm 1 picks scores 10', { timeout: 20_000 }, () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rnd = mulberry32(seed);
    const s = new Scheduler({ policy: 'ephemera' });
    const names: string[] = [];
    for (let i = 0; i < randomInt(rnd, 1, 12); i++) {
      const name = `n${i}`;
      names.push(name);
      const tAlloc = randomInt(rnd, 0, 8) * 16 * MiB;
      const tReq = randomInt(rnd, 0, 8) * 16 * MiB;
      const other = randomInt(rnd, 0, 8) * 16 * MiB;
      s.report({ node: name, seq: 1, lim: randomInt(rnd, 4, 16) * 64 * MiB, alloc: tAlloc + other, req: tReq + other, tenants: { 'team-a': { alloc: tAlloc, req: tReq }, other: { alloc: other, req: other } }, running: [] }, 0);
    }
    const limit = randomInt(rnd, 1, 8) * 32 * MiB;
    const mem = randomInt(rnd, 0, 16) * 32 * MiB;
    const p = pod({ [POD_ANNOTATIONS.profile]: JSON.stringify({ T_mem: mem }) }, String(limit));
    const args = { Pod: p, NodeNames: names };
    const passed = extenderFilter(args, s).body.NodeNames ?? [];
    assert.deepEqual(passed, names.filter((n) => {
      const f = s.figures(n);
      return f !== undefined && f.node.alloc + limit <= f.lim;
    }), `seed ${seed}`);
    const scores = extenderPrioritize(args, s).body as HostPriority[];
    const chosen = s.peek('team-a', { limit, mem });
    if (chosen === undefined) assert.ok(scores.every((h) => h.Score === 0), `seed ${seed}: nothing fits, all 0`);
    else assert.equal(scores.find((h) => h.Host === chosen)?.Score, 10, `seed ${seed}: ${chosen} is Algorithm 1's choice`);
  }
});
