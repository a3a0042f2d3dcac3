// The native launcher (launcher/, build/ephemera-run) behind `build/ephemera run`: that it is the
// one that runs, that it hands what it does not do to Node's CLI, and that it ends, fails and
// passes signals on exactly as src/cli/run.ts does, compared side by side with Node's CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { mulberry32, randomInt } from '../core/random.js';

const EPHEMERA = fileURLToPath(new URL('../../ephemera', import.meta.url));
const MAIN_JS = fileURLToPath(new URL('./main.js', import.meta.url));
const BUILD = fileURLToPath(new URL('../../', import.meta.url));

const base = mkdtempSync('/var/tmp/ephemera-launcher-e2e-');
test.after(() => {
  rmSync(base, { recursive: true, force: true });
});

let n = 0;
function freshDir(name: string): string {
  const dir = join(base, `${name}-${String(n++)}`);
  spawnSync('mkdir', ['-p', dir]);
  return dir;
}

type Result = Pick<SpawnSyncReturns<string>, 'status' | 'signal' | 'stdout' | 'stderr'>;

function launcher(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Result {
  const r = spawnSync(EPHEMERA, ['run', ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function viaNode(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Result {
  const r = spawnSync(process.execPath, [MAIN_JS, 'run', ...args], { encoding: 'utf8', timeout: 60_000, env });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function noDaemonLeft(marker: string): void {
  const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).stdout;
  assert.ok(!ps.split('\n').some((l) => l.includes('ephemerad') && l.includes(marker)), `an ephemerad for ${marker} is still running`);
}

function script(dir: string, name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

test('build/ephemera run is the launcher: the command is its child, with the environment contract', { timeout: 60_000 }, () => {
  const root = freshDir('dispatch');
  const log = join(base, 'dispatch.log');
  const show = 'cat /proc/$PPID/comm; env | grep -E "^(LD_PRELOAD|EPHEMERA_[A-Z]+)=" | sort';
  const env = { ...process.env, EPHEMERA_FDMAP: 'stale', LD_PRELOAD: '/nonexistent-other.so' };
  const r = launcher(['--root', root, '--log', log, '--', 'sh', '-c', show], env);
  assert.equal(r.status, 0, r.stderr);
  const [parent, ...vars] = r.stdout.trim().split('\n');
  assert.equal(parent, 'ephemera-run', 'the launcher, not Node, started the command');
  const got = new Map(vars.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  const lib = join(BUILD, 'libephemera.so');
  assert.equal(got.get('LD_PRELOAD'), `${lib}:/nonexistent-other.so`);
  assert.equal(got.get('EPHEMERA_LIB'), lib);
  assert.equal(got.get('EPHEMERA_ROOTS'), root);
  assert.equal(got.get('EPHEMERA_LOG'), log);
  assert.equal(got.has('EPHEMERA_FDMAP'), false);
  assert.match(got.get('EPHEMERA_SOCK') ?? '', /\/run-[A-Za-z0-9]{6}\/shim\.sock$/);
  // Node's CLI gives the same variables (the run directory aside, and the region's identity: a
  // shell that looked up missing names outside the roots attached, since branch aliasopen, and
  // passes its own daemon's region on to what it starts).
  const n = viaNode(['--root', root, '--log', log, '--', 'sh', '-c', show], env);
  assert.equal(n.status, 0, n.stderr);
  const same = (text: string): string => text.replace(/run-[A-Za-z0-9]{6}/g, 'run-X').replace(/^EPHEMERA_REGION=\d+:\d+:\d+:[0-9a-f]+$/m, 'EPHEMERA_REGION=R');
  assert.deepEqual(same(n.stdout.trim().split('\n').slice(1).join('\n')), same(vars.join('\n')));
  assert.ok(!existsSync(dirname(got.get('EPHEMERA_SOCK') ?? '/')), 'the run directory was removed');
  noDaemonLeft(root);
});

function dirname(p: string): string {
  return p.slice(0, p.lastIndexOf('/'));
}

test('what the launcher does not do goes to Node: --memory, --help', { timeout: 60_000 }, (t) => {
  const debug = { ...process.env, EPHEMERA_LAUNCHER_DEBUG: '1' };
  const r = launcher(['--memory', '0', '--', 'true'], debug);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /handing over to Node's CLI: --memory/);
  assert.match(r.stderr, /EPH_CLI_BAD_SIZE: ephemera run: --memory 0 leaves no memory for the command/);
  const help = launcher(['--help']);
  assert.deepEqual(help, viaNode(['--help']));
  assert.match(help.stdout, /^usage: ephemera run /);
  if (process.getuid?.() !== 0) {
    t.diagnostic('not root: the --memory run itself is not tried');
    return;
  }
  const root = freshDir('memory');
  const m = launcher(['--root', root, '--memory', '256M', '--', 'sh', '-c', 'cat /proc/$PPID/comm; grep -E "^[0-9]+:(memory)?:" /proc/self/cgroup; echo ---; grep -E "^[0-9]+:(memory)?:" /proc/$PPID/cgroup']);
  if (m.status === 1 && /EPH_CGROUP_UNAVAILABLE/.test(m.stderr)) {
    t.diagnostic(`no memory cgroup here: ${m.stderr.trim()}`);
    return;
  }
  assert.equal(m.status, 0, m.stderr);
  // Node made the cgroup and handed the run back to the launcher (its keeper restarts a killed
  // daemon): the command's parent is the launcher, which stays outside the cgroup it moved the
  // command into.
  const [head = '', parent = ''] = m.stdout.split('---\n');
  const [comm, ...ownLines] = head.trimEnd().split('\n');
  const own = ownLines.join('\n') + '\n';
  assert.equal(comm, 'ephemera-run', m.stdout);
  assert.match(own, /ephemera/, `the command is in the instance's cgroup: ${m.stdout}`);
  assert.notEqual(own, parent, `the launcher is not in the instance's cgroup: ${m.stdout}`);
});

test('bad command lines: the same message and status as Node, and nothing started', { timeout: 60_000 }, () => {
  const root = freshDir('bad');
  const file = join(root, 'file');
  writeFileSync(file, 'x');
  const notExec = join(root, 'not-exec');
  writeFileSync(notExec, 'echo\n');
  // Executable but not a program: exec's ENOEXEC, which spawn (execvp) hands to /bin/sh.
  const garbage = join(root, 'garbage');
  writeFileSync(garbage, 'no-such-program-ephemera\n');
  chmodSync(garbage, 0o755);
  const cases: readonly (readonly string[])[] = [
    ['true'],
    ['--root', root],
    ['--'],
    ['--', ''],
    ['--budget', '12x', '--', 'true'],
    ['--headroom', '-5', '--', 'true'],
    ['--budget', '1', '--budget', '2', '--', 'true'],
    ['--root', join(root, 'missing'), '--', 'true'],
    ['--root', file, '--', 'true'],
    ['--root', '/', '--', 'true'],
    ['--keep', '--discard', '--', 'true'],
    ['--keep=1', '--', 'true'],
    ['--stats', '', '--', 'true'],
    ['--stats', '/nonexistent-dir/s.json', '--', 'true'],
    ['--log', join(file, 'x.log'), '--', 'true'],
    ['--frobnicate', '--', 'true'],
    ['-x', '--', 'true'],
    ['--root', root, '--', 'no-such-command-ephemera'],
    ['--root', root, '--', notExec],
    ['--root', root, '--', '/bin'],
    ['--root', root, '--discard', '--', garbage],
  ];
  for (const args of cases) {
    const got = launcher(args);
    assert.deepEqual(got, viaNode(args), args.join(' '));
    if (args.at(-1) === garbage) {
      assert.equal(got.status, 127, got.stderr);
      continue;
    }
    assert.ok(got.status === 1 || got.status === 2, `${args.join(' ')}: status ${String(got.status)}`);
    assert.match(got.stderr, /^ephemera: EPH_[A-Z_]+: /, args.join(' '));
  }
  noDaemonLeft(root);
});

test('the daemon gets the same command line and environment from the launcher as from Node', { timeout: 60_000 }, () => {
  const dir = freshDir('daemon-argv');
  const a = freshDir('daemon-argv-a');
  const b = freshDir('daemon-argv-b');
  // A wrapper that records what it was given, then is the real daemon.
  const wrapper = script(dir, 'ephemerad', `printf '%s\\n' "$@" > "$(dirname "$0")/argv.$PPID"; env | grep -E '^(LD_PRELOAD|EPHEMERA_)' | sort > "$(dirname "$0")/env.$PPID"; exec ${join(BUILD, 'ephemerad')} "$@"`);
  const env = { ...process.env, EPHEMERA_EPHEMERAD: wrapper, EPHEMERA_LOG: 'inherited' };
  const args = ['--root', a, '--root', b, '--budget', '1.5M', '--headroom', '8M', '--log', join(dir, 'd.log'), '--discard', '--', 'true'];
  const seen = (r: Result): string => {
    assert.equal(r.status, 0, r.stderr);
    const files = spawnSync('sh', ['-c', `cat ${dir}/argv.* ${dir}/env.*; rm -f ${dir}/argv.* ${dir}/env.*`], { encoding: 'utf8' }).stdout;
    return files.replace(/run-[A-Za-z0-9]{6}/g, 'run-X');
  };
  const fromLauncher = seen(launcher(args, env));
  assert.match(fromLauncher, /^--rundir\n\S+\/run-X\n--root\n/);
  assert.match(fromLauncher, /--budget\n1572864\n--headroom\n8388608\n/);
  // The launcher is the daemon's keeper (docs/PROTOCOL.md, "The keeper link"): its link follows
  // --ready-fd.  Node's run.ts hands the run to the launcher, so the daemon gets the link from
  // there too, and the hand-over's own variables (EPHEMERA_RUN_*) reach neither.
  assert.match(fromLauncher, /--ready-fd\n3\n--keeper-fd\n4\n/);
  assert.doesNotMatch(fromLauncher, /EPHEMERA_RUN_/);
  assert.equal(fromLauncher, seen(viaNode(args, env)));
});

test('random command lines (seeded): the launcher and Node give the same status and output', { timeout: 120_000 }, () => {
  // Flags, values and commands mixed at random: most lines are mistakes that go to Node, some run.
  const dir = freshDir('random');
  const sub = join(dir, 'd');
  spawnSync('mkdir', ['-p', sub]);
  writeFileSync(join(dir, 'f'), 'x');
  const values = ['64M', '1.5G', '12x', '0', '-5', '1.5', '7b', ' 5', '1e3', '64KiB', '', sub, join(dir, 'f'), '/', 'd', '.', join(sub, 's.json'), '/nonexistent/x', '--keep', '--'];
  const flags = ['--root', '--budget', '--headroom', '--stats', '--log', '--keep', '--discard', '--memory', '--frob', '-x', `--root=${sub}`, '--budget=1M', '--keep=1', '--stats=', 'word'];
  const commands = [['true'], ['sh', '-c', 'exit 4'], ['no-such-command-ephemera'], [join(dir, 'f')], [''], []];
  const rnd = mulberry32(15);
  const pick = <T>(xs: readonly T[]): T => xs[randomInt(rnd, 0, xs.length - 1)] as T;
  for (let i = 0; i < 30; i++) {
    const args: string[] = [];
    for (let k = randomInt(rnd, 0, 4); k > 0; k--) {
      const f = pick(flags);
      args.push(f);
      if (rnd() < 0.7 && f.startsWith('--') && !f.includes('=')) args.push(pick(values));
    }
    if (rnd() < 0.9) args.push('--');
    args.push(...pick(commands));
    const run = (argv: readonly string[]): Result => {
      const [file = '', ...rest] = argv;
      const r = spawnSync(file, [...rest, 'run', ...args], { encoding: 'utf8', timeout: 60_000, cwd: dir });
      return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
    };
    assert.deepEqual(run([EPHEMERA]), run([process.execPath, MAIN_JS]), JSON.stringify(args));
  }
});

test("exit statuses: the command's own, 128+N when a signal kills it", { timeout: 60_000 }, () => {
  const root = freshDir('status');
  for (const [cmd, status] of [['exit 0', 0], ['exit 42', 42], ['kill -KILL $$', 137], ['kill -SEGV $$', 139]] as const) {
    const r = launcher(['--root', root, '--discard', '--', 'sh', '-c', cmd]);
    assert.equal(r.status, status, `${cmd}: ${r.stderr}`);
    assert.equal(r.stderr, '', cmd);
  }
  noDaemonLeft(root);
});

test('--stats: the report has the fields, in the order, that Node writes', { timeout: 60_000 }, () => {
  const root = freshDir('stats');
  const cmd = ['sh', '-c', 'echo data > "$0/f"; kill -TERM $$', root];
  const a = join(base, 'stats-launcher.json');
  const b = join(base, 'stats-node.json');
  assert.equal(launcher(['--root', root, '--stats', a, '--discard', '--', ...cmd]).status, 143);
  assert.equal(viaNode(['--root', root, '--stats', b, '--discard', '--', ...cmd]).status, 143);
  const sa = JSON.parse(readFileSync(a, 'utf8')) as Record<string, unknown>;
  const sb = JSON.parse(readFileSync(b, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(sa), Object.keys(sb));
  for (const k of ['command', 'exit_status', 'signal', 'on_exit', 'roots', 'cgroup_limit', 'files_created', 'files_in_memory_peak']) {
    assert.deepEqual(sa[k], sb[k], k);
  }
  assert.equal(sa['signal'], 'SIGTERM');
  assert.equal(typeof sa['elapsed_ms'], 'number');
  // Written the way JSON.stringify(report, null, 2) writes it.
  assert.equal(readFileSync(a, 'utf8'), JSON.stringify(sa, null, 2) + '\n');
});

const TRAP = String.raw`
trap 'echo "got $1" > "$0/got"; exit 7' "$1"
echo ready
while :; do sleep 0.05; done
`;

for (const sig of ['SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGTERM'] as const) {
  test(`${sig} to ephemera run reaches the command (no terminal), whose status is the run's`, { timeout: 60_000 }, async () => {
    const root = freshDir(`forward-${sig}`);
    const child = spawn(EPHEMERA, ['run', '--root', root, '--', 'sh', '-c', TRAP, root, sig.slice(3)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill(sig);
    const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    assert.equal(status, 7, err);
    // Written by the command after the signal, and kept: the writeback happened after it ended.
    assert.equal(readFileSync(join(root, 'got'), 'utf8'), `got ${sig.slice(3)}\n`);
    noDaemonLeft(root);
  });
}

test('a forwarded signal that kills the command gives 128+N', { timeout: 60_000 }, async () => {
  const root = freshDir('killed');
  const child = spawn(EPHEMERA, ['run', '--root', root, '--', 'sh', '-c', 'echo ready; exec sleep 30'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGHUP');
  const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  assert.equal(status, 129);
  noDaemonLeft(root);
});

test('a signal while the daemon starts: the command never runs, the status is 128+N, nothing is left', { timeout: 60_000 }, async () => {
  const dir = freshDir('early-signal');
  const root = freshDir('early-signal-root');
  const slow = script(dir, 'slow-ephemerad', `sleep 3; exec ${join(BUILD, 'ephemerad')} "$@"`);
  for (const [what, argv] of [
    ['launcher', [EPHEMERA, 'run']],
    ['node', [process.execPath, MAIN_JS, 'run']],
  ] as const) {
    const marker = join(root, `ran-${what}`);
    const [file = '', ...args] = [...argv, '--root', root, '--', 'touch', marker];
    const child = spawn(file, args, { stdio: 'ignore', env: { ...process.env, EPHEMERA_EPHEMERAD: slow } });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    child.kill('SIGTERM');
    const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    assert.equal(status, 143, what);
    assert.equal(existsSync(marker), false, `${what}: the command did not run`);
  }
  noDaemonLeft(root);
});

test("the start gate: a command that loads the shim is exec'd beside the daemon's start, and its program runs once the daemon is ready, with its files in memory", { timeout: 60_000 }, async () => {
  const dir = freshDir('gate');
  const root = freshDir('gate-root');
  const slow = script(dir, 'slow-ephemerad', `sleep 2; exec ${join(BUILD, 'ephemerad')} "$@"`);
  // EPHEMERA_START_GATE=0 is the launcher before the gate: its child waits for `ready`, then execs.
  for (const gate of ['on', 'off'] as const) {
    const marker = join(root, `ran-${gate}`);
    const stats = join(dir, `stats-${gate}.json`);
    const env = { ...process.env, EPHEMERA_EPHEMERAD: slow, ...(gate === 'off' ? { EPHEMERA_START_GATE: '0' } : {}) };
    const child = spawn(EPHEMERA, ['run', '--root', root, '--stats', stats, '--', 'touch', marker], { stdio: 'ignore', env });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // The daemon still sleeps: the launcher's children are its wrapper and the command's process.
    const kids = spawnSync('ps', ['-o', 'comm=', '--ppid', String(child.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').sort();
    assert.deepEqual(kids, gate === 'on' ? ['slow-ephemerad', 'touch'] : ['ephemera-run', 'slow-ephemerad'], `gate ${gate}: ${kids.join(', ')}`);
    assert.equal(existsSync(marker), false, `gate ${gate}: the program waits for the daemon`);
    assert.equal(await exited, 0);
    assert.ok(existsSync(marker), `gate ${gate}: the file was written back`);
    const report = JSON.parse(readFileSync(stats, 'utf8')) as { files_created: number };
    assert.equal(report.files_created, 1, `gate ${gate}: touch made its file in memory`);
  }
  noDaemonLeft(root);
});

test('a daemon that exits before it is ready: the error names it and its status', { timeout: 60_000 }, () => {
  const dir = freshDir('early-exit');
  const bad = script(dir, 'bad-ephemerad', 'echo "ephemerad: cannot start: no memory here" >&2; exit 3');
  const env = { ...process.env, EPHEMERA_EPHEMERAD: bad };
  const args = ['--root', dir, '--', 'touch', join(dir, 'ran')];
  const r = launcher(args, env);
  assert.equal(r.status, 1);
  assert.equal(r.stderr, 'ephemerad: cannot start: no memory here\nephemera: EPH_DAEMON_START: ephemerad exited before it was ready (status 3); its message, if any, is above; rerun with --log FILE for more\n');
  assert.deepEqual(r, viaNode(args, env));
  assert.equal(existsSync(join(dir, 'ran')), false);
  // One that cannot be executed at all.
  const missing = { ...process.env, EPHEMERA_EPHEMERAD: join(dir, 'no-such-ephemerad') };
  const m = launcher(args, missing);
  assert.equal(m.status, 1);
  assert.match(m.stderr, /^ephemera: EPH_DAEMON_START: cannot start ephemerad: spawn \S+ ENOENT; run `make`; its message, if any, is above/);
  assert.deepEqual(m, viaNode(args, missing));
});

test('a daemon that never becomes ready: a bounded wait, an error naming the daemon log, nothing left', { timeout: 60_000 }, () => {
  const dir = freshDir('never-ready');
  // It records its pid and command line, then never writes `ready`.
  const hung = script(dir, 'hung-ephemerad', 'echo $$ > "$(dirname "$0")/pid"; echo "$@" > "$(dirname "$0")/argv"; exec sleep 300');
  const log = join(dir, 'daemon.log');
  const t0 = Date.now();
  const r = launcher(['--root', dir, '--log', log, '--', 'touch', join(dir, 'ran')], { ...process.env, EPHEMERA_EPHEMERAD: hung });
  const ms = Date.now() - t0;
  assert.equal(r.status, 1);
  assert.equal(r.stderr, `ephemera: EPH_DAEMON_START: ephemerad did not report ready within 15000 ms; its message is above and in ${log}\n`);
  assert.ok(ms < 40_000, `gave up after ${String(ms)} ms`);
  assert.equal(existsSync(join(dir, 'ran')), false, 'the command did not run');
  const argv = readFileSync(join(dir, 'argv'), 'utf8').trim().split(' ');
  const runDir = argv[argv.indexOf('--rundir') + 1] ?? '';
  assert.match(runDir, /\/run-[A-Za-z0-9]{6}$/);
  assert.equal(existsSync(runDir), false, 'the run directory was removed');
  const pid = readFileSync(join(dir, 'pid'), 'utf8').trim();
  assert.equal(existsSync(`/proc/${pid}`), false, 'the daemon was stopped and reaped');
});

// A terminal for `ephemera run` (Python's pty module): ^C is sent to the foreground process group,
// so the command gets it from the terminal; the run must not pass it on a second time, nor end.
const PTY = String.raw`
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
out = b''
deadline = time.time() + 30
while b'ready' not in out and time.time() < deadline:
    out += os.read(fd, 1024)
time.sleep(0.3)
os.write(fd, b'\x03')
while True:
    try:
        d = os.read(fd, 1024)
    except OSError:
        break
    if not d:
        break
    out += d
_, st = os.waitpid(pid, 0)
print(out.decode(errors='replace').replace('\r', '').replace('^C', ''), end='')
print('status', os.waitstatus_to_exitcode(st))
`;

test('on a terminal, ^C reaches the command once and the run waits for it, as with Node', { timeout: 60_000 }, () => {
  const root = freshDir('tty');
  const cmd = ['--root', root, '--', 'sh', '-c', 'n=0; trap "n=$((n+1)); echo got INT" INT; echo ready; sleep 1; sleep 0.5; echo ints $n; exit 5'];
  const viaPty = (argv: readonly string[]): string => spawnSync('/usr/bin/python3', ['-c', PTY, ...argv], { encoding: 'utf8', timeout: 40_000 }).stdout;
  const got = viaPty([EPHEMERA, 'run', ...cmd]);
  assert.equal(got, 'ready\ngot INT\nints 1\nstatus 5\n');
  assert.equal(viaPty([process.execPath, MAIN_JS, 'run', ...cmd]), got);
  noDaemonLeft(root);
});

test('the launcher under ASan/UBSan: runs, failures and hand-overs without a sanitizer report', { timeout: 120_000 }, async (t) => {
  const asan = join(BUILD, 'ephemera-run-asan');
  if (!existsSync(asan)) {
    t.skip('build/ephemera-run-asan is not built (make test-ts builds it)');
    return;
  }
  const dir = freshDir('asan');
  const env = { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:exitcode=86', UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' };
  const clean = (what: string, r: { status: number | null; stderr: string }): void => {
    assert.notEqual(r.status, 86, `${what}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /AddressSanitizer|LeakSanitizer|runtime error/, what);
  };
  const sync = (what: string, args: readonly string[], status: number, e: NodeJS.ProcessEnv = env): void => {
    const r = spawnSync(asan, args, { encoding: 'utf8', timeout: 60_000, env: e });
    clean(what, r);
    assert.equal(r.status, status, `${what}: ${r.stderr}`);
  };
  const stats = join(dir, 'stats.json');
  sync('a run with --stats', ['--root', dir, '--stats', stats, '--', 'sh', '-c', 'echo x > "$0/f"; exit 3', dir], 3);
  assert.equal((JSON.parse(readFileSync(stats, 'utf8')) as { exit_status: number }).exit_status, 3);
  sync('a killed command', ['--root', dir, '--discard', '--', 'sh', '-c', 'kill -TERM $$'], 143);
  sync('a daemon that exits early', ['--root', dir, '--', 'true'], 1, { ...env, EPHEMERA_EPHEMERAD: '/bin/false' });
  sync('an exec that fails', ['--root', dir, '--', 'true'], 1, { ...env, EPHEMERA_EPHEMERAD: join(dir, 'none') });
  sync('a hand-over to Node', ['--budget', 'lots', '--', 'true'], 2);
  // The daemon killed under the command: the keeper restarts it (issue 9 item 2; before, this was
  // the control client's EPH_DAEMON_CLOSED and status 1), or, when the new one cannot start, writes
  // the files back itself; the run's status is the command's either way.
  const killUnder = async (what: string, e: NodeJS.ProcessEnv): Promise<string> => {
    const child = spawn(asan, ['--root', dir, '--', 'sh', '-c', 'echo started; echo kept > "$0/kept"; sleep 2; exit 4', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: e });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const line = spawnSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).stdout.split('\n').find((l) => l.includes('ephemerad') && l.includes(dir) && !l.includes('sh -c'));
    assert.ok(line !== undefined, 'the daemon runs');
    process.kill(Number(line.trim().split(/\s+/)[0]), 'SIGKILL');
    const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    clean(what, { status, stderr: err });
    assert.equal(status, 4, err);
    assert.match(err, /ephemerad died \(SIGKILL\); restarting it and taking over/);
    assert.equal(readFileSync(join(dir, 'kept'), 'utf8'), 'kept\n', `${what}: the file made before the kill`);
    noDaemonLeft(dir);
    return err;
  };
  await killUnder('a daemon killed under the command', env);
  const once = script(dir, 'ephemerad-once', `if [ -e "$(dirname "$0")/started" ]; then exit 2; fi; : > "$(dirname "$0")/started"; exec ${join(BUILD, 'ephemerad')} "$@"`);
  const err = await killUnder('a daemon killed that cannot be restarted', { ...env, EPHEMERA_EPHEMERAD: once });
  assert.match(err, /the keeper wrote all \d+ in-memory files to disk/);
});
