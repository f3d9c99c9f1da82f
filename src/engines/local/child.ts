// Entry point of a local worker process: loads the model once, then runs partitions as they come,
// like a warm Lambda container. A crash here costs the engine a retry, never the job.
import { describeError } from '../../errors.js';
import '../../storage/register.js';
import { createWorkerContext, type WorkerContext } from '../../worker/context.js';
import type { PartitionStream } from '../../formats/source.js';
import { openPartition, runPartition } from '../../worker/run-partition.js';
import type { FromWorker, ToWorker } from './protocol.js';

let ctx: WorkerContext | undefined;
const PROGRESS_MS = 200;
// Partitions opened ahead of their turn, so reading overlaps the current partition's inference.
const prefetched = new Map<string, Promise<PartitionStream>>();

function send(message: FromWorker): void {
  process.send?.(message);
}

process.on('message', (message: ToWorker) => {
  void (async () => {
    if (message.type === 'init') {
      try {
        ctx = await createWorkerContext(message.job);
        send({ type: 'ready', modelLoadSeconds: ctx.modelLoadSeconds });
      } catch (err) {
        send({ type: 'init-failed', error: describeError(err) });
      }
      return;
    }
    if (!ctx) throw new Error('task before init');
    const id = message.task.partition.id;
    const opened = prefetched.get(id);
    prefetched.delete(id);
    const ahead = message.prefetch;
    if (ahead && !prefetched.has(ahead.id)) {
      const next = openPartition(ctx, ahead);
      // A prefetch that fails is reported when its partition runs (and then opened afresh on retry).
      next.catch(() => undefined);
      prefetched.set(ahead.id, next);
    }
    // Batch progress, at most every PROGRESS_MS: a fast model would otherwise flood the channel.
    let last = 0;
    const onBatch = (itemsDone: number, items: number) => {
      const now = Date.now();
      if (now - last < PROGRESS_MS && itemsDone < items) return;
      last = now;
      send({ type: 'progress', itemsDone, items });
    };
    try {
      const record = await runPartition(ctx, message.task, opened, onBatch);
      send({ type: 'done', record });
    } catch (err) {
      send({ type: 'failed', partition: message.task.partition.id, error: describeError(err) });
    }
  })();
});

// The engine going away (killed, Ctrl-C) must not leave orphaned workers behind.
process.on('disconnect', () => process.exit(0));
// Ctrl-C reaches the whole process group: the engine decides how workers stop (it kills them, then
// removes their temporary files), so a worker must not die on its own halfway through a write.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => undefined);
