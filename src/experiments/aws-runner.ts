// The aws engine as a sweep's job runner: every run of `cai bench --engine aws` is one execution of the
// deployed state machine, exactly as `cai aws run` starts it.
import type { AwsApi, AwsSession, Deployment } from '../engines/aws/cloud.js';
import { prepareAwsJob, runOnAws } from '../engines/aws/run-on-aws.js';
import { CaiError, ErrorCodes } from '../errors.js';
import type { JobSpec, JobSpecInput } from '../job/spec.js';
import type { JobSummary } from '../summarize/summarize.js';
import type { JobRunner } from '../run/run.js';
import { preflightSubmission } from '../run/preflight.js';

/** How the runner reaches AWS. */
export interface AwsRunnerOptions {
  readonly session: AwsSession;
  /** Connects to AWS; the SDK by default (tests pass the offline executor's). */
  readonly connect?: (session: AwsSession) => Promise<AwsApi>;
  /** Milliseconds between status polls; 2000 by default. */
  readonly pollMs?: number;
  /** Where warnings go (what an older stack cannot check); stderr by default. */
  readonly warn?: (text: string) => void;
}

/**
 * A job runner that runs each job on the deployed stack and returns the summary its Summarize wrote.
 * The stack is looked up once, on the first run; a job outside the stack's prefixes fails before any
 * execution starts. An execution that ends without a summary (it failed before Summarize) is an error
 * naming the execution, which stops the sweep.
 *
 * @example await runSweep({ job, output: 'bench', runsOutput: 's3://b/out/bench', runner: awsJobRunner({ session: { stackName: 'Cai' } }) });
 */
export function awsJobRunner(options: AwsRunnerOptions): JobRunner {
  let ready: Promise<{ api: AwsApi; deployment: Deployment }> | undefined;
  return async (spec: JobSpec, run): Promise<JobSummary> => {
    ready ??= (async () => {
      const connect = options.connect ?? (await import('../engines/aws/cloud.js')).sdkAwsApi;
      const api = await connect(options.session);
      return { api, deployment: await api.describeStack(options.session.stackName) };
    })();
    const { api, deployment } = await ready;
    // Machine-dependent fields the local engine would decide stay undefined, so the stack decides them.
    const fields = Object.fromEntries(
      Object.entries(spec).filter(([k, v]) => v !== undefined && k !== 'engine'),
    ) as Partial<JobSpecInput>;
    const { raw, spec: aws, warnings } = prepareAwsJob(fields, deployment);
    const warn = options.warn ?? ((t: string) => process.stderr.write(t));
    for (const w of warnings) warn(`warning: ${w}\n`);
    // As `cai aws run`: the job is checked on this machine before an execution starts.
    await preflightSubmission(aws, { overwrite: run.overwrite });
    const result = await runOnAws(api, deployment, aws, raw, {
      overwrite: run.overwrite,
      pollMs: options.pollMs,
    });
    if (!result.summary)
      throw new CaiError(
        ErrorCodes.budget,
        result.executionArn,
        `the execution ended ${result.status}${result.error ? ` with ${result.error}` : ''} before writing a summary${result.cause ? `: ${result.cause}` : ''}`,
      );
    return result.summary;
  };
}
