import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, cp, mkdtemp, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { JobSummary } from '../../src/summarize/summarize.js';
import { smallDemo } from '../helpers/demo-fixture.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function cai(...args: string[]) {
  return caiWith({}, ...args);
}

function caiWith(env: NodeJS.ProcessEnv, ...args: string[]) {
  // A variable set to undefined is left out (spawn would pass the string "undefined").
  const merged = Object.entries({ ...process.env, CI: 'true', ...env }).filter(([, v]) => v !== undefined);
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: Object.fromEntries(merged),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('--help lists every command and run --help every job flag', () => {
  const top = cai('--help');
  assert.equal(top.code, 0);
  for (const c of ['run', 'demo', 'bench', 'cost', 'estimate', 'report'])
    assert.match(top.stdout, new RegExp(`\\n  ${c}\\b`));
  const run = cai('run', '--help');
  for (const f of [
    '--input',
    '--model',
    '--output',
    '--batch-size',
    '--file-limit',
    '--concurrency',
    '--threads',
    '--inputs',
    '--label',
    '--predictions-format',
    '--max-attempts',
    '--tolerated-failure-percentage',
    '--partition-timeout',
  ]) {
    assert.ok(run.stdout.includes(f), f);
  }
});

test('--version prints the version in package.json, read where the code is installed', async () => {
  const root = fileURLToPath(new URL('../../../', import.meta.url));
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  const v = cai('--version');
  assert.equal(v.code, 0, v.stderr);
  assert.equal(v.stdout, `${String(pkg.version)}\n`);
  // The same built code in a package of another version says that version: nothing is hard-coded.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-version-'));
  try {
    await cp(path.join(root, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
    await symlink(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ ...pkg, version: '9.8.7-test' }));
    const other = spawnSync(
      process.execPath,
      [path.join(dir, 'dist', 'src', 'cli', 'main.js'), '--version'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(other.status, 0, other.stderr);
    assert.equal(other.stdout, '9.8.7-test\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('usage errors exit 2 with a message naming the problem', async () => {
  const unknown = cai('run', '--input', 'x', '--bogus');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown option '--bogus'/);
  const missing = cai('run', '--model', 'm.onnx', '--output', 'o');
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /"input" is missing/);
  const badBatch = cai('run', '--input', 'x', '--model', 'm', '--output', 'o', '--batch-size', 'big');
  assert.equal(badBatch.code, 2);
  assert.match(badBatch.stderr, /--batch-size must be a positive integer/);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-cli-'));
  const job = path.join(dir, 'job.json');
  await writeFile(job, JSON.stringify({ input: 'x', model: 'm', output: 'o', fileLimt: 3 }));
  const typo = cai('run', job);
  assert.equal(typo.code, 2);
  assert.match(typo.stderr, /unknown field "fileLimt"/);
  await rm(dir, { recursive: true, force: true });
});

test('cai run on the demo data exits 0 with a JSON summary; a failed job exits 1', async () => {
  const demo = await smallDemo();
  const out = await mkdtemp(path.join(os.tmpdir(), 'cai-cli-out-'));
  // onnxruntime-node writes a device id under $HOME and uploads telemetry unless told not to.
  const home = await mkdtemp(path.join(os.tmpdir(), 'cai-cli-home-'));
  const ok = caiWith(
    // onnxruntime sends no telemetry where CI is set, so CI is left out here.
    { HOME: home, ORT_DISABLE_TELEMETRY: undefined, CI: undefined },
    'run',
    '--input',
    demo.data,
    '--model',
    demo.model,
    '--output',
    out,
    '--inputs',
    'image=0,magnitude=1',
    '--label',
    '2',
    '--json',
    '--predictions-format',
    'csv',
  );
  assert.equal(ok.code, 0, ok.stderr);
  const summary = JSON.parse(ok.stdout) as JobSummary;
  assert.equal(summary.items, demo.items);
  assert.equal(summary.metrics?.kind, 'regression');
  assert.match(ok.stderr, /partition 4: 60 items/);
  assert.deepEqual(await readdir(home), [], 'nothing written under $HOME (no onnxruntime telemetry)');

  // The model has two inputs; mapping one to a column of the wrong shape fails before any work: exit 2.
  const bad = cai(
    'run',
    '--input',
    demo.data,
    '--model',
    demo.model,
    '--output',
    `${out}-bad`,
    '--inputs',
    'image=1,magnitude=0',
    '-q',
  );
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /input "image" expects shape \[N, 5, 32, 32\] but column "1" has \[N, 5\]/);
  assert.equal(existsSync(`${out}-bad`), false, 'nothing written');

  // A partition that turns out corrupt once the job runs spends the error budget: exit 1.
  const data = await mkdtemp(path.join(os.tmpdir(), 'cai-cli-data-'));
  for (const f of await readdir(demo.data)) await copyFile(path.join(demo.data, f), path.join(data, f));
  await truncate(path.join(data, '4.pt'), 100);
  const failed = cai(
    'run',
    '--input',
    data,
    '--model',
    demo.model,
    '--output',
    `${out}-failed`,
    '--inputs',
    'image=0,magnitude=1',
    '-q',
  );
  assert.equal(failed.code, 1, failed.stderr);
  assert.match(failed.stdout, /status: +failed/);
  assert.match(failed.stdout, /partition 4 after 1 attempt/);
  for (const d of [out, `${out}-failed`, home, data]) await rm(d, { recursive: true, force: true });
});
