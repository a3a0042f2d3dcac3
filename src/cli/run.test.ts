// test-tier: unit
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { RUN_DIR_MODE, checkRoot, exitStatusOf, launcherArgs, launcherFor, makeRunDir, parseRunOptions, preloadWith, resolveCommand, shimEnv } from './run.js';
import { isEphemeraError, type ErrorCode } from '../core/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'eph-run-test-'));
const file = join(dir, 'file');
writeFileSync(file, 'x');
test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

test('defaults: root /tmp, writeback, command kept verbatim', () => {
  const o = parseRunOptions(['--', 'python3', '-c', 'print(1)', '--root']);
  assert.deepEqual(o.roots, ['/tmp']);
  assert.equal(o.onExit, 'writeback');
  assert.deepEqual(o.command, ['python3', '-c', 'print(1)', '--root']);
  assert.equal(o.budget, undefined);
  assert.ok(!('budget' in o));
});

test('all flags', () => {
  const o = parseRunOptions(['--root', dir, '--root', dir, '--budget', '64M', '--memory=1G', '--headroom', '8M', '--stats', 's.json', '--log', 'l.log', '--discard', '--', 'true']);
  assert.deepEqual(o.roots, [dir]); // duplicates collapse
  assert.equal(o.budget, 64 * 1024 * 1024);
  assert.equal(o.memory, 1024 ** 3);
  assert.equal(o.headroom, 8 * 1024 * 1024);
  assert.equal(o.statsFile, join(process.cwd(), 's.json'));
  assert.equal(o.logFile, join(process.cwd(), 'l.log'));
  assert.equal(o.onExit, 'discard');
});

test('misconfiguration gets the right code and a message with the value', () => {
  const cases: ReadonlyArray<readonly [readonly string[], ErrorCode, RegExp]> = [
    [['true'], 'EPH_CLI_USAGE', /unexpected argument "true"/],
    [['--root', dir], 'EPH_CLI_USAGE', /no `--` before the command/],
    [['--'], 'EPH_CLI_USAGE', /no command after `--`/],
    [['--', ''], 'EPH_CLI_USAGE', /no command after `--`/],
    [['--budget', '12x', '--', 'true'], 'EPH_CLI_BAD_SIZE', /--budget: cannot parse size "12x"/],
    [['--memory', '0', '--', 'true'], 'EPH_CLI_BAD_SIZE', /--memory 0/],
    [['--headroom', '-5', '--', 'true'], 'EPH_CLI_BAD_SIZE', /"-5"/],
    [['--root', join(dir, 'missing'), '--', 'true'], 'EPH_CLI_BAD_ROOT', /does not exist; create it first/],
    [['--root', file, '--', 'true'], 'EPH_CLI_BAD_ROOT', /is not a directory/],
    [['--root', '/', '--', 'true'], 'EPH_CLI_BAD_ROOT', /refusing to manage the whole file system/],
    [['--keep', '--discard', '--', 'true'], 'EPH_CLI_CONFLICT', /--keep and --discard both given/],
    [['--stats', '', '--', 'true'], 'EPH_CLI_USAGE', /--stats needs a file name/],
    [['--frobnicate', '--', 'true'], 'EPH_CLI_USAGE', /unknown flag "--frobnicate"/],
    [['--stats', '/nonexistent-dir/s.json', '--', 'true'], 'EPH_CLI_USAGE', /--stats "\/nonexistent-dir\/s.json": its directory \/nonexistent-dir is not a writable directory/],
    [['--log', join(file, 'x.log'), '--', 'true'], 'EPH_CLI_USAGE', /--log .* is not a writable directory \(ENOTDIR\)/],
  ];
  for (const [argv, code, re] of cases) {
    assert.throws(() => parseRunOptions(argv), (err: unknown) => isEphemeraError(err, code) && re.test(err.message), argv.join(' '));
  }
});

test('checkRoot resolves relative paths', () => {
  assert.equal(checkRoot('.'), process.cwd());
  assert.throws(() => checkRoot('/a:b'), (err: unknown) => isEphemeraError(err, 'EPH_CLI_BAD_ROOT'));
});

test('the run directory is never inside a managed root', () => {
  const xdg = join(dir, 'xdg');
  const runDir = makeRunDir([tmpdir()], { XDG_RUNTIME_DIR: xdg });
  try {
    assert.ok(!runDir.startsWith(tmpdir() + '/'), runDir);
  } finally {
    rmSync(runDir, { recursive: true, force: true });
  }
  const inXdg = makeRunDir(['/nonexistent-root'], { XDG_RUNTIME_DIR: xdg });
  try {
    if (process.getuid?.() !== 0) assert.ok(inXdg.startsWith(join(xdg, 'ephemera') + '/'), inXdg);
    // other users reach the shim's socket by name, but cannot list the directory or its base
    assert.equal(statSync(inXdg).mode & 0o777, RUN_DIR_MODE, inXdg);
    assert.equal(statSync(dirname(inXdg)).mode & 0o777, RUN_DIR_MODE, dirname(inXdg));
  } finally {
    rmSync(inXdg, { recursive: true, force: true });
  }
});

test('LD_PRELOAD gets the shim first, keeps others, never twice', () => {
  assert.equal(preloadWith('/b/lib.so', undefined), '/b/lib.so');
  assert.equal(preloadWith('/b/lib.so', ''), '/b/lib.so');
  assert.equal(preloadWith('/b/lib.so', '/x.so /y.so'), '/b/lib.so:/x.so:/y.so');
  assert.equal(preloadWith('/b/lib.so', '/x.so:/b/lib.so'), '/b/lib.so:/x.so');
});

test('the environment contract', () => {
  const env = shimEnv({ PATH: '/bin', EPHEMERA_FDMAP: 'stale', EPHEMERA_LOG: 'old', EPHEMERA_REGION: '1:2:3:4' }, '/b/lib.so', '/run/x', ['/tmp', '/scratch'], undefined);
  assert.equal(env['PATH'], '/bin');
  assert.equal(env['LD_PRELOAD'], '/b/lib.so');
  assert.equal(env['EPHEMERA_SOCK'], '/run/x/shim.sock');
  assert.equal(env['EPHEMERA_ROOTS'], '/tmp:/scratch');
  assert.equal(env['EPHEMERA_LIB'], '/b/lib.so');
  assert.equal(env['EPHEMERA_FDMAP'], undefined);
  assert.equal(env['EPHEMERA_REGION'], undefined, "a run nested in another must not map the outer run's region");
  assert.equal(env['EPHEMERA_LOG'], undefined);
  assert.equal(shimEnv({}, '/l.so', '/r', ['/tmp'], '/log')['EPHEMERA_LOG'], '/log');
});

test('commands are found like exec finds them', () => {
  assert.equal(resolveCommand('sh', '/nonexistent:/bin'), '/bin/sh');
  assert.equal(resolveCommand('/bin/sh', ''), '/bin/sh');
  assert.throws(() => resolveCommand('no-such-command-here', '/bin'), (err: unknown) => isEphemeraError(err, 'EPH_RUN_SPAWN') && /not found in PATH/.test(err.message));
  assert.throws(() => resolveCommand(file, '/bin'), (err: unknown) => isEphemeraError(err, 'EPH_RUN_SPAWN')); // not executable
  assert.throws(() => resolveCommand('/bin', '/bin'), (err: unknown) => isEphemeraError(err, 'EPH_RUN_SPAWN')); // a directory
});

test('exit status like a shell', () => {
  assert.equal(exitStatusOf(0, null), 0);
  assert.equal(exitStatusOf(3, null), 3);
  assert.equal(exitStatusOf(null, 'SIGKILL'), 137);
  assert.equal(exitStatusOf(null, 'SIGTERM'), 143);
});

test('the launcher gets every value in the one form it reads as Node does', () => {
  const opts = parseRunOptions(['--root', '/tmp', '--budget', '1.5M', '--headroom', '64K', '--stats', 's.json', '--log', '/tmp/l', '--discard', '--', 'ls', '--', '-l']);
  assert.deepEqual(launcherArgs(opts, true), [
    '--root=/tmp', `--budget=${String(1.5 * 1024 * 1024)}`, '--headroom=65536', `--stats=${resolve('s.json')}`, '--log=/tmp/l', '--discard', '--', 'ls', '--', '-l',
  ]);
  // With a --memory cgroup the budget follows the cgroup: not passed on.
  assert.deepEqual(launcherArgs(parseRunOptions(['--budget', '1M', '--memory', '64M', '--', 'true']), false), ['--root=/tmp', '--keep', '--', 'true']);
});

test('runs the launcher would hand back stay with Node', () => {
  const env = { PATH: '/usr/bin' };
  assert.equal(launcherFor('true', 'bin/true', env), undefined, 'found through a relative PATH entry');
  assert.equal(launcherFor('true', '/usr/bin/true', env, 'tmp'), undefined, 'a relative TMPDIR');
  assert.equal(launcherFor('true', '/usr/bin/true', { ...env, XDG_RUNTIME_DIR: 'run' }), undefined, 'a relative XDG_RUNTIME_DIR');
  assert.equal(launcherFor('true', '/usr/bin/true', { ...env, EPHEMERA_EPHEMERAD: '' }), undefined, 'an empty EPHEMERA_EPHEMERAD');
});
