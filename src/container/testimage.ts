/**
 * A tiny image for testing container plumbing: a static busybox and its applet links, imported
 * from the host's busybox-static package in well under a second. Test support only.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink, copyFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ensureDockerEngine } from './dockerd.js';
import type { ContainerEngine } from './engine.js';

export const BUSYBOX_REF = 'ephemera-test-busybox:1';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'echo', 'cat', 'dd', 'sleep', 'head', 'true', 'ls', 'mkdir', 'rm'];

export async function ensureBusyboxImage(engine: ContainerEngine): Promise<string> {
  if (await engine.hasImage(BUSYBOX_REF)) return BUSYBOX_REF;
  if (!existsSync(BUSYBOX)) {
    const r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'busybox-static'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) throw new Error('apt-get install busybox-static failed; the container tests need a static busybox');
  }
  const dir = await mkdtemp(join(tmpdir(), 'eph-busybox-'));
  try {
    await mkdir(join(dir, 'bin'));
    await mkdir(join(dir, 'tmp'), { mode: 0o1777 });
    await copyFile(BUSYBOX, join(dir, 'bin/busybox'));
    for (const a of APPLETS) await symlink('busybox', join(dir, 'bin', a));
    const tar = spawn('tar', ['-C', dir, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [repo, tag] = BUSYBOX_REF.split(':') as [string, string];
    await engine.importImage(tar.stdout, repo, tag);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return BUSYBOX_REF;
}

/**
 * What a suite against the real engine needs first (in its `before`): dockerd started if need be,
 * then the busybox image. `skip`: why the engine cannot be used (and no image), or null.
 */
export async function busyboxOnRealEngine(engine: ContainerEngine): Promise<{ readonly skip: string | null; readonly image: string }> {
  const skip = ensureDockerEngine();
  return { skip, image: skip === null ? await ensureBusyboxImage(engine) : '' };
}
