// Issue 4's benchmark: what reading the data users have costs, against raw baselines in the same run.
//   1. images/s of decode + preprocess (imagenet preset) over a folder of JPEGs made with sharp, against
//      reading the same files and against sharp's decode alone (same concurrency);
//   2. `cai partition` MB/s of a big .npy into 25 MB partitions, against copying the same bytes;
//   3. peak RSS of `cai partition` (run as a child under /usr/bin/time -v) at two input sizes, against
//      the CLI doing nothing: memory must not grow with the input.
// Everything is generated in a temporary folder and deleted at the end.
//
//   node dist/bench/sources.js [--images 200] [--npy-gb 2] [--small-gb 0.25] [--size 25MB] [--dir /tmp/x]
//                              [--parity]
// --parity also runs the trivial (mean) model over the big .npy and over its partitions with `cai run`
// and compares every prediction: the "a run over them gives the same predictions".
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { centerCropBox, imageFiles, resolvePreprocess } from '../src/formats/image/index.js';
import { mapSettled } from '../src/formats/partition/map-limit.js';
import { parseByteSize } from '../src/formats/partition/size.js';
import { runJob } from '../src/run/run.js';
import { parseJobSpec, type JobSpec } from '../src/job/spec.js';
import { buildTrivial } from '../src/model/zoo/trivial.js';
import { partitionDataset } from '../src/formats/partition/partition.js';
import { readPredictions } from '../src/summarize/read-predictions.js';
import { FileStore } from '../src/storage/file-store.js';
import { row } from './print.js';

const { values } = parseArgs({
  options: {
    images: { type: 'string', default: '200' },
    'npy-gb': { type: 'string', default: '2' },
    'small-gb': { type: 'string', default: '0.25' },
    size: { type: 'string', default: '25MB' },
    dir: { type: 'string' },
    keep: { type: 'boolean', default: false },
    parity: { type: 'boolean', default: false },
  },
});
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const MB = 2 ** 20;
const dir = values.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'cai-bench-sources-')));
await mkdir(dir, { recursive: true });

/** Best (shortest) seconds of `fn` over `repeats` runs: the machine is shared, noise only adds time. */
async function best(repeats: number, fn: () => Promise<unknown>): Promise<number> {
  let min = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    min = Math.min(min, (performance.now() - t0) / 1000);
  }
  return min;
}

// ---- 1. images ---------------------------------------------------------------------------------------
/** `count` 500 x 375 JPEGs (the size ImageNet's validation photos average), smooth with some noise. */
async function makeJpegs(folder: string, count: number): Promise<string[]> {
  await mkdir(folder, { recursive: true });
  const [w, h] = [500, 375];
  const names: string[] = [];
  for (let k = 0; k < count; k++) {
    const px = Buffer.alloc(w * h * 3);
    let s = k + 1;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const noise = (s >>> 28) - 8;
        const i = (y * w + x) * 3;
        px[i] = Math.max(0, Math.min(255, ((x + k * 7) % 256) + noise));
        px[i + 1] = Math.max(0, Math.min(255, ((y * 2 + k) % 256) + noise));
        px[i + 2] = Math.max(0, Math.min(255, 128 + 100 * Math.sin((x + y + k) / 20) + noise));
      }
    }
    const name = `img${String(k).padStart(5, '0')}.jpg`;
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(path.join(folder, name));
    names.push(name);
  }
  return names;
}

const count = Number(values.images);
const photos = path.join(dir, 'photos');
const names = await makeJpegs(photos, count);
const jpegBytes = (await Promise.all(names.map((n) => readFile(path.join(photos, n))))).reduce(
  (s, b) => s + b.length,
  0,
);
const files = names.map((n) => path.join(photos, n));
// Same concurrency as the image source: 16 reads, 4 decodes (libuv's default pool of 4 threads).
const readOnly = () => mapSettled(files, 16, (f) => readFile(f));
const decodeOnly = () =>
  mapSettled(files, 4, async (f) =>
    sharp(await readFile(f))
      .raw()
      .toBuffer(),
  );
const store = new FileStore(photos);
const job = { preset: 'imagenet' } as JobSpec;
async function caiImages(): Promise<void> {
  const stream = await imageFiles.open(store, { id: '1', key: names[0], bytes: 0, keys: names }, job);
  let items = 0;
  for await (const b of stream.batches(64)) items += b.rows.items;
  if (items !== count) throw new Error(`read ${items} of ${count} images`);
}
/** Best seconds of each function over `repeats` rounds, run in turn so load from others hits each alike. */
async function interleaved(repeats: number, fns: readonly (() => Promise<unknown>)[]): Promise<number[]> {
  const out = fns.map(() => Infinity);
  for (let r = 0; r < repeats; r++) {
    for (const [i, fn] of fns.entries()) out[i] = Math.min(out[i], await best(1, fn));
  }
  return out;
}
const p = resolvePreprocess({ preset: 'imagenet' });
// The libvips steps of the imagenet preset alone (resize to 256 on the shorter side, crop 224).
const libvipsOnly = () =>
  mapSettled(files, 4, async (f) =>
    sharp(await readFile(f))
      .resize(341, 256, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false })
      .extract(centerCropBox(341, 256, p.centerCrop as [number, number]))
      .raw()
      .toBuffer(),
  );
await caiImages(); // warm-up: sharp's first call loads libvips
const [tRead, tDecode, tVips, tCai] = await interleaved(3, [readOnly, decodeOnly, libvipsOnly, caiImages]);
process.stdout.write(
  `Images: ${count} JPEGs of 500x375 (${(jpegBytes / count / 1024).toFixed(0)} KB each), ${os.availableParallelism()} cores, best of 3\n`,
);
row('read the files (16 at a time)', count / tRead, 'img/s');
row('sharp decode to raw RGB only (4 at a time)', count / tDecode, 'img/s');
row('sharp decode + resize 256 + crop 224 (4 at a time)', count / tVips, 'img/s', {
  to: 'decode only',
  value: count / tDecode,
});
row('CAI image source, imagenet preset (to float32)', count / tCai, 'img/s', {
  to: 'decode only',
  value: count / tDecode,
});
process.stdout.write(
  `  CAI / libvips steps alone: ${(tVips / tCai).toFixed(2)}x; per image: decode ${((tDecode / count) * 1000).toFixed(2)} ms, CAI ${((tCai / count) * 1000).toFixed(2)} ms, read ${((tRead / count) * 1000).toFixed(2)} ms\n`,
);
await rm(photos, { recursive: true, force: true });

// ---- 2 and 3. partitioning ---------------------------------------------------------------------------
/** A C-order float32 .npy of SDSS-like rows (5 x 32 x 32 = 20,480 bytes), about `gb` GB, written in chunks. */
async function makeNpy(file: string, gb: number): Promise<number> {
  const rowBytes = 5 * 32 * 32 * 4;
  const rows = Math.floor((gb * 1024 ** 3) / rowBytes);
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, 5, 32, 32), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const lead = Buffer.alloc(10);
  lead.set([0x93, ...Buffer.from('NUMPY'), 1, 0]);
  lead.writeUInt16LE(header.length, 8);
  const fh = await open(file, 'w');
  await fh.write(Buffer.concat([lead, Buffer.from(header, 'latin1')]));
  const chunkRows = 800; // ~16 MB
  const chunk = new Float32Array((chunkRows * rowBytes) / 4);
  for (let done = 0; done < rows; done += chunkRows) {
    const n = Math.min(chunkRows, rows - done);
    for (let i = 0; i < n * 5120; i += 97) chunk[i] = done + i; // rows differ; cheap to make
    await fh.write(new Uint8Array(chunk.buffer, 0, n * rowBytes));
  }
  await fh.close();
  return rows * rowBytes + 10 + header.length;
}

interface Measured {
  readonly seconds: number;
  readonly maxRssMb: number;
  readonly stdout: string;
}

/** Runs the CLI as a child, under /usr/bin/time -v when it is there, for its wall time and peak RSS. */
function cli(args: readonly string[]): Promise<Measured> {
  const timed = existsSync('/usr/bin/time');
  const [cmd, argv] = timed
    ? ['/usr/bin/time', ['-v', process.execPath, CLI, ...args]]
    : [
        process.execPath,
        [
          '--input-type=module',
          '-e',
          // process.argv is then [node, CLI, ...args], as when the CLI runs itself.
          `process.on('exit', () => process.stderr.write('Maximum resident set size (kbytes): ' + process.resourceUsage().maxRSS + '\\n')); await import(${JSON.stringify(CLI)});`,
          CLI,
          ...args,
        ],
      ];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, argv as string[], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const seconds = (performance.now() - t0) / 1000;
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(err);
      if (code !== 0 || !rss) reject(new Error(`cai ${args.join(' ')} exited ${code}: ${err}`));
      else resolve({ seconds, maxRssMb: Number(rss[1]) / 1024, stdout: out });
    });
  });
}

async function streamCopy(from: string, to: string): Promise<void> {
  await pipeline(createReadStream(from, { highWaterMark: 16 * MB }), createWriteStream(to));
}

const size = parseByteSize(values.size as string, '--size');
const big = path.join(dir, 'big.npy');
const small = path.join(dir, 'small.npy');
const bigBytes = await makeNpy(big, Number(values['npy-gb']));
const smallBytes = await makeNpy(small, Number(values['small-gb']));
const copy = path.join(dir, 'copy.npy');
process.stdout.write(
  `\nPartitioning a ${(bigBytes / 1024 ** 3).toFixed(2)} GB .npy (rows of 5x32x32 float32) into ${values.size} partitions\n`,
);
const parts = path.join(dir, 'parts');
const partition =
  (input: string, ...more: string[]) =>
  async (): Promise<Measured> => {
    const m = await cli(['partition', input, parts, '--size', values.size as string, '-q', ...more]);
    await rm(parts, { recursive: true, force: true });
    return m;
  };
const copyKernel = async () => {
  await copyFile(big, copy);
  await rm(copy);
};
const copyStream = async () => {
  await streamCopy(big, copy);
  await rm(copy);
};
// Two rounds, each run in turn, best of each: the disk and the cores are shared with other work.
let tCopyFile = Infinity;
let tStream = Infinity;
let run: Measured | undefined;
let runPt: Measured | undefined;
for (let round = 0; round < 2; round++) {
  tCopyFile = Math.min(tCopyFile, await best(1, copyKernel));
  tStream = Math.min(tStream, await best(1, copyStream));
  const st = await partition(big)();
  if (!run || st.seconds < run.seconds) run = st;
  const pt = await partition(big, '--format', 'pt')();
  if (!runPt || pt.seconds < runPt.seconds) runPt = pt;
}
if (!run || !runPt) throw new Error('no partition run');
const idle = await cli(['--help']);
const runSmall = await partition(small)();
const partitions = Math.ceil(bigBytes / size);
const mbps = (s: number) => bigBytes / MB / s;
row('copyFile (kernel copy) of the same bytes', mbps(tCopyFile), 'MB/s');
row('read + write in 16 MB chunks (Node streams)', mbps(tStream), 'MB/s');
row(`cai partition -> safetensors (~${partitions} parts, CLI)`, mbps(run.seconds), 'MB/s', {
  to: 'stream copy',
  value: mbps(tStream),
});
row('cai partition --format pt (CLI)', mbps(runPt.seconds), 'MB/s', {
  to: 'stream copy',
  value: mbps(tStream),
});
row('cai partition -> safetensors, less CLI start-up', mbps(run.seconds - idle.seconds), 'MB/s', {
  to: 'stream copy',
  value: mbps(tStream),
});
process.stdout.write(`  (CLI wall times include start-up: ${idle.seconds.toFixed(2)} s for --help)\n`);
process.stdout.write(`\nPeak RSS (maximum resident set size of the child process)\n`);
row('cai --help (start-up only)', idle.maxRssMb, 'MB');
row(`cai partition, ${(smallBytes / 1024 ** 3).toFixed(2)} GB input`, runSmall.maxRssMb, 'MB');
row(`cai partition, ${(bigBytes / 1024 ** 3).toFixed(2)} GB input`, run.maxRssMb, 'MB', {
  to: 'the small input',
  value: runSmall.maxRssMb,
});
row(`cai partition --format pt, ${(bigBytes / 1024 ** 3).toFixed(2)} GB input`, runPt.maxRssMb, 'MB');
process.stdout.write(
  `  peak RSS above start-up: ${(run.maxRssMb - idle.maxRssMb).toFixed(0)} MB for ${(bigBytes / MB).toFixed(0)} MB of input (${(size / MB).toFixed(0)} MB partitions)\n`,
);
if (values.parity) {
  // One folder holding only the original, one holding its partitions (and manifest.json).
  const original = path.join(dir, 'original');
  await mkdir(original);
  await rename(big, path.join(original, 'big.npy'));
  const manifest = await partitionDataset({
    input: path.join(original, 'big.npy'),
    output: parts,
    size,
  });
  const model = path.join(dir, 'trivial.onnx');
  await writeFile(model, buildTrivial({ shape: ['N', 5, 32, 32] }));
  const predict = async (input: string, first: (partition: string) => number) => {
    const output = path.join(dir, `out-${path.basename(input)}`);
    const t0 = performance.now();
    const summary = await runJob(
      parseJobSpec({
        input,
        model,
        output,
        inputs: { input: 0 },
        batchSize: 256,
        concurrency: 2,
        threads: 1,
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const out = new Float64Array(summary.items).fill(NaN);
    const store = new FileStore(output);
    for await (const o of store.list('predictions')) {
      for (const r of await readPredictions(await store.get(o.key), 'parquet')) {
        out[first(String(r.partition)) + Number(r.index)] = Number(r.mean);
      }
    }
    return { out, seconds, rss: summary.peak_rss_mb };
  };
  const starts = new Map(manifest.partitions.map((p) => [p.id, p.first]));
  const a = await predict(original, () => 0);
  const b = await predict(parts, (id) => starts.get(id) ?? NaN);
  let same = 0;
  const differ: string[] = [];
  for (let i = 0; i < a.out.length; i++) {
    if (Object.is(a.out[i], b.out[i])) same++;
    else if (differ.length < 5) differ.push(`#${i}: ${a.out[i]} vs ${b.out[i]}`);
  }
  if (differ.length) process.stdout.write(`  differences: ${differ.join(', ')}\n`);
  process.stdout.write(
    `\nParity: cai run (trivial mean model) over the ${(bigBytes / 1024 ** 3).toFixed(2)} GB .npy vs its ${manifest.partitions.length} partitions\n` +
      `  ${same} of ${a.out.length} predictions identical (${a.out.length === b.out.length && same === a.out.length ? 'all' : 'NOT ALL'}); ` +
      `runs took ${a.seconds.toFixed(1)} s and ${b.seconds.toFixed(1)} s, peak worker RSS ${a.rss.toFixed(0)} MB and ${b.rss.toFixed(0)} MB\n`,
  );
}
if (!values.keep) await rm(dir, { recursive: true, force: true });
