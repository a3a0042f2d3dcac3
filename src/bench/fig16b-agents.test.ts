/**
 * Fig. 16b's real-agent arm at a low rate: two real `ephemera node` processes, one second of
 * requests per policy through the platform's placement path; every request is placed, on a node
 * that one of the agent processes reports as its own, and the agents' reports fed the scheduler.
 * No timing is asserted (the rates and decision times are the benchmark's).
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { dockerReady } from '../node/testkit.js';
import { runFig16bAgents } from './fig16b-agents.js';

const MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

test('fig16b real-agent arm: every request lands on a real agent\'s node', { timeout: 180_000 }, async (t) => {
  const why = await dockerReady();
  if (why !== null) {
    t.skip(`Docker is not available: ${why}`);
    return;
  }
  const before = new Set(readdirSync('/tmp').filter((d) => d.startsWith('f16b-')));
  const rows = await runFig16bAgents({ cli: [process.execPath, MAIN], rates: [40], holdMs: 50, seed: 16 });
  assert.deepEqual(rows.map((r) => r.policy), ['ephemera', 'most-free']);
  for (const r of rows) {
    assert.equal(r.requests, 40, `${r.policy}: requests`);
    assert.equal(r.placed, r.requests, `${r.policy}: every request placed`);
    assert.equal(r.onAgents, r.placed, `${r.policy}: every placement on a node a real agent reports`);
    assert.ok(r.reports >= 2, `${r.policy}: the agents' reports fed the scheduler (${String(r.reports)})`);
  }
  const left = readdirSync('/tmp').filter((d) => d.startsWith('f16b-') && !before.has(d));
  assert.deepEqual(left, [], 'the agents\' state directories are removed');
});
