import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { LambdaContext } from '../../../src/engines/aws/protocol.js';
import { StatesError } from './paths.js';
import { OFFLINE_ENV, type TemplateFunction } from './template.js';

/** A handler as Lambda calls it. */
export type LambdaHandler = (event: never, context: LambdaContext) => Promise<unknown>;
/** Makes one container's handler from the function's environment (what loading the module does). */
export type HandlerFactory = (env: Readonly<Record<string, string>>) => LambdaHandler;

/** Lambda's limit on a synchronous invocation's request and response, bytes. */
export const INVOKE_PAYLOAD_LIMIT = 6 * 1024 * 1024;

/**
 * How Lambda reports an invocation whose runtime process died (killed, out of memory, `process.exit`):
 * `Runtime.ExitError` with the runtime's message, and the container is not reused.
 *
 * @example throw runtimeExit(requestId); // Step Functions sees Runtime.ExitError, which the Infer state retries
 */
export function runtimeExit(requestId: string): StatesError {
  const errorMessage = `RequestId: ${requestId} Error: Runtime exited with error: signal: killed`;
  return new StatesError(
    'Runtime.ExitError',
    JSON.stringify({ errorType: 'Runtime.ExitError', errorMessage }),
  );
}

/** One invocation, as the offline Lambda service saw it. */
export interface InvocationRecord {
  readonly function: string;
  readonly requestId: string;
  readonly cold: boolean;
  readonly ms: number;
  readonly error?: string;
}

interface Container {
  readonly handler: LambdaHandler;
}

/**
 * Lambda, offline: invokes the functions of a synthesized template in this process with their own
 * environment variables, memory and timeout, one container per concurrent invocation. A container is
 * made by the handler factory (the module load, cold) and reused by later invocations (warm), the way
 * Lambda keeps module-scope state; a timed-out container is thrown away. Events and results go through
 * JSON as on the wire, errors come back named as Step Functions sees them (`errorType` as the error,
 * the runtime's JSON as the cause), and an account concurrency limit, when set, throttles with
 * `Lambda.TooManyRequestsException`.
 *
 * @example const lambda = new OfflineLambdaService(template.functions, CAI_HANDLERS); await lambda.invoke(arn, event);
 */
export class OfflineLambdaService {
  readonly invocations: InvocationRecord[] = [];
  private readonly idle = new Map<string, Container[]>();
  private running = 0;

  constructor(
    private readonly functions: ReadonlyMap<string, TemplateFunction>,
    private readonly factories: Readonly<Record<string, HandlerFactory>>,
    private readonly options: {
      accountConcurrency?: number;
      /** Rewrites an event on the wire for the function it goes to (e.g. its own S3 route). */
      rewriteRequest?: (fn: TemplateFunction, json: string) => string;
      /** Whether the runtime dies on this invocation (a killed process), as {@link runtimeExit} reports it. */
      crash?: (fn: TemplateFunction, event: unknown) => boolean;
    } = {},
  ) {}

  /** Containers created so far for a function (logical id), i.e. its cold starts. */
  coldStarts(logicalId: string): number {
    return this.invocations.filter((i) => i.function === logicalId && i.cold).length;
  }

  async invoke(arn: string, payload: unknown): Promise<unknown> {
    const fn = this.functions.get(arn);
    if (!fn) throw new StatesError('Lambda.ResourceNotFoundException', `Function not found: ${arn}`);
    const factory = this.factories[fn.handler];
    if (!factory)
      throw new StatesError('Lambda.Unknown', `no offline handler for ${fn.handler} (${fn.logicalId})`);
    const wire = JSON.stringify(payload);
    const request = this.options.rewriteRequest ? this.options.rewriteRequest(fn, wire) : wire;
    if (Buffer.byteLength(request) > INVOKE_PAYLOAD_LIMIT) {
      throw new StatesError('Lambda.RequestTooLargeException', `the payload of ${fn.logicalId} is over 6 MB`);
    }
    if (this.options.accountConcurrency !== undefined && this.running >= this.options.accountConcurrency) {
      const error = 'Lambda.TooManyRequestsException';
      this.invocations.push({ function: fn.logicalId, requestId: randomUUID(), cold: false, ms: 0, error });
      throw new StatesError(error, 'Rate Exceeded.');
    }
    this.running++;
    const requestId = randomUUID();
    const started = performance.now();
    const pool = this.idle.get(arn) ?? [];
    this.idle.set(arn, pool);
    let container = pool.pop();
    const cold = !container;
    let error: string | undefined;
    try {
      const deadline = Date.now() + fn.timeoutSeconds * 1000;
      const context: LambdaContext = {
        awsRequestId: requestId,
        functionName: fn.logicalId,
        memoryLimitInMB: String(fn.memoryMb),
        getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      };
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          const message = `${requestId} Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`;
          reject(
            new StatesError(
              'Sandbox.Timedout',
              JSON.stringify({ errorType: 'Sandbox.Timedout', errorMessage: message }),
            ),
          );
        }, fn.timeoutSeconds * 1000);
      });
      let result: unknown;
      try {
        // Loading the module (cold) counts against the timeout too, as Lambda's init does.
        container ??= { handler: factory(this.environment(fn)) };
        if (this.options.crash?.(fn, JSON.parse(request))) {
          container = undefined;
          throw runtimeExit(requestId);
        }
        result = await Promise.race([container.handler(JSON.parse(request) as never, context), timedOut]);
      } catch (err) {
        if (err instanceof StatesError) {
          container = undefined;
          throw err;
        }
        const e = err instanceof Error ? err : new Error(String(err));
        const errorType = e.name || 'Error';
        throw new StatesError(
          errorType,
          JSON.stringify({ errorType, errorMessage: e.message, trace: (e.stack ?? '').split('\n') }),
        );
      } finally {
        clearTimeout(timer);
      }
      const response = JSON.stringify(result ?? null);
      if (Buffer.byteLength(response) > INVOKE_PAYLOAD_LIMIT) {
        throw new StatesError('Lambda.ResponseSizeTooLarge', `the response of ${fn.logicalId} is over 6 MB`);
      }
      return JSON.parse(response) as unknown;
    } catch (err) {
      error = err instanceof StatesError ? err.error : String(err);
      throw err;
    } finally {
      this.running--;
      if (container) pool.push(container);
      this.invocations.push({
        function: fn.logicalId,
        requestId,
        cold,
        ms: performance.now() - started,
        error,
      });
    }
  }

  private environment(fn: TemplateFunction): Record<string, string> {
    return {
      ...fn.environment,
      AWS_REGION: OFFLINE_ENV.region,
      AWS_LAMBDA_FUNCTION_NAME: fn.logicalId,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    };
  }
}
