import cliProgress from 'cli-progress';
import type { EngineEvent } from '../engines/events.js';
import type { PlannedPartition } from '../plan/plan.js';

/** How a {@link Progress} writes: a live bar on a terminal, plain lines elsewhere (CI logs, pipes). */
export interface ProgressOptions {
  readonly stream?: NodeJS.WriteStream;
  /** Draw the live bar; by default when the stream is a terminal and CI is not set. */
  readonly tty?: boolean;
  /** Seconds between plain progress lines when not on a terminal. */
  readonly plainEverySeconds?: number;
}

const duration = (s: number): string => {
  if (!Number.isFinite(s)) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
};

/** Shows the cursor and turns line wrap back on: what a live bar turned off. */
const RESTORE_TERMINAL = '\x1b[?25h\x1b[?7h';

/**
 * Breaks text into lines of at most `width` columns at spaces (a word longer than a line is split), so
 * a message written while the live bar has line wrap off is wrapped, not cut at the terminal's edge.
 *
 * @example wrapText('partition 7: FAILED after 3 attempt(s)', 20) // 'partition 7: FAILED\nafter 3 attempt(s)'
 */
export function wrapText(text: string, width: number): string {
  if (width < 8) return text;
  return text
    .split('\n')
    .map((line) => {
      const out: string[] = [];
      let cur = '';
      for (const word of line.split(' ')) {
        for (let w = word; ;) {
          const joined = cur ? `${cur} ${w}` : w;
          if (joined.length <= width) {
            cur = joined;
            break;
          }
          if (cur) {
            out.push(cur);
            cur = '';
            continue;
          }
          out.push(w.slice(0, width));
          w = w.slice(width);
          if (!w) break;
        }
      }
      out.push(cur);
      return out.join('\n');
    })
    .join('\n');
}

/**
 * Live progress for `cai run`: a bar of items done of the job's items, items/s, elapsed time and ETA,
 * moved as batches finish (the workers' `progress` events), with partitions done, failed and retrying.
 * Items are known from the plan where the source knows them (images, FITS, Parquet); for tensor files
 * each partition's count arrives with its first batch, and the rest are estimated from their bytes.
 *
 * @example const p = new Progress(); runJob(spec, { onPlan: (x) => p.begin(x.todo, x.partitions.length, x.pending), onEvent: (e) => p.event(e) })
 */
export class Progress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly plainEvery: number;
  private pending: readonly PlannedPartition[] = [];
  /** Items of each partition, once known. */
  private readonly itemsOf = new Map<string, number>();
  /** Items done of partitions still running. */
  private readonly running = new Map<string, number>();
  private total = 0;
  private done = 0;
  private failed = 0;
  private retrying = 0;
  private itemsDone = 0;
  private started = Date.now();
  private lastPlain = 0;
  private multibar?: cliProgress.MultiBar;
  private bar?: cliProgress.SingleBar;

  constructor(options: ProgressOptions | NodeJS.WriteStream = {}) {
    const o: ProgressOptions = 'write' in options ? { stream: options } : options;
    this.stream = o.stream ?? process.stderr;
    this.tty = o.tty ?? (Boolean(this.stream.isTTY) && !process.env.CI);
    this.plainEvery = o.plainEverySeconds ?? 10;
  }

  /** Starts counting for `todo` partitions of `planned` (`pending`: the partitions to run, when known). */
  begin(todo: number, planned: number, pending: readonly PlannedPartition[] = []): void {
    this.total = todo;
    this.pending = pending;
    for (const p of pending) if (p.items !== undefined) this.itemsOf.set(p.id, p.items);
    this.started = Date.now();
    const resumed = planned - todo;
    this.line(
      `planned ${planned} partitions${resumed ? `, ${resumed} already complete (resuming)` : ''}; running ${todo}`,
    );
    // Ctrl-C or SIGTERM: the workers are killed on purpose, so what they report next (a crash, a retry,
    // a failure) is not news and is not printed; the stop message says what happened. A bar ends first.
    process.prependListener('SIGINT', this.stopOnSignal);
    process.prependListener('SIGTERM', this.stopOnSignal);
    if (this.tty && todo > 0) {
      this.multibar = new cliProgress.MultiBar(
        {
          stream: this.stream,
          format:
            '{bar} {percentage}% | {value}/{totalText} items | {rate} items/s | {elapsed} ETA {etaText} | {done}/{partitions} partitions{troubles}',
          // Fits 80 columns until something fails or the job passes an hour.
          barsize: 16,
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          fps: 5,
          autopadding: true,
        },
        cliProgress.Presets.shades_classic,
      );
      this.bar = this.multibar.create(Math.max(1, this.estimate().items), 0, this.payload());
      // The bar hides the cursor and turns line wrap off: whatever ends the process (Ctrl-C, SIGTERM, an
      // error, an uncaught exception, process.exit) gives the terminal back. The signal listeners go
      // first, so the stop message is written after the bar is gone, with wrap on again.
      process.on('exit', this.restoreOnExit);
    }
  }

  private signalled = false;

  private readonly stopOnSignal = (): void => {
    this.signalled = true;
    this.end();
  };

  private readonly restoreOnExit = (): void => {
    // At exit nothing asynchronous runs: a terminal's writes are synchronous, so this one lands.
    if (this.bar) this.stream.write(RESTORE_TERMINAL);
  };

  /** Feeds one engine event. */
  event(e: EngineEvent): void {
    if (this.signalled && (e.type === 'retry' || e.type === 'failed')) return;
    if (e.type === 'progress') {
      this.itemsOf.set(e.partition, e.items);
      this.running.set(e.partition, e.itemsDone);
    } else if (e.type === 'done') {
      this.done++;
      this.itemsOf.set(e.record.partition, e.record.items);
      this.running.delete(e.record.partition);
      this.itemsDone += e.record.items;
      if (e.record.attempt > 1) this.retrying = Math.max(0, this.retrying - 1);
      if (!this.tty)
        this.line(
          `partition ${e.record.partition}: ${e.record.items} items in ${e.record.timings.total.toFixed(2)} s${e.record.attempt > 1 ? ` (attempt ${e.record.attempt})` : ''}`,
        );
    } else if (e.type === 'retry') {
      this.retrying++;
      this.running.delete(e.partition.id);
      this.line(
        `partition ${e.partition.id}: attempt ${e.attempt} failed (${e.error.code}: ${e.error.message}); retrying in ${(e.delayMs / 1000).toFixed(1)} s`,
      );
    } else if (e.type === 'failed') {
      this.failed++;
      this.running.delete(e.failure.partition);
      // Its items will never be done: they leave the total, so the bar still ends full.
      this.itemsOf.set(e.failure.partition, 0);
      if (e.failure.attempts > 1) this.retrying = Math.max(0, this.retrying - 1);
      this.line(
        `partition ${e.failure.partition}: FAILED after ${e.failure.attempts} attempt(s): ${e.failure.error.message}`,
      );
    }
    this.update();
  }

  /** Ends the live bar and gives the terminal back (cursor shown, line wrap on); safe to call twice. */
  end(): void {
    if (this.bar) {
      this.update();
      this.multibar?.stop();
      this.bar = undefined;
      this.multibar = undefined;
      this.stream.write(RESTORE_TERMINAL);
    }
    process.off('SIGINT', this.stopOnSignal);
    process.off('SIGTERM', this.stopOnSignal);
    process.off('exit', this.restoreOnExit);
  }

  /** Items done so far, with the partitions still running. */
  private doneNow(): number {
    let n = this.itemsDone;
    for (const v of this.running.values()) n += v;
    return n;
  }

  /** The job's items: known counts, plus the unknown partitions' bytes at the known items per byte. */
  private estimate(): { items: number; exact: boolean } {
    let known = 0;
    let knownBytes = 0;
    let unknownBytes = 0;
    let unknown = 0;
    for (const p of this.pending) {
      const n = this.itemsOf.get(p.id);
      if (n === undefined) {
        unknown++;
        unknownBytes += p.bytes;
      } else {
        known += n;
        if (n > 0) knownBytes += p.bytes;
      }
    }
    if (unknown === 0) return { items: known, exact: true };
    if (known === 0 || knownBytes === 0) return { items: 0, exact: false };
    return { items: Math.round(known + (unknownBytes * known) / knownBytes), exact: false };
  }

  private rate(): number {
    const secs = (Date.now() - this.started) / 1000;
    return secs > 0 ? this.doneNow() / secs : 0;
  }

  private payload(): Record<string, string | number> {
    const { items, exact } = this.estimate();
    const rate = this.rate();
    const left = Math.max(0, items - this.doneNow());
    return {
      totalText: items === 0 ? '?' : exact ? String(items) : `~${items}`,
      rate: rate.toFixed(0),
      elapsed: duration((Date.now() - this.started) / 1000),
      etaText: items > 0 && rate > 0 ? duration(left / rate) : '?',
      done: this.done,
      partitions: this.total,
      troubles: this.failed || this.retrying ? `, ${this.failed} failed, ${this.retrying} retrying` : '',
    };
  }

  private update(): void {
    if (this.bar) {
      const { items } = this.estimate();
      const done = this.doneNow();
      this.bar.setTotal(Math.max(1, items, done));
      this.bar.update(done, this.payload());
      return;
    }
    if (this.tty || this.total === 0) return;
    const now = Date.now();
    if (now - this.lastPlain < this.plainEvery * 1000) return;
    this.lastPlain = now;
    const p = this.payload();
    this.stream.write(
      `progress: ${this.doneNow()}/${p.totalText} items, ${p.rate} items/s, ${p.elapsed} elapsed, ETA ${p.etaText}; ${p.done}/${p.partitions} partitions${p.troubles}\n`,
    );
  }

  private line(text: string): void {
    if (this.multibar) this.multibar.log(`${wrapText(text, this.stream.columns || 80)}\n`);
    else this.stream.write(`${text}\n`);
  }
}
