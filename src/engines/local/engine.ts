import { DEFAULT_PARTITION_TIMEOUT_SECONDS, type ResolvedJob } from '../../job/spec.js';
import type { PlannedPartition } from '../../plan/plan.js';
import type { MapResult } from '../../summarize/map-result.js';
import { runMap, type Attempt, type MapControl, type MapEngine, type MapOptions } from '../map.js';
import { stopSpareWorkers } from './spare-workers.js';
import { WorkerProcess } from './worker-process.js';

/** Knobs of the local engine that are not part of the job. */
export type LocalEngineOptions = MapOptions;

/**
 * The embedded engine: a pool of `job.concurrency` child processes, each loading the model once, each
 * running one attempt at a time and reading its next partition during this one's inference. A worker
 * that crashes or times out is replaced. Retries, backoff and the error budget are the shared policy's
 * ({@link runMap}).
 *
 * @example const result = await runMap(job, partitions, localEngine());
 */
export function localEngine(): MapEngine {
  return {
    name: 'local',
    async run(control: MapControl): Promise<void> {
      const { job } = control;
      const slots = Math.max(1, Math.min(job.concurrency, control.ready));
      const timeoutMs = (job.partitionTimeoutSeconds ?? DEFAULT_PARTITION_TIMEOUT_SECONDS) * 1000;
      const slot = async (): Promise<void> => {
        let worker: WorkerProcess | undefined;
        try {
          // The first item is taken without waiting, so every slot has taken its worker process (a spare
          // one, when `cai run` forked them early) by the time the slots are all started.
          let item: Attempt | undefined = control.take(1)[0] ?? (await control.next());
          while (item) {
            if (!worker || worker.dead) {
              worker = new WorkerProcess(job, control.emit);
              try {
                await worker.ready;
              } catch (err) {
                control.giveBack([item]);
                control.abort(err);
                return;
              }
            }
            control.emit({
              type: 'start',
              partition: item.partition,
              attempt: item.attempt,
              pid: worker.pid,
            });
            // Reserve this slot's next partition so the worker reads it during this one's inference; only
            // while there is work for every slot, so no slot idles at the tail while another holds two.
            const ahead = control.ready >= slots ? control.take(1)[0] : undefined;
            const result = await worker.attempt(item, timeoutMs, ahead?.partition);
            control.settle(item, result);
            if (ahead && control.stopped) control.giveBack([ahead]);
            item = ahead && !control.stopped ? ahead : await control.next();
          }
        } finally {
          await worker?.close();
        }
      };
      const running = Array.from({ length: slots }, slot);
      // Spares this job has no slot for (fewer partitions or a smaller --concurrency than cores) stop now.
      stopSpareWorkers();
      await Promise.all(running);
    },
  };
}

/**
 * Runs the map on the local engine: {@link runMap} with {@link localEngine}.
 *
 * @example const result = await runLocalMap(job, partitions, { onEvent: console.log });
 */
export function runLocalMap(
  job: ResolvedJob,
  partitions: readonly PlannedPartition[],
  options: LocalEngineOptions = {},
): Promise<MapResult> {
  return runMap(job, partitions, localEngine(), options);
}
