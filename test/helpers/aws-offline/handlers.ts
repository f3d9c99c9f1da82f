import { handlerConfigFromEnv } from '../../../src/engines/aws/config.js';
import { createInferenceHandler } from '../../../src/engines/aws/handlers/inference.js';
import { createInitializeHandler } from '../../../src/engines/aws/handlers/initialize.js';
import { createSummarizeHandler } from '../../../src/engines/aws/handlers/summarize.js';
import type { HandlerFactory, LambdaHandler } from './lambda-service.js';

/**
 * CAI's handlers by the `Handler` setting of their function in the template, each made from the
 * function's own environment as its Lambda module does (see `lambda/*-entry.ts`).
 *
 * @example new OfflineLambdaService(template.functions, CAI_HANDLERS)
 */
export const CAI_HANDLERS: Readonly<Record<string, HandlerFactory>> = Object.freeze({
  'index.initialize': (env) => createInitializeHandler(handlerConfigFromEnv(env)) as LambdaHandler,
  'index.summarize': (env) => createSummarizeHandler(handlerConfigFromEnv(env)) as LambdaHandler,
  'index.handler': (env) => createInferenceHandler(handlerConfigFromEnv(env)) as LambdaHandler,
});
