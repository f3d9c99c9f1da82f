// Mistakes a new user makes, each caught before any worker starts: exit 2, one message, nothing written,
// and the fixed command then runs in the same output without --overwrite.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeDemo, type Demo } from '../../src/demo/demo.js';
import { summaryText } from '../../src/cli/summary-text.js';
import { nextSteps } from '../../src/cli/demo-command.js';
import { loadJob } from '../../src/job/load.js';
import type { JobSummary } from '../../src/summarize/summarize.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let dir = '';
let demo: Demo;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-preflight-'));
  demo = await makeDemo({ dir: path.join(dir, 'demo'), partitions: 2, itemsPerPartition: 16 });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cai(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    cwd: dir,
    env: { ...process.env, CI: 'true' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const job = (output: string, ...more: string[]) => [
  'run',
  '--input',
  demo.data,
  '--model',
  demo.model,
  '--output',
  output,
  '--concurrency',
  '1',
  '-q',
  ...more,
];

function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('error:'));
}

test('a typo in --inputs exits 2 with one message, writes nothing, and the fixed run needs no --overwrite', () => {
  const out = path.join(dir, 'out-typo');
  const bad = cai(...job(out, '--inputs', 'image=0,magnitud=1', '--label', '2'));
  assert.equal(bad.code, 2, bad.stderr);
  const lines = errorLines(bad.stderr);
  assert.equal(lines.length, 1, bad.stderr);
  assert.match(lines[0], /"magnitud"/);
  assert.match(lines[0], /input "magnitude" is not mapped/);
  assert.equal(existsSync(path.join(out, 'job.json')), false);
  assert.equal(existsSync(path.join(out, 'plan.json')), false);
  const good = cai(...job(out, '--inputs', 'image=0,magnitude=1', '--label', '2', '--json'));
  assert.equal(good.code, 0, good.stderr);
  const summary = JSON.parse(good.stdout) as JobSummary;
  assert.equal(summary.items, 32);
  assert.match(summaryText(summary), /1 worker\(s\) x \d thread\(s\), batch 128$/m);
  assert.match(
    summaryText({ ...summary, run: { ...summary.run, batch_size: 'auto', batch_size_chosen: 64 } }),
    /batch auto \(chose 64\)$/m,
  );
  // Run again: every partition is complete, and the summary says so instead of printing zeros.
  const again = cai(...job(out, '--inputs', 'image=0,magnitude=1', '--label', '2'));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /this run: +nothing to do: every partition was complete already/);
  assert.doesNotMatch(again.stdout, /items\/s|p95|cold start/);
});

test('a label column that does not exist exits 2 naming the columns', () => {
  const out = path.join(dir, 'out-label');
  const r = cai(...job(out, '--inputs', 'image=0,magnitude=1', '--label', 'redshift'));
  assert.equal(r.code, 2, r.stderr);
  const lines = errorLines(r.stderr);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /label column "redshift" does not exist; the partition has columns 0:/);
  assert.equal(existsSync(path.join(out, 'job.json')), false);
});

test('a model that does not load exits 2 before planning', async () => {
  const bad = path.join(dir, 'not-a-model.onnx');
  await writeFile(bad, 'this is not protobuf');
  const out = path.join(dir, 'out-model');
  const r = cai('run', '--input', demo.data, '--model', bad, '--output', out, '-q');
  assert.equal(r.code, 2, r.stderr);
  assert.equal(errorLines(r.stderr).length, 1, r.stderr);
  assert.match(r.stderr, /cannot load the model/);
  assert.equal(existsSync(path.join(out, 'job.json')), false);
});

test('--device cuda without the CUDA build exits 2 with one line naming the install command, nothing written', (t) => {
  const out = path.join(dir, 'out-cuda');
  const r = cai(...job(out, '--inputs', 'image=0,magnitude=1', '--device', 'cuda'));
  if (r.code === 0) return t.skip('this machine runs onnxruntime on CUDA');
  assert.equal(r.code, 2, r.stderr);
  assert.deepEqual(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(
    r.stderr,
    /^error: device cuda: .*`ONNXRUNTIME_NODE_INSTALL=cuda12 npm install onnxruntime-node`/,
  );
  assert.doesNotMatch(r.stderr, /valid ONNX file/);
  assert.equal(existsSync(out), false);
});

test('one partition file given as --input runs that partition alone', () => {
  const r = cai(
    ...job(path.join(dir, 'out-file'), '--inputs', 'image=0,magnitude=1', '--json').map((a) =>
      a === demo.data ? path.join(demo.data, '1.pt') : a,
    ),
  );
  assert.equal(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as JobSummary;
  assert.equal(summary.partitions.planned, 1);
  assert.equal(summary.items, 16);
});

test('a usage error prints one line and a one-line hint, not the help', () => {
  const r = cai('run', '--inputz', 'x');
  assert.equal(r.code, 2);
  assert.deepEqual(r.stderr.trim().split('\n'), [
    "error: unknown option '--inputz'",
    '(Did you mean one of --input, --inputs?)',
    'hint: `cai run --help` lists the options',
  ]);
  // A flag from other tools, too far from ours for commander's suggestion, still gets one.
  const format = cai('run', '--format', 'pt');
  assert.equal(format.code, 2);
  assert.deepEqual(format.stderr.trim().split('\n'), [
    "error: unknown option '--format'",
    'hint: did you mean --input-format (how to read the input) or --predictions-format (how to write predictions)? `cai run --help` lists the options',
  ]);
  // A subcommand's error points at the subcommand's help, where its options are.
  for (const [cmd, sub] of [
    ['slurm', 'run'],
    ['aws', 'run'],
  ]) {
    const r2 = cai(cmd, sub, '--bogus');
    assert.equal(r2.code, 2);
    assert.equal(r2.stderr.trim().split('\n').at(-1), `hint: \`cai ${cmd} ${sub} --help\` lists the options`);
  }
});

test('the output of a run inside the input folder is never read as input', async () => {
  const data = path.join(dir, 'nested');
  await mkdir(data);
  for (const f of await readdir(demo.data)) await copyFile(path.join(demo.data, f), path.join(data, f));
  const args = (output: string, ...more: string[]) =>
    job(output, '--inputs', 'image=0,magnitude=1', '--predictions-format', 'csv', '--json', ...more).map(
      (a) => (a === demo.data ? data : a),
    );
  const first = cai(...args(path.join(data, 'out')));
  assert.equal(first.code, 0, first.stderr);
  // Planned anew: its own output is inside the input; and a second output beside it.
  const again = cai(...args(path.join(data, 'out'), '--overwrite'));
  assert.equal(again.code, 0, again.stderr);
  const other = cai(...args(path.join(data, 'out2')));
  assert.equal(other.code, 0, other.stderr);
  for (const r of [first, again, other]) {
    const s = JSON.parse(r.stdout) as { partitions: { planned: number }; items: number };
    assert.deepEqual([s.partitions.planned, s.items], [2, 32]);
  }
});

test('the same folders spelled another way (relative, trailing slash, from another folder) are the same job', async () => {
  const out = path.join(dir, 'out-spelled');
  const first = cai(...job(out, '--inputs', 'image=0,magnitude=1', '--json'));
  assert.equal(first.code, 0, first.stderr);
  const sub = path.join(dir, 'elsewhere');
  await mkdir(sub, { recursive: true });
  // From another folder, through ../, with trailing slashes: resumes, not "this output holds another job".
  const r = spawnSync(
    process.execPath,
    [
      CLI,
      ...['run', '--input', '../demo/data/', '--model', `../${path.relative(dir, demo.model)}`],
      ...['--output', '../out-spelled/', '--concurrency', '1', '-q', '--inputs', 'image=0,magnitude=1'],
    ],
    { encoding: 'utf8', cwd: sub, env: { ...process.env, CI: 'true' } },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /nothing to do: every partition was complete already/);
  const spec = await loadJob(undefined, { input: 'demo/data/', model: './m.onnx', output: 's3://b/o' });
  assert.equal(spec.input, path.resolve('demo/data'));
  assert.equal(spec.model, path.resolve('m.onnx'));
  assert.equal(spec.output, 's3://b/o');
});

test('a model path that is a folder, or a bare bucket, exits 2 saying so, and names the .onnx files in it', () => {
  const folder = cai(...job(path.join(dir, 'out-folder'), '--model', path.dirname(demo.model)));
  assert.equal(folder.code, 2, folder.stderr);
  assert.match(
    errorLines(folder.stderr)[0],
    /is a folder, not a model file; give --model the \.onnx file \(in it: astromae\.onnx\)/,
  );
  assert.equal(existsSync(path.join(dir, 'out-folder')), false);
  const bucket = cai(...job(path.join(dir, 'out-bucket'), '--model', 's3://bucket'));
  assert.equal(bucket.code, 2, bucket.stderr);
  assert.match(
    errorLines(bucket.stderr)[0],
    /^error: s3:\/\/bucket: names a bucket or folder, not one object/,
  );
  const optimize = cai('optimize', path.dirname(demo.model), '-o', path.join(dir, 'x.onnx'));
  assert.equal(optimize.code, 2, optimize.stderr);
  assert.match(
    errorLines(optimize.stderr)[0],
    /is a folder, not a model file; give cai optimize the \.onnx file \(in it: astromae\.onnx\)/,
  );
  // One slash, or none: a local path that does not exist, and the message says how a URI is written.
  for (const input of ['s3:/bucket/data', 's3:bucket/data']) {
    const r = cai('run', '--input', input, '--model', demo.model, '--output', path.join(dir, 'out-uri'));
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      errorLines(r.stderr)[0],
      /directory does not exist; check the path \(a URI is written s3:\/\/bucket\/prefix, with two slashes\)$/,
    );
  }
  assert.equal(existsSync(path.join(dir, 'out-uri')), false);
});

test("the demo's next steps name its own folders, as typed from the working folder", () => {
  const text = nextSteps(demo.job);
  const out = path.relative(process.cwd(), demo.job.output);
  assert.match(text, new RegExp(`cai report ${out} `));
  assert.match(text, new RegExp(`cai predictions ${out} --to all\\.parquet`));
  assert.match(
    text,
    new RegExp(
      `cai run --input ${path.relative(process.cwd(), demo.data)} --model ${path.relative(process.cwd(), demo.model)} --output my-out --inputs image=0,magnitude=1 --label 2`,
    ),
  );
});

test("a job file's relative paths are taken from the file's folder", async () => {
  const jobDir = path.join(dir, 'jobs');
  await mkdir(jobDir, { recursive: true });
  const file = path.join(jobDir, 'job.json');
  await writeFile(file, JSON.stringify({ input: '../demo/data', model: 'm.onnx', output: 's3://b/o' }));
  const spec = await loadJob(file);
  assert.equal(spec.input, path.join(dir, 'demo', 'data'));
  assert.equal(spec.model, path.join(jobDir, 'm.onnx'));
  assert.equal(spec.output, 's3://b/o');
});

test('help: each command lists only its own flags, and every default reads "(default: X)"', () => {
  const partition = cai('partition', '--help');
  assert.equal(partition.code, 0);
  assert.match(partition.stdout, /--items <n>/);
  assert.doesNotMatch(partition.stdout, /--partition-items|--partition-bytes/);
  const aws = cai('aws', 'run', '--help');
  assert.equal(aws.code, 0);
  assert.match(aws.stdout, /--concurrency/);
  assert.doesNotMatch(aws.stdout, /--device|--partition-timeout/);
  for (const args of [['run'], ['partition'], ['aws', 'run'], ['aws', 'deploy'], ['bench'], ['demo']]) {
    const help = cai(...args, '--help').stdout.replace(/\s+/g, ' ');
    assert.doesNotMatch(help, /\(default [^:]/, args.join(' '));
  }
});

test('a job none of whose partitions can be read (a CSV named .npy) exits 2 before any work, naming the file', async () => {
  const data = path.join(dir, 'not-npy');
  await mkdir(data);
  await writeFile(path.join(data, 'a.npy'), 'ra,dec\n1,2\n');
  await writeFile(path.join(data, 'b.npy'), 'ra,dec\n3,4\n');
  const out = path.join(dir, 'out-not-npy');
  const run = (...more: string[]) =>
    cai('run', '--input', data, '--model', demo.model, '--output', out, '--concurrency', '1', '-q', ...more);
  const r = run();
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /not-npy\/a\.npy: does not start with the \.npy magic string.*\(and the job's 1 other partition\(s\) do not read either\); no partition of this job can be read, so nothing was run/,
  );
  assert.equal(existsSync(out), false, 'nothing written');
  // A job that tolerates every partition failing runs them (and records each failure).
  const tolerated = run('--tolerated-failure-percentage', '100');
  assert.notEqual(tolerated.code, 2, tolerated.stderr);
  assert.equal(existsSync(path.join(out, 'plan.json')), true);
});
