/**
 * `ephemera run`: one function instance around one command.
 *
 * Starts ephemerad in a private run directory, waits until it listens, runs the command with the
 * shim preloaded, and when the command ends collects the stats, shuts the daemon down (writing every
 * in-memory file back to disk unless --discard) and exits with the command's status.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { constants as osConstants } from 'node:os';
import { delimiter, dirname, isAbsolute, join, relative, resolve } from 'node:path';

import { EphemeraError, isEphemeraError } from '../core/errors.js';
import { parseSize } from '../core/size.js';
import { DaemonClient, type DaemonStats, type ShutdownMode } from '../daemon-client/client.js';
import { spawnDaemon, waitForReady } from '../daemon-client/start.js';
import { GuardWatchdog, cgroupGuardKnobs } from '../guard/watchdog.js';
import { createInstanceCgroup, type InstanceCgroup } from '../limiter/cgroup.js';
import { flagSet, flagValue, parseFlags, type FlagSpec } from './flags.js';
import { BUILD_DIR, buildOutput } from './paths.js';

export const RUN_USAGE = `usage: ephemera run [--root DIR]... [--budget SIZE] [--memory SIZE] [--headroom SIZE]
                    [--stats FILE] [--log FILE] [--keep|--discard] -- CMD [ARGS...]

Runs CMD with the files under each managed root (default /tmp) kept in memory, and exits with
CMD's exit status (128+N when CMD is killed by signal N).

  --root DIR       manage DIR (repeatable; default /tmp). It must exist and be a directory.
  --budget SIZE    at most SIZE bytes of files in memory; the rest goes to disk.
  --memory SIZE    run the daemon and CMD in a fresh memory cgroup limited to SIZE (root only);
                   the budget then follows the cgroup live. With --budget as well, --budget is
                   used only when the cgroup cannot be created.
  --headroom SIZE  memory kept free for CMD itself when the budget follows a cgroup.
  --stats FILE     write the daemon's counters as JSON to FILE when CMD ends.
  --log FILE       append daemon and shim diagnostics to FILE (never to CMD's stdout/stderr).
  --keep           when CMD ends, write in-memory files back to their paths on disk (default).
  --discard        when CMD ends, drop in-memory files (scratch data of a finished invocation).

SIZE is bytes with an optional unit: 123, 64K, 64M, 1.5G (powers of 1024), 64KiB, 500MB (powers
of 1000).`;

const RUN_FLAGS: Readonly<Record<string, FlagSpec>> = {
  root: { value: true, repeatable: true },
  budget: { value: true },
  memory: { value: true },
  headroom: { value: true },
  stats: { value: true },
  log: { value: true },
  keep: { value: false },
  discard: { value: false },
};

export interface RunOptions {
  /** Absolute, existing directories. */
  readonly roots: readonly string[];
  readonly budget?: number;
  readonly memory?: number;
  readonly headroom?: number;
  readonly statsFile?: string;
  readonly logFile?: string;
  readonly onExit: ShutdownMode;
  readonly command: readonly [string, ...string[]];
}

/** The default managed root when no --root is given. */
export const DEFAULT_ROOT = '/tmp';

/**
 * Check one --root: absolute after resolution, an existing directory, not `/`, no `:`.
 *
 * @throws {EphemeraError} `EPH_CLI_BAD_ROOT`
 */
export function checkRoot(text: string): string {
  const root = resolve(text);
  const bad = (why: string): EphemeraError => new EphemeraError('EPH_CLI_BAD_ROOT', `--root ${JSON.stringify(text)}: ${why}`);
  if (root === '/') throw bad('refusing to manage the whole file system; give a scratch directory such as /tmp');
  if (root.includes(':')) throw bad("the path contains ':', which separates roots in EPHEMERA_ROOTS; use a directory without ':'");
  let isDir: boolean;
  try {
    isDir = statSync(root).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw bad(code === 'ENOENT' ? `${root} does not exist; create it first (mkdir -p ${root})` : `cannot stat ${root}: ${code}`);
  }
  if (!isDir) throw bad(`${root} is not a directory; give a directory`);
  return root;
}

function checkWritableParent(flag: string, file: string): void {
  const dir = dirname(file);
  try {
    if (!statSync(dir).isDirectory()) throw new Error('ENOTDIR');
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new EphemeraError('EPH_CLI_USAGE', `ephemera run: ${flag} ${JSON.stringify(file)}: its directory ${dir} is not a writable directory (${code}); create it or choose another path`);
  }
}

/**
 * Parse and check `ephemera run`'s arguments.
 *
 * @throws {EphemeraError} `EPH_CLI_USAGE`, `EPH_CLI_BAD_SIZE`, `EPH_CLI_BAD_ROOT`, `EPH_CLI_CONFLICT`
 */
export function parseRunOptions(argv: readonly string[]): RunOptions {
  const parsed = parseFlags(argv, RUN_FLAGS, 'ephemera run');
  if (parsed.rest === undefined) {
    throw new EphemeraError('EPH_CLI_USAGE', 'ephemera run: no `--` before the command; write e.g. `ephemera run --root /tmp -- python3 app.py`');
  }
  const [cmd, ...args] = parsed.rest;
  if (cmd === undefined || cmd === '') {
    throw new EphemeraError('EPH_CLI_USAGE', 'ephemera run: no command after `--`; write e.g. `ephemera run -- python3 app.py`');
  }
  if (flagSet(parsed, 'keep') && flagSet(parsed, 'discard')) {
    throw new EphemeraError('EPH_CLI_CONFLICT', 'ephemera run: --keep and --discard both given; --keep writes files back to disk at the end, --discard drops them: choose one');
  }
  const roots = [...new Set((parsed.values.get('root') ?? [DEFAULT_ROOT]).map(checkRoot))];
  const size = (name: string): number | undefined => {
    const v = flagValue(parsed, name);
    return v === undefined ? undefined : parseSize(v, `--${name}`);
  };
  const budget = size('budget');
  const memory = size('memory');
  const headroom = size('headroom');
  if (memory === 0) {
    throw new EphemeraError('EPH_CLI_BAD_SIZE', 'ephemera run: --memory 0 leaves no memory for the command; give a positive size such as 256M');
  }
  const statsFile = flagValue(parsed, 'stats');
  const logFile = flagValue(parsed, 'log');
  for (const [flag, v] of [['--stats', statsFile], ['--log', logFile]] as const) {
    if (v === '') throw new EphemeraError('EPH_CLI_USAGE', `ephemera run: ${flag} needs a file name, got an empty string`);
    // Found out now rather than after CMD has run.
    if (v !== undefined) checkWritableParent(flag, resolve(v));
  }
  return {
    roots,
    ...(budget === undefined ? {} : { budget }),
    ...(memory === undefined ? {} : { memory }),
    ...(headroom === undefined ? {} : { headroom }),
    ...(statsFile === undefined ? {} : { statsFile: resolve(statsFile) }),
    ...(logFile === undefined ? {} : { logFile: resolve(logFile) }),
    onExit: flagSet(parsed, 'discard') ? 'discard' : 'writeback',
    command: [cmd, ...args],
  };
}

function isUnder(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/**
 * A run directory and its base are searchable but not listable by other users (0711): a shimmed
 * program that switched user (setuid in a forked child, `su`, a server dropping privileges) must
 * still reach `shim.sock` (0777; the daemon takes the caller's identity from SO_PEERCRED), or its
 * calls on in-memory files would fall back to the disk and fail where the kernel would not.
 * `control.sock` stays 0600 and is the only thing there that changes limits.
 */
export const RUN_DIR_MODE = 0o711;

/**
 * A fresh directory for the daemon's sockets, never inside a managed root (the daemon's own
 * files must not be managed by itself).
 *
 * @throws {EphemeraError} `EPH_RUN_DIR` when no candidate is usable
 */
export function makeRunDir(roots: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const uid = process.getuid?.() ?? 0;
  const bases = [
    ...(uid === 0 ? ['/run/ephemera'] : []),
    ...(env['XDG_RUNTIME_DIR'] !== undefined && env['XDG_RUNTIME_DIR'] !== '' ? [join(env['XDG_RUNTIME_DIR'], 'ephemera')] : []),
    join(tmpdir(), `ephemera-${uid}`),
    `/var/tmp/ephemera-${uid}`,
  ];
  const tried: string[] = [];
  for (const base of bases) {
    if (roots.some((r) => isUnder(base, r))) {
      tried.push(`${base} (inside a managed root)`);
      continue;
    }
    try {
      mkdirSync(base, { recursive: true, mode: RUN_DIR_MODE });
      if (statSync(base).uid === uid) chmodSync(base, RUN_DIR_MODE); // made 0700 by an older version
      const dir = mkdtempSync(join(base, 'run-'));
      chmodSync(dir, RUN_DIR_MODE);
      return dir;
    } catch (err) {
      tried.push(`${base} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
  }
  throw new EphemeraError('EPH_RUN_DIR', `cannot create a run directory for the daemon; tried ${tried.join(', ')}; set XDG_RUNTIME_DIR to a writable directory outside the managed roots`);
}

/**
 * Find CMD the way exec would, so a typo gets a clear message rather than a shell's exit 127.
 *
 * @throws {EphemeraError} `EPH_RUN_SPAWN`
 */
export function resolveCommand(cmd: string, pathVar: string | undefined): string {
  const executable = (p: string): boolean => {
    try {
      accessSync(p, constants.X_OK);
      return statSync(p).isFile();
    } catch {
      return false;
    }
  };
  if (cmd.includes('/')) {
    if (executable(cmd)) return cmd;
    throw new EphemeraError('EPH_RUN_SPAWN', `ephemera run: command ${JSON.stringify(cmd)} does not exist or is not an executable file`);
  }
  for (const dir of (pathVar ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const p = join(dir === '' ? '.' : dir, cmd);
    if (executable(p)) return p;
  }
  throw new EphemeraError('EPH_RUN_SPAWN', `ephemera run: command ${JSON.stringify(cmd)} not found in PATH (${pathVar ?? ''}); check its name or give its full path`);
}

/** LD_PRELOAD with the shim first, keeping what the caller already preloads. */
export function preloadWith(lib: string, existing: string | undefined): string {
  const others = (existing ?? '').split(/[:\s]+/).filter((p) => p !== '' && p !== lib);
  return [lib, ...others].join(':');
}

/** The environment contract of docs/ARCHITECTURE.md. */
export function shimEnv(base: NodeJS.ProcessEnv, lib: string, runDir: string, roots: readonly string[], logFile: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...base,
    LD_PRELOAD: preloadWith(lib, base['LD_PRELOAD']),
    EPHEMERA_SOCK: join(runDir, 'shim.sock'),
    EPHEMERA_ROOTS: roots.join(':'),
    EPHEMERA_LIB: lib,
  };
  delete env['EPHEMERA_FDMAP'];
  delete env['EPHEMERA_REGION']; // the region of a run this one may be nested in, not its own
  if (logFile !== undefined) env['EPHEMERA_LOG'] = logFile;
  else delete env['EPHEMERA_LOG'];
  return env;
}

const READY_TIMEOUT_MS = 15_000;
const DAEMON_EXIT_TIMEOUT_MS = 120_000;

function waitForExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
}

/** Exit status the way a shell reports it. */
export function exitStatusOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (signal !== null) return 128 + osConstants.signals[signal];
  return code ?? 1;
}

function warn(message: string): void {
  process.stderr.write(`ephemera run: ${message}\n`);
}

/** Cgroup failures that --budget may stand in for. */
const FALLBACK_CODES = new Set(['EPH_CGROUP_NOT_ROOT', 'EPH_CGROUP_UNAVAILABLE', 'EPH_CGROUP_NOT_WRITABLE']);

async function setUpCgroup(opts: RunOptions): Promise<InstanceCgroup | undefined> {
  if (opts.memory === undefined) return undefined;
  try {
    return await createInstanceCgroup({ memoryLimit: opts.memory });
  } catch (err) {
    if (opts.budget !== undefined && isEphemeraError(err) && FALLBACK_CODES.has(err.code)) {
      warn(`--memory not applied (${err.message}); falling back to --budget ${opts.budget} bytes as asked`);
      return undefined;
    }
    throw err;
  }
}

/** The signals `ephemera run` passes on to the command. */
function forwardedSignals(): NodeJS.Signals[] {
  // A terminal's ^C already reaches CMD, which shares our process group; forwarding SIGINT too
  // would deliver it twice. Without a terminal, SIGINT can only have been sent to us.
  return process.stdin.isTTY ? ['SIGTERM', 'SIGHUP', 'SIGQUIT'] : ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
}

/**
 * The native launcher's arguments for a run that {@link parseRunOptions} accepted: every value in
 * the one form that build/ephemera-run reads exactly as Node does (absolute paths, sizes in bytes,
 * `--flag=value` so that no value is taken for a flag). --memory is not among them: the cgroup is
 * made here and passed in EPHEMERA_RUN_CGROUP.
 */
export function launcherArgs(opts: RunOptions, useBudget: boolean): string[] {
  return [
    ...opts.roots.map((r) => `--root=${r}`),
    ...(useBudget && opts.budget !== undefined ? [`--budget=${String(opts.budget)}`] : []),
    ...(opts.headroom === undefined ? [] : [`--headroom=${String(opts.headroom)}`]),
    ...(opts.statsFile === undefined ? [] : [`--stats=${opts.statsFile}`]),
    ...(opts.logFile === undefined ? [] : [`--log=${opts.logFile}`]),
    opts.onExit === 'discard' ? '--discard' : '--keep',
    '--',
    ...opts.command,
  ];
}

/**
 * The native launcher, when it is built and will take this run without handing it back: it finds
 * a command only at an absolute place in PATH (or given with a slash), and makes its run directory
 * only under absolute bases. Otherwise undefined: run.ts runs the instance itself, without a keeper.
 */
export function launcherFor(cmd: string, cmdPath: string, env: NodeJS.ProcessEnv, tmp: string = tmpdir()): string | undefined {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (!cmd.includes('/') && !isAbsolute(cmdPath)) return undefined;
  if (!isAbsolute(tmp) || (xdg !== undefined && xdg !== '' && !isAbsolute(xdg))) return undefined;
  if (env['EPHEMERA_EPHEMERAD'] === '') return undefined;
  const launcher = join(BUILD_DIR, 'ephemera-run');
  try {
    accessSync(launcher, constants.X_OK);
  } catch {
    return undefined;
  }
  return launcher;
}

/** What the --stats report says about the --memory cgroup; read before cg.destroy(). */
async function cgroupReport(cg: InstanceCgroup, limit: number | undefined, watchdog: GuardWatchdog | undefined): Promise<Record<string, unknown>> {
  return {
    cgroup_limit: limit ?? null,
    cgroup_path: cg.path,
    // The memory benchmarks compare OOM kills across contenders.
    oom_kills: await cg.oomKills(),
    cgroup_peak: await cg.peak(),
    watchdog_graces: watchdog?.counts.graces ?? 0,
    watchdog_lifts: watchdog?.counts.lifts ?? 0,
  };
}

/** A file's identity and change time, to tell whether the launcher wrote it; undefined when absent. */
function fileMark(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${String(st.ino)}:${String(st.mtimeNs)}:${String(st.size)}`;
  } catch {
    return undefined;
  }
}

/**
 * Run the instance. Resolves with the exit status for the CLI.
 *
 * @throws {EphemeraError} when the instance cannot be set up, or the daemon fails
 */
export async function runInstance(opts: RunOptions): Promise<number> {
  // EPHEMERA_EPHEMERAD: another build of the daemon (the soak runs the ASan one).
  const ephemerad = process.env['EPHEMERA_EPHEMERAD'] ?? buildOutput('ephemerad', true);
  const lib = buildOutput('libephemera.so', false);
  const cmdPath = resolveCommand(opts.command[0], process.env['PATH']);

  let cg: InstanceCgroup | undefined;
  let watchdog: GuardWatchdog | undefined;
  let runDir: string | undefined;
  let daemon: ChildProcess | undefined;
  let client: DaemonClient | undefined;
  let cmd: ChildProcess | undefined;
  let pendingSignal: NodeJS.Signals | undefined;
  let shutdownSent = false;
  const signals = forwardedSignals();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (cmd?.pid !== undefined && cmd.exitCode === null && cmd.signalCode === null) cmd.kill(sig);
    else pendingSignal ??= sig;
  };
  for (const s of signals) process.on(s, onSignal);
  // ^C on a terminal reaches us too; CMD decides what it means, we wait for it.
  const ignoreInt = (): void => undefined;
  if (!signals.includes('SIGINT')) process.on('SIGINT', ignoreInt);

  try {
    cg = await setUpCgroup(opts);
    if (cg !== undefined) {
      // From outside the cgroup: a stall of the daemon's OOM guard ends within a bound.
      watchdog = new GuardWatchdog(cgroupGuardKnobs(cg.path, cg.version), { onEvent: (e) => warn(e.message) });
      watchdog.start();
    }
    const useBudget = opts.budget !== undefined && cg === undefined;
    if (opts.budget !== undefined && cg !== undefined) warn('the budget follows the --memory cgroup; --budget is not used');
    const launcher = launcherFor(opts.command[0], cmdPath, process.env);
    if (launcher !== undefined) {
      // The native launcher runs the instance with its keeper (a killed daemon is restarted and
      // takes the files over); we keep the cgroup and its watchdog, outside the cgroup as it is.
      const statsBefore = opts.statsFile === undefined ? undefined : fileMark(opts.statsFile);
      const env: NodeJS.ProcessEnv = { ...process.env, EPHEMERA_RUN_FROM_NODE: '1' };
      if (cg !== undefined) env['EPHEMERA_RUN_CGROUP'] = cg.procsFile;
      else delete env['EPHEMERA_RUN_CGROUP'];
      cmd = spawn(launcher, launcherArgs(opts, useBudget), { stdio: 'inherit', env });
      if (pendingSignal !== undefined) cmd.kill(pendingSignal);
      const spawnFailed = new Promise<never>((_, reject) => {
        cmd?.once('error', (err) => {
          reject(new EphemeraError('EPH_RUN_LAUNCHER', `ephemera run: cannot start the native launcher ${launcher}: ${err.message}; run \`make\``, { cause: err }));
        });
      });
      const ended = await Promise.race([waitForExit(cmd), spawnFailed]);
      if (opts.statsFile !== undefined && cg !== undefined && fileMark(opts.statsFile) !== statsBefore) {
        // The launcher wrote the run's report; the cgroup's part is ours to add.
        const report = JSON.parse(readFileSync(opts.statsFile, 'utf8')) as Record<string, unknown>;
        Object.assign(report, await cgroupReport(cg, opts.memory, watchdog));
        try {
          writeFileSync(opts.statsFile, JSON.stringify(report, null, 2) + '\n');
        } catch (err) {
          throw new EphemeraError('EPH_RUN_STATS_WRITE', `cannot write --stats ${opts.statsFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; give a writable path`, { cause: err });
        }
      }
      return exitStatusOf(ended.code, ended.signal);
    }
    runDir = makeRunDir(opts.roots);
    const daemonArgv = [
      ephemerad,
      '--rundir', runDir,
      ...opts.roots.flatMap((r) => ['--root', r]),
      ...(useBudget ? ['--budget', String(opts.budget)] : []),
      ...(opts.headroom === undefined ? [] : ['--headroom', String(opts.headroom)]),
      ...(opts.logFile === undefined ? [] : ['--log', opts.logFile]),
      '--on-exit', opts.onExit,
    ];
    const inCgroup = (argv: string[]): string[] => (cg === undefined ? argv : cg.command(argv));
    // Own process group: a terminal's ^C must not kill the daemon before the files are safe.
    daemon = spawnDaemon({ argv: daemonArgv, wrap: inCgroup, detached: true });
    const logFile = opts.logFile;
    await waitForReady(daemon, {
      timeoutMs: READY_TIMEOUT_MS,
      hint: () => (logFile === undefined ? 'its message, if any, is above; rerun with --log FILE for more' : `its message is above and in ${logFile}`),
    });
    client = await DaemonClient.connect(join(runDir, 'control.sock'));

    let cmdResult: { code: number | null; signal: NodeJS.Signals | null } = { code: null, signal: pendingSignal ?? null };
    const started = process.hrtime.bigint();
    if (pendingSignal === undefined) {
      const cmdArgv = [cmdPath, ...opts.command.slice(1)];
      const [cFile, ...cArgs] = inCgroup(cmdArgv);
      cmd = spawn(cFile ?? cmdPath, cArgs, {
        stdio: 'inherit',
        env: shimEnv(process.env, lib, runDir, opts.roots, opts.logFile),
        argv0: opts.command[0],
      });
      const spawnFailed = new Promise<never>((_, reject) => {
        cmd?.once('error', (err) => {
          reject(new EphemeraError('EPH_RUN_SPAWN', `ephemera run: cannot start ${JSON.stringify(opts.command[0])}: ${err.message}`, { cause: err }));
        });
      });
      cmdResult = await Promise.race([waitForExit(cmd), spawnFailed]);
    }
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    const status = exitStatusOf(cmdResult.code, cmdResult.signal);

    let stats: DaemonStats;
    try {
      stats = await client.stats();
      shutdownSent = true;
      await client.shutdown(opts.onExit);
    } catch (err) {
      // CMD's own failure is the more useful status; a daemon failure after a clean CMD is still one.
      if (!isEphemeraError(err)) throw err;
      // The socket closing and the exit being reaped are separate events; give the second a moment.
      await Promise.race([waitForExit(daemon), new Promise((resolve) => setTimeout(resolve, 500).unref())]);
      const gone = daemon.exitCode !== null || daemon.signalCode !== null;
      warn(
        `${err.code}: ${err.message}` +
          (gone ? `; ephemerad ended (${daemon.signalCode ?? `status ${String(daemon.exitCode)}`}) before the command finished, so files it held in memory were not written back` : ''),
      );
      return status === 0 ? 1 : status;
    }
    if (opts.statsFile !== undefined) {
      const cgroupPart = cg === undefined ? {} : await cgroupReport(cg, opts.memory, watchdog);
      const report = {
        ...stats,
        command: opts.command,
        exit_status: status,
        signal: cmdResult.signal,
        elapsed_ms: Math.round(elapsedMs * 1000) / 1000,
        on_exit: opts.onExit,
        roots: opts.roots,
        cgroup_limit: null,
        ...cgroupPart,
      };
      try {
        writeFileSync(opts.statsFile, JSON.stringify(report, null, 2) + '\n');
      } catch (err) {
        throw new EphemeraError('EPH_RUN_STATS_WRITE', `cannot write --stats ${opts.statsFile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}; give a writable path`, { cause: err });
      }
    }
    const exited = await Promise.race([
      waitForExit(daemon),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), DAEMON_EXIT_TIMEOUT_MS).unref()),
    ]);
    if (exited === undefined) warn(`ephemerad did not exit within ${DAEMON_EXIT_TIMEOUT_MS} ms after shutdown; leaving it running (pid ${String(daemon.pid)})`);
    else if (exited.code !== 0) warn(`ephemerad exited with ${exited.signal ?? `status ${String(exited.code)}`} after shutdown`);
    return status;
  } finally {
    client?.close();
    for (const s of signals) process.off(s, onSignal);
    process.off('SIGINT', ignoreInt);
    if (daemon !== undefined && daemon.exitCode === null && daemon.signalCode === null && !shutdownSent) {
      // Set-up or CMD failed before the orderly shutdown: SIGTERM still applies the --on-exit policy.
      daemon.kill('SIGTERM');
      await waitForExit(daemon);
    }
    if (runDir !== undefined) rmSync(runDir, { recursive: true, force: true });
    await watchdog?.stop();
    await cg?.destroy();
  }
}

/** `ephemera run ARGS`: parse, run, return the exit status. */
export async function runMain(argv: readonly string[]): Promise<number> {
  return runInstance(parseRunOptions(argv));
}
