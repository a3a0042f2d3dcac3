/**
 * Shared set-up for the platform's tests: a controller on port 0 with its own state directory and
 * Ephemera home under build/test/, the real `openwhisk` npm client per tenant, and raw requests
 * for the cases the client cannot send. Everything is removed by `close()`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import openwhisk from 'openwhisk';
import { pino } from 'pino';

import type { NodeStateSource } from '../scheduler/extender.js';
import type { NodeAgent, NodeSelector } from './agent.js';
import { startController, type RunningController } from './controller.js';
import { MostFreeSelector } from './selector.js';
import type { Retention } from './store.js';

/** build/test/platform, beside the compiled tests. */
export const SCRATCH = fileURLToPath(new URL('../../test/platform/', import.meta.url));

export function scratchDir(tag: string): string {
  mkdirSync(SCRATCH, { recursive: true });
  return mkdtempSync(join(SCRATCH, `${tag}-`));
}

/**
 * Ids of the Docker containers a node agent labelled as its own (`ephemera.node`), stopped ones
 * included unless `running`; more `label=...` filters narrow them. Tests use it to find and clean up.
 */
export function containersOfNode(node: string, { running = false, labels = [] as readonly string[], timeoutMs = 30_000 } = {}): string[] {
  const args = ['ps', '-q', ...(running ? [] : ['-a']), '--filter', `label=ephemera.node=${node}`, ...labels.flatMap((l) => ['--filter', `label=${l}`])];
  const r = spawnSync('docker', args, { encoding: 'utf8', timeout: timeoutMs });
  return r.stdout.split('\n').filter((l) => l !== '');
}

/** `KEY=value` lines of a wskprops file. */
export function readProps(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

export interface TestPlatform {
  readonly ctl: RunningController;
  readonly dir: string;
  /** The official client, authenticated as `tenant`. */
  client(tenant: string): openwhisk.Client;
  auth(tenant: string): string;
  /** A raw request to the API with `tenant`'s key (or the given Authorization header). */
  request(method: string, path: string, opts?: { tenant?: string; body?: string; headers?: Record<string, string> }): Promise<{ status: number; body: unknown; headers: Headers }>;
  close(): Promise<void>;
}

export async function startTestPlatform(
  tag: string,
  node: NodeAgent,
  opts: { tenants?: readonly string[]; blockingWaitMs?: number; keepAliveMs?: number; stateDir?: string; selector?: NodeSelector; extender?: NodeStateSource; retention?: Retention; pruneEveryMs?: number } = {},
): Promise<TestPlatform> {
  const dir = scratchDir(tag);
  const ctl = await startController({
    stateDir: opts.stateDir ?? join(dir, 'state'),
    home: join(dir, 'home'),
    host: '127.0.0.1',
    port: 0,
    tenants: opts.tenants ?? ['guest'],
    nodes: [node],
    selector: opts.selector ?? new MostFreeSelector(),
    ...(opts.extender === undefined ? {} : { extender: opts.extender }),
    ...(opts.retention === undefined ? {} : { retention: opts.retention }),
    ...(opts.pruneEveryMs === undefined ? {} : { pruneEveryMs: opts.pruneEveryMs }),
    log: pino({ level: process.env.EPHEMERA_TEST_LOG ?? 'silent' }),
    keepAliveMs: opts.keepAliveMs ?? 60_000,
    blockingWaitMs: opts.blockingWaitMs ?? 30_000,
  });
  const auth = (tenant: string): string => {
    const p = ctl.props.get(tenant);
    if (p === undefined) throw new Error(`no wskprops for tenant ${tenant}`);
    return readProps(p).AUTH ?? '';
  };
  return {
    ctl,
    dir,
    auth,
    client: (tenant) => openwhisk({ apihost: ctl.url, api_key: auth(tenant) }),
    request: async (method, path, o = {}) => {
      const headers: Record<string, string> = {
        ...(o.tenant === undefined ? {} : { authorization: `Basic ${Buffer.from(auth(o.tenant)).toString('base64')}` }),
        ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...o.headers,
      };
      const res = await fetch(`${ctl.url}${path}`, { method, headers, ...(o.body === undefined ? {} : { body: o.body }), signal: AbortSignal.timeout(20_000) });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text) as unknown;
      } catch {
        // not JSON: the test will say so
      }
      return { status: res.status, body, headers: res.headers };
    },
    close: async () => {
      await ctl.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
