/**
 * State survives a SIGKILL of the controller: a real child process is killed mid-activation and
 * started again on the same state directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import openwhisk from 'openwhisk';

import { startAnnounced, stopChild } from './child.js';
import { readProps, scratchDir } from './harness.js';

const CHILD = fileURLToPath(new URL('./fake-controller.js', import.meta.url));

async function startChild(state: string, home: string): Promise<{ child: ChildProcess; url: string }> {
  // Its own process group, so that killing the group also ends the python3 it runs.
  const { child, match } = await startAnnounced([process.execPath, CHILD, state, home], /^\{"url":"([^"]+)"\}$/, 15_000, { detached: true });
  return { child, url: match[1] ?? '' };
}

const killGroup = (child: ChildProcess): Promise<number | null> => stopChild(child, 'SIGKILL', 10_000, true);

test('after SIGKILL the controller keeps every action and finished activation, and reports the one in flight failed', { timeout: 60_000 }, async () => {
  const dir = scratchDir('sigkill');
  const state = join(dir, 'state');
  const home = join(dir, 'home');
  const children: ChildProcess[] = [];
  try {
    const first = await startChild(state, home);
    children.push(first.child);
    const auth = readProps(join(home, 'guest.wskprops')).AUTH ?? '';
    let ow = openwhisk({ apihost: first.url, api_key: auth });
    await ow.actions.create({ name: 'quick', action: 'def main(a):\n    return {"ok": a}\n', kind: 'python:3', params: { d: 1 } });
    await ow.actions.create({ name: 'slow', action: 'import time\ndef main(a):\n    time.sleep(30)\n    return {}\n', kind: 'python:3' });
    const done = await ow.actions.invoke({ name: 'quick', blocking: true, params: { x: 2 } });
    const { activationId: inFlight } = await ow.actions.invoke({ name: 'slow' });
    await new Promise((r) => setTimeout(r, 300));

    await killGroup(first.child);
    assert.equal(first.child.signalCode, 'SIGKILL');

    const second = await startChild(state, home);
    children.push(second.child);
    assert.equal(readProps(join(home, 'guest.wskprops')).AUTH, auth, 'the tenant keeps its key');
    ow = openwhisk({ apihost: second.url, api_key: auth });
    const names = (await ow.actions.list()).map((a) => a.name).sort();
    assert.deepEqual(names, ['quick', 'slow']);
    assert.deepEqual((await ow.actions.get({ name: 'quick' })).parameters, [{ key: 'd', value: 1 }]);
    assert.deepEqual(await ow.activations.get({ name: done.activationId }), done);
    const lost = await ow.activations.get({ name: inFlight });
    assert.equal(lost.response?.status, 'whisk internal error');
    assert.equal(lost.response.statusCode, 3);
    assert.match((lost.response.result as { error: string }).error, /in flight when the controller stopped/);
    assert.equal(lost.name, 'slow');
    // And it serves on.
    assert.deepEqual(await ow.actions.invoke({ name: 'quick', blocking: true, result: true }), { ok: { d: 1 } });
    assert.equal((await ow.activations.list()).length, 3);
  } finally {
    for (const c of children) await killGroup(c);
    rmSync(dir, { recursive: true, force: true });
  }
});
