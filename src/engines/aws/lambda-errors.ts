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

/**
 * Lambda errors that mean the invocation itself died, with the CAI code for each. `Lambda.Unknown` is
 * how an unhandled error (a timeout, running out of memory) may reach Step Functions: its code depends
 * on its message (see {@link crashCode}). No Task has a TimeoutSeconds, so `States.Timeout` never occurs.
 */
export const CRASH_ERRORS: Readonly<Record<string, string>> = Object.freeze({
  'Sandbox.Timedout': ErrorCodes.timeout,
  'Runtime.ExitError': ErrorCodes.workerCrash,
  'Runtime.OutOfMemory': ErrorCodes.workerCrash,
  'Lambda.Unknown': ErrorCodes.workerCrash,
});

/**
 * The CAI code of a crash error, from its name and the Lambda's message (`Lambda.Unknown` carries a
 * timeout's "Task timed out after 900.00 seconds" or a killed runtime's message).
 *
 * @example crashCode('Lambda.Unknown', '... Task timed out after 900.00 seconds') // 'E_TIMEOUT'
 */
export function crashCode(error: string, message: string): string | undefined {
  const code = CRASH_ERRORS[error];
  if (code && /timed out/i.test(message)) return ErrorCodes.timeout;
  return code;
}

/**
 * The Lambda's own message inside a crash's cause: `Lambda.Unknown` wraps the runtime's payload in
 * "The cause could not be determined because Lambda did not return an error type. Returned payload:
 * {...}"; other causes are the runtime's JSON or plain text.
 *
 * @example lambdaMessage('{"errorMessage":"Task timed out after 3.00 seconds"}') // 'Task timed out after 3.00 seconds'
 */
export function lambdaMessage(cause: string | undefined): string {
  if (!cause) return '';
  const json = cause.indexOf('{');
  for (const text of [cause, json >= 0 ? cause.slice(json) : '']) {
    try {
      const parsed = JSON.parse(text) as { errorMessage?: unknown };
      if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
    } catch {
      // Not JSON: plain text, such as a Step Functions cause.
    }
  }
  return cause;
}

/** The Lambda error of a throttled invocation, retried separately and much longer than faults. */
export const LAMBDA_THROTTLED = 'Lambda.TooManyRequestsException';

/** Tries of a throttled invocation: with a 60 s cap and full jitter, about 100 minutes of waiting. */
export const THROTTLE_ATTEMPTS = 200;

/** Lambda service errors worth retrying with backoff (transient faults). */
export const LAMBDA_SERVICE_ERRORS = Object.freeze([
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
