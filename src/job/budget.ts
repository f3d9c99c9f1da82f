// The error budget: how many failed partitions a job tolerates. A rule of the job, not of an engine:
// the map stops on it (src/engines/policy.ts, the AWS state machine) and Summarize decides the status by it.

/**
 * How many partitions may fail before the job fails: `floor(total * percentage / 100)`. A job fails
 * when its failures exceed this count, on every engine (the AWS engine passes it to the Distributed
 * Map as `ToleratedFailureCount`, which Step Functions reads the same way).
 *
 * @example toleratedFailures(40, 2.5) // 1
 */
export function toleratedFailures(total: number, percentage: number): number {
  if (total <= 0 || percentage <= 0) return 0;
  if (percentage >= 100) return total;
  // Rounded to 1e-9 first: 2.5% of 40 is 0.999...9 in floating point, but one failure is tolerated.
  return Math.floor(Math.round(((total * percentage) / 100) * 1e9) / 1e9);
}

/** Whether `failures` exceed the share of `total` partitions the job tolerates. @example budgetExceeded(2, 40, 2.5) // true */
export function budgetExceeded(failures: number, total: number, toleratedPercentage: number): boolean {
  return total > 0 && failures > toleratedFailures(total, toleratedPercentage);
}
