// `cai partition --format hdf5`: partitions written as HDF5 files (h5wasm, in memory, stored atomically),
// read back by h5py (scripts/fixtures/h5py_read_partitions.py) equal to NumPy's values and by CAI's HDF5
// source; a `cai partition` killed while it writes leaves only complete partitions and no temporary file
// (and its rerun removes what the killed process held); a `cai run` worker killed mid-partition over an
// HDF5 input leaves no temporary file in the output or in os.tmpdir().
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { hdf5Files } from '../../src/formats/hdf5/index.js';
import { encodeHdf5 } from '../../src/formats/hdf5/h5-writer.js';
import { halfBitsToFloat32 } from '../../src/formats/hdf5/h5-types.js';
import { decodeNpyTensor } from '../../src/formats/npy/index.js';
import { partitionDataset } from '../../src/formats/partition/index.js';
import type { SourceBatch } from '../../src/formats/source.js';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import { FileStore, isTemporary } from '../../src/storage/file-store.js';
import '../../src/storage/register.js';
import type { TypedArray } from '../../src/tensor/dtype.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { allPredictions } from '../helpers/demo-fixture.js';
import { concatColumn, expectedNpy, FIXTURES, readAll } from './helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const READ_SCRIPT = fileURLToPath(
  new URL('../../../scripts/fixtures/h5py_read_partitions.py', import.meta.url),
);
const TYPES = `${FIXTURES}hdf5/types/types.h5`;
const hasH5py = spawnSync('/usr/bin/python3', ['-c', 'import h5py'], { stdio: 'ignore' }).status === 0;
const needsH5py = { skip: hasH5py ? false : 'needs /usr/bin/python3 with python3-h5py' };

const tmp = (prefix: string) => mkdtemp(path.join(os.tmpdir(), `cai-part-h5-${prefix}-`));

interface H5pySeen {
  partitions: {
    key: string;
    attrs: Record<string, string>;
    datasets: Record<string, { dtype: string; shape: number[]; chunks: number[] | null }>;
  }[];
}

/** What h5py reads from an output's partitions; arrays saved under `dest`. */
function h5pyRead(out: string, dest: string): H5pySeen {
  const r = spawnSync('/usr/bin/python3', [READ_SCRIPT, out, dest], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as H5pySeen;
}

async function npy(file: string): Promise<Tensor> {
  return decodeNpyTensor(new Uint8Array(await readFile(file)), file);
}

/** Equal bits for floats (NaN payloads, -0), equal numbers otherwise (bool and uint8 alike). */
function assertSame(got: TypedArray, want: TypedArray, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  if (want instanceof Float32Array || want instanceof Float64Array) {
    assert.equal(got.constructor, want.constructor, `${what}: array type`);
    const bytes = (a: TypedArray) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
    assert.ok(bytes(got).equals(bytes(want)), `${what}: bits differ`);
  } else {
    assert.deepEqual(
      Array.from(got as ArrayLike<number>, Number),
      Array.from(want as ArrayLike<number>, Number),
      what,
    );
  }
}

test(
  "HDF5 partitions of float16 and compound fields: h5py reads NumPy's values, CAI reads them back",
  needsH5py,
  async () => {
    const out = await tmp('types');
    const fields = ['ra', 'flag', 'count', 'image'].map((f) => `catalog.${f}`);
    const m = await partitionDataset({
      input: TYPES,
      output: out,
      items: 16,
      format: 'hdf5',
      job: { datasets: ['half', ...fields, 'label'], idColumn: 'catalog.name', nan: 'keep' },
    });
    assert.deepEqual(
      m.partitions.map((p) => [p.key, p.items, p.first]),
      [
        ['1.h5', 16, 0],
        ['2.h5', 16, 16],
        ['3.h5', 8, 32],
      ],
    );
    assert.deepEqual(m.partitions[0].ids?.slice(0, 2), ['g00000', 'g00001']);
    // As written: the bool field as uint8, the rest as read.
    assert.deepEqual(
      m.columns.map((c) => [c.name, c.dtype, c.rowShape]),
      [
        ['half', 'float32', [3]],
        ['catalog.ra', 'float64', []],
        ['catalog.flag', 'uint8', []],
        ['catalog.count', 'int32', []],
        ['catalog.image', 'uint8', [4, 4, 3]],
        ['label', 'int32', []],
      ],
    );
    assert.deepEqual((await readdir(out)).sort(), ['1.h5', '2.h5', '3.h5', 'manifest.json']);

    const dest = await tmp('h5py');
    const seen = h5pyRead(out, dest);
    assert.deepEqual(seen.partitions[1].attrs, { input: TYPES, first: '16' });
    assert.deepEqual(
      Object.entries(seen.partitions[0].datasets).map(([k, d]) => [k, d.dtype, d.shape]),
      [
        ['catalog.count', '<i4', [16]],
        ['catalog.flag', '|u1', [16]],
        ['catalog.image', '|u1', [16, 4, 4, 3]],
        ['catalog.ra', '<f8', [16]],
        ['half', '<f4', [16, 3]],
        ['label', '<i4', [16]],
      ],
    );
    for (const name of ['half', ...fields]) {
      assertSame(
        (await npy(path.join(dest, `${name}.npy`))).data,
        expectedNpy(`hdf5/types/expected/${name}.npy`).data,
        `h5py ${name}`,
      );
    }
    assertSame(
      (await npy(path.join(dest, 'label.npy'))).data,
      Int32Array.from({ length: 40 }, (_, i) => i % 3),
      'h5py label',
    );

    // CAI's HDF5 source over the partitions: the same columns, by the same names.
    const store = new FileStore(out);
    const batches: SourceBatch[] = [];
    for (const p of m.partitions) {
      batches.push(
        ...(await readAll(
          await hdf5Files.open(store, { id: p.id, key: p.key, bytes: p.bytes }, { nan: 'keep' } as never),
          16,
        )),
      );
    }
    assert.deepEqual(batches[0].rows.names, [
      'catalog.count',
      'catalog.flag',
      'catalog.image',
      'catalog.ra',
      'half',
      'label',
    ]);
    for (const name of ['half', ...fields])
      assertSame(
        concatColumn(batches, name),
        expectedNpy(`hdf5/types/expected/${name}.npy`).data,
        `CAI ${name}`,
      );
  },
);

test(
  'float16 and bool columns of a safetensors input are written as float32 (exact) and uint8',
  needsH5py,
  async () => {
    const dir = await tmp('f16');
    const bits = Uint16Array.from(
      { length: 12 },
      (_, i) => [0x0001, 0x83ff, 0x7c00, 0xfc00, 0x7e01, 0x8000][i % 6] + (i >= 6 ? 0x0400 : 0),
    );
    await writeFile(
      path.join(dir, 'in.safetensors'),
      encodeSafetensors({
        h: { dtype: 'float16', shape: [12], data: bits },
        b: { dtype: 'bool', shape: [12], data: Uint8Array.from({ length: 12 }, (_, i) => i % 2) },
      }),
    );
    const out = path.join(dir, 'out');
    const m = await partitionDataset({
      input: path.join(dir, 'in.safetensors'),
      output: out,
      items: 5,
      format: 'hdf5',
    });
    assert.deepEqual(
      m.columns.map((c) => c.dtype),
      ['float32', 'uint8'],
    );
    const dest = path.join(dir, 'h5py');
    const seen = h5pyRead(out, dest);
    assert.equal(seen.partitions.length, 3);
    assertSame((await npy(path.join(dest, 'h.npy'))).data, halfBitsToFloat32(bits), 'h');
    assertSame(
      (await npy(path.join(dest, 'b.npy'))).data,
      Uint8Array.from({ length: 12 }, (_, i) => i % 2),
      'b',
    );
  },
);

/** Names under a folder, recursively, relative to it. */
async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

test(
  'a cai partition killed while it writes HDF5 leaves complete partitions and no temporary file',
  needsH5py,
  async () => {
    const dir = await tmp('kill');
    const tmpdir = path.join(dir, 'tmp');
    await mkdir(tmpdir);
    const rows = 6000;
    const width = 512;
    const x = Float32Array.from({ length: rows * width }, (_, i) => (i % 9973) / 7);
    await writeFile(
      path.join(dir, 'big.h5'),
      await encodeHdf5([{ name: 'x', tensor: { dtype: 'float32', shape: [rows, width], data: x } }]),
    );
    const out = path.join(dir, 'out');
    const args = [CLI, 'partition', path.join(dir, 'big.h5'), out, '--items', '40', '--format', 'hdf5'];
    const child = spawn(process.execPath, args, {
      env: { ...process.env, TMPDIR: tmpdir, CI: 'true' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const ended = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await new Promise<void>((resolve) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += String(d);
        // Killed once a few partitions are written, while it reads and writes the next ones.
        if ((stderr.match(/\.h5:/g) ?? []).length >= 3) {
          child.kill('SIGKILL');
          resolve();
        }
      });
      child.on('exit', () => resolve());
    });
    await ended;
    assert.equal(child.signalCode, 'SIGKILL', `killed before it finished: ${stderr}`);
    const left = await readdir(out);
    assert.ok(!left.includes('manifest.json'), 'no manifest: the run did not finish');
    const parts = left.filter((n) => /^\d+\.h5$/.test(n)).sort((a, b) => parseInt(a) - parseInt(b));
    assert.ok(parts.length >= 3 && parts.length < rows / 40, `${parts.length} partitions`);
    assert.deepEqual(
      left.filter((n) => !parts.includes(n) && !isTemporary(n)),
      [],
      'only partitions and temporary files',
    );
    // Every partition under its name is complete: h5py reads its rows.
    const check = spawnSync(
      '/usr/bin/python3',
      [
        '-c',
        `
import sys, h5py, numpy as np
for key in sys.argv[2:]:
    k = int(key.split('.')[0]) - 1
    x = h5py.File(sys.argv[1] + '/' + key, 'r')['x'][()]
    want = (np.arange(k * 40 * ${width}, (k + 1) * 40 * ${width}) % 9973 / 7).astype(np.float32).reshape(40, ${width})
    assert (x == want).all(), key
print('ok')
`,
        out,
        ...parts,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(check.status, 0, check.stderr);
    assert.deepEqual(await allFiles(tmpdir), [], 'nothing in os.tmpdir()');

    // The rerun replaces them, and the killed process's temporary file (if it was writing one) is gone.
    const again = spawnSync(process.execPath, [...args, '--overwrite', '--quiet'], {
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: tmpdir },
    });
    assert.equal(again.status, 0, again.stderr);
    const after = await readdir(out);
    assert.equal(after.filter(isTemporary).length, 0);
    assert.equal(after.length, rows / 40 + 1);
    assert.deepEqual(await allFiles(tmpdir), []);
  },
);

test('a cai run worker killed mid-partition over an HDF5 input leaves no temporary file anywhere', async () => {
  const dir = await tmp('run-kill');
  const tmpdir = path.join(dir, 'tmp');
  await mkdir(tmpdir);
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmpdir;
  try {
    const model = path.join(dir, 'trivial.onnx');
    await writeFile(model, buildTrivial({ inputName: 'mags', shape: ['N', 5] }));
    const output = path.join(dir, 'out');
    let killed = false;
    let workerPid: number | undefined;
    const started: string[] = [];
    const spec = parseJobSpec({
      input: TYPES,
      model,
      output,
      datasets: { mags: 'catalog.mags' },
      idColumn: 'catalog.name',
      partitionItems: 8,
      batchSize: 2,
      concurrency: 1,
      threads: 1,
      maxAttempts: 3,
    });
    const summary = await runJob(spec, {
      retryBaseMs: 10,
      onEvent: (e) => {
        if (e.type === 'start') {
          workerPid = e.pid;
          started.push(e.partition.id);
        }
        // The second partition, after its first batch: the worker has the HDF5 file open on its
        // reading thread.
        if (e.type === 'progress' && e.partition === started[1] && e.attempt === 1 && !killed) {
          killed = true;
          if (workerPid) process.kill(workerPid, 'SIGKILL');
        }
      },
    });
    assert.ok(killed, 'the worker was killed');
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.run.retries, 1);
    assert.equal((await allPredictions(output)).length, 40);
    assert.deepEqual(
      (await allFiles(output)).filter((f) => isTemporary(path.basename(f))),
      [],
      'no temporary file in the output',
    );
    assert.deepEqual(await allFiles(tmpdir), [], 'nothing in os.tmpdir()');

    // Had the kill landed while the worker wrote its predictions, its temporary file would be there: the
    // run removes those of processes that are gone (here planted under the killed worker's pid).
    const planted = path.join(output, 'predictions', `.cai-tmp-${workerPid}-0123456789abcdef`);
    await writeFile(planted, 'half a parquet file');
    const again = await runJob(spec, { retryBaseMs: 10 });
    assert.equal(again.partitions.resumed, 5);
    assert.deepEqual(
      (await allFiles(output)).filter((f) => isTemporary(path.basename(f))),
      [],
    );
    assert.equal((await allPredictions(output)).length, 40);
  } finally {
    process.env.TMPDIR = saved;
    await rm(dir, { recursive: true, force: true });
  }
});
