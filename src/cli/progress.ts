import type { EngineEvent } from '../engines/events.js';

/**
 * Live progress for `cai run`: one line redrawn in place on a terminal, plain lines otherwise (CI
 * logs, pipes). Shows partitions done/failed/retrying, items/s and an ETA.
 */
export class Progress {
  private total = 0;
  private done = 0;
  private failed = 0;
  private retrying = 0;
  private items = 0;
  private itemsPerPartition = 0;
  private started = Date.now();
  private readonly tty: boolean;

  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(stream.isTTY) && !process.env.CI;
  }

  /** Starts counting for `todo` partitions. */
  begin(todo: number, planned: number): void {
    this.total = todo;
    this.started = Date.now();
    const resumed = planned - todo;
    this.line(
      `planned ${planned} partitions${resumed ? `, ${resumed} already complete (resuming)` : ''}; running ${todo}`,
    );
  }

  /** Feeds one engine event. */
  event(e: EngineEvent): void {
    if (e.type === 'done') {
      this.done++;
      this.items += e.record.items;
      this.itemsPerPartition = this.items / this.done;
      if (e.record.attempt > 1) this.retrying = Math.max(0, this.retrying - 1);
      if (!this.tty)
        this.line(
          `partition ${e.record.partition}: ${e.record.items} items in ${e.record.timings.total.toFixed(2)} s${e.record.attempt > 1 ? ` (attempt ${e.record.attempt})` : ''}`,
        );
    } else if (e.type === 'retry') {
      this.retrying++;
      this.line(
        `partition ${e.partition.id}: attempt ${e.attempt} failed (${e.error.code}: ${e.error.message}); retrying in ${(e.delayMs / 1000).toFixed(1)} s`,
      );
    } else if (e.type === 'failed') {
      this.failed++;
      if (e.failure.attempts > 1) this.retrying = Math.max(0, this.retrying - 1);
      this.line(
        `partition ${e.failure.partition}: FAILED after ${e.failure.attempts} attempt(s): ${e.failure.error.message}`,
      );
    }
    if (this.tty) this.redraw();
  }

  /** Ends the live line. */
  end(): void {
    if (this.tty) this.stream.write('\n');
  }

  private status(): string {
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? this.items / secs : 0;
    const left = this.total - this.done - this.failed;
    const eta = rate > 0 && this.itemsPerPartition > 0 ? (left * this.itemsPerPartition) / rate : NaN;
    return `partitions ${this.done}/${this.total} done, ${this.failed} failed, ${this.retrying} retrying | ${rate.toFixed(0)} items/s | ETA ${Number.isFinite(eta) ? `${eta.toFixed(0)} s` : '?'}`;
  }

  private redraw(): void {
    this.stream.write(`\r\x1b[2K${this.status()}`);
  }

  private line(text: string): void {
    if (this.tty) {
      this.stream.write(`\r\x1b[2K${text}\n`);
      this.redraw();
    } else this.stream.write(`${text}\n`);
  }
}
