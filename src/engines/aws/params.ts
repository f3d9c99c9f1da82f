import { z } from 'zod';
import { CaiError, ErrorCodes } from '../../errors.js';
import { parseS3Uri } from '../../storage/s3-store.js';

/** Lambda CPU architectures the stack can target. */
export const ARCHITECTURES = ['x86_64', 'arm64'] as const;
/** How the inference function is packaged: a zip (default) or a container image built at deploy time. */
export const PACKAGINGS = ['zip', 'image'] as const;

/** A Lambda architecture. */
export type Architecture = (typeof ARCHITECTURES)[number];
/** How the inference function is packaged. */
export type Packaging = (typeof PACKAGINGS)[number];

/** The largest memory setting Lambda offers, MB: 6 vCPUs, as the seeds' inference functions used. */
export const MAX_LAMBDA_MEMORY_MB = 10_240;

const s3Prefix = z
  .string()
  .regex(
    /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/,
    'must be an s3://bucket or s3://bucket/prefix URI',
  );
const s3Object = z
  .string()
  .regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.*[^/]$/, 'must be an s3://bucket/key URI of one object');

/**
 * What a deployment of CAI on AWS is made of. Buckets are the user's own and already exist; the stack
 * only grants its functions access to the prefixes named here.
 */
export const StackParamsSchema = z
  .strictObject({
    /** CloudFormation stack name; `cai aws run` finds the state machine through it. */
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'letters, digits and hyphens, starting with a letter')
      .default('Cai'),
    /** Where the partitions live: jobs may read this prefix or any prefix under it. */
    data: s3Prefix,
    /** Where outputs go: jobs may write this prefix or any prefix under it. */
    output: s3Prefix,
    /** The ONNX model object: the only model jobs of this stack may use. */
    model: s3Object,
    /** Inference function memory, MB; it also sets the vCPUs (1,769 MB = 1 vCPU, 10,240 MB = 6). */
    memoryMb: z.number().int().min(128).max(MAX_LAMBDA_MEMORY_MB).default(MAX_LAMBDA_MEMORY_MB),
    /** Inference function timeout, seconds: one invocation (one batch of partitions) must fit in it. */
    timeoutSeconds: z.number().int().min(10).max(900).default(900),
    /** Most inference Lambdas at once; a job's `concurrency` may ask for fewer, never more. */
    maxConcurrency: z.number().int().min(1).max(10_000).default(1000),
    architecture: z.enum(ARCHITECTURES).default('x86_64'),
    /** Share of partitions that may fail, for jobs that do not set `toleratedFailurePercentage`. */
    toleratedFailurePercentage: z.number().min(0).max(100).default(0),
    /** Partitions per inference invocation; above 1 the Distributed Map gets an ItemBatcher. */
    itemsPerBatch: z.number().int().min(1).max(1000).default(1),
    /**
     * Tries of an invocation that crashed, ran out of memory or timed out (worker errors instead follow
     * the job's `maxAttempts`, as on the local engine).
     */
    crashAttempts: z.number().int().min(1).max(10).default(3),
    packaging: z.enum(PACKAGINGS).default('zip'),
    /**
     * Inference function /tmp size, MB: the model is downloaded there once per container. `cai aws deploy`
     * sizes it from the model when not given (see {@link ephemeralStorageFor}).
     */
    ephemeralStorageMb: z.number().int().min(512).max(10_240).default(512),
    /**
     * Allow `output` to be a whole bucket. Off by default: the functions may then write, and Initialize
     * delete summaries, anywhere in it, so the prefix scoping protects nothing.
     */
    wholeBucketOutput: z.boolean().default(false),
  })
  .superRefine((p, ctx) => {
    if (!p.wholeBucketOutput && /^s3:\/\/[^/]+\/?$/.test(p.output)) {
      ctx.addIssue({
        code: 'custom',
        path: ['output'],
        message: `${p.output} is a whole bucket: the functions could write anywhere in it; give a prefix (s3://bucket/cai) or pass --whole-bucket-output if you mean it`,
      });
    }
  });

/** Stack parameters as a user writes them (defaults may be left out). */
export type StackParamsInput = z.input<typeof StackParamsSchema>;
/** Stack parameters with every default filled in. */
export type StackParams = z.output<typeof StackParamsSchema>;

/**
 * Validates stack parameters, reporting every problem in one error that names each parameter.
 *
 * @example parseStackParams({ data: 's3://b/galaxies', output: 's3://b/out', model: 's3://b/m.onnx' }).memoryMb // 10240
 */
export function parseStackParams(raw: unknown): StackParams {
  const result = StackParamsSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const where = issue.path.join('.') || '(params)';
      if (issue.code === 'unrecognized_keys') return `unknown parameter(s) ${issue.keys.join(', ')}`;
      if (issue.code === 'invalid_type' && issue.input === undefined) return `"${where}" is required`;
      return `"${where}": ${issue.message}`;
    });
    throw new CaiError(ErrorCodes.option, 'aws stack', `invalid parameters: ${problems.join('; ')}`);
  }
  return result.data;
}

/**
 * vCPUs Lambda gives a memory setting: one per 1,769 MB, from 1 up to 6 at 10,240 MB.
 *
 * @example vcpusForMemory(10240) // 6
 */
export function vcpusForMemory(memoryMb: number): number {
  return Math.max(1, Math.min(6, Math.ceil(memoryMb / 1769)));
}

/** Bucket and key prefix of an `s3://` URI, the prefix without a trailing `/` (empty for a bucket). */
export function bucketAndPrefix(uri: string): { bucket: string; prefix: string } {
  const { bucket, prefix } = parseS3Uri(uri);
  return { bucket, prefix: prefix.replace(/\/$/, '') };
}

/**
 * Whether `uri` is `root` or lies under it (same bucket, key prefix inside the root's folder).
 *
 * @example isWithin('s3://b/out/job1', 's3://b/out') // true; isWithin('s3://b/outer', 's3://b/out') // false
 */
export function isWithin(uri: string, root: string): boolean {
  if (!/^s3:\/\//i.test(uri)) return false;
  const a = parseS3Uri(uri);
  const r = parseS3Uri(root);
  return a.bucket === r.bucket && a.prefix.startsWith(r.prefix);
}

/** Room /tmp needs beside the model, MB: the runtime's own files and onnxruntime's scratch. */
const TMP_HEADROOM_MB = 128;

/**
 * The inference function's /tmp for a model of `modelBytes`: the model plus 10% and 128 MB of headroom,
 * at least Lambda's 512 MB. With `asked` (the user's setting), checks it instead and says what to set.
 *
 * @example ephemeralStorageFor(900e6) // 1073; ephemeralStorageFor(900e6, 512) throws E_OPTION
 */
export function ephemeralStorageFor(modelBytes: number, asked?: number): number {
  const needed = Math.max(512, Math.ceil((modelBytes / 2 ** 20) * 1.1 + TMP_HEADROOM_MB));
  if (needed > 10_240) {
    throw new CaiError(
      ErrorCodes.option,
      'model',
      `${(modelBytes / 2 ** 20).toFixed(0)} MB does not fit in Lambda's largest /tmp (10,240 MB); use a smaller model or --packaging image`,
    );
  }
  if (asked !== undefined && asked < needed) {
    throw new CaiError(
      ErrorCodes.option,
      'ephemeralStorageMb',
      `${asked} MB of /tmp cannot hold the ${(modelBytes / 2 ** 20).toFixed(0)} MB model the inference function downloads there; set --ephemeral-storage ${needed} or more (or leave it out: deploy sizes it from the model)`,
    );
  }
  return asked ?? needed;
}
