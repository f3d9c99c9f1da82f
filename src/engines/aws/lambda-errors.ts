import { ErrorCodes } from '../../errors.js';

/**
 * Error names an inference invocation fails with. Lambda reports a thrown error's `name` as its
 * `errorType`, which Step Functions uses as the error name its Retry and Catch match.
 */
export const LAMBDA_ERRORS = Object.freeze({
  /** Some partition failed in a way another try may fix, and it has tries left: Step Functions retries. */
  retryable: 'CaiRetryableError',
  /** Some partition failed for good (permanent error or no tries left): counted against the error budget. */
  failed: 'CaiPartitionError',
} as const);

/** Lambda and Step Functions errors that mean the invocation itself died, with the CAI code for each. */
export const CRASH_ERRORS: Readonly<Record<string, string>> = Object.freeze({
  'Sandbox.Timedout': ErrorCodes.timeout,
  'States.Timeout': ErrorCodes.timeout,
  'Runtime.ExitError': ErrorCodes.workerCrash,
  'Runtime.OutOfMemory': ErrorCodes.workerCrash,
});

/** Lambda service errors worth retrying with backoff (throttling, transient faults). */
export const LAMBDA_SERVICE_ERRORS = Object.freeze([
  'Lambda.TooManyRequestsException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.ClientExecutionTimeoutException',
]);

/** One partition's failure inside an invocation. */
export interface PartitionError {
  readonly partition: string;
  readonly attempt: number;
  readonly code: string;
  readonly message: string;
}

/**
 * An inference invocation's failure, named for Step Functions, with a message that lists every failed
 * partition on its own line (read back by Summarize from the Map's results).
 *
 * @example throw new InvocationError(LAMBDA_ERRORS.failed, [{ partition: '3', attempt: 1, code: 'E_CORRUPT', message: '...' }]);
 */
export class InvocationError extends Error {
  readonly failures: readonly PartitionError[];

  constructor(name: string, failures: readonly PartitionError[]) {
    super(formatPartitionErrors(failures));
    this.name = name;
    this.failures = failures;
  }
}

const LINE = /^partition (\S+) \(attempt (\d+)\): (E_[A-Z_]+): (.*)$/;

/** The lines of an {@link InvocationError} message. @example formatPartitionErrors([e]) // 'partition 3 (attempt 1): E_CORRUPT: ...' */
export function formatPartitionErrors(failures: readonly PartitionError[]): string {
  return failures
    .map(
      (f) => `partition ${f.partition} (attempt ${f.attempt}): ${f.code}: ${f.message.replace(/\n/g, ' ')}`,
    )
    .join('\n');
}

/** Reads the lines written by {@link formatPartitionErrors} back. @example parsePartitionErrors(cause.errorMessage) */
export function parsePartitionErrors(message: string): PartitionError[] {
  const out: PartitionError[] = [];
  for (const line of message.split('\n')) {
    const m = LINE.exec(line);
    if (m) out.push({ partition: m[1], attempt: Number(m[2]), code: m[3], message: m[4] });
  }
  return out;
}
