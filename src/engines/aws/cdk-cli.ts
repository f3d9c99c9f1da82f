import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { CaiError, ErrorCodes } from '../../errors.js';

/**
 * The AWS CDK CLI's entry script, from the `aws-cdk` package CAI depends on.
 * @example cdkBin() // '/…/node_modules/aws-cdk/bin/cdk'
 */
export function cdkBin(): string {
  try {
    return createRequire(import.meta.url).resolve('aws-cdk/bin/cdk');
  } catch (err) {
    throw new CaiError(
      ErrorCodes.notFound,
      'aws-cdk',
      'the AWS CDK CLI is not installed; run `npm install aws-cdk`',
      {
        cause: err,
      },
    );
  }
}

/**
 * Runs the CDK CLI with `args` (e.g. `deploy Cai --app cdk.out/assembly`), its output on this terminal.
 * Resolves with its exit code.
 *
 * @example const code = await runCdk(['deploy', 'Cai', '--app', assemblyDir, '--require-approval', 'never']);
 */
export function runCdk(
  args: readonly string[],
  options: { profile?: string; region?: string } = {},
): Promise<number> {
  // The CDK CLI fetches "notices" from the internet and sends usage telemetry unless told not to; CAI
  // talks to the user's account only.
  const extra = ['--no-notices', ...(options.profile ? ['--profile', options.profile] : [])];
  const env = {
    ...process.env,
    CDK_DISABLE_CLI_TELEMETRY: process.env.CDK_DISABLE_CLI_TELEMETRY ?? 'true',
    ...(options.region ? { AWS_REGION: options.region, AWS_DEFAULT_REGION: options.region } : {}),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cdkBin(), ...args, ...extra], { stdio: 'inherit', env });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}
