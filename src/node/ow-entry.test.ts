/**
 * images/ow_entry.sh and the runtime's boot on the host (no engine): one interpreter, started under
 * the shim beside its daemon, serves only once the daemon is ready, and its action's scratch files
 * live in memory; a daemon that dies before it is ready ends the runtime with a message naming its
 * log, within the bound.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { REPO_DIR } from '../container/repo.js';
import { actionRequest } from './action-client.js';
import { runtimeCommand } from './runtime-command.js';

const PYTHON = '/usr/bin/python3';
const dir = mkdtempSync('/tmp/eph-ow-entry-');
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A tree like the image's /opt/ephemera, with `daemon` as bin/ephemerad. */
function tree(name: string, daemon: string): string {
  const opt = join(dir, name);
  for (const d of ['bin', 'lib', 'runtime']) mkdirSync(join(opt, d), { recursive: true });
  symlinkSync(daemon, join(opt, 'bin', 'ephemerad'));
  symlinkSync(join(REPO_DIR, 'build', 'libephemera.so'), join(opt, 'lib', 'libephemera.so'));
  for (const f of ['ow_runtime.py', 'ow_entry.sh']) symlinkSync(join(REPO_DIR, 'images', f), join(opt, 'runtime', f));
  return opt;
}

function start(opt: string, name: string): { run: string; root: string; child: ReturnType<typeof spawn>; exited: Promise<{ code: number | null; stderr: string }> } {
  const run = join(dir, `${name}-run`);
  const root = join(dir, `${name}-root`);
  mkdirSync(run);
  mkdirSync(root);
  const [cmd = 'sh', ...args] = runtimeCommand(true, { opt, run, root });
  const child = spawn(cmd, args, { env: { ...process.env, PATH: '/usr/bin:/bin', EPHEMERA_OPT: opt }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.on('close', (code) => { resolve({ code, stderr }); }));
  return { run, root, child, exited };
}

const skip = existsSync(PYTHON) && existsSync(join(REPO_DIR, 'build', 'ephemerad')) ? false : `needs ${PYTHON} and build/ephemerad`;

test('one interpreter under the shim, its daemon its child, scratch files in memory', { timeout: 30_000, skip }, async () => {
  const r = start(tree('ok', join(REPO_DIR, 'build', 'ephemerad')), 'ok');
  try {
    const sock = join(r.run, 'action.sock');
    const deadline = Date.now() + 20_000;
    for (;;) {
      const h = await actionRequest(sock, 'GET', '/health', undefined, 2000).catch(() => undefined);
      if (h?.statusCode === 200) break;
      assert.ok(Date.now() < deadline, 'the runtime answered /health within 20 s');
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.ok(!existsSync(join(r.run, 'daemon.ready')), 'the ready file is gone once read');
    const code = `import os\ndef main(a):\n    p = ${JSON.stringify(join(r.root, 'f'))}\n    open(p, "w").write("z" * 70000)\n    return {"n": len(open(p).read()), "pid": os.getpid(), "ppid": os.getppid(), "preload": os.environ.get("LD_PRELOAD", "")}\n`;
    assert.equal((await actionRequest(sock, 'POST', '/init', { value: { code } }, 10_000)).statusCode, 200);
    const run = await actionRequest(sock, 'POST', '/run', { value: {} }, 10_000);
    const body = run.body as { n: number; pid: number; preload: string };
    assert.equal(body.n, 70000);
    assert.equal(body.pid, r.child.pid, 'the action runs in the process the shell became (exec, one interpreter)');
    assert.match(body.preload, /libephemera\.so$/);
    assert.ok(!existsSync(join(r.root, 'f')), 'the scratch file lives in the daemon\'s memory, not on disk');
    const daemonParent = readFileSync(`/proc/${String(body.pid)}/task/${String(body.pid)}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '');
    assert.equal(daemonParent.length, 1, 'ephemerad is the runtime\'s one child');
  } finally {
    r.child.kill('SIGTERM');
    await r.exited;
  }
});

test('a daemon that exits before it is ready ends the runtime with a message naming its log', { timeout: 30_000, skip }, async () => {
  const fake = join(dir, 'dying-daemon');
  writeFileSync(fake, '#!/bin/sh\nexit 3\n', { mode: 0o755 });
  const r = start(tree('dying', fake), 'dying');
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 20_000);
  const { code, stderr } = await r.exited;
  clearTimeout(timer);
  assert.equal(code, 97, stderr);
  assert.match(stderr, /ephemerad exited with status 3 before it was ready; see .*daemon\.log/);
});
