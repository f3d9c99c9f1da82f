// `cai bench` run in-process for the bench tests, with what it printed and the exit codes it set.
// Exports only; `node --test` running this file does nothing.
import { Command } from 'commander';
import type { AwsRunnerOptions } from '../../src/experiments/aws-runner.js';
import { registerBenchCommand } from '../../src/cli/commands/bench.js';

/** Runs `cai bench ...args`; `aws` replaces how the aws engine connects (the offline executor). */
export async function caiBench(
  args: readonly string[],
  aws: Pick<AwsRunnerOptions, 'connect' | 'pollMs'> = {},
): Promise<{ printed: string; codes: number[] }> {
  let printed = '';
  const codes: number[] = [];
  const program = new Command('cai').exitOverride();
  registerBenchCommand(
    program,
    (t) => {
      printed += t;
    },
    (code) => codes.push(code),
    aws,
  );
  await program.parseAsync(['node', 'cai', 'bench', ...args]);
  return { printed, codes };
}
