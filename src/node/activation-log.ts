/**
 * Cuts a function container's output into activations, as OpenWhisk's invoker does: after each
 * activation the action runtime writes `XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX` on stdout and on
 * stderr, and an activation's logs are the lines of both streams up to their sentinels.
 *
 * Lines keep their arrival order across the two streams and are formatted like OpenWhisk's
 * records: `2026-12-06T03:00:00.000Z stdout: hello`.
 */

export const ACTIVATION_SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';

type Stream = 'stdout' | 'stderr';

interface Line {
  readonly stream: Stream;
  readonly text: string;
  readonly at: number;
}

export class ActivationLog {
  /** Complete lines not yet handed out, with the sentinels among them. */
  #lines: Line[] = [];
  readonly #partial: Record<Stream, string> = { stdout: '', stderr: '' };
  readonly #sentinels: Record<Stream, number> = { stdout: 0, stderr: 0 };
  #waiter: (() => void) | undefined;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Adds output as it arrives (any split: partial lines are kept until their newline). */
  push(stream: Stream, text: string): void {
    const parts = (this.#partial[stream] + text).split('\n');
    this.#partial[stream] = parts.pop() ?? '';
    const at = this.#now();
    for (const p of parts) {
      const line = p.endsWith('\r') ? p.slice(0, -1) : p;
      this.#lines.push({ stream, text: line, at });
      if (line === ACTIVATION_SENTINEL) this.#sentinels[stream]++;
    }
    if (this.#complete()) this.#waiter?.();
  }

  /**
   * The lines of the next activation: waits until both streams carried their sentinel, or
   * `timeoutMs` passed (then it returns what arrived, and notes the missing sentinel).
   */
  async take(timeoutMs: number): Promise<string[]> {
    if (!this.#complete()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.#waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
    return this.cut(timeoutMs);
  }

  /**
   * The lines of the next activation as they stand, without waiting; a missing sentinel is noted
   * as not arrived within `waitedMs`.
   */
  cut(waitedMs: number): string[] {
    const out: string[] = [];
    const later: Line[] = [];
    const done: Record<Stream, boolean> = { stdout: false, stderr: false };
    for (const l of this.#lines) {
      if (done.stdout && done.stderr) later.push(l);
      else if (done[l.stream]) later.push(l); // the next activation's, on a stream that already ended
      else if (l.text === ACTIVATION_SENTINEL) {
        done[l.stream] = true;
        this.#sentinels[l.stream]--;
      } else out.push(`${new Date(l.at).toISOString()} ${l.stream}: ${l.text}`);
    }
    this.#lines = later;
    if (!done.stdout || !done.stderr) {
      const missing = (['stdout', 'stderr'] as const).filter((s) => !done[s]).join(' and ');
      out.push(`${new Date(this.#now()).toISOString()} stderr: [ephemera] the end-of-activation sentinel did not arrive on ${missing} within ${waitedMs} ms; logs may be cut short`);
    }
    return out;
  }

  /** Whether both streams carried a sentinel: take would return at once. */
  get complete(): boolean {
    return this.#complete();
  }

  #complete(): boolean {
    return this.#sentinels.stdout > 0 && this.#sentinels.stderr > 0;
  }
}
