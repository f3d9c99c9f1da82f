// Issue 17's benchmark: reading HDF5 and Zarr as published, against the reference readers and against
// CAI's own .npy partitions, all on the same data in the same run.
//   1. source read throughput (items/s, MB/s of decoded rows) of CAI's HDF5 source (its chunk index, the
//      chunks inflated by the machine's libdeflate, and by Node's zlib with system libraries off) against
//      h5py reading the same file in the same slices, and of CAI's Zarr source (zarrita) against
//      zarr-python, interleaved A B A B; the Zarr source three ways: CAI's direct reads with the machine's
//      c-blosc (each chunk decoded into its slab of the batch), the same without the machine's libraries
//      (CAI's Blosc frame reader over lz4-napi, on the decoding threads), and zarrita with numcodecs.js;
//   2. a full `cai run` (trivial model, the mean of each image) over the HDF5 file in row ranges and over
//      the same images as .npy partitions of the same size.
// The data (Galaxy10-like: N images of S x S x 3 uint8, chunks of 16 images, gzip level 1 in HDF5 and
// blosc lz4 in Zarr, plus float64 features) is written by h5py / zarr-python / NumPy into a temporary
// folder, deleted at the end.
//
//   node dist/bench/hdf5-zarr.js [--items 2000] [--size 128] [--batch 256] [--reps 3] [--dir /tmp/x]
//                                [--read-only]   (source reads and memory only, no full runs)
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { SourceKind } from '../src/formats/source.js';
import { hdf5Files, openThreadedHdf5 } from '../src/formats/hdf5/index.js';
import { useCaiCodecs, zarrStores } from '../src/formats/zarr/index.js';
import {
  codecBackends,
  decodeThreads,
  setDecodeThreads,
  useSystemLibraries,
} from '../src/formats/codecs/index.js';
import { runJob } from '../src/run/run.js';
import { parseJobSpec, type JobSpec } from '../src/job/spec.js';
import { buildTrivial } from '../src/model/zoo/trivial.js';
import { FileStore } from '../src/storage/file-store.js';
import { heading, interleave, line, ratios } from './print.js';

const { values } = parseArgs({
  options: {
    items: { type: 'string', default: '2000' },
    size: { type: 'string', default: '128' },
    batch: { type: 'string', default: '256' },
    reps: { type: 'string', default: '3' },
    dir: { type: 'string' },
    'read-only': { type: 'boolean', default: false },
  },
});
const N = Number(values.items);
const S = Number(values.size);
const BATCH = Number(values.batch);
const REPS = Number(values.reps);
const PER_PARTITION = Math.ceil(N / 4);
const MB = 2 ** 20;
const PY = '/usr/bin/python3';
const dir = values.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'cai-bench-hdf5-zarr-')));
await mkdir(dir, { recursive: true });

function python(script: string, ...args: string[]): string {
  const r = spawnSync(PY, ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout.trim();
}

const WRITE = `
import sys, os, h5py, zarr, numpy as np
from numcodecs import Blosc
d, n, s, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0)
y, x = np.mgrid[0:s, 0:s]
imgs = np.empty((n, s, s, 3), np.uint8)
for i in range(n):
    base = (x * (1 + i % 3) + y) * 200 // (2 * s)
    imgs[i] = np.clip(base[:, :, None] + rng.integers(0, 16, (s, s, 3)), 0, 255)
feats = rng.normal(18, 2, (n, 5))
with h5py.File(os.path.join(d, 'galaxy.h5'), 'w') as f:
    f.create_dataset('images', data=imgs, chunks=(16, s, s, 3), compression='gzip', compression_opts=1)
    f.create_dataset('features', data=feats)
    f.create_dataset('ids', data=np.arange(n, dtype=np.int64))
g = zarr.open_group(os.path.join(d, 'galaxy.zarr'), mode='w')
g.create_dataset('images', data=imgs, chunks=(16, s, s, 3), compressor=Blosc(cname='lz4', clevel=5, shuffle=Blosc.SHUFFLE))
g.create_dataset('features', data=feats, chunks=(256, 5))
os.makedirs(os.path.join(d, 'npy'))
for k, a in enumerate(range(0, n, per)):
    np.save(os.path.join(d, 'npy', f'{k + 1}.npy'), imgs[a:a + per])
`;

// The reference readers, timed inside Python (interpreter start-up left out), in the same slices.
const READ = `
import sys, time, h5py, zarr
kind, p, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
if kind == 'h5':
    f = h5py.File(p, 'r'); a = f['images']
else:
    a = zarr.open_group(p, mode='r')['images']
n = a.shape[0]; total = 0
for s in range(0, n, batch):
    total += a[s:s + batch].nbytes
print(time.perf_counter() - t0, total)
`;

function pythonRead(kind: 'h5' | 'zarr', file: string): { seconds: number; bytes: number } {
  const [seconds, bytes] = python(READ, kind, file, String(BATCH)).split(' ').map(Number);
  return { seconds, bytes };
}

// The decoding threads the Zarr source uses by default; each Zarr contender sets its own decoders.
const THREADS = decodeThreads();

async function caiRead(
  kind: SourceKind,
  key: string,
  decoders?: { codecs: boolean; threads: number; system: boolean },
): Promise<{ seconds: number; bytes: number }> {
  if (decoders) {
    useCaiCodecs(decoders.codecs);
    setDecodeThreads(decoders.threads);
    useSystemLibraries(decoders.system);
  }
  const t0 = performance.now();
  const job = { datasets: ['images'] } as unknown as JobSpec;
  const stream = await kind.open(new FileStore(dir), { id: 'b', key, bytes: 0, source: kind.name }, job);
  let bytes = 0;
  for await (const b of stream.batches(BATCH)) {
    bytes += b.rows.columns[0].data.byteLength;
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    // Done with the rows, as a worker is once it has the batch's predictions (Zarr reuses the memory).
    b.release?.();
  }
  return { seconds: (performance.now() - t0) / 1000, bytes };
}

// The HDF5 file read through libhdf5 (h5wasm) alone, without the chunk index: the path before issue 24's
// second round, and what datasets the index does not cover still take.
async function libhdf5Read(key: string): Promise<{ seconds: number; bytes: number }> {
  const t0 = performance.now();
  const f = await openThreadedHdf5(path.join(dir, key), key, { rows: [0, N], direct: false });
  const images = f.arrays.find((a) => a.path === 'images');
  if (!images) throw new Error('no images');
  let bytes = 0;
  for (let s = 0; s < N; s += BATCH) {
    const rows = await f.read(images, s, Math.min(N, s + BATCH));
    bytes += (rows as Uint8Array).byteLength;
  }
  await f.close();
  return { seconds: (performance.now() - t0) / 1000, bytes };
}

// Peak resident memory of this process while the sources read (sampled after every batch).
let peakRss = 0;

// The HDF5 file itself as the input (the .npy run lists its own folder only).
const HDF5_RUN = { format: 'hdf5', datasets: { image: 'images' }, partitionItems: PER_PARTITION };

async function caiRun(input: string, extra: Record<string, unknown>): Promise<number> {
  const out = path.join(dir, `out-${Math.random().toString(36).slice(2)}`);
  const t0 = performance.now();
  const summary = await runJob(
    parseJobSpec({
      input,
      model: path.join(dir, 'trivial.onnx'),
      output: out,
      batchSize: BATCH,
      concurrency: 2,
      threads: 1,
      ...extra,
    }),
    {},
  );
  const seconds = (performance.now() - t0) / 1000;
  if (summary.items !== N) throw new Error(`${input}: ${summary.items} items, expected ${N}`);
  await rm(out, { recursive: true, force: true });
  return seconds;
}

try {
  heading(`HDF5 and Zarr sources: ${N} images of ${S}x${S}x3 uint8, batches of ${BATCH}`);
  process.stderr.write('writing the data with h5py, zarr-python and NumPy...\n');
  python(WRITE, dir, String(N), String(S), String(PER_PARTITION));
  await writeFile(
    path.join(dir, 'trivial.onnx'),
    buildTrivial({ inputName: 'image', dtype: 'uint8', shape: ['N', S, S, 3] }),
  );
  const rssBefore = process.memoryUsage().rss;
  const read = await interleave(REPS, {
    'cai hdf5': () => caiRead(hdf5Files, 'galaxy.h5'),
    'cai hdf5 zlib': async () => {
      useSystemLibraries(false);
      try {
        return await caiRead(hdf5Files, 'galaxy.h5');
      } finally {
        useSystemLibraries(true);
      }
    },
    'libhdf5 only': () => libhdf5Read('galaxy.h5'),
    h5py: async () => pythonRead('h5', path.join(dir, 'galaxy.h5')),
    'cai zarr': () => caiRead(zarrStores, 'galaxy.zarr', { codecs: true, threads: THREADS, system: true }),
    'cai zarr no system': () =>
      caiRead(zarrStores, 'galaxy.zarr', { codecs: true, threads: THREADS, system: false }),
    'cai zarr numcodecs': () =>
      caiRead(zarrStores, 'galaxy.zarr', { codecs: false, threads: 0, system: true }),
    'zarr-python': async () => pythonRead('zarr', path.join(dir, 'galaxy.zarr')),
  });
  const items = (r: { seconds: number }[]) => r.map((x) => N / x.seconds);
  const mbs = (r: { seconds: number; bytes: number }[]) => r.map((x) => x.bytes / MB / x.seconds);
  process.stdout.write('source read (decoded rows), items/s and MB/s:\n');
  const backends = codecBackends();
  process.stdout.write(`  HDF5 inflater: ${backends.deflate}\n`);
  line('CAI HDF5 source (chunk index)', items(read['cai hdf5']), 'items/s');
  line(
    '  CAI HDF5, Node zlib (system libraries off)',
    items(read['cai hdf5 zlib']),
    'items/s',
    ratios(items(read['cai hdf5 zlib']), items(read['cai hdf5'])),
    'of libdeflate',
  );
  line(
    'CAI reader through libhdf5 only',
    items(read['libhdf5 only']),
    'items/s',
    ratios(items(read['libhdf5 only']), items(read.h5py)),
    'of h5py',
  );
  line('h5py, same slices', items(read.h5py), 'items/s');
  line(
    '  CAI HDF5 / h5py',
    mbs(read['cai hdf5']),
    'MB/s',
    ratios(items(read['cai hdf5']), items(read.h5py)),
    'of h5py',
  );
  process.stdout.write(`  Zarr decoders: blosc ${backends.blosc}; lz4 ${backends.lz4}\n`);
  line('CAI Zarr source (into the batch)', items(read['cai zarr']), 'items/s');
  line(
    `  CAI Zarr, no system libraries (lz4-napi, ${THREADS} threads)`,
    items(read['cai zarr no system']),
    'items/s',
    ratios(items(read['cai zarr no system']), items(read['cai zarr'])),
    'of the default',
  );
  line(
    '  CAI Zarr, zarrita + numcodecs.js',
    items(read['cai zarr numcodecs']),
    'items/s',
    ratios(items(read['cai zarr numcodecs']), items(read['cai zarr'])),
    'of the default',
  );
  line('zarr-python, same slices', items(read['zarr-python']), 'items/s');
  line(
    '  CAI Zarr / zarr-python',
    mbs(read['cai zarr']),
    'MB/s',
    ratios(items(read['cai zarr']), items(read['zarr-python'])),
    'of zarr-python',
  );
  const decoded = read['cai hdf5'][0].bytes / MB;
  process.stdout.write(
    `  RSS of this process: ${(rssBefore / MB).toFixed(0)} MB before reading, peak ${(peakRss / MB).toFixed(0)} MB while reading`,
  );
  process.stdout.write(
    ` (for ${decoded.toFixed(0)} MB of images (one batch: ${((decoded * BATCH) / N).toFixed(0)} MB))\n`,
  );
  if (!values['read-only']) {
    const runs = await interleave(REPS, {
      'cai run hdf5': () => caiRun(path.join(dir, 'galaxy.h5'), HDF5_RUN),
      // The workers inherit the environment: Node's zlib there.
      'cai run hdf5 zlib': async () => {
        process.env.CAI_SYSTEM_CODECS = '0';
        try {
          return await caiRun(path.join(dir, 'galaxy.h5'), HDF5_RUN);
        } finally {
          delete process.env.CAI_SYSTEM_CODECS;
        }
      },
      'cai run npy': () => caiRun(path.join(dir, 'npy'), {}),
      'cai run zarr': () =>
        caiRun(dir, { format: 'zarr', datasets: { image: 'images' }, partitionItems: PER_PARTITION }),
    });
    const rate = (xs: number[]) => xs.map((s) => N / s);
    process.stdout.write(`full cai run (trivial model, 2 workers, 4 partitions), items/s:\n`);
    line('.npy partitions', rate(runs['cai run npy']), 'items/s');
    line(
      'HDF5 file, 4 row ranges',
      rate(runs['cai run hdf5']),
      'items/s',
      ratios(rate(runs['cai run hdf5']), rate(runs['cai run npy'])),
      'of .npy',
    );
    line(
      '  HDF5 with Node zlib (system libraries off)',
      rate(runs['cai run hdf5 zlib']),
      'items/s',
      ratios(rate(runs['cai run hdf5 zlib']), rate(runs['cai run npy'])),
      'of .npy',
    );
    line(
      'Zarr store, 4 row ranges',
      rate(runs['cai run zarr']),
      'items/s',
      ratios(rate(runs['cai run zarr']), rate(runs['cai run npy'])),
      'of .npy',
    );
  }
} finally {
  if (!values.dir) await rm(dir, { recursive: true, force: true });
}
