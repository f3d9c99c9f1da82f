// A job's identity: every field that can change a prediction. A rerun into an output resumes only the
// job whose identity it holds; any other is refused before anything is written, naming each field that
// differs. Every field of the job is classified here, by type, so a field added to the schema cannot be
// forgotten: the compiler wants its entry, and test/job/identity.test.ts walks the schema's fields,
// nested ones too.
import path from 'node:path';
import type { PreprocessOptions } from './preprocess-schema.js';
import type { SlurmOptions } from './slurm-options.js';
import type { JobSpec } from './spec.js';

/**
 * `identity`: the field can change a prediction (what is read, how it is preprocessed, which model, what
 * a row holds), so a rerun must match it. `free`: how or where the work runs (engine, workers, batch
 * size, retries): it may change from run to run of one job.
 */
export type FieldClass = 'identity' | 'free';

const PREPROCESS_FIELDS = {
  resize: 'identity',
  centerCrop: 'identity',
  scale: 'identity',
  mean: 'identity',
  std: 'identity',
  channels: 'identity',
  layout: 'identity',
  dtype: 'identity',
  interpolation: 'identity',
  resizeMethod: 'identity',
  iccProfile: 'identity',
  exifOrientation: 'identity',
  sixteenBit: 'identity',
} as const satisfies Record<keyof PreprocessOptions, FieldClass>;

// Where and how array tasks run: none of it reaches a prediction.
const SLURM_FIELDS = {
  partition: 'free',
  account: 'free',
  qos: 'free',
  time: 'free',
  cpusPerTask: 'free',
  mem: 'free',
  gres: 'free',
  throttle: 'free',
  partitionsPerTask: 'free',
  jobName: 'free',
  sbatchArgs: 'free',
  setup: 'free',
  logDir: 'free',
  pollSeconds: 'free',
  controllerTimeoutSeconds: 'free',
} as const satisfies Record<keyof SlurmOptions, FieldClass>;

/**
 * Every job field's class; an object field (preprocess, slurm) classifies each of its own fields.
 *
 * `device` is free: a GPU's kernels differ from the CPU's in the last bits only, as batch sizes do
 * (predictions match across batch sizes to float tolerance), so a job begun on one may finish on the
 * other. `s3Endpoint` says where the bytes are, not which: the input's listing and the model's hash are
 * in the identity.
 */
export const JOB_FIELD_CLASSES = Object.freeze({
  input: 'identity',
  model: 'identity',
  output: 'free',
  batchSize: 'free',
  fileLimit: 'identity',
  concurrency: 'free',
  threads: 'free',
  inputs: 'identity',
  label: 'identity',
  predictionsFormat: 'identity',
  maxAttempts: 'free',
  toleratedFailurePercentage: 'free',
  partitionTimeoutSeconds: 'free',
  engine: 'free',
  slurm: SLURM_FIELDS,
  device: 'free',
  // onnxruntime's fused kernels move outputs by up to ~1e-3 (docs/performance.md): more than batch sizes do.
  graphOptimization: 'identity',
  s3Endpoint: 'free',
  format: 'identity',
  preset: 'identity',
  preprocess: PREPROCESS_FIELDS,
  partitionItems: 'identity',
  partitionBytes: 'identity',
  nan: 'identity',
  fitsHdu: 'identity',
  fitsBands: 'identity',
  fitsPattern: 'identity',
  fitsCutouts: 'identity',
  idColumn: 'identity',
  carry: 'identity',
  imageColumn: 'identity',
  shapeColumn: 'identity',
  imageShape: 'identity',
  featureColumns: 'identity',
  datasets: 'identity',
  group: 'identity',
} as const satisfies Record<keyof JobSpec, FieldClass | Readonly<Record<string, FieldClass>>>);

/** Facts about a job's inputs, beyond its fields, that are part of its identity. */
export interface DerivedIdentity {
  /** SHA-256 of the model's bytes, where the runner can read the model. */
  readonly modelSha256?: string;
  /** The input's listing: objects of the kind planned, their bytes, and a SHA-256 of keys and sizes. */
  readonly inputListing?: { readonly objects: number; readonly bytes: number; readonly sha256: string };
}

/** A job's identity as `job.json` records it: dotted field paths (`preprocess.channels`) to values. */
export type JobIdentity = Readonly<Record<string, unknown>>;

/**
 * The identity of a job: the value of every identity field (nested ones by dotted path; unset fields
 * left out) and the derived facts.
 *
 * @example jobIdentity(spec, { modelSha256 })['preprocess.channels'] // 'bgr'
 */
export function jobIdentity(spec: JobSpec, derived: DerivedIdentity = {}): JobIdentity {
  const out: Record<string, unknown> = {};
  for (const [field, cls] of Object.entries(JOB_FIELD_CLASSES)) {
    const value = (spec as Record<string, unknown>)[field];
    if (typeof cls === 'string') {
      if (cls === 'identity' && value !== undefined) out[field] = value;
      continue;
    }
    for (const [sub, subCls] of Object.entries(cls)) {
      const v = (value as Record<string, unknown> | undefined)?.[sub];
      if (subCls === 'identity' && v !== undefined) out[`${field}.${sub}`] = v;
    }
  }
  if (derived.modelSha256 !== undefined) out.modelSha256 = derived.modelSha256;
  if (derived.inputListing !== undefined) out.inputListing = derived.inputListing;
  return out;
}

/** One identity field that differs between the job an output holds and the job being run. */
export interface IdentityChange {
  readonly field: string;
  readonly was: unknown;
  readonly now: unknown;
}

/**
 * The identity fields that differ. A derived fact missing on either side (a runner that cannot read
 * the model) is not compared; the field it derives from still is.
 *
 * @example identityChanges(old, now) // [{ field: 'preprocess.channels', was: undefined, now: 'bgr' }]
 */
export function identityChanges(was: JobIdentity, now: JobIdentity): IdentityChange[] {
  const derived = new Set(['modelSha256', 'inputListing']);
  const fields = [...new Set([...Object.keys(was), ...Object.keys(now)])];
  return fields
    .filter((f) => !(derived.has(f) && (was[f] === undefined || now[f] === undefined)))
    .filter((f) => !samePath(f, was[f], now[f]))
    .filter((f) => JSON.stringify(was[f]) !== JSON.stringify(now[f]))
    .map((field) => ({ field, was: was[field], now: now[field] }));
}

/**
 * Whether a local path an earlier CAI recorded relative (job.json holds absolute paths since) names the
 * path recorded now, resolved from this working folder: such an output is the same job, not another.
 */
function samePath(field: string, was: unknown, now: unknown): boolean {
  if ((field !== 'input' && field !== 'model') || typeof was !== 'string' || typeof now !== 'string')
    return false;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(was) || path.isAbsolute(was) || !path.isAbsolute(now)) return false;
  return path.resolve(was) === path.resolve(now);
}

/** A value for a message: JSON, or `(not set)`. */
function shown(v: unknown): string {
  if (v === undefined) return '(not set)';
  if (typeof v === 'object' && v !== null && 'objects' in v && 'bytes' in v)
    return `${(v as { objects: number }).objects} objects, ${(v as { bytes: number }).bytes} bytes`;
  const text = JSON.stringify(v);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * The changes as one line each: `preprocess.channels: (not set) -> "bgr"`.
 * @example describeChanges(identityChanges(old, now)).join('; ')
 */
export function describeChanges(changes: readonly IdentityChange[]): string[] {
  return changes.map((c) => {
    const what =
      c.field === 'modelSha256'
        ? 'model bytes (SHA-256)'
        : c.field === 'inputListing'
          ? 'input listing'
          : c.field;
    return `${what}: ${shown(c.was)} -> ${shown(c.now)}`;
  });
}
