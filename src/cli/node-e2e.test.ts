/**
 * `ephemera node` end to end: the real CLI process serving its API on a unix socket, a loan
 * between two real containers, SIGKILL of the agent with the loan outstanding and with a move cut
 * between its steps, and a restarted agent that rebuilds its state from the labels and the live
 * cgroup limits and gives every lent byte back; then SIGTERM removes the containers. And SIGKILL
 * of the agent while a container's heap outgrows its limit with the OOM guard set: the guard
 * sentinel lifts the guard, so the kernel kills the function instead of leaving it frozen.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { DockerEngine } from '../container/engine.js';
import { REPO_DIR } from '../container/repo.js';
import { DaemonClient } from '../daemon-client/client.js';
import { findMemoryCgroup } from '../limiter/detect.js';
import { NodeClient } from '../node/client.js';
import { dockerReady, removeParentCgroups } from '../node/testkit.js';

const EPHEMERA = fileURLToPath(new URL('../../ephemera', import.meta.url));
const MiB = 1024 * 1024;
const NODE = `clitest${String(process.pid)}`;

interface Agent {
  readonly child: ChildProcess;
  readonly stderr: string[];
  readonly exited: Promise<number | null>;
}

async function startAgent(stateDir: string, node = NODE): Promise<Agent> {
  const child = spawn(EPHEMERA, ['node', '--state-dir', stateDir, '--node-name', node, '--memory', '2G', '--parent-cgroup', `/ephemera-${node}`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr.setEncoding('utf8').on('data', (s: string) => stderr.push(s));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const deadline = Date.now() + 120_000;
  while (!stderr.join('').includes('listening on')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ephemera node did not come up: ${stderr.join('')}`);
    }
    await sleep(50);
  }
  return { child, stderr, exited };
}

function limitOf(dir: string): number {
  const v2 = existsSync(join(dir, 'memory.max'));
  return Number(readFileSync(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), 'utf8').trim());
}

describe('ephemera node, killed and restarted', { timeout: 400_000 }, () => {
  let skip: string | null = null;
  let stateDir = '';
  let agent: Agent | undefined;
  const engine = new DockerEngine();

  before(async () => {
    skip = await dockerReady();
    stateDir = await mkdtemp('/tmp/eph-nodecli-');
  });
  after(async () => {
    agent?.child.kill('SIGKILL');
    for (const c of await engine.list([`ephemera.node=${NODE}`]).catch(() => [])) await engine.remove(c.id);
    await rm(stateDir, { recursive: true, force: true });
    await removeParentCgroups(`ephemera-${NODE}`);
  });

  test('SIGKILL with a loan out and with a move cut in half; the next agent returns every byte', { timeout: 360_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    agent = await startAgent(stateDir);
    const client = new NodeClient(join(stateDir, 'node.sock'));
    assert.equal((await client.node()).node, NODE);
    const donor = await client.createContainer({ tenant: 'acme', function: 'cpu', memoryBytes: 192 * MiB, profile: { ownPeakBytes: 20 * MiB, filePeakBytes: 0 } });
    const recipient = await client.createContainer({ tenant: 'acme', function: 'io', memoryBytes: 64 * MiB, profile: { ownPeakBytes: 20 * MiB, filePeakBytes: 80 * MiB } });
    const other = await client.createContainer({ tenant: 'zeta', function: 'x', memoryBytes: 64 * MiB });
    await client.invocationStart(donor.id);
    const lent = await client.invocationStart(recipient.id);
    assert.ok(lent.moves.length > 0 && lent.moves.every((m) => m.from === donor.id && m.to === recipient.id), JSON.stringify(lent));
    const dirs = new Map<string, string>();
    for (const id of [donor.id, recipient.id, other.id]) dirs.set(id, (await findMemoryCgroup({ pid: (await engine.inspect(id)).pid })).dir);
    const dirOf = (id: string): string => dirs.get(id) ?? '';
    assert.ok(limitOf(dirOf(donor.id)) < 192 * MiB && limitOf(dirOf(recipient.id)) > 64 * MiB, 'the loan is in force');

    // 1. Killed with the loan out.
    agent.child.kill('SIGKILL');
    await agent.exited;
    agent = await startAgent(stateDir);
    assert.match(agent.stderr.join(''), /recovery carried out \d+ restoring moves/);
    for (const [id, quota] of [[donor.id, 192 * MiB], [recipient.id, 64 * MiB], [other.id, 64 * MiB]] as const) {
      assert.equal(limitOf(dirOf(id)), quota, `container ${id.slice(0, 12)} is back at its quota`);
      const daemon = await DaemonClient.connect(join(stateDir, 'c', (await engine.list([`ephemera.node=${NODE}`])).find((c) => c.id === id)?.labels['ephemera.dir'] ?? '', 'control.sock'));
      assert.equal((await daemon.stats()).limit, quota, "the daemon's own limit equals its cgroup's");
      daemon.close();
    }

    // 2. Killed between steps 2 and 3 of a move: the giver shrunk and lowered, the receiver not
    //    raised yet. Made by hand, exactly as the agent leaves it, then the agent is killed.
    agent.child.kill('SIGKILL');
    await agent.exited;
    const donorDir = (await engine.list([`ephemera.node=${NODE}`])).find((c) => c.id === donor.id)?.labels['ephemera.dir'] ?? '';
    const d = await DaemonClient.connect(join(stateDir, 'c', donorDir, 'control.sock'));
    await d.shrink(128 * MiB);
    d.close();
    const v2 = existsSync(join(dirOf(donor.id), 'memory.max'));
    writeFileSync(join(dirOf(donor.id), v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(128 * MiB));
    if (!v2 && existsSync(join(dirOf(donor.id), 'memory.memsw.limit_in_bytes'))) writeFileSync(join(dirOf(donor.id), 'memory.memsw.limit_in_bytes'), String(128 * MiB));
    agent = await startAgent(stateDir);
    assert.equal(limitOf(dirOf(donor.id)), 192 * MiB, 'the half-moved bytes are back with the giver');
    assert.equal(limitOf(dirOf(recipient.id)), 64 * MiB);
    const d2 = await DaemonClient.connect(join(stateDir, 'c', donorDir, 'control.sock'));
    assert.equal((await d2.stats()).limit, 192 * MiB, "the giver's daemon uses its whole limit again");
    d2.close();

    // The recovered agent works: the containers answer, and a new loan can happen.
    const views = await client.listContainers();
    assert.equal(views.length, 3);
    assert.ok(views.every((v) => v.grantedBytes === v.initialBytes && v.lentTo.length === 0 && v.borrowedFrom.length === 0));

    // 3. SIGTERM removes every container.
    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0);
    agent = undefined;
    assert.deepEqual(await engine.list([`ephemera.node=${NODE}`]), []);
  });
});

/** v1 `memory.oom_control`'s keys (v2: `memory.events`' oom_kill, and the guard as memory.high < max). */
function guardState(dir: string): { guarded: boolean; underOom: boolean; kills: number } {
  if (existsSync(join(dir, 'memory.max'))) {
    const high = readFileSync(join(dir, 'memory.high'), 'utf8').trim();
    const kills = /oom_kill (\d+)/.exec(readFileSync(join(dir, 'memory.events'), 'utf8'))?.[1];
    return { guarded: high !== 'max' && high !== readFileSync(join(dir, 'memory.max'), 'utf8').trim(), underOom: false, kills: Number(kills ?? 0) };
  }
  const text = readFileSync(join(dir, 'memory.oom_control'), 'utf8');
  const key = (k: string): number => Number(new RegExp(`${k} (\\d+)`).exec(text)?.[1] ?? 0);
  return { guarded: key('oom_kill_disable') === 1, underOom: key('under_oom') === 1, kills: key('oom_kill') };
}

/** Whatever stalled the container, as the test saw it from the moment its kill was sent. */
interface Watched {
  readonly last: ReturnType<typeof guardState>;
  readonly liftedMs: number | null;
  readonly longestStallMs: number;
}

/**
 * Starts an agent, a 96 MiB container with the "outgrows" action (16 MiB of files, a 5 s pause,
 * then a heap that grows without end), waits for the guard the agent sets, calls `kill` in the
 * pause, and watches the cgroup for up to 20 s: until the kernel killed the function, or (with
 * `until`) until `until` says it is over.
 */
async function killWithGuardSet(
  t: { diagnostic: (msg: string) => void },
  stateDir: string,
  node: string,
  setCgroup: (dir: string) => void,
  kill: (agent: Agent) => void,
  until: (w: Watched) => boolean,
): Promise<{ agent: Agent; watched: Watched; runDir: string; containerId: string }> {
  const engine = new DockerEngine();
  const agent = await startAgent(stateDir, node);
  const client = new NodeClient(join(stateDir, 'node.sock'));
  const c = await client.createContainer({ tenant: 'acme', function: 'outgrows', memoryBytes: 96 * MiB });
  const dir = (await findMemoryCgroup({ pid: (await engine.inspect(c.id)).pid })).dir;
  setCgroup(dir);
  const runDir = join(stateDir, 'c', (await engine.list([`ephemera.node=${node}`])).find((x) => x.id === c.id)?.labels['ephemera.dir'] ?? '');
  const code = readFileSync(join(REPO_DIR, 'test/memory/guard_fn.py'), 'utf8');
  assert.equal((await client.init(c.id, { value: { code } })).statusCode, 200);
  // 16 MiB of files (the daemon wants the guard), a pause, then 8 MiB more heap at a time without
  // end. The agent is killed in the pause; the request through it fails then.
  const run = client.run(c.id, { value: { mode: 'outgrows', files_mib: 16, step_mib: 8, pause_s: 5 }, timeoutMs: 60_000 }).catch((e: unknown) => e);
  const armedBy = Date.now() + 4000;
  while (!guardState(dir).guarded && Date.now() < armedBy) await sleep(20);
  t.diagnostic(`guard set ${String(4000 - (armedBy - Date.now()))} ms after the run was sent`);
  assert.equal(guardState(dir).guarded, true, `the agent set the guard while the files were in memory: ${agent.stderr.join('').slice(-2000)}`);

  kill(agent);
  await agent.exited;
  const killedAt = Date.now();
  assert.ok((await run) instanceof Error, 'the run through the dead agent failed');
  let last = guardState(dir);
  let liftedMs: number | null = null;
  let stalledSince: number | null = null;
  let longestStallMs = 0;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      last = guardState(dir);
    } catch {
      break; // the cgroup went with its container
    }
    if (!last.guarded) liftedMs ??= Date.now() - killedAt;
    if (last.underOom) stalledSince ??= Date.now();
    else stalledSince = null;
    if (stalledSince !== null) longestStallMs = Math.max(longestStallMs, Date.now() - stalledSince);
    if (until({ last, liftedMs, longestStallMs })) break;
    await sleep(20);
  }
  return { agent, watched: { last, liftedMs, longestStallMs }, runDir, containerId: c.id };
}

/** The agent's guard sentinel: its child running sentinel-main.js. */
function sentinelOf(agentPid: number): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === agentPid && readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('sentinel-main')) return Number(name);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The daemons' logs of a state directory's containers, joined. */
function daemonLogs(stateDir: string): string {
  return readdirSync(join(stateDir, 'c'))
    .map((d) => {
      try {
        return readFileSync(join(stateDir, 'c', d, 'daemon.log'), 'utf8');
      } catch {
        return '';
      }
    })
    .join('');
}

/** One agent's state for a guard suite, removed after it (a frozen container's guard lifted first). */
interface GuardSuite {
  readonly node: string;
  skip: string | null;
  stateDir: string;
  agent: Agent | undefined;
  cgroup: string | undefined;
}

function guardSuite(prefix: string): GuardSuite {
  const s: GuardSuite = { node: `${prefix}${String(process.pid)}`, skip: null, stateDir: '', agent: undefined, cgroup: undefined };
  const engine = new DockerEngine();
  before(async () => {
    s.skip = await dockerReady();
    s.stateDir = await mkdtemp(`/tmp/eph-${prefix}-`);
  });
  after(async () => {
    s.agent?.child.kill('SIGKILL');
    // A container left frozen by a failed run cannot even be removed: lift its guard first.
    if (s.cgroup !== undefined && existsSync(join(s.cgroup, 'memory.oom_control'))) writeFileSync(join(s.cgroup, 'memory.oom_control'), '0');
    for (const c of await engine.list([`ephemera.node=${s.node}`]).catch(() => [])) await engine.remove(c.id);
    await rm(s.stateDir, { recursive: true, force: true });
    await removeParentCgroups(`ephemera-${s.node}`);
  });
  return s;
}

describe('ephemera node SIGKILLed with an OOM guard set', { timeout: 300_000 }, () => {
  const s = guardSuite('clitestg');
  const engine = new DockerEngine();

  test('the heap outgrows the limit after the agent died: killed by the kernel, not frozen; no guard left set', { timeout: 240_000 }, async (t) => {
    if (s.skip !== null) return t.skip(s.skip);
    // The sentinel lifts the guard at once; then the heap outgrows the limit and the kernel kills
    // the function. Without the sentinel the guard stayed set and the container froze (under_oom
    // 1) until the test gave up: watched for up to 20 s here, then judged.
    const r = await killWithGuardSet(t, s.stateDir, s.node, (d) => (s.cgroup = d), (a) => {
      s.agent = a;
      a.child.kill('SIGKILL');
    }, (w) => w.last.kills > 0 && !w.last.underOom);
    const { last, liftedMs, longestStallMs } = r.watched;
    const state = await engine.inspect(r.containerId);
    const what = JSON.stringify({ last, liftedMs, longestStallMs, oomKilled: state.oomKilled, running: state.running });
    assert.ok(liftedMs !== null && liftedMs < 5000, `no guard is left set on a container nobody watches: ${what}`);
    assert.match(r.agent.stderr.join(''), /guard sentinel \d+: the node agent is gone \(its pipe ended\): lifted the OOM guard of 1 container cgroup/);
    assert.ok(last.kills > 0 || state.oomKilled, `the kernel killed the function: ${what}`);
    assert.equal(last.underOom, false, `not frozen: ${what}`);
    assert.equal(last.guarded, false, what);
    t.diagnostic(`guard lifted ${String(liftedMs)} ms after the SIGKILL; longest stall ${String(longestStallMs)} ms`);
    assert.ok(longestStallMs < 5000, `no stall lasted: ${what}`);
  });
});

describe('ephemera node and its guard sentinel SIGKILLed together with an OOM guard set', { timeout: 300_000 }, () => {
  const s = guardSuite('clitestgp');
  const engine = new DockerEngine();

  test('nobody is left to lift the guard: the daemon sees its lease end and kills the function within the bound, never frozen', { timeout: 240_000 }, async (t) => {
    if (s.skip !== null) return t.skip(s.skip);
    // Both stopped first, then both killed: neither can act on the other's death. The guard then
    // stays set (nobody outside may write the cgroup), and before the lease the container sat in
    // under_oom 1 for the whole 20 s watched. Now the daemon ends the stall after its 1 s bound.
    const r = await killWithGuardSet(t, s.stateDir, s.node, (d) => (s.cgroup = d), (a) => {
      s.agent = a;
      const agentPid = a.child.pid ?? 0;
      const sentinel = sentinelOf(agentPid);
      assert.ok(sentinel !== undefined, 'the agent runs a guard sentinel');
      process.kill(agentPid, 'SIGSTOP');
      process.kill(sentinel, 'SIGSTOP');
      process.kill(sentinel, 'SIGKILL');
      process.kill(agentPid, 'SIGKILL');
    }, (w) => !w.last.underOom && daemonLogs(s.stateDir).includes('oom guard orphaned'));
    const { last, liftedMs, longestStallMs } = r.watched;
    const log = readFileSync(join(r.runDir, 'daemon.log'), 'utf8');
    const state = await engine.inspect(r.containerId);
    const what = JSON.stringify({ last, liftedMs, longestStallMs, running: state.running, exitCode: state.exitCode, log: log.split('\n').slice(-14) });
    assert.doesNotMatch(r.agent.stderr.join(''), /guard sentinel \d+: .*lifted/, 'the sentinel was killed before it could lift anything');
    assert.equal(last.underOom, false, `not frozen: ${what}`);
    assert.ok(longestStallMs < 5000, `no stall lasted beyond the bound: ${what}`);
    // The runtime, which runs the function, was the victim: the container ended with it (tini
    // passes on its SIGKILL as 137), and the daemon said so when its write found a page.
    assert.ok(/oom guard orphaned: .*killed pid \d+/.test(log) || (!state.running && state.exitCode === 137), `the daemon killed the function: ${what}`);
    t.diagnostic(`longest stall ${String(longestStallMs)} ms; ${log.split('\n').find((l) => l.includes('orphaned')) ?? ''}`);
  });
});
