import { type Command, InvalidArgumentError } from 'commander';
import { checkEngineFields } from '../../engines/fields.js';
import { registerEngine } from '../../engines/registry.js';
import { mergeJobInput } from '../../job/load.js';
import { outputInside, runJob, withSetupUndo } from '../../run/run.js';
import { parseJobSpec, type JobSpecInput } from '../../job/spec.js';
import type { SlurmOptionsInput } from '../../job/slurm-options.js';
import { openStore } from '../../storage/open.js';
import { Progress } from '../progress.js';
import { addJobOptions, jobOverrides } from '../run-command.js';
import { summaryText } from '../summary-text.js';

const positive =
  (name: string, integer = true) =>
  (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
      throw new InvalidArgumentError(
        `${name} must be a positive ${integer ? 'integer' : 'number'}, got "${value}"`,
      );
    return n;
  };

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function addSchedulerOptions(cmd: Command): Command {
  return cmd
    .option('--partition <name>', 'Slurm partition (queue) of the array')
    .option('--account <name>', 'allocation charged (--account)')
    .option('--qos <name>', 'quality of service (--qos)')
    .option('--time <limit>', 'time limit of one array task, e.g. 30 or 1:00:00 (--time)')
    .option(
      '--cpus-per-task <n>',
      'CPUs of one array task; the model runs on as many threads (default 1)',
      positive('--cpus-per-task'),
    )
    .option('--mem <size>', 'memory of one array task, e.g. 3G (--mem)')
    .option('--gres <spec>', 'generic resources, e.g. gpu:a100:1 (with --device cuda)')
    .option(
      '--throttle <k>',
      'array tasks running at once, the %K of --array (default 100)',
      positive('--throttle'),
    )
    .option(
      '--partitions-per-task <n>',
      'partitions one array task runs, loading the model once (default: fill the throttle)',
      positive('--partitions-per-task'),
    )
    .option('--job-name <name>', 'the array job name (default cai)')
    .option(
      '--sbatch-arg <arg>',
      'one more sbatch option, e.g. --sbatch-arg=--constraint=skylake (repeatable)',
      collect,
    )
    .option(
      '--setup <line>',
      'a shell line run before the worker, e.g. "module load nodejs/20" (repeatable)',
      collect,
    )
    .option('--log-dir <dir>', 'folder for the array tasks logs (default <output>/slurm/logs)')
    .option(
      '--poll-seconds <s>',
      'seconds between looks at the queue and the output (default 2)',
      positive('--poll-seconds', false),
    )
    .option(
      '--controller-timeout <s>',
      'seconds to keep watching an unreachable controller before leaving the arrays unwatched (default 300)',
      positive('--controller-timeout', false),
    );
}

function schedulerOverrides(o: Record<string, unknown>): SlurmOptionsInput {
  const picked: Record<string, unknown> = {
    partition: o.partition,
    account: o.account,
    qos: o.qos,
    time: o.time,
    cpusPerTask: o.cpusPerTask,
    mem: o.mem,
    gres: o.gres,
    throttle: o.throttle,
    partitionsPerTask: o.partitionsPerTask,
    jobName: o.jobName,
    sbatchArgs: o.sbatchArg,
    setup: o.setup,
    logDir: o.logDir,
    pollSeconds: o.pollSeconds,
    controllerTimeoutSeconds: o.controllerTimeout,
  };
  return Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined)) as SlurmOptionsInput;
}

/**
 * The flags of `cai slurm run` that are not job fields, and what each does (test/cli/options.test.ts
 * checks that every other flag reaches the job).
 */
export const SLURM_RUN_FLAGS = Object.freeze({
  dryRun: 'prints the batch script instead of submitting',
  detach: 'submits and returns, a dependent job continues the run',
  overwrite: 'starts over in an output that holds the job',
  json: 'prints the summary or the submitted ids as JSON',
  quiet: 'no progress output',
});

/**
 * The job fields `cai slurm run`'s flags give: the job flags, and the scheduler flags as its `slurm` field.
 * @example slurmJobOverrides({ partition: 'debug', batchSize: 64 }) // { batchSize: 64, slurm: { partition: 'debug' }, ... }
 */
export function slurmJobOverrides(o: Record<string, unknown>): Partial<JobSpecInput> {
  return { ...jobOverrides(o), slurm: schedulerOverrides(o) };
}

/** `cai slurm run|status|cancel` (and the hidden `task` and `continue` that run on compute nodes). */
export function registerSlurmCommand(program: Command): void {
  const slurm = program
    .command('slurm')
    .description('run jobs on a Slurm cluster as job arrays (from a login node)');

  addSchedulerOptions(
    addJobOptions(
      slurm
        .command('run')
        .description('plan the job, submit its partitions as one job array, watch it and summarize')
        .argument('[job]', 'job file (JSON); flags override its fields, --partition etc. its "slurm" fields'),
      { engine: 'slurm' },
    ),
  )
    .option('--dry-run', 'print the batch script that would be submitted, and submit nothing')
    .option(
      '--detach',
      'submit the array and a dependent job that retries failures and summarizes, print their ids and return',
    )
    .option('--overwrite', 'ignore the results of an earlier run in the same output and start over')
    .option('--json', 'print the summary (or the submitted job ids) as JSON on stdout')
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      "\nExit codes: 0 the job succeeded (or was submitted), 1 the job failed, 2 usage or setup error (nothing\nsubmitted), 3 the controller stopped answering and the arrays run on unwatched, 4 cancelled by the\nuser (scancel of the run's array, `cai slurm cancel`), 130/143 Ctrl-C/SIGTERM.\nRunning the same job again resumes: only partitions without a record are submitted, and arrays of the\njob still queued (a watcher killed mid-run) are adopted, not submitted again.\n\nExample:\n  cai slurm run job.json --partition standard --account my_alloc --time 1:00:00 --mem 3G",
    )
    .action(async (file: string | undefined, o: Record<string, unknown>) => {
      const { slurm: flags, ...overrides } = slurmJobOverrides(o);
      const merged = await mergeJobInput(file, overrides);
      const slurmFields = { ...(merged.slurm ?? {}), ...flags };
      const spec = parseJobSpec(
        { ...merged, engine: 'slurm', slurm: slurmFields } satisfies Partial<JobSpecInput>,
        file ?? 'job',
      );
      if (o.dryRun) {
        // What a submission would refuse, the dry run refuses too: fields Slurm does not use, a job whose
        // first partition does not fit its model (the checks `cai slurm run` makes before sbatch).
        checkEngineFields(spec);
        const { preflightSubmission } = await import('../../run/preflight.js');
        await preflightSubmission(spec, {
          overwrite: Boolean(o.overwrite),
          hashModel: true,
          exclude: outputInside(spec.input, spec.output),
        });
        const { dryRunScript } = await import('../../engines/slurm/detached.js');
        process.stdout.write(await dryRunScript(spec));
        return;
      }
      if (o.detach) {
        const { submitDetached } = await import('../../engines/slurm/detached.js');
        // As a watched run: the same lock (a detached submission and a watched run never both submit),
        // the same checks before anything is written, and a refusal (sbatch's) takes back what it wrote.
        const run = await withSetupUndo(spec, (_output, hooks) =>
          submitDetached(spec, Boolean(o.overwrite), hooks),
        );
        if (run?.sizing && !o.quiet) process.stderr.write(`${run.sizing}\n`);
        if (o.json) process.stdout.write(`${JSON.stringify(run ?? null)}\n`);
        else if (!run) process.stdout.write('every partition already has its record; nothing to submit\n');
        else if (run.alreadyRunning)
          process.stdout.write(
            `a detached run of this job is live already (${run.alreadyRunning}); nothing submitted\n  cai slurm status ${spec.output}\n`,
          );
        else
          process.stdout.write(
            `${run.arrayJobId ? `submitted array ${run.arrayJobId} (${run.tasks} tasks, ${run.partitions} partitions${run.resumed ? `, ${run.resumed} already done` : ''})` : 'submitted no array'}` +
              `${run.adopted.length ? `; adopted live array(s) ${run.adopted.join(', ')} holding ${run.adoptedPartitions} partition(s)` : ''}; job ${run.stepJobId} runs after it to retry failures or summarize\n` +
              `  cai slurm status ${spec.output}\n  cai slurm cancel ${spec.output}\n`,
          );
        return;
      }
      const { slurmEngine } = await import('../../engines/slurm/engine.js');
      const progress = o.quiet ? undefined : new Progress();
      registerEngine('slurm', async () =>
        slurmEngine({
          onSubmit: (r) =>
            process.stderr.write(
              `submitted array ${r.jobId}: ${r.tasks} task(s), ${r.partitions} partition(s) (round ${r.round}; logs in ${r.logDir})\n`,
            ),
          onNote: (text) => process.stderr.write(`${text}\n`),
        }),
      );
      // Ctrl-C: the arrays of this job must not keep running unwatched.
      const onSignal = () => {
        void (async () => {
          const { slurmCancel } = await import('../../engines/slurm/status.js');
          const ids = await slurmCancel(spec.output, spec.s3Endpoint).catch(() => []);
          process.stderr.write(
            `\ncancelled ${ids.join(', ') || 'nothing'}; run the same job again to resume\n`,
          );
          process.exit(130);
        })();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const summary = await runJob(spec, {
          overwrite: Boolean(o.overwrite),
          onPlan: ({ partitions, todo, pending }) => progress?.begin(todo, partitions.length, pending),
          onEvent: (e) => progress?.event(e),
        });
        progress?.end();
        if (o.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        else process.stdout.write(`${summaryText(summary)}\n`);
        if (summary.status !== 'succeeded') process.exitCode = summary.status === 'cancelled' ? 4 : 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  slurm
    .command('status')
    .description('show the arrays of a job and how many partitions have a record')
    .argument('<target>', 'the job output (path or s3:// URI) or a Slurm job id')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// outputs')
    .option('--json', 'print the status as JSON')
    .action(async (target: string, o: Record<string, unknown>) => {
      const { slurmStatus, statusText } = await import('../../engines/slurm/status.js');
      const status = await slurmStatus(target, o.s3Endpoint as string | undefined);
      process.stdout.write(`${o.json ? JSON.stringify(status, null, 2) : statusText(status)}\n`);
    });

  slurm
    .command('cancel')
    .description('cancel every array (and the Summarize job) of a job, or one job id')
    .argument('<target>', 'the job output (path or s3:// URI) or a Slurm job id (12, or 12_3 for one task)')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// outputs')
    .action(async (target: string, o: Record<string, unknown>) => {
      const { slurmCancel } = await import('../../engines/slurm/status.js');
      const ids = await slurmCancel(target, o.s3Endpoint as string | undefined);
      process.stdout.write(`cancelled ${ids.join(', ') || 'nothing (no arrays recorded)'}\n`);
    });

  // Run on compute nodes by the generated batch scripts; not for people.
  slurm
    .command('task', { hidden: true })
    .argument('<manifest>')
    .argument('<index>')
    .action(async (manifest: string, index: string) => {
      const { runSlurmTask } = await import('../../engines/slurm/task.js');
      await runSlurmTask(manifest, Number(index));
    });

  // Run by a detached run's step job after each round: retries what the policy allows, or summarizes.
  // `summarize` is the name detached runs submitted by earlier versions call.
  for (const name of ['continue', 'summarize'])
    slurm
      .command(name, { hidden: true })
      .argument('<output>')
      .requiredOption('--round <n>', 'the round whose array has ended', positive('--round'))
      .option('--s3-endpoint <url>')
      .action(async (output: string, o: Record<string, unknown>) => {
        const { continueChain } = await import('../../engines/slurm/chain.js');
        const store = await openStore(output, {
          s3Endpoint: (o.s3Endpoint as string | undefined) ?? process.env.AWS_ENDPOINT_URL_S3,
        });
        const result = await continueChain(store, o.round as number);
        if ('next' in result) {
          process.stdout.write(
            `round ${result.next.round}: resubmitted ${result.next.partitions} partition(s) as array ${result.next.jobId}; job ${result.stepJobId} runs after it\n`,
          );
          return;
        }
        process.stdout.write(`${summaryText(result.summary)}\n`);
        if (result.summary.status !== 'succeeded')
          process.exitCode = result.summary.status === 'cancelled' ? 4 : 1;
      });
}
