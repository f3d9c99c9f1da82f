import { CaiError, ErrorCodes } from '../../errors.js';
import { MAX_LAMBDA_MEMORY_MB } from './params.js';
import type { StackParams } from './params.js';

/** Environment variables the stack gives its functions, so that the handlers know its limits. */
export const ENV = Object.freeze({
  data: 'CAI_DATA_URI',
  output: 'CAI_OUTPUT_URI',
  model: 'CAI_MODEL_URI',
  maxConcurrency: 'CAI_MAX_CONCURRENCY',
  toleratedFailurePercentage: 'CAI_TOLERATED_FAILURE_PERCENTAGE',
  inferenceMemoryMb: 'CAI_INFERENCE_MEMORY_MB',
  crashAttempts: 'CAI_CRASH_ATTEMPTS',
  /** onnxruntime's own switch for its telemetry (on Linux it stores a device id and uploads over HTTPS). */
  ortTelemetryOff: 'ORT_DISABLE_TELEMETRY',
} as const);

/**
 * What a handler knows about the deployment it belongs to: the prefixes its role may touch and the
 * stack's defaults and limits for jobs.
 */
export interface HandlerConfig {
  /** Jobs read this S3 prefix or one under it. */
  readonly data: string;
  /** Jobs write this S3 prefix or one under it. */
  readonly output: string;
  /** The one model object jobs may use. */
  readonly model: string;
  readonly maxConcurrency: number;
  readonly toleratedFailurePercentage: number;
  /** The inference function's memory, which sets its vCPUs and so the default onnxruntime threads. */
  readonly inferenceMemoryMb: number;
  /** Tries Step Functions gives an invocation that crashed or timed out. */
  readonly crashAttempts: number;
}

/**
 * The environment variables of a function for a stack's parameters.
 * @example handlerEnvironment(params)[ENV.model] // 's3://bucket/models/astromae.onnx'
 */
export function handlerEnvironment(params: StackParams): Record<string, string> {
  return {
    [ENV.data]: params.data,
    [ENV.output]: params.output,
    [ENV.model]: params.model,
    [ENV.maxConcurrency]: String(params.maxConcurrency),
    [ENV.toleratedFailurePercentage]: String(params.toleratedFailurePercentage),
    [ENV.inferenceMemoryMb]: String(params.memoryMb),
    [ENV.crashAttempts]: String(params.crashAttempts),
    // A batch job has no business calling home: no upload from the user's account, no write to a
    // read-only home directory, nothing added to cold starts.
    [ENV.ortTelemetryOff]: '1',
  };
}

/**
 * Reads a handler's configuration from its environment (`process.env` in a Lambda, the template's
 * variables in the offline executor). A missing variable means the function was not deployed by CAI's
 * stack: the error says so.
 *
 * @example const config = handlerConfigFromEnv(process.env);
 */
export function handlerConfigFromEnv(env: Readonly<Record<string, string | undefined>>): HandlerConfig {
  const need = (name: string): string => {
    const v = env[name];
    if (!v) {
      throw new CaiError(
        ErrorCodes.option,
        name,
        'environment variable missing; this function must be deployed with `cai aws deploy`',
      );
    }
    return v;
  };
  const num = (name: string): number => {
    const n = Number(need(name));
    if (!Number.isFinite(n)) throw new CaiError(ErrorCodes.option, name, `"${env[name]}" is not a number`);
    return n;
  };
  return {
    data: need(ENV.data),
    output: need(ENV.output),
    model: need(ENV.model),
    maxConcurrency: num(ENV.maxConcurrency),
    toleratedFailurePercentage: num(ENV.toleratedFailurePercentage),
    inferenceMemoryMb: Math.min(MAX_LAMBDA_MEMORY_MB, num(ENV.inferenceMemoryMb)),
    crashAttempts: num(ENV.crashAttempts),
  };
}
