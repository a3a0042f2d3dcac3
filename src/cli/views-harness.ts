/**
 * What the end-to-end tests of the operator's views (views-e2e, views-nodes-e2e) stand on: `ephemera
 * up` as a process on a fresh state directory (the tenants' keys written under its home), headless
 * Chromium beside it, and the OpenWhisk API called with a tenant's key. It starts and stops things
 * and asserts nothing: the tests say what must hold.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Browser } from 'puppeteer-core';

import { ensureDockerEngine } from '../container/dockerd.js';
import { basicAuthFor } from '../dashboard/auth.js';
import { closeChromium, launchChromium } from '../dashboard/chromium.js';
import { startAnnounced, stopChild } from '../platform/child.js';
import { containersOfNode, readProps } from '../platform/harness.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export class UpUnderTest {
  /** Why the suite skips (no Docker engine), else null; set by begin. */
  skip: string | null = null;
  /** The scratch directory: state/ (`--state-dir`), home/ (the tenants' .wskprops), chromium/. */
  dir = '';
  /** The API's base URL, as `ephemera up` announced it. */
  url = '';
  browser: Browser | undefined;
  private up: ChildProcess | undefined;

  /**
   * @param prefix the scratch directory's name, before mkdtemp's suffix (under /tmp)
   * @param upArgs `ephemera up`'s arguments after `--port 0 --state-dir DIR/state`
   * @param nodes the node agents' names, whose containers end removes
   */
  constructor(
    private readonly prefix: string,
    private readonly upArgs: readonly string[],
    private readonly nodes: readonly string[],
  ) {}

  /** The tenant's API key, from the .wskprops `ephemera up` wrote for it. */
  key(tenant: string): string {
    return readProps(join(this.dir, 'home', `${tenant}.wskprops`)).AUTH ?? '';
  }

  /** An OpenWhisk REST call as tenant: its status and JSON body. */
  async api(tenant: string, method: string, path: string, body?: unknown, timeoutMs = 120_000): Promise<{ status: number; json: unknown }> {
    const res = await fetch(`${this.url}/api/v1/namespaces/_/${path}`, {
      method,
      headers: { authorization: basicAuthFor(this.key(tenant)), 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, json: await res.json() };
  }

  /** Start `ephemera up` (again, after stop: on the same state directory). */
  async start(): Promise<void> {
    const started = await startAnnounced(
      [process.execPath, MAIN, 'up', '--port', '0', '--state-dir', join(this.dir, 'state'), ...this.upArgs],
      /API on (http:\/\/\S+)/,
      600_000,
      { env: { ...process.env, EPHEMERA_HOME: join(this.dir, 'home') }, stderr: 'ignore' },
    );
    this.up = started.child;
    this.url = started.match[1] ?? '';
  }

  async stop(): Promise<void> {
    if (this.up !== undefined) await stopChild(this.up, 'SIGTERM', 120_000);
    this.up = undefined;
  }

  /** For before(): Docker's engine (or skip says why not), the scratch directory, `ephemera up`, Chromium. */
  async begin(): Promise<void> {
    this.skip = ensureDockerEngine();
    if (this.skip !== null) return;
    this.dir = mkdtempSync(`/tmp/${this.prefix}-`);
    await this.start();
    mkdirSync(join(this.dir, 'chromium'));
    this.browser = await launchChromium(join(this.dir, 'chromium'));
  }

  /** For after(): Chromium and `ephemera up` stopped, the nodes' containers and the scratch directory removed. */
  async end(): Promise<void> {
    if (this.browser !== undefined) await closeChromium(this.browser);
    await this.stop();
    for (const node of this.nodes) for (const id of containersOfNode(node)) spawnSync('docker', ['rm', '-f', id], { timeout: 30_000 });
    if (this.dir !== '') rmSync(this.dir, { recursive: true, force: true });
  }
}
