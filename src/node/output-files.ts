/**
 * An activation's output read from the files the action runtime writes in the container's run
 * directory (`ow_runtime.py --output-files`: `action.stdout`, `action.stderr`, appended to by the
 * runtime, the action and every program it starts), instead of through the engine's log stream.
 *
 * The runtime writes the sentinel to both files before it answers `/run`, so when the answer
 * arrives the activation's output is in the files already: one read of each, no wait, and no
 * byte of it passes through dockerd (docs/ARCHITECTURE.md, node agent, "An activation's output
 * through a file"). The lines are cut into activations by the same `ActivationLog` as the stream.
 * What a file cannot say is how the two streams interleaved: an activation's stdout lines come
 * first, then its stderr lines, each stream in its own order.
 */
import { closeSync, constants, fstatSync, ftruncateSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

import { ActivationLog } from './activation-log.js';

export const OUTPUT_FILES = { stdout: 'action.stdout', stderr: 'action.stderr' } as const;

type Stream = keyof typeof OUTPUT_FILES;

/** A file read to its end this far is emptied, between activations, once fully read. */
const TRUNCATE_AT_BYTES = 8 << 20;
/** How often a take looks again for a sentinel that is not in the file yet. */
const POLL_MS = 5;
const CHUNK = 64 << 10;

interface Source {
  readonly fd: number;
  offset: number;
  readonly decoder: StringDecoder;
}

export class OutputFiles {
  readonly #log: ActivationLog;
  readonly #src: Record<Stream, Source>;
  readonly #buf = Buffer.allocUnsafe(CHUNK);
  #closed = false;

  private constructor(src: Record<Stream, Source>, now?: () => number) {
    this.#src = src;
    this.#log = new ActivationLog(now);
  }

  /**
   * Opens both files of a run directory; undefined when the runtime writes none there (a container
   * started without `--output-files`: its output goes through the engine). `fromEnd` skips what
   * is in them already (an agent taking over a running container).
   */
  static open(dir: string, options: { fromEnd: boolean; now?: () => number }): OutputFiles | undefined {
    const fds: number[] = [];
    try {
      const src = {} as Record<Stream, Source>;
      for (const s of ['stdout', 'stderr'] as const) {
        const fd = openSync(join(dir, OUTPUT_FILES[s]), constants.O_RDWR);
        fds.push(fd);
        src[s] = { fd, offset: options.fromEnd ? fstatSync(fd).size : 0, decoder: new StringDecoder('utf8') };
      }
      return new OutputFiles(src, options.now);
    } catch (err) {
      for (const fd of fds) closeSync(fd);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /**
   * The lines of the next activation: what the files hold up to both sentinels. A sentinel not
   * there yet (a run that timed out, a runtime that died) is looked for every few ms until
   * `timeoutMs`; then the lines read so far, and a note that the sentinel is missing.
   */
  async take(timeoutMs: number): Promise<string[]> {
    const until = performance.now() + timeoutMs;
    this.#readAll();
    while (!this.#log.complete && !this.#closed && performance.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      this.#readAll();
    }
    const complete = this.#log.complete;
    const lines = this.#log.cut(timeoutMs);
    if (complete) this.#trim();
    return lines;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of Object.values(this.#src)) closeSync(s.fd);
  }

  #readAll(): void {
    if (this.#closed) return;
    for (const stream of ['stdout', 'stderr'] as const) {
      const s = this.#src[stream];
      // Only #trim empties the files (the runtime appends), so the offset never passes the end.
      for (;;) {
        const n = readSync(s.fd, this.#buf, 0, CHUNK, s.offset);
        if (n > 0) {
          s.offset += n;
          this.#log.push(stream, s.decoder.write(this.#buf.subarray(0, n)));
        }
        if (n < CHUNK) break;
      }
    }
  }

  /**
   * Keeps the files from growing for the container's whole life: one read to its end past
   * TRUNCATE_AT_BYTES is emptied. The runtime is between activations then (its answer is in,
   * the agent's next run has not gone out); only output a background thread of the action writes
   * in the few µs between the size check and the truncation would be lost.
   */
  #trim(): void {
    for (const s of Object.values(this.#src)) {
      if (s.offset < TRUNCATE_AT_BYTES || fstatSync(s.fd).size !== s.offset) continue;
      ftruncateSync(s.fd, 0);
      s.offset = 0;
    }
  }
}
