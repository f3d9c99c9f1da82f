// What a job may ask of the Slurm scheduler: the `slurm` field of a job and the flags of `cai slurm run`.
import { z } from 'zod';

// Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED.
const SLURM_TIME = /^(\d+-)?\d+(:\d{1,2}){0,2}$|^(UNLIMITED|INFINITE)$/i;

/**
 * Scheduler options of a job on the Slurm engine, passed to `sbatch`. Every field may be left out.
 *
 * @example parseJobSpec({ ..., engine: 'slurm', slurm: { partition: 'standard', time: '1:00:00', mem: '3G' } })
 */
export const SlurmOptionsSchema = z.strictObject({
  /** The partition (queue) the array runs in: `--partition`. */
  partition: z.string().min(1).optional(),
  /** The allocation charged: `--account`. */
  account: z.string().min(1).optional(),
  /** Quality of service: `--qos`. */
  qos: z.string().min(1).optional(),
  /** Time limit of one array task, in Slurm's format (`30`, `1:00:00`, `1-12`): `--time`. */
  time: z.string().regex(SLURM_TIME, 'a Slurm time such as 30, 1:00:00 or 1-12').optional(),
  /** CPUs of one array task; the worker's onnxruntime threads follow it: `--cpus-per-task`. */
  cpusPerTask: z.number().int().positive().default(1),
  /** Memory of one array task, e.g. `3G`: `--mem`. */
  mem: z
    .string()
    .regex(/^\d+[KMGT]?$/i, 'a Slurm memory size such as 3000, 3G or 500M')
    .optional(),
  /** Generic resources, e.g. `gpu:a100:1` (with `device: "cuda"`): `--gres`. */
  gres: z.string().min(1).optional(),
  /**
   * Array tasks running at once, the `%K` of `--array=0-(T-1)%K`; default: the task slots of the
   * partition's nodes (their CPUs / `cpusPerTask`, read with `sinfo`).
   */
  throttle: z.number().int().positive().optional(),
  /** Partitions one array task runs (loading the model once); default: enough tasks to fill `throttle`. */
  partitionsPerTask: z.number().int().positive().optional(),
  /** The array's job name: `--job-name`. */
  jobName: z
    .string()
    .regex(/^[\w.-]+$/, 'letters, digits, ".", "_" and "-"')
    .default('cai'),
  /** More `sbatch` options, each one argument, e.g. `["--constraint=skylake", "--requeue"]`. */
  sbatchArgs: z.array(z.string().regex(/^-/, 'an sbatch option, starting with -')).default([]),
  /** Shell lines run before the worker on the compute node, e.g. `module load nodejs/20`. */
  setup: z.array(z.string()).default([]),
  /** Folder for the array tasks' logs (default `<output>/slurm/logs`; required when the output is not a path). */
  logDir: z.string().min(1).optional(),
  /** Seconds between looks at the output and the queue while watching. */
  pollSeconds: z.number().positive().default(2),
  /**
   * Seconds a watching run keeps trying an unreachable controller (with backoff) before it gives up
   * and leaves the arrays running unwatched (exit 3; running the job again adopts them).
   */
  controllerTimeoutSeconds: z.number().positive().default(300),
});

/** Scheduler options as a user writes them. */
export type SlurmOptionsInput = z.input<typeof SlurmOptionsSchema>;

/** Scheduler options with every default filled in. */
export type SlurmOptions = z.output<typeof SlurmOptionsSchema>;

/** The job's scheduler options with defaults. @example resolveSlurmOptions(job.slurm).cpusPerTask // 1 */
export function resolveSlurmOptions(raw: SlurmOptionsInput | undefined): SlurmOptions {
  return SlurmOptionsSchema.parse(raw ?? {});
}
