import { performance } from 'node:perf_hooks';
import type { EngineEvent, MapResult } from '../engines/events.js';
import { runLocalMap } from '../engines/local/engine.js';
import { CaiError, ErrorCodes } from '../errors.js';
import type { PlannedPartition } from '../plan/plan.js';
import { openParent, openStore } from '../storage/open.js';
import type { Store } from '../storage/store.js';
import { summarize, type JobSummary } from '../summarize/summarize.js';
import { skippedSummary, type SkippedSummary } from '../plan/skipped.js';
import { acquireLock } from './lock.js';
import { watchSignals } from './interrupt.js';
import { pendingPartitions, planOrResume, removeStaleOutputs } from './resume.js';
import { resolveJob, type JobSpec, type ResolvedJob } from './spec.js';

/** Hooks and knobs for one run of a job. */
export interface RunOptions {
  /** Called for every engine event (progress). */
  readonly onEvent?: (event: EngineEvent) => void;
  /** Called once the plan is known, before any work starts. */
  readonly onPlan?: (plan: {
    partitions: readonly PlannedPartition[];
    todo: number;
    job: ResolvedJob;
    /** Input objects planning left out, and why (see `skipped.json`). */
    skipped?: SkippedSummary;
  }) => void;
  /** Base delay of retry backoff, ms (tests make it small). */
  readonly retryBaseMs?: number;
  /** Start over: ignore the outputs of an earlier run in the same output location. */
  readonly overwrite?: boolean;
}

/**
 * Runs one job and returns its summary: `runJob` for the local engine; the AWS engine plugs its own in.
 * @example const runner: JobRunner = (spec, o) => runJob(spec, o);
 */
export type JobRunner = (spec: JobSpec, options: RunOptions) => Promise<JobSummary>;

/**
 * Runs a whole job: plan (Initialize, written to `plan.json` before any work), map the partitions that
 * are not complete yet on the job's engine, then Summarize. Running the same job again resumes: only
 * partitions without a record are processed.
 *
 * @example
 * const summary = await runJob(parseJobSpec({ input: 'parts', model: 'm.onnx', output: 'out' }));
 * if (summary.status === 'failed') process.exitCode = 1;
 */
export async function runJob(spec: JobSpec, options: RunOptions = {}): Promise<JobSummary> {
  const startedAt = new Date();
  const t0 = performance.now();
  const output = await openStore(spec.output, { s3Endpoint: spec.s3Endpoint });
  // A missing model should fail before any planning or worker start-up, not after.
  const [modelStore, modelKey] = await openParent(spec.model, { s3Endpoint: spec.s3Endpoint });
  if (!(await modelStore.head(modelKey))) {
    throw new CaiError(
      ErrorCodes.notFound,
      modelStore.describe(modelKey),
      'the model does not exist; check --model',
    );
  }
  // One live run per output, and Ctrl-C / SIGTERM stop the workers cleanly (see lock.ts, interrupt.ts).
  const lock = await acquireLock(output);
  const watch = watchSignals(output);
  try {
    const work = runLocked(spec, options, output, startedAt, t0);
    // After an interrupt the abandoned work may still fail (its workers are gone): nobody awaits it.
    work.catch(() => undefined);
    return await Promise.race([work, watch.interrupted]).catch(async (err: unknown) => {
      // Killing the workers fails the work too; the interrupt is what happened.
      if (watch.signalled) return watch.interrupted;
      throw err;
    });
  } finally {
    watch.dispose();
    await lock.release().catch(() => undefined);
  }
}

async function runLocked(
  spec: JobSpec,
  options: RunOptions,
  output: Store,
  startedAt: Date,
  t0: number,
): Promise<JobSummary> {
  if (options.overwrite) await output.delete('summary.json');
  const plan = await planOrResume(spec, output, options.overwrite ?? false);
  if (options.overwrite) await removeStaleOutputs(output, plan, spec.predictionsFormat);
  const todo = options.overwrite ? plan : await pendingPartitions(output, plan, spec.predictionsFormat);
  const job = resolveJob(spec, { partitions: todo.length || plan.length });
  const skipped = options.onPlan ? await skippedSummary(output) : undefined;
  options.onPlan?.({ partitions: plan, todo: todo.length, job, skipped });
  const tMap = performance.now();
  let map: MapResult;
  if (todo.length === 0) map = { records: [], failures: [], retries: 0, skipped: 0 };
  else if (job.engine === 'local')
    map = await runLocalMap(job, todo, { onEvent: options.onEvent, retryBaseMs: options.retryBaseMs });
  else
    throw new CaiError(
      ErrorCodes.option,
      'engine',
      `engine "${job.engine}" cannot run from here; use \`cai aws run\` for the aws engine`,
    );
  const mapSeconds = (performance.now() - tMap) / 1000;
  return summarize({
    output,
    plan,
    format: job.predictionsFormat,
    map,
    resumed: plan.length - todo.length,
    startedAt,
    wallSeconds: (performance.now() - t0) / 1000,
    mapSeconds,
    job: {
      input: job.input,
      model: job.model,
      output: job.output,
      engine: job.engine,
      batchSize: job.batchSize,
      concurrency: job.concurrency,
      threads: job.threads,
      toleratedFailurePercentage: job.toleratedFailurePercentage,
    },
  });
}
