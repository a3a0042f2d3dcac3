/**
 * The guard lease's rule in the daemon itself (daemon/guardlease.c), on both cgroup versions: a
 * real ephemerad in follow mode over cgroup files that a read-only bind mount makes read-only, as
 * Docker does (so the daemon cannot lift the guard), with the guard set and the cgroup stalled
 * (v1 `under_oom 1`; v2 `memory.current` above `memory.high`) all along, and a real process in
 * `cgroup.procs`. While a process holds the lease FIFO's write end the daemon leaves the stall to
 * the outside (the victim lives on); once that process is SIGKILLed, the daemon kills the victim
 * within its 1 s bound (plus ticks), by SIGKILL, and says so in its log.
 *
 * The files are fakes (the stall is written, not made), so the test runs in a second on any
 * kernel; src/cli/node-e2e.test.ts makes the real stall in a real container.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { EPHEMERAD } from './harness.js';

const FILES: Record<1 | 2, Record<string, string>> = {
  1: {
    'memory.limit_in_bytes': '100663296\n',
    'memory.usage_in_bytes': '95000000\n',
    'memory.oom_control': 'oom_kill_disable 1\nunder_oom 1\noom_kill 0\n',
    'memory.stat': 'cache 0\nrss 0\nshmem 0\n',
  },
  2: {
    'memory.max': '100663296\n',
    'memory.current': '95000000\n',
    'memory.high': '92274688\n',
    'memory.events': 'low 0\nhigh 5\nmax 0\noom 0\noom_kill 0\n',
    'memory.stat': 'anon 0\nfile 0\nshmem 0\n',
  },
};

function exited(p: ChildProcess): Promise<NodeJS.Signals | number | null> {
  return new Promise((resolve) => {
    if (p.exitCode !== null || p.signalCode !== null) resolve(p.signalCode ?? p.exitCode);
    else p.once('exit', (code, signal) => resolve(signal ?? code));
  });
}

/** The fake cgroup made read-only, as Docker mounts it, with a victim in its cgroup.procs and the
 * lease FIFO held by another process (the agent's part): what both kinds of test below start from. */
interface Leased {
  readonly dir: string;
  readonly cg: string;
  readonly ro: string;
  readonly runDir: string;
  readonly root: string;
  readonly victim: ChildProcess;
  readonly holder: ChildProcess;
  readonly procs: ChildProcess[];
}

async function withLeasedCgroup(t: { skip: (why: string) => void }, prefix: string, files: Record<string, string>, body: (l: Leased) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(prefix);
  const cg = join(dir, 'cg');
  const ro = join(dir, 'ro');
  const runDir = join(dir, 'run');
  const root = join(dir, 'root');
  const procs: ChildProcess[] = [];
  let mounted = false;
  try {
    for (const d of [cg, ro, runDir, root]) await mkdir(d);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(cg, name), text);
    const victim = spawn('sleep', ['60'], { stdio: 'ignore' });
    procs.push(victim);
    writeFileSync(join(cg, 'cgroup.procs'), `${String(victim.pid)}\n`);
    for (const args of [['--bind', cg, ro], ['-o', 'remount,bind,ro', ro]]) {
      const m = spawnSync('mount', args, { encoding: 'utf8' });
      if (m.status !== 0) {
        t.skip(`mount ${args.join(' ')}: ${m.stderr}`);
        return;
      }
      mounted = true;
    }
    // The lease, held by another process (the agent's part): the daemon must not inherit it.
    const lease = join(runDir, 'guard.lease');
    assert.equal(spawnSync('mkfifo', [lease]).status, 0);
    const w = openSync(lease, constants.O_RDWR | constants.O_NONBLOCK);
    const holder = spawn('sleep', ['60'], { stdio: ['ignore', 'ignore', 'ignore', w] });
    procs.push(holder);
    closeSync(w);
    await body({ dir, cg, ro, runDir, root, victim, holder, procs });
  } finally {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await Promise.all(procs.map(exited));
    if (mounted) spawnSync('umount', [ro]);
    await rm(dir, { recursive: true, force: true });
  }
}

for (const version of [1, 2] as const) {
  test(`cgroup v${String(version)}: the daemon kills the task the kernel would once nobody holds the lease of a guard it cannot lift`, { timeout: 30_000 }, async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root (a bind mount)');
    await withLeasedCgroup(t, `/tmp/eph-guardpair-lease${String(version)}-`, FILES[version], async ({ dir, ro, runDir, victim, holder, procs }) => {
      const log = join(runDir, 'daemon.log');
      const daemon = spawn(EPHEMERAD, ['--rundir', runDir, '--root', join(dir, 'root'), '--cgroup', ro, '--log', log], { stdio: 'ignore' });
      procs.push(daemon);
      const said = (): string => {
        try {
          return readFileSync(log, 'utf8');
        } catch {
          return '';
        }
      };

      // Held: a stall of 2.5 s is the outside watchdog's to end.
      await sleep(2500);
      assert.equal(victim.exitCode ?? victim.signalCode, null, `the victim was killed while the lease was held: ${said()}`);
      assert.match(said(), /oom guard lease: .*guard\.lease/);

      // Nobody holds it any more: killed within the bound.
      holder.kill('SIGKILL');
      const lostAt = Date.now();
      const how = await Promise.race([exited(victim), sleep(5000).then(() => 'still alive after 5 s')]);
      const tookMs = Date.now() - lostAt;
      assert.equal(how, 'SIGKILL', `the daemon did not kill the victim: ${said()}`);
      t.diagnostic(`killed ${String(tookMs)} ms after the lease's last holder died`);
      assert.ok(tookMs >= 900, `killed before the 1 s bound (${String(tookMs)} ms)`);
      const deadline = Date.now() + 3000;
      while (!/oom guard orphaned: .*killed pid \d+/.test(said()) && Date.now() < deadline) await sleep(20);
      assert.match(said(), new RegExp(`oom guard orphaned: .*killed pid ${String(victim.pid)}`));
    });
  });
}

// An eviction that must wait for memory (daemon/evict.c, evict_recover: its link and the
// putting back of its punched bytes both fail with ENOMEM, as at a v1 limit) holds up the
// daemon's tick for seconds.  The lease's rule runs on that tick, so with the lease's holder gone
// nobody ended the stall until the wait gave up: node-e2e saw an 11 s stall and the bytes given up
// for lost.  The rule must run from the wait too: the victim is killed within its bound while
// the eviction still waits, and once memory comes back (here: the injected failures run out) the
// move completes with every byte.
const FAULTY = join(EPHEMERAD, '..', 'test', 'ephemerad-faults');
const SHIM = join(EPHEMERAD, '..', 'libephemera.so');
test('cgroup v1: an eviction waiting for memory does not hold up the lease rule; no byte is lost', { timeout: 40_000 }, async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (a bind mount)');
  const calm = { ...FILES[1], 'memory.usage_in_bytes': '10000000\n', 'memory.oom_control': 'oom_kill_disable 1\nunder_oom 0\noom_kill 0\n' };
  await withLeasedCgroup(t, '/tmp/eph-guardlease-wait-', calm, async ({ cg, ro, runDir, root, victim, holder, procs }) => {
    const log = join(runDir, 'daemon.log');
    // ~6 s of ENOMEM for both ways out of a failed move (one of each per 10 ms try): longer than
    // the rule's 1 s bound, shorter than the wait's 10 s limit.
    const faults = 'linkat:ENOMEM:times=600,pwrite:ENOMEM:on=mem:times=600';
    const daemon = spawn(FAULTY, ['--rundir', runDir, '--root', root, '--cgroup', ro, '--log', log], { stdio: 'ignore', env: { ...process.env, EPHEMERAD_FAULTS: faults } });
    procs.push(daemon);
    const said = (): string => {
      try {
        return readFileSync(log, 'utf8');
      } catch {
        return '';
      }
    };
    const sock = join(runDir, 'shim.sock');
    for (let i = 0; i < 250 && !said().includes('ready:'); i++) await sleep(20);
    assert.match(said(), /ready:/, 'the daemon did not start');

    // 6 MiB into memory through the shim: more than one 256 KiB block of the punching copy.
    const bytes = Buffer.alloc(6 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + (i >> 12)) & 0xff;
    const file = join(root, 'f');
    const wrote = spawnSync('/bin/sh', ['-c', `cat > '${file}'`], {
      input: bytes,
      env: { ...process.env, LD_PRELOAD: SHIM, EPHEMERA_ROOTS: root, EPHEMERA_SOCK: sock },
    });
    assert.equal(wrote.status, 0, `writing through the shim: ${String(wrote.stderr)}`);

    // The cgroup at its limit, stalled: the daemon evicts, and the move fails after its punch.
    writeFileSync(join(cg, 'memory.usage_in_bytes'), '95000000\n');
    writeFileSync(join(cg, 'memory.oom_control'), 'oom_kill_disable 1\nunder_oom 1\noom_kill 0\n');
    const deadline = Date.now() + 5000;
    while (!/copy of \d+ bytes|linking .*Cannot allocate memory|evict: linking/.test(said()) && Date.now() < deadline) await sleep(20);
    assert.match(said(), /Cannot allocate memory/, `the eviction did not meet the injected ENOMEM: ${said()}`);

    // Nobody holds the lease any more, while the eviction still waits for memory.
    holder.kill('SIGKILL');
    const lostAt = Date.now();
    const how = await Promise.race([exited(victim), sleep(4000).then(() => 'still alive after 4 s')]);
    const tookMs = Date.now() - lostAt;
    t.diagnostic(`killed ${String(tookMs)} ms after the lease's last holder died, during the eviction's wait`);
    assert.equal(how, 'SIGKILL', `the lease rule did not run while the eviction waited: ${said()}`);

    // The kill gave memory back: the stall is over (the kernel would say so), and once the
    // injected failures run out the move completes, every byte on disk.
    for (const [name, text] of Object.entries(calm)) writeFileSync(join(cg, name), text);
    const done = Date.now() + 15_000;
    while (!/no byte lost|restored to memory|LOST/.test(said()) && Date.now() < done) await sleep(50);
    assert.doesNotMatch(said(), /LOST/);
    assert.match(said(), /no byte lost|restored to memory/, `the eviction's wait did not end: ${said()}`);
    daemon.kill('SIGTERM');
    assert.equal(await exited(daemon), 0, `the daemon's exit: ${said()}`);
    assert.ok(readFileSync(file).equals(bytes), 'the file on disk differs from what was written');
  });
});
