// `ephemera run` end to end: the real CLI, daemon and shim around real programs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { notServedFromMemory, readStatsFile } from '../daemon-client/stats.js';

const EPHEMERA = fileURLToPath(new URL('../../ephemera', import.meta.url));
const PYTHON = '/usr/bin/python3';

// A managed root on the disk, so "kept" means really written to disk by the daemon.
const base = mkdtempSync('/var/tmp/ephemera-e2e-');
test.after(() => {
  rmSync(base, { recursive: true, force: true });
});

function freshRoot(name: string): string {
  const dir = join(base, name);
  spawnSync('mkdir', ['-p', dir]);
  return dir;
}

function run(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(EPHEMERA, ['run', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function stats(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

function noDaemonLeft(root: string): void {
  const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
  assert.ok(!ps.split('\n').some((l) => l.includes('ephemerad') && l.includes(root)), `an ephemerad for ${root} is still running`);
}

// Writes, seeks, overwrites, reads back; runs gzip (exec of another program) on the file and
// reads its output; prints a digest; exits 7 so exit-status propagation is checked too.
const SCRIPT = String.raw`
import hashlib, os, subprocess, sys
root = sys.argv[1]
p = os.path.join(root, "data.bin")
data = bytes(range(256)) * 4096          # 1 MiB
with open(p, "wb") as f:
    f.write(data)
    f.seek(1000)
    f.write(b"EPHEMERA")
with open(p, "rb") as f:
    back = f.read()
expect = data[:1000] + b"EPHEMERA" + data[1008:]
assert back == expect, "read back differs"
subprocess.run(["gzip", "-k", p], check=True)
with open(p + ".gz", "rb") as f:
    gz = f.read()
import gzip
assert gzip.decompress(gz) == expect, "gzip output differs"
with open(os.path.join(root, "kept.txt"), "w") as f:
    f.write("nothing lost\n")
print(hashlib.sha256(back).hexdigest())
sys.exit(7)
`;

function expectedDigest(): string {
  const data = Buffer.alloc(256 * 4096);
  for (let i = 0; i < data.length; i++) data[i] = i % 256;
  data.write('EPHEMERA', 1000, 'latin1');
  return createHash('sha256').update(data).digest('hex');
}

test('python + gzip under ephemera run: right bytes, exit status, stats show memory was used, files kept', () => {
  const root = freshRoot('keep');
  const statsFile = join(base, 'keep-stats.json');
  const r = run(['--root', root, '--stats', statsFile, '--', PYTHON, '-c', SCRIPT, root]);
  assert.equal(r.status, 7, r.stderr);
  assert.equal(r.stdout.trim(), expectedDigest());
  const s = stats(statsFile);
  for (const k of ['fast_reads', 'fast_writes', 'files_in_memory_peak', 'bytes_in_memory_peak', 'evictions', 'bytes_evicted']) {
    assert.equal(typeof s[k], 'number', `stats field ${k}`);
  }
  assert.ok(Number(s['fast_reads']) > 0, 'reads were served from memory');
  assert.ok(Number(s['fast_writes']) > 0, 'writes were served from memory');
  assert.ok(Number(s['files_in_memory_peak']) >= 2, 'data.bin and data.bin.gz were in memory');
  assert.ok(Number(s['bytes_in_memory_peak']) >= 1 << 20);
  // The one rule of the harnesses too: the counters parse, and slow_ops shows no I/O that went to the kernel.
  assert.equal(notServedFromMemory(readStatsFile(statsFile)), undefined);
  assert.equal(s['exit_status'], 7);
  // Writeback on exit: the files are ordinary files on disk now.
  assert.equal(readFileSync(join(root, 'kept.txt'), 'utf8'), 'nothing lost\n');
  assert.equal(createHash('sha256').update(readFileSync(join(root, 'data.bin'))).digest('hex'), expectedDigest());
  noDaemonLeft(root);
});

test('--discard drops the in-memory files at the end', () => {
  const root = freshRoot('discard');
  const r = run(['--root', root, '--discard', '--', PYTHON, '-c', SCRIPT, root]);
  assert.equal(r.status, 7, r.stderr);
  assert.deepEqual(readdirSync(root), []);
  noDaemonLeft(root);
});

test('a budget smaller than the data: files spill to disk, nothing is lost', () => {
  const root = freshRoot('budget');
  const statsFile = join(base, 'budget-stats.json');
  const r = run(['--root', root, '--budget', '512K', '--stats', statsFile, '--', PYTHON, '-c', SCRIPT, root]);
  assert.equal(r.status, 7, r.stderr);
  assert.equal(r.stdout.trim(), expectedDigest());
  assert.ok(Number(stats(statsFile)['bytes_in_memory_peak']) <= 512 * 1024, 'stayed within the budget');
  assert.equal(createHash('sha256').update(readFileSync(join(root, 'data.bin'))).digest('hex'), expectedDigest());
});

test('a command killed by a signal gives 128+N', () => {
  const root = freshRoot('signal');
  const r = run(['--root', root, '--', 'sh', '-c', 'kill -TERM $$']);
  assert.equal(r.status, 143, r.stderr);
  noDaemonLeft(root);
});

test('a missing command is a clear error, and no daemon is left behind', () => {
  const root = freshRoot('missing');
  const r = run(['--root', root, '--', 'no-such-command-ephemera']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /EPH_RUN_SPAWN: .*"no-such-command-ephemera" not found in PATH/);
  noDaemonLeft(root);
});

test('SIGTERM to ephemera run reaches the command, which still finishes writing', async () => {
  const root = freshRoot('forward');
  const script = String.raw`
import os, signal, sys, time
def bye(*_):
    with open(os.path.join(sys.argv[1], "bye.txt"), "w") as f:
        f.write("terminated cleanly\n")
    sys.exit(3)
signal.signal(signal.SIGTERM, bye)
print("ready", flush=True)
time.sleep(60)
`;
  const child = spawn(EPHEMERA, ['run', '--root', root, '--', PYTHON, '-c', script, root], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGTERM');
  const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  assert.equal(status, 3, err);
  assert.ok(existsSync(join(root, 'bye.txt')));
  assert.equal(readFileSync(join(root, 'bye.txt'), 'utf8'), 'terminated cleanly\n');
  noDaemonLeft(root);
});

test('--memory runs daemon and command in a fresh cgroup with that limit', (t) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to create a memory cgroup');
    return;
  }
  const root = freshRoot('memory');
  const statsFile = join(base, 'memory-stats.json');
  const r = run(['--root', root, '--memory', '256M', '--stats', statsFile, '--', PYTHON, '-c', SCRIPT, root]);
  if (r.status === 1 && /EPH_CGROUP_UNAVAILABLE/.test(r.stderr)) {
    t.skip(`no memory cgroup controller here: ${r.stderr.trim()}`);
    return;
  }
  assert.equal(r.status, 7, r.stderr);
  assert.equal(r.stdout.trim(), expectedDigest());
  const s = stats(statsFile);
  assert.equal(s['cgroup_limit'], 256 * 1024 * 1024);
  assert.equal(s['oom_kills'], 0);
  assert.equal(typeof s['cgroup_path'], 'string');
  // The daemon found the cgroup it was started in and follows its limit.
  const daemonCgroup = s['cgroup'];
  const cgroupPath = s['cgroup_path'];
  assert.ok(typeof daemonCgroup === 'string' && typeof cgroupPath === 'string' && cgroupPath.endsWith(daemonCgroup), `daemon cgroup ${JSON.stringify(daemonCgroup)} vs ${JSON.stringify(cgroupPath)}`);
  assert.equal(s['limit'], 256 * 1024 * 1024);
  assert.ok(!existsSync(cgroupPath), 'the cgroup was removed');
  noDaemonLeft(root);
});

/**
 * `ephemera run` through `argv` (the command and the arguments before `run`) around a command that
 * writes a file in memory, then sleeps: its daemon is SIGKILLed meanwhile.  The replacement is
 * announced, the command reads its file back and its status is the run's.
 */
async function daemonDiesUnderRun(root: string, argv: [string, ...string[]]): Promise<void> {
  const [cmd, ...pre] = argv;
  const child = spawn(cmd, [...pre, 'run', '--root', root, '--', 'sh', '-c', 'echo kept > "$0/kept"; echo started; sleep 2; cat "$0/kept"; exit 6', root], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const ps = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).stdout;
  const line = ps.split('\n').find((l) => l.includes('ephemerad') && l.includes(root) && !l.includes('sh -c'));
  assert.ok(line !== undefined, 'the daemon runs');
  process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL');
  const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  assert.equal(status, 6, err);
  assert.match(err, /ephemerad died \(SIGKILL\); restarting it and taking over 1 files \(1 in memory\)/);
  assert.match(out, /^started\nkept\n$/);
  assert.equal(readFileSync(join(root, 'kept'), 'utf8'), 'kept\n');
  noDaemonLeft(root);
}

// A daemon killed under the command (issue 9 item 2): `ephemera run` (the native launcher) keeps a
// copy of its fds and starts a new one that takes the files over; the run keeps the command's
// status.  test/fs/keeper.test.mjs checks every byte under a write-heavy workload.
test('a daemon that dies under a running command is replaced, and the run keeps the command\'s status', () =>
  daemonDiesUnderRun(freshRoot('daemon-dies'), [EPHEMERA]));

// Node's run.ts (the path of --memory, and of `node build/js/cli/main.js run`) hands the run to the
// native launcher, so a daemon killed there is replaced too and the run keeps the command's status
// (test/fs/keeper.test.mjs checks every byte of a --memory run).
test('through Node\'s run.ts as well, a daemon that dies under a running command is replaced, and the run keeps the command\'s status', () =>
  daemonDiesUnderRun(freshRoot('daemon-dies-node'), [process.execPath, fileURLToPath(new URL('./main.js', import.meta.url))]));
