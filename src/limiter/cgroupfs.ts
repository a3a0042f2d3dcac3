/**
 * Reading and writing the control files of one cgroup directory.
 *
 * Kernel errors from these files carry meaning (EBUSY on a v1 limit below usage, EINVAL on a bad
 * value, ENOENT when a controller is not enabled), so every failure names the file, the value and
 * the errno.
 *
 * The files are read and written synchronously, behind the async signatures: a cgroup file is
 * served from kernel memory in about 10 µs, while the asynchronous fs API's hop through libuv's
 * thread pool cost about 80 µs per call on a busy 2-core node, and one memory move makes eight of
 * these calls on its critical path (bench move).
 */
import { accessSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';
import { UNLIMITED_THRESHOLD } from './limiter.js';

function errnoOf(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'unknown error';
}

/** The text of `dir/file`, trimmed. */
export function readControl(dir: string, file: string): Promise<string> {
  const path = join(dir, file);
  try {
    return Promise.resolve(readFileSync(path, 'utf8').trim());
  } catch (err) {
    return Promise.reject(
      new EphemeraError('EPH_CGROUP_IO', `cannot read ${path}: ${errnoOf(err)}; is the cgroup still there and the memory controller enabled for it?`, {
        cause: err,
        detail: { path, errno: errnoOf(err) },
      }),
    );
  }
}

/** Parses a byte count; `max` (v2) and the v1 ceiling become `null`. */
export function parseBytes(text: string, path: string): number | null {
  if (text === 'max') return null;
  if (!/^\d+$/.test(text)) {
    throw new EphemeraError('EPH_CGROUP_IO', `${path} holds ${JSON.stringify(text)}, not a byte count; is this a memory cgroup file?`, {
      detail: { path, text },
    });
  }
  const n = Number(text);
  return n >= UNLIMITED_THRESHOLD ? null : n;
}

/** `dir/file` as a byte count (`null` for unlimited). */
export async function readBytes(dir: string, file: string): Promise<number | null> {
  return parseBytes(await readControl(dir, file), join(dir, file));
}

/** `dir/file` as a byte count that can never be unlimited (usage, peak). */
export async function readCount(dir: string, file: string): Promise<number> {
  const n = await readBytes(dir, file);
  if (n === null) {
    throw new EphemeraError('EPH_CGROUP_IO', `${join(dir, file)} reads as unlimited, but it should hold a byte count`, {
      detail: { path: join(dir, file) },
    });
  }
  return n;
}

/** The value of `key` in a flat-keyed file such as memory.events or memory.oom_control. */
export async function readKey(dir: string, file: string, key: string): Promise<number | undefined> {
  const text = await readControl(dir, file);
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key && v !== undefined && /^\d+$/.test(v)) return Number(v);
  }
  return undefined;
}

/**
 * Writes `value` to `dir/file`. EBUSY becomes `EPH_LIMIT_BELOW_USAGE` (cgroup v1 refuses to set a
 * limit it cannot reclaim down to); everything else is `EPH_CGROUP_IO`.
 */
export function writeControl(dir: string, file: string, value: string): Promise<void> {
  const path = join(dir, file);
  try {
    writeFileSync(path, value);
    return Promise.resolve();
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'EBUSY') {
      return Promise.reject(
        new EphemeraError('EPH_LIMIT_BELOW_USAGE', `the kernel refused ${value} for ${path} (EBUSY): more memory is in use than that and cannot be reclaimed; evict first (ephemera ctl SOCKET shrink) or choose a higher limit`, {
          cause: err,
          detail: { path, value, errno },
        }),
      );
    }
    return Promise.reject(
      new EphemeraError('EPH_CGROUP_IO', `cannot write ${value} to ${path}: ${errno}; writing cgroup files needs root and a writable cgroup hierarchy`, {
        cause: err,
        detail: { path, value, errno },
      }),
    );
  }
}

/** True when `dir/file` exists (a controller file that an older kernel may lack). */
export function hasControl(dir: string, file: string): Promise<boolean> {
  try {
    accessSync(join(dir, file));
    return Promise.resolve(true);
  } catch {
    return Promise.resolve(false);
  }
}

/** Checks that a requested limit is a positive integer number of bytes. */
export function checkLimit(bytes: number | null, target: string): void {
  if (bytes === null) return;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new EphemeraError('EPH_LIMIT_INVALID', `memory limit for ${target} must be a positive integer number of bytes, got ${String(bytes)}`, {
      detail: { target, bytes },
    });
  }
}
