// A process started beside its daemon, before the daemon listens, as ow_entry.sh starts the action
// runtime: Python's imports look up missing names outside the roots first, and the shim's look for
// a root reached through an outside symlink (shim/paths.c, path_alias_on) tries to attach after four
// of them.  That try failed (no socket yet) and turned the shim off for the process's life, so every
// file of every activation went to disk (fresh-clone CI, up-e2e and views-e2e: fast_writes 0).  A try
// that fails now leaves the process free to attach once the daemon is up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { DAEMON, PYTHON, SHIM, cleanEnv, scratch } from './lib/harness.mjs';

const EARLY = `
import os, sys, time
run, root = sys.argv[1], sys.argv[2]
for i in range(8):
    os.path.exists('/nonexistent-early-attach-%d' % i)
open(os.path.join(run, 'looked'), 'w').close()
for _ in range(1000):
    if os.path.exists(os.path.join(run, 'shim.sock')):
        break
    time.sleep(0.01)
time.sleep(0.2)
open(os.path.join(root, 'f'), 'w').write('x' * 100000)
print('wrote')
`;

test('a process that looked up missing names before its daemon listened still keeps its files in memory', { timeout: 60_000 }, async () => {
  const sc = scratch('early-attach');
  const run = sc.sub('run');
  const root = sc.sub('root');
  mkdirSync(run, { recursive: true });
  const script = join(sc.dir, 'early.py');
  writeFileSync(script, EARLY);
  const env = { ...cleanEnv(), LD_PRELOAD: SHIM, EPHEMERA_SOCK: join(run, 'shim.sock'), EPHEMERA_ROOTS: root };
  const py = spawn(PYTHON, [script, run, root], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  py.stdout.on('data', (d) => (out += d));
  const pyDone = new Promise((resolve) => py.on('exit', resolve));
  for (let i = 0; i < 500 && !existsSync(join(run, 'looked')); i++) await sleep(10);
  const log = join(run, 'daemon.log');
  const d = spawn(DAEMON, ['--rundir', run, '--root', root, '--cgroup', 'none', '--log', log], { stdio: 'ignore' });
  const dDone = new Promise((resolve) => d.on('exit', resolve));
  try {
    assert.equal(await pyDone, 0, `the program: ${out}`);
    assert.equal(out, 'wrote\n');
  } finally {
    d.kill('SIGTERM');
    await dDone;
  }
  // At exit the daemon wrote the file back from memory: it had been in memory.
  assert.match(readFileSync(log, 'utf8'), /shutdown: wrote 1 in-memory files back to disk/, 'the file went to disk: the shim had turned itself off');
  assert.equal(readFileSync(join(root, 'f'), 'utf8').length, 100000);
  sc.done();
});
