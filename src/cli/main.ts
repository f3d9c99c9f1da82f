#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { Command, CommanderError } from 'commander';
// The AWS SDK warns once per process about future Node versions; every worker would repeat it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { CaiError, ErrorCodes, exitCodeFor } from '../errors.js';
import { isTransientNetworkError } from '../storage/retry.js';
import '../storage/register.js';

// A reader that stops early (`cai run --help | head -2`, `cai predictions ... | head`) closes the pipe:
// later writes fail with EPIPE, emitted as an 'error' event that would end the process with a stack
// trace. The output is simply no longer wanted: stop writing there and let the command end as it would
// (a running job still finishes and writes its output folder).
for (const stream of [process.stdout, process.stderr])
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });

/**
 * The version in this package's own package.json, found upwards from this module (dist/src/cli/ in the
 * repository and in an installed package alike), so it cannot drift from what npm installed.
 */
function ownVersion(): string {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === '@cai-infer/cai' && pkg.version) return pkg.version;
    } catch {
      // No package.json here (or not ours): look one folder up.
    }
    if (new URL('../', dir).href === dir.href) return 'unknown';
  }
}

const program = new Command('cai')
  .description(
    'CAI: data-parallel batch inference. Plan the partitions of a dataset, run an ONNX model on each, summarize.',
  )
  .version(ownVersion())
  .exitOverride();

// Each command's module is imported only when that command runs (the report's charting libraries, the
// AWS SDK and CDK are heavy): `cai run` starts in about half the time. Help and unknown commands get all.
const COMMANDS: Readonly<Record<string, () => Promise<unknown>>> = Object.freeze({
  run: async () => (await import('./run-command.js')).registerRunCommand(program),
  demo: async () => (await import('./demo-command.js')).registerDemoCommand(program),
  bench: async () => (await import('./commands/bench.js')).registerBenchCommand(program),
  cost: async () => (await import('./commands/cost.js')).registerCostCommand(program),
  estimate: async () => (await import('./commands/estimate.js')).registerEstimateCommand(program),
  report: async () => (await import('./commands/report.js')).registerReportCommand(program),
  partition: async () => (await import('./commands/partition.js')).registerPartitionCommand(program),
  aws: async () => (await import('./commands/aws.js')).registerAwsCommand(program),
  predictions: async () => (await import('./commands/predictions.js')).registerPredictionsCommand(program),
  slurm: async () => (await import('./commands/slurm.js')).registerSlurmCommand(program),
  optimize: async () => (await import('./commands/optimize.js')).registerOptimizeCommand(program),
});

const asked = process.argv.slice(2).find((a) => !a.startsWith('-'));

// Flags people reach for from other tools, and ours: commander only suggests names a few letters away.
const LIKELY_MEANT: Readonly<Record<string, string>> = {
  '--format': '--input-format (how to read the input) or --predictions-format (how to write predictions)',
  '--workers': '--concurrency',
  '--jobs': '--concurrency',
  '--batch': '--batch-size',
  '--out': '--output',
  '--data': '--input',
};

/** "did you mean" for an unknown flag commander found nothing close to. */
function meantHint(err: CommanderError): string | undefined {
  if (err.code !== 'commander.unknownOption' || /did you mean/i.test(err.message)) return undefined;
  const flag = /'(--[^'=]+)/.exec(err.message)?.[1];
  const meant = flag ? LIKELY_MEANT[flag] : undefined;
  return meant ? `did you mean ${meant}?` : undefined;
}

/** The one line after a usage error: where the full help is (the help itself would bury the error). */
function helpHint(): string {
  const words = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const known = asked !== undefined && Object.hasOwn(COMMANDS, asked);
  // A command with subcommands (`cai aws run`, `cai slurm status`): the subcommand's own help.
  const sub = known ? program.commands.find((c) => c.name() === asked) : undefined;
  const inner = sub?.commands.some((c) => c.name() === words[1] || c.aliases().includes(words[1] ?? ''));
  const command = !known ? 'cai' : inner ? `cai ${asked} ${words[1]}` : `cai ${asked}`;
  return `hint: \`${command} --help\` lists the options`;
}
const wantsHelp = process.argv.some((a) => a === '-h' || a === '--help');
// `cai run` forks its worker processes before importing its own modules, so both start up at once.
if (asked === 'run' && !wantsHelp) {
  const { forkSpareWorkers } = await import('../engines/local/spare-workers.js');
  forkSpareWorkers(os.availableParallelism());
}
if (asked !== undefined && asked !== 'help' && Object.hasOwn(COMMANDS, asked)) await COMMANDS[asked]();
else for (const register of Object.values(COMMANDS)) await register();

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version exit 0; every usage error exits 2, its one line followed by where help is.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
    if (process.exitCode === 2) {
      const meant = meantHint(err);
      process.stderr.write(`${meant ? helpHint().replace('hint: ', `hint: ${meant} `) : helpHint()}\n`);
    }
  } else if (err instanceof CaiError) {
    // The exit code says the cause (src/errors.ts, ExitCodes; the README's table): a job that ran and
    // failed (budget spent, endpoint or scheduler lost mid-run) exits 1, a usage or setup error found
    // before any work 2, work left running unwatched 3, cancelled from outside 4.
    process.stderr.write(`error: ${err.message}\n`);
    process.exitCode = exitCodeFor(err);
    if (err.code === ErrorCodes.option) process.stderr.write(`${helpHint()}\n`);
    // Stopped by a signal: exit now with 128 + its number (the engine's timers must not hold the exit).
    if (err.code === ErrorCodes.interrupted) process.exit(exitCodeFor(err));
  } else if (isTransientNetworkError(err)) {
    // A connection that kept failing past every retry: one line naming the address, not a stack.
    process.stderr.write(
      `error: ${(err as Error).message}; the storage or network endpoint looks unreachable: check that it is up, then run the same command again (a job resumes)\n`,
    );
    process.exitCode = exitCodeFor(err);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = exitCodeFor(err);
  }
}
