/**
 * The cgroup's own memory peak over one invocation, where the kernel can reset it. The daemon's
 * `peaks` are what an activation's usage is made of; this peak is the fallback for a daemon that
 * cannot answer them, and an upper bound (it counts in-memory files and page cache too).
 *
 * - cgroup v1: writing 0 to `memory.max_usage_in_bytes` sets it to the usage now, for everyone.
 * - cgroup v2: `memory.peak` (Linux ≥ 5.19) is the lifetime peak. Since Linux 6.12 writing any
 *   non-empty string to it resets the peak *as seen through that open file*: the window keeps its
 *   own descriptor open from the reset to the read, and other readers are not disturbed. An older
 *   kernel refuses the write; the window then reports the lifetime peak and says so
 *   ({@link CgroupPeakWindow.windowed}).
 *
 * The files are read and written synchronously behind the callers' async code, as in
 * src/limiter/cgroupfs.ts (a cgroup file is served from kernel memory in microseconds).
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** One open control file (v2's `memory.peak` held across a window). */
export interface ControlHandle {
  write(text: string): void;
  /** The file's text from its start (pread at 0). */
  read(): string;
  close(): void;
}

/** The seam to the cgroup files, so the v2 path is tested with fakes on a v1 machine. */
export interface PeakFiles {
  exists(path: string): boolean;
  readText(path: string): string;
  writeText(path: string, text: string): void;
  /** Opens `path` for reading and writing. */
  open(path: string): ControlHandle;
}

export const nodePeakFiles: PeakFiles = {
  exists: (path) => existsSync(path),
  readText: (path) => readFileSync(path, 'utf8'),
  writeText: (path, text) => writeFileSync(path, text),
  open: (path) => {
    const fd = openSync(path, 'r+');
    return {
      write: (text) => {
        writeSync(fd, text);
      },
      read: () => {
        const buf = Buffer.alloc(64);
        return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0));
      },
      close: () => {
        closeSync(fd);
      },
    };
  },
};

const count = (text: string): number | null => (/^\d+$/.test(text.trim()) ? Number(text.trim()) : null);

export class CgroupPeakWindow {
  readonly #file: string;
  readonly #version: 1 | 2;
  readonly #fs: PeakFiles;
  #handle: ControlHandle | undefined;
  #windowed = false;

  constructor(version: 1 | 2, dir: string, fs: PeakFiles = nodePeakFiles) {
    this.#version = version;
    this.#file = join(dir, version === 1 ? 'memory.max_usage_in_bytes' : 'memory.peak');
    this.#fs = fs;
  }

  /** Whether {@link read} covers the window since {@link open}, not the cgroup's life. */
  get windowed(): boolean {
    return this.#windowed;
  }

  /** Opens a window: from now on {@link read} reports the peak since this moment where it can. Never throws. */
  open(): void {
    this.#windowed = false;
    try {
      if (!this.#fs.exists(this.#file)) return;
      if (this.#version === 1) {
        this.#fs.writeText(this.#file, '0');
        this.#windowed = true;
        return;
      }
      this.#handle ??= this.#fs.open(this.#file);
      this.#handle.write('reset\n');
      this.#windowed = true;
    } catch {
      // v2 before Linux 6.12 (no per-file reset), or the cgroup is gone: the lifetime peak, or none.
    }
  }

  /** The peak in bytes (see {@link windowed}), or null when the kernel has none to give. Never throws. */
  read(): number | null {
    try {
      if (this.#handle !== undefined && this.#windowed) return count(this.#handle.read());
      return this.#fs.exists(this.#file) ? count(this.#fs.readText(this.#file)) : null;
    } catch {
      return null;
    }
  }

  close(): void {
    try {
      this.#handle?.close();
    } catch {
      // already gone with its cgroup
    }
    this.#handle = undefined;
  }
}
