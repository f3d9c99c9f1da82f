import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CaiError, ErrorCodes } from '../../errors.js';
import { parseJobSpec, type JobSpec, type JobSpecInput } from '../../job/spec.js';
import { openStore } from '../../storage/open.js';
import { OUTPUT_KEYS } from '../../storage/output-layout.js';
import type { JobSummary } from '../../summarize/summarize.js';
import type { AwsApi, Deployment, ExecutionState, MapRunItems } from './cloud.js';
import { checkConcurrency, checkJobScope } from './job-scope.js';
import { checkEngineFields } from '../fields.js';
import type { ExecutionInput } from './protocol.js';
import { readJsonIfPresent } from '../../storage/json.js';

/** What `cai aws run` shows while it waits. */
export interface AwsProgressEvent {
  readonly executionArn: string;
  readonly status: ExecutionState['status'];
  /** The Map Run's item counts, once the Map has started. */
  readonly items?: MapRunItems;
  readonly elapsedSeconds: number;
}

/** How an execution ended, with its summary when Summarize wrote one. */
export interface AwsRunResult {
  readonly executionArn: string;
  readonly status: ExecutionState['status'];
  readonly summary?: JobSummary;
  readonly error?: string;
  readonly cause?: string;
}

/**
 * The job an execution starts with: the user's fields, the stack's data prefix and model where the job
 * names none, `engine: "aws"`; validated and checked against the stack's prefixes and maximum
 * concurrency here, so that a bad job fails before anything starts. `warnings` says what could not be
 * checked (a stack deployed by an older CAI does not say its maximum concurrency).
 *
 * @example const { raw, spec } = prepareAwsJob({ output: 's3://b/out/run1' }, deployment);
 */
export function prepareAwsJob(
  job: Partial<JobSpecInput>,
  deployment: Deployment,
): { raw: JobSpecInput; spec: JobSpec; warnings: string[] } {
  const given = Object.fromEntries(Object.entries(job).filter(([, v]) => v !== undefined));
  const raw = { input: deployment.data, model: deployment.model, ...given, engine: 'aws' } as JobSpecInput;
  const spec = parseJobSpec(raw, 'job');
  checkEngineFields(spec);
  checkJobScope(spec, deployment);
  const warnings: string[] = [];
  if (deployment.maxConcurrency !== undefined) checkConcurrency(spec, deployment.maxConcurrency);
  else if (spec.concurrency !== undefined) {
    warnings.push(
      `stack ${deployment.stackName} was deployed by an older CAI and does not say its maximum concurrency: ` +
        `if the job's concurrency ${spec.concurrency} is above the stack's --max-concurrency, its Initialize lowers it without a word; ` +
        `redeploy with \`cai aws deploy\` (same parameters) to have it checked`,
    );
  }
  return { raw, spec, warnings };
}

/** A fresh, sortable execution name: `cai-20260125-142501-9f3a`. */
export function executionName(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `cai-${stamp}-${randomBytes(2).toString('hex')}`;
}

/**
 * The summary of the run that started at `startDate`, or `undefined` when the output holds none or
 * only an earlier run's (Summarize did not get to write this one).
 */
export async function readRunSummary(spec: JobSpec, startDate: Date): Promise<JobSummary | undefined> {
  const out = await openStore(spec.output, { s3Endpoint: spec.s3Endpoint });
  const summary = await readJsonIfPresent<JobSummary>(out, OUTPUT_KEYS.summary);
  if (!summary) return undefined;
  return Math.abs(Date.parse(summary.run.started_at) - startDate.getTime()) < 1000 ? summary : undefined;
}

/**
 * Starts an execution of the deployed state machine with a job and follows it to its end, reporting the
 * Map Run's item counts, then reads the summary Summarize wrote.
 *
 * @example const result = await runOnAws(api, deployment, spec, raw, { onProgress: console.log });
 */
export async function runOnAws(
  api: AwsApi,
  deployment: Deployment,
  spec: JobSpec,
  raw: JobSpecInput,
  options: {
    overwrite?: boolean;
    name?: string;
    pollMs?: number;
    onProgress?: (e: AwsProgressEvent) => void;
    stop?: Promise<StopSignal>;
  } = {},
): Promise<AwsRunResult> {
  const input: ExecutionInput = { job: raw, overwrite: options.overwrite ?? false };
  let early: StopSignal | undefined;
  void options.stop?.then((signal) => (early = signal));
  await Promise.resolve();
  if (early)
    throw new CaiError(
      ErrorCodes.interrupted,
      early,
      'stopped before an execution was started: nothing runs in AWS; run the same job again to start it',
    );
  const executionArn = await api.startExecution(
    deployment.stateMachineArn,
    options.name ?? executionName(),
    JSON.stringify(input),
  );
  return followExecution(api, executionArn, spec, options);
}

/**
 * Polls an execution until it ends, reporting progress; returns its end and the run's summary.
 * @example const result = await followExecution(api, arn, spec, { pollMs: 2000 });
 */
export async function followExecution(
  api: AwsApi,
  executionArn: string,
  spec: JobSpec,
  options: { pollMs?: number; onProgress?: (e: AwsProgressEvent) => void; stop?: Promise<StopSignal> } = {},
): Promise<AwsRunResult> {
  const pollMs = options.pollMs ?? 2000;
  let stopped: StopSignal | undefined;
  void options.stop?.then((signal) => (stopped = signal));
  // A signal that came while the execution was being started is seen before the first poll.
  await Promise.resolve();
  for (;;) {
    if (stopped) return stopExecution(api, executionArn, spec, stopped);
    // Past the client's own retries, losing Step Functions does not stop the execution: it runs on in
    // AWS, unwatched (exit 3), and `cai aws status` follows it from anywhere.
    const [state, items] = await (async () => {
      const described = await api.describeExecution(executionArn);
      return [described, await api.mapRun(executionArn)] as const;
    })().catch((err: unknown) => {
      throw new CaiError(
        ErrorCodes.unwatched,
        executionArn,
        `could not be followed (${(err as Error).message}); the execution runs on in AWS and writes its summary to ${spec.output} when it ends: \`cai aws status ${executionArn}\` shows it, and its summary once it ended`,
        { cause: err },
      );
    });
    options.onProgress?.({
      executionArn,
      status: state.status,
      items,
      elapsedSeconds: ((state.stopDate ?? new Date()).getTime() - state.startDate.getTime()) / 1000,
    });
    if (state.status !== 'RUNNING') {
      const summary = await readRunSummary(spec, state.startDate);
      return { executionArn, status: state.status, summary, error: state.error, cause: state.cause };
    }
    await (options.stop ? Promise.race([sleep(pollMs), options.stop]) : sleep(pollMs));
  }
}

/** The signals that stop `cai aws run`'s execution (Ctrl-C, SIGTERM). */
export type StopSignal = 'SIGINT' | 'SIGTERM';

/**
 * Ctrl-C (or SIGTERM) of `cai aws run`: the job stops, as on every engine. The execution is stopped
 * (StopExecution: no partition starts any more; a Lambda already running finishes its partition and keeps
 * its record), and the command ends as interrupted (130/143). If Step Functions does not take the stop,
 * the execution runs on in AWS: unwatched (exit 3), naming how to follow it and how to stop it.
 */
async function stopExecution(
  api: AwsApi,
  executionArn: string,
  spec: JobSpec,
  signal: StopSignal,
): Promise<never> {
  const follow = `\`cai aws status ${executionArn}\` follows it and prints its summary once it ended; \`aws stepfunctions stop-execution --execution-arn ${executionArn}\` stops it`;
  try {
    if (!api.stopExecution) throw new Error('this AWS API cannot stop executions');
    await api.stopExecution(executionArn, `cai aws run was stopped by ${signal}`);
  } catch (err) {
    throw new CaiError(
      ErrorCodes.unwatched,
      executionArn,
      `was not stopped (${(err as Error).message}): the execution runs on in AWS and writes its summary to ${spec.output} when it ends; ${follow}`,
      { cause: err },
    );
  }
  throw new CaiError(
    ErrorCodes.interrupted,
    signal,
    `stopped execution ${executionArn}: no partition starts any more, and a Lambda still running finishes its partition and keeps its record; run the same job again to resume`,
  );
}

/**
 * The job an execution was started with, read back from its input (for `cai aws status`).
 * @example const spec = jobOfExecution(await api.describeExecution(arn));
 */
export function jobOfExecution(state: ExecutionState): JobSpec {
  if (!state.input)
    throw new CaiError(ErrorCodes.notFound, 'execution input', 'not readable; check your permissions');
  const input = JSON.parse(state.input) as Partial<ExecutionInput>;
  if (!input.job)
    throw new CaiError(
      ErrorCodes.option,
      'execution input',
      'has no job; it was not started by `cai aws run`',
    );
  return parseJobSpec(input.job, 'execution input');
}
