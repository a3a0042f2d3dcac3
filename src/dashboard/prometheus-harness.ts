/**
 * Test harness: a real Prometheus (Debian's `prometheus` package) that scrapes one target with
 * Basic auth, and `promtool check metrics`. The metrics test uses them so that the exposition is
 * read by Prometheus's own parser, not by ours.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function need(binary: string): void {
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run scripts/deps.sh (it installs Debian's prometheus package)`);
}

/** Polls `probe` every 100 ms until it returns a value, or throws `what` after `ms`. */
export async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

export interface Sample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export class PrometheusServer {
  readonly #child: ChildProcess;
  readonly #dir: string;
  readonly url: string;

  private constructor(child: ChildProcess, dir: string, url: string) {
    this.#child = child;
    this.#dir = dir;
    this.url = url;
  }

  /** Starts Prometheus scraping `target` (host:port) every 500 ms with the key as Basic credentials. */
  static async start(target: string, key: string): Promise<PrometheusServer> {
    need(PROMETHEUS);
    const dir = await mkdtemp(join(tmpdir(), 'ephemera-dashboard-prom-'));
    const colon = key.indexOf(':');
    const config = [
      'global: { scrape_interval: 500ms, scrape_timeout: 400ms }',
      'scrape_configs:',
      '  - job_name: ephemera',
      '    basic_auth:',
      `      username: ${JSON.stringify(key.slice(0, colon))}`,
      `      password: ${JSON.stringify(key.slice(colon + 1))}`,
      `    static_configs: [ { targets: [${JSON.stringify(target)}] } ]`,
      '',
    ].join('\n');
    await writeFile(join(dir, 'prometheus.yml'), config);
    const log = join(dir, 'log');
    const { openSync, closeSync } = await import('node:fs');
    const fd = openSync(log, 'w');
    const child = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.listen-address=127.0.0.1:0'], {
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    try {
      const port = await waitFor('prometheus to listen', 15_000, async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${await readFile(log, 'utf8')}`);
        const m = /msg="Listening on" address=127\.0\.0\.1:(\d+)/.exec(await readFile(log, 'utf8'));
        return m?.[1];
      });
      const url = `http://127.0.0.1:${port}`;
      // Listening is not ready: until its storage is open, Prometheus answers queries with 503
      // "Service Unavailable" (seen under load as a failed views-e2e).
      await waitFor('prometheus to be ready', 15_000, async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${await readFile(log, 'utf8')}`);
        const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2000) }).catch(() => undefined);
        await res?.body?.cancel();
        return res?.status === 200 ? true : undefined;
      });
      return new PrometheusServer(child, dir, url);
    } catch (err) {
      child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** An instant query's vector. */
  async query(promql: string): Promise<Sample[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== 'success' || body.data === undefined) throw new Error(`prometheus query ${promql} failed: ${body.error ?? res.status}`);
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** The one value of a query, or undefined when it has none. */
  async value(promql: string): Promise<number | undefined> {
    const r = await this.query(promql);
    if (r.length > 1) throw new Error(`prometheus query ${promql} returned ${r.length} series, expected one`);
    return r[0]?.value;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
      this.#child.kill('SIGTERM');
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.#dir, { recursive: true, force: true });
  }
}

/** `promtool check metrics` on `text`: its exit status and what it printed (lint problems). */
export function promtoolCheck(text: string): Promise<{ status: number | null; output: string }> {
  need(PROMTOOL);
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output });
    });
    child.stdin.end(text);
  });
}
