// test-tier: unit
/**
 * The scheduler's `T_mem` for a new container: the hand-set or profiled profile when there is one;
 * otherwise, once activations were seen, the input-sensitive estimate for this invocation's input
 * (never above the largest seen within the sizes seen); with nothing known, the limit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { pino } from 'pino';

import type { NodeAgent, NodeLoad, NodeSelector, Placement, RunRequest, RunResult } from './agent.js';
import { Invoker } from './invoker.js';
import { buildAction, type ActionDoc, type Profile } from './model.js';
import { taskOfPlacement } from './scheduled-selector.js';

const MiB = 1 << 20;
const OWN = 10 * MiB;

/** Each run holds OWN bytes of its own and writes a file twice the size of its input. */
class ScalingNode implements NodeAgent {
  readonly name = 'scaling';
  private n = 0;
  create(): Promise<{ id: string }> {
    return Promise.resolve({ id: `c${String(++this.n)}` });
  }
  init(): Promise<{ statusCode: number; body: unknown }> {
    return Promise.resolve({ statusCode: 200, body: { ok: true } });
  }
  run(_id: string, req: RunRequest): Promise<RunResult> {
    const input = Buffer.byteLength(JSON.stringify(req.value));
    const stats = { fast_reads: 0, fast_writes: 1, slow_ops: 0, evictions: 0, bytes_in_memory_peak: 2 * input, ownPeakBytes: OWN, filePeakBytes: 2 * input };
    return Promise.resolve({ statusCode: 200, body: {}, logs: [], durationMs: 1, ephemera: { pool: 'allocation', initialBytes: 256 * MiB, grantedBytes: 256 * MiB, node: this.name, stats } });
  }
  remove(): Promise<void> {
    return Promise.resolve();
  }
  state(): Promise<NodeLoad> {
    return Promise.resolve({ node: this.name, memory: { limit: 8192 * MiB, allocated: 0, requested: 0 } });
  }
}

/** Places everything on the one node and remembers each placement's task. */
class RecordingSelector implements NodeSelector {
  readonly name = 'recording';
  readonly tasks: { limit: number; mem: number }[] = [];
  select(nodes: readonly NodeAgent[], p: Placement): Promise<NodeAgent> {
    this.tasks.push(taskOfPlacement(p));
    return Promise.resolve(nodes[0] as NodeAgent);
  }
}

function setup(annotations: { key: string; value: unknown }[] = []) {
  const node = new ScalingNode();
  const selector = new RecordingSelector();
  const profiles = new Map<string, Profile>();
  const action: ActionDoc = buildAction('t', 'scale', { exec: { kind: 'python:3', code: 'def main(a): return a' }, limits: { memory: 256 }, annotations }, undefined, Date.now());
  const invoker = new Invoker({
    nodes: [node],
    selector,
    ledger: { begin: () => undefined, finish: () => undefined },
    actions: { getAction: () => action },
    profiles: {
      observedProfile: (ns, name) => profiles.get(`${ns}/${name}`),
      observePeaks: (a, own, file) => {
        const prev = profiles.get(`${a.namespace}/${a.name}`);
        profiles.set(`${a.namespace}/${a.name}`, { T_mem: 0, ownPeakBytes: Math.max(own, prev?.ownPeakBytes ?? 0), filePeakBytes: Math.max(file, prev?.filePeakBytes ?? 0), source: 'observed' });
      },
    },
    log: pino({ level: 'silent' }),
    // Every activation is a cold start (the container is gone before the next one).
    keepAliveMs: 1,
  });
  let n = 0;
  const invoke = async (inputBytes: number): Promise<void> => {
    await invoker.activate(action, { pad: 'x'.repeat(inputBytes) }, { activationId: (++n).toString(16).padStart(32, '0'), subject: 't', received: Date.now() });
    await new Promise((r) => setTimeout(r, 10));
  };
  return { invoker, selector, invoke };
}

test('learned from activations: T_mem follows the input once fitted, and stays at the limit until something is known', { timeout: 10_000 }, async () => {
  const { invoker, selector, invoke } = setup();
  for (let i = 1; i <= 10; i++) await invoke(i * 200 * 1024);
  await invoke(100 * 1024);
  const [first] = selector.tasks;
  assert.deepEqual(first, { limit: 256 * MiB, mem: 256 * MiB }, 'nothing known: T_mem is T_lim');
  const largest = OWN + 2 * 10 * 200 * 1024;
  const small = selector.tasks.at(-1);
  assert.ok(small !== undefined);
  const need = OWN + 2 * 100 * 1024;
  assert.ok(small.mem >= need && small.mem < largest, `the small input's T_mem ${String(small.mem)} covers its need ${String(need)} and is below the largest seen ${String(largest)}`);
  await invoker.close();
});

test('a hand-set profile is used as given, whatever the activations showed', { timeout: 10_000 }, async () => {
  const { invoker, selector, invoke } = setup([{ key: 'ephemera.profile', value: { ownPeakBytes: 30 * MiB, filePeakBytes: 5 * MiB } }]);
  for (let i = 1; i <= 10; i++) await invoke(i * 200 * 1024);
  assert.ok(selector.tasks.every((t) => t.mem === 35 * MiB), JSON.stringify(selector.tasks));
  await invoker.close();
});
