// The module of the Initialize and Summarize functions (`index.initialize`, `index.summarize`): no
// model, no native code, so these functions stay small and start fast.
import '../../../storage/register.js';
import { handlerConfigFromEnv } from '../config.js';
import { createInitializeHandler } from '../handlers/initialize.js';
import { createSummarizeHandler } from '../handlers/summarize.js';

const config = handlerConfigFromEnv(process.env);

/** The Initialize function's handler. */
export const initialize = createInitializeHandler(config);
/** The Summarize function's handler. */
export const summarize = createSummarizeHandler(config);
