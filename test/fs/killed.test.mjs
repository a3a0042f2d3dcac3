// A process killed with SIGKILL (a function at its timeout) never closes its files.  The daemon
// must give back what it held: an unlinked file's memory returns once no live process has it
// open, while files other processes still use stay intact, and a file a killed process shared
// with its (still running) child stays until that child dies too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { PYTHON, requireBuilt, scratch, spawnWatched, startDaemon } from './lib/harness.mjs';

const HOLDER = `
import hashlib, os, sys
root = sys.argv[1]
data = bytes((i * 7 + 3) % 251 for i in range(1 << 20))
fd = os.open(os.path.join(root, 'keep.bin'), os.O_CREAT | os.O_RDWR, 0o644)
os.write(fd, data)
print('ready', flush=True)
sys.stdin.readline()
os.lseek(fd, 0, os.SEEK_SET)
a = os.read(fd, 2 << 20)
with open(os.path.join(root, 'keep.bin'), 'rb') as f:
    b = f.read()
with open(os.path.join(root, 'closed.bin'), 'rb') as f:
    c = f.read()
ok = a == data and b == data and c == b'x' * (4 << 20)
print('ok' if ok else 'bad %d %d %d' % (len(a), len(b), len(c)), flush=True)
`;

const VICTIM = `
import os, sys, time
root = sys.argv[1]
keep = os.open(os.path.join(root, 'keep.bin'), os.O_RDWR)
os.read(keep, 4096)
with open(os.path.join(root, 'closed.bin'), 'wb') as f:
    f.write(b'x' * (4 << 20))
gone = os.open(os.path.join(root, 'gone.bin'), os.O_CREAT | os.O_RDWR, 0o600)
os.write(gone, b'g' * (8 << 20))
os.unlink(os.path.join(root, 'gone.bin'))
dup = os.dup(gone)
shared = os.open(os.path.join(root, 'shared.bin'), os.O_CREAT | os.O_RDWR, 0o600)
os.write(shared, b's' * (2 << 20))
os.unlink(os.path.join(root, 'shared.bin'))
pid = os.fork()
if pid == 0:
    os.close(gone)
    os.close(dup)
    while True:
        time.sleep(10)
os.close(shared)
print('ready', pid, flush=True)
while True:
    time.sleep(10)
`;

const BYSTANDER = `
import os, sys
with open(os.path.join(sys.argv[1], 'by.txt'), 'w') as f:
    f.write('by')
print('ready', flush=True)
sys.stdin.readline()
`;

function startPython(env, script, root) {
  const w = spawnWatched(PYTHON, ['-c', script, root], { env, stdin: 'pipe' });
  return {
    child: w.child,
    exited: w.exited,
    output: w.stdout,
    async line(re, ms = 20_000) {
      const start = Date.now();
      while (Date.now() - start < ms) {
        const m = w.stdout().match(re);
        if (m) return m;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no ${re} from python within ${ms} ms; stdout=${w.stdout()} stderr=${w.stderr()}`);
    },
  };
}

async function statsUntil(d, pred, ms = 10_000) {
  const start = Date.now();
  let s;
  while (Date.now() - start < ms) {
    s = (await d.control({ op: 'stats' })).result;
    if (pred(s)) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
  return s;
}

test('SIGKILLed processes give back the files they held open', async () => {
  requireBuilt();
  const sc = scratch('killed');
  const root = sc.sub('root');
  const d = await startDaemon({ root });
  const MiB = 1 << 20;
  try {
    const holder = startPython(d.env, HOLDER, root);
    await holder.line(/ready/);
    const victim = startPython(d.env, VICTIM, root);
    const m = await victim.line(/ready (\d+)/);
    const grandchild = Number(m[1]);
    const before = (await d.control({ op: 'stats' })).result;
    assert.equal(before.files_in_memory, 4, `keep, closed, gone and shared in memory: ${JSON.stringify(before)}`);

    victim.child.kill('SIGKILL');
    await victim.exited;
    // gone.bin (8 MiB, unlinked, open only in the victim) is freed; shared.bin stays: the
    // victim's child still has it open.
    const afterVictim = await statsUntil(d, (s) => s.files_in_memory === 3);
    assert.equal(afterVictim.files_in_memory, 3, `the killed process's unlinked file was not freed: ${JSON.stringify(afterVictim)}`);
    assert.ok(afterVictim.file_bytes_memory <= before.file_bytes_memory - 8 * MiB,
      `its 8 MiB did not return: ${before.file_bytes_memory} -> ${afterVictim.file_bytes_memory}`);

    process.kill(grandchild, 'SIGKILL');
    const afterChild = await statsUntil(d, (s) => s.files_in_memory === 2);
    assert.equal(afterChild.files_in_memory, 2, `the file the killed child shared was not freed: ${JSON.stringify(afterChild)}`);
    assert.ok(afterChild.file_bytes_memory <= before.file_bytes_memory - 10 * MiB);

    // The surviving process's files and its open fd are intact.
    holder.child.stdin.write('go\n');
    await holder.line(/^(ok|bad.*)$/m);
    const st = await holder.exited;
    assert.match(holder.output(), /^ok$/m, `holder: ${holder.output()}`);
    assert.equal(st.code, 0);
    const end = await statsUntil(d, (s) => s.files_in_memory === 2);
    assert.equal(end.files_in_memory, 2, 'keep.bin and closed.bin are still named');
  } finally {
    const { stderr } = await d.stop();
    if (stderr) process.stderr.write(stderr);
  }
});

/*
 * A test with a bystander process that keeps the instance alive (with no process left the daemon
 * drops every count): body(d, root) runs while it waits; then it must exit cleanly.
 */
async function withBystander(name, body) {
  requireBuilt();
  const sc = scratch(name);
  const root = sc.sub('root');
  const d = await startDaemon({ root });
  let by;
  try {
    by = startPython(d.env, BYSTANDER, root);
    await by.line(/ready/);
    await body(d, root);
    by.child.stdin.end('go\n');
    assert.equal((await by.exited).code, 0);
    sc.done();
  } finally {
    // A failed body leaves the bystander waiting on its stdin: it would keep this file's test
    // process, and with it the whole suite, alive for ever.
    if (by !== undefined && by.child.exitCode === null && by.child.signalCode === null) by.child.kill('SIGKILL');
    await d.stop();
  }
}

test('a file held across exec is given back when the new image is killed', () =>
  withBystander('killed-exec', async (d, root) => {
    // sh opens the file, a child writes through the inherited fd, sh unlinks it and becomes
    // sleep, which inherits fd 3 (and its reference) through exec.
    const script = `exec 3<>"$R/e.bin"; head -c 3000000 /dev/zero >&3; rm "$R/e.bin"; echo ready; exec sleep 1000`;
    const w = spawnWatched('/bin/sh', ['-c', script], { env: { ...d.env, R: root } });
    const sh = w.child;
    const start = Date.now();
    while (!w.stdout().includes('ready') && Date.now() - start < 20_000) await new Promise((r) => setTimeout(r, 20));
    assert.match(w.stdout(), /ready/, w.stderr());
    const held = await statsUntil(d, (s) => s.files_in_memory === 2 && /sleep/.test(procComm(sh.pid)));
    assert.equal(held.files_in_memory, 2, 'the unlinked file is still open in sleep');
    sh.kill('SIGKILL');
    await w.exited;
    const after = await statsUntil(d, (s) => s.files_in_memory === 1);
    assert.equal(after.files_in_memory, 1, `not given back: ${JSON.stringify(after)}`);
    assert.ok(after.file_bytes_memory < 3000000);
  }));

function procComm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8');
  } catch {
    return '';
  }
}

test('a child forked with no file open registers when it opens one, and gives it back when killed', () =>
  withBystander('killed-lazy', async (d, root) => {
    // The parent touched the root (so the shim is attached) but holds no file when it forks.
    const script = `
import os, sys, time
root = sys.argv[1]
os.stat(os.path.join(root, 'by.txt'))
pid = os.fork()
if pid == 0:
    fd = os.open(os.path.join(root, 'lazy.bin'), os.O_CREAT | os.O_RDWR, 0o600)
    os.write(fd, b'z' * (1 << 20))
    os.unlink(os.path.join(root, 'lazy.bin'))
    print('ready', os.getpid(), flush=True)
    while True:
        time.sleep(10)
os.waitpid(pid, 0)
print('reaped', flush=True)
`;
    const parent = startPython(d.env, script, root);
    const m = await parent.line(/ready (\d+)/);
    const held = await statsUntil(d, (s) => s.files_in_memory === 2);
    assert.equal(held.files_in_memory, 2, 'by.txt and the unlinked lazy.bin');
    process.kill(Number(m[1]), 'SIGKILL');
    await parent.line(/reaped/);
    const after = await statsUntil(d, (s) => s.files_in_memory === 1);
    assert.equal(after.files_in_memory, 1, `not given back: ${JSON.stringify(after)}`);
    assert.equal((await parent.exited).code, 0);
  }));

test('a reference the kernel dropped at exec (O_CLOEXEC) is not dropped a second time when the new image is killed', async () => {
  requireBuilt();
  const sc = scratch('killed-cloexec');
  const root = sc.sub('root');
  const d = await startDaemon({ root });
  let parent;
  try {
    // The parent keeps an unlinked file open; its child shares the description until it execs
    // sleep, where O_CLOEXEC closes it and the new image drops the child's reference.  Killing
    // sleep must leave the parent's reference (and the file) alone.
    const script = `
import os, sys
root = sys.argv[1]
data = bytes((i * 7 + 3) % 251 for i in range(1 << 20))
fd = os.open(os.path.join(root, 'c.bin'), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
os.write(fd, data)
os.unlink(os.path.join(root, 'c.bin'))
pid = os.fork()
if pid == 0:
    os.execv('/bin/sleep', ['sleep', '1000'])
print('ready', pid, flush=True)
sys.stdin.readline()
os.waitpid(pid, 0)
os.lseek(fd, 0, os.SEEK_SET)
print('ok' if os.read(fd, 2 << 20) == data else 'bad', flush=True)
`;
    parent = startPython(d.env, script, root);
    const m = await parent.line(/ready (\d+)/);
    const pid = Number(m[1]);
    const start = Date.now();
    while (!/sleep/.test(procComm(pid)) && Date.now() - start < 20_000) await new Promise((r) => setTimeout(r, 20));
    // The new image has attached and dropped its inherited reference once its shim ran; give it a moment.
    await new Promise((r) => setTimeout(r, 300));
    process.kill(pid, 'SIGKILL');
    // A double drop would free the parent's file: it would leave memory within a few ticks.
    const after = await statsUntil(d, (s) => s.files_in_memory === 0, 1_500);
    assert.equal(after.files_in_memory, 1, `the parent's file was freed under it: ${JSON.stringify(after)}`);
    parent.child.stdin.end('go\n');
    assert.equal((await parent.line(/ok|bad/))[0], 'ok');
    assert.equal((await parent.exited).code, 0);
    sc.done();
  } finally {
    parent?.child.kill('SIGKILL'); // still waiting on stdin if an assertion failed
    await d.stop();
  }
});

test("a fork child's table, registered by the parent and by the child, is given back once when both come after the child is reaped", async () => {
  requireBuilt();
  const sc = scratch('killed-twice');
  const root = sc.sub('root');
  const d = await startDaemon({ root });
  let parent;
  let stopped = false;
  try {
    // The parent holds an unlinked file; its child inherits the fd, takes a reference of its own
    // (so it registers its table itself, on its own connection, beside the parent's registration
    // of the same table on the parent's) and exits at once.  The daemon is stopped meanwhile, so
    // it reads both registrations after the child was reaped, as it does when busy for the few ms
    // a short child lives: each one found no ledger of the pid and gave the table back, so the
    // child's reference on the file went twice, the parent's with it, and the file was freed
    // while the parent still had it open (programs_more's "flock: exec child on the inherited
    // fd" met EAGAIN about one run in three that way, its exec'd child's desc left with no other
    // holder).
    const script = `
import os, sys
root = sys.argv[1]
data = bytes((i * 7 + 3) % 251 for i in range(1 << 20))
with open(os.path.join(root, 'peek.txt'), 'w') as f:
    f.write('p')
fd = os.open(os.path.join(root, 'f.bin'), os.O_CREAT | os.O_RDWR, 0o600)
os.write(fd, data)
os.unlink(os.path.join(root, 'f.bin'))
print('ready', flush=True)
sys.stdin.readline()
pid = os.fork()
if pid == 0:
    os.close(os.open(os.path.join(root, 'peek.txt'), os.O_RDONLY))
    os._exit(0)
os.waitpid(pid, 0)
print('reaped', flush=True)
sys.stdin.readline()
os.lseek(fd, 0, os.SEEK_SET)
print('ok' if os.read(fd, 2 << 20) == data else 'bad', flush=True)
`;
    parent = startPython(d.env, script, root);
    await parent.line(/ready/);
    const before = (await d.control({ op: 'stats' })).result;
    assert.equal(before.files_in_memory, 2, `peek.txt and the unlinked f.bin: ${JSON.stringify(before)}`);
    process.kill(d.pid, 'SIGSTOP');
    stopped = true;
    parent.child.stdin.write('go\n');
    await parent.line(/reaped/);
    process.kill(d.pid, 'SIGCONT');
    stopped = false;
    // A second give-back frees f.bin within a tick or two of the daemon's reading it.
    const after = await statsUntil(d, (s) => s.files_in_memory < 2, 1_500);
    assert.equal(after.files_in_memory, 2, `the parent's open file was freed under it: ${JSON.stringify(after)}`);
    parent.child.stdin.end('go\n');
    assert.equal((await parent.line(/ok|bad/))[0], 'ok');
    assert.equal((await parent.exited).code, 0);
    sc.done();
  } finally {
    if (stopped) process.kill(d.pid, 'SIGCONT');
    parent?.child.kill('SIGKILL');
    await d.stop();
  }
});
