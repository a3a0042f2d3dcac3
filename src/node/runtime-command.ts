/**
 * Where the action runtime and Ephemera live inside a function container, and the command that
 * starts the runtime: the node agent starts every container with it, and `ephemera bench platform`
 * times the same command with and without Ephemera to find Ephemera's share of a cold start.
 */

/** The run directory, bind-mounted from the host: the runtime's and the daemon's sockets. */
export const IN_RUN = '/run/ephemera';
export const IN_DAEMON = '/opt/ephemera/bin/ephemerad';
export const IN_LIB = '/opt/ephemera/lib/libephemera.so';
export const IN_RUNTIME = '/opt/ephemera/runtime/ow_runtime.py';
/** Starts ephemerad and execs the runtime under the shim (images/ow_entry.sh). */
export const IN_ENTRY = '/opt/ephemera/runtime/ow_entry.sh';

/**
 * The container's command. With Ephemera, the entry script starts the daemon beside the one
 * Python interpreter; without, the runtime alone.
 * @param root the managed scratch root
 */
export function runtimeCommand(ephemera: boolean, root = '/tmp'): string[] {
  const serve = ['--socket', `${IN_RUN}/action.sock`];
  return ephemera ? ['/bin/sh', IN_ENTRY, IN_RUN, root, ...serve] : ['python3', IN_RUNTIME, ...serve, '--rundir', IN_RUN];
}
