// What the map stage hands to Summarize: engines return it, Summarize reads it. It lives with its reader,
// below the engines, because engines (runJob's, the AWS Summarize handler) call Summarize.
import type { PartitionFailure, PartitionRecord } from '../worker/record.js';

/**
 * The outcome of the map stage.
 * @example const map: MapResult = { records, failures: [], retries: 0, skipped: 0 };
 */
export interface MapResult {
  readonly records: readonly PartitionRecord[];
  readonly failures: readonly PartitionFailure[];
  /** Attempts beyond the first, over all partitions. */
  readonly retries: number;
  /** Partitions never started because the error budget was spent first. */
  readonly skipped: number;
  /** Why the user cancelled the map outside the run (e.g. `scancel` of its Slurm array), if they did. */
  readonly cancelled?: string;
}
