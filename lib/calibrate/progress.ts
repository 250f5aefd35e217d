/**
 * A progress bar with ETA on stderr (redrawn in place on a terminal; otherwise a line every 10%
 * and at least every 30 s, so a slow stretch of a long run still shows it is moving).
 */

/** Format seconds as "1h02m", "3m05s" or "12.3s". */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s >= 3600) {
    return `${Math.floor(s / 3600)}h${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}m`;
  }
  if (s >= 60) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${s.toFixed(1)}s`;
}

/** Progress of `total` units of work, reported with {@link ProgressBar.tick}. */
export class ProgressBar {
  #total: number;
  #label: string;
  #start = performance.now();
  #tty: boolean;
  #lastDecile = -1;
  #lastLine = 0;
  #enabled: boolean;

  /** `total` units; `enabled = false` makes it silent (tests). */
  constructor(total: number, label: string, enabled = true) {
    this.#total = Math.max(1, total);
    this.#label = label;
    this.#enabled = enabled;
    let tty = false;
    try {
      tty = Deno.stderr.isTerminal();
    } catch { /* not available */ }
    this.#tty = tty;
  }

  /** Report `done` units finished, with an optional note (e.g. the current task). */
  tick(done: number, note = ""): void {
    if (!this.#enabled) return;
    const frac = Math.min(1, done / this.#total);
    const el = (performance.now() - this.#start) / 1000;
    const eta = done > 0 ? el * (this.#total - done) / done : Infinity;
    const w = 24;
    const bar = "#".repeat(Math.round(frac * w)).padEnd(w, "-");
    const line = `${this.#label} [${bar}] ${done}/${this.#total} ${(frac * 100).toFixed(0)}% ` +
      `elapsed ${formatDuration(el)} ETA ${formatDuration(eta)} ${note}`;
    const enc = new TextEncoder();
    if (this.#tty) {
      Deno.stderr.writeSync(enc.encode(`\r\x1b[K${line}`));
      if (done >= this.#total) Deno.stderr.writeSync(enc.encode("\n"));
    } else {
      const dec = Math.floor(frac * 10);
      const now = performance.now();
      if (dec !== this.#lastDecile || now - this.#lastLine >= 30_000) {
        this.#lastDecile = dec;
        this.#lastLine = now;
        Deno.stderr.writeSync(enc.encode(line + "\n"));
      }
    }
  }
}
