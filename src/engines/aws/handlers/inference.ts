import { performance } from 'node:perf_hooks';
import { CaiError, describeError, ErrorCodes } from '../../../errors.js';
import type { ResolvedJob } from '../../../job/spec.js';
import { writeFailure } from '../../../summarize/failure-files.js';
import { recordText } from '../../../summarize/records.js';
import type { PlannedPartition } from '../../../plan/plan.js';
import { inputObjectPath, openStore } from '../../../storage/open.js';
import { createWorkerContext, type WorkerContext } from '../../../worker/context.js';
import type { LambdaInfo, PartitionRecord } from '../../../worker/record.js';
import { outputKeys, runPartition } from '../../../worker/run-partition.js';
import { PERMANENT_ERRORS } from '../../policy.js';
import type { HandlerConfig } from '../config.js';
import { checkJobScope } from '../job-scope.js';
import { InvocationError, LAMBDA_ERRORS, type PartitionError } from '../lambda-errors.js';
import { ListingHeadStore } from '../listing-store.js';
import {
  RESULT_RECORD_BYTES,
  type InferenceEvent,
  type InferenceResult,
  type LambdaContext,
  type MapTask,
} from '../protocol.js';
import { RecordStampingStore } from '../record-stamp.js';
import { readJson } from '../../../storage/json.js';

/** A container's worker: stores and model, kept while jobs with the same identity come in. */
interface Warm {
  readonly key: string;
  readonly ctx: WorkerContext;
  readonly output: RecordStampingStore;
}

// Everything that decides which model, stores and threads a worker context holds.
function contextKey(job: ResolvedJob): string {
  return JSON.stringify([job.input, job.output, job.model, job.threads, job.device, job.s3Endpoint ?? '']);
}

const lambdaArchitecture = (): string => (process.arch === 'x64' ? 'x86_64' : process.arch);

// A partition counts as done when its record and predictions exist; with `overwrite`, only when the
// record was written by this execution (a retried batch must not redo the partitions it finished).
async function isDone(
  output: ListingHeadStore,
  task: MapTask,
  partition: PlannedPartition,
): Promise<boolean> {
  const keys = outputKeys(partition.id, task.job.predictionsFormat);
  if (!(await output.head(keys.record)) || !(await output.head(keys.predictions))) return false;
  if (!task.overwrite) return true;
  const record = await readJson<PartitionRecord>(output, keys.record);
  return record.finished_at >= task.startedAt;
}

/**
 * The Inference Lambda, one handler per container: the worker context (stores and onnxruntime session)
 * is created by the first invocation and reused by every warm one, as long as the job's model, stores
 * and threads stay the same. Each partition of the event (one, or an ItemBatcher batch) runs through the
 * same `runPartition` as the local engine, unless its record already exists (resume). Its record gets
 * the invocation's Lambda facts (memory, billed duration, cold start) in the same atomic write. When a
 * partition fails, the others still run, then the invocation throws: `CaiRetryableError` while the job's
 * `maxAttempts` allow another try of a transient error (the child workflow sends the batch again with the
 * next attempt number, and the finished partitions are skipped), `CaiPartitionError` otherwise (counted by the Map's
 * ToleratedFailurePercentage).
 *
 * @example export const handler = createInferenceHandler(handlerConfigFromEnv(process.env));
 */
export function createInferenceHandler(
  config: HandlerConfig,
): (event: InferenceEvent, context: LambdaContext) => Promise<InferenceResult> {
  let warm: Warm | undefined;
  let invocations = 0;
  const checked = new Map<string, ListingHeadStore>();

  const workerFor = async (job: ResolvedJob): Promise<Warm> => {
    const key = contextKey(job);
    if (warm?.key === key) return warm;
    if (warm) await warm.ctx.model.release();
    warm = undefined;
    const ctx = await createWorkerContext(job).catch((err: unknown) => {
      // The model is downloaded to /tmp (512 MB unless the stack raised it): a full disk says what to set.
      if (/ENOSPC|no space left/i.test(`${(err as { code?: string }).code} ${(err as Error).message}`)) {
        throw new CaiError(
          ErrorCodes.option,
          job.model,
          "does not fit in the inference function's /tmp; deploy again with a larger --ephemeral-storage (or leave the flag out: cai aws deploy sizes it from the model)",
          { cause: err },
        );
      }
      throw err;
    });
    const output = new RecordStampingStore(ctx.output);
    warm = { key, ctx: { ...ctx, output }, output };
    return warm;
  };

  return async (event, context) => {
    const started = performance.now();
    const coldInvocation = invocations++ === 0;
    const { task } = event;
    checkJobScope(task.job, config);
    const partitions = event.items ?? (event.partition ? [event.partition] : []);
    const { attempt } = event;
    const memoryMb =
      Number(context.memoryLimitInMB) ||
      Number(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE) ||
      config.inferenceMemoryMb;

    let outputForChecks = checked.get(task.job.output);
    if (!outputForChecks) {
      outputForChecks = new ListingHeadStore(
        await openStore(task.job.output, { s3Endpoint: task.job.s3Endpoint }),
      );
      checked.set(task.job.output, outputForChecks);
    }

    const results: InferenceResult['partitions'][number][] = [];
    let recordBytes = 0;
    const failures: (PartitionError & { key: string })[] = [];
    let sliceStart = started;
    for (const [i, partition] of partitions.entries()) {
      try {
        if (await isDone(outputForChecks, task, partition)) {
          results.push({ id: partition.id, status: 'skipped', items: 0, seconds: 0 });
          continue;
        }
        const worker = await workerFor(task.job);
        const recordKey = outputKeys(partition.id, task.job.predictionsFormat).record;
        const info = (): LambdaInfo => ({
          memory_mb: memoryMb,
          // Lambda bills each invocation's wall time rounded up to 1 ms; a batch's is shared out
          // partition by partition, the first one also paying the model load of a cold container.
          billed_duration_ms: Math.max(1, Math.ceil(performance.now() - sliceStart)),
          cold_start: coldInvocation && i === 0,
          architecture: lambdaArchitecture(),
          request_id: context.awsRequestId,
        });
        worker.output.stamp = (_key, record) => ({ ...record, lambda: info() });
        const record = await runPartition(worker.ctx, { partition, attempt });
        // A worker that wrote its record some other way still gets the Lambda facts, in a second put.
        let written = worker.output.take(recordKey);
        if (!written) {
          await worker.output.put(recordKey, recordText({ ...record, lambda: info() }));
          written = worker.output.take(recordKey);
        }
        // The record as written travels in the result (Summarize's way round a GET per record) while
        // the result stays small enough for a child's output.
        const carried = written && recordBytes + written.bytes <= RESULT_RECORD_BYTES ? written : undefined;
        recordBytes += carried?.bytes ?? 0;
        results.push({
          id: partition.id,
          status: 'ok',
          items: record.items,
          seconds: record.timings.total,
          ...(carried ? { record: carried.record } : {}),
        });
      } catch (err) {
        const { code, message } = describeError(err);
        failures.push({ partition: partition.id, attempt, code, message, key: partition.key });
      } finally {
        sliceStart = performance.now();
      }
    }
    if (failures.length) {
      const transient = failures.some(
        (f) => !PERMANENT_ERRORS.has(f.code) && !(f.code === ErrorCodes.model && !warm),
      );
      const retry = transient && attempt < task.job.maxAttempts;
      // Kept in the output before the throw: whatever the Map exports of a failed run, Summarize can
      // name every failed partition and why. A failed write loses only the reason, not the failure.
      await Promise.all(
        failures.map((f) =>
          writeFailure(outputForChecks, {
            status: 'failed',
            partition: f.partition,
            data_path: inputObjectPath(task.job.input, f.key),
            attempts: attempt,
            error: { code: f.code, message: f.message },
            run_started_at: task.startedAt,
            finished_at: new Date().toISOString(),
          }).catch(() => undefined),
        ),
      );
      throw new InvocationError(
        retry ? LAMBDA_ERRORS.retryable : LAMBDA_ERRORS.failed,
        failures.map(({ key: _key, ...f }) => f),
      );
    }
    return { partitions: results };
  };
}
