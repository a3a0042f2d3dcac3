/**
 * Finding the memory cgroup of a process: which hierarchy has the memory controller (v1, v2, or
 * a hybrid with v1 memory beside a unified v2 tree that lacks it) and which directory is the
 * process's own.
 *
 * The directory comes from /proc/PID/cgroup joined to the mount point, after removing the mount's
 * own root (from mountinfo). That makes it right inside containers too, where the cgroupfs mount
 * shows only the container's subtree.
 */
import { readFile } from 'node:fs/promises';
import { join, posix } from 'node:path';

import { EphemeraError } from '../core/errors.js';

export interface CgroupMount {
  readonly version: 1 | 2;
  /** Where the hierarchy is mounted, e.g. /sys/fs/cgroup/memory. */
  readonly mountPoint: string;
  /** Which cgroup of the hierarchy the mount shows at its top ("/" unless inside a container). */
  readonly root: string;
  /** v1: the controllers bound to this hierarchy (from the super options). v2: empty. */
  readonly controllers: readonly string[];
}

/** The memory cgroup of one process. */
export interface MemoryCgroupLocation {
  /** Version of the hierarchy that holds the memory controller. */
  readonly version: 1 | 2;
  /** `hybrid`: memory on v1 while a v2 tree is mounted too (systemd's hybrid mode). */
  readonly layout: 'v1' | 'v2' | 'hybrid';
  readonly mountPoint: string;
  /** Absolute directory of the process's own memory cgroup. */
  readonly dir: string;
}

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The cgroup mounts listed in a mountinfo text (proc(5)). */
export function parseMountinfo(text: string): CgroupMount[] {
  const mounts: CgroupMount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-');
    if (dash < 6) continue;
    const fstype = fields[dash + 1];
    const root = fields[3];
    const mountPoint = fields[4];
    if (root === undefined || mountPoint === undefined) continue;
    if (fstype === 'cgroup2') {
      mounts.push({ version: 2, mountPoint: unescapeMount(mountPoint), root: unescapeMount(root), controllers: [] });
    } else if (fstype === 'cgroup') {
      const superOptions = (fields[dash + 3] ?? '').split(',');
      mounts.push({ version: 1, mountPoint: unescapeMount(mountPoint), root: unescapeMount(root), controllers: superOptions });
    }
  }
  return mounts;
}

export interface ProcCgroup {
  /** v1 controller name -> path. */
  readonly v1: ReadonlyMap<string, string>;
  /** The `0::PATH` line, or null. */
  readonly v2: string | null;
}

/** Parses /proc/PID/cgroup. */
export function parseProcCgroup(text: string): ProcCgroup {
  const v1 = new Map<string, string>();
  let v2: string | null = null;
  for (const line of text.split('\n')) {
    const first = line.indexOf(':');
    const second = line.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    const id = line.slice(0, first);
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (id === '0' && controllers === '') v2 = path;
    else for (const c of controllers.split(',')) v1.set(c, path);
  }
  return { v1, v2 };
}

/** The directory of cgroup `path` under a mount that shows cgroup `root` at `mountPoint`. */
export function cgroupDir(mount: CgroupMount, path: string): string {
  const root = mount.root === '/' ? '' : mount.root;
  if (root !== '' && path !== root && !path.startsWith(root + '/')) {
    // The process lives outside the subtree the mount shows (e.g. "/.." in a cgroup namespace):
    // the best we can name is the mount itself.
    return mount.mountPoint;
  }
  const dir = posix.normalize(join(mount.mountPoint, path.slice(root.length)));
  return dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir;
}

/**
 * Picks the memory cgroup from parsed mounts and /proc/PID/cgroup.
 * @param v2HasMemory tells whether a cgroup2 mount offers the memory controller
 *   (its cgroup.controllers lists `memory`).
 */
export async function locateMemoryCgroup(
  mounts: readonly CgroupMount[],
  proc: ProcCgroup,
  v2HasMemory: (mountPoint: string) => Promise<boolean>,
): Promise<MemoryCgroupLocation | null> {
  const v2mounts = mounts.filter((m) => m.version === 2);
  const v1mem = mounts.find((m) => m.version === 1 && m.controllers.includes('memory'));
  const v1path = proc.v1.get('memory');
  if (v1mem !== undefined && v1path !== undefined) {
    return {
      version: 1,
      layout: v2mounts.length > 0 ? 'hybrid' : 'v1',
      mountPoint: v1mem.mountPoint,
      dir: cgroupDir(v1mem, v1path),
    };
  }
  if (proc.v2 !== null) {
    for (const m of v2mounts) {
      if (await v2HasMemory(m.mountPoint)) {
        return { version: 2, layout: 'v2', mountPoint: m.mountPoint, dir: cgroupDir(m, proc.v2) };
      }
    }
  }
  return null;
}

async function controllersOf(mountPoint: string): Promise<boolean> {
  try {
    const text = await readFile(join(mountPoint, 'cgroup.controllers'), 'utf8');
    return text.trim().split(/\s+/).includes('memory');
  } catch {
    return false;
  }
}

export interface FindOptions {
  /** Whose cgroup: a pid or `self`. @default 'self' */
  readonly pid?: number | 'self';
  /** Where proc is mounted. @default '/proc' */
  readonly procRoot?: string;
}

/**
 * The memory cgroup of a process on this machine.
 * @throws {EphemeraError} `EPH_CGROUP_UNAVAILABLE` when no hierarchy offers the memory controller.
 */
export async function findMemoryCgroup(options: FindOptions = {}): Promise<MemoryCgroupLocation> {
  const procRoot = options.procRoot ?? '/proc';
  const pid = String(options.pid ?? 'self');
  let mountinfo: string;
  let cgroup: string;
  try {
    // Our own mountinfo: the mount points are the ones this process can open.
    mountinfo = await readFile(join(procRoot, 'self', 'mountinfo'), 'utf8');
    cgroup = await readFile(join(procRoot, pid, 'cgroup'), 'utf8');
  } catch (err) {
    throw new EphemeraError('EPH_CGROUP_UNAVAILABLE', `cannot read ${procRoot}/${pid}/cgroup or ${procRoot}/self/mountinfo; is /proc mounted and does process ${pid} exist?`, {
      cause: err,
    });
  }
  const found = await locateMemoryCgroup(parseMountinfo(mountinfo), parseProcCgroup(cgroup), controllersOf);
  if (found === null) {
    throw new EphemeraError('EPH_CGROUP_UNAVAILABLE', 'no cgroup hierarchy with the memory controller is mounted (neither a v1 "memory" hierarchy nor a cgroup2 tree whose cgroup.controllers lists memory); run on a kernel with CONFIG_MEMCG, or use --budget instead of --memory', {
      detail: { pid },
    });
  }
  return found;
}

/**
 * Why this process cannot make memory cgroups of its own here (it is not root, or the kernel has
 * no memory controller), or undefined when it can: what the real-cgroup tests skip on.
 */
export async function memoryCgroupUnusable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'needs root to create memory cgroups';
  try {
    await findMemoryCgroup();
  } catch (err) {
    return `the kernel lacks the memory cgroup controller: ${(err as Error).message}`;
  }
  return undefined;
}
