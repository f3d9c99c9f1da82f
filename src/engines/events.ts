import type { PlannedPartition } from '../plan/plan.js';
import type { PartitionFailure, PartitionRecord } from '../worker/record.js';

/** What an engine reports while the map runs, for progress displays and tests. */
export type EngineEvent =
  | {
      readonly type: 'start';
      readonly partition: PlannedPartition;
      readonly attempt: number;
      readonly pid: number;
    }
  | { readonly type: 'done'; readonly record: PartitionRecord }
  | {
      readonly type: 'retry';
      readonly partition: PlannedPartition;
      readonly attempt: number;
      readonly error: { code: string; message: string };
      readonly delayMs: number;
    }
  | { readonly type: 'failed'; readonly failure: PartitionFailure }
  | {
      /** A partition's attempt moved on: sent as batches finish (at most a few times a second). */
      readonly type: 'progress';
      readonly partition: string;
      readonly attempt: number;
      /** Items of the partition done so far: predicted or failed. */
      readonly itemsDone: number;
      /** Items in the partition. */
      readonly items: number;
    };

/** The outcome of the map stage. */
export interface MapResult {
  readonly records: readonly PartitionRecord[];
  readonly failures: readonly PartitionFailure[];
  /** Attempts beyond the first, over all partitions. */
  readonly retries: number;
  /** Partitions never started because the error budget was spent first. */
  readonly skipped: number;
}

/** Error codes that no retry can fix: the same bytes give the same error. */
export const PERMANENT_ERRORS: ReadonlySet<string> = new Set([
  'E_CORRUPT',
  'E_UNSUPPORTED',
  'E_PICKLE_GLOBAL',
  'E_BINDING',
  'E_NOT_FOUND',
  'E_ACCESS_DENIED',
  'E_OPTION',
]);

/** Whether failures have exceeded the share of `total` partitions the job tolerates. */
export function budgetExceeded(failures: number, total: number, toleratedPercentage: number): boolean {
  return total > 0 && (failures / total) * 100 > toleratedPercentage;
}

/** Exponential backoff with full jitter: a delay in [0, base * 2^(attempt-1)], capped. */
export function backoffMs(attempt: number, baseMs: number, maxMs = 30_000, random = Math.random): number {
  return Math.round(random() * Math.min(maxMs, baseMs * 2 ** (attempt - 1)));
}
