/**
 * The function image: Debian bookworm with the workloads' Python packages, built locally from the
 * recipe in images/ (there is no registry) and cached by content.
 *
 * The tag is a hash of every file in the recipe directory, so an unchanged recipe never rebuilds
 * and any change to the package list or the build script does, on this machine or a fresh one.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';
import type { ContainerEngine } from './engine.js';
import { REPO_DIR } from './repo.js';

export const FUNCTION_IMAGE_REPO = 'ephemera-fn';

export interface FunctionImageOptions {
  /** The recipe directory: build-rootfs.sh and the files it reads. @default <repo>/images */
  readonly recipeDir?: string;
  /** Called with progress lines while a build runs. */
  readonly onProgress?: (line: string) => void;
}

export interface FunctionImage {
  readonly ref: string;
  /** True when this call built the image, false when it was already cached. */
  readonly built: boolean;
  readonly buildMs: number;
}

/** Hash of the recipe: file names and contents, in name order. */
export async function recipeHash(recipeDir: string): Promise<string> {
  const h = createHash('sha256');
  const names = (await readdir(recipeDir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name).sort();
  for (const name of names) {
    h.update(`${name}\0`);
    h.update(await readFile(join(recipeDir, name)));
    h.update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * Returns the function image, building and importing it first when the recipe changed.
 * @throws {EphemeraError} `EPH_IMAGE_BUILD` when the root file system cannot be made,
 *   `EPH_DOCKER_API` when the engine refuses the import.
 */
export async function ensureFunctionImage(engine: ContainerEngine, options: FunctionImageOptions = {}): Promise<FunctionImage> {
  const recipeDir = options.recipeDir ?? join(REPO_DIR, 'images');
  const tag = await recipeHash(recipeDir);
  const ref = `${FUNCTION_IMAGE_REPO}:${tag}`;
  if (await engine.hasImage(ref)) return { ref, built: false, buildMs: 0 };

  const t0 = performance.now();
  options.onProgress?.(`building image ${ref} from Debian packages (a few minutes, once per recipe)`);
  const script = join(recipeDir, 'build-rootfs.sh');
  // The root file system goes to a file first: mmdebstrap is silent for minutes before it writes
  // the tar, and a file can be imported (and retried) independently of the build.
  const tarPath = join(tmpdir(), `ephemera-rootfs-${tag}.tar`);
  const out = await open(tarPath, 'w');
  try {
    const child = spawn(script, [], { stdio: ['ignore', out.fd, 'pipe'] });
    const stderr: string[] = [];
    child.stderr?.setEncoding('utf8').on('data', (s: string) => {
      stderr.push(s);
      for (const line of s.split('\n')) if (line.trim() !== '') options.onProgress?.(line.trim());
    });
    let status: number;
    try {
      status = await new Promise<number>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code, signal) => resolve(code ?? 128 + (signal === null ? 0 : 15)));
      });
    } catch (err) {
      throw new EphemeraError('EPH_IMAGE_BUILD', `could not start ${script}: ${(err as Error).message}; check that the file is executable`, { cause: err });
    }
    if (status !== 0) {
      const tail = stderr.join('').trim().split('\n').slice(-5).join(' | ');
      throw new EphemeraError('EPH_IMAGE_BUILD', `${script} exited with status ${status}: ${tail}; it needs root, mmdebstrap and Debian's package archive`, {
        detail: { status },
      });
    }
    await out.close();
    options.onProgress?.(`importing ${ref} into Docker`);
    await engine.importImage(createReadStream(tarPath), FUNCTION_IMAGE_REPO, tag);
  } finally {
    await out.close().catch(() => undefined);
    await rm(tarPath, { force: true });
  }
  return { ref, built: true, buildMs: performance.now() - t0 };
}
