import { performance } from 'node:perf_hooks';
import type { PlannedPartition } from '../../../plan/plan.js';
import { openStore } from '../../../storage/open.js';
import { summarize } from '../../../summarize/summarize.js';
import type { PartitionFailure, PartitionRecord } from '../../../worker/record.js';
import { outputKeys } from '../../../worker/run-partition.js';
import type { HandlerConfig } from '../config.js';
import { ListingHeadStore } from '../listing-store.js';
import { findMapManifest, readMapFailures } from '../map-results.js';
import { bucketAndPrefix } from '../params.js';
import type { SummarizeEvent, SummarizeResult } from '../protocol.js';

const readJson = async <T>(store: ListingHeadStore, key: string): Promise<T> =>
  JSON.parse(new TextDecoder().decode(await store.get(key))) as T;

/**
 * The Summarize Lambda: reads the records of the partitions this execution was to do, takes the failed
 * ones (with their last error) from the Distributed Map's exported results, and hands both to the same
 * `summarize` as the local engine, which writes `combined_data.json`, `result_stats.csv` and
 * `summary.json`. It runs whether the Map succeeded or failed (its error budget spent), so a failed job
 * still leaves a summary that says why.
 *
 * @example export const handler = createSummarizeHandler(handlerConfigFromEnv(process.env));
 */
export function createSummarizeHandler(
  config: HandlerConfig,
): (event: SummarizeEvent) => Promise<SummarizeResult> {
  return async (event) => {
    const mapEnded = Date.now();
    const t0 = performance.now();
    const { init, map, mapError } = event.state;
    const { job, overwrite, startedAt } = init.task;
    const output = new ListingHeadStore(await openStore(job.output, { s3Endpoint: job.s3Endpoint }));
    const prefix = bucketAndPrefix(job.output).prefix;
    const storePrefix = prefix ? `${prefix}/` : '';
    const plan = await readJson<PlannedPartition[]>(output, 'plan.json');
    const todo = await readJson<PlannedPartition[]>(output, `${init.runFolder}items.json`);
    await output.preload('results');
    await output.preload('predictions');

    const records: PartitionRecord[] = [];
    for (const p of todo) {
      const key = outputKeys(p.id, job.predictionsFormat).record;
      if (!(await output.head(key))) continue;
      const record = await readJson<PartitionRecord>(output, key);
      if (!overwrite || record.finished_at >= startedAt) records.push(record);
    }

    const manifestKey = await findMapManifest(
      output,
      `${init.runFolder}map`,
      map?.ResultWriterDetails?.Key,
      storePrefix,
    );
    const mapFailures = manifestKey
      ? await readMapFailures(output, manifestKey, storePrefix, config.crashAttempts)
      : [];
    const done = new Set(records.map((r) => r.partition));
    const keyOf = new Map(todo.map((p) => [p.id, p.key]));
    const failures = new Map<string, PartitionFailure>();
    for (const f of mapFailures) {
      if (done.has(f.partition)) continue;
      failures.set(f.partition, {
        status: 'failed',
        partition: f.partition,
        data_path: keyOf.get(f.partition) ?? f.partition,
        attempts: f.attempts,
        error: { code: f.code, message: f.message },
      });
    }
    const failed = [...failures.values()];
    const retries =
      records.reduce((a, r) => a + r.attempt - 1, 0) + failed.reduce((a, f) => a + f.attempts - 1, 0);

    const summary = await summarize({
      output,
      plan,
      format: job.predictionsFormat,
      map: {
        records,
        failures: failed,
        retries,
        skipped: Math.max(0, todo.length - records.length - failed.length),
      },
      resumed: init.resumed,
      startedAt: new Date(event.executionStartTime),
      wallSeconds: (mapEnded - Date.parse(event.executionStartTime)) / 1000 + (performance.now() - t0) / 1000,
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
      },
    });
    const p = summary.partitions;
    const message =
      summary.status === 'succeeded'
        ? `${p.completed} of ${p.planned} partitions completed, ${p.failed} failed (tolerated ${job.toleratedFailurePercentage}%)`
        : `${p.failed} of ${p.planned} partitions failed and ${p.not_started} did not run (tolerated ${job.toleratedFailurePercentage}%)${mapError ? `; the Map ended with ${mapError.Error}` : ''}; see ${output.describe('summary.json')}`;
    return {
      status: summary.status,
      planned: p.planned,
      completed: p.completed,
      failed: p.failed,
      notStarted: p.not_started,
      summary: output.describe('summary.json'),
      message,
    };
  };
}
