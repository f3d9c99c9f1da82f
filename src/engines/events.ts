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
