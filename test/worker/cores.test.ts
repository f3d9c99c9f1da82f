import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import { allottedCores, inferenceThread } from '../../src/worker/context.js';

test("a Slurm task's --cpus-per-task decides its cores, not the node's core count", () => {
  assert.equal(allottedCores({ SLURM_CPUS_PER_TASK: '1' }), 1);
  assert.equal(allottedCores({ SLURM_CPUS_PER_TASK: '8' }), 8);
  assert.equal(allottedCores({}), os.availableParallelism());
  assert.equal(allottedCores({ SLURM_CPUS_PER_TASK: 'x' }), os.availableParallelism());
  // One single-threaded worker on a one-CPU task fills its allotment: inference stays on its thread.
  assert.equal(
    inferenceThread({ concurrency: 1, threads: 1 }, allottedCores({ SLURM_CPUS_PER_TASK: '1' })),
    'main',
  );
  assert.equal(inferenceThread({ concurrency: 1, threads: 1 }, 4), 'separate');
});
