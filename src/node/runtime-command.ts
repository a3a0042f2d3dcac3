/**
 * Where the action runtime and Ephemera live inside a function container, and the command that
 * starts the runtime: the node agent starts every container with it, and `ephemera bench platform`
 * times the same command with and without Ephemera to find Ephemera's share of a cold start.
 */

/** The run directory, bind-mounted from the host: the runtime's and the daemon's sockets. */
export const IN_RUN = '/run/ephemera';
export const IN_DAEMON = '/opt/ephemera/bin/ephemerad';
export const IN_LIB = '/opt/ephemera/lib/libephemera.so';

/** Where the command finds things; the defaults are the container's. */
export interface RuntimePaths {
  /** The tree with bin/ephemerad, lib/libephemera.so and runtime/ (ow_entry.sh reads EPHEMERA_OPT). */
  readonly opt?: string;
  readonly run?: string;
  /** The managed scratch root. */
  readonly root?: string;
  /** The runtime writes its output to files in the run directory (`--output-files`), not to the container's. */
  readonly outputFiles?: boolean;
}

/**
 * The container's command. With Ephemera, the entry script starts the daemon beside the one
 * Python interpreter; without, the runtime alone. Another `opt` needs `EPHEMERA_OPT` set to it too.
 */
export function runtimeCommand(ephemera: boolean, paths: RuntimePaths = {}): string[] {
  const opt = paths.opt ?? '/opt/ephemera';
  const run = paths.run ?? IN_RUN;
  const serve = ['--socket', `${run}/action.sock`, ...(paths.outputFiles === true ? ['--output-files'] : [])];
  return ephemera ? ['/bin/sh', `${opt}/runtime/ow_entry.sh`, run, paths.root ?? '/tmp', ...serve] : ['python3', `${opt}/runtime/ow_runtime.py`, ...serve, '--rundir', run];
}
