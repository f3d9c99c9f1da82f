import type { PlannedPartition } from '../plan/plan.js';
import { OUTPUT_FOLDERS } from '../storage/output-layout.js';
import type { Store } from '../storage/store.js';
import type { PartitionFailure } from '../worker/record.js';
import { mapBounded, READ_CONCURRENCY } from '../storage/bounded.js';
import { readJsonObject } from '../storage/json.js';
import { listKeys } from './records.js';

/** Where a partition's last failure is kept, under the job's output. @example failureKey('3') // 'failures/3.json' */
export const failureKey = (id: string): string => `${OUTPUT_FOLDERS.failures}/${id}.json`;

/** `failures/<id>.json`: a partition's failure, written by the worker's engine before it gives up or retries. */
export interface FailureFile extends PartitionFailure {
  /** Which run wrote it (the AWS execution's start time): an older run's failure is not this run's. */
  readonly run_started_at: string;
  readonly finished_at: string;
}

/**
 * Writes a partition's failure where Summarize can always read it, whatever the engine keeps of its
 * own results (a failed Distributed Map may export none).
 *
 * @example await writeFailure(output, { status: 'failed', partition: '3', ... , run_started_at, finished_at });
 */
export async function writeFailure(output: Store, failure: FailureFile): Promise<void> {
  await output.put(failureKey(failure.partition), `${JSON.stringify(failure, null, 2)}\n`);
}

/**
 * The failures of `partitions` written by the run that started at `runStartedAt`, by partition id:
 * `failures/` listed once, the files read concurrently (bounded).
 *
 * @example const failed = await readFailures(output, todo, init.task.startedAt);
 */
export async function readFailures(
  output: Store,
  partitions: readonly PlannedPartition[],
  runStartedAt: string,
): Promise<Map<string, FailureFile>> {
  const present = await listKeys(output, OUTPUT_FOLDERS.failures);
  const ids = partitions.map((p) => p.id).filter((id) => present.has(failureKey(id)));
  const files = await mapBounded(ids, READ_CONCURRENCY, async (id) => {
    try {
      return await readJsonObject<FailureFile>(output, failureKey(id));
    } catch {
      // A damaged failure file only loses the reason: the partition is still reported as failed.
      return undefined;
    }
  });
  return new Map(
    files.flatMap((f) => (f && f.run_started_at === runStartedAt ? [[f.partition, f] as const] : [])),
  );
}
