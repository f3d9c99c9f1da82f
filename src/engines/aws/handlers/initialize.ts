import { CaiError, ErrorCodes } from '../../../errors.js';
import { parseJobSpec, type JobSpec } from '../../../job/spec.js';
import { planPartitions, type PlannedPartition } from '../../../plan/plan.js';
import { openStore } from '../../../storage/open.js';
import { outputKeys } from '../../../worker/run-partition.js';
import type { HandlerConfig } from '../config.js';
import { checkJobScope, resolveAwsJob } from '../job-scope.js';
import { ListingHeadStore } from '../listing-store.js';
import { bucketAndPrefix } from '../params.js';
import type { InitializeEvent, InitializeResult } from '../protocol.js';

// Fields that change what the predictions are: a resumed job must match them (as `runJob` checks).
const IDENTITY_FIELDS = ['input', 'model', 'inputs', 'label', 'predictionsFormat', 'fileLimit'] as const;

async function readJson<T>(store: ListingHeadStore, key: string): Promise<T | undefined> {
  if (!(await store.head(key))) return undefined;
  return JSON.parse(new TextDecoder().decode(await store.get(key))) as T;
}

async function planOrResume(
  spec: JobSpec,
  output: ListingHeadStore,
  overwrite: boolean,
): Promise<PlannedPartition[]> {
  const previous = overwrite ? undefined : await readJson<JobSpec>(output, 'job.json');
  if (previous) {
    const changed = IDENTITY_FIELDS.filter((f) => JSON.stringify(previous[f]) !== JSON.stringify(spec[f]));
    if (changed.length) {
      throw new CaiError(
        ErrorCodes.option,
        output.describe('job.json'),
        `this output holds a different job (${changed.join(', ')} changed); use a new output, or --overwrite to start over`,
      );
    }
    const plan = await readJson<PlannedPartition[]>(output, 'plan.json');
    if (plan) return plan;
  }
  const input = await openStore(spec.input, { s3Endpoint: spec.s3Endpoint });
  const plan = await planPartitions(input, { fileLimit: spec.fileLimit });
  await output.put('job.json', `${JSON.stringify(spec, null, 2)}\n`);
  await output.put('plan.json', `${JSON.stringify(plan, null, 2)}\n`);
  return plan;
}

/**
 * The Initialize Lambda: validates the job against the stack, plans it with the paginated listing (or
 * reuses the plan of an earlier run of the same job), writes `job.json` and `plan.json` like the local
 * engine, and writes the partitions still to do as a JSON manifest for the Distributed Map's
 * ItemReader. It returns where the manifest is and the counts, never the list itself, so no number of
 * partitions hits Step Functions' 256 KiB payload limit.
 *
 * @example export const handler = createInitializeHandler(handlerConfigFromEnv(process.env));
 */
export function createInitializeHandler(
  config: HandlerConfig,
): (event: InitializeEvent) => Promise<InitializeResult> {
  return async (event) => {
    const spec = parseJobSpec(event.input.job, 'execution input');
    checkJobScope(spec, config);
    const job = resolveAwsJob(spec, event.input.job, config);
    const overwrite = event.input.overwrite ?? false;
    const output = new ListingHeadStore(await openStore(job.output, { s3Endpoint: job.s3Endpoint }));
    if (overwrite) await output.delete('summary.json');
    const recorded: JobSpec = {
      ...spec,
      engine: 'aws',
      toleratedFailurePercentage: job.toleratedFailurePercentage,
    };
    const plan = await planOrResume(recorded, output, overwrite);

    let todo = plan;
    if (!overwrite) {
      await output.preload('results');
      await output.preload('predictions');
      todo = [];
      for (const p of plan) {
        const keys = outputKeys(p.id, job.predictionsFormat);
        if (!(await output.head(keys.record)) || !(await output.head(keys.predictions))) todo.push(p);
      }
    }

    const runFolder = `aws-runs/${event.executionName}/`;
    await output.put(`${runFolder}items.json`, `${JSON.stringify(todo)}\n`);
    const { bucket, prefix } = bucketAndPrefix(job.output);
    const base = prefix ? `${prefix}/` : '';
    return {
      manifest: { bucket, key: `${base}${runFolder}items.json` },
      resultWriter: { bucket, prefix: `${base}${runFolder}map` },
      runFolder,
      maxConcurrency: job.concurrency,
      toleratedFailurePercentage: job.toleratedFailurePercentage,
      task: { job, overwrite, startedAt: event.executionStartTime },
      planned: plan.length,
      todo: todo.length,
      resumed: plan.length - todo.length,
      mapStartedAt: new Date().toISOString(),
    };
  };
}
