// float16 and compound HDF5 datasets against files h5py wrote (scripts/fixtures/make_hdf5_types_fixtures.py):
// float16 read as float32 bit for bit what NumPy's astype(float32) gives (all 65,536 patterns, and the
// fixture's subnormals, infinities, NaNs with payloads, negative zero, big-endian); each field of a
// compound (an h5py structured array) a column equal to NumPy's field, through the reading thread, in
// batches that cross chunks; nested and variable-length fields refused naming them; `cai run` binding a
// field to the model, another as the label, a string field as ids and a float field carried.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import type { ArraySourceFields } from '../../src/formats/arrays/index.js';
import { hdf5Files } from '../../src/formats/hdf5/index.js';
import { halfBitsToFloat32 } from '../../src/formats/hdf5/h5-types.js';
import type { SourceBatch } from '../../src/formats/source.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import { FileStore } from '../../src/storage/file-store.js';
import '../../src/storage/register.js';
import type { TypedArray } from '../../src/tensor/dtype.js';
import { allPredictions } from '../helpers/demo-fixture.js';
import { concatColumn, expectedNpy, FIXTURES, readAll, rejectsWith } from './helpers.js';

const DIR = `${FIXTURES}hdf5/types`;
const whole = { id: '1', key: 'types.h5', bytes: 0 };
const open = (job: ArraySourceFields) => hdf5Files.open(new FileStore(DIR), whole, job as never);
const expected = (name: string) => expectedNpy(`hdf5/types/expected/${name}.npy`);

/** The values of a column over all batches, as one array of numbers (bigints kept). */
function column(batches: readonly SourceBatch[], name: string): (number | bigint)[] {
  return batches.flatMap((b) => {
    const t = b.rows.columns[b.rows.names.indexOf(name)];
    return Array.from(t.data as ArrayLike<number | bigint>);
  });
}

/** Asserts equal bits for floats (NaN payloads and -0 included) and equal values otherwise. */
function assertSameBits(got: TypedArray, want: TypedArray, what: string): void {
  assert.equal(got.constructor, want.constructor, `${what}: array type`);
  assert.equal(got.length, want.length, `${what}: length`);
  if (got instanceof Float32Array || got instanceof Float64Array) {
    const g = new Uint8Array(got.buffer, got.byteOffset, got.byteLength);
    const w = new Uint8Array(want.buffer, want.byteOffset, want.byteLength);
    assert.ok(Buffer.from(g).equals(Buffer.from(w)), `${what}: bits differ`);
  } else {
    assert.deepEqual(Array.from(got as ArrayLike<number>), Array.from(want as ArrayLike<number>), what);
  }
}

const hasNumpy = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

test(
  "float16 -> float32 is NumPy's astype(float32) for all 65,536 bit patterns",
  { skip: hasNumpy ? false : 'needs /usr/bin/python3 with numpy' },
  () => {
    const r = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        'import sys, numpy as np; sys.stdout.buffer.write(np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).tobytes())',
      ],
      { maxBuffer: 1 << 20 },
    );
    assert.equal(r.status, 0, String(r.stderr));
    const want = new Float32Array(new Uint8Array(r.stdout).buffer);
    const got = halfBitsToFloat32(Uint16Array.from({ length: 65536 }, (_, i) => i));
    assertSameBits(got, want, 'every half');
  },
);

test('float16 datasets (chunked with gzip, and big-endian) read as float32 equal to NumPy, bit for bit', async () => {
  const batches = await readAll(await open({ datasets: ['half', 'half_be'], nan: 'keep' }), 5);
  const half = batches[0].rows.columns[0];
  assert.equal(half.dtype, 'float32');
  assert.deepEqual(half.shape, [5, 3]);
  assertSameBits(concatColumn(batches, 'half'), expected('half').data, 'half');
  assertSameBits(concatColumn(batches, 'half_be'), expected('half_be').data, 'half_be');
  // The NaN policy sees the NaNs: by default the items holding them fail, naming the dataset.
  const want = expected('half').data as Float32Array;
  const nanRows = [
    ...new Set(
      Array.from(want.keys())
        .filter((i) => Number.isNaN(want[i]))
        .map((i) => Math.floor(i / 3)),
    ),
  ];
  const strict = await readAll(await open({ datasets: ['half'] }), 5);
  const failed = strict.flatMap((b) => b.failed ?? []);
  assert.deepEqual(
    failed.map((f) => f.index),
    nanRows,
  );
  assert.match(failed[0].reason, /dataset "\/half".*NaN/);
});

test('a compound dataset: each field a column named <dataset>.<field>, equal to NumPy field by field', async () => {
  const fields = ['ra', 'dec', 'z', 'objid', 'count', 'flag', 'flux16', 'mags', 'image'];
  const batches = await readAll(
    await open({
      datasets: fields.map((f) => `catalog.${f}`),
      idColumn: 'catalog.name',
      carry: ['catalog.z'],
      nan: 'keep',
    }),
    5, // batches of 5 rows cross the chunks of 8
  );
  const first = batches[0].rows;
  assert.deepEqual(
    first.names,
    fields.map((f) => `catalog.${f}`),
  );
  assert.deepEqual(
    first.columns.map((c) => [c.dtype, c.shape]),
    [
      ['float64', [5]],
      ['float64', [5]],
      ['float32', [5]],
      ['int64', [5]],
      ['int32', [5]],
      ['bool', [5]],
      ['float32', [5]],
      ['float32', [5, 5]],
      ['uint8', [5, 4, 4, 3]],
    ],
  );
  for (const f of fields)
    assertSameBits(concatColumn(batches, `catalog.${f}`), expected(`catalog.${f}`).data, f);
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    Array.from({ length: 40 }, (_, i) => `g${String(i).padStart(5, '0')}`),
  );
  assert.deepEqual(
    batches.flatMap((b) => b.carried?.['catalog.z'] ?? []),
    Array.from(expected('catalog.z').data as Float32Array),
  );
  // Big-endian members, converted by libhdf5 while reading.
  const be = await readAll(
    await open({ datasets: ['catalog_be.ra', 'catalog_be.n', 'catalog_be.h'], nan: 'keep' }),
    16,
  );
  for (const f of ['ra', 'n', 'h'])
    assertSameBits(concatColumn(be, `catalog_be.${f}`), expected(`catalog_be.${f}`).data, `be ${f}`);
});

test('without --datasets every numeric field is a column; the fields of a compound with a nested and a vlen field read', async () => {
  const all = await readAll(await open({ nan: 'keep' }), 40);
  const names = all[0].rows.names;
  for (const n of ['catalog.ra', 'catalog.image', 'catalog_be.h', 'half', 'half_be', 'label', 'nested.a'])
    assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
  for (const n of ['catalog', 'catalog.name', 'nested', 'nested.pos', 'nested.samples'])
    assert.ok(!names.includes(n), `${n} is no column`);
  assert.deepEqual(column(all, 'nested.a'), Array.from(expected('nested.a').data as Float32Array));
});

test('a nested compound field, a variable-length field and the compound itself are refused naming them', async () => {
  await rejectsWith(() => open({ datasets: ['nested.pos'] }), ErrorCodes.unsupported, [
    'types.h5',
    'field "pos" of compound dataset "/nested"',
    'nested compound',
  ]);
  await rejectsWith(() => open({ datasets: ['nested.a', 'nested.samples'] }), ErrorCodes.unsupported, [
    'field "samples"',
    'variable-length',
  ]);
  await rejectsWith(() => open({ datasets: ['catalog'] }), ErrorCodes.unsupported, [
    '"/catalog" is a compound dataset',
    '"catalog.ra"',
    '"catalog.image"',
  ]);
  await rejectsWith(() => open({ datasets: ['label'], idColumn: 'nested.pos' }), ErrorCodes.unsupported, [
    'field "pos"',
  ]);
  await rejectsWith(() => open({ datasets: ['catalog.nope'] }), ErrorCodes.option, [
    'no dataset "/catalog.nope"',
    '/catalog.ra float64 field of a compound [40]',
  ]);
});

test('cai run: a compound field is the model input, another the label, a string field the ids, one carried', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-h5-compound-'));
  try {
    const model = path.join(dir, 'trivial.onnx');
    await writeFile(model, buildTrivial({ inputName: 'mags', shape: ['N', 5] }));
    const output = path.join(dir, 'out');
    const summary = await runJob(
      parseJobSpec({
        input: `${DIR}/types.h5`,
        model,
        output,
        datasets: { mags: 'catalog.mags', z: 'catalog.z' },
        idColumn: 'catalog.name',
        label: 'z',
        carry: ['catalog.ra'],
        partitionItems: 16,
        concurrency: 2,
        threads: 1,
        batchSize: 8,
      }),
      { retryBaseMs: 10 },
    );
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.items, 40);
    const rows = await allPredictions(output);
    const byId = new Map(rows.map((r) => [String(r.id), r]));
    assert.equal(byId.size, 40);
    const mags = expected('catalog.mags').data as Float32Array;
    const z = expected('catalog.z').data as Float32Array;
    const ra = expected('catalog.ra').data as Float64Array;
    for (let i = 0; i < 40; i++) {
      const r = byId.get(`g${String(i).padStart(5, '0')}`) as Record<string, unknown>;
      const mean = Array.from(mags.subarray(i * 5, i * 5 + 5)).reduce((a, b) => a + b, 0) / 5;
      assert.ok(Math.abs(Number(r.mean) - mean) < 1e-4, `row ${i}: ${String(r.mean)} vs ${mean}`);
      assert.equal(Number(r.label), z[i], `label ${i}`);
      assert.equal(r['catalog.ra'], ra[i], `carried ra ${i}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a dataset named like a field (cat.a beside compound cat) is the one read; the other fields still are', async () => {
  const store = new FileStore(DIR);
  const stream = await hdf5Files.open(store, { id: '1', key: 'clash.h5', bytes: 0 }, {
    datasets: ['cat.a', 'cat.b'],
  } as never);
  const batches = await readAll(stream, 8);
  assert.deepEqual(column(batches, 'cat.a'), [100, 101, 102, 103, 104, 105, 106, 107]);
  assert.deepEqual(column(batches, 'cat.b'), [0, -1, -2, -3, -4, -5, -6, -7]);
});
