/**
 * A test double at the NodeAgent seam: it keeps each "container"'s code and runs every activation
 * as a real `python3` process on this host (no Docker, no limits, no daemon). The route and
 * invoker tests use it to exercise the controller quickly; the end-to-end test runs the real node
 * agent instead. Python-only; blackbox "images" are not run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { ContainerSpec, InitValue, NodeAgent, NodeLoad, RunRequest, RunResult } from './agent.js';

const HARNESS = `
import json, runpy, sys, os
path, main = sys.argv[1], sys.argv[2]
g = runpy.run_path(path, run_name='__ow_action__')
params = json.loads(sys.stdin.read())
out = g[main](params)
sys.stdout.flush()
os.write(3, json.dumps(out).encode())
`;

interface Box {
  readonly spec: ContainerSpec;
  dir: string | undefined;
  codePath: string | undefined;
  main: string;
  inits: number;
  running: ChildProcess | undefined;
}

export class FakeNode implements NodeAgent {
  readonly name = 'fake';
  /** @param baseDir where the containers' code goes (a test's scratch directory) */
  constructor(private readonly baseDir: string = tmpdir()) {}

  readonly boxes = new Map<string, Box>();
  created = 0;
  removed = 0;
  private next = 0;

  create(spec: ContainerSpec): Promise<{ id: string }> {
    const id = `fake-${++this.next}`;
    this.boxes.set(id, { spec, dir: undefined, codePath: undefined, main: 'main', inits: 0, running: undefined });
    this.created++;
    return Promise.resolve({ id });
  }

  init(id: string, value: InitValue): Promise<{ statusCode: number; body: unknown }> {
    const box = this.boxes.get(id);
    if (box === undefined) return Promise.resolve({ statusCode: 404, body: { error: `no container ${id}` } });
    if (++box.inits > 1) return Promise.resolve({ statusCode: 403, body: { error: 'Cannot initialize the action more than once.' } });
    box.dir = mkdtempSync(join(this.baseDir, 'fake-container-'));
    box.codePath = join(box.dir, value.binary ? 'action.zip' : 'action.py');
    writeFileSync(box.codePath, value.binary ? Buffer.from(value.code, 'base64') : value.code);
    box.main = value.main;
    return Promise.resolve({ statusCode: 200, body: { ok: true } });
  }

  run(id: string, req: RunRequest): Promise<RunResult> {
    const box = this.boxes.get(id);
    if (box?.codePath === undefined) return Promise.reject(new Error(`container ${id} is not initialised`));
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
      for (const [k, v] of Object.entries(req)) if (k !== 'value' && k !== 'timeoutMs') env[`__OW_${k.toUpperCase()}`] = String(v);
      const child = spawn('python3', ['-c', HARNESS, box.codePath ?? '', box.main], { env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
      box.running = child;
      let out = '';
      let err = '';
      let result = '';
      let timedOut = false;
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => (result += d.toString()));
      const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, req.timeoutMs);
      child.on('error', (e) => { clearTimeout(timer); reject(e); });
      child.on('close', (code) => {
        clearTimeout(timer);
        const stamp = new Date().toISOString();
        const logs = [
          ...out.split('\n').filter((l) => l !== '').map((l) => `${stamp} stdout: ${l}`),
          ...err.split('\n').filter((l) => l !== '').map((l) => `${stamp} stderr: ${l}`),
        ];
        let body: unknown;
        try {
          body = result === '' ? { error: `the action exited with status ${code ?? 'signal'} and no result` } : (JSON.parse(result) as unknown);
        } catch {
          body = result;
        }
        const isErr = typeof body === 'object' && body !== null && Object.hasOwn(body, 'error');
        resolve({
          statusCode: result === '' || isErr ? 502 : 200,
          body,
          logs,
          durationMs: Date.now() - started,
          ephemera: {
            pool: 'allocation',
            initialBytes: box.spec.memoryBytes,
            grantedBytes: box.spec.memoryBytes,
            node: this.name,
            stats: { fast_reads: 1, fast_writes: 2, slow_ops: 0, evictions: 0, bytes_in_memory_peak: 4096, ownPeakBytes: 1 << 20, filePeakBytes: 4096 },
          },
          ...(timedOut ? { timedOut: true } : {}),
        });
      });
      child.stdin.end(JSON.stringify(req.value));
    });
  }

  remove(id: string): Promise<void> {
    const box = this.boxes.get(id);
    box?.running?.kill('SIGKILL');
    if (box?.dir !== undefined) rmSync(box.dir, { recursive: true, force: true });
    if (this.boxes.delete(id)) this.removed++;
    return Promise.resolve();
  }

  state(): Promise<NodeLoad> {
    let allocated = 0;
    for (const b of this.boxes.values()) allocated += b.spec.memoryBytes;
    return Promise.resolve({ node: this.name, memory: { limit: 8 << 30, allocated, requested: allocated } });
  }
}

/** A node whose containers answer at once: timing the controller against it leaves its own cost. */
export class InstantNode implements NodeAgent {
  readonly name = 'instant';
  create(): Promise<{ id: string }> {
    return Promise.resolve({ id: 'instant' });
  }
  init(): Promise<{ statusCode: number; body: unknown }> {
    return Promise.resolve({ statusCode: 200, body: {} });
  }
  run(): Promise<RunResult> {
    return Promise.resolve({ statusCode: 200, body: {}, logs: [], durationMs: 0 });
  }
  remove(): Promise<void> {
    return Promise.resolve();
  }
  state(): Promise<NodeLoad> {
    return Promise.resolve({ node: this.name, memory: { limit: 1, allocated: 0, requested: 0 } });
  }
}
