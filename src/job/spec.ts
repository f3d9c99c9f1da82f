import os from 'node:os';
import { z } from 'zod';
import { CaiError, ErrorCodes } from '../errors.js';
import { PreprocessSchema } from './preprocess-schema.js';
import { PRESET_NAMES } from './preprocess-values.js';
import { SlurmOptionsSchema } from './slurm-options.js';

/** Formats predictions can be written in. */
export const PREDICTION_FORMATS = ['parquet', 'csv', 'jsonl'] as const;
/** Engines that can run the map. */
export const ENGINES = ['local', 'aws', 'slurm'] as const;
/** Devices onnxruntime can run on. */
export const DEVICES = ['cpu', 'cuda'] as const;

/** The local engine's limit of one attempt at a partition when the job sets none, in seconds. */
export const DEFAULT_PARTITION_TIMEOUT_SECONDS = 900;
/** onnxruntime's graph optimization levels (`all` fuses the most, and is fastest; `disabled` is closest to PyTorch). */
export const GRAPH_OPTIMIZATIONS = ['disabled', 'basic', 'extended', 'all'] as const;

/** A column of the partition: its name (`"image"`) or its position (`0`). */
const columnRef = z.union([z.string().min(1), z.number().int().nonnegative()]);

/**
 * The job, as plain data (a JSON file, flags, or an object from code). Engines interpret it; nothing
 * in it is live. Unknown fields are an error, so a typo never silently falls back to a default.
 */
export const JobSpecSchema = z.strictObject({
  /** Directory or S3 prefix holding the partition files. */
  input: z.string().min(1),
  /** The ONNX model: a path or an S3 URI. */
  model: z.string().min(1),
  /** Directory or S3 prefix for plan, predictions, records and summary. */
  output: z.string().min(1),
  /** Items per model call, or `auto` to measure a few sizes on the first partition. */
  batchSize: z.union([z.number().int().positive(), z.literal('auto')]).default(128),
  /** Use only the first K partitions in natural order (the seeds' `file_limit`). */
  fileLimit: z.number().int().positive().optional(),
  /** Worker processes (local engine) or concurrent Lambdas (aws engine). */
  concurrency: z.number().int().positive().optional(),
  /** onnxruntime intra-op threads per worker. */
  threads: z.number().int().positive().optional(),
  /** Model input name -> partition column (name or position). Default: by position. */
  inputs: z.record(z.string(), columnRef).optional(),
  /** The partition column holding the true value, for metrics; written as `label`. */
  label: columnRef.optional(),
  /** How predictions are written. */
  predictionsFormat: z.enum(PREDICTION_FORMATS).default('parquet'),
  /** Tries per partition before it counts as failed. */
  maxAttempts: z.number().int().min(1).max(20).default(3),
  /** Share of partitions (0-100) that may fail before the job fails, as Step Functions' Distributed Map. */
  toleratedFailurePercentage: z.number().min(0).max(100).default(0),
  /**
   * Local engine: seconds one attempt at a partition may take before its worker is killed and it is
   * retried (default {@link DEFAULT_PARTITION_TIMEOUT_SECONDS}). Left unset unless given, so that the
   * engines that bound a partition otherwise (Slurm's --time, the Lambda's timeout) can refuse it.
   */
  partitionTimeoutSeconds: z.number().positive().optional(),
  /** Which engine runs the map. */
  engine: z.enum(ENGINES).default('local'),
  /** Scheduler options of the slurm engine (partition, account, time, cpusPerTask, mem, gres...). */
  slurm: SlurmOptionsSchema.optional(),
  /** Where onnxruntime runs the model. */
  device: z.enum(DEVICES).default('cpu'),
  /**
   * onnxruntime's graph optimizations (default `all`, the fastest). Fusions change float rounding: see
   * docs/performance.md for each level's distance from a float64 reference and its speed.
   */
  graphOptimization: z.enum(GRAPH_OPTIMIZATIONS).optional(),
  /** An S3-compatible endpoint (MinIO, Ceph, R2...) for `s3://` URIs. */
  s3Endpoint: z.string().url().optional(),
  /** Which source reads the input (`tensor`, `image`, `fits`, `parquet`); by file extension when left out. */
  format: z.string().min(1).optional(),
  /** Named image preprocessing, e.g. `imagenet` (resize 256, center crop 224, ImageNet mean/std, NCHW). */
  preset: z.enum(PRESET_NAMES as [string, ...string[]]).optional(),
  /** Image preprocessing steps, over the preset: resize, centerCrop, scale, mean, std, channels, layout, dtype. */
  preprocess: PreprocessSchema.optional(),
  /** Items per partition for inputs of many small files (images, FITS) or rows of big ones (Parquet). */
  partitionItems: z.number().int().positive().optional(),
  /** Bytes per partition for inputs of many small files. */
  partitionBytes: z.number().int().positive().optional(),
  /**
   * An item holding NaN (FITS BLANK, Parquet values): `fail` it (default), `keep` it, or replace NaN by a
   * number. Any item whose model output is NaN or infinite is a failed item too, unless `keep`.
   */
  nan: z.union([z.enum(['fail', 'keep']), z.number()]).optional(),
  /** FITS: the HDU holding the image, by index (0 = primary) or EXTNAME; default the first with data. */
  fitsHdu: z.union([z.number().int().nonnegative(), z.string().min(1)]).optional(),
  /** FITS: one file per band, named by `fitsPattern`; these bands, in this order, make one item. */
  fitsBands: z.array(z.string().min(1)).min(1).optional(),
  /** FITS: file name pattern of one-file-per-band inputs, with `{id}` and `{band}`, e.g. `{id}_{band}.fits`. */
  fitsPattern: z.string().min(1).optional(),
  /** FITS: the last axis counts cutouts (NAXIS3 of a 3-D file is items, not bands); NAXIS4 always does. */
  fitsCutouts: z.boolean().optional(),
  /** Parquet: column whose values become the predictions' item ids. */
  idColumn: z.string().min(1).optional(),
  /**
   * HDF5, Zarr, Parquet: columns (datasets) of the input copied into the predictions, one column per
   * name beside the id, one value (number or string) per item; read whether or not a model input takes them.
   */
  carry: z.array(z.string().min(1)).min(1).optional(),
  /** Parquet: column of encoded image bytes or raw pixel arrays, decoded and preprocessed like images. */
  imageColumn: z.string().min(1).optional(),
  /** Parquet: column giving each raw pixel array's shape (height, width, channels). */
  shapeColumn: z.string().min(1).optional(),
  /** Parquet: the shape of every raw pixel array, e.g. [256, 256, 3] (height, width, channels). */
  imageShape: z.array(z.number().int().positive()).min(1).max(4).optional(),
  /** Parquet: numeric columns read as features (default: every numeric column but id, image and shape). */
  featureColumns: z.array(z.string().min(1)).min(1).optional(),
  /** HDF5 / Zarr: datasets (arrays) read as columns, as paths or column name -> path; default every numeric one. */
  datasets: z
    .union([z.array(z.string().min(1)).min(1), z.record(z.string().min(1), z.string().min(1))])
    .optional(),
  /** HDF5 / Zarr: the group the dataset paths are relative to, e.g. `/data`. */
  group: z.string().min(1).optional(),
});

/** A job as written by a user: every field with a default may be left out. */
export type JobSpecInput = z.input<typeof JobSpecSchema>;

/** A validated job with every default filled in, except the ones that depend on the machine. */
export type JobSpec = z.output<typeof JobSpecSchema>;

/** A job ready to run: concurrency and threads decided for this machine. */
export interface ResolvedJob extends JobSpec {
  readonly concurrency: number;
  readonly threads: number;
}

/** The names of every job field, for help texts and error messages. */
export const JOB_FIELDS = Object.freeze(Object.keys(JobSpecSchema.shape));

/**
 * Validates a job, reporting every problem in one error that names each field and says what is
 * expected.
 *
 * @example parseJobSpec({ input: 'data', model: 'm.onnx', output: 'out' }).batchSize // 128
 */
export function parseJobSpec(raw: unknown, source = 'job'): JobSpec {
  const result = JobSpecSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const where = issue.path.length ? issue.path.join('.') : '(job)';
    if (issue.code === 'unrecognized_keys') {
      const valid = fieldsAt(issue.path) ?? [...JOB_FIELDS];
      const inside = issue.path.length ? ` in "${where}"` : '';
      const named = issue.keys.map((k) => {
        const meant = closestField(k, valid);
        return `"${k}"${meant ? ` (did you mean "${meant}"?)` : ''}`;
      });
      return `unknown field${issue.keys.length > 1 ? 's' : ''}${inside} ${named.join(', ')}; valid fields${inside} are ${valid.join(', ')}`;
    }
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      return `"${where}" is missing; it is required`;
    }
    return `"${where}": ${issue.message}`;
  });
  throw new CaiError(ErrorCodes.option, source, `invalid job: ${problems.join('; ')}`);
}

/** The fields of the object at `path` of a job (`['preprocess']`), or undefined when it is not one. */
function fieldsAt(path: readonly PropertyKey[]): string[] | undefined {
  type Node = { shape?: Record<string, unknown>; unwrap?: () => unknown };
  const unwrap = (n: Node | undefined): Node | undefined => {
    let at = n;
    for (let i = 0; i < 4 && at && !at.shape && typeof at.unwrap === 'function'; i++)
      at = at.unwrap() as Node;
    return at;
  };
  let node: Node | undefined = JobSpecSchema as unknown as Node;
  for (const key of path) node = unwrap(node)?.shape?.[String(key)] as Node | undefined;
  const shape = unwrap(node)?.shape;
  return shape ? Object.keys(shape) : undefined;
}

/**
 * The valid field a mistyped one most likely meant: the same letters in another case or without `_`/`-`
 * (`batch_size`, `batchsize` -> `batchSize`), else one at most two edits away; undefined when none is.
 */
function closestField(key: string, valid: readonly string[]): string | undefined {
  const plain = (k: string) => k.toLowerCase().replace(/[_-]/g, '');
  const same = valid.find((v) => plain(v) === plain(key));
  if (same) return same;
  let best: string | undefined;
  let bestDistance = 3;
  for (const v of valid) {
    const d = editDistance(plain(key), plain(v));
    if (d < bestDistance) [best, bestDistance] = [v, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++)
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/**
 * Decides concurrency and threads so the cores are used without oversubscribing them: workers x threads
 * never exceeds the cores unless the user asked for it. One worker per core with one thread each by
 * default (data parallelism scales better than intra-op threads on small models), capped by the number
 * of partitions so no worker idles while another has two threads' worth of work.
 *
 * @example resolveJob(spec, { partitions: 1, cores: 2 }) // concurrency 1, threads 2
 */
export function resolveJob(spec: JobSpec, context: { partitions: number; cores?: number }): ResolvedJob {
  const cores = Math.max(1, context.cores ?? os.availableParallelism());
  const parts = Math.max(1, context.partitions);
  let concurrency = spec.concurrency;
  let threads = spec.threads;
  if (concurrency === undefined && threads === undefined) {
    concurrency = Math.min(cores, parts);
    threads = Math.max(1, Math.floor(cores / concurrency));
  } else if (concurrency === undefined) {
    concurrency = Math.max(1, Math.min(parts, Math.floor(cores / (threads as number))));
  } else if (threads === undefined) {
    threads = Math.max(1, Math.floor(cores / Math.min(concurrency, parts)));
  }
  return { ...spec, concurrency: concurrency as number, threads: threads as number };
}
