import type { ResolvedJob } from '../../job/spec.js';
import type { PlannedPartition } from '../../plan/plan.js';
import type { PartitionRecord } from '../../worker/record.js';
import type { PartitionTask } from '../../worker/run-partition.js';

/** Messages from the engine to a worker process: plain data only (design rule 3). */
export type ToWorker =
  | { readonly type: 'init'; readonly job: ResolvedJob }
  | {
      readonly type: 'task';
      readonly task: PartitionTask;
      /** The partition this worker will get next: it starts reading it while the task runs. */
      readonly prefetch?: PlannedPartition;
    };

/** Messages from a worker process to the engine. */
export type FromWorker =
  | { readonly type: 'ready'; readonly modelLoadSeconds: number }
  | { readonly type: 'init-failed'; readonly error: { code: string; message: string } }
  | { readonly type: 'done'; readonly record: PartitionRecord }
  | { readonly type: 'progress'; readonly itemsDone: number; readonly items: number }
  | {
      readonly type: 'failed';
      readonly partition: string;
      readonly error: { code: string; message: string };
    };
