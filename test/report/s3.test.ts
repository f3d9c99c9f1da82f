// `cai report` of an output on S3 (what the AWS engine writes), against s3rver on loopback: the output
// is read where it is, the report is written to a local folder, and it says what the report of the same
// job's output copied to disk says. Before, `cai report s3://...` answered that the folder did not exist.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runJob } from '../../src/run/run.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import type { ReportResult } from '../../src/report/report.js';
import { runCli } from '../helpers/s3-cli.js';
import { makeS3Demo, type S3Demo } from '../helpers/s3-demo.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { listKeys } from '../helpers/s3-upload.js';

const BUCKET = 'cai-report';
let s3: S3TestServer;
let root: S3Store;
let demo: S3Demo;
let tmp: string;

before(async () => {
  s3 = await startS3Server([BUCKET]);
  root = new S3Store(`s3://${BUCKET}`, { s3Endpoint: s3.endpoint });
  demo = await makeS3Demo(root, BUCKET, { partitions: 4, itemsPerPartition: 20 });
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cai-report-s3-'));
  const summary = await runJob(
    {
      ...demo.local.job,
      input: demo.input,
      model: demo.model,
      output: `s3://${BUCKET}/runs/galaxies`,
      s3Endpoint: s3.endpoint,
      concurrency: 1,
      threads: 1,
    },
    { retryBaseMs: 10 },
  );
  assert.equal(summary.status, 'succeeded');
});

after(async () => {
  root?.close();
  await s3?.stop();
  await demo?.cleanup();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A copy of an S3 output on disk, key for key. */
async function download(prefix: string, to: string): Promise<void> {
  const out = new S3Store(`s3://${BUCKET}/${prefix}`, { s3Endpoint: s3.endpoint });
  try {
    for (const key of await listKeys(out)) {
      await mkdir(path.dirname(path.join(to, key)), { recursive: true });
      await writeFile(path.join(to, key), await out.get(key));
    }
  } finally {
    out.close();
  }
}

/** What a report says, without where it was written and when. */
function said(r: ReportResult) {
  return {
    headline: r.headline,
    figures: r.figures.map((f) => [f.id, f.marks]),
    warnings: r.warnings,
  };
}

test('cai report of an s3:// output writes the same report into a local folder and nothing to S3', async () => {
  const output = `s3://${BUCKET}/runs/galaxies`;
  const out = new S3Store(output, { s3Endpoint: s3.endpoint });
  const before = await listKeys(out);
  const to = path.join(tmp, 'from-s3');
  const remote = await runCli(['report', output, '--to', to, '--s3-endpoint', s3.endpoint, '--json']);
  assert.equal(remote.code, 0, remote.stderr);
  const fromS3 = JSON.parse(remote.stdout) as ReportResult;
  assert.equal(fromS3.html, path.join(to, 'report.html'));
  const html = await readFile(fromS3.html, 'utf8');
  assert.match(html, /CAI report: s3:\/\/cai-report\/runs\/galaxies/);
  assert.ok((await readdir(path.join(to, 'figures'))).length > 0, 'figures beside the page');
  assert.deepEqual(await listKeys(out), before, 'the S3 output is read, never written');
  out.close();

  const copy = path.join(tmp, 'copy');
  await download('runs/galaxies', copy);
  const local = await runCli(['report', copy, '--json']);
  assert.equal(local.code, 0, local.stderr);
  const fromDisk = JSON.parse(local.stdout) as ReportResult;
  assert.ok(fromDisk.headline.length > 0 && fromDisk.figures.length > 3);
  assert.deepEqual(said(fromS3), said(fromDisk), 'the same tables and figures as the copy on disk');
  // The gallery's items are read back from the job's input on S3 for both.
  const thumbs = async (dir: string) => (await readdir(path.join(dir, 'gallery'))).sort();
  assert.ok((await thumbs(to)).length > 0, 'a gallery from the S3 output');
  assert.deepEqual(await thumbs(to), await thumbs(copy));
});

test('without --to, an s3:// output is reported into <name>-report in the current folder', async () => {
  const cwd = path.join(tmp, 'cwd');
  await mkdir(cwd);
  const r = await runCli(['report', `s3://${BUCKET}/runs/galaxies`, '--json'], {
    cwd,
    env: { ...process.env, AWS_ENDPOINT_URL_S3: s3.endpoint },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(path.join(cwd, 'galaxies-report', 'report.html')));
});

test('an s3:// prefix holding no output is refused with a clear error', async () => {
  const r = await runCli([
    'report',
    `s3://${BUCKET}/runs/nothing-here`,
    '--to',
    path.join(tmp, 'none'),
    '--s3-endpoint',
    s3.endpoint,
  ]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /s3:\/\/cai-report\/runs\/nothing-here.*no sweep\.json, combined_data\.json or results\//s,
  );
});
