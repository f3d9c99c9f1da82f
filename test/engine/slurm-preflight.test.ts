// `cai slurm run` refuses a job that does not fit its data before anything reaches the scheduler, as
// `cai run` refuses it before any worker starts: the same error, exit 2, nothing written. No cluster is
// started here: fake Slurm commands on PATH record every call (sinfo answers one node, every other one
// fails), so the test shows that sbatch was never called.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeDemo, type Demo } from '../../src/demo/demo.js';
import { runCli } from '../helpers/s3-cli.js';

let dir = '';
let demo: Demo;
let calls = '';
let env: NodeJS.ProcessEnv;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-slurm-preflight-'));
  demo = await makeDemo({ dir: path.join(dir, 'demo'), partitions: 2, itemsPerPartition: 8 });
  const bin = path.join(dir, 'bin');
  await mkdir(bin);
  calls = path.join(dir, 'calls.log');
  for (const name of ['sbatch', 'squeue', 'scontrol', 'sacct', 'scancel', 'sinfo']) {
    const answer = name === 'sinfo' ? 'echo "node1|node1"; exit 0' : `echo "fake ${name}" >&2; exit 1`;
    await writeFile(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >> '${calls}'\n${answer}\n`);
    await chmod(path.join(bin, name), 0o755);
  }
  env = { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, CI: 'true' };
});
after(() => rm(dir, { recursive: true, force: true }));

const called = async () => (await readFile(calls, 'utf8').catch(() => '')).split('\n').filter(Boolean);

async function slurmRun(output: string, ...more: string[]) {
  return runCli(
    [
      'slurm',
      'run',
      '--input',
      demo.data,
      '--model',
      demo.model,
      '--output',
      output,
      '--inputs',
      'image=0,magnitude=1',
      '-q',
      ...more,
    ],
    { env, cwd: dir },
  );
}

for (const mode of [[], ['--detach'], ['--dry-run']]) {
  test(`cai slurm run${mode.map((m) => ` ${m}`).join('')}: a --carry column the data lacks exits 2 before sbatch, naming it and the partition`, async () => {
    const output = path.join(dir, `out${mode.join('')}`);
    const r = await slurmRun(output, '--carry', 'ra', ...mode);
    assert.equal(r.code, 2, r.stderr);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0], /1\.pt: has no column "ra" for --carry/);
    assert.ok(errors[0].includes(path.join(demo.data, '1.pt')), errors[0]);
    assert.ok(!(await called()).some((c) => c.startsWith('sbatch')), (await called()).join('\n'));
    await assert.rejects(stat(output), 'nothing written, not even the folder');
  });
}

test('cai slurm run: flags Slurm does not use are refused before anything, naming what to use', async () => {
  const output = path.join(dir, 'out-flags');
  const earlier = (await called()).length;
  const r = await slurmRun(output, '--threads', '4', '--partition-timeout', '60');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /threads \(--threads\) 4 does not apply to the slurm engine: .*--cpus-per-task/);
  assert.match(r.stderr, /partitionTimeoutSeconds \(--partition-timeout\) 60 .*--time/);
  assert.equal((await called()).length, earlier, 'no Slurm command ran');
  await assert.rejects(stat(output));
});

test('cai slurm run --device cuda from a machine without CUDA: the preflight reads the model on the CPU, the nodes bring the GPU', async () => {
  const output = path.join(dir, 'out-cuda');
  const bad = await slurmRun(output, '--device', 'cuda', '--gres', 'gpu:1', '--carry', 'ra', '--dry-run');
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /has no column "ra" for --carry/);
  assert.doesNotMatch(bad.stderr, /CUDA/);
  const good = await slurmRun(output, '--device', 'cuda', '--gres', 'gpu:1', '--dry-run');
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /^#SBATCH --gres=gpu:1$/m);
  await assert.rejects(stat(output), 'a dry run writes nothing');
});
