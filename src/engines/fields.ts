// Which job fields each engine honours. Every field of the job is classified here for every engine, by
// type (the compiler wants an entry for a field added to the schema), so that no option is ever silently
// dropped: a field an engine does not use is refused before any work, naming the field and what to use
// instead. The CLI offers each engine's command only the flags of fields it honours (src/cli/run-command.ts),
// and test/cli/options.test.ts walks every flag of `cai run`, `cai slurm run` and `cai aws run` to the
// fields it sets.
import { CaiError, ErrorCodes } from '../errors.js';
import type { JobSpec } from '../job/spec.js';

/** The engines a job can name. */
export type EngineName = JobSpec['engine'];

/**
 * How an engine takes a job field: `honoured` (it changes what the engine does), or refused when set,
 * with what to do instead; `unless` lets a value the engine does follow pass (`device: "cpu"` on Lambda).
 */
export type FieldUse = 'honoured' | { readonly refused: string; readonly unless?: (job: JobSpec) => boolean };

/** One engine's classification of every job field. */
export type EngineFields = Readonly<Record<keyof JobSpec, FieldUse>>;

const SLURM_ONLY: FieldUse = {
  refused:
    'scheduler options are read by the slurm engine only: run the job with `cai slurm run` (or "engine": "slurm"), or remove them',
};

// What every engine reads alike: the worker (model, binding, preprocessing, sources, predictions), the
// planner and the shared retry policy and error budget.
const COMMON = {
  input: 'honoured',
  model: 'honoured',
  output: 'honoured',
  batchSize: 'honoured',
  fileLimit: 'honoured',
  inputs: 'honoured',
  label: 'honoured',
  predictionsFormat: 'honoured',
  maxAttempts: 'honoured',
  toleratedFailurePercentage: 'honoured',
  engine: 'honoured',
  graphOptimization: 'honoured',
  s3Endpoint: 'honoured',
  format: 'honoured',
  preset: 'honoured',
  preprocess: 'honoured',
  partitionItems: 'honoured',
  partitionBytes: 'honoured',
  nan: 'honoured',
  fitsHdu: 'honoured',
  fitsBands: 'honoured',
  fitsPattern: 'honoured',
  fitsCutouts: 'honoured',
  idColumn: 'honoured',
  carry: 'honoured',
  imageColumn: 'honoured',
  shapeColumn: 'honoured',
  imageShape: 'honoured',
  featureColumns: 'honoured',
  datasets: 'honoured',
  group: 'honoured',
} as const satisfies Partial<EngineFields>;

/**
 * Every engine's use of every job field.
 *
 * @example ENGINE_FIELDS.slurm.partitionTimeoutSeconds // { refused: "an array task's time limit is ..." }
 */
export const ENGINE_FIELDS = Object.freeze({
  local: {
    ...COMMON,
    concurrency: 'honoured',
    threads: 'honoured',
    partitionTimeoutSeconds: 'honoured',
    device: 'honoured',
    slurm: SLURM_ONLY,
  },
  slurm: {
    ...COMMON,
    concurrency: {
      refused:
        'array tasks run at once on Slurm are --throttle (slurm.throttle), each running its partitions one after another; use --throttle',
    },
    threads: {
      refused:
        'the model runs on --cpus-per-task threads on Slurm (slurm.cpusPerTask, default 1): ask for the CPUs with --cpus-per-task instead',
      unless: (job) => job.threads === (job.slurm?.cpusPerTask ?? 1),
    },
    partitionTimeoutSeconds: {
      refused:
        "an array task's time limit on Slurm is --time (slurm.time), for all its partitions; partitionTimeoutSeconds is the local engine's: use --time",
    },
    device: 'honoured',
    slurm: 'honoured',
  },
  aws: {
    ...COMMON,
    concurrency: 'honoured',
    threads: 'honoured',
    partitionTimeoutSeconds: {
      refused:
        "a partition's time limit on AWS is the inference function's timeout: redeploy with `cai aws deploy --timeout <seconds>`",
    },
    device: {
      refused: 'Lambda runs on CPU only: use "cpu"',
      unless: (job) => job.device === 'cpu',
    },
    slurm: SLURM_ONLY,
  },
} as const satisfies Record<EngineName, EngineFields>);

/** Flags of the fields whose flag is not the field's name in kebab case. */
const FLAGS: Partial<Record<keyof JobSpec, string>> = {
  partitionTimeoutSeconds: '--partition-timeout',
  format: '--input-format',
  slurm: '--partition, --account, --time... (slurm)',
  preprocess: '--resize, --center-crop, --mean, --std...',
};

/** A field and its flag, for messages: `partitionTimeoutSeconds (--partition-timeout)`. */
function described(field: keyof JobSpec): string {
  const flag = FLAGS[field] ?? `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  return `${field} (${flag})`;
}

/** A value for a message, shortened. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * Whether an engine honours a field whatever its value: what a command for that engine may offer as a
 * flag.
 *
 * @example honours('aws', 'partitionTimeoutSeconds') // false
 */
export function honours(engine: EngineName, field: keyof JobSpec): boolean {
  return ENGINE_FIELDS[engine][field] === 'honoured';
}

/**
 * Refuses a job that sets a field its engine does not use, before any work: one `E_OPTION` error naming
 * every such field, its flag and what to use instead. A field is set when the job gives it (fields
 * without a default are undefined otherwise).
 *
 * @example checkEngineFields({ ...spec, engine: 'slurm', partitionTimeoutSeconds: 60 }) // throws E_OPTION
 */
export function checkEngineFields(job: JobSpec): void {
  const table: EngineFields = ENGINE_FIELDS[job.engine];
  const problems: string[] = [];
  for (const field of Object.keys(table) as (keyof JobSpec)[]) {
    const use = table[field];
    if (use === 'honoured' || job[field] === undefined) continue;
    if (use.unless?.(job)) continue;
    problems.push(
      `${described(field)} ${shown(job[field])} does not apply to the ${job.engine} engine: ${use.refused}`,
    );
  }
  if (problems.length)
    throw new CaiError(
      ErrorCodes.option,
      'job',
      `${problems.join('; ')}. Remove ${problems.length > 1 ? 'them' : 'it'} from the job or the command line`,
    );
}
