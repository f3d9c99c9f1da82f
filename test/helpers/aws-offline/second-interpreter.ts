// A second, independent interpreter of the synthesized definition: aws-local-stepfunctions runs every
// state, evaluates every JSONPath, Retry and Catch itself. It has no Distributed Map, so that one state
// is replaced by a Task whose Parameters carry the Map's JSONPath fields (evaluated by the interpreter)
// and whose local handler does what the Step Functions documentation says a Distributed Map does,
// running each child workflow (the ItemProcessor) with aws-local-stepfunctions as well.
import { randomUUID } from 'node:crypto';
import type { ChildExecutionResult, MapRunManifest } from '../../../src/engines/aws/map-results.js';
import { S3Store } from '../../../src/storage/s3-store.js';
import { CAI_HANDLERS } from './handlers.js';
import { OfflineLambdaService, type HandlerFactory } from './lambda-service.js';
import { StatesError } from './paths.js';
import { loadSynthesizedTemplate } from './template.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type State = Record<string, Json>;

// aws-local-stepfunctions 3 uses Promise.withResolvers, which Node 20 lacks.
function polyfillWithResolvers(): void {
  const P = Promise as unknown as { withResolvers?: unknown };
  P.withResolvers ??= function withResolvers<T>() {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((a, b) => {
      resolve = a;
      reject = b;
    });
    return { promise, resolve, reject };
  };
}

// Errors as aws-local-stepfunctions matches them: by name, the message becoming the Catch's Cause.
const asStatesError = (err: unknown): Error => {
  if (err instanceof StatesError) return Object.assign(new Error(err.cause), { name: err.error });
  return err instanceof Error ? err : new Error(String(err));
};

/** How a run through aws-local-stepfunctions ended. */
export interface SecondInterpreterResult {
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  /** Names of the states the interpreter entered, in order (children's included). */
  readonly states: readonly string[];
}

/** The state name the Distributed Map's replacement Task keeps. */
const MAP_RESOURCE = 'arn:aws:states:::cai:distributedMap';

/**
 * Runs a synthesized CAI template's definition with aws-local-stepfunctions: Lambda Tasks invoke CAI's
 * real handlers (in process, as the template configures them), S3 is the server at `s3Endpoint`.
 * Limits of the interpreter, not of the definition: `$$.State.RetryCount` is always 0 (it has no
 * per-retry context; CAI's children count their attempts in their own data), and retry and Wait state
 * waits are 0 ms.
 *
 * @example const r = await runWithSecondInterpreter({ template, input: { job }, s3Endpoint });
 */
export async function runWithSecondInterpreter(options: {
  template: string;
  input: unknown;
  s3Endpoint: string;
  /** The functions' handlers by handler name (CAI's own unless a test injects faults). */
  handlers?: Readonly<Record<string, HandlerFactory>>;
}): Promise<SecondInterpreterResult> {
  polyfillWithResolvers();
  const { StateMachine } = await import('aws-local-stepfunctions');
  const template = await loadSynthesizedTemplate(options.template);
  const lambda = new OfflineLambdaService(template.functions, options.handlers ?? CAI_HANDLERS);
  const definition = structuredClone(template.stateMachine.definition) as { States: Record<string, State> };
  const states: string[] = [];
  const store = (bucket: string) => new S3Store(`s3://${bucket}`, { s3Endpoint: options.s3Endpoint });
  const name = randomUUID();
  const context = {
    Execution: {
      Id: `offline:${name}`,
      Name: name,
      StartTime: new Date().toISOString(),
      Input: options.input,
    },
  };

  // Every Lambda Task, in the top level and in the Map's processor, invokes its function.
  const lambdaHandlers = (all: Record<string, State>) =>
    Object.fromEntries(
      Object.entries(all)
        .filter(([, s]) => s.Type === 'Task' && String(s.Resource).includes(':lambda:'))
        .map(([n, s]) => [
          n,
          async (input: unknown) => {
            states.push(n);
            try {
              return (await lambda.invoke(String(s.Resource), input)) as Json;
            } catch (err) {
              throw asStatesError(err);
            }
          },
        ]),
    );
  const zeroRetries = (all: Record<string, State>) =>
    Object.fromEntries(
      Object.entries(all)
        .filter(([, s]) => s.Retry)
        .map(([n]) => [n, 0]),
    );

  const zeroWaits = (all: Record<string, State>) =>
    Object.fromEntries(
      Object.entries(all)
        .filter(([, s]) => s.Type === 'Wait')
        .map(([n]) => [n, 0]),
    );

  let mapName: string | undefined;
  let map: State | undefined;
  for (const [n, s] of Object.entries(definition.States)) {
    const processor = s.ItemProcessor as { ProcessorConfig?: { Mode?: string } } | undefined;
    if (s.Type === 'Map' && processor?.ProcessorConfig?.Mode === 'DISTRIBUTED') [mapName, map] = [n, s];
  }
  if (!mapName || !map) throw new Error('the definition has no Distributed Map');
  const batcher = map.ItemBatcher as { MaxItemsPerBatch?: number; BatchInput?: Json } | undefined;
  const reader = map.ItemReader as { Parameters: Json; ReaderConfig?: { InputType?: string } };
  const writer = map.ResultWriter as { Parameters: Json } | undefined;
  const processor = map.ItemProcessor as unknown as { StartAt: string; States: Record<string, State> };
  // The Task stands where the Map stood: same Next, ResultPath and Catch; its Parameters are the Map's
  // JSONPath-bearing fields, so the interpreter resolves them against the Map's input.
  definition.States[mapName] = {
    Type: 'Task',
    Resource: MAP_RESOURCE,
    Parameters: {
      reader: reader.Parameters,
      ...(map.MaxConcurrencyPath ? { 'maxConcurrency.$': map.MaxConcurrencyPath } : {}),
      ...(map.ToleratedFailureCountPath ? { 'toleratedFailureCount.$': map.ToleratedFailureCountPath } : {}),
      ...(writer ? { writer: writer.Parameters } : {}),
      ...(batcher?.BatchInput ? { batchInput: batcher.BatchInput } : {}),
      'input.$': '$',
    },
    ...(map.ResultPath !== undefined ? { ResultPath: map.ResultPath } : {}),
    ...(map.Catch ? { Catch: map.Catch } : {}),
    ...(map.Next ? { Next: map.Next } : { End: true }),
  };

  const selector = map.ItemSelector;
  // ProcessorConfig belongs to the Map, not to a state machine of its own.
  const { ProcessorConfig: _config, ...childDefinition } = processor as typeof processor & {
    ProcessorConfig?: unknown;
  };
  const child = new StateMachine(childDefinition as never, { validationOptions: { checkArn: false } });
  const select =
    selector === undefined
      ? undefined
      : new StateMachine(
          {
            StartAt: 'Select',
            States: { Select: { Type: 'Pass', Parameters: selector, End: true } },
          } as never,
          { validationOptions: { checkArn: false } },
        );

  // A Distributed Map as documented: items from the ItemReader's JSON array, each through ItemSelector
  // (with $$.Map.Item) or in ItemBatcher batches ({ Items, BatchInput }), one child execution each, at
  // most MaxConcurrency at once; more failed items than ToleratedFailureCount fail the Map with
  // States.ExceedToleratedFailureThreshold; ResultWriter exports the children by status and a manifest.
  const runMap = async (p: {
    reader: { Bucket: string; Key: string };
    maxConcurrency?: number;
    toleratedFailureCount?: number;
    writer?: { Bucket: string; Prefix: string };
    batchInput?: Json;
    input: Json;
  }): Promise<Json> => {
    states.push(mapName);
    if (reader.ReaderConfig?.InputType !== 'JSON') throw new Error('only a JSON ItemReader is modelled');
    const items = JSON.parse(
      new TextDecoder().decode(await store(p.reader.Bucket).get(p.reader.Key)),
    ) as Json[];
    const inputs: Json[] = [];
    if (batcher) {
      const size = batcher.MaxItemsPerBatch ?? items.length;
      for (let i = 0; i < items.length; i += size) {
        const batch = items.slice(i, i + size);
        inputs.push(
          p.batchInput === undefined ? { Items: batch } : { Items: batch, BatchInput: p.batchInput },
        );
      }
    } else {
      for (const [index, value] of items.entries()) {
        inputs.push(
          select
            ? ((await select.run(p.input, {
                context: { ...context, Map: { Item: { Index: index, Value: value } } } as never,
              }).result) as Json)
            : value,
        );
      }
    }
    const results: ChildExecutionResult[] = [];
    let failedItems = 0;
    let exceeded = false;
    let next = 0;
    const lane = async () => {
      while (!exceeded && next < inputs.length) {
        const i = next++;
        const base = {
          ExecutionArn: `offline:${name}/child/${i}`,
          Input: JSON.stringify(inputs[i]),
          InputDetails: { Included: true },
          StateMachineArn: 'offline',
          RedriveCount: 0,
          RedriveStatus: 'NOT_REDRIVABLE',
        };
        try {
          const output = await child.run(inputs[i], {
            overrides: {
              taskResourceLocalHandlers: lambdaHandlers(processor.States),
              retryIntervalOverrides: zeroRetries(processor.States),
              waitTimeOverrides: zeroWaits(processor.States),
            },
            context: { ...context, State: { RetryCount: 0 } } as never,
          }).result;
          results.push({ ...base, Status: 'SUCCEEDED', Output: JSON.stringify(output) });
        } catch (err) {
          const e = (err as { cause?: unknown }).cause ?? err;
          const { name: error, message } = e instanceof Error ? e : new Error(String(e));
          results.push({ ...base, Status: 'FAILED', Error: error, Cause: message });
          failedItems += batcher ? ((inputs[i] as { Items: Json[] }).Items?.length ?? 1) : 1;
          if (failedItems > (p.toleratedFailureCount ?? 0)) exceeded = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(p.maxConcurrency || 10_000, inputs.length) }, lane));
    let output: Json = null;
    if (p.writer) {
      const s = store(p.writer.Bucket);
      const folder = `${p.writer.Prefix}/${randomUUID()}/`;
      const manifest: MapRunManifest = {
        DestinationBucket: p.writer.Bucket,
        MapRunArn: `offline:${name}/map`,
        ResultFiles: { FAILED: [], PENDING: [], SUCCEEDED: [] },
      };
      for (const status of ['SUCCEEDED', 'FAILED'] as const) {
        const of = results.filter((r) => r.Status === status);
        if (!of.length) continue;
        const body = JSON.stringify(of);
        await s.put(`${folder}${status}_0.json`, body);
        (manifest.ResultFiles[status] as { Key: string; Size: number }[]).push({
          Key: `${folder}${status}_0.json`,
          Size: Buffer.byteLength(body),
        });
      }
      await s.put(`${folder}manifest.json`, JSON.stringify(manifest));
      s.close();
      output = {
        MapRunArn: manifest.MapRunArn,
        ResultWriterDetails: { Bucket: p.writer.Bucket, Key: `${folder}manifest.json` },
      };
    }
    if (exceeded) {
      throw Object.assign(new Error(`Map "${mapName}": the tolerated failure threshold was exceeded`), {
        name: 'States.ExceedToleratedFailureThreshold',
      });
    }
    return output;
  };

  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  try {
    const output = await machine.run(options.input as Json, {
      overrides: {
        taskResourceLocalHandlers: {
          ...lambdaHandlers(definition.States),
          [mapName]: (input: Json) => runMap(input as never),
        },
        retryIntervalOverrides: zeroRetries(definition.States),
      },
      context: context as never,
    }).result;
    return { status: 'SUCCEEDED', output, states };
  } catch (err) {
    const e = ((err as { cause?: unknown }).cause ?? err) as Error & { cause?: unknown };
    return { status: 'FAILED', error: e.name, cause: e.message, states };
  }
}
