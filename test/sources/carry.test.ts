// `carry` (--carry): columns of the input copied into the predictions beside the id, checked against
// the input read independently (h5wasm for the Galaxy10 fixture h5py wrote, hyparquet-writer's file)
// NumPy for an .npz) and the predictions read with hyparquet; a missing or per-item-vector column is refused naming the
// flag; a rerun with another carry into the same output is refused by the job identity.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { parquetReadObjects } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { ErrorCodes, ExitCodes, exitCodeFor } from '../../src/errors.js';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';
import { tensor } from '../../src/tensor/tensor.js';
import { hdf5Files } from '../../src/formats/hdf5/index.js';
import { parquetFiles } from '../../src/formats/parquet/index.js';
import { tensorFiles } from '../../src/formats/tensor-source.js';
import { digestPredictions } from '../../src/report/digest.js';
import { parseJobSpec, type JobSpecInput } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import { FileStore } from '../../src/storage/file-store.js';
import '../../src/storage/register.js';
import { FIXTURES, rejectsWith } from './helpers.js';

type Row = Record<string, unknown>;

/** Every row of every predictions file, read with hyparquet (not CAI's reader). */
async function predictions(output: string): Promise<Row[]> {
  const dir = path.join(output, 'predictions');
  const rows: Row[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const bytes = await readFile(path.join(dir, name));
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    rows.push(...((await parquetReadObjects({ file })) as Row[]));
  }
  return rows;
}

async function job(
  dir: string,
  fields: Omit<JobSpecInput, 'model' | 'output'>,
  name: string,
  shape: (string | number)[],
) {
  const model = path.join(dir, 'trivial.onnx');
  await writeFile(model, buildTrivial({ inputName: name, shape }));
  return parseJobSpec({
    ...fields,
    model,
    output: path.join(dir, 'out'),
    concurrency: 1,
    threads: 1,
    batchSize: 8,
  });
}

test("HDF5: --carry ra,dec writes the Galaxy10 file's ra and dec beside each id; another carry into the same output is refused", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-carry-h5-'));
  try {
    const h5 = await import('h5wasm/node');
    await h5.ready;
    const file = new h5.File(`${FIXTURES}hdf5/galaxy10.h5`, 'r');
    const value = (k: string) =>
      Array.from((file.get(k) as unknown as { value: ArrayLike<number | bigint> }).value);
    const ids = value('ids').map(String);
    const ra = value('ra').map(Number);
    const dec = value('dec').map(Number);
    file.close();

    const fields = {
      input: `${FIXTURES}hdf5/galaxy10.h5`,
      datasets: ['features'],
      idColumn: 'ids',
      partitionItems: 24,
    };
    const spec = await job(dir, { ...fields, carry: ['ra', 'dec'] }, 'features', ['N', 5]);
    const summary = await runJob(spec, { retryBaseMs: 10 });
    assert.equal(summary.status, 'succeeded');
    const rows = await predictions(spec.output);
    assert.equal(rows.length, 64);
    assert.deepEqual(Object.keys(rows[0]).slice(0, 5), ['partition', 'index', 'id', 'ra', 'dec']);
    const byId = new Map(rows.map((r) => [String(r.id), r]));
    ids.forEach((id, i) => {
      assert.equal(byId.get(id)?.ra, ra[i], id);
      assert.equal(byId.get(id)?.dec, dec[i], id);
    });

    // The report's digest takes carried numbers for input columns, not model outputs.
    const digest = await digestPredictions(spec.output, undefined, undefined, spec.carry);
    assert.deepEqual(
      digest.outputs.map((o) => o.name),
      ['mean'],
    );
    assert.deepEqual(digest.carried.sort(), ['dec', 'ra']);

    await rejectsWith(() => runJob({ ...spec, carry: ['ra'] }, { retryBaseMs: 10 }), ErrorCodes.jobChanged, [
      'carry',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('HDF5: a missing carried dataset names --carry and the datasets; a per-item vector is refused', async () => {
  const store = new FileStore(`${FIXTURES}hdf5`);
  const whole = { id: '1', key: 'galaxy10.h5', bytes: 0 };
  const open = (carry: string[]) => hdf5Files.open(store, whole, { datasets: ['features'], carry } as never);
  await rejectsWith(() => open(['ra', 'nope']), ErrorCodes.option, ['/nope', '--carry', '/ra', '/dec']);
  await rejectsWith(() => open(['features']), ErrorCodes.option, ['/features', '[64, 5]', '--carry']);
});

test('Parquet: --carry objid,mag writes both columns per row; a missing column names --carry and the columns', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-carry-pq-'));
  try {
    const n = 10;
    const flux = Array.from({ length: n }, (_, r) => [r, r + 1, r + 2, r + 3]);
    const objid = Array.from({ length: n }, (_, r) => `obj-${r}`);
    const mag = Array.from({ length: n }, (_, r) => 15 + r / 4);
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: 'flux', data: flux },
        { name: 'objid', data: objid },
        { name: 'mag', data: mag },
      ],
      schema: [
        { name: 'root', num_children: 3 },
        { name: 'flux', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
        { name: 'objid', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
        { name: 'mag', type: 'DOUBLE', repetition_type: 'REQUIRED' },
      ],
    });
    await mkdirInput(dir, new Uint8Array(buffer));
    const fields = { input: path.join(dir, 'in'), featureColumns: ['flux'] };
    const spec = await job(dir, { ...fields, carry: ['objid', 'mag'] }, 'flux', ['N', 4]);
    const summary = await runJob(spec, { retryBaseMs: 10 });
    assert.equal(summary.status, 'succeeded');
    const rows = (await predictions(spec.output)).sort((a, b) => Number(a.index) - Number(b.index));
    assert.deepEqual(
      rows.map((r) => [r.objid, r.mag, r.mean]),
      objid.map((o, r) => [o, mag[r], r + 1.5]),
    );

    const store = new FileStore(path.join(dir, 'in'));
    const whole = { id: '1', key: 'stars.parquet', bytes: 0 };
    await rejectsWith(
      () => parquetFiles.open(store, whole, { featureColumns: ['flux'], carry: ['objid', 'ra'] } as never),
      ErrorCodes.option,
      ['"ra"', '--carry', 'objid', 'mag'],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function mkdirInput(dir: string, bytes: Uint8Array, name = 'stars.parquet'): Promise<void> {
  await mkdir(path.join(dir, 'in'));
  await writeFile(path.join(dir, 'in', name), bytes);
}

test('tensor partitions: --carry labels copies the .npz column NumPy reads; a vector column or a missing one is refused', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-carry-npz-'));
  try {
    const npz = `${FIXTURES}tensors/compressed.npz`;
    const labels = JSON.parse(
      execFileSync('/usr/bin/python3', [
        '-c',
        'import sys, json, numpy; print(json.dumps(numpy.load(sys.argv[1])["labels"].tolist()))',
        npz,
      ]).toString(),
    ) as number[];
    await mkdirInput(dir, await readFile(npz), 'compressed.npz');
    const spec = await job(
      dir,
      { input: path.join(dir, 'in'), inputs: { magnitudes: 'magnitudes' }, carry: ['labels'] },
      'magnitudes',
      ['N', 5],
    );
    assert.equal((await runJob(spec, { retryBaseMs: 10 })).status, 'succeeded');
    const rows = (await predictions(spec.output)).sort((a, b) => Number(a.index) - Number(b.index));
    assert.deepEqual(
      rows.map((r) => r.labels),
      labels,
    );

    const store = new FileStore(path.join(dir, 'in'));
    const whole = { id: '1', key: 'compressed.npz', bytes: 0 };
    const open = (carry: string[]) => tensorFiles.open(store, whole, { carry } as never);
    await rejectsWith(() => open(['magnitudes']), ErrorCodes.option, ['"magnitudes"', '[4, 5]', '--carry']);
    await rejectsWith(() => open(['ra']), ErrorCodes.option, ['"ra"', '--carry', 'labels [4]']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a --carry name the data lacks is refused at planning (exit 2, nothing written) for tensor, HDF5 and Parquet inputs; a later partition without it fails alone', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-carry-plan-'));
  try {
    const x = (k: number) =>
      tensor(
        'float32',
        [4, 5],
        Float32Array.from({ length: 20 }, (_, i) => k * 100 + i),
      );
    const ra = tensor('float32', [4], Float32Array.of(1.5, 2.5, 3.5, 4.5));
    const folder = async (name: string, files: Record<string, Uint8Array>) => {
      await mkdir(path.join(dir, name));
      for (const [file, bytes] of Object.entries(files)) await writeFile(path.join(dir, name, file), bytes);
      return path.join(dir, name);
    };
    const withRa = (k: number) => encodeSafetensors({ x: x(k), ra });
    const withoutRa = (k: number) => encodeSafetensors({ x: x(k) });
    const refused = async (
      fields: Omit<JobSpecInput, 'model' | 'output'>,
      name: string,
      mentions: string[],
    ) => {
      const spec = await job(dir, fields, name, ['N', 5]);
      const out = `${spec.output}-${Math.random().toString(36).slice(2)}`;
      const err = await rejectsWith(() => runJob({ ...spec, output: out }), ErrorCodes.option, mentions);
      assert.equal(exitCodeFor(err), ExitCodes.usage, err.message);
      await assert.rejects(stat(out), `nothing written: ${out}`);
    };
    // Tensor partitions: the first file's columns.
    const lacking = await folder('lacking', { '1.safetensors': withoutRa(1), '2.safetensors': withRa(2) });
    await refused({ input: lacking, inputs: { x: 'x' }, carry: ['ra'] }, 'x', [
      '1.safetensors',
      '"ra"',
      '--carry',
      'x [4, 5]',
    ]);
    // HDF5: the dataset listing. Parquet: the schema.
    await refused(
      { input: `${FIXTURES}hdf5/galaxy10.h5`, datasets: ['features'], carry: ['ra', 'nope'] },
      'features',
      ['/nope', '--carry', '/ra'],
    );
    const pq = parquetWriteBuffer({
      columnData: [{ name: 'mag', data: [1, 2, 3] }],
      schema: [
        { name: 'root', num_children: 1 },
        { name: 'mag', type: 'DOUBLE', repetition_type: 'REQUIRED' },
      ],
    });
    const stars = await folder('stars', { 'stars.parquet': new Uint8Array(pq) });
    await refused({ input: stars, featureColumns: ['mag'], carry: ['objid'] }, 'mag', ['"objid"', '--carry']);

    // A mixed folder: the first partition has the column, the second not: that partition fails alone,
    // with the same error, and the job ran (exit 1 by its error budget), the first one's predictions made.
    const mixed = await folder('mixed', { '1.safetensors': withRa(1), '2.safetensors': withoutRa(2) });
    const spec = await job(dir, { input: mixed, inputs: { x: 'x' }, carry: ['ra'] }, 'x', ['N', 5]);
    const summary = await runJob({ ...spec, output: path.join(dir, 'mixed-out') }, { retryBaseMs: 10 });
    assert.equal(summary.status, 'failed');
    assert.deepEqual(
      summary.failures.map((f) => [f.partition, f.error.code]),
      [['2', ErrorCodes.option]],
    );
    assert.match(summary.failures[0].error.message, /has no column "ra" for --carry/);
    // A failure's data_path is the full path, as a record's is (docs/output-format.md, format 2).
    assert.equal(summary.failures[0].data_path, path.join(mixed, '2.safetensors'));
    const record = JSON.parse(await readFile(path.join(dir, 'mixed-out', 'results', '1.json'), 'utf8')) as {
      data_path: string;
    };
    assert.equal(record.data_path, path.join(mixed, '1.safetensors'));
    assert.equal(summary.partitions.completed, 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('cai partition refuses --carry (it writes no predictions), exit 2, nothing written', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-carry-part-'));
  try {
    const out = path.join(dir, 'parts');
    const r = spawnSync(
      process.execPath,
      [
        fileURLToPath(new URL('../../src/cli/main.js', import.meta.url)),
        'partition',
        `${FIXTURES}hdf5/galaxy10.h5`,
        out,
        '--items',
        '16',
        '--carry',
        'ra',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--carry.*cai run/);
    assert.deepEqual(await readdir(dir), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
