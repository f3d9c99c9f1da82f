// Entry point of a local worker process: loads the model once, then runs partitions as they come,
// like a warm Lambda container. A crash here costs the engine a retry, never the job.
import { describeError } from '../../errors.js';
import '../../storage/register.js';
import { createWorkerContext } from '../../worker/context.js';
import { PartitionRunner } from '../../worker/partition-runner.js';
import type { FromWorker, ToWorker } from './protocol.js';

let runner: PartitionRunner | undefined;
const PROGRESS_MS = 200;

function send(message: FromWorker): void {
  process.send?.(message);
}

process.on('message', (message: ToWorker) => {
  void (async () => {
    if (message.type === 'init') {
      try {
        runner = new PartitionRunner(await createWorkerContext(message.job));
        send({ type: 'ready', modelLoadSeconds: runner.ctx.modelLoadSeconds });
      } catch (err) {
        send({ type: 'init-failed', error: describeError(err) });
      }
      return;
    }
    if (!runner) throw new Error('task before init');
    // Batch progress, at most every PROGRESS_MS: a fast model would otherwise flood the channel.
    let last = 0;
    const onBatch = (itemsDone: number, items: number) => {
      const now = Date.now();
      if (now - last < PROGRESS_MS && itemsDone < items) return;
      last = now;
      send({ type: 'progress', itemsDone, items });
    };
    try {
      const record = await runner.run(message.task, message.prefetch, onBatch);
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
