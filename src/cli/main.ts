#!/usr/bin/env node
import os from 'node:os';
import { Command, CommanderError } from 'commander';
// The AWS SDK warns once per process about future Node versions; every worker would repeat it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { CaiError, ErrorCodes } from '../errors.js';
import '../storage/register.js';

const program = new Command('cai')
  .description(
    'CAI: data-parallel batch inference. Plan the partitions of a dataset, run an ONNX model on each, summarize.',
  )
  .version('0.1.0')
  .showHelpAfterError()
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
  slurm: async () => (await import('./commands/slurm.js')).registerSlurmCommand(program),
});

const asked = process.argv.slice(2).find((a) => !a.startsWith('-'));
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
    // Help and version exit 0; every usage error exits 2.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof CaiError) {
    process.stderr.write(`error: ${err.message}\n`);
    process.exitCode = err.code === ErrorCodes.option ? 2 : 1;
  } else {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
