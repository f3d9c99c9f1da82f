/** What Lambda's GetAccountSettings says about concurrency in the deployment's region. */
export interface AccountConcurrency {
  /** `AccountLimit.ConcurrentExecutions`: 1,000 by default, often 10 on a new account. */
  readonly limit: number;
  /** `AccountLimit.UnreservedConcurrentExecutions`: what functions without reserved concurrency share. */
  readonly unreserved: number;
}

/** Concurrent executions kept for Initialize and Summarize (and one spare) when capping the Map. */
const CONTROL_FUNCTIONS = 2;

/**
 * The Map's MaxConcurrency for an account: the stack's setting, capped to the concurrency the account's
 * unreserved pool allows (less two for Initialize and Summarize), with a warning that says why and what
 * to do. Above the account's pool the extra children would only be throttled and wait in retries.
 *
 * @example capConcurrency(1000, { limit: 10, unreserved: 10 }) // { maxConcurrency: 8, warning: '...' }
 */
export function capConcurrency(
  maxConcurrency: number,
  account: AccountConcurrency | undefined,
): { maxConcurrency: number; warning?: string } {
  if (!account) return { maxConcurrency };
  const usable = Math.max(1, account.unreserved - CONTROL_FUNCTIONS);
  if (maxConcurrency <= usable) return { maxConcurrency };
  return {
    maxConcurrency: usable,
    warning:
      `the account runs at most ${account.unreserved} Lambda functions at once in this region ` +
      `(concurrency limit ${account.limit}); the Map's MaxConcurrency is capped from ${maxConcurrency} to ${usable}, ` +
      'keeping 2 for Initialize and Summarize. Ask for more with Service Quotas ("Lambda: Concurrent executions"), ' +
      'then deploy again; throttled invocations are retried, not failed',
  };
}
