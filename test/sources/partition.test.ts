// `cai partition`: tensor files split by --items and --size into safetensors or .pt partitions with a
// manifest, read back with CAI's own readers; `cai run` over the partitions predicts what it predicts over
// the original; folders of images and FITS and Parquet files partitioned; bad input refused with nothing
// lost. Memory is measured by bench/sources.ts, not here.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes } from '../../src/errors.js';
import { decodeTensorFile } from '../../src/formats/registry.js';
import { partitionDataset, type PartitionManifest } from '../../src/formats/partition/index.js';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';
import { decodeImage, resolvePreprocess, toRow } from '../../src/formats/image/index.js';
import { runJob } from '../../src/run/run.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { sliceColumns, type ColumnSet } from '../../src/formats/columns.js';
import { encodeSafetensorsRows } from '../../src/formats/partition/safetensors-rows.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { allPredictions } from '../helpers/demo-fixture.js';
import { assertSameValues, expectedNpy, fixture, FIXTURES, rejectsWith } from './helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const tmp = (prefix: string) => mkdtemp(path.join(os.tmpdir(), `cai-part-${prefix}-`));

/** A C-order little-endian float32 .npy (format 1.0), as numpy.save writes it. */
function npyFloat32(shape: readonly number[], data: Float32Array): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY'), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Deterministic float32 values that differ from row to row. */
function values(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

async function readManifest(dir: string): Promise<PartitionManifest> {
  return JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as PartitionManifest;
}

/** Every partition of an output folder decoded with CAI's readers, in manifest order. */
async function readParts(dir: string): Promise<{ manifest: PartitionManifest; sets: ColumnSet[] }> {
  const manifest = await readManifest(dir);
  const sets: ColumnSet[] = [];
  for (const p of manifest.partitions) {
    const bytes = new Uint8Array(await readFile(path.join(dir, p.key)));
    assert.equal(bytes.length, p.bytes, `${p.key}: manifest bytes`);
    sets.push(decodeTensorFile(bytes, p.key));
  }
  return { manifest, sets };
}

/** Column `k` of every set, concatenated, as numbers. */
function joined(sets: readonly ColumnSet[], k = 0): number[] {
  return sets.flatMap((s) => Array.from(s.columns[k].data as ArrayLike<number | bigint>, Number));
}

function cai(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a .npy numpy wrote is split by --items into safetensors partitions with a manifest', async () => {
  const out = await tmp('items');
  const input = `${FIXTURES}images/raw/ray_pixels.npy`;
  const m = await partitionDataset({ input, output: out, items: 5 });
  const want = expectedNpy('images/raw/ray_pixels.npy');
  assert.deepEqual(want.shape, [12, 16, 20, 3]);
  assert.deepEqual(
    m.partitions.map((p) => [p.key, p.items, p.first, p.sources]),
    [
      ['1.safetensors', 5, 0, [{ key: 'ray_pixels.npy', start: 0, end: 5 }]],
      ['2.safetensors', 5, 5, [{ key: 'ray_pixels.npy', start: 5, end: 10 }]],
      ['3.safetensors', 2, 10, [{ key: 'ray_pixels.npy', start: 10, end: 12 }]],
    ],
  );
  assert.deepEqual(m.columns, [{ name: '0', dtype: 'uint8', rowShape: [16, 20, 3] }]);
  assert.equal(m.items, 12);
  assert.deepEqual(m.read_whole, [], 'a .npy is read by ranges');
  const { manifest, sets } = await readParts(out);
  assert.deepEqual(manifest.partitions, m.partitions);
  assert.equal(
    manifest.bytes,
    manifest.partitions.reduce((s, p) => s + p.bytes, 0),
  );
  assert.deepEqual(
    sets.map((s) => s.columns[0].shape),
    [
      [5, 16, 20, 3],
      [5, 16, 20, 3],
      [2, 16, 20, 3],
    ],
  );
  assertSameValues(Uint8Array.from(joined(sets)), want.data as Uint8Array, 'pixels');
  assert.deepEqual((await readdir(out)).sort(), [
    '1.safetensors',
    '2.safetensors',
    '3.safetensors',
    'manifest.json',
  ]);
});

test('a partition written from its row chunks holds the joined columns, its data 64-byte aligned', () => {
  const n = 7;
  const image: Tensor = { dtype: 'float32', shape: [n, 2, 3], data: values(n * 6, 9) };
  const id: Tensor = {
    dtype: 'int64',
    shape: [n],
    data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
  };
  const whole: ColumnSet = { names: ['image', 'id'], columns: [image, id], items: n };
  const meta = { input: 'x.npy', first: '0' };
  const pieces = [sliceColumns(whole, 0, 2), sliceColumns(whole, 2, 3), sliceColumns(whole, 3, n)];
  const rows = encodeSafetensorsRows(pieces, meta);
  const plain = encodeSafetensors({ image, id }, meta);
  const headerEnd = (b: Uint8Array) => 8 + Number(new DataView(b.buffer, b.byteOffset).getBigUint64(0, true));
  const header = (b: Uint8Array) =>
    JSON.parse(Buffer.from(b.subarray(8, headerEnd(b))).toString()) as unknown;
  assert.equal(headerEnd(rows) % 64, 0);
  assert.deepEqual(header(rows), header(plain));
  assert.deepEqual(rows.subarray(headerEnd(rows)), plain.subarray(headerEnd(plain)));
  const back = decodeTensorFile(rows, '1.safetensors');
  assert.deepEqual(back.names, ['image', 'id']);
  assertSameValues(back.columns[0].data as Float32Array, image.data as Float32Array, 'image');
  assert.deepEqual(Array.from(back.columns[1].data as BigInt64Array), Array.from(id.data as BigInt64Array));
});

test('--size fills partitions with whole items up to the target bytes of tensor data', async () => {
  const dir = await tmp('size-in');
  const out = await tmp('size');
  const rows = 1000;
  const data = values(rows * 5 * 8 * 8);
  await writeFile(path.join(dir, 'big.npy'), npyFloat32([rows, 5, 8, 8], data));
  const size = 100 * 1024; // 1280 bytes a row: 80 rows a partition
  // Reads of 50,000 bytes (39 rows): partitions are cut from two or three reads each.
  const m = await partitionDataset({
    input: path.join(dir, 'big.npy'),
    output: out,
    size,
    chunkBytes: 50_000,
  });
  assert.equal(m.items_per_partition, 80);
  assert.deepEqual(
    m.partitions.map((p) => p.items),
    [...Array<number>(12).fill(80), 40],
  );
  for (const p of m.partitions) {
    assert.ok(p.bytes <= size + 1024, `${p.key}: ${p.bytes} bytes`);
    assert.deepEqual(p.sources, [{ key: 'big.npy', start: p.first, end: p.first + p.items }]);
  }
  const { sets } = await readParts(out);
  assertSameValues(Float32Array.from(joined(sets)), data, 'values');
});

test('a run over the partitions predicts exactly what a run over the original predicts', async () => {
  const dir = await tmp('run');
  const rows = 700;
  await mkdir(path.join(dir, 'original'));
  const data = values(rows * 5 * 8 * 8, 7);
  await writeFile(path.join(dir, 'original', 'big.npy'), npyFloat32([rows, 5, 8, 8], data));
  const model = path.join(dir, 'trivial.onnx');
  await writeFile(model, buildTrivial({ shape: ['N', 5, 8, 8] }));
  const parts = path.join(dir, 'parts');
  const ptParts = path.join(dir, 'pt');
  await partitionDataset({
    input: path.join(dir, 'original', 'big.npy'),
    output: parts,
    size: 64 * 1024,
    chunkBytes: 20_000,
  });
  await partitionDataset({ input: path.join(dir, 'original'), output: ptParts, items: 256, format: 'pt' });

  async function predict(input: string): Promise<Map<string, number>> {
    const output = path.join(dir, `out-${path.basename(input)}`);
    const summary = await runJob(
      parseJobSpec({ input, model, output, inputs: { input: 0 }, batchSize: 64, concurrency: 2, threads: 1 }),
      { retryBaseMs: 10 },
    );
    assert.equal(summary.status, 'succeeded', input);
    const manifest = input === path.join(dir, 'original') ? undefined : await readManifest(input);
    const out = new Map<string, number>();
    for (const r of await allPredictions(output)) {
      // Position in the whole input: the partition's first item plus the row's index.
      const first = manifest?.partitions.find((p) => p.id === r.partition)?.first ?? 0;
      out.set(String(first + Number(r.index)), Number(r.mean));
    }
    return out;
  }
  const original = await predict(path.join(dir, 'original'));
  assert.equal(original.size, rows);
  // The trivial model's prediction is each item's mean: check a few by hand.
  for (const i of [0, 1, 350, 699]) {
    const row = data.subarray(i * 320, (i + 1) * 320);
    const mean = row.reduce((a, b) => a + b, 0) / 320;
    assert.ok(Math.abs((original.get(String(i)) ?? NaN) - mean) < 1e-6, `item ${i}`);
  }
  for (const input of [parts, ptParts]) {
    const split = await predict(input);
    assert.equal(split.size, rows, input);
    // Safetensors partitions keep the .npy's 64-byte data alignment, and a .pt's members are 64-byte
    // aligned as torch.save aligns them, so onnxruntime sums in the same order: identical.
    for (const [i, v] of original) assert.equal(split.get(i), v, `${path.basename(input)} item ${i}`);
  }
  assert.equal((await readManifest(parts)).partitions.length, 14); // 51 rows of 1280 bytes in 64 KB
  assert.equal((await readManifest(ptParts)).partitions.length, 3);
});

test('--format pt writes torch.save(TensorDataset) partitions that CAI .pt reader loads, every column', async () => {
  const dir = await tmp('pt-in');
  const out = await tmp('pt');
  const n = 10;
  const image: Tensor = { dtype: 'float32', shape: [n, 2, 3], data: values(n * 6, 3) };
  const magnitude: Tensor = {
    dtype: 'float64',
    shape: [n, 5],
    data: Float64Array.from({ length: n * 5 }, (_, i) => 15 + i / 7),
  };
  const label: Tensor = {
    dtype: 'int64',
    shape: [n],
    data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i * 3)),
  };
  await writeFile(path.join(dir, 'set.safetensors'), encodeSafetensors({ image, magnitude, label }));
  const m = await partitionDataset({
    input: path.join(dir, 'set.safetensors'),
    output: out,
    items: 4,
    format: 'pt',
  });
  assert.deepEqual(
    m.partitions.map((p) => [p.key, p.items]),
    [
      ['1.pt', 4],
      ['2.pt', 4],
      ['3.pt', 2],
    ],
  );
  assert.deepEqual(
    m.columns.map((c) => [c.name, c.dtype, c.rowShape]),
    [
      ['image', 'float32', [2, 3]],
      ['magnitude', 'float64', [5]],
      ['label', 'int64', []],
    ],
  );
  const { sets } = await readParts(out);
  // A TensorDataset is positional: columns come back as "0", "1", "2" in the manifest's order.
  assert.deepEqual(sets[0].names, ['0', '1', '2']);
  assert.deepEqual(
    sets[2].columns.map((c) => [c.dtype, c.shape]),
    [
      ['float32', [2, 2, 3]],
      ['float64', [2, 5]],
      ['int64', [2]],
    ],
  );
  assertSameValues(Float32Array.from(joined(sets, 0)), image.data as Float32Array, 'image');
  assertSameValues(Float64Array.from(joined(sets, 1)), magnitude.data as Float64Array, 'magnitude');
  assert.deepEqual(
    joined(sets, 2),
    Array.from({ length: n }, (_, i) => i * 3),
  );
});

test('a folder of images: preprocessed rows, ids in the manifest, undecodable files skipped and listed', async () => {
  const out = await tmp('images');
  const job = { preset: 'imagenet', preprocess: { resize: 32, centerCrop: 28 } };
  const m = await partitionDataset({ input: `${FIXTURES}images/photos`, output: out, items: 4, job });
  const facts = JSON.parse(new TextDecoder().decode(fixture('images/expected/images.json'))) as {
    images: Record<string, unknown>;
  };
  const good = Object.keys(facts.images).sort();
  assert.deepEqual(
    m.partitions.map((p) => p.ids),
    [good.slice(0, 4), good.slice(4, 8), good.slice(8)],
  );
  assert.deepEqual(
    m.skipped.map((s) => s.id),
    ['x_truncated.jpg', 'y_not_an_image.png'],
  );
  assert.match(m.skipped[0].reason, /cannot be decoded as an image/);
  const { sets } = await readParts(out);
  assert.deepEqual(sets[0].names, ['image']);
  const all = Float32Array.from(joined(sets));
  const p = resolvePreprocess(job);
  const size = 3 * 28 * 28;
  for (const [i, name] of good.entries()) {
    const row = toRow(await decodeImage(fixture(`images/photos/${name}`), p, name), p);
    assertSameValues(all.subarray(i * size, (i + 1) * size), row.data as Float32Array, name);
  }
});

test('FITS cubes and Parquet rows are partitioned with their ids and source rows', async () => {
  const fits = await tmp('fits');
  const m = await partitionDataset({ input: `${FIXTURES}fits/cubes`, output: fits, items: 3 });
  // cubes/c3.fits has a NaN pixel: the default NaN policy leaves it out, and says so.
  assert.deepEqual(
    m.partitions.map((p) => p.ids),
    [['c0.fits', 'c1.fits', 'c2.fits']],
  );
  assert.deepEqual(
    m.skipped.map((s) => s.id),
    ['c3.fits'],
  );
  assert.match(m.skipped[0].reason, /NaN/);
  const { sets } = await readParts(fits);
  assert.deepEqual(sets[0].columns[0].shape, [3, 5, 8, 8]);
  const cube = (k: number) => expectedNpy(`fits/expected/cubes__c${k}.fits.npy`).data as Float32Array;
  assertSameValues(
    sets[0].columns[0].data as Float32Array,
    Float32Array.from([...cube(0), ...cube(1), ...cube(2)]),
    'cubes',
  );

  const pq = await tmp('parquet');
  const job = { idColumn: 'id', preprocess: { resize: 32, centerCrop: 28 }, preset: 'imagenet', nan: 0 };
  const q = await partitionDataset({
    input: `${FIXTURES}parquet/encoded.parquet`,
    output: pq,
    items: 4,
    job,
  });
  assert.deepEqual(
    q.partitions.map((p) => [p.items, p.sources]),
    [
      [4, [{ key: 'encoded.parquet', start: 0, end: 4 }]],
      [4, [{ key: 'encoded.parquet', start: 4, end: 8 }]],
      [1, [{ key: 'encoded.parquet', start: 8, end: 9 }]],
    ],
  );
  assert.deepEqual(q.partitions[0].ids, ['a_landscape.jpg', 'b_portrait.jpg', 'c_square.png', 'd_alpha.png']);
  assert.deepEqual(
    q.skipped.map((s) => s.id),
    ['x_truncated.jpg', 'y_not_an_image.png', 'missing.jpg'],
  );
  assert.deepEqual(
    q.columns.map((c) => c.name),
    ['image', 'magnitude', 'redshift'],
  );
  const parts = await readParts(pq);
  // magnitude[i] = 15 + i + band / 10, with row 2's NaN replaced by 0.
  assert.deepEqual(
    joined(parts.sets, 1).slice(10, 15),
    [0, 1, 2, 3, 4].map((b) => (b === 3 ? 0 : 15 + 2 + b / 10)),
  );

  const ray = await tmp('ray');
  const r = await partitionDataset({
    input: `${FIXTURES}parquet/ray.parquet`,
    output: ray,
    items: 7,
    job: { imageShape: [16, 20, 3] },
  });
  assert.deepEqual(
    r.partitions.map((p) => p.sources),
    [[{ key: 'ray.parquet', start: 0, end: 7 }], [{ key: 'ray.parquet', start: 7, end: 12 }]],
  );
  assertSameValues(
    Uint8Array.from(joined((await readParts(ray)).sets)),
    expectedNpy('images/raw/ray_pixels.npy').data as Uint8Array,
    'ray pixels',
  );
});

test('bad input: truncated, unknown, mixed layouts; an existing output is kept unless --overwrite', async () => {
  const dir = await tmp('bad');
  const good = npyFloat32([50, 4], values(200));
  await writeFile(path.join(dir, 'cut.npy'), good.subarray(0, good.length - 37));
  const out = path.join(dir, 'out');
  await rejectsWith(
    () => partitionDataset({ input: path.join(dir, 'cut.npy'), output: out, items: 10 }),
    ErrorCodes.corrupt,
    ['cut.npy', 'truncated'],
  );
  await writeFile(path.join(dir, 'notes.txt'), 'hello');
  await rejectsWith(
    () => partitionDataset({ input: path.join(dir, 'notes.txt'), output: out, items: 10 }),
    ErrorCodes.unsupported,
    ['notes.txt', '(.txt)', '.npy'],
  );
  // A file whose extension lies about its format.
  await writeFile(path.join(dir, 'photo.npy'), fixture('images/photos/c_square.png'));
  await rejectsWith(
    () => partitionDataset({ input: path.join(dir, 'photo.npy'), output: out, items: 10 }),
    ErrorCodes.corrupt,
    ['photo.npy', 'not a .npy file'],
  );
  // Two files, the second truncated or of another layout: refused before anything is written.
  await mkdir(path.join(dir, 'two'));
  await writeFile(path.join(dir, 'two', '1.npy'), good);
  await writeFile(path.join(dir, 'two', '2.npy'), good.subarray(0, 200));
  await rejectsWith(
    () => partitionDataset({ input: path.join(dir, 'two'), output: out, items: 10 }),
    ErrorCodes.corrupt,
    ['2.npy', 'truncated'],
  );
  await writeFile(path.join(dir, 'two', '2.npy'), npyFloat32([5, 3], values(15)));
  await rejectsWith(
    () => partitionDataset({ input: path.join(dir, 'two'), output: out, items: 10 }),
    ErrorCodes.corrupt,
    ['2.npy', '"0" float32 [3]', '"0" float32 [4]'],
  );
  assert.deepEqual(await readdir(out).catch(() => []), [], 'nothing written');

  // A finished output is not replaced without --overwrite, and comes through the refusal unchanged.
  await writeFile(path.join(dir, 'two', '2.npy'), good);
  const first = await partitionDataset({ input: path.join(dir, 'two'), output: out, items: 30 });
  assert.equal(first.partitions.length, 4);
  const before = await readFile(path.join(out, '1.safetensors'));
  await rejectsWith(
    () => partitionDataset({ input: path.join(dir, 'two', '1.npy'), output: out, items: 10 }),
    ErrorCodes.option,
    [out, 'already holds partitions (1.safetensors, 2.safetensors, 3.safetensors, ...)', '--overwrite'],
  );
  assert.deepEqual(await readFile(path.join(out, '1.safetensors')), before);
  assert.deepEqual((await readManifest(out)).partitions.length, 4);
  // With --overwrite: the new partitions, and none of the earlier run's extra ones.
  const again = await partitionDataset({
    input: path.join(dir, 'two', '1.npy'),
    output: out,
    items: 25,
    overwrite: true,
  });
  assert.equal(again.partitions.length, 2);
  assert.deepEqual((await readdir(out)).sort(), ['1.safetensors', '2.safetensors', 'manifest.json']);
  assertSameValues(Float32Array.from(joined((await readParts(out)).sets)), values(200), 'rewritten');
});

test('an output inside the input folder is not read back as input on a second run', async () => {
  const dir = await tmp('inside');
  await writeFile(path.join(dir, 'a.npy'), npyFloat32([40, 3], values(120)));
  const out = path.join(dir, 'parts');
  assert.equal((await partitionDataset({ input: dir, output: out, items: 15 })).items, 40);
  const again = await partitionDataset({ input: dir, output: out, items: 10, overwrite: true });
  assert.equal(again.items, 40);
  assert.deepEqual(
    again.partitions.flatMap((p) => p.sources.map((r) => r.key)),
    ['a.npy', 'a.npy', 'a.npy', 'a.npy'],
  );
});

test('a file that fails mid-run keeps the partitions already written and says which', async () => {
  // A .pt input is read whole only when its turn comes: here the second one is truncated.
  const dir = await tmp('mid');
  await mkdir(path.join(dir, 'in'));
  const pt = fixture('tensors/partition.pt');
  await writeFile(path.join(dir, 'in', '1.pt'), pt);
  await writeFile(path.join(dir, 'in', '2.pt'), pt.subarray(0, pt.length >> 1));
  const out = path.join(dir, 'out');
  const first = decodeTensorFile(pt, 'partition.pt');
  const err = await rejectsWith(
    () => partitionDataset({ input: path.join(dir, 'in'), output: out, items: Math.ceil(first.items / 2) }),
    ErrorCodes.corrupt,
    ['2.pt', 'partitions 1.safetensors to 2.safetensors were written', 'no manifest.json', '--overwrite'],
  );
  assert.ok(err.message.length > 0);
  const files = (await readdir(out)).sort();
  assert.deepEqual(files, ['1.safetensors', '2.safetensors']);
  const back = decodeTensorFile(
    new Uint8Array(await readFile(path.join(out, '1.safetensors'))),
    '1.safetensors',
  );
  assertSameValues(
    back.columns[0].data as Float32Array,
    (first.columns[0].data as Float32Array).subarray(0, back.columns[0].data.length),
    'kept',
  );
});

test('the CLI: a target is required, an existing output exits 2, a run prints its totals', async () => {
  const dir = await tmp('cli');
  const input = `${FIXTURES}images/raw/ray_pixels.npy`;
  const none = cai('partition', input, path.join(dir, 'a'));
  assert.equal(none.code, 2);
  assert.match(none.stderr, /give a target with --size \(e\.g\. 25MB\) or --items/);
  const ok = cai('partition', input, path.join(dir, 'a'), '--size', '10KB', '--format', 'pt', '-q');
  assert.equal(ok.code, 0, ok.stderr);
  // 960 bytes a row: 10 rows in 10 KB.
  assert.match(ok.stdout, /^2 partitions of 10 items \(12 items, /);
  const again = cai('partition', input, path.join(dir, 'a'), '--items', '3');
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already holds partitions.*--overwrite/);
  const badSize = cai('partition', input, path.join(dir, 'b'), '--size', 'big');
  assert.equal(badSize.code, 2);
  assert.match(badSize.stderr, /"big" is not a size; .*25MB/);
});

const TORCH_SCRIPT = fileURLToPath(
  new URL('../../../scripts/fixtures/torch_load_partitions.py', import.meta.url),
);
const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

test(
  '--format pt partitions load with torch.load as TensorDatasets of every dtype',
  { skip: hasTorch ? false : 'needs /usr/bin/python3 with python3-torch' },
  async () => {
    const dir = await tmp('torch-in');
    const out = await tmp('torch');
    const n = 9;
    const columns: Record<string, Tensor> = {
      f32: { dtype: 'float32', shape: [n, 2, 2], data: values(n * 4, 5) },
      f64: { dtype: 'float64', shape: [n], data: Float64Array.from({ length: n }, (_, i) => i / 3) },
      f16: {
        dtype: 'float16',
        shape: [n],
        data: Uint16Array.from({ length: n }, (_, i) => 0x3c00 + i * 256),
      },
      i64: {
        dtype: 'int64',
        shape: [n],
        data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 10n ** 12n),
      },
      i32: { dtype: 'int32', shape: [n, 3], data: Int32Array.from({ length: n * 3 }, (_, i) => i - 13) },
      i16: { dtype: 'int16', shape: [n], data: Int16Array.from({ length: n }, (_, i) => -i * 1000) },
      i8: { dtype: 'int8', shape: [n], data: Int8Array.from({ length: n }, (_, i) => i - 4) },
      u8: { dtype: 'uint8', shape: [n], data: Uint8Array.from({ length: n }, (_, i) => 250 + i) },
      b: { dtype: 'bool', shape: [n], data: Uint8Array.from({ length: n }, (_, i) => i % 2) },
    };
    await writeFile(path.join(dir, 'all.safetensors'), encodeSafetensors(columns));
    await partitionDataset({ input: path.join(dir, 'all.safetensors'), output: out, items: 4, format: 'pt' });
    const r = spawnSync('/usr/bin/python3', [TORCH_SCRIPT, out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const seen = JSON.parse(r.stdout) as {
      partitions: {
        key: string;
        class: string;
        len: number;
        tensors: { dtype: string; shape: number[]; values: number[] }[];
      }[];
    };
    assert.deepEqual(
      seen.partitions.map((p) => [p.key, p.class, p.len]),
      [
        ['1.pt', 'torch.utils.data.dataset.TensorDataset', 4],
        ['2.pt', 'torch.utils.data.dataset.TensorDataset', 4],
        ['3.pt', 'torch.utils.data.dataset.TensorDataset', 1],
      ],
    );
    const torchNames: Record<string, string> = {
      f32: 'torch.float32',
      f64: 'torch.float64',
      f16: 'torch.float16',
      i64: 'torch.int64',
      i32: 'torch.int32',
      i16: 'torch.int16',
      i8: 'torch.int8',
      u8: 'torch.uint8',
      b: 'torch.bool',
    };
    Object.entries(columns).forEach(([name, t], k) => {
      const got = seen.partitions.map((p) => p.tensors[k]);
      assert.deepEqual(
        got.map((g) => [g.dtype, g.shape]),
        [4, 4, 1].map((rows) => [torchNames[name], [rows, ...t.shape.slice(1)]]),
        name,
      );
      const flat = got.flatMap((g) => g.values);
      // float16 bits decoded by hand: 2^(exponent - 15) x (1 + mantissa / 1024).
      const half = (h: number) => 2 ** (((h >> 10) & 31) - 15) * (1 + (h & 1023) / 1024);
      const want =
        t.dtype === 'float16'
          ? Array.from(t.data as Uint16Array, half)
          : Array.from(t.data as ArrayLike<number | bigint>, Number);
      assert.deepEqual(flat, want, name);
    });
  },
);
