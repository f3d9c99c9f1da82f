import { promises as fs } from 'node:fs';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { AwsApi, AwsSession } from '../../engines/aws/cloud.js';
import {
  ARCHITECTURES,
  PACKAGINGS,
  parseStackParams,
  type StackParamsInput,
} from '../../engines/aws/params.js';
import type { AwsProgressEvent, AwsRunResult, StopSignal } from '../../engines/aws/run-on-aws.js';
import { jobOfExecution, prepareAwsJob, readRunSummary, runOnAws } from '../../engines/aws/run-on-aws.js';
import { CaiError, ErrorCodes, duringWork } from '../../errors.js';
import { mergeJobInput } from '../../job/load.js';
import type { JobSpec, JobSpecInput } from '../../job/spec.js';
import { addJobOptions, jobOverrides, skippedWarning } from '../run-command.js';
import type { SkippedObject } from '../../plan/plan.js';
import { requireAwsParts } from '../aws-parts.js';
import { summaryText } from '../summary-text.js';

/** What the `aws` commands use from the outside world; tests replace parts of it. */
export interface AwsCommandDeps {
  /** Connects to AWS (credentials and region checked); the SDK by default. */
  readonly api?: (session: AwsSession) => Promise<AwsApi>;
  readonly out?: (text: string) => void;
  readonly err?: (text: string) => void;
  /** Seconds between status polls of `cai aws run`; 2 by default. */
  readonly pollSeconds?: number;
  /**
   * The checks of `cai aws run` before an execution starts; `preflightSubmission` (src/run/preflight.ts)
   * by default. Tests of the watcher alone, whose stub stack has no data, pass their own.
   */
  readonly preflight?: (spec: JobSpec, overwrite: boolean) => Promise<readonly SkippedObject[]>;
}

const number =
  (name: string, integer = true) =>
  (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < 0)
      throw new InvalidArgumentError(
        `${name} must be a non-negative ${integer ? 'integer' : 'number'}, got "${value}"`,
      );
    return n;
  };

function addStackOptions(cmd: Command): Command {
  return cmd
    .option('--params <file>', 'stack parameters as JSON (flags override its fields)')
    .option('--stack-name <name>', 'CloudFormation stack name (default: Cai)')
    .option('--data <s3uri>', 'S3 prefix of the partitions jobs may read, e.g. s3://bucket/galaxies')
    .option('--output <s3uri>', 'S3 prefix jobs may write to, e.g. s3://bucket/cai-out')
    .option('--model <s3uri>', 'the ONNX model object, e.g. s3://bucket/models/astromae.onnx')
    .option('--memory <mb>', 'inference Lambda memory, MB (default: 10240 = 6 vCPUs)', number('--memory'))
    .option('--timeout <seconds>', 'inference Lambda timeout (default: 900)', number('--timeout'))
    .option(
      '--max-concurrency <n>',
      'most inference Lambdas at once (default: 1000)',
      number('--max-concurrency'),
    )
    .addOption(
      new Option('--architecture <arch>', 'Lambda architecture (default: x86_64)').choices(ARCHITECTURES),
    )
    .option(
      '--tolerated-failure-percentage <p>',
      'for jobs that set none: share of partitions that may fail (default: 0)',
      number('--tolerated-failure-percentage', false),
    )
    .option(
      '--items-per-batch <n>',
      'partitions per inference invocation (default: 1: no ItemBatcher)',
      number('--items-per-batch'),
    )
    .option(
      '--crash-attempts <n>',
      'tries of an invocation that crashed or timed out (default: 3)',
      number('--crash-attempts'),
    )
    .addOption(
      new Option('--packaging <kind>', 'inference code as a zip or a container image (default: zip)').choices(
        PACKAGINGS,
      ),
    )
    .option(
      '--ephemeral-storage <mb>',
      'inference Lambda /tmp size, MB (default: deploy sizes it from the model, at least 512)',
      number('--ephemeral-storage'),
    )
    .option('--whole-bucket-output', 'allow --output to be a whole bucket (s3://bucket), not a prefix');
}

async function stackParams(o: Record<string, unknown>): Promise<StackParamsInput> {
  let base: Record<string, unknown> = {};
  if (typeof o.params === 'string') {
    try {
      base = JSON.parse(await fs.readFile(o.params, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new CaiError(
        ErrorCodes.option,
        o.params,
        `cannot read stack parameters (${(err as Error).message})`,
      );
    }
  }
  const flags: Record<string, unknown> = {
    stackName: o.stackName,
    data: o.data,
    output: o.output,
    model: o.model,
    memoryMb: o.memory,
    timeoutSeconds: o.timeout,
    maxConcurrency: o.maxConcurrency,
    architecture: o.architecture,
    toleratedFailurePercentage: o.toleratedFailurePercentage,
    itemsPerBatch: o.itemsPerBatch,
    crashAttempts: o.crashAttempts,
    packaging: o.packaging,
    ephemeralStorageMb: o.ephemeralStorage,
    wholeBucketOutput: o.wholeBucketOutput,
  };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) base[k] = v;
  return base as unknown as StackParamsInput;
}

// The inference function's /tmp from the model's size (a HEAD with the deployer's credentials): a model
// above ~450 MB no longer fails in every cold start with a full disk.
async function sizeTmp(model: string, asked: number | undefined, warn: (t: string) => void): Promise<number> {
  const { ephemeralStorageFor } = await import('../../engines/aws/params.js');
  const { S3Store } = await import('../../storage/s3-store.js');
  const cut = model.lastIndexOf('/');
  const store = new S3Store(model.slice(0, cut));
  try {
    const size = (await store.head(model.slice(cut + 1)))?.size;
    if (size !== undefined) return ephemeralStorageFor(size, asked);
  } catch (e) {
    if (e instanceof CaiError && e.code === ErrorCodes.option) throw e;
  } finally {
    store.close();
  }
  warn(`warning: could not read the size of ${model}; /tmp stays ${asked ?? 512} MB\n`);
  return asked ?? 512;
}

function addSessionOptions(cmd: Command): Command {
  return cmd
    .option('--region <region>', 'AWS region (default: AWS_REGION or your profile)')
    .option('--profile <name>', 'AWS profile (default: AWS_PROFILE or default)');
}

const session = (o: Record<string, unknown>): AwsSession => ({
  region: o.region as string | undefined,
  profile: o.profile as string | undefined,
  stackName: (o.stackName as string | undefined) ?? 'Cai',
});

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/**
 * The flags of `cai aws run` that are not job fields, and what each does (test/cli/options.test.ts checks
 * that every other flag reaches the job).
 */
export const AWS_RUN_FLAGS = Object.freeze({
  stackName: 'the deployed stack the job runs on',
  region: 'the AWS region',
  profile: 'the AWS profile',
  overwrite: 'starts over in an output that holds the job',
  json: 'prints the summary as JSON',
  quiet: 'no progress output',
});

/** Reads the job file's fields (if any) and the flags that were given, without defaults. */
async function rawJob(file: string | undefined, o: Record<string, unknown>): Promise<Partial<JobSpecInput>> {
  return mergeJobInput(file, jobOverrides(o));
}

function progressLine(e: AwsProgressEvent): string {
  const t = `${e.elapsedSeconds.toFixed(0)} s`;
  if (!e.items) return `${e.status.toLowerCase()} (${t}): planning`;
  const i = e.items;
  return `${e.status.toLowerCase()} (${t}): partitions ${i.succeeded}/${i.total} done, ${i.failed + i.timedOut} failed, ${i.running} running, ${i.pending} pending`;
}

function report(result: AwsRunResult, o: Record<string, unknown>, out: (t: string) => void): void {
  // Summarize failed but wrote what it knew (a failed summary): one error naming why, exit 1.
  const failedSummary = (
    result.summary as { summarize_error?: { code: string; message: string } } | undefined
  )?.summarize_error;
  if (failedSummary) {
    if (o.json) out(`${JSON.stringify(result.summary, null, 2)}\n`);
    throw duringWork(
      new CaiError(
        failedSummary.code,
        result.executionArn,
        `Summarize failed (${failedSummary.message}); the summary written holds what the execution knew: fix the cause and run the job again (it resumes)`,
      ),
    );
  }
  if (result.summary) {
    out(o.json ? `${JSON.stringify(result.summary, null, 2)}\n` : `${summaryText(result.summary)}\n`);
    if (result.summary.status !== 'succeeded') process.exitCode = 1;
    return;
  }
  let cause = result.cause ?? '';
  try {
    cause = (JSON.parse(cause) as { errorMessage?: string }).errorMessage ?? cause;
  } catch {
    // A Step Functions cause in plain text.
  }
  throw new CaiError(
    ErrorCodes.budget,
    result.executionArn,
    `the execution ended ${result.status}${result.error ? ` with ${result.error}` : ''} before writing a summary${cause ? `: ${cause}` : ''}`,
  );
}

/**
 * Registers `cai aws synth | deploy | destroy | bootstrap | run | status`: CAI on Step Functions
 * Distributed Map and Lambda, deployed with the AWS CDK. The lead wires it into `cai`.
 *
 * @example registerAwsCommand(program); await program.parseAsync(['node', 'cai', 'aws', 'synth', '--data', 's3://b/d', '--output', 's3://b/o', '--model', 's3://b/m.onnx']);
 */
export function registerAwsCommand(program: Command, deps: AwsCommandDeps = {}): Command {
  const out = deps.out ?? ((t: string) => process.stdout.write(t));
  const err = deps.err ?? ((t: string) => process.stderr.write(t));
  // The SDK clients are optional peer dependencies: imported only when a command talks to AWS.
  const connect =
    deps.api ?? (async (s: AwsSession) => (await import('../../engines/aws/cloud.js')).sdkAwsApi(s));
  const aws = program
    .command('aws')
    .description(
      'run CAI on AWS: Step Functions Distributed Map + Lambda, deployed with the AWS CDK (see docs/aws.md)',
    )
    .hook('preAction', (_aws, action) => requireAwsParts(action.name()));

  addStackOptions(
    aws
      .command('synth')
      .description('write the CloudFormation template and Lambda packages to a folder (no account needed)'),
  )
    .option('--out <dir>', 'where to write them', 'cdk.out')
    .action(async (o: Record<string, unknown>) => {
      const { synthesize } = await import('../../engines/aws/app.js');
      const s = await synthesize(await stackParams(o), String(o.out));
      out(
        `template:  ${s.templateFile}\nassembly:  ${s.assemblyDir}\n` +
          `inference package (${s.params.architecture}): ${mib(s.bundles.inference.zippedBytes)} zipped, ${mib(s.bundles.inference.unzippedBytes)} unzipped (Lambda allows 250 MiB)\n` +
          `control package: ${mib(s.bundles.control.zippedBytes)} zipped\n` +
          `next: cai aws deploy with the same parameters (docs/aws.md)\n`,
      );
    });

  addSessionOptions(
    addStackOptions(aws.command('deploy').description('synthesize, then deploy the stack with the CDK CLI')),
  )
    .option('--out <dir>', 'where to synthesize', 'cdk.out')
    .option(
      '--require-approval <level>',
      "CDK's approval of IAM changes: never, any-change, broadening",
      'never',
    )
    .action(async (o: Record<string, unknown>) => {
      const raw = await stackParams(o);
      const asked = parseStackParams(raw);
      const api = await connect({ ...session(o), stackName: asked.stackName });
      // More Map children than the account may run at once would only wait in throttling retries.
      const { capConcurrency } = await import('../../engines/aws/account-limits.js');
      const capped = capConcurrency(asked.maxConcurrency, await api.accountConcurrency?.());
      if (capped.warning) err(`warning: ${capped.warning}\n`);
      const params = {
        ...asked,
        maxConcurrency: capped.maxConcurrency,
        ephemeralStorageMb: await sizeTmp(asked.model, raw.ephemeralStorageMb, err),
      };
      const { synthesize } = await import('../../engines/aws/app.js');
      const { runCdk } = await import('../../engines/aws/cdk-cli.js');
      const s = await synthesize(params, String(o.out));
      const code = await runCdk(
        ['deploy', params.stackName, '--app', s.assemblyDir, '--require-approval', String(o.requireApproval)],
        session(o),
      );
      if (code !== 0)
        throw new CaiError(
          ErrorCodes.option,
          'cdk deploy',
          `failed (exit ${code}); if it says the environment is not bootstrapped, run \`cai aws bootstrap\` once`,
        );
      out(`deployed ${params.stackName}; run a job with: cai aws run job.json\n`);
    });

  addSessionOptions(
    aws
      .command('destroy')
      .description('delete the stack (functions, state machine, roles, log groups); your buckets stay'),
  )
    .option('--stack-name <name>', 'CloudFormation stack name (default: Cai)')
    .action(async (o: Record<string, unknown>) => {
      const s = session(o);
      const api = await connect(s);
      // Only a stack `cai aws deploy` made (it has CAI's outputs) is deleted: a mistyped --stack-name
      // must not remove someone else's stack. CloudFormation deletes it directly; nothing is built.
      const deployment = await api.describeStack(s.stackName);
      err(`deleting stack ${deployment.stackName} in ${deployment.region}...\n`);
      await api.deleteStack(deployment.stackName);
      out(`deleted ${deployment.stackName}; your buckets, data, model and outputs are untouched\n`);
    });

  addSessionOptions(
    aws
      .command('bootstrap')
      .description("prepare the account and region for CDK deployments (once; the CDK's own bootstrap)"),
  ).action(async (o: Record<string, unknown>) => {
    await connect(session(o));
    const { runCdk } = await import('../../engines/aws/cdk-cli.js');
    const code = await runCdk(['bootstrap'], session(o));
    if (code !== 0) throw new CaiError(ErrorCodes.option, 'cdk bootstrap', `failed (exit ${code})`);
  });

  addSessionOptions(
    addJobOptions(
      aws
        .command('run')
        .description('run a job on the deployed stack, with live progress; prints the summary')
        .argument('[job]', 'job file (JSON), the same as for `cai run`; flags override its fields'),
      { engine: 'aws' },
    ),
  )
    .option('--stack-name <name>', 'CloudFormation stack name (default: Cai)')
    .option('--overwrite', 'ignore the results of an earlier run in the same output and start over')
    .option('--json', 'print the summary as JSON on stdout')
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      "\nExit codes: 0 the job succeeded, 1 the job ran and failed, 2 usage or setup error, 3 Step Functions lost (or a Ctrl-C's stop not taken) while the execution runs on (`cai aws status <arn>` follows it; see the README's table), 130/143 Ctrl-C/SIGTERM: the execution is stopped (StopExecution).\nInput and model default to the stack's data prefix and model. Before an execution starts, the job is checked on this machine as `cai run` checks it (your credentials read the input, model and output; nothing is written): a mistake exits 2 with nothing started.",
    )
    .action(async (file: string | undefined, o: Record<string, unknown>) => {
      const job = await rawJob(file, o);
      const api = await connect(session(o));
      const deployment = await api.describeStack(session(o).stackName);
      const { raw, spec, warnings } = prepareAwsJob(job, deployment);
      for (const w of warnings) err(`warning: ${w}\n`);
      // The same output lock as `cai run` (src/run/lock.ts): one live run per output, whatever the engine.
      const { openStore } = await import('../../storage/open.js');
      const { acquireLock } = await import('../../run/lock.js');
      const output = await openStore(spec.output, { s3Endpoint: spec.s3Endpoint });
      const lock = await acquireLock(output);
      // Ctrl-C / SIGTERM stop the job, as on every engine: its execution is stopped (run-on-aws.ts),
      // the lock released, exit 130/143; a second one ends the process at once.
      let onStop: (signal: StopSignal) => void = () => undefined;
      const stop = new Promise<StopSignal>((resolve) => (onStop = resolve));
      const onSigint = () => onStop('SIGINT');
      const onSigterm = () => onStop('SIGTERM');
      process.once('SIGINT', onSigint);
      process.once('SIGTERM', onSigterm);
      let result: AwsRunResult;
      try {
        // What `cai run` checks before any work, checked here with your credentials before the execution
        // starts: a mistake (a --carry column the data lacks, another job in the output) exits 2 with
        // nothing started, instead of failing in every partition's Lambda.
        const check =
          deps.preflight ??
          (async (job: JobSpec, overwrite: boolean) =>
            (await import('../../run/preflight.js')).preflightSubmission(job, { overwrite }));
        const skipped = await check(spec, Boolean(o.overwrite));
        if (skipped.length) err(skippedWarning(skipped));
        result = await runOnAws(api, deployment, spec, raw, {
          overwrite: Boolean(o.overwrite),
          pollMs: (deps.pollSeconds ?? 2) * 1000,
          onProgress: o.quiet ? undefined : (e) => err(`${progressLine(e)}\n`),
          stop,
        }).catch((e: unknown) => {
          throw duringWork(e);
        });
      } finally {
        process.off('SIGINT', onSigint);
        process.off('SIGTERM', onSigterm);
        await lock.release().catch(() => undefined);
      }
      if (!o.quiet) err(`execution ${result.executionArn}\n`);
      report(result, o, out);
    });

  addSessionOptions(
    aws
      .command('status')
      .description('show an execution: status, Map Run progress, and its summary once it ended')
      .argument('<executionArn>'),
  )
    .option('--json', 'print the summary as JSON on stdout')
    .action(async (executionArn: string, o: Record<string, unknown>) => {
      // An execution lives in the region its ARN names, whatever the profile's default region is.
      const arnRegion = /^arn:[^:]+:states:([^:]+):/.exec(executionArn)?.[1];
      const api = await connect({ ...session(o), region: (o.region as string | undefined) ?? arnRegion });
      const state = await api.describeExecution(executionArn);
      const items = await api.mapRun(executionArn);
      const elapsedSeconds = ((state.stopDate ?? new Date()).getTime() - state.startDate.getTime()) / 1000;
      err(`${progressLine({ executionArn, status: state.status, items, elapsedSeconds })}\n`);
      if (state.status === 'RUNNING') return;
      const summary = await readRunSummary(jobOfExecution(state), state.startDate);
      report({ executionArn, status: state.status, summary, error: state.error, cause: state.cause }, o, out);
    });

  return aws;
}
