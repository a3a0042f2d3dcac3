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
 * src/limiter/cgroupfs.ts (a cgroup file is served from kernel memory in microseconds). Both
 * versions keep the file open from the first window to {@link CgroupPeakWindow.close}: every run
 * opens and reads a window, and an open, a stat and a close per access were most of the agent's
 * system calls per warm run. A kept descriptor reads afresh with a pread at offset 0 (the kernel's
 * seq_file regenerates the text for a read at 0), and v1's reset is a pwrite of `0` at offset 0.
 *
 * {@link OomKillCounter} keeps the OOM count's file open the same way.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { EphemeraError } from '../core/errors.js';

/** One open control file (v2's `memory.peak` held across a window). */
export interface ControlHandle {
  /** Writes `text` at offset 0 (pwrite). */
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
        writeSync(fd, text, 0);
      },
      read: () => {
        const buf = Buffer.alloc(256);
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
      if (this.#handle === undefined) {
        if (!this.#fs.exists(this.#file)) return;
        this.#handle = this.#fs.open(this.#file);
      }
      // v1: any write sets max_usage_in_bytes to the usage now; v2: resets this descriptor's peak.
      this.#handle.write(this.#version === 1 ? '0' : 'reset\n');
      this.#windowed = true;
    } catch {
      // v2 before Linux 6.12 (no per-file reset), or the cgroup is gone: the lifetime peak, or none.
    }
  }

  /** The peak in bytes (see {@link windowed}), or null when the kernel has none to give. Never throws. */
  read(): number | null {
    try {
      // v1's handle reads the one peak there is; v2's reads its own window only when it reset one.
      if (this.#handle !== undefined && (this.#windowed || this.#version === 1)) return count(this.#handle.read());
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

/**
 * The cgroup's OOM-kill count (`oom_kill` of v1's `memory.oom_control`, v2's `memory.events`),
 * read twice per run through one kept descriptor.
 */
export class OomKillCounter {
  readonly #file: string;
  readonly #fs: PeakFiles;
  #handle: ControlHandle | undefined;

  constructor(version: 1 | 2, dir: string, fs: PeakFiles = nodePeakFiles) {
    this.#file = join(dir, version === 1 ? 'memory.oom_control' : 'memory.events');
    this.#fs = fs;
  }

  /**
   * The count now.
   * @throws {EphemeraError} `EPH_CGROUP_IO` when the file cannot be read or has no `oom_kill` line
   */
  read(): number {
    let text: string;
    try {
      this.#handle ??= this.#fs.open(this.#file);
      text = this.#handle.read();
    } catch (err) {
      this.close();
      throw new EphemeraError('EPH_CGROUP_IO', `cannot read ${this.#file}: ${(err as Error).message}; is the cgroup still there and the memory controller enabled for it?`, {
        cause: err,
        detail: { path: this.#file },
      });
    }
    const m = /^oom_kill (\d+)$/m.exec(text);
    if (m?.[1] === undefined) {
      throw new EphemeraError('EPH_CGROUP_IO', `${this.#file} has no oom_kill line; this kernel (older than 4.13) does not count OOM kills per cgroup`, { detail: { path: this.#file } });
    }
    return Number(m[1]);
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
