/**
 * Every error CAI raises on purpose: a stable `code`, the object involved (a partition, key, input or
 * option name) and a message that says what to do.
 *
 * @example
 * throw new CaiError('E_INPUT_MISSING', 'data/1.pt', 'the partition does not exist; check --input');
 */
export class CaiError extends Error {
  /** Stable, machine-readable error code such as `E_PICKLE_GLOBAL`. */
  readonly code: string;
  /** The object the error is about: a file key, input name, option or partition id. */
  readonly object: string;

  constructor(code: string, object: string, message: string, options?: { cause?: unknown }) {
    super(`${object}: ${message}`, options);
    this.name = 'CaiError';
    this.code = code;
    this.object = object;
  }
}

/** The codes CAI's own errors use, one frozen object instead of an enum. */
export const ErrorCodes = Object.freeze({
  /** A job option that does not exist, has the wrong type, or an invalid value. */
  option: 'E_OPTION',
  /** A file or object that was named but is not there. */
  notFound: 'E_NOT_FOUND',
  /** Access to an object or bucket was denied, or credentials are missing. */
  accessDenied: 'E_ACCESS_DENIED',
  /** Object storage kept failing after every retry. */
  storage: 'E_STORAGE',
  /** A file whose bytes are not what its format says (truncated, corrupt, lying header). */
  corrupt: 'E_CORRUPT',
  /** A format CAI cannot read (unknown extension, unsupported feature). */
  unsupported: 'E_UNSUPPORTED',
  /** A pickle that asks for a global CAI refuses to load. */
  pickleGlobal: 'E_PICKLE_GLOBAL',
  /** Tensors whose shape or dtype cannot be bound to the model's inputs. */
  binding: 'E_BINDING',
  /** The model cannot be loaded or run. */
  model: 'E_MODEL',
  /** A partition ran longer than its timeout. */
  timeout: 'E_TIMEOUT',
  /** A worker process exited while it held a partition. */
  workerCrash: 'E_WORKER_CRASH',
  /** Too many partitions failed: the error budget is spent. */
  budget: 'E_ERROR_BUDGET',
  /** The job was stopped by Ctrl-C (SIGINT) or SIGTERM; running it again resumes it. */
  interrupted: 'E_INTERRUPTED',
  /** Another live run holds the output's lock. */
  locked: 'E_LOCKED',
  /** AWS could not carry out an operation on the stack (a deletion CloudFormation gave up on). */
  cloud: 'E_CLOUD',
  /** Something the installation lacks for this command (an optional package, a provider). */
  setup: 'E_SETUP',
} as const);

/** Turns anything thrown into a short `{ code, message }` pair for records and summaries. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof CaiError) return { code: err.code, message: err.message };
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : 'E_UNEXPECTED', message: err.message };
  }
  return { code: 'E_UNEXPECTED', message: String(err) };
}
