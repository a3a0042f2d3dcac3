/**
 * The guard sentinel as real processes over fake cgroup directories (plain files): an "agent"
 * process that starts the sentinel and sets two guards through it is killed with SIGKILL, and the
 * sentinel lifts both; a sentinel killed while its agent lives is replaced and told every guard
 * again. The real agent, real Docker and a real cgroup are src/cli/node-e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { cgroupGuardArm } from './arm.js';
import { spawnGuardSentinel } from './sentinel.js';

async function fakeCgroups(): Promise<{ root: string; v1: string; v2: string }> {
  const root = await mkdtemp(join(tmpdir(), 'eph-sentinel-'));
  const v1 = join(root, 'v1');
  const v2 = join(root, 'v2');
  await mkdir(v1);
  await mkdir(v2);
  await writeFile(join(v1, 'memory.oom_control'), '0');
  await writeFile(join(v1, 'memory.limit_in_bytes'), String(64 << 20));
  await writeFile(join(v2, 'memory.high'), 'max');
  await writeFile(join(v2, 'memory.max'), String(64 << 20));
  return { root, v1, v2 };
}

async function knobs(v1: string, v2: string): Promise<[string, string]> {
  return [(await readFile(join(v1, 'memory.oom_control'), 'utf8')).trim(), (await readFile(join(v2, 'memory.high'), 'utf8')).trim()];
}

async function until(what: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await what()) return true;
    await sleep(20);
  }
  return what();
}

const AGENT = `
import { cgroupGuardArm } from ${JSON.stringify(new URL('./arm.js', import.meta.url).href)};
import { spawnGuardSentinel } from ${JSON.stringify(new URL('./sentinel.js', import.meta.url).href)};
const [v1, v2] = process.argv.slice(1);
const s = await spawnGuardSentinel();
await s.guarded(cgroupGuardArm(v1, 1), v1).arm(64 << 20);
await s.guarded(cgroupGuardArm(v2, 2), v2).arm(64 << 20);
process.stdout.write('armed ' + s.pid() + '\\n');
setInterval(() => undefined, 1000);
`;

test('the agent SIGKILLed: the sentinel lifts every guard it set', { timeout: 30_000 }, async () => {
  const { root, v1, v2 } = await fakeCgroups();
  const agent = spawn(process.execPath, ['--input-type=module', '-e', AGENT, v1, v2], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  agent.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  try {
    let out = '';
    agent.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    assert.ok(await until(() => Promise.resolve(out.includes('\n')), 15_000), `the agent armed: ${out} ${err}`);
    assert.deepEqual(await knobs(v1, v2), ['1', String((64 - 8) << 20)]);
    const sentinelPid = Number(/armed (\d+)/.exec(out)?.[1]);
    agent.kill('SIGKILL');
    assert.ok(await until(async () => (await knobs(v1, v2)).join() === '0,max', 5000), `both guards lifted: ${(await knobs(v1, v2)).join()}`);
    await until(() => Promise.resolve(err.includes('lifted')), 5000);
    assert.match(err, /the node agent is gone \(its pipe ended\): lifted the OOM guard of 2 container cgroup/);
    // And the sentinel is gone too.
    assert.ok(
      await until(() => {
        try {
          process.kill(sentinelPid, 0);
          return Promise.resolve(false);
        } catch {
          return Promise.resolve(true);
        }
      }, 5000),
    );
  } finally {
    agent.kill('SIGKILL');
    await rm(root, { recursive: true, force: true });
  }
});

test('a killed sentinel is replaced and told every guard; a released guard is not lifted again', { timeout: 30_000 }, async () => {
  const { root, v1, v2 } = await fakeCgroups();
  const logs: string[] = [];
  const s = await spawnGuardSentinel({ log: (m) => logs.push(m) });
  try {
    await s.guarded(cgroupGuardArm(v1, 1), v1).arm(64 << 20);
    const a2 = s.guarded(cgroupGuardArm(v2, 2), v2);
    await a2.arm(64 << 20);
    await a2.disarm();
    // The agent's own lift is done; someone sets v2's knob by hand: not the sentinel's to touch.
    await writeFile(join(v2, 'memory.high'), '12345');
    const first = s.pid();
    assert.ok(first !== undefined);
    process.kill(first, 'SIGKILL');
    assert.ok(await until(() => Promise.resolve(s.pid() !== undefined && s.pid() !== first), 10_000), logs.join('\n'));
    assert.match(logs.join('\n'), /exited \(SIGKILL\); starting another and telling it the 1 guard\(s\) held/);
    assert.deepEqual(await knobs(v1, v2), ['1', '12345'], 'the agent still holds v1: nothing lifted yet');
    await s.close();
    assert.deepEqual(await knobs(v1, v2), ['0', '12345'], 'the new sentinel lifted v1 when its pipe ended');
  } finally {
    await s.close();
    await rm(root, { recursive: true, force: true });
  }
});

