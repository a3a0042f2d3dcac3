/**
 * The Manager process: `node build/js/manager/main.js SOCKET_DIR CONFIG_JSON`.
 *
 * Started by the node agent (through spawnManager in client.ts), one per tenant. CONFIG_JSON is a
 * {@link ManagerConfig}. Once it listens, it prints one line to stdout,
 * `{"ready":true,"socket":PATH,"pid":N,"version":1}`, and then nothing more there. SIGTERM or
 * SIGINT closes it cleanly (the socket file is removed); after a SIGKILL the next start removes the
 * stale socket. Errors go to stderr as one line `CODE: message`, and the exit status is 1.
 */
import { fstatSync } from 'node:fs';

import { EphemeraError, isEphemeraError } from '../core/errors.js';
import { MANAGER_API_VERSION, startManagerServer } from './server.js';
import type { ManagerConfig } from './types.js';

function parseArgs(argv: readonly string[]): { socketDir: string; config: ManagerConfig } {
  const [socketDir, configJson, ...extra] = argv;
  if (socketDir === undefined || configJson === undefined || extra.length > 0) {
    throw new EphemeraError('EPH_MANAGER_START', `usage: main.js SOCKET_DIR CONFIG_JSON (got ${String(argv.length)} arguments); the node agent starts this through spawnManager`);
  }
  let config: unknown;
  try {
    config = JSON.parse(configJson);
  } catch (err) {
    throw new EphemeraError('EPH_MANAGER_CONFIG', `CONFIG_JSON is not JSON: ${JSON.stringify(configJson.slice(0, 200))}; give a ManagerConfig object`, { cause: err });
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new EphemeraError('EPH_MANAGER_CONFIG', `CONFIG_JSON must be an object, got ${JSON.stringify(config)}`);
  }
  return { socketDir, config: config as ManagerConfig };
}

async function main(): Promise<void> {
  const { socketDir, config } = parseArgs(process.argv.slice(2));
  const server = await startManagerServer({ config, socketDir, logLevel: process.env.EPH_MANAGER_LOG ?? 'warn' });
  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`EPH_MANAGER_UNAVAILABLE: closing failed: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Started by the node agent, stdin is a pipe it holds: when the agent dies, even by SIGKILL, the
  // pipe ends and so does this Manager (no orphans; the restarted agent recovers from live limits).
  const stdin = fstatSync(0);
  if (stdin.isFIFO() || stdin.isSocket()) {
    process.stdin.on('end', stop);
    process.stdin.on('error', stop);
    process.stdin.resume();
  }
  process.stdout.write(`${JSON.stringify({ ready: true, socket: server.socketPath, pid: process.pid, version: MANAGER_API_VERSION })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(isEphemeraError(err) ? `${err.code}: ${err.message}\n` : `EPH_MANAGER_START: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
