// The inference function's module: Lambda loads it once per container, so the handler (and the worker
// context it creates on its first invocation) lives as long as the container.
import '../../../storage/register.js';
import { handlerConfigFromEnv } from '../config.js';
import { createInferenceHandler } from '../handlers/inference.js';

/** The Lambda handler (`index.handler`). */
export const handler = createInferenceHandler(handlerConfigFromEnv(process.env));
