import { promises as fs } from 'node:fs';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { STEPFUNCTIONS_USE_DISTRIBUTED_MAP_RESULT_WRITER_V2 } from 'aws-cdk-lib/cx-api';
import { CaiError, ErrorCodes } from '../../errors.js';
import { buildLambdaBundles, type LambdaBundles } from './bundle.js';
import { parseStackParams, type StackParams, type StackParamsInput } from './params.js';
import { CaiStack, LAMBDA_RUNTIME } from './stack.js';

/**
 * The Lambda Node.js base image the container option builds on (built at deploy time only): AWS's image
 * of the same Node.js version as the zip functions' runtime, e.g. `public.ecr.aws/lambda/nodejs:24`.
 */
export const LAMBDA_BASE_IMAGE = `public.ecr.aws/lambda/nodejs:${LAMBDA_RUNTIME.name.replace(/^nodejs(\d+)\.x$/, '$1')}`;

/** What {@link synthesize} wrote. */
export interface Synthesized {
  /** The cloud assembly folder, for `cdk deploy --app <dir>`. */
  readonly assemblyDir: string;
  /** The CloudFormation template file. */
  readonly templateFile: string;
  readonly params: StackParams;
  readonly bundles: LambdaBundles;
}

/**
 * The Dockerfile of the container option: the same inference package on AWS's Lambda Node.js image.
 * @example await writeFile('Dockerfile', dockerfile());
 */
export function dockerfile(): string {
  return [
    "# CAI's inference function as a container image (`cai aws deploy --packaging image`), for code over",
    "# Lambda's 250 MB zip limit. The CDK builds it at deploy time, never when synthesizing.",
    `FROM ${LAMBDA_BASE_IMAGE}`,
    "# The inference package: the esbuild bundle, onnxruntime-node's Linux binaries in onnxruntime/ and",
    "# sharp's in node_modules/@img/ (see .dockerignore).",
    'COPY . ${LAMBDA_TASK_ROOT}/',
    'CMD ["index.handler"]',
    '',
  ].join('\n');
}

/**
 * Synthesizes CAI's stack offline (no account, no Docker): builds the Lambda packages under
 * `<outDir>/bundles`, then writes the CloudFormation template and assets into `<outDir>/assembly`.
 * Pass `bundles` to reuse packages built earlier.
 *
 * @example const { templateFile } = await synthesize({ data: 's3://b/galaxies', output: 's3://b/out', model: 's3://b/m.onnx' }, 'cdk.out');
 */
export async function synthesize(
  input: StackParamsInput,
  outDir: string,
  options: { bundles?: LambdaBundles } = {},
): Promise<Synthesized> {
  const params = parseStackParams(input);
  if (options.bundles && options.bundles.architecture !== params.architecture) {
    throw new CaiError(
      ErrorCodes.option,
      'architecture',
      `the packages given were built for ${options.bundles.architecture}, the stack is ${params.architecture}; build them for ${params.architecture}`,
    );
  }
  const root = path.resolve(outDir);
  const bundles =
    options.bundles ??
    (await buildLambdaBundles({
      outDir: path.join(root, 'bundles'),
      architecture: params.architecture,
      packaging: params.packaging,
    }));
  let imageContext: string | undefined;
  if (params.packaging === 'image') {
    imageContext = path.join(root, 'image');
    await fs.rm(imageContext, { recursive: true, force: true });
    await fs.cp(bundles.inference.dir, imageContext, { recursive: true });
    await fs.writeFile(path.join(imageContext, 'Dockerfile'), dockerfile());
    await fs.writeFile(path.join(imageContext, '.dockerignore'), 'Dockerfile\n.dockerignore\n');
  }
  const assemblyDir = path.join(root, 'assembly');
  await fs.rm(assemblyDir, { recursive: true, force: true });
  const app = new App({
    outdir: assemblyDir,
    context: { [STEPFUNCTIONS_USE_DISTRIBUTED_MAP_RESULT_WRITER_V2]: true },
  });
  const stack = new CaiStack(app, params.stackName, {
    params,
    bundles,
    imageContext,
    description: 'CAI: data-parallel batch inference with Step Functions Distributed Map and Lambda',
  });
  const assembly = app.synth();
  return {
    assemblyDir: assembly.directory,
    templateFile: path.join(assembly.directory, stack.templateFile),
    params,
    bundles,
  };
}
