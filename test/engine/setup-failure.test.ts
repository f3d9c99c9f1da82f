// Exit 2 writes nothing, whatever engine: an engine that refuses at its setup after planning (as sbatch
// refusing a submission does) leaves a fresh output as it found it, and an output holding an earlier run
// keeps every byte of it. The engine here is a real MapEngine registered under the slurm name, which
// writes its round folder and then refuses, exactly where the Slurm engine's submission would.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeDemo, type Demo } from '../../src/demo/demo.js';
import { registerEngine } from '../../src/engines/registry.js';
import { CaiError, ErrorCodes, ExitCodes, exitCodeFor } from '../../src/errors.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { runJob } from '../../src/run/run.js';
import { openStore } from '../../src/storage/open.js';
import { SLURM_KEYS } from '../../src/storage/output-layout.js';

let dir = '';
let demo: Demo;
let refusals = 0;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-setup-fail-'));
  demo = await makeDemo({ dir: path.join(dir, 'demo'), partitions: 2, itemsPerPartition: 8 });
  registerEngine('slurm', async (job) => ({
    name: 'slurm',
    async run() {
      refusals++;
      const output = await openStore(job.output);
      await output.put(`${SLURM_KEYS.round(1)}/tasks.json`, '{}\n');
      throw new CaiError(
        ErrorCodes.option,
        'sbatch',
        'sbatch: error: Batch job submission failed: Invalid account',
      );
    },
  }));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const spec = (output: string, engine: 'local' | 'slurm') =>
  parseJobSpec({
    input: demo.data,
    model: demo.model,
    output,
    engine,
    // One worker on the local engine; Slurm refuses the field (its --throttle says how many tasks).
    ...(engine === 'local' ? { concurrency: 1 } : {}),
    inputs: { image: 0, magnitude: 1 },
  });

async function snapshot(folder: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(folder, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath, e.name);
    const s = await stat(p);
    out.push(`${path.relative(folder, p)} ${e.isFile() ? `${s.size} ${s.mtimeMs}` : 'dir'}`);
  }
  return out.sort();
}

test("an engine's refusal after planning leaves a fresh output as it was: nothing, not even the folder", async () => {
  const output = path.join(dir, 'fresh');
  await assert.rejects(runJob(spec(output, 'slurm')), (err: unknown) => {
    assert.match(String(err), /Invalid account/);
    // Undone before any partition ran: the setup error it is (exit 2), not a job that ran and failed.
    assert.equal(exitCodeFor(err), ExitCodes.usage);
    return true;
  });
  assert.equal(refusals, 1, 'the engine ran, after job.json and plan.json were written');
  assert.equal(existsSync(output), false, existsSync(output) ? (await snapshot(output)).join('\n') : '');
  // A folder the user made beforehand stays, empty.
  const made = path.join(dir, 'made');
  await (await openStore(made)).put('notes.txt', 'mine\n');
  await assert.rejects(runJob(spec(made, 'slurm')), /Invalid account/);
  assert.deepEqual(await readdir(made), ['notes.txt']);
});

test('an output holding an earlier run keeps all of it when a rerun fails at its setup', async () => {
  const output = path.join(dir, 'earlier');
  const first = await runJob(spec(output, 'local'));
  assert.equal(first.status, 'succeeded');
  // A partition left to do, so the rerun reaches the engine.
  await rm(path.join(output, 'results', '2.json'));
  const before = await snapshot(output);
  await assert.rejects(runJob(spec(output, 'slurm')), (err: unknown) => {
    assert.match(String(err), /Invalid account/);
    assert.equal(exitCodeFor(err), ExitCodes.usage);
    return true;
  });
  assert.deepEqual(await snapshot(output), before);
});
