// Shared set-up of the aws tests: a tiny AstroMAE and a few CAI partitions in a local S3 server, and
// the synthesized stack for them. Exports only; `node --test` running this file does nothing.
import { rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { makeGalaxies } from '../../src/demo/galaxies.js';
import { synthesize, type Synthesized } from '../../src/engines/aws/app.js';
import { buildLambdaBundles, type LambdaBundles } from '../../src/engines/aws/bundle.js';
import type { StackParamsInput } from '../../src/engines/aws/params.js';
import { encodePtDataset } from '../../src/formats/writers/pt-writer.js';
import type { JobSpecInput } from '../../src/job/spec.js';
import { ASTROMAE_TINY, buildAstroMAE } from '../../src/model/zoo/astromae.js';
import { S3Store } from '../../src/storage/s3-store.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';

/** Buckets and prefixes of the test deployment. */
export const DEPLOYMENT = Object.freeze({
  data: 's3://cai-data/galaxies',
  output: 's3://cai-out/runs',
  model: 's3://cai-data/models/astromae.onnx',
});

/** A local S3 with the fixture in it. */
export interface AwsFixture {
  readonly s3: S3TestServer;
  /** Items per partition, by partition id. */
  readonly items: Readonly<Record<string, number>>;
  /** A job for the good data with output prefix `runs/<name>`. */
  job(name: string, overrides?: Partial<JobSpecInput>): JobSpecInput;
  store(uri: string): S3Store;
}

/** Partition sizes: uneven, so that batching and item counts are visible. */
export const PARTITION_ITEMS = [40, 33, 40, 27, 12] as const;

/**
 * Starts s3rver with the data and output buckets, uploads a tiny AstroMAE and five `.pt` partitions
 * made by CAI's torch.save-compatible writer (labels: a fixed function of the magnitudes) under
 * `galaxies/good/`, and the same under `galaxies/bad/` with `5.pt` truncated (corrupt).
 */
export async function startAwsFixture(): Promise<AwsFixture> {
  const s3 = await startS3Server(['cai-data', 'cai-out']);
  const store = (uri: string) => new S3Store(uri, { s3Endpoint: s3.endpoint });
  const good = store(`${DEPLOYMENT.data}/good`);
  const bad = store(`${DEPLOYMENT.data}/bad`);
  const items: Record<string, number> = {};
  for (const [i, n] of PARTITION_ITEMS.entries()) {
    const g = makeGalaxies(n, 9000 + i);
    const label: Tensor<'float32'> = {
      dtype: 'float32',
      shape: [n],
      data: Float32Array.from(
        { length: n },
        (_, k) => 0.05 + 0.02 * ((g.magnitudes.data[k * 5 + 2] - 16) % 10),
      ),
    };
    const bytes = encodePtDataset([g.images, g.magnitudes, label], String(i + 1));
    await good.put(`${i + 1}.pt`, bytes);
    await bad.put(`${i + 1}.pt`, i === PARTITION_ITEMS.length - 1 ? bytes.subarray(0, 4096) : bytes);
    items[String(i + 1)] = n;
  }
  const [models, modelKey] = [store('s3://cai-data/models'), 'astromae.onnx'];
  await models.put(modelKey, buildAstroMAE(ASTROMAE_TINY));
  return {
    s3,
    items,
    store,
    job: (name, overrides = {}) => ({
      input: `${DEPLOYMENT.data}/good`,
      model: DEPLOYMENT.model,
      output: `${DEPLOYMENT.output}/${name}`,
      inputs: { image: 0, magnitude: 1 },
      label: 2,
      batchSize: 16,
      predictionsFormat: 'jsonl',
      s3Endpoint: s3.endpoint,
      ...overrides,
    }),
  };
}

// Packages and assemblies take tens of MB per test process: removed when the process exits.
const scratch: string[] = [];
process.once('exit', () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});
async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

let bundles: Promise<LambdaBundles> | undefined;

/** The Lambda packages for x86_64, built once per test process. */
export function testBundles(): Promise<LambdaBundles> {
  bundles ??= scratchDir('cai-aws-bundles-').then((dir) =>
    buildLambdaBundles({ outDir: dir, architecture: 'x86_64' }),
  );
  return bundles;
}

/** Synthesizes the test deployment (with more parameters) into a fresh folder. */
export async function synthTest(params: Partial<StackParamsInput> = {}): Promise<Synthesized> {
  const dir = await scratchDir('cai-aws-synth-');
  return synthesize({ ...DEPLOYMENT, ...params }, dir, { bundles: await testBundles() });
}
