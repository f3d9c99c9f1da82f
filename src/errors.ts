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
  /** Attempts in a row failed with one unreachable cause (a dead endpoint): the map stopped. */
  unreachable: 'E_UNREACHABLE',
  /** The scheduler (a Slurm controller) stopped answering while the job ran. */
  schedulerLost: 'E_SCHEDULER_LOST',
  /** The watcher gave up while the work goes on elsewhere (Slurm arrays, an AWS execution). */
  unwatched: 'E_UNWATCHED',
  /** The job was cancelled from outside the watching process (scancel, `cai slurm cancel`). */
  cancelled: 'E_CANCELLED',
  /** An output written by another output format version (docs/output-format.md). */
  outputFormat: 'E_OUTPUT_FORMAT',
  /** A rerun into an output that holds a job with another identity (a field that changes predictions). */
  jobChanged: 'E_JOB_CHANGED',
} as const);

/**
 * How every `cai` command ends, one table for every command and engine (the README's "Exit codes"):
 * scripts can tell a failed job from a mistake in the command line, and work that goes on unwatched
 * from work that stopped.
 *
 * @example process.exitCode = ExitCodes.failed;
 */
export const ExitCodes = Object.freeze({
  /** Done: every partition within the error budget. */
  done: 0,
  /** The job ran and failed: error budget spent, storage endpoint or scheduler lost mid-run. */
  failed: 1,
  /** A usage or setup error found before any work started; nothing written. */
  usage: 2,
  /** The watcher stopped but the work goes on (Slurm arrays, an AWS execution); rerunning adopts it. */
  unwatched: 3,
  /** Cancelled by the user outside the watching process (scancel, `cai slurm cancel`). */
  cancelled: 4,
  /** Stopped by Ctrl-C (SIGINT). */
  sigint: 130,
  /** Stopped by SIGTERM. */
  sigterm: 143,
} as const);

const DURING_WORK = Symbol.for('cai.duringWork');

/**
 * Marks an error as raised after the job's work began (plan written, partitions running), so that it
 * exits {@link ExitCodes.failed} rather than {@link ExitCodes.usage}; returns the same error.
 *
 * @example try { await map(); } catch (err) { throw duringWork(err); }
 */
export function duringWork(err: unknown): unknown {
  if (err !== null && typeof err === 'object' && Object.isExtensible(err))
    Object.defineProperty(err, DURING_WORK, { value: true, enumerable: false, configurable: true });
  return err;
}

/**
 * Takes back {@link duringWork}'s mark from an error whose run was undone before any partition
 * completed (an engine that refused the job after planning: its writes were removed), so that it exits
 * {@link ExitCodes.usage} like any setup error; returns the same error.
 *
 * @example if (await undoSetup()) throw beforeWork(err);
 */
export function beforeWork(err: unknown): unknown {
  if (err !== null && typeof err === 'object' && DURING_WORK in err)
    delete (err as { [DURING_WORK]?: boolean })[DURING_WORK];
  return err;
}

/**
 * The exit code an error ends a command with, by cause ({@link ExitCodes}): signals 130/143, cancelled
 * 4, unwatched 3, a job that ran and failed 1 (budget, endpoint or scheduler lost, or any error once
 * the work began), a CAI error before any work 2; anything unexpected 1.
 *
 * @example process.exitCode = exitCodeFor(err);
 */
export function exitCodeFor(err: unknown): number {
  const code = err instanceof CaiError ? err.code : undefined;
  if (code === ErrorCodes.interrupted)
    return err instanceof CaiError && err.object === 'SIGTERM' ? ExitCodes.sigterm : ExitCodes.sigint;
  if (code === ErrorCodes.cancelled) return ExitCodes.cancelled;
  if (code === ErrorCodes.unwatched) return ExitCodes.unwatched;
  if (code === ErrorCodes.budget || code === ErrorCodes.unreachable || code === ErrorCodes.schedulerLost)
    return ExitCodes.failed;
  if (err !== null && typeof err === 'object' && DURING_WORK in err) return ExitCodes.failed;
  if (err instanceof CaiError) return ExitCodes.usage;
  // A connection refused or dropped past every retry before any work: a setup error, nothing written.
  const net = (err as { code?: unknown } | null)?.code;
  return typeof net === 'string' && /^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(net) && net !== 'E_UNEXPECTED'
    ? ExitCodes.usage
    : ExitCodes.failed;
}

/** Turns anything thrown into a short `{ code, message }` pair for records and summaries. */
export function describeError(err: unknown): { code: string; message: string } {
  if (err instanceof CaiError) return { code: err.code, message: err.message };
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : 'E_UNEXPECTED', message: err.message };
  }
  return { code: 'E_UNEXPECTED', message: String(err) };
}
