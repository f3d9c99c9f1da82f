// Runs partitions one after another in one process, reading the next while the current one runs. The
// local pool's worker process and a Slurm array task both run their partitions through this.
import type { PartitionStream } from '../formats/source.js';
import type { PlannedPartition } from '../formats/planned-partition.js';
import type { WorkerContext } from './context.js';
import type { PartitionRecord } from './record.js';
import { openPartition, runPartition, type BatchListener, type PartitionTask } from './run-partition.js';

/**
 * A process's partition loop: `run(task, next)` runs one attempt and starts opening `next` at once, so
 * its reading overlaps this one's inference.
 *
 * @example
 * const runner = new PartitionRunner(await createWorkerContext(job));
 * for (const [i, t] of tasks.entries()) await runner.run(t, tasks[i + 1]?.partition);
 */
export class PartitionRunner {
  // Partitions opened ahead of their turn.
  private readonly prefetched = new Map<string, Promise<PartitionStream>>();

  constructor(readonly ctx: WorkerContext) {}

  /** Runs one attempt (throws what runPartition throws); opens `prefetch` meanwhile. */
  async run(
    task: PartitionTask,
    prefetch?: PlannedPartition,
    onBatch?: BatchListener,
  ): Promise<PartitionRecord> {
    const id = task.partition.id;
    const opened = this.prefetched.get(id);
    this.prefetched.delete(id);
    if (prefetch && !this.prefetched.has(prefetch.id)) {
      const next = openPartition(this.ctx, prefetch);
      // A prefetch that fails is reported when its partition runs (and then opened afresh on retry).
      next.catch(() => undefined);
      this.prefetched.set(prefetch.id, next);
    }
    return runPartition(this.ctx, task, opened, onBatch);
  }

  /** Forgets a partition opened ahead that will not run here (its stream's memory goes back). */
  drop(id: string): void {
    const opened = this.prefetched.get(id);
    this.prefetched.delete(id);
    opened?.then((s) => s.release?.()).catch(() => undefined);
  }
}
