// The files a Distributed Map's ResultWriter exports, and how Summarize reads failures out of them.
import { CaiError, ErrorCodes } from '../../errors.js';
import type { PlannedPartition } from '../../plan/plan.js';
import type { Store } from '../../storage/store.js';
import type { PartitionRecord } from '../../worker/record.js';
import { CRASH_ERRORS, crashCode, lambdaMessage, parsePartitionErrors } from './lambda-errors.js';
import { readJson } from '../../storage/json.js';
import type { InferenceResult } from './protocol.js';

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

/** How many bytes of a result file Summarize reads at a time. */
export const RESULT_FILE_CHUNK = 16 * 1024 * 1024;

/**
 * The elements of a JSON array read in byte chunks, without the whole text in memory at once (a
 * SUCCEEDED result file of a large map run is hundreds of MB, and V8's strings stop at 512 MB). Each
 * element must be an object or an array; the bytes of one are handed on whole. Structural characters
 * are ASCII, which no byte of a multi-byte UTF-8 character is, so the scan works on bytes.
 */
class JsonArraySplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private partial: Uint8Array[] = [];

  constructor(private readonly name: string) {}

  push(chunk: Uint8Array, onElement: (bytes: Buffer) => void): void {
    let start = this.depth >= 2 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === 0x5c) this.escaped = true;
        else if (b === 0x22) this.inString = false;
      } else if (b === 0x22) {
        if (this.depth < 2) this.fail(`a string where an element or array was expected`);
        this.inString = true;
      } else if (b === 0x7b || b === 0x5b) {
        if (this.depth === 0 && b !== 0x5b) this.fail('does not hold a JSON array');
        if (++this.depth === 2) start = i;
      } else if (b === 0x7d || b === 0x5d) {
        if (--this.depth === 1) {
          onElement(Buffer.concat([...this.partial, chunk.subarray(start, i + 1)]));
          this.partial = [];
          start = -1;
        } else if (this.depth < 0) this.fail('closes more than it opens');
      } else if (this.depth < 2 && b !== 0x2c && b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) {
        this.fail(`holds ${String.fromCharCode(b)} between elements`);
      }
    }
    if (start >= 0) this.partial.push(chunk.subarray(start));
  }

  end(): void {
    if (this.depth !== 0 || this.inString) this.fail('ends before its array does');
  }

  private fail(what: string): never {
    throw new CaiError(ErrorCodes.corrupt, this.name, `is not a JSON array of objects: ${what}`);
  }
}

/**
 * The records this map run's children returned (`InferenceResult.partitions[].record`), by partition,
 * from the SUCCEEDED result files of its ResultWriter, read in ranges of `chunkBytes`. A
 * child that returned no record (a result over the size cap, a skipped partition, a worker that
 * predates records in results) is simply absent: Summarize reads those records from the output. A
 * partition reported twice keeps its later report.
 *
 * @example const reported = await readMapRecords(out, manifestKey, 'out/');
 */
export async function readMapRecords(
  store: Store,
  manifestKey: string,
  storePrefix: string,
  chunkBytes = RESULT_FILE_CHUNK,
): Promise<Map<string, PartitionRecord>> {
  const manifest = await readJson<MapRunManifest>(store, manifestKey);
  const records = new Map<string, PartitionRecord>();
  for (const file of manifest.ResultFiles.SUCCEEDED) {
    const key = file.Key.slice(storePrefix.length);
    const splitter = new JsonArraySplitter(store.describe(key));
    const take = (bytes: Buffer) => {
      const entry = JSON.parse(bytes.toString('utf8')) as ChildExecutionResult;
      if (entry.Status !== 'SUCCEEDED' || !entry.Output) return;
      const output = JSON.parse(entry.Output) as Partial<InferenceResult> | null;
      for (const p of output?.partitions ?? [])
        if (p.status === 'ok' && p.record && p.record.partition === p.id) records.set(p.id, p.record);
    };
    for (let at = 0; at < file.Size; at += chunkBytes)
      splitter.push(await store.getRange(key, at, Math.min(file.Size, at + chunkBytes)), take);
    splitter.end();
  }
  return records;
}
