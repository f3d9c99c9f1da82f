import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { resolveSlurmOptions } from '../../src/engines/slurm/options.js';
import { runJob } from '../../src/job/run.js';
import { allPredictions, freshJob, smallDemo } from '../helpers/demo-fixture.js';
import { slurmUnavailable, startSlurmCluster, type SlurmCluster } from '../helpers/slurm-cluster.js';
import { assertSamePredictions, referencePredictions } from '../engine/contract.js';

const skip = await slurmUnavailable();
let cluster: SlurmCluster | undefined;
before(async () => {
  if (!skip) cluster = await startSlurmCluster();
});
after(async () => {
  await cluster?.stop();
});

const FAST = { engine: 'slurm' as const, slurm: resolveSlurmOptions({ pollSeconds: 0.2 }) };

test('a job on Slurm gives item for item the predictions of an in-process run', { skip }, async () => {
  const spec = await freshJob(await smallDemo(), { ...FAST });
  const summary = await runJob(spec, { retryBaseMs: 10 });
  assert.equal(summary.status, 'succeeded', JSON.stringify(summary.failures));
  assertSamePredictions(await allPredictions(spec.output), await referencePredictions());
});
