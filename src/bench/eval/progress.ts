/**
 * Progress of a long benchmark: on a terminal one line redrawn in place with the elapsed time and
 * an ETA from the mean time per finished run; elsewhere one plain line per finished run.
 */

export class Progress {
  readonly #total: number;
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  readonly #t0 = performance.now();
  #done = 0;

  constructor(total: number, out: NodeJS.WriteStream = process.stderr) {
    this.#total = total;
    this.#out = out;
    this.#tty = out.isTTY;
  }

  /** Shows what is about to run. */
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
