import { randomUUID } from 'node:crypto';
import type {
  ChildExecutionResult,
  MapRunManifest,
  ResultFile,
} from '../../../src/engines/aws/map-results.js';
import {
  runStates,
  type ContextObject,
  type InterpreterServices,
  type StateJson,
  type StatesJson,
} from './interpreter.js';
import { evaluateTemplate, readPath, StatesError } from './paths.js';
import { OFFLINE_ENV } from './template.js';

/** Item counts of a map run, as DescribeMapRun reports them. */
export interface MapRunCounts {
  pending: number;
  running: number;
  succeeded: number;
  failed: number;
  aborted: number;
  total: number;
}

/** A map run's state, reported as it changes. */
export interface MapRunProgress {
  readonly mapRunArn: string;
  readonly status: 'RUNNING' | 'SUCCEEDED' | 'FAILED';
  /** Items (partitions), counting every item of a batch. */
  readonly itemCounts: Readonly<MapRunCounts>;
  /** Child workflow executions. */
  readonly executionCounts: Readonly<MapRunCounts>;
  /** The effective settings of the run. */
  readonly maxConcurrency: number;
  readonly toleratedFailurePercentage: number | undefined;
  readonly batches: readonly number[];
}

/** What a Distributed Map needs from the simulated AWS around it. */
export interface DistributedMapEnvironment {
  readonly storage: {
    get(bucket: string, key: string): Promise<Uint8Array>;
    put(bucket: string, key: string, body: string): Promise<void>;
  };
  /** Whether the state machine's role may do `action` on `resource`. */
  authorize(action: string, resource: string): boolean;
  readonly stateMachine: { readonly arn: string; readonly name: string };
  /** The services children run with. */
  readonly services: InterpreterServices;
  onMapRun?(progress: MapRunProgress): void;
}

const S3_GET = /^arn:aws[\w-]*:states:::s3:getObject$/;
const S3_PUT = /^arn:aws[\w-]*:states:::s3:putObject$/;
const s3Arn = (bucket: string, key: string) => `arn:${OFFLINE_ENV.partition}:s3:::${bucket}/${key}`;

function numberField(
  state: StateJson,
  field: string,
  input: unknown,
  context: ContextObject,
): number | undefined {
  if (state[field] !== undefined) return Number(state[field]);
  const path = state[`${field}Path`];
  if (path === undefined) return undefined;
  const value = readPath(String(path), input, context);
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new StatesError(
      'States.Runtime',
      `${field}Path ${String(path)} gave ${JSON.stringify(value)}, not a non-negative number`,
    );
  }
  return value;
}

async function readItems(
  state: StateJson,
  input: unknown,
  context: ContextObject,
  env: DistributedMapEnvironment,
): Promise<unknown[]> {
  const reader = state.ItemReader as
    | { Resource?: string; ReaderConfig?: { InputType?: string; MaxItems?: number }; Parameters?: unknown }
    | undefined;
  if (!reader)
    throw new StatesError(
      'States.Runtime',
      'the offline executor runs Distributed Maps with an ItemReader only',
    );
  if (!S3_GET.test(String(reader.Resource)))
    throw new StatesError('States.Runtime', `ItemReader resource ${reader.Resource} is not s3:getObject`);
  const { Bucket, Key } = evaluateTemplate(reader.Parameters, input, context) as {
    Bucket: string;
    Key: string;
  };
  const type = reader.ReaderConfig?.InputType;
  if (!env.authorize('s3:GetObject', s3Arn(Bucket, Key))) {
    throw new StatesError(
      'States.ItemReaderFailed',
      `AccessDenied: the state machine's role may not read s3://${Bucket}/${Key}`,
    );
  }
  let items: unknown[];
  try {
    const text = new TextDecoder().decode(await env.storage.get(Bucket, Key));
    if (type === 'JSON') items = JSON.parse(text) as unknown[];
    else if (type === 'JSONL')
      items = text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as unknown);
    else throw new Error(`InputType ${type} is not implemented offline`);
    if (!Array.isArray(items)) throw new Error('the JSON file does not hold an array');
  } catch (err) {
    throw new StatesError('States.ItemReaderFailed', `s3://${Bucket}/${Key}: ${(err as Error).message}`);
  }
  const max = reader.ReaderConfig?.MaxItems;
  return max ? items.slice(0, max) : items;
}

// Child inputs: each selected item, or batches `{ Items, BatchInput }` cut by count and bytes.
function childInputs(
  state: StateJson,
  items: unknown[],
  input: unknown,
  context: ContextObject,
): { input: unknown; items: number }[] {
  const selected = items.map((value, index) =>
    state.ItemSelector === undefined
      ? value
      : evaluateTemplate(state.ItemSelector, input, {
          ...context,
          Map: { Item: { Index: index, Value: value } },
        }),
  );
  const batcher = state.ItemBatcher as Record<string, unknown> | undefined;
  if (!batcher) return selected.map((s) => ({ input: s, items: 1 }));
  const maxItems = numberField(batcher as StateJson, 'MaxItemsPerBatch', input, context) ?? Infinity;
  const maxBytes = numberField(batcher as StateJson, 'MaxInputBytesPerBatch', input, context) ?? 256 * 1024;
  const batchInput =
    batcher.BatchInput === undefined ? undefined : evaluateTemplate(batcher.BatchInput, input, context);
  const out: { input: unknown; items: number }[] = [];
  let current: unknown[] = [];
  const flush = () => {
    if (current.length)
      out.push({
        input: batchInput === undefined ? { Items: current } : { Items: current, BatchInput: batchInput },
        items: current.length,
      });
    current = [];
  };
  for (const s of selected) {
    const size = Buffer.byteLength(JSON.stringify({ Items: [...current, s], BatchInput: batchInput }));
    if (current.length && (current.length >= maxItems || size > maxBytes)) flush();
    current.push(s);
  }
  flush();
  return out;
}

/**
 * Runs a Map state in DISTRIBUTED mode the way Step Functions does: reads the items with the ItemReader
 * (a JSON or JSONL object in S3), applies ItemSelector and ItemBatcher, starts one child execution of the
 * ItemProcessor per item or batch with at most MaxConcurrency at once, counts failed items against
 * ToleratedFailurePercentage/Count (over the total) and, once exceeded, starts no more children and
 * fails with `States.ExceedToleratedFailureThreshold` after exporting every child's result with the
 * ResultWriter (`<prefix>/<map run id>/SUCCEEDED_0.json`, `FAILED_0.json`, `PENDING_0.json`,
 * `manifest.json`). S3 access goes through the state machine role's policy.
 *
 * @example const output = await runDistributedMap('Inference', state, input, context, env);
 */
export async function runDistributedMap(
  name: string,
  state: StateJson,
  input: unknown,
  context: ContextObject,
  env: DistributedMapEnvironment,
): Promise<unknown> {
  const processor = state.ItemProcessor as StatesJson & {
    ProcessorConfig?: { Mode?: string; ExecutionType?: string };
  };
  if (processor.ProcessorConfig?.Mode !== 'DISTRIBUTED') {
    throw new StatesError('States.Runtime', `Map "${name}": the offline executor runs DISTRIBUTED maps only`);
  }
  const label = String(state.Label ?? name);
  const mapRunId = randomUUID();
  const mapRunArn = `arn:${OFFLINE_ENV.partition}:states:${OFFLINE_ENV.region}:${OFFLINE_ENV.account}:mapRun:${env.stateMachine.name}/${label}:${mapRunId}`;
  const childMachineArn = `${env.stateMachine.arn}/${label}`;

  const items = await readItems(state, input, context, env);
  const children = childInputs(state, items, input, context);
  const concurrency = numberField(state, 'MaxConcurrency', input, context) || 10_000;
  const pct = numberField(state, 'ToleratedFailurePercentage', input, context);
  const count = numberField(state, 'ToleratedFailureCount', input, context);
  // Step Functions' own checks of these fields: whole numbers, a percentage at most 100.
  for (const [field, value, max] of [
    ['MaxConcurrency', concurrency, 10_000],
    ['ToleratedFailurePercentage', pct, 100],
    ['ToleratedFailureCount', count, Infinity],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value > max)) {
      throw new StatesError(
        'States.Runtime',
        `Map "${name}": ${field} must be an integer${max < Infinity ? ` from 0 to ${max}` : ''}, got ${value}`,
      );
    }
  }
  const total = items.length;
  const itemCounts: MapRunCounts = { pending: total, running: 0, succeeded: 0, failed: 0, aborted: 0, total };
  const executionCounts: MapRunCounts = {
    pending: children.length,
    running: 0,
    succeeded: 0,
    failed: 0,
    aborted: 0,
    total: children.length,
  };
  const batches = children.map((c) => c.items);
  const report = (status: MapRunProgress['status']) =>
    env.onMapRun?.({
      mapRunArn,
      status,
      itemCounts: { ...itemCounts },
      executionCounts: { ...executionCounts },
      maxConcurrency: concurrency,
      toleratedFailurePercentage: pct,
      batches,
    });
  const exceeded = () =>
    (pct === undefined && count === undefined && itemCounts.failed > 0) ||
    (pct !== undefined && total > 0 && (itemCounts.failed / total) * 100 > pct) ||
    (count !== undefined && itemCounts.failed > count);

  const results: (ChildExecutionResult | undefined)[] = children.map(() => undefined);
  let failedRun = false;
  let next = 0;
  report('RUNNING');
  const worker = async (): Promise<void> => {
    while (!failedRun && next < children.length) {
      const index = next++;
      const child = children[index];
      const childName = randomUUID();
      const executionArn = `arn:${OFFLINE_ENV.partition}:states:${OFFLINE_ENV.region}:${OFFLINE_ENV.account}:execution:${env.stateMachine.name}/${label}:${childName}`;
      const startDate = new Date().toISOString();
      const childContext: ContextObject = {
        Execution: { Id: executionArn, Name: childName, StartTime: startDate, Input: child.input },
        StateMachine: { Id: childMachineArn, Name: `${env.stateMachine.name}/${label}` },
      };
      const base = {
        ExecutionArn: executionArn,
        Name: childName,
        Input: JSON.stringify(child.input),
        InputDetails: { Included: true },
        StartDate: startDate,
        StateMachineArn: childMachineArn,
        RedriveCount: 0,
      };
      itemCounts.pending -= child.items;
      itemCounts.running += child.items;
      executionCounts.pending--;
      executionCounts.running++;
      report('RUNNING');
      let entry: ChildExecutionResult;
      try {
        const output = await runStates(processor, child.input, childContext, env.services);
        entry = {
          ...base,
          Output: JSON.stringify(output),
          OutputDetails: { Included: true },
          Status: 'SUCCEEDED',
          RedriveStatus: 'NOT_REDRIVABLE',
          StopDate: new Date().toISOString(),
        };
      } catch (err) {
        const e = err instanceof StatesError ? err : new StatesError('States.Runtime', String(err));
        entry = {
          ...base,
          Error: e.error,
          Cause: e.cause,
          Status: 'FAILED',
          RedriveStatus: 'REDRIVABLE',
          StopDate: new Date().toISOString(),
        };
      }
      itemCounts.running -= child.items;
      executionCounts.running--;
      // A child still running when the run failed was stopped by Step Functions (its Lambda finished anyway).
      const status = failedRun ? 'ABORTED' : entry.Status;
      results[index] = { ...entry, Status: status };
      const key = status === 'SUCCEEDED' ? 'succeeded' : status === 'ABORTED' ? 'aborted' : 'failed';
      itemCounts[key] += child.items;
      executionCounts[key]++;
      if (key === 'failed' && exceeded()) failedRun = true;
      report('RUNNING');
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, children.length) }, worker));

  const byStatus = {
    SUCCEEDED: [] as ChildExecutionResult[],
    FAILED: [] as ChildExecutionResult[],
    PENDING: [] as ChildExecutionResult[],
  };
  children.forEach((child, i) => {
    const r = results[i];
    if (!r)
      byStatus.PENDING.push({
        ExecutionArn: '',
        Input: JSON.stringify(child.input),
        InputDetails: { Included: true },
        Status: 'PENDING',
        StateMachineArn: childMachineArn,
        RedriveCount: 0,
        RedriveStatus: 'NOT_REDRIVABLE',
      });
    else (r.Status === 'SUCCEEDED' ? byStatus.SUCCEEDED : byStatus.FAILED).push(r);
  });
  itemCounts.aborted += itemCounts.pending;
  itemCounts.pending = 0;
  report(failedRun ? 'FAILED' : 'SUCCEEDED');

  let output: unknown;
  const writer = state.ResultWriter as
    { Resource?: string; Parameters?: unknown; WriterConfig?: unknown } | undefined;
  if (writer) {
    if (!S3_PUT.test(String(writer.Resource)) || writer.WriterConfig !== undefined) {
      throw new StatesError(
        'States.Runtime',
        'the offline executor implements ResultWriter s3:putObject without WriterConfig only',
      );
    }
    const { Bucket, Prefix } = evaluateTemplate(writer.Parameters, input, context) as {
      Bucket: string;
      Prefix?: string;
    };
    const folder = `${Prefix ? `${Prefix.replace(/\/+$/, '')}/` : ''}${mapRunId}/`;
    const files: Record<keyof typeof byStatus, ResultFile[]> = { FAILED: [], PENDING: [], SUCCEEDED: [] };
    const write = async (key: string, body: string) => {
      if (!env.authorize('s3:PutObject', s3Arn(Bucket, key))) {
        throw new StatesError(
          'States.ResultWriterFailed',
          `AccessDenied: the state machine's role may not write s3://${Bucket}/${key}`,
        );
      }
      try {
        await env.storage.put(Bucket, key, body);
      } catch (err) {
        throw new StatesError(
          'States.ResultWriterFailed',
          `s3://${Bucket}/${key}: ${(err as Error).message}`,
        );
      }
      return { Key: key, Size: Buffer.byteLength(body) };
    };
    for (const status of ['SUCCEEDED', 'FAILED', 'PENDING'] as const) {
      if (byStatus[status].length)
        files[status].push(await write(`${folder}${status}_0.json`, JSON.stringify(byStatus[status])));
    }
    const manifest: MapRunManifest = { DestinationBucket: Bucket, MapRunArn: mapRunArn, ResultFiles: files };
    const manifestKey = `${folder}manifest.json`;
    await write(manifestKey, JSON.stringify(manifest));
    output = { MapRunArn: mapRunArn, ResultWriterDetails: { Bucket, Key: manifestKey } };
  } else {
    output = results.map((r) => (r?.Output ? (JSON.parse(r.Output) as unknown) : null));
  }
  if (failedRun) {
    throw new StatesError(
      'States.ExceedToleratedFailureThreshold',
      `Map "${name}" (${mapRunArn}): the tolerated failure threshold was exceeded`,
    );
  }
  return output;
}
