import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CaiError, ErrorCodes } from '../errors.js';

// The AWS CDK and the Step Functions / CloudFormation / Lambda clients are optional peer dependencies: npm does
// not install optional peers, so a local-only install skips ~200 MB (aws-cdk-lib alone is 161 MB).
// `cai aws` checks for them here and says how to add them, at the versions this release was tested with.

/** What each `cai aws` subcommand needs beyond the core install. */
const NEEDS: Readonly<Record<string, readonly string[]>> = Object.freeze({
  synth: ['aws-cdk-lib', 'constructs', 'esbuild'],
  deploy: [
    'aws-cdk-lib',
    'constructs',
    'esbuild',
    'aws-cdk',
    '@aws-sdk/client-cloudformation',
    '@aws-sdk/client-lambda',
  ],
  bootstrap: ['aws-cdk', '@aws-sdk/client-cloudformation'],
  destroy: ['@aws-sdk/client-cloudformation'],
  run: ['@aws-sdk/client-cloudformation', '@aws-sdk/client-sfn'],
  status: ['@aws-sdk/client-cloudformation', '@aws-sdk/client-sfn'],
});

const here = path.dirname(fileURLToPath(import.meta.url));

/** Our package.json: two folders up from dist/src/cli in the repository and in an installed package. */
function packageJson(): { name: string; peerDependencies?: Record<string, string> } {
  return JSON.parse(readFileSync(path.join(here, '..', '..', '..', 'package.json'), 'utf8')) as {
    name: string;
    peerDependencies?: Record<string, string>;
  };
}

/** Whether Node's resolution from this file finds the package (its folder in a node_modules above). */
function installed(name: string): boolean {
  for (let dir = here; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'node_modules', name, 'package.json'))) return true;
    if (path.dirname(dir) === dir) return false;
  }
}

/**
 * Throws a setup error naming the packages `cai aws <subcommand>` needs and the command that adds
 * them, when any is missing.
 *
 * @example requireAwsParts('synth') // throws unless aws-cdk-lib, constructs and esbuild are installed
 */
export function requireAwsParts(subcommand: string): void {
  const missing = (NEEDS[subcommand] ?? []).filter((name) => !installed(name));
  if (missing.length === 0) return;
  const pkg = packageJson();
  const all = Object.keys(NEEDS).flatMap((k) => NEEDS[k]);
  const specs = [...new Set(all)].map((n) => `${n}@${pkg.peerDependencies?.[n] ?? 'latest'}`);
  const global = here.includes(`${path.sep}lib${path.sep}node_modules${path.sep}`) ? ' -g' : '';
  throw new CaiError(
    ErrorCodes.setup,
    `cai aws ${subcommand}`,
    `needs ${missing.join(', ')}, which a local-only install leaves out; add the AWS parts with: npm install${global} ${specs.join(' ')}`,
  );
}
