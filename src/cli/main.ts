#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
// The AWS SDK warns once per process about future Node versions; every worker would repeat it.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { CaiError, ErrorCodes } from '../errors.js';
import '../storage/register.js';
import { registerAwsCommand } from './commands/aws.js';
import { registerBenchCommand } from './commands/bench.js';
import { registerCostCommand } from './commands/cost.js';
import { registerEstimateCommand } from './commands/estimate.js';
import { registerPartitionCommand } from './commands/partition.js';
import { registerReportCommand } from './commands/report.js';
import { registerDemoCommand } from './demo-command.js';
import { registerRunCommand } from './run-command.js';

const program = new Command('cai')
  .description(
    'CAI: data-parallel batch inference. Plan the partitions of a dataset, run an ONNX model on each, summarize.',
  )
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

registerRunCommand(program);
registerDemoCommand(program);
registerBenchCommand(program);
registerCostCommand(program);
registerEstimateCommand(program);
registerReportCommand(program);
registerPartitionCommand(program);
registerAwsCommand(program);

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
