// Faults for the AWS tests: inference handlers that die as a Lambda runtime would, and what the records
// say of the tries.
import { handlerConfigFromEnv } from '../../src/engines/aws/config.js';
import { createInferenceHandler } from '../../src/engines/aws/handlers/inference.js';
import type { InferenceEvent } from '../../src/engines/aws/protocol.js';
import type { Store } from '../../src/storage/store.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { CAI_HANDLERS } from '../helpers/aws-offline/handlers.js';
import type { HandlerFactory, LambdaHandler } from '../helpers/aws-offline/lambda-service.js';
import { StatesError } from '../helpers/aws-offline/paths.js';

// A timeout or out-of-memory that reaches Step Functions unnamed, as AWS documents it may.
export const UNKNOWN_CAUSE =
  'The cause could not be determined because Lambda did not return an error type. Returned payload: {"errorMessage":"2026-12-03T07:00:00.000Z 7f0c Task timed out after 900.00 seconds"}';

/**
 * Inference handlers that die with Lambda.Unknown on partition `id`, `times` times in all; `attempts`
 * collects the attempt number of each invocation of that partition that ran.
 */
export function unknownOn(
  id: string,
  times: number,
  attempts: number[] = [],
): Readonly<Record<string, HandlerFactory>> {
  let left = times;
  return {
    ...CAI_HANDLERS,
    'index.handler': (env) => {
      const real = createInferenceHandler(handlerConfigFromEnv(env));
      return (async (event: InferenceEvent, context) => {
        if (event.partition?.id === id) attempts.push(event.attempt);
        if (event.partition?.id === id && left > 0) {
          left--;
          throw new StatesError('Lambda.Unknown', UNKNOWN_CAUSE);
        }
        return real(event, context);
      }) as LambdaHandler;
    },
  };
}

/** Each record's attempt number under an output, by partition id. */
export async function recordAttempts(out: Store): Promise<Record<string, number>> {
  const attempts: Record<string, number> = {};
  for await (const o of out.list('results/')) {
    const record = JSON.parse(new TextDecoder().decode(await out.get(o.key))) as PartitionRecord;
    attempts[record.partition] = record.attempt;
  }
  return attempts;
}
