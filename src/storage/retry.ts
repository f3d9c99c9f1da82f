import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How often and how patiently to retry an operation that failed for a transient reason.
 * @example const opts: RetryOptions = { ...defaultRetryPolicy, isRetryable: isTransientNetworkError };
 */
export interface RetryOptions {
  /** Total tries including the first; 1 means no retry. */
  readonly attempts: number;
  /** The backoff ceiling of the first retry, in milliseconds; it doubles on each retry. */
  readonly baseMs: number;
  /** The largest backoff ceiling, in milliseconds. */
  readonly maxMs: number;
  /** Whether an error is worth another try. Anything else is thrown at once. */
  readonly isRetryable: (err: unknown) => boolean;
  /** Called before each retry (for counters and logs) with the 1-based retry number and the delay. */
  readonly onRetry?: (err: unknown, retry: number, delayMs: number) => void;
  /** A source of uniform numbers in [0, 1), for deterministic tests; `Math.random` by default. */
  readonly random?: () => number;
  /** Stops waiting and throws when aborted. */
  readonly signal?: AbortSignal;
}

/**
 * The backoff parameters of {@link RetryOptions} without the error classifier.
 * @example const patient: RetryPolicy = { attempts: 12, baseMs: 200, maxMs: 30_000 };
 */
export type RetryPolicy = Pick<RetryOptions, 'attempts' | 'baseMs' | 'maxMs'>;

/**
 * CAI's default policy for object storage: 8 tries, backoff ceilings 0.1 s, 0.2 s, ... up to 20 s.
 * With full jitter the expected total wait before giving up is about 13 s, long enough to ride out S3
 * throttling (503 SlowDown) and short enough that a dead endpoint is reported within a minute.
 * `AWS_MAX_ATTEMPTS` overrides `attempts`, as it does for the AWS SDK.
 *
 * @example const policy = { ...defaultRetryPolicy, baseMs: 5 }; // fast retries in tests
 */
export const defaultRetryPolicy: Readonly<RetryPolicy> = Object.freeze({
  attempts: positiveInt(process.env.AWS_MAX_ATTEMPTS) ?? 8,
  baseMs: 100,
  maxMs: 20_000,
});

function positiveInt(value: string | undefined): number | undefined {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * The delay before retry number `retry` (1-based): exponential backoff with full jitter, a uniform
 * draw in `[0, min(maxMs, baseMs * 2^(retry-1)))`. Full jitter spreads the retries of many workers
 * that failed together (a throttled bucket) instead of sending them back in synchronized waves.
 *
 * @example backoffDelay(3, 100, 20_000) // somewhere in [0, 400) ms
 */
export function backoffDelay(
  retry: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/**
 * Runs `fn` until it succeeds, an error is not retryable, or `attempts` tries are spent; the last
 * error is thrown unchanged. `fn` receives the 1-based attempt number.
 *
 * @example
 * const body = await withRetry(() => fetchPartition(key), {
 *   attempts: 5, baseMs: 100, maxMs: 5_000, isRetryable: isTransientNetworkError,
 * });
 */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const attempts = Math.max(1, Math.floor(options.attempts));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !options.isRetryable(err) || options.signal?.aborted) throw err;
      const delay = backoffDelay(attempt, options.baseMs, options.maxMs, options.random);
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, { signal: options.signal });
    }
  }
}

/** Socket-level error codes that mean "the connection failed, the request may well succeed again". */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * Whether an error (or its `cause`) is a dropped or timed-out connection: socket hang-ups, resets,
 * refused connections, DNS hiccups and request timeouts. Protocol-level errors (HTTP statuses) are
 * for the caller's classifier.
 *
 * @example if (isTransientNetworkError(err)) retryLater();
 */
export function isTransientNetworkError(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && TRANSIENT_CODES.has(code)) return true;
    // The AWS SDK's Node handler names its socket and connection timeouts `TimeoutError`.
    if (e.name === 'TimeoutError') return true;
    if (/socket hang up|^aborted$|premature close/i.test(e.message)) return true;
  }
  return false;
}
