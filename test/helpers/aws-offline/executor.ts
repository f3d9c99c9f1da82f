import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3Store } from '../../../src/storage/s3-store.js';
import { runDistributedMap, type MapRunProgress } from './distributed-map.js';
import { CAI_HANDLERS } from './handlers.js';
import { isAllowed } from './iam.js';
import { startIamProxy, type IamDenial, type IamProxy } from './iam-proxy.js';
import { runStates, type ContextObject, type InterpreterServices, type StatesJson } from './interpreter.js';
import { OfflineLambdaService, type HandlerFactory, type InvocationRecord } from './lambda-service.js';
import { StatesError } from './paths.js';
import {
  loadSynthesizedTemplate,
  OFFLINE_ENV,
  type SynthesizedTemplate,
  type TemplateFunction,
} from './template.js';

/** How to run a synthesized state machine offline. */
export interface OfflineExecutionOptions {
  /** The synthesized template (file, or already loaded). */
  readonly template: string | SynthesizedTemplate;
  /** The execution input, as `StartExecution` would get it. */
  readonly input: unknown;
  /** The S3-compatible server Step Functions' own S3 calls (ItemReader, ResultWriter) go to. */
  readonly s3Endpoint: string;
  /** Handler factories by `Handler` setting; CAI's own by default. */
  readonly handlers?: Readonly<Record<string, HandlerFactory>>;
  /** Retry waits are multiplied by this (Step Functions' real intervals are seconds); 1 by default. */
  readonly waitScale?: number;
  /** Whether a function's runtime dies on an invocation (see `OfflineLambdaService`); never by default. */
  readonly crash?: (fn: TemplateFunction, event: unknown) => boolean;
  /** Concurrent invocations before Lambda throttles; unlimited by default. */
  readonly accountConcurrency?: number;
  /**
   * Send each function's S3 requests through a proxy that enforces the function role's policy (true by
   * default): a job whose `s3Endpoint` is `s3Endpoint` reaches S3, from each function, through its own
   * proxy, and a request the role does not allow is answered 403 AccessDenied as S3 would.
   */
  readonly enforceIam?: boolean;
  readonly executionName?: string;
  readonly random?: () => number;
  /** Map run progress, as `DescribeMapRun` would show it. */
  readonly onMapRun?: (progress: MapRunProgress) => void;
  readonly onState?: InterpreterServices['onState'];
}

/** How an offline execution ended, in `DescribeExecution`'s terms. */
export interface OfflineExecutionResult {
  readonly executionArn: string;
  readonly name: string;
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  readonly startDate: string;
  readonly stopDate: string;
  /** The last progress of each map run. */
  readonly mapRuns: readonly MapRunProgress[];
  /** Every Lambda invocation, in the order they ended. */
  readonly invocations: readonly InvocationRecord[];
  /** S3 requests of the functions their roles did not allow (answered 403). */
  readonly iamDenials: readonly IamDenial[];
}

/**
 * Runs the state machine of a synthesized CAI stack on this machine: the definition exactly as
 * synthesized (intrinsics resolved), interpreted for the subset of the Amazon States Language it uses,
 * with its Task states invoking CAI's real handlers in-process as the template configures the functions,
 * its Distributed Map carried out as Step Functions does (ItemReader, ItemSelector, ItemBatcher,
 * MaxConcurrency, tolerated failures, ResultWriter) against an S3-compatible server, and the state
 * machine role's policy checked for every Lambda invocation and S3 access Step Functions makes.
 *
 * @example
 * const result = await runOfflineExecution({ template: 'cdk.out/assembly/Cai.template.json', input: { job }, s3Endpoint });
 * if (result.status === 'FAILED') console.log(result.error, result.cause);
 */
export async function runOfflineExecution(options: OfflineExecutionOptions): Promise<OfflineExecutionResult> {
  const template =
    typeof options.template === 'string' ? await loadSynthesizedTemplate(options.template) : options.template;
  const sm = template.stateMachine;
  const proxies = new Map<string, IamProxy>();
  if (options.enforceIam ?? true) {
    for (const fn of template.functions.values()) {
      proxies.set(
        fn.arn,
        await startIamProxy({
          target: options.s3Endpoint,
          principal: `${fn.logicalId}/role`,
          policy: fn.policy,
        }),
      );
    }
  }
  // An endpoint on the wire, as a JSON string value, is any function's route or the server itself.
  const endpoints = [options.s3Endpoint, ...[...proxies.values()].map((p) => p.endpoint)].map((e) =>
    JSON.stringify(e),
  );
  const lambda = new OfflineLambdaService(template.functions, options.handlers ?? CAI_HANDLERS, {
    accountConcurrency: options.accountConcurrency,
    crash: options.crash,
    rewriteRequest: (fn, json) => {
      const own = proxies.get(fn.arn);
      if (!own) return json;
      let out = json;
      for (const e of endpoints) out = out.split(e).join(JSON.stringify(own.endpoint));
      return out;
    },
  });
  const iamDenials = () => [...proxies.values()].flatMap((p) => p.denials);
  const stores = new Map<string, S3Store>();
  const store = (bucket: string) => {
    let s = stores.get(bucket);
    if (!s) {
      s = new S3Store(`s3://${bucket}`, { s3Endpoint: options.s3Endpoint });
      stores.set(bucket, s);
    }
    return s;
  };
  const mapRuns = new Map<string, MapRunProgress>();
  const authorize = (action: string, resource: string) => isAllowed(sm.policy, action, resource);

  const services: InterpreterServices = {
    waitScale: options.waitScale ?? 1,
    random: options.random ?? Math.random,
    sleep: (ms) => sleep(ms),
    onState: options.onState,
    invokeLambda: async (arn, payload) => {
      if (!authorize('lambda:InvokeFunction', arn)) {
        throw new StatesError(
          'Lambda.AWSLambdaException',
          `AccessDeniedException: the state machine's role may not invoke ${arn}`,
        );
      }
      return lambda.invoke(arn, payload);
    },
    runDistributedMap: (name, state, input, context) =>
      runDistributedMap(name, state, input, context, {
        storage: {
          get: (bucket, key) => store(bucket).get(key),
          put: (bucket, key, body) => store(bucket).put(key, body),
        },
        authorize,
        stateMachine: { arn: sm.arn, name: sm.name },
        services,
        onMapRun: (progress) => {
          mapRuns.set(progress.mapRunArn, progress);
          options.onMapRun?.(progress);
        },
      }),
  };

  const name = options.executionName ?? randomUUID();
  const executionArn = `arn:${OFFLINE_ENV.partition}:states:${OFFLINE_ENV.region}:${OFFLINE_ENV.account}:execution:${sm.name}:${name}`;
  const startDate = new Date().toISOString();
  const context: ContextObject = {
    Execution: { Id: executionArn, Name: name, StartTime: startDate, Input: options.input },
    StateMachine: { Id: sm.arn, Name: sm.name },
  };
  const base = {
    executionArn,
    name,
    startDate,
    mapRuns: [] as MapRunProgress[],
    invocations: lambda.invocations,
  };
  try {
    const output = await runStates(
      sm.definition as unknown as StatesJson,
      structuredClone(options.input),
      context,
      services,
    );
    return {
      ...base,
      status: 'SUCCEEDED',
      output,
      stopDate: new Date().toISOString(),
      mapRuns: [...mapRuns.values()],
      iamDenials: iamDenials(),
    };
  } catch (err) {
    const e = err instanceof StatesError ? err : new StatesError('States.Runtime', String(err));
    return {
      ...base,
      status: 'FAILED',
      error: e.error,
      cause: e.cause,
      stopDate: new Date().toISOString(),
      mapRuns: [...mapRuns.values()],
      iamDenials: iamDenials(),
    };
  } finally {
    for (const s of stores.values()) s.close();
    await Promise.all([...proxies.values()].map((p) => p.stop()));
  }
}
