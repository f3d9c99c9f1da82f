import { CaiError, ErrorCodes } from '../../errors.js';
import type { JobSpec, JobSpecInput, ResolvedJob } from '../../job/spec.js';
import type { HandlerConfig } from './config.js';
import { isWithin, vcpusForMemory } from './params.js';

/**
 * Checks that a job stays inside what the stack's roles may touch, so that a job pointing elsewhere
 * fails at once with a message saying what to change, instead of with "access denied" deep in a Lambda.
 *
 * @example checkJobScope(spec, config) // throws E_OPTION naming the field when it is out of scope
 */
export function checkJobScope(job: JobSpec, config: Pick<HandlerConfig, 'data' | 'output' | 'model'>): void {
  const problems: string[] = [];
  if (!isWithin(job.input, config.data))
    problems.push(`input ${job.input} is not under the stack's data prefix ${config.data}`);
  if (!isWithin(job.output, config.output))
    problems.push(`output ${job.output} is not under the stack's output prefix ${config.output}`);
  if (job.model !== config.model)
    problems.push(`model ${job.model} is not the stack's model ${config.model}`);
  if (job.device !== 'cpu') problems.push(`device "${job.device}" is not available on Lambda; use cpu`);
  if (problems.length) {
    throw new CaiError(
      ErrorCodes.option,
      'job',
      `${problems.join('; ')}; change the job, or redeploy with \`cai aws deploy --data ... --output ... --model ...\``,
    );
  }
}

/**
 * Refuses a job `concurrency` above the stack's maximum (`--max-concurrency` at deploy, which deploy also
 * caps to the account's Lambda concurrency): the Map never runs more, and lowering the job's number
 * without a word would hide that it asked for more than the stack gives.
 *
 * @example checkConcurrency({ concurrency: 2000 }, 1000) // throws E_OPTION naming 2000, 1000 and the fix
 */
export function checkConcurrency(job: Pick<JobSpec, 'concurrency'>, maxConcurrency: number): void {
  if (job.concurrency === undefined || job.concurrency <= maxConcurrency) return;
  throw new CaiError(
    ErrorCodes.option,
    'concurrency',
    `the job asks for ${job.concurrency} Lambdas at once, above the stack's maximum of ${maxConcurrency}; ` +
      `pass --concurrency ${maxConcurrency} or less (or leave it out: the stack's maximum is the default), ` +
      `or redeploy with \`cai aws deploy --max-concurrency ${job.concurrency}\` (deploy caps it to the account's Lambda concurrency)`,
  );
}

/**
 * The job as the aws engine runs it: the stack's tolerated failure percentage when the job gave none,
 * the stack's maximum concurrency when the job gave none (more is refused, see {@link checkConcurrency}),
 * and onnxruntime threads following the vCPUs of the inference function's memory unless the job sets
 * them.
 *
 * @example resolveAwsJob(spec, rawJob, config).threads // 6 at 10,240 MB
 */
export function resolveAwsJob(spec: JobSpec, raw: JobSpecInput, config: HandlerConfig): ResolvedJob {
  checkConcurrency(spec, config.maxConcurrency);
  return {
    ...spec,
    engine: 'aws',
    toleratedFailurePercentage: raw.toleratedFailurePercentage ?? config.toleratedFailurePercentage,
    concurrency: spec.concurrency ?? config.maxConcurrency,
    threads: spec.threads ?? vcpusForMemory(config.inferenceMemoryMb),
  };
}
