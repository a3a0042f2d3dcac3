/**
 * The Manager's event channel (lines.ts): the answer to each kind of bad line, and the client over
 * a real unix socket: answers in order, a Manager's error code carried through, a server that
 * stops answering (timeout) or goes away (unavailable), and a reconnect after it is back.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { Ajv } from 'ajv';

import { EphemeraError, isEphemeraError } from '../core/errors.js';
import { LineClient, answerLine, serveLines, type LineHandler } from './lines.js';
import { EVENT_BODY, PAIR_BODY } from './schema.js';

const check = (() => {
  const ajv = new Ajv({ discriminator: true, strict: false });
  return { event: ajv.compile(EVENT_BODY), pair: ajv.compile(PAIR_BODY) };
})();

const echo: LineHandler = (op, body) => ({ op, body });

function parsed(line: string): { id: unknown; ok?: unknown; error?: { code: string; message: string } } {
  return JSON.parse(line) as { id: unknown; ok?: unknown; error?: { code: string; message: string } };
}

test('a valid event or pair reaches the handler; its answer carries the id', () => {
  const ev = { event: { kind: 'invocation-start', id: 'r' }, now: 5 };
  assert.deepEqual(parsed(answerLine(JSON.stringify({ id: 7, op: 'event', body: ev }), echo, check)), { id: 7, ok: { op: 'event', body: ev } });
  const pair = { first: ev, second: { event: { kind: 'invocation-end', id: 'r', used: { ownPeakBytes: 1, filePeakBytes: 0 } } } };
  assert.equal(parsed(answerLine(JSON.stringify({ id: 8, op: 'pair', body: pair }), echo, check)).id, 8);
});

test('bad lines get EPH_MANAGER_PROTOCOL that quotes what was wrong; the handler is not called', () => {
  const never: LineHandler = () => {
    throw new Error('called');
  };
  const cases: [string, RegExp][] = [
    ['not json', /"not json" is not \{"id":N/],
    [JSON.stringify({ op: 'event', body: {} }), /is not \{"id":N/],
    [JSON.stringify({ id: 1, op: 'snapshot', body: {} }), /is not \{"id":N,"op":"event"\|"pair"/],
    [JSON.stringify({ id: 2, op: 'event', body: { event: { kind: 'invocation-start', id: 'r', extra: 1 } } }), /unknown field "extra"/],
    [JSON.stringify({ id: 3, op: 'event', body: { event: { kind: 'shortfall', id: 'r', neededBytes: -1 } } }), /body\/event\/neededBytes/],
    [JSON.stringify({ id: 4, op: 'pair', body: { first: {} } }), /the pair body .* does not match its schema/],
  ];
  for (const [line, want] of cases) {
    const a = parsed(answerLine(line, never, check));
    assert.equal(a.error?.code, 'EPH_MANAGER_PROTOCOL', line);
    assert.match(a.error.message, want, line);
  }
});

test("the handler's EphemeraError keeps its code", () => {
  const refuse: LineHandler = () => {
    throw new EphemeraError('EPH_MANAGER_EVENT', 'no container r');
  };
  const a = parsed(answerLine(JSON.stringify({ id: 1, op: 'event', body: { event: { kind: 'forget', id: 'r' } } }), refuse, check));
  assert.deepEqual(a, { id: 1, error: { code: 'EPH_MANAGER_EVENT', message: 'no container r' } });
});

test('the client over a real socket: in order, errors carried, timeout, server gone, back again', { timeout: 20_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'eph-lines-'));
  const path = join(dir, 'events.sock');
  let stall = false;
  const handler: LineHandler = (op, body) => {
    const id = (body as { event?: { id?: string } }).event?.id;
    if (id === 'missing') throw new EphemeraError('EPH_MANAGER_EVENT', 'no container missing');
    if (stall) {
      const until = Date.now() + 300;
      while (Date.now() < until);
    }
    return { op, id };
  };
  const listen = (): Promise<ReturnType<typeof serveLines>> =>
    new Promise((resolve) => {
      const s = serveLines(handler);
      s.listen(path, () => resolve(s));
    });
  let server = await listen();
  const client = new LineClient(path, 200);
  try {
    const answers = await Promise.all(['a', 'b', 'c'].map((id) => client.call('event', { event: { kind: 'forget', id } })));
    assert.deepEqual(answers, ['a', 'b', 'c'].map((id) => ({ op: 'event', id })));
    await assert.rejects(client.call('event', { event: { kind: 'forget', id: 'missing' } }), (e: unknown) => isEphemeraError(e, 'EPH_MANAGER_EVENT'));
    stall = true;
    await assert.rejects(client.call('event', { event: { kind: 'forget', id: 'slow' } }), (e: unknown) => isEphemeraError(e, 'EPH_MANAGER_TIMEOUT') && /within 200 ms/.test(e.message));
    stall = false;
    assert.deepEqual(await client.call('event', { event: { kind: 'forget', id: 'd' } }), { op: 'event', id: 'd' });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await assert.rejects(client.call('event', { event: { kind: 'forget', id: 'e' } }), (e: unknown) => isEphemeraError(e, 'EPH_MANAGER_UNAVAILABLE'));
    server = await listen();
    assert.deepEqual(await client.call('event', { event: { kind: 'forget', id: 'f' } }), { op: 'event', id: 'f' });
    client.close();
    await assert.rejects(client.call('event', { event: { kind: 'forget', id: 'g' } }), (e: unknown) => isEphemeraError(e, 'EPH_MANAGER_UNAVAILABLE') && /closed/.test(e.message));
  } finally {
    client.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
});
