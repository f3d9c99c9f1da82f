// The one retry / backoff / error-budget policy of every engine. The local pool and Slurm apply it
// through runMap (map.ts); the AWS engine compiles the same numbers into its state machine. The error
// budget itself is a rule of the job (src/job/budget.ts), which Summarize applies too.

/** Error codes that no retry can fix: the same bytes give the same error. */
export const PERMANENT_ERRORS: ReadonlySet<string> = new Set([
  'E_CORRUPT',
  'E_UNSUPPORTED',
  'E_PICKLE_GLOBAL',
  'E_BINDING',
  'E_NOT_FOUND',
  'E_ACCESS_DENIED',
  'E_OPTION',
]);

/**
 * Error codes that say the far side cannot be reached at all (not that one request failed): when
 * partitions keep failing with one of these, the job stops instead of trying every partition.
 */
export const UNREACHABLE_ERRORS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'E_STORAGE',
]);

/** Defaults of the policy, one frozen object. */
export const POLICY_DEFAULTS = Object.freeze({
  /** Base delay of the retry backoff, ms. */
  retryBaseMs: 500,
  /** Cap of one backoff delay, ms. */
  retryMaxMs: 30_000,
  /** Partitions failing in a row with one unreachable cause before the job stops. */
  breakerThreshold: 6,
});

/** Exponential backoff with full jitter: a delay in [0, base * 2^(attempt-1)], capped. @example backoffMs(3, 500) */
export function backoffMs(
  attempt: number,
  baseMs: number,
  maxMs: number = POLICY_DEFAULTS.retryMaxMs,
  random = Math.random,
): number {
  return Math.round(random() * Math.min(maxMs, baseMs * 2 ** (attempt - 1)));
}

/**
 * Whether a failed attempt is tried again: not when its error is permanent, not past `maxAttempts`.
 * @example shouldRetry({ code: 'E_WORKER_CRASH' }, 1, 3) // true
 */
export function shouldRetry(error: { readonly code: string }, attempt: number, maxAttempts: number): boolean {
  return !PERMANENT_ERRORS.has(error.code) && attempt < maxAttempts;
}

/**
 * Trips when `threshold` attempts in a row (with no success between them) failed with the same
 * unreachable cause: a dead endpoint then stops the job in a bounded time with one message, instead of
 * every partition being tried, each with its own retries.
 *
 * @example
 * const breaker = new CircuitBreaker(6);
 * if (breaker.failed({ code: 'ECONNREFUSED', message })) stopJob(breaker.reason());
 */
export class CircuitBreaker {
  private code = '';
  private count = 0;
  private last = '';

  constructor(private readonly threshold: number = POLICY_DEFAULTS.breakerThreshold) {}

  /** Notes a success: the run of failures is broken. */
  succeeded(): void {
    this.count = 0;
    this.code = '';
  }

  /** Notes a failed attempt; true when the breaker trips. */
  failed(error: { readonly code: string; readonly message: string }): boolean {
    if (!UNREACHABLE_ERRORS.has(error.code)) {
      this.succeeded();
      return false;
    }
    this.count = error.code === this.code ? this.count + 1 : 1;
    this.code = error.code;
    this.last = error.message;
    return this.count >= this.threshold;
  }

  /** Why it tripped, for the job's error. */
  reason(): string {
    return `${this.count} attempts in a row failed with ${this.code} (last: ${this.last}); the storage or network endpoint looks unreachable: check that it is up and the address (--s3-endpoint, AWS_ENDPOINT_URL_S3, DNS), then run the same job again to resume`;
  }
}
