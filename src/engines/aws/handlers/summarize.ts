import { performance } from 'node:perf_hooks';
import { CaiError, ErrorCodes, describeError } from '../../../errors.js';
import type { PlannedPartition } from '../../../plan/plan.js';
import { inputObjectPath, openStore } from '../../../storage/open.js';
import { OUTPUT_KEYS } from '../../../storage/output-layout.js';
import { readFailures } from '../../../summarize/failure-files.js';
import { readJsonObject } from '../../../storage/json.js';
import type { Store } from '../../../storage/store.js';
import { summarize } from '../../../summarize/summarize.js';
import type { MapResult } from '../../../summarize/map-result.js';
import type { PartitionFailure, PartitionRecord } from '../../../worker/record.js';
import type { HandlerConfig } from '../config.js';
import { crashCode, lambdaMessage } from '../lambda-errors.js';
import { ListingHeadStore } from '../listing-store.js';
import { findMapManifest, readMapFailures, readMapRecords } from '../map-results.js';
import { bucketAndPrefix } from '../params.js';
import type { SummarizeEvent, SummarizeResult } from '../protocol.js';

// plan.json and the manifest are arrays; a damaged one gets the same clear error as a record, and one
// read cut short is read again.
async function readJsonArray<T>(store: Store, key: string, remedy: string): Promise<T[]> {
  const value = await readJsonObject<object>(store, key, { remedy });
  if (!Array.isArray(value))
    throw new CaiError(ErrorCodes.corrupt, store.describe(key), `is not a JSON array; ${remedy}`);
  return value as T[];
}

/** A summary written when Summarize itself fails: what the execution knew, and the error. */
export interface FailedSummary {
  readonly status: 'failed';
  readonly input: string;
  readonly model: string;
  readonly output: string;
  /** Only what Initialize counted; completed and failed partitions are unknown (see `summarize_error`). */
  readonly partitions: { readonly planned: number; readonly todo: number; readonly resumed: number };
  readonly run: { readonly started_at: string; readonly engine: 'aws' };
  readonly map_error?: { readonly Error: string; readonly Cause?: string };
  /** Why the full summary could not be made: run the job again (it resumes) once that is fixed. */
  readonly summarize_error: { readonly code: string; readonly message: string };
}

async function writeFailedSummary(
  output: Store,
  o: {
    job: { input: string; model: string; output: string };
    planned: number;
    todo: number;
    resumed: number;
    startedAt: string;
    mapError?: { Error: string; Cause?: string };
    error: unknown;
  },
): Promise<void> {
  const summary: FailedSummary = {
    status: 'failed',
    input: o.job.input,
    model: o.job.model,
    output: o.job.output,
    partitions: { planned: o.planned, todo: o.todo, resumed: o.resumed },
    run: { started_at: o.startedAt, engine: 'aws' },
    ...(o.mapError ? { map_error: o.mapError } : {}),
    summarize_error: describeError(o.error),
  };
  await output.put('summary.json', `${JSON.stringify(summary, null, 2)}\n`);
}

/**
 * The Summarize Lambda: reads the records of the partitions this execution was to do (those its Map's
 * children returned, from the Map's exported results; the others, one GET each), takes the failed
 * ones (with their last error) from the same results, and hands both to the same
 * `summarize` as the local engine, which writes `combined_data.json`, `result_stats.csv` and
 * `summary.json`. It runs whether the Map succeeded or failed (its error budget spent), so a failed job
 * still leaves a summary that says why.
 *
 * @example export const handler = createSummarizeHandler(handlerConfigFromEnv(process.env));
 */
export function createSummarizeHandler(
  config: HandlerConfig,
): (event: SummarizeEvent) => Promise<SummarizeResult> {
  const summarizeRun = async (event: SummarizeEvent): Promise<SummarizeResult> => {
    const mapEnded = Date.now();
    const t0 = performance.now();
    const { init, map, mapError } = event.state;
    const { job, overwrite, startedAt } = init.task;
    // Heads answered from listings: S3 answers a HEAD of a missing key 403 to these roles (see the store).
    const output = new ListingHeadStore(await openStore(job.output, { s3Endpoint: job.s3Endpoint }));
    const prefix = bucketAndPrefix(job.output).prefix;
    const storePrefix = prefix ? `${prefix}/` : '';
    const remedy = 'run the job again (it resumes) to rewrite it';
    const [plan, todo] = await Promise.all(
      [OUTPUT_KEYS.plan, `${init.runFolder}items.json`].map(async (key) =>
        readJsonArray<PlannedPartition>(output, key, remedy),
      ),
    );
    const keyOf = new Map(todo.map((p) => [p.id, p.key]));
    const manifestKey = await findMapManifest(
      output,
      `${init.runFolder}map`,
      map?.ResultWriterDetails?.Key,
      storePrefix,
    );
    // This run's records as its children returned them, from the Map's few large result files instead
    // of a GET each. They only stand in for objects the listing shows with their size, so a record
    // missing from the results (a child that timed out after writing it, one retried, a result over
    // the size cap) is read from the output as before. Unreadable result files cost speed, not truth:
    // every record is then read from the output.
    const reportedRecords = manifestKey
      ? await readMapRecords(output, manifestKey, storePrefix).catch(() => undefined)
      : undefined;

    // This run's outcome, from the job's records (read once by summarize, or reported): the records of
    // the partitions this execution was to do, the failures its handlers wrote, and for crashes no handler could
    // record (timeouts, out of memory) the Map's exported results.
    const runOutcome = async (all: readonly PartitionRecord[]): Promise<MapResult> => {
      const records = all.filter((r) => keyOf.has(r.partition) && (!overwrite || r.finished_at >= startedAt));
      const done = new Set(records.map((r) => r.partition));
      const failures = new Map<string, PartitionFailure>();
      for (const [id, f] of await readFailures(output, todo, startedAt)) {
        if (!done.has(id))
          failures.set(id, {
            status: 'failed',
            partition: id,
            data_path: f.data_path,
            attempts: f.attempts,
            error: f.error,
          });
      }
      const mapFailures = manifestKey
        ? await readMapFailures(output, manifestKey, storePrefix, config.crashAttempts)
        : [];
      for (const f of mapFailures) {
        const own = failures.get(f.partition);
        // A crash after the handler wrote its failure (a later try that timed out) is the last word.
        const crashed = f.code === ErrorCodes.timeout || f.code === ErrorCodes.workerCrash;
        if (done.has(f.partition) || (own && !crashed)) continue;
        failures.set(f.partition, {
          status: 'failed',
          partition: f.partition,
          data_path: inputObjectPath(job.input, keyOf.get(f.partition) ?? f.partition),
          attempts: Math.max(f.attempts, own?.attempts ?? 0),
          error: { code: f.code, message: f.message },
        });
      }
      const failed = [...failures.values()];
      return {
        records,
        failures: failed,
        retries:
          records.reduce((a, r) => a + r.attempt - 1, 0) + failed.reduce((a, f) => a + f.attempts - 1, 0),
        skipped: Math.max(0, todo.length - records.length - failed.length),
      };
    };

    const summary = await summarize({
      output,
      plan,
      format: job.predictionsFormat,
      map: runOutcome,
      reportedRecords,
      resumed: init.resumed,
      startedAt: new Date(event.executionStartTime),
      // Counted to the end of Summarize: the execution is not over before its summary is written.
      wallSeconds: () =>
        (mapEnded - Date.parse(event.executionStartTime)) / 1000 + (performance.now() - t0) / 1000,
      mapSeconds: (mapEnded - Date.parse(init.mapStartedAt)) / 1000,
      job: {
        input: job.input,
        model: job.model,
        output: job.output,
        engine: 'aws',
        batchSize: job.batchSize,
        concurrency: job.concurrency,
        threads: job.threads,
        toleratedFailurePercentage: job.toleratedFailurePercentage,
        sixteenBit: job.preprocess?.sixteenBit,
      },
    });
    const p = summary.partitions;
    const message =
      summary.status === 'succeeded'
        ? `${p.completed} of ${p.planned} partitions completed, ${p.failed} failed (tolerated ${job.toleratedFailurePercentage}%)`
        : `${p.failed} of ${p.planned} partitions failed and ${p.not_started} did not run (tolerated ${job.toleratedFailurePercentage}%)${mapError ? `; the Map ended with ${mapError.Error}` : ''}; see ${output.describe(OUTPUT_KEYS.summary)}`;
    return {
      // The AWS map is never cancelled from outside the execution (a stopped execution writes no summary).
      status: summary.status === 'succeeded' ? 'succeeded' : 'failed',
      planned: p.planned,
      completed: p.completed,
      failed: p.failed,
      notStarted: p.not_started,
      summary: output.describe(OUTPUT_KEYS.summary),
      message,
    };
  };
  // Returns where the summary went.
  const writeFailed = async (event: SummarizeEvent, error: unknown): Promise<string> => {
    const { init, mapError } = event.state;
    const job = init.task.job;
    const output = await openStore(job.output, { s3Endpoint: job.s3Endpoint });
    await writeFailedSummary(output, {
      job,
      planned: init.planned,
      todo: init.todo,
      resumed: init.resumed,
      startedAt: event.executionStartTime,
      mapError,
      error,
    });
    return output.describe(OUTPUT_KEYS.summary);
  };
  return async (event) => {
    if (event.summarizeError) {
      // The first Summarize died where no handler code runs (timed out, out of memory): this second
      // invocation writes only the failed summary, so the output never keeps an earlier run's summary
      // as if it were this one's, then Step Functions fails the execution with the first error.
      const { Error: name, Cause: cause } = event.summarizeError;
      const message = lambdaMessage(cause) || name;
      const summary = await writeFailed(
        event,
        new CaiError(
          crashCode(name, message) ?? ErrorCodes.workerCrash,
          'the Summarize function',
          `ended without a summary (${name}: ${message}); every prediction written is kept: give the function more time or memory (cai aws deploy) and run the job again, which resumes and summarizes`,
        ),
      );
      return {
        status: 'failed',
        planned: event.state.init.planned,
        completed: 0,
        failed: 0,
        notStarted: 0,
        summary,
        message: `Summarize ended with ${name}: ${message}`,
      };
    }
    try {
      return await summarizeRun(event);
    } catch (err) {
      // Summarize itself failed (a plan or record it cannot read, the store gone): the output still
      // gets a summary, a failed one saying what is known and why the rest is not, never none.
      await writeFailed(event, err).catch(() => undefined);
      throw err;
    }
  };
}
