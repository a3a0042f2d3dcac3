/**
 * Child processes that announce themselves on stdout (`ephemera up`, the test controllers): start
 * one and wait, with a bound, for the line that says it is ready; stop one with a bound.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * Starts `argv` with stdout piped and resolves with the first stdout line matching `ready` (its
 * match), or rejects when the process exits first or `timeoutMs` passes (the process is then killed).
 */
export async function startAnnounced(
  argv: readonly string[],
  ready: RegExp,
  timeoutMs: number,
  options: Omit<SpawnOptions, 'stdio'> & { stderr?: 'inherit' | 'ignore' } = {},
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const { stderr = 'inherit', ...rest } = options;
  const child = spawn(argv[0] ?? process.execPath, argv.slice(1), { ...rest, stdio: ['ignore', 'pipe', stderr] });
  const lines = createInterface({ input: child.stdout });
  try {
    const match = await new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`${argv.join(' ')} did not announce itself within ${timeoutMs} ms`)); }, timeoutMs);
      lines.on('line', (l) => {
        const m = ready.exec(l);
        if (m !== null) { clearTimeout(timer); resolve(m); }
      });
      child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${argv.join(' ')} exited (${signal ?? `status ${String(code)}`}) before it was ready`)); });
      child.once('error', (err) => { clearTimeout(timer); reject(err); });
    });
    return { child, match };
  } catch (err) {
    await stopChild(child, 'SIGKILL', 5000);
    throw err;
  }
}

/**
 * Sends `signal` (to the process group when `group`), then SIGKILL after `graceMs`; resolves with
 * the exit status once the process is gone.
 */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 60_000, group = false): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(child.exitCode); return; }
    const send = (sig: NodeJS.Signals): void => {
      try {
        if (group && child.pid !== undefined) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => { send('SIGKILL'); }, graceMs);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
    send(signal);
  });
}
