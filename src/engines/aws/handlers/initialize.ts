import { pendingPartitions, planOrResume } from '../../../plan/resume.js';
import { parseJobSpec, type JobSpec } from '../../../job/spec.js';
import { toleratedFailures } from '../../../job/budget.js';
import { openStore } from '../../../storage/open.js';
import { awsRunFolder, OUTPUT_KEYS } from '../../../storage/output-layout.js';
import type { HandlerConfig } from '../config.js';
import { checkEngineFields } from '../../fields.js';
import { checkJobScope, resolveAwsJob } from '../job-scope.js';
import { ListingHeadStore } from '../listing-store.js';
import { bucketAndPrefix } from '../params.js';
import type { InitializeEvent, InitializeResult } from '../protocol.js';

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
    // An execution started without the CLI (the console, an SDK call) gets the CLI's refusal of the
    // fields this engine does not use, before anything is written.
    checkEngineFields({ ...spec, engine: 'aws' });
    checkJobScope(spec, config);
    const job = resolveAwsJob(spec, event.input.job, config);
    const overwrite = event.input.overwrite ?? false;
    const output = new ListingHeadStore(await openStore(job.output, { s3Endpoint: job.s3Endpoint }));
    if (overwrite) await output.delete(OUTPUT_KEYS.summary);
    const recorded: JobSpec = {
      ...spec,
      engine: 'aws',
      toleratedFailurePercentage: job.toleratedFailurePercentage,
    };
    // The stack fixes the model (and grants Initialize no read of it): its hash is not in the identity.
    const plan = await planOrResume(recorded, output, overwrite, { hashModel: false });

    const todo = overwrite ? plan : await pendingPartitions(output, plan, job.predictionsFormat);

    const runFolder = awsRunFolder(event.executionName);
    await output.put(`${runFolder}items.json`, `${JSON.stringify(todo)}\n`);
    const { bucket, prefix } = bucketAndPrefix(job.output);
    const base = prefix ? `${prefix}/` : '';
    return {
      manifest: { bucket, key: `${base}${runFolder}items.json` },
      resultWriter: { bucket, prefix: `${base}${runFolder}map` },
      runFolder,
      maxConcurrency: job.concurrency,
      toleratedFailurePercentage: job.toleratedFailurePercentage,
      toleratedFailureCount: toleratedFailures(plan.length, job.toleratedFailurePercentage),
      task: { job, overwrite, startedAt: event.executionStartTime },
      planned: plan.length,
      todo: todo.length,
      resumed: plan.length - todo.length,
      mapStartedAt: new Date().toISOString(),
    };
  };
}
