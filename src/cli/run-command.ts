import { Command, InvalidArgumentError, Option } from 'commander';
import { loadJob, parseColumnRef, parseInputMapping } from '../job/load.js';
import { runJob } from '../run/run.js';
import { OUTPUT_KEYS } from '../storage/output-layout.js';
import type { SkippedObject } from '../plan/plan.js';
import { honours, type EngineName } from '../engines/fields.js';
import {
  DEFAULT_PARTITION_TIMEOUT_SECONDS,
  DEVICES,
  GRAPH_OPTIMIZATIONS,
  PREDICTION_FORMATS,
  type JobSpecInput,
} from '../job/spec.js';
import { addSourceOptions, sourceOverrides } from './commands/partition.js';
import { Progress } from './progress.js';
import { summaryText } from './summary-text.js';

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`);
    return n;
  };
}

function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError(`must be a non-negative number, got "${value}"`);
  return n;
}

/**
 * Options shared by every command that takes a job (`cai run`, `cai slurm run`, `cai aws run`,
 * `cai bench`), each only where the command's engine honours its field (src/engines/fields.ts): `cai aws
 * run` has no --partition-timeout or --device (the stack's function decides them), `cai slurm run` no
 * --concurrency, --threads or --partition-timeout (--throttle, --cpus-per-task and --time instead).
 *
 * @example addJobOptions(program.command('run'), { engine: 'local' });
 */
export function addJobOptions(cmd: Command, where: { engine: EngineName } = { engine: 'local' }): Command {
  const offers = (field: keyof JobSpecInput) => honours(where.engine, field);
  const aws = where.engine === 'aws';
  cmd
    .option(
      '-i, --input <uri>',
      'directory or s3:// prefix of partition files, or one file of a dataset (HDF5, Parquet, FITS, .npz, .pt...)',
    )
    .option('-m, --model <uri>', 'ONNX model file (path or s3:// URI)')
    .option('-o, --output <uri>', 'directory or s3:// prefix for predictions, records and summary')
    .option('-b, --batch-size <n|auto>', 'items per model call, or "auto" to measure (default: 128)', (v) =>
      v === 'auto' ? 'auto' : positiveInt('--batch-size')(v),
    )
    .option(
      '--file-limit <k>',
      'use only the first K partitions in natural order (each row range of a file split by --partition-items is one partition)',
      positiveInt('--file-limit'),
    );
  // A flag whose field the engine does not use stays parsed but hidden: its value reaches the job, and
  // the engine's check refuses it before any work, saying what to use instead (engines/fields.ts).
  const only = (field: keyof JobSpecInput, option: Option) =>
    cmd.addOption(offers(field) ? option : option.hideHelp());
  only(
    'concurrency',
    new Option(
      '-c, --concurrency <n>',
      aws
        ? "partitions run at once, each in its own Lambda; at most the stack's --max-concurrency, more is refused (default: that maximum)"
        : 'worker processes (default: one per core)',
    ).argParser(positiveInt('--concurrency')),
  );
  only(
    'threads',
    new Option(
      '-t, --threads <n>',
      aws
        ? "onnxruntime threads per Lambda (default: the inference function's vCPUs)"
        : 'onnxruntime threads per worker (default: cores / workers)',
    ).argParser(positiveInt('--threads')),
  );
  cmd
    .option(
      '--inputs <mapping>',
      'model input = partition column, by name or position: image=0,magnitude=1',
      parseInputMapping,
    )
    .option(
      '--label <column>',
      'partition column with the true value, for metrics (name or position)',
      parseColumnRef,
    )
    .addOption(
      new Option('--predictions-format <format>', 'how predictions are written (default: parquet)').choices(
        PREDICTION_FORMATS,
      ),
    )
    .option(
      '--max-attempts <n>',
      'tries per partition before it fails (default: 3)',
      positiveInt('--max-attempts'),
    )
    .option(
      '--tolerated-failure-percentage <p>',
      'share of partitions that may fail before the job fails (default: 0)',
      nonNegativeNumber,
    )
    .addOption(
      new Option(
        '--graph-optimization <level>',
        "onnxruntime's graph optimizations: all (default, fastest) or fewer fusions, closer to PyTorch's float32",
      ).choices(GRAPH_OPTIMIZATIONS),
    )
    .option(
      '--s3-endpoint <url>',
      'S3-compatible endpoint for s3:// URIs (MinIO, Ceph, R2...); also AWS_ENDPOINT_URL_S3',
    );
  only(
    'partitionTimeoutSeconds',
    new Option(
      '--partition-timeout <seconds>',
      `seconds one attempt may take before it is stopped (default: ${DEFAULT_PARTITION_TIMEOUT_SECONDS})`,
    ).argParser(nonNegativeNumber),
  );
  only('device', new Option('--device <device>', 'where the model runs (default: cpu)').choices(DEVICES));
  return addSourceOptions(cmd);
}

/**
 * The warning naming input objects planning left out (the first five, with their reasons).
 * @example process.stderr.write(skippedWarning([{ key: 'notes.txt', reason: 'no reader for this kind of file' }]));
 */
export function skippedWarning(keys: readonly SkippedObject[], total = keys.length): string {
  const named = keys.slice(0, 5).map((k) => `  ${k.key}: ${k.reason}\n`);
  const more = total > named.length ? `  ... (${total - named.length} more)\n` : '';
  return `warning: skipped ${total} input object(s) (all in ${OUTPUT_KEYS.skipped}):\n${named.join('')}${more}`;
}

/** Maps parsed CLI options to job fields (flags win over the job file). */
export function jobOverrides(o: Record<string, unknown>): Partial<JobSpecInput> {
  return {
    input: o.input as string | undefined,
    model: o.model as string | undefined,
    output: o.output as string | undefined,
    batchSize: o.batchSize as number | 'auto' | undefined,
    fileLimit: o.fileLimit as number | undefined,
    concurrency: o.concurrency as number | undefined,
    threads: o.threads as number | undefined,
    inputs: o.inputs as Record<string, string | number> | undefined,
    label: o.label as string | number | undefined,
    predictionsFormat: o.predictionsFormat as JobSpecInput['predictionsFormat'],
    maxAttempts: o.maxAttempts as number | undefined,
    toleratedFailurePercentage: o.toleratedFailurePercentage as number | undefined,
    partitionTimeoutSeconds: o.partitionTimeout as number | undefined,
    device: o.device as JobSpecInput['device'],
    graphOptimization: o.graphOptimization as JobSpecInput['graphOptimization'],
    s3Endpoint: (o.s3Endpoint as string | undefined) ?? process.env.AWS_ENDPOINT_URL_S3,
    ...sourceOverrides(o),
  };
}

/**
 * The flags of `cai run` that are not job fields, and what each does (test/cli/options.test.ts checks
 * that every other flag reaches the job).
 */
export const RUN_FLAGS = Object.freeze({
  overwrite: 'starts over in an output that holds the job',
  json: 'prints the summary as JSON',
  quiet: 'no progress output',
});

/** `cai run [job.json] [flags]`. */
export function registerRunCommand(program: Command): void {
  addJobOptions(
    program
      .command('run')
      .description('run a job on this machine: plan the partitions, run the model on each, summarize')
      .argument('[job]', 'job file (JSON); flags override its fields'),
  )
    .option('--overwrite', 'ignore the results of an earlier run in the same output and start over')
    .option('--json', 'print the summary as JSON on stdout')
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      '\nExit codes: 0 the job succeeded, 1 the job ran and failed (error budget spent, endpoint lost), 2 usage or setup error (nothing written), 130/143 stopped by a signal.\nRunning the same job again resumes: complete partitions are skipped.\n\nExample:\n  cai run --input parts/ --model astromae.onnx --output out/ --inputs image=0,magnitude=1 --label 2',
    )
    .action(async (file: string | undefined, o: Record<string, unknown>) => {
      const spec = await loadJob(file, jobOverrides(o));
      const progress = o.quiet ? undefined : new Progress();
      // The bar ends (and the terminal is given back) whichever way the job ends.
      const summary = await runJob(spec, {
        overwrite: Boolean(o.overwrite),
        onPlan: ({ partitions, todo, pending, skipped }) => {
          if (skipped) process.stderr.write(skippedWarning(skipped.keys, skipped.total));
          progress?.begin(todo, partitions.length, pending);
        },
        onEvent: (e) => progress?.event(e),
      }).finally(() => progress?.end());
      if (o.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
      else process.stdout.write(`${summaryText(summary)}\n`);
      if (summary.status !== 'succeeded') process.exitCode = 1;
    });
}
