// Summarize for a detached run: a job that depends on the array (`--dependency=afterany:<array>`)
// builds the map's outcome from what the tasks left in the output, so nothing waits on a login session.
import { performance } from 'node:perf_hooks';
import type { PlannedPartition } from '../../plan/plan.js';
import type { Store } from '../../storage/store.js';
import { summarize, type JobSummary } from '../../summarize/summarize.js';
import type { PartitionFailure, PartitionRecord } from '../../worker/record.js';
import { outputKeys } from '../../worker/run-partition.js';
import { ErrorCodes } from '../../errors.js';
import type { TaskManifest } from './script.js';
import { arrayStates } from './commands.js';
import { readSlurmState } from './rounds.js';
import { roundKeys } from './script.js';
import type { TaskFailure } from './task.js';

async function readJson<T>(store: Store, key: string): Promise<T | undefined> {
  if (!(await store.head(key))) return undefined;
  return JSON.parse(new TextDecoder().decode(await store.get(key))) as T;
}

/**
 * Summarizes round `round` of the job in `output` once its array has ended: its partitions with a
 * record are this run's, the others failed with the error their task wrote or the task's Slurm state.
 * A detached run does not resubmit: running the same job again (`cai slurm run`) resumes what is left.
 *
 * @example const summary = await summarizeRound(output, 1);
 */
export async function summarizeRound(output: Store, round: number): Promise<JobSummary> {
  const t0 = performance.now();
  const state = await readSlurmState(output);
  const submitted = state.rounds.find((r) => r.round === round);
  const manifest = await readJson<TaskManifest>(output, roundKeys(round).manifest);
  const plan = await readJson<PlannedPartition[]>(output, 'plan.json');
  if (!submitted || !manifest || !plan)
    throw new Error(
      `${output.describe('slurm')}: no round ${round} to summarize (state.json, tasks.json, plan.json)`,
    );
  const { job } = manifest;
  const states = await arrayStates(submitted.jobId, submitted.tasks);
  const records: PartitionRecord[] = [];
  const failures: PartitionFailure[] = [];
  for (const [task, attempts] of manifest.tasks.entries()) {
    const log = `${submitted.logDir}/${submitted.jobId}_${task}.out`;
    for (const { partition, attempt } of attempts) {
      const record = await readJson<PartitionRecord>(
        output,
        outputKeys(partition.id, job.predictionsFormat).record,
      );
      if (record) {
        records.push(record);
        continue;
      }
      const failed = await readJson<TaskFailure>(output, `${roundKeys(round).failed}/${partition.id}.json`);
      const s = states.get(task)?.state ?? 'UNKNOWN';
      failures.push({
        status: 'failed',
        partition: partition.id,
        data_path: partition.key,
        attempts: attempt,
        error: failed
          ? { code: failed.code, message: failed.message }
          : {
              code: s === 'TIMEOUT' ? ErrorCodes.timeout : ErrorCodes.workerCrash,
              message: `Slurm array task ${submitted.jobId}_${task} ended ${s} before partition ${partition.id} had a record; see its log ${log}`,
            },
        log,
      });
    }
  }
  const wallSeconds =
    (Date.now() - Date.parse(submitted.submittedAt)) / 1000 + (performance.now() - t0) / 1000;
  return summarize({
    output,
    plan,
    format: job.predictionsFormat,
    map: { records, failures, retries: 0, skipped: 0 },
    resumed: plan.length - submitted.partitions,
    startedAt: new Date(submitted.submittedAt),
    wallSeconds,
    mapSeconds: wallSeconds,
    job: {
      input: job.input,
      model: job.model,
      output: job.output,
      engine: 'slurm',
      batchSize: job.batchSize,
      concurrency: submitted.tasks,
      threads: job.threads,
      toleratedFailurePercentage: job.toleratedFailurePercentage,
    },
  });
}
