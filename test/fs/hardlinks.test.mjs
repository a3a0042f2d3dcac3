// Hard links of in-memory files stay in memory (issue 9 item 5, issue 15 item 4; shim/nslink.c,
// docs/ARCHITECTURE.md "Hard links in memory").  A further name is a slot of its own that points
// at the file; these tests check what a program sees through several names, that eviction, the
// exit write-back and a daemon takeover keep every name a name of one file, and that git's object
// store (a link and an unlink per object) stays in memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { DAEMON, EPHEMERA, PYTHON, REPO, SHIM, TEST_BIN, cleanEnv, describe, ephemeraRun, requireBuilt, run, scratch, startDaemon } from './lib/harness.mjs';

const WORKLOAD = join(REPO, 'test/fs/py/hardlinks.py');

/** Run the workload's MODE under `ephemera run` with a 1 MiB budget; it exits 7 when its checks held. */
async function workload(sc, mode, before = () => {}) {
  const root = sc.sub('root');
  before(root);
  const log = join(sc.dir, 'ephemerad.log');
  const r = await run(EPHEMERA, ['run', '--root', root, '--budget', '1M', '--log', log, '--', PYTHON, WORKLOAD, mode, root], {
    env: cleanEnv(),
    cwd: sc.dir,
    timeoutMs: 60_000,
  });
  assert.equal(r.status, 7, `the ${mode} workload failed: ${describe(r)}\n--- log ---\n${readFileSync(log, 'utf8').slice(-3000)}`);
  return { root, log: readFileSync(log, 'utf8') };
}

/** The names, each a hard link of one disk file with that many links, holding `bytes`. */
function assertOneDiskFile(root, names, bytes) {
  const sts = names.map((n) => lstatSync(join(root, n)));
  for (const [k, st] of sts.entries()) {
    assert.equal(st.nlink, names.length, `${names[k]} on disk: nlink ${st.nlink}, want ${names.length}`);
    assert.equal(st.ino, sts[0].ino, `${names[k]} on disk is another file than ${names[0]}`);
    assert.deepEqual(readFileSync(join(root, names[k])), Buffer.from(bytes), `${names[k]} on disk holds other bytes`);
  }
}

test('names of one in-memory file: st_nlink, st_ino and d_ino, ctime, writes through one name, unlink and rename of names; written back as hard links', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('hardlinks-names');
  const { root } = await workload(sc, 'names'); // it checks that every file stayed in memory (st_ino)
  assert.deepEqual(readdirSync(root).sort(), ['d', 'kept', 'other']);
  assertOneDiskFile(root, ['kept', 'd/kept2'], 'kept');
  assert.equal(readFileSync(join(root, 'other'), 'utf8'), 'other');
  sc.done();
});

test('a linked file evicted by the budget: every name becomes a disk link of one file, no byte lost', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('hardlinks-evict');
  const { root, log } = await workload(sc, 'evict');
  assert.match(log, /evicted inode \d+ \S+\/[xyz] \(200000 bytes/, 'the linked file was evicted');
  const names = readdirSync(root).filter((n) => !n.startsWith('fill')).sort();
  assert.deepEqual(names, ['w', 'y', 'z']);
  const y = readFileSync(join(root, 'y'));
  assert.equal(y.subarray(0, 7).toString(), 'EVICTED');
  assertOneDiskFile(root, names, y);
  sc.done();
});

test('a linked file across a SIGKILL of ephemerad: the new daemon takes the names over, consistent, nothing lost', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('hardlinks-takeover');
  const { root, log } = await workload(sc, 'takeover');
  assert.match(log, /takeover of the region of pid \d+: .* 0 lost/, `no takeover, or bytes lost:\n${log.slice(-3000)}`);
  assert.match(log, /ns_check after the takeover: consistent/);
  assert.doesNotMatch(log, /ns_check.*inconsistent|names slot|for \d+ names/, `ns_check found a bad link count:\n${log.slice(-3000)}`);
  assert.deepEqual(readdirSync(root).sort(), ['after', 't2', 't3', 't4']);
  assertOneDiskFile(root, ['t2', 't3', 't4'], 'across the kill!');
  sc.done();
});

test('renames over the own name of a file with further names, and links through "..": every file stays in memory', { timeout: 60_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('hardlinks-renames');
  // Before the fix both moved the file to disk first (its st_ino changed; the difftest's strict
  // runs with link, seeds 1000-3000): the rename in the daemon, the link before the kernel's ENOTDIR.
  const { root } = await workload(sc, 'renames', (r) => writeFileSync(join(r, 'ondisk'), 'from disk'));
  assertOneDiskFile(root, ['t2', 'u'], 'u');
  assertOneDiskFile(root, ['t3', 't4'], 'target');
  assertOneDiskFile(root, ['d'], 'from disk');
  assertOneDiskFile(root, ['d2'], 'linked');
  sc.done();
});

/** Wait (bounded) until process pid is stopped (state T), as EPHEMERA_NS_STALL leaves it. */
async function stopped(pid) {
  for (let i = 0; i < 500; i++) {
    let stat = '';
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return false; // gone
    }
    if (/^\d+ \(.*\) [tT] /.test(stat)) return true;
    await sleep(20);
  }
  return false;
}

test('a rename over the own name of a file with further names, SIGKILLed inside the namespace lock: before or after, consistent', { timeout: 90_000 }, async () => {
  const FAULTS = join(TEST_BIN, 'libephemera-faults.so');
  requireBuilt(SHIM, DAEMON, FAULTS);
  const sc = scratch('hardlinks-kill');
  const root = sc.sub('root');
  const d = await startDaemon({ root, budget: 64 << 20 });
  const py = (code, env = d.env) => run(PYTHON, ['-c', code, root], { env, timeoutMs: 30_000 });
  try {
    // The record with two paths (journal.path2): the source takes the target's name, the
    // target file its first further name.  Stopped before the commit (discarded), after its
    // first store and after all of them (redone by the next locker), then killed.
    for (const [point, committed] of [['building', false], ['applying', true], ['applied', true]]) {
      const setup = await py(`import os, sys
r = sys.argv[1]
for n, b in (('t-${point}', b'target'), ('s-${point}', b'source')):
    with open(os.path.join(r, n), 'wb') as f: f.write(b)
os.link(os.path.join(r, 't-${point}'), os.path.join(r, 't2-${point}'))
print(os.stat(os.path.join(r, 't-${point}')).st_ino, os.stat(os.path.join(r, 's-${point}')).st_ino)`);
      assert.equal(setup.status, 0, describe(setup));
      const [tino, sino] = setup.stdout.toString().trim().split(' ').map(Number);
      const victim = spawn(PYTHON, ['-c', `import os, sys; os.rename(os.path.join(sys.argv[1], 's-${point}'), os.path.join(sys.argv[1], 't-${point}'))`, root], {
        env: { ...d.env, LD_PRELOAD: FAULTS, EPHEMERA_LIB: FAULTS, EPHEMERA_NS_STALL: point },
        stdio: 'ignore',
      });
      const gone = new Promise((res) => victim.on('exit', res));
      const wasStopped = await stopped(victim.pid);
      victim.kill('SIGKILL');
      await gone;
      assert.ok(wasStopped, `the rename did not stop inside the lock at ${point}`);
      // The next locker (a create) recovers the lock: the record is redone or discarded.
      const check = await py(`import os, sys
r = sys.argv[1]
p = lambda n: os.path.join(r, n)
with open(p('after-${point}'), 'wb') as f: f.write(b'after')
def rd(n):
    with open(p(n), 'rb') as f: return f.read()
st = {n: os.stat(p(n)) for n in ('t-${point}', 't2-${point}') }
print(os.path.exists(p('s-${point}')), rd('t-${point}').decode(), st['t-${point}'].st_ino, st['t-${point}'].st_nlink, rd('t2-${point}').decode(), st['t2-${point}'].st_ino, st['t2-${point}'].st_nlink)`);
      assert.equal(check.status, 0, describe(check));
      const got = check.stdout.toString().trim();
      const want = committed
        ? `False source ${sino} 1 target ${tino} 1`
        : `True target ${tino} 2 target ${tino} 2`;
      assert.equal(got, want, `killed at ${point}: (source exists, t, its ino, nlink, t2, its ino, nlink)`);
      const ns = await d.control({ op: 'ns-check' });
      assert.equal(ns.result?.consistent, true, `ns-check after the kill at ${point}: ${JSON.stringify(ns)}`);
    }
  } finally {
    await d.stop();
  }
  sc.done();
});

test('git add, commit and fsck of 500 files under ephemera run: the loose objects stay in memory', { timeout: 120_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('hardlinks-git');
  const root = sc.sub('root');
  const script = `set -e
git init -q -b main repo && cd repo
git config user.email t@example.com && git config user.name t
for i in $(seq 1 500); do echo "file $i" > f$i.txt; done
git add . && git commit -qm five-hundred
git fsck --strict --no-dangling
git count-objects -v | grep '^count:'
git cat-file -p HEAD:f250.txt`;
  const r = await ephemeraRun({ root, cmd: '/bin/bash', args: ['-c', script], statsDir: sc.dir, discard: true, timeoutMs: 100_000 });
  assert.equal(r.status, 0, describe(r));
  const out = r.stdout.toString();
  assert.match(out, /^count: 502$/m, `500 blobs, a tree and a commit, loose: ${out}`);
  assert.match(out, /^file 250$/m);
  // Each object is written to a temporary name, linked at its final name and unlinked: before
  // links stayed in memory, every link moved its object to disk (an eviction each).
  assert.equal(r.stats.evictions, 0, `objects were moved to disk: ${JSON.stringify(r.stats)}`);
  assert.ok(r.stats.files_created >= 1000, `the objects and the work tree were not made in memory: ${JSON.stringify(r.stats)}`);
  sc.done();
});

test('links while another process removes directories: every link stays in memory', { timeout: 90_000 }, async () => {
  requireBuilt(EPHEMERA, SHIM, DAEMON);
  const sc = scratch('hardlinks-linkrace');
  const root = sc.sub('root');
  // Any rmdir (and any rename the daemon makes) bumps the region's dirs_gone, which a link in
  // memory compares under the namespace lock with what it read before its look at the parent.
  // Before the fix a change meant "not a case for memory": the link moved its file to disk, and
  // other processes' stats showed the disk file's st_ino (the multi-process difftest's strict
  // runs under load: link-multi-2002, link-multi-3002, multi 5002).  Now it looks again.
  const r = await ephemeraRun({ root, cmd: PYTHON, args: [WORKLOAD, 'linkrace', root], statsDir: sc.dir, timeoutMs: 80_000 });
  assert.equal(r.status, 7, `the linkrace workload failed: ${describe(r)}`);
  assert.equal(r.stats.evictions, 0, `links moved their files to disk: ${JSON.stringify(r.stats)}`);
  sc.done();
});
