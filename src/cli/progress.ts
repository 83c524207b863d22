// A progress bar for long work: redraws one line on a terminal, prints periodic lines
// otherwise (CI logs), and stays silent when disabled (--json).
export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  enabled?: boolean;
  unit?: string;
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return m >= 60
    ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`
    : `${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}

export class Progress {
  private done = 0;
  private readonly start = performance.now();
  private lastDraw = 0;
  private lastLine = -1;
  private fields: Record<string, string | number> = {};
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly enabled: boolean;
  private readonly unit: string;

  constructor(
    private readonly label: string,
    private readonly total: number,
    o: ProgressOptions = {},
  ) {
    this.stream = o.stream ?? process.stderr;
    this.tty = Boolean(this.stream.isTTY);
    this.enabled = o.enabled ?? true;
    this.unit = o.unit ?? 'it';
  }

  /** Advance by n and update the displayed fields (e.g. loss, accuracy). */
  tick(n = 1, fields?: Record<string, string | number>): void {
    this.done += n;
    if (fields) this.fields = { ...this.fields, ...fields };
    if (!this.enabled) return;
    const now = performance.now();
    if (this.tty) {
      if (now - this.lastDraw > 100 || this.done >= this.total) {
        this.lastDraw = now;
        this.stream.write('\r' + this.line() + '\x1b[K');
      }
    } else {
      const decile = Math.floor((10 * this.done) / Math.max(1, this.total));
      if (decile > this.lastLine) {
        this.lastLine = decile;
        this.stream.write(this.line() + '\n');
      }
    }
  }

  private line(): string {
    const elapsed = (performance.now() - this.start) / 1000;
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const rate = this.done / Math.max(elapsed, 1e-9);
    const eta = frac > 0 ? (elapsed * (1 - frac)) / frac : Infinity;
    const extra = Object.entries(this.fields)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? (Math.abs(v) < 10 ? v.toFixed(4) : v.toFixed(1)) : v}`)
      .join('  ');
    return `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(100 * frac).toFixed(0).padStart(3)}% ${this.done}/${this.total} ${rate.toFixed(rate < 10 ? 2 : 0)} ${this.unit}/s elapsed ${fmtTime(elapsed)} eta ${fmtTime(eta)}${extra ? '  ' + extra : ''}`;
  }

  /** Finish the bar (newline on a terminal). */
  finish(): void {
    if (!this.enabled) return;
    if (this.tty) this.stream.write('\r' + this.line() + '\x1b[K\n');
    else if (this.lastLine < 10) this.stream.write(this.line() + '\n');
  }
}

/**
 * Progress bars for a training loop, one per epoch: `onBatch` opens the epoch's bar at its
 * first batch and shows an exponentially smoothed loss under `metric`; `finish` closes it
 * (call it before printing the epoch's summary line).
 */
export function epochBars(epochs: number, { enabled = true, metric = 'loss' }: { enabled?: boolean; metric?: string } = {}) {
  let bar: Progress | null = null;
  let smooth = NaN;
  return {
    onBatch(epoch: number, b: number, batches: number, loss: number): void {
      if (b === 0) {
        bar = new Progress(`epoch ${epoch}/${epochs}`, batches, { unit: 'batch', enabled });
        smooth = NaN;
      }
      smooth = Number.isNaN(smooth) ? loss : 0.98 * smooth + 0.02 * loss;
      bar?.tick(1, { [metric]: smooth });
    },
    finish(): void {
      bar?.finish();
    },
  };
}
