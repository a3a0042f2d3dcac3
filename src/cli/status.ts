/**
 * `ephemera status [--watch]`: the dashboard's picture as a terminal table, read from the
 * controller's `GET /dashboard/api/view` with the key of a wsk props file.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';
import { basicAuthFor } from '../dashboard/auth.js';
import type { ActivationSummary } from '../dashboard/source.js';
import { renderStatus } from '../dashboard/status-table.js';
import type { DashboardView } from '../dashboard/view.js';
import { flagPositiveInt, flagSet, flagValue, parseFlags } from './flags.js';

export const DEFAULT_PROPS = join(homedir(), '.ephemera', 'admin.wskprops');
const REQUEST_TIMEOUT_MS = 10_000;

export const STATUS_USAGE = `usage: ephemera status [--props FILE] [--watch] [--interval SECONDS] [--recent N]

Shows, per node and tenant, every container's quota, granted limit, memory used, files in memory,
pool and loans; per action the share of file operations served from memory and the median
latency; and the latest activations. Read from the controller (\`ephemera up\`).

  --props FILE      the wsk props file with APIHOST= and AUTH= (default: $WSK_CONFIG_FILE, else
                    ${DEFAULT_PROPS}); a tenant's key shows that tenant only
  --watch           redraw in place every --interval seconds until interrupted
  --interval N      seconds between redraws with --watch (default 2)
  --recent N        how many recent activations to list (default 10)`;

export interface Props {
  readonly apihost: string;
  readonly auth: string;
  readonly file: string;
}

/**
 * Reads a wsk props file (KEY=VALUE lines).
 * @throws {EphemeraError} `EPH_STATUS_PROPS` when it is missing or lacks APIHOST or AUTH
 */
export async function readProps(file: string): Promise<Props> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new EphemeraError('EPH_STATUS_PROPS', `cannot read the props file ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)}); pass --props FILE, or start the platform with \`ephemera up\``, { cause: err });
  }
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) values.set(m[1], m[2]);
  }
  const apihost = values.get('APIHOST');
  const auth = values.get('AUTH');
  if (apihost === undefined || apihost === '' || auth === undefined || !auth.includes(':')) {
    throw new EphemeraError('EPH_STATUS_PROPS', `the props file ${file} needs APIHOST=<url> and AUTH=<uuid:key> lines (found ${[...values.keys()].join(', ') || 'none'}); write them, or pass another --props`);
  }
  // The openwhisk client's rule: a host without a scheme is https.
  return { apihost: /^https?:\/\//.test(apihost) ? apihost.replace(/\/+$/, '') : `https://${apihost}`, auth, file };
}

/**
 * One picture from the controller.
 * @throws {EphemeraError} `EPH_STATUS_CONTROLLER` when it cannot be reached or answers an error
 */
export async function fetchView(props: Props): Promise<{ view: DashboardView; activations: ActivationSummary[] }> {
  const url = `${props.apihost}/dashboard/api/view`;
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: basicAuthFor(props.auth) }, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (err) {
    // fetch() says "fetch failed"; the reason (ECONNREFUSED, a timeout, a bad port) is its cause.
    const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
    const timedOut = err instanceof Error && err.name === 'TimeoutError';
    const why = timedOut ? `no answer within ${REQUEST_TIMEOUT_MS / 1000} s` : (cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err)));
    throw new EphemeraError('EPH_STATUS_CONTROLLER', `cannot reach the controller at ${props.apihost} (${why}); is \`ephemera up\` running? (APIHOST from ${props.file})`, { cause: err });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new EphemeraError('EPH_STATUS_CONTROLLER', `GET ${url} answered ${res.status} with something that is not JSON: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const e = body as { code?: string; error?: string };
    throw new EphemeraError('EPH_STATUS_CONTROLLER', `GET ${url} answered ${res.status} ${e.code ?? ''}: ${e.error ?? text.slice(0, 200)}`);
  }
  return body as { view: DashboardView; activations: ActivationSummary[] };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function statusMain(argv: readonly string[]): Promise<number> {
  const context = 'ephemera status';
  const parsed = parseFlags(argv, { props: { value: true }, watch: { value: false }, interval: { value: true }, recent: { value: true } }, context);
  const file = flagValue(parsed, 'props') ?? process.env['WSK_CONFIG_FILE'] ?? DEFAULT_PROPS;
  const interval = flagPositiveInt(parsed, 'interval', context, 2);
  const recent = flagPositiveInt(parsed, 'recent', context, 10);
  const props = await readProps(file);
  if (!flagSet(parsed, 'watch')) {
    const { view, activations } = await fetchView(props);
    process.stdout.write(renderStatus(view, activations, { recent }));
    return 0;
  }
  const interrupted = new AbortController();
  const stopped = (): boolean => interrupted.signal.aborted;
  const onSignal = (): void => {
    interrupted.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const tty = process.stdout.isTTY;
  try {
    while (!stopped()) {
      let frame: string;
      try {
        const { view, activations } = await fetchView(props);
        frame = renderStatus(view, activations, { recent });
      } catch (err) {
        if (!(err instanceof EphemeraError)) throw err;
        frame = `ephemera status: ${err.code}: ${err.message}\n(retrying every ${interval} s)\n`;
      }
      // In place on a terminal (home, draw, clear what is left below); one frame after another otherwise.
      process.stdout.write(tty ? `\x1b[H${frame.replaceAll('\n', '\x1b[K\n')}\x1b[J` : `${frame}\n`);
      for (let waited = 0; waited < interval * 1000 && !stopped(); waited += 100) await sleep(100);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return 0;
}
