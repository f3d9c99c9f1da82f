// The summary of a detached run: built by its last chain step (chain.ts) from what every round of the
// chain left in the output, so nothing waits on a login session.
import { performance } from 'node:perf_hooks';
import type { PlannedPartition } from '../../plan/plan.js';
import type { Store } from '../../storage/store.js';
import { summarize, type JobSummary } from '../../summarize/summarize.js';
import type { PartitionFailure, PartitionRecord } from '../../worker/record.js';
import type { RoundState } from './rounds.js';
import type { TaskManifest } from './script.js';

/** What the rounds of a detached chain came to. */
export interface ChainResult {
  readonly job: TaskManifest['job'];
  /** The chain's rounds, first to last. */
  readonly rounds: readonly RoundState[];
  readonly plan: readonly PlannedPartition[];
  readonly records: readonly PartitionRecord[];
  readonly failures: readonly PartitionFailure[];
  /** Attempts after a partition's first: the partitions of rounds 2, 3... of the chain. */
  readonly retries: number;
  /** Distinct partitions the chain ran (its first round's, and those of arrays it adopted). */
  readonly partitions?: number;
  /** Why the user cancelled the chain's work (a scancel of an array task), if they did. */
  readonly cancelled?: string;
}

/**
 * Writes the job summary of a detached chain, as `cai slurm run` would have written it attached.
 * @example const summary = await summarizeChain(output, result);
 */
export async function summarizeChain(output: Store, result: ChainResult): Promise<JobSummary> {
  const t0 = performance.now();
  const { job, rounds, plan } = result;
  const first = rounds[0];
  const wallSeconds = (Date.now() - Date.parse(first.submittedAt)) / 1000 + (performance.now() - t0) / 1000;
  return summarize({
    output,
    plan: [...plan],
    format: job.predictionsFormat,
    map: {
      records: [...result.records],
      failures: [...result.failures],
      retries: result.retries,
      // Every partition of the chain ends with a record or a failure, unless the user cancelled it.
      skipped: 0,
      ...(result.cancelled ? { cancelled: result.cancelled } : {}),
    },
    resumed: plan.length - (result.partitions ?? first.partitions),
    startedAt: new Date(first.submittedAt),
    wallSeconds,
    mapSeconds: wallSeconds,
    job: {
      input: job.input,
      model: job.model,
      output: job.output,
      engine: 'slurm',
      batchSize: job.batchSize,
      concurrency: first.tasks,
      threads: job.threads,
      toleratedFailurePercentage: job.toleratedFailurePercentage,
      sixteenBit: job.preprocess?.sixteenBit,
    },
  });
}
