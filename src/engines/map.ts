// The engine contract: one driver applies the retry, backoff, error-budget and circuit-breaker policy
// to a map, and an engine only says how it runs attempts and what became of each. The local pool takes
// attempts one at a time; Slurm takes every ready one and submits them as one job array.
import { CaiError, ErrorCodes } from '../errors.js';
import type { ResolvedJob } from '../job/spec.js';
import { inputObjectPath } from '../storage/open.js';
import type { PlannedPartition } from '../plan/plan.js';
import type { PartitionFailure, PartitionRecord } from '../worker/record.js';
import type { MapResult } from '../summarize/map-result.js';
import type { EngineEvent } from './events.js';
import { budgetExceeded } from '../job/budget.js';
import { backoffMs, CircuitBreaker, POLICY_DEFAULTS, shouldRetry } from './policy.js';

/** One try of one partition. */
export interface Attempt {
  readonly partition: PlannedPartition;
  /** 1 for the first try. */
  readonly attempt: number;
}

/** How one attempt ended, as the engine saw it. */
export type AttemptResult =
  | { readonly ok: true; readonly record: PartitionRecord }
  | {
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string };
      /** Where the engine kept what the attempt printed (a Slurm task's log), for the failure's record. */
      readonly log?: string;
    };

/**
 * What the driver gives an engine: attempts to run and a place to report how each ended. Retries come
 * back through `next()` after their backoff, ahead of partitions not yet tried.
 */
export interface MapControl {
  readonly job: ResolvedJob;
  /** The next attempt, waiting for retries in their backoff; undefined once no more work will come. */
  next(): Promise<Attempt | undefined>;
  /** Attempts ready now (at most `max`), without waiting; empty when none is ready or the map stopped. */
  take(max?: number): Attempt[];
  /** Attempts ready now. */
  readonly ready: number;
  /** Retries still in their backoff: they will be ready soon (an engine may wait to send them together). */
  readonly waiting: number;
  /** Reports how an attempt ended; the driver decides retry, failure, budget and breaker. */
  settle(attempt: Attempt, result: AttemptResult): void;
  /** Gives back attempts the engine took but did not run (the map stopped meanwhile). */
  giveBack(attempts: readonly Attempt[]): void;
  /** Stops the whole map with this error (a model that cannot load fails every partition alike). */
  abort(error: unknown): void;
  /**
   * Stops the map because the user cancelled its work outside this process (a `scancel` of the run's
   * array): nothing new starts, nothing is retried, and the result says `cancelled` with this reason.
   */
  cancel(reason: string): void;
  /** Whether the map is stopping: start nothing new. */
  readonly stopped: boolean;
  /** Passes an engine's own event (`start`, `progress`) to the job's listener. */
  emit(event: EngineEvent): void;
}

/**
 * An engine: runs attempts taken from `control` until `next()` gives undefined, reporting each with
 * `settle`. It owns its workers (processes, array tasks) and stops them before returning.
 *
 * @example
 * const engine: MapEngine = { name: 'inline', async run(c) { for (let a; (a = await c.next()); ) c.settle(a, await go(a)); } };
 */
export interface MapEngine {
  readonly name: string;
  /**
   * Checks, before planning writes anything, that this engine can take the job into its output (a
   * scheduler that answers, no live work of another job there); throws a setup error (exit 2) if not.
   * `run` may check again: this only moves a refusal ahead of the first write.
   */
  preflight?(job: ResolvedJob): Promise<void>;
  run(control: MapControl): Promise<void>;
}

/** Knobs of the driver that are not part of the job. */
export interface MapOptions {
  readonly onEvent?: (event: EngineEvent) => void;
  /** Base delay of retry backoff, ms (tests make it small). */
  readonly retryBaseMs?: number;
  /** Failed attempts in a row with one unreachable cause before the map stops. */
  readonly breakerThreshold?: number;
}

/**
 * Runs the map of `partitions` on `engine` with the job's policy: up to `maxAttempts` tries per
 * partition with jittered exponential backoff (permanent errors are not retried), retries ahead of
 * untried partitions, and once failures exceed the error budget (or the circuit breaker trips on a dead
 * endpoint) nothing new starts. Partitions never started are counted as `skipped`.
 *
 * @example const result = await runMap(job, plan, localEngine(), { onEvent: console.log });
 */
export async function runMap(
  job: ResolvedJob,
  partitions: readonly PlannedPartition[],
  engine: MapEngine,
  options: MapOptions = {},
): Promise<MapResult> {
  const retryBaseMs = options.retryBaseMs ?? POLICY_DEFAULTS.retryBaseMs;
  const emit = options.onEvent ?? (() => undefined);
  const total = partitions.length;
  const queue: Attempt[] = partitions.map((partition) => ({ partition, attempt: 1 }));
  const records: PartitionRecord[] = [];
  const failures: PartitionFailure[] = [];
  const breaker = new CircuitBreaker(options.breakerThreshold);
  const timers = new Set<NodeJS.Timeout>();
  // Partitions whose retry is due but has not run to an end. If the map stops first (the budget is spent,
  // an interrupt), they end as failed with the error of the try that did run: they did fail, and a
  // summary must not call them "not started".
  const awaitingRetry = new Map<
    string,
    { item: Attempt; error: { code: string; message: string }; log?: string }
  >();
  let retries = 0;
  let sleeping = 0;
  let stopped = false;
  let cancelled: string | undefined;
  let fatal: unknown;
  let wakers: (() => void)[] = [];
  const wake = () => {
    const w = wakers;
    wakers = [];
    for (const f of w) f();
  };
  const stop = (error?: unknown) => {
    if (error !== undefined) fatal ??= error;
    stopped = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    sleeping = 0;
    wake();
  };

  const fail = (item: Attempt, error: { code: string; message: string }, log?: string) => {
    const failure: PartitionFailure = {
      status: 'failed',
      partition: item.partition.id,
      data_path: inputObjectPath(job.input, item.partition.key),
      attempts: item.attempt,
      error: { code: error.code, message: error.message },
      ...(log ? { log } : {}),
    };
    failures.push(failure);
    emit({ type: 'failed', failure });
    if (budgetExceeded(failures.length, total, job.toleratedFailurePercentage)) stop();
  };

  const control: MapControl = {
    job,
    get ready() {
      return stopped ? 0 : queue.length;
    },
    get waiting() {
      return sleeping;
    },
    get stopped() {
      return stopped;
    },
    take(max = Infinity) {
      if (stopped) return [];
      return queue.splice(0, Math.min(max, queue.length));
    },
    async next() {
      for (;;) {
        if (stopped) return undefined;
        const item = queue.shift();
        if (item) return item;
        if (sleeping === 0) return undefined;
        await new Promise<void>((resolve) => wakers.push(resolve));
      }
    },
    giveBack(attempts) {
      queue.unshift(...attempts);
      wake();
    },
    abort(error) {
      stop(error);
    },
    cancel(reason) {
      cancelled ??= reason;
      stop();
    },
    emit,
    settle(item, result) {
      awaitingRetry.delete(item.partition.id);
      if (result.ok) {
        breaker.succeeded();
        records.push(result.record);
        emit({ type: 'done', record: result.record });
        return;
      }
      if (breaker.failed(result.error)) {
        fail(item, result.error, result.log);
        stop(new CaiError(ErrorCodes.unreachable, item.partition.key, breaker.reason()));
        return;
      }
      if (!stopped && shouldRetry(result.error, item.attempt, job.maxAttempts)) {
        const delayMs = backoffMs(item.attempt, retryBaseMs);
        retries++;
        awaitingRetry.set(item.partition.id, { item, error: result.error, log: result.log });
        sleeping++;
        emit({
          type: 'retry',
          partition: item.partition,
          attempt: item.attempt,
          error: result.error,
          delayMs,
        });
        const timer = setTimeout(() => {
          timers.delete(timer);
          sleeping--;
          // Ahead of untried partitions: a retried partition must reach its last attempt in bounded
          // time, not after every other partition has been tried.
          queue.unshift({ partition: item.partition, attempt: item.attempt + 1 });
          wake();
        }, delayMs);
        timers.add(timer);
        return;
      }
      fail(item, result.error, result.log);
    },
  };

  try {
    await engine.run(control);
  } finally {
    stop();
  }
  for (const { item, error, log } of awaitingRetry.values()) {
    retries--; // scheduled, never run
    fail(item, error, log);
  }
  if (fatal) throw fatal instanceof CaiError ? fatal : new CaiError('E_WORKER', job.model, String(fatal));
  const done = new Set([...records.map((r) => r.partition), ...failures.map((f) => f.partition)]);
  return {
    records,
    failures,
    retries,
    skipped: partitions.filter((p) => !done.has(p.id)).length,
    ...(cancelled ? { cancelled } : {}),
  };
}
