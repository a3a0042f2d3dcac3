/**
 * Bringing up the Docker engine itself: scripts/docker.sh installs Debian's docker.io when it is
 * missing, starts dockerd when nothing answers on the socket, and checks that overlay2 works.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { REPO_DIR } from './repo.js';

/** Runs `scripts/docker.sh ensure`; returns null when the engine runs, otherwise the reason it does not. */
export function ensureDockerEngine(): string | null {
  const r = spawnSync(join(REPO_DIR, 'scripts/docker.sh'), ['ensure'], { encoding: 'utf8' });
  if (r.status === 0) return null;
  const out = `${r.stdout}\n${r.stderr}`.trim().split('\n');
  return out.filter((l) => l.startsWith('docker: unavailable')).pop() ?? out.pop() ?? 'scripts/docker.sh failed';
}
