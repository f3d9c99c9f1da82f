import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeDemo, type Demo } from '../../src/demo/demo.js';
import { runJob } from '../../src/run/run.js';
import { FileStore } from '../../src/storage/file-store.js';
import { readPredictions, type PredictionRows } from '../../src/summarize/read-predictions.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let dir = '';
let demo: Demo;
let out = '';

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-merge-'));
  demo = await makeDemo({ dir: path.join(dir, 'demo'), partitions: 11, itemsPerPartition: 7 });
  out = path.join(dir, 'out');
  // CSV predictions, so that merging to Parquet converts as well as concatenates.
  const s = await runJob({ ...demo.job, output: out, concurrency: 1, threads: 1, predictionsFormat: 'csv' });
  assert.equal(s.status, 'succeeded');
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cai(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every partition's rows, in plan order (1, 2, ..., 11: natural order, not 1, 10, 11, 2). */
async function perPartition(): Promise<PredictionRows> {
  const store = new FileStore(out);
  const rows: PredictionRows = [];
  for (let p = 1; p <= 11; p++)
    rows.push(...(await readPredictions(await store.get(`predictions/${p}.csv`), 'csv')));
  return rows;
}

for (const ext of ['parquet', 'csv', 'jsonl'] as const) {
  test(`cai predictions merges every partition into one .${ext} in plan order`, async () => {
    const to = path.join(dir, `all.${ext}`);
    const r = cai('predictions', out, '--to', to);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /77 rows from 11 partitions; columns partition, index, redshift, label, error/);
    const merged = await readPredictions(new Uint8Array(await readFile(to)), ext);
    const expected = await perPartition();
    assert.equal(merged.length, 77);
    assert.deepEqual(
      merged.map((m) => [String(m.partition), Number(m.index), m.redshift, m.label, m.error ?? null]),
      expected.map((e) => [String(e.partition), Number(e.index), e.redshift, e.label, null]),
    );
    assert.equal(existsSync(`${to}.partial`), false);
  });
}

test('a merged file name without a known extension, or a folder that is no output, exits 2', () => {
  const bad = cai('predictions', out, '--to', path.join(dir, 'all.xlsx'));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /name the merged file \.parquet, \.csv or \.jsonl/);
  const none = cai('predictions', demo.data, '--to', path.join(dir, 'x.csv'));
  assert.equal(none.code, 2);
  assert.match(none.stderr, /is not the output of a CAI job/);
});
