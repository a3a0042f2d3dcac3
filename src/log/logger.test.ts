// test-tier: unit
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';

import Fastify from 'fastify';

import { isEphemeraError } from '../core/errors.js';
import { activationLogger, createLogger, parseLogLevel } from './logger.js';

function collector(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

test('one JSON object per line with time, level name, component and node', { timeout: 5000 }, () => {
  const out = collector();
  const log = createLogger({ component: 'node-agent', node: 'n1', level: 'debug', destination: out.stream });
  log.info({ bytes: 5 }, 'moved');
  log.debug('detail');
  const [first, second] = out.lines();
  assert.equal(first?.['msg'], 'moved');
  assert.equal(first['level'], 'info');
  assert.equal(first['component'], 'node-agent');
  assert.equal(first['node'], 'n1');
  assert.equal(first['bytes'], 5);
  assert.match(String(first['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(second?.['level'], 'debug');
});

test("an activation's lines carry its id, and keys are redacted", { timeout: 5000 }, () => {
  const out = collector();
  const log = createLogger({ component: 'controller', destination: out.stream });
  const alog = activationLogger(log, { activationId: 'a1b2', tenant: 'alpha', action: 'resize' });
  alog.info({ api_key: 'uuid:secret', req: { headers: { authorization: 'Basic xyz' } } }, 'invoked');
  const [line] = out.lines();
  assert.equal(line?.['activationId'], 'a1b2');
  assert.equal(line['tenant'], 'alpha');
  assert.equal(line['action'], 'resize');
  assert.equal(line['api_key'], '[redacted]');
  assert.deepEqual(line['req'], { headers: { authorization: '[redacted]' } });
  assert.ok(!JSON.stringify(line).includes('secret'));
});

test('fastify logs its requests through it as JSON lines', { timeout: 5000 }, async () => {
  const out = collector();
  const app = Fastify({ loggerInstance: createLogger({ component: 'controller', destination: out.stream }) });
  app.get('/x', () => ({ ok: true }));
  await app.inject({ method: 'GET', url: '/x', headers: { authorization: 'Basic c2VjcmV0' } });
  await app.close();
  const lines = out.lines();
  assert.ok(lines.some((l) => l['msg'] === 'incoming request' && l['component'] === 'controller' && typeof l['reqId'] === 'string'));
  assert.ok(!JSON.stringify(lines).includes('c2VjcmV0'));
});

test('a bad level is refused with its name and the accepted ones', { timeout: 5000 }, () => {
  assert.equal(parseLogLevel('WARN'), 'warn');
  assert.throws(
    () => createLogger({ component: 'x', level: 'loud' }),
    (err: unknown) => isEphemeraError(err, 'EPH_LOG_LEVEL') && err.message.includes('"loud"') && err.message.includes('fatal, error'),
  );
});
