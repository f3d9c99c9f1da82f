// The files a Distributed Map's ResultWriter exports, and how Summarize reads failures out of them.
import type { PlannedPartition } from '../../plan/plan.js';
import type { Store } from '../../storage/store.js';
import { CRASH_ERRORS, crashCode, lambdaMessage, parsePartitionErrors } from './lambda-errors.js';
import { readJson } from '../../storage/json.js';

/** A list of result files of one status. */
export interface ResultFile {
  readonly Key: string;
  readonly Size: number;
}

/** `<prefix>/<map run id>/manifest.json`, as Step Functions writes it. */
export interface MapRunManifest {
  readonly DestinationBucket: string;
  readonly MapRunArn: string;
  readonly ResultFiles: {
    readonly FAILED: readonly ResultFile[];
    readonly PENDING: readonly ResultFile[];
    readonly SUCCEEDED: readonly ResultFile[];
  };
}

/** One child workflow execution in a `SUCCEEDED_n.json`, `FAILED_n.json` or `PENDING_n.json` file. */
export interface ChildExecutionResult {
  readonly ExecutionArn: string;
  readonly Name?: string;
  /** The child's input, as a JSON string. */
  readonly Input: string;
  readonly InputDetails: { readonly Included: boolean };
  readonly Output?: string;
  readonly OutputDetails?: { readonly Included: boolean };
  readonly Error?: string;
  readonly Cause?: string;
  readonly Status: 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING';
  readonly StartDate?: string;
  readonly StopDate?: string;
  readonly StateMachineArn: string;
  readonly RedriveCount: number;
  readonly RedriveStatus: string;
}

/** A partition that failed in the Map, as read from its results. */
export interface MapFailure {
  readonly partition: string;
  readonly attempts: number;
  readonly code: string;
  readonly message: string;
}

/** The partitions a child execution's input carries: one (ItemSelector) or a batch (ItemBatcher). */
export function partitionsOfChildInput(input: string): PlannedPartition[] {
  const value = JSON.parse(input) as { partition?: PlannedPartition; Items?: PlannedPartition[] };
  return value.Items ?? (value.partition ? [value.partition] : []);
}

/**
 * Finds the ResultWriter manifest of a map run under `folder` of `store` (the Map's result prefix),
 * given the key the Map reported, or by listing when the Map failed and reported none.
 *
 * @example await findMapManifest(out, 'aws-runs/exec-1/map', undefined) // 'aws-runs/exec-1/map/<id>/manifest.json'
 */
export async function findMapManifest(
  store: Store,
  folder: string,
  reportedKey: string | undefined,
  storePrefix: string,
): Promise<string | undefined> {
  if (reportedKey) return reportedKey.slice(storePrefix.length);
  let found: string | undefined;
  for await (const o of store.list(folder)) if (o.key.endsWith('/manifest.json')) found = o.key;
  return found;
}

/**
 * Every failed partition in a map run's exported results, with the code and message of its last
 * attempt: from CAI's own error lines when the handler reported them, else from the Lambda or Step
 * Functions error (a timeout, a crash) that ended the child execution.
 *
 * @example const failures = await readMapFailures(out, manifestKey, 'out/', 3);
 */
export async function readMapFailures(
  store: Store,
  manifestKey: string,
  storePrefix: string,
  crashAttempts: number,
): Promise<MapFailure[]> {
  const manifest = await readJson<MapRunManifest>(store, manifestKey);
  const failures: MapFailure[] = [];
  for (const file of manifest.ResultFiles.FAILED) {
    const entries = await readJson<ChildExecutionResult[]>(store, file.Key.slice(storePrefix.length));
    for (const entry of entries) {
      const message = lambdaMessage(entry.Cause);
      const reported = new Map(parsePartitionErrors(message).map((e) => [e.partition, e]));
      for (const p of partitionsOfChildInput(entry.Input)) {
        const own = reported.get(p.id);
        if (own)
          failures.push({ partition: p.id, attempts: own.attempt, code: own.code, message: own.message });
        else if (reported.size === 0) {
          const error = entry.Error ?? entry.Status;
          failures.push({
            partition: p.id,
            attempts: error in CRASH_ERRORS ? crashAttempts : 1,
            code: crashCode(error, message) ?? error,
            message: message || `the child execution ended ${entry.Status}`,
          });
        }
      }
    }
  }
  return failures;
}
