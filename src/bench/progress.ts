/**
 * Progress of a long benchmark, the one reporter of every `ephemera bench` experiment: on a
 * terminal one line redrawn in place with the elapsed time and an ETA from the mean time per
 * finished run; elsewhere (a log, CI) one plain line per finished run. It writes to stderr so
 * that stdout holds only the table.
 */

/** Where the lines go: a stream, and whether it is a terminal. */
export interface ProgressOutput {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export class Progress {
  readonly #out: ProgressOutput;
  readonly #tty: boolean;
  #total = 0;
  #t0 = performance.now();
  #done = 0;

  /** @param total runs to come; {@link begin} sets it later when only the benchmark knows it */
  constructor(total = 0, out: ProgressOutput = process.stderr) {
    this.#out = out;
    this.#tty = out.isTTY === true;
    this.#total = total;
  }

  /** Starts counting `total` runs from now. */
  begin(total: number): void {
    this.#total = total;
    this.#done = 0;
    this.#t0 = performance.now();
  }

  /** Shows what is about to run (on a terminal only). */
  start(what: string): void {
    if (this.#tty) this.#out.write(`\r\x1b[2K${this.#line(what)}`);
  }

  /** Records a finished run and its one-word result. */
  finish(what: string, result: string): void {
    this.#done += 1;
    if (this.#tty) this.#out.write(`\r\x1b[2K${this.#line(`${what}: ${result}`)}`);
    else this.#out.write(`${this.#line(`${what}: ${result}`)}\n`);
  }

  /** Prints a message above the progress line. */
  note(message: string): void {
    this.#out.write(this.#tty ? `\r\x1b[2K${message}\n` : `${message}\n`);
  }

  /** Clears the progress line, before the table is printed. */
  end(): void {
    if (this.#tty) this.#out.write('\r\x1b[2K');
  }

  #line(what: string): string {
    const elapsed = (performance.now() - this.#t0) / 1000;
    const eta = this.#done > 0 ? (elapsed / this.#done) * (this.#total - this.#done) : Number.NaN;
    return `[${this.#done}/${this.#total}] ${formatDuration(elapsed)} elapsed, ETA ${Number.isNaN(eta) ? '?' : formatDuration(eta)}  ${what}`;
  }
}

export function formatDuration(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}
