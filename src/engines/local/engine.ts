import { CaiError } from '../../errors.js';
import type { ResolvedJob } from '../../job/spec.js';
import type { PlannedPartition } from '../../plan/plan.js';
import type { PartitionFailure, PartitionRecord } from '../../worker/record.js';
import { backoffMs, budgetExceeded, PERMANENT_ERRORS, type EngineEvent, type MapResult } from '../events.js';
import { stopSpareWorkers } from './spare-workers.js';
import { WorkerProcess, type AttemptResult } from './worker-process.js';

/** Knobs of the local engine that are not part of the job. */
export interface LocalEngineOptions {
  /** Base delay of the retry backoff. */
  readonly retryBaseMs?: number;
  readonly onEvent?: (event: EngineEvent) => void;
}

interface Pending {
  readonly partition: PlannedPartition;
  readonly attempt: number;
}

/**
 * The embedded engine: a pool of `job.concurrency` child processes, each loading the model once. Each
 * partition gets up to `maxAttempts` tries with jittered exponential backoff; a worker that crashes or
 * times out is replaced; once failures exceed `toleratedFailurePercentage` no new partition starts and
 * the map ends, as a Distributed Map does.
 *
 * @example const result = await runLocalMap(job, partitions, { onEvent: console.log });
 */
export async function runLocalMap(
  job: ResolvedJob,
  partitions: readonly PlannedPartition[],
  options: LocalEngineOptions = {},
): Promise<MapResult> {
  const retryBaseMs = options.retryBaseMs ?? 500;
  const emit = options.onEvent ?? (() => undefined);
  const total = partitions.length;
  const queue: Pending[] = partitions.map((partition) => ({ partition, attempt: 1 }));
  const records: PartitionRecord[] = [];
  const failures: PartitionFailure[] = [];
  let retries = 0;
  let waiting = 0; // retries sleeping in their backoff
  let stop = false;
  let fatal: unknown;
  let sleepers: (() => void)[] = [];
  const changed = () => {
    const wake = sleepers;
    sleepers = [];
    for (const w of wake) w();
  };

  const next = async (): Promise<Pending | undefined> => {
    for (;;) {
      if (stop) return undefined;
      const item = queue.shift();
      if (item) return item;
      if (waiting === 0) return undefined;
      await new Promise<void>((resolve) => sleepers.push(resolve));
    }
  };

  const settle = (item: Pending, result: AttemptResult): void => {
    if (result.ok) {
      records.push(result.record);
      emit({ type: 'done', record: result.record });
      return;
    }
    const permanent = PERMANENT_ERRORS.has(result.error.code);
    if (!permanent && item.attempt < job.maxAttempts && !stop) {
      const delayMs = backoffMs(item.attempt, retryBaseMs);
      retries++;
      waiting++;
      emit({ type: 'retry', partition: item.partition, attempt: item.attempt, error: result.error, delayMs });
      const again = { partition: item.partition, attempt: item.attempt + 1 };
      setTimeout(() => {
        waiting--;
        queue.push(again);
        changed();
      }, delayMs);
      return;
    }
    const failure: PartitionFailure = {
      status: 'failed',
      partition: item.partition.id,
      data_path: item.partition.key,
      attempts: item.attempt,
      error: result.error,
    };
    failures.push(failure);
    emit({ type: 'failed', failure });
    if (budgetExceeded(failures.length, total, job.toleratedFailurePercentage)) {
      stop = true;
      changed();
    }
  };

  const slots = Math.max(1, Math.min(job.concurrency, total));
  const slot = async (): Promise<void> => {
    let worker: WorkerProcess | undefined;
    try {
      // The first item is taken without waiting, so every slot has taken its worker process (a spare
      // one, when `cai run` forked them early) by the time the slots are all started.
      let item = queue.shift() ?? (await next());
      while (item) {
        if (!worker || worker.dead) {
          worker = new WorkerProcess(job, emit);
          try {
            await worker.ready;
          } catch (err) {
            // A model that cannot load fails every partition the same way: stop the job.
            fatal ??= err;
            stop = true;
            queue.unshift(item);
            changed();
            return;
          }
        }
        emit({ type: 'start', partition: item.partition, attempt: item.attempt, pid: worker.pid });
        // Reserve this slot's next partition so the worker reads it during this one's inference; only
        // while there is work for every slot, so no slot idles at the tail while another holds two.
        const ahead = queue.length >= slots ? queue.shift() : undefined;
        const result = await worker.attempt(
          { partition: item.partition, attempt: item.attempt },
          job.partitionTimeoutSeconds * 1000,
          ahead?.partition,
        );
        settle(item, result);
        if (ahead && stop) queue.unshift(ahead);
        item = ahead && !stop ? ahead : await next();
      }
    } finally {
      await worker?.close();
      changed();
    }
  };

  const running = Array.from({ length: slots }, slot);
  // Spares this job has no slot for (fewer partitions or a smaller --concurrency than cores) stop now.
  stopSpareWorkers();
  await Promise.all(running);
  if (fatal) throw fatal instanceof CaiError ? fatal : new CaiError('E_WORKER', job.model, String(fatal));
  const done = new Set([...records.map((r) => r.partition), ...failures.map((f) => f.partition)]);
  return { records, failures, retries, skipped: partitions.filter((p) => !done.has(p.id)).length };
}
