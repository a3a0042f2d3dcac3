/**
 * The API's edge, without Docker: schemas refuse bad bodies with EPH_NODE_BAD_REQUEST, unknown
 * routes and containers are named, and the client turns every error answer into the agent's own
 * code, over a real unix socket.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import type { FastifyInstance } from 'fastify';

import type { ContainerEngine } from '../container/engine.js';
import { NodeAgent } from './agent.js';
import { NodeClient } from './client.js';
import { inProcessManagers, managerDefaults } from './managers.js';
import { buildServer, listenOnSocket } from './server.js';

/** An engine that must not be reached by these requests. */
const noEngine = new Proxy({} as ContainerEngine, {
  get: (_t, name) => () => Promise.reject(new Error(`the engine was called (${String(name)})`)),
});

let dir = '';
let app: FastifyInstance;
let client: NodeClient;
let agent: NodeAgent;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'eph-node-api-'));
  agent = new NodeAgent({
    node: 'n1',
    sharing: 'tenant',
    memoryBytes: 1 << 30,
    stateDir: dir,
    parentCgroup: '/ephemera-n1',
    image: 'none',
    buildDir: dir,
    engine: noEngine,
    managers: inProcessManagers(managerDefaults('tenant')),
  });
  app = buildServer(agent);
  await listenOnSocket(app, join(dir, 'node.sock'));
  client = new NodeClient(join(dir, 'node.sock'));
});
after(async () => {
  await app.close();
  await rm(dir, { recursive: true, force: true });
});

test('GET /v1/node reports the node with nothing allocated', async () => {
  const info = await client.node();
  assert.equal(info.version, 1);
  assert.equal(info.node, 'n1');
  assert.deepEqual(info.memory, { limit: 1 << 30, allocated: 0, requested: 0 });
  assert.deepEqual(info.tenants, {});
});

test('GET /v1/events reads the journal after a number; a bad query is refused at the edge', { timeout: 10_000 }, async () => {
  assert.deepEqual(await client.events(0), { events: [], next: 0, missed: 0 });
  agent.journal.push({ type: 'shortfall', tenant: 'acme', container: 'c1', bytes: 4096 });
  agent.journal.push({ type: 'oom-kill', tenant: 'acme', container: 'c1' });
  const r = await client.events(1);
  assert.deepEqual(r.events.map((e) => [e.seq, e.type]), [[2, 'oom-kill']]);
  assert.equal(r.next, 2);
  for (const q of ['after=-1', 'after=x', 'limit=0x', 'since=3']) {
    const res = await app.inject({ method: 'GET', url: `/v1/events?${q}` });
    assert.equal(res.statusCode, 400, q);
    assert.equal(res.json<{ error: { code: string } }>().error.code, 'EPH_NODE_BAD_REQUEST');
  }
});

test('a malformed create is refused at the edge with the field named', async () => {
  const res = await app.inject({ method: 'POST', url: '/v1/containers', payload: { tenant: 'acme', function: 'f', memoryBytes: 1024 } });
  assert.equal(res.statusCode, 400);
  const body = res.json<{ error: { code: string; message: string } }>();
  assert.equal(body.error.code, 'EPH_NODE_BAD_REQUEST');
  assert.match(body.error.message, /memoryBytes/);
  await assert.rejects(client.createContainer({ tenant: 'bad tenant!', function: 'f', memoryBytes: 64 << 20 }), { code: 'EPH_NODE_BAD_REQUEST', message: /tenant/ });
  const extra = await app.inject({ method: 'POST', url: '/v1/containers', payload: { tenant: 'a', function: 'f', memoryBytes: 64 << 20, memory: 1 } });
  assert.equal(extra.statusCode, 400);
});

test('unknown containers and routes are 404 with a hint', async () => {
  await assert.rejects(client.run('nope', { value: {} }), { code: 'EPH_NODE_UNKNOWN_CONTAINER', message: /no container "nope"/ });
  await assert.rejects(client.removeContainer('nope'), { code: 'EPH_NODE_UNKNOWN_CONTAINER' });
  const res = await app.inject({ method: 'GET', url: '/v2/node' });
  assert.equal(res.statusCode, 404);
  assert.match(res.body, /lives under \/v1/);
  assert.deepEqual(await client.listContainers(), []);
});

test('a client pointed at no agent says how to start one', async () => {
  await assert.rejects(new NodeClient(join(dir, 'missing.sock')).node(), { code: 'EPH_NODE_UNREACHABLE', message: /ephemera node/ });
});
