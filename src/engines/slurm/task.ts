// One Slurm array task (`cai slurm task <manifest> <index>`): loads the model once and runs its share of
// the round's partitions through the same partition loop as a local worker process.
import { describeError } from '../../errors.js';
import { readJson } from '../../storage/json.js';
import { openParent, openStore } from '../../storage/open.js';
import { createWorkerContext } from '../../worker/context.js';
import { PartitionRunner } from '../../worker/partition-runner.js';
import { outputKeys } from '../../worker/run-partition.js';
import { roundKeys, type TaskManifest } from './script.js';

/** What a task writes when a partition fails inside it (the engine reads it as the attempt's error). */
export interface TaskFailure {
  readonly partition: string;
  readonly attempt: number;
  readonly code: string;
  readonly message: string;
  /** The model could not be loaded: nothing in this job can run. */
  readonly init?: boolean;
}

/**
 * Runs task `index` of a round. A partition whose record and predictions already exist is skipped: a
 * task requeued after preemption (or run twice) never writes a prediction twice. A partition that fails
 * leaves `<round>/failed/<id>.json` with its error, for the submitter's retry policy.
 *
 * @example await runSlurmTask('/scratch/out/slurm/round-1/tasks.json', 3);
 */
export async function runSlurmTask(manifestUri: string, index: number): Promise<void> {
  const [dir, key] = await openParent(manifestUri, { s3Endpoint: process.env.AWS_ENDPOINT_URL_S3 });
  const manifest = await readJson<TaskManifest>(dir, key);
  const attempts = manifest.tasks[index];
  if (!attempts) throw new Error(`${manifestUri} has no task ${index} (it has ${manifest.tasks.length})`);
  const { job } = manifest;
  const output = await openStore(job.output, { s3Endpoint: job.s3Endpoint });
  const failedDir = roundKeys(manifest.round).failed;
  const fail = async (failure: TaskFailure) => {
    await output.put(`${failedDir}/${failure.partition}.json`, `${JSON.stringify(failure)}\n`);
    log(`partition ${failure.partition}: FAILED (${failure.code}: ${failure.message})`);
  };
  const todo = [];
  for (const a of attempts) {
    const keys = outputKeys(a.partition.id, job.predictionsFormat);
    if ((await output.head(keys.record)) && (await output.head(keys.predictions)))
      log(
        `partition ${a.partition.id}: already has its record (written by an earlier run of this task, requeued, or by another array); skipped`,
      );
    else todo.push(a);
  }
  if (!todo.length) return;
  let runner: PartitionRunner;
  try {
    runner = new PartitionRunner(await createWorkerContext(job));
  } catch (err) {
    const { code, message } = describeError(err);
    for (const a of todo)
      await fail({ partition: a.partition.id, attempt: a.attempt, code, message, init: true });
    return;
  }
  log(`model loaded in ${runner.ctx.modelLoadSeconds.toFixed(2)} s; ${todo.length} partition(s) to run`);
  for (const [i, a] of todo.entries()) {
    try {
      const record = await runner.run(a, todo[i + 1]?.partition);
      log(`partition ${a.partition.id}: ${record.items} items in ${record.timings.total.toFixed(2)} s`);
    } catch (err) {
      await fail({ partition: a.partition.id, attempt: a.attempt, ...describeError(err) });
    }
  }
}

function log(text: string): void {
  process.stdout.write(`${new Date().toISOString()} ${text}\n`);
}
