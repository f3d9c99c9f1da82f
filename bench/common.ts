// Shared pieces of the benchmark scripts: datasets in CAI's layouts (seeds' .pt partitions, a folder of
// JPEGs, the Ray benchmark's Parquet), the baselines CAI is measured against (a bare onnxruntime loop over
// tensors already in memory, reading the files raw, the seeds' PyTorch loop), `cai run` as a whole
// process, interleaved repetitions and printing. Benchmarks print numbers; they are never timed tests.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parquetWriteBuffer } from 'hyparquet-writer';
import sharp from 'sharp';
import { makeGalaxies } from '../src/demo/galaxies.js';
import { Random } from '../src/demo/random.js';
import { encodePtDataset } from '../src/formats/writers/pt-writer.js';
import type { JobSpecInput } from '../src/job/spec.js';
import { naturalCompare } from '../src/plan/natural-sort.js';
import type { JobSummary } from '../src/summarize/summarize.js';
import type { PartitionRecord } from '../src/worker/record.js';

/** Galaxies per partition of the seeds' 25 MB partitions. */
export const SEEDS_25MB_ITEMS = 1278;

/** Writes `count` CAI partitions (`torch.save(TensorDataset(images, magnitudes, redshift))` layout). */
export async function makeCaiPartitions(
  dir: string,
  count: number,
  items = SEEDS_25MB_ITEMS,
  firstSeed = 1,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Partitions written by an older writer (members not 64-byte aligned, so every tensor was copied on
  // load) would measure a cost the current writer and torch.save do not have: write them again.
  const marker = path.join(dir, '.layout');
  const fresh = (await readFile(marker, 'utf8').catch(() => '')) === PT_LAYOUT;
  const have = new Set(fresh ? await readdir(dir) : []);
  for (let p = 1; p <= count; p++) {
    if (have.has(`${p}.pt`)) continue;
    const g = makeGalaxies(items, firstSeed + p);
    const z = { dtype: 'float32' as const, shape: [items], data: new Float32Array(items).fill(0.1) };
    await writeFile(path.join(dir, `${p}.pt`), encodePtDataset([g.images, g.magnitudes, z], String(p)));
  }
  await writeFile(marker, PT_LAYOUT);
}

// What makeCaiPartitions' files are; a folder marked otherwise is written again.
const PT_LAYOUT = 'CAI pt-writer: members 64-byte aligned, as torch.save lays them out\n';

/** Partition files of a folder in natural order. */
export async function partitionFiles(dir: string, ext = '.pt'): Promise<string[]> {
  return (await readdir(dir))
    .filter((f) => f.endsWith(ext))
    .sort(naturalCompare)
    .map((f) => path.join(dir, f));
}

/**
 * HWC 8-bit pixels of a synthetic photo: smooth colour gradients, a few discs and some noise, so JPEG
 * sizes and decode costs are like a photo's rather than a flat image's.
 */
export function syntheticPixels(width: number, height: number, seed: number): Uint8Array {
  const r = new Random(seed);
  const rnd = () => r.uniform();
  const px = new Uint8Array(width * height * 3);
  const base = [rnd() * 255, rnd() * 255, rnd() * 255];
  const grad = [rnd() - 0.5, rnd() - 0.5, rnd() - 0.5];
  const discs = Array.from({ length: 6 }, () => ({
    x: rnd() * width,
    y: rnd() * height,
    r2: (rnd() * Math.min(width, height) * 0.3) ** 2,
    c: [rnd() * 255, rnd() * 255, rnd() * 255],
  }));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      let c = [0, 1, 2].map((k) => base[k] + grad[k] * (x + y) * 0.5);
      for (const d of discs) if ((x - d.x) ** 2 + (y - d.y) ** 2 < d.r2) c = d.c;
      for (let k = 0; k < 3; k++) px[i + k] = Math.max(0, Math.min(255, c[k] + (rnd() - 0.5) * 24));
    }
  }
  return px;
}

/** Writes `count` JPEGs of `width` x `height` (ImageNet's typical 500 x 375) named `img_00001.jpg`... */
export async function makeJpegs(dir: string, count: number, width = 500, height = 375): Promise<void> {
  await mkdir(dir, { recursive: true });
  const have = new Set(await readdir(dir));
  for (let i = 1; i <= count; i++) {
    const name = `img_${String(i).padStart(5, '0')}.jpg`;
    if (have.has(name)) continue;
    const jpeg = await sharp(syntheticPixels(width, height, i), { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
    await writeFile(path.join(dir, name), jpeg);
  }
}

/**
 * Writes `files` Parquet files in the Ray batch-inference benchmark's layout: one column `image`, a
 * LIST<UINT_8> of a `side` x `side` x 3 HWC image per row, `rows` rows a file (the benchmark has ~1k).
 */
export async function makeRayParquet(dir: string, files: number, rows: number, side = 256): Promise<void> {
  await mkdir(dir, { recursive: true });
  const have = new Set(await readdir(dir));
  for (let f = 1; f <= files; f++) {
    const name = `part-${String(f).padStart(3, '0')}.parquet`;
    if (have.has(name)) continue;
    const images = Array.from({ length: rows }, (_, r) =>
      Array.from(syntheticPixels(side, side, f * 10000 + r)),
    );
    const buffer = parquetWriteBuffer({
      columnData: [{ name: 'image', data: images }],
      schema: [
        { name: 'root', num_children: 1 },
        { name: 'image', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'INT32', repetition_type: 'OPTIONAL', converted_type: 'UINT_8' },
      ],
      rowGroupSize: Math.min(rows, 64),
      statistics: false,
    });
    await writeFile(path.join(dir, name), new Uint8Array(buffer));
  }
}

/** Writes a model built by the zoo once, and reuses the file afterwards. */
export async function cachedModel(file: string, build: () => Uint8Array): Promise<string> {
  const exists = await stat(file).then(
    (s) => s.size > 0,
    () => false,
  );
  if (!exists) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, build());
  }
  return file;
}

/** Total bytes of a set of files. */
export async function totalBytes(files: readonly string[]): Promise<number> {
  let bytes = 0;
  for (const f of files) bytes += (await stat(f)).size;
  return bytes;
}

/** The input part of a job the benchmarks run, shared by `cai run` and the bare loop. */
export type BenchJob = Pick<
  JobSpecInput,
  'input' | 'inputs' | 'format' | 'preset' | 'imageShape' | 'imageColumn' | 'partitionItems' | 'fileLimit'
>;

/** What a measured child reports: items (or bytes) and the seconds of its timed loop. */
export interface LoopResult {
  readonly items: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly peakRssMb: number;
}

/** A benchmark child's arguments, passed as one JSON string. */
export interface BareLoopConfig {
  readonly model: string;
  readonly job: BenchJob;
  readonly threads: number;
  readonly batch: number;
  /** This process's share: partitions `j` with `j % of === index`. */
  readonly index: number;
  readonly of: number;
}

function runChild(script: string, args: string[]): Promise<LoopResult> {
  return new Promise<LoopResult>((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as LoopResult) : reject(new Error(`${script} exited ${code}`)),
    );
  });
}

/** A baseline's figure over several processes, each timing its own share. */
export interface Throughput {
  readonly items: number;
  readonly bytes: number;
  /** Seconds of the slowest process. */
  readonly seconds: number;
  readonly itemsPerSecond: number;
  readonly mbPerSecond: number;
  readonly peakRssMb: number;
}

function combine(results: readonly LoopResult[]): Throughput {
  const items = results.reduce((a, r) => a + r.items, 0);
  const bytes = results.reduce((a, r) => a + r.bytes, 0);
  const seconds = Math.max(...results.map((r) => r.seconds));
  return {
    items,
    bytes,
    seconds,
    itemsPerSecond: items / seconds,
    mbPerSecond: bytes / 1e6 / seconds,
    peakRssMb: Math.max(...results.map((r) => r.peakRssMb)),
  };
}

const BARE = fileURLToPath(new URL('./bare-ort.js', import.meta.url));
const RAW = fileURLToPath(new URL('./raw-read.js', import.meta.url));

/**
 * The bare onnxruntime loop CAI is measured against, in `procs` processes of `threads` intra-op threads:
 * each plans the input as CAI does, decodes and preprocesses its share of the partitions into model
 * batches in memory before its clock starts, then only runs the model batch after batch.
 */
export async function bareLoop(opts: {
  model: string;
  job: BenchJob;
  procs: number;
  threads: number;
  batch: number;
}): Promise<Throughput> {
  const results = await Promise.all(
    Array.from({ length: opts.procs }, (_, index) => {
      const config: BareLoopConfig = {
        model: opts.model,
        job: opts.job,
        threads: opts.threads,
        batch: opts.batch,
        index,
        of: opts.procs,
      };
      return runChild(BARE, [JSON.stringify(config)]);
    }),
  );
  return combine(results);
}

/**
 * Reads the files raw (whole, into memory, one after another) in `procs` processes, each its share:
 * the ceiling no pipeline over these files can pass.
 */
export async function rawRead(files: readonly string[], procs: number): Promise<Throughput> {
  const results = await Promise.all(
    Array.from({ length: procs }, (_, i) =>
      runChild(
        RAW,
        files.filter((_, j) => j % procs === i),
      ),
    ),
  );
  return combine(results);
}

/** What one `cai run` cost, seen from outside the process and from its summary. */
export interface CaiRunResult {
  /** Wall seconds of the whole `cai run` process, from spawn to exit. */
  readonly wall: number;
  readonly items: number;
  readonly bytes: number;
  readonly itemsPerSecond: number;
  readonly mbPerSecond: number;
  /** Seconds from launching `cai run` to the first worker process starting, and to its first prediction. */
  readonly firstWorkerS: number;
  readonly firstPredictionS: number;
  /**
   * Items per second once running: per worker, items after its first batch over the time from its first
   * prediction to its last record, summed over workers. Start-up (CLI, planning, worker and model load,
   * the first batch) is left out; reading, decoding, inference and writing are all in.
   */
  readonly steadyItemsPerSecond: number;
  readonly summary: JobSummary;
}

function steadyRate(records: readonly PartitionRecord[]): number {
  const workers = new Map<number, PartitionRecord[]>();
  for (const r of records) workers.set(r.worker.pid, [...(workers.get(r.worker.pid) ?? []), r]);
  let rate = 0;
  for (const rs of workers.values()) {
    const cold = rs.find((r) => r.first_prediction_at !== undefined);
    if (!cold?.first_prediction_at) continue;
    const items = rs.reduce((a, r) => a + r.items, 0) - Math.min(cold.batch_size, cold.items);
    const span =
      (Math.max(...rs.map((r) => Date.parse(r.finished_at))) - Date.parse(cold.first_prediction_at)) / 1000;
    if (span > 0) rate += items / span;
  }
  return rate;
}

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/**
 * Runs `cai run <job.json>` as its own process into a fresh output folder and returns its whole-process
 * wall time and summary (the folder is removed afterwards).
 */
export async function caiRun(opts: {
  model: string;
  job: BenchJob;
  concurrency: number;
  threads: number;
  batch: number | 'auto';
  /** Extra environment for the `cai run` process (and so its workers). */
  env?: Readonly<Record<string, string>>;
}): Promise<CaiRunResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-bench-run-'));
  const output = path.join(dir, 'out');
  const spec: JobSpecInput = {
    ...opts.job,
    model: opts.model,
    output,
    batchSize: opts.batch,
    concurrency: opts.concurrency,
    threads: opts.threads,
  };
  const jobFile = path.join(dir, 'job.json');
  await writeFile(jobFile, JSON.stringify(spec));
  const t0 = performance.now();
  const launched = Date.now();
  let log = '';
  const code = await new Promise<number | null>((resolve) => {
    const child = spawn(process.execPath, [CLI, 'run', jobFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...opts.env },
    });
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    child.on('exit', (c) => resolve(c));
  });
  const wall = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`cai run exited ${code} (job ${JSON.stringify(spec)}):\n${log}`);
  const summary = JSON.parse(await readFile(path.join(output, 'summary.json'), 'utf8')) as JobSummary;
  const records = JSON.parse(
    await readFile(path.join(output, 'combined_data.json'), 'utf8'),
  ) as PartitionRecord[];
  const since = (iso: (string | undefined)[]) =>
    Math.min(
      ...iso.filter((x): x is string => x !== undefined).map((x) => (Date.parse(x) - launched) / 1000),
    );
  await rm(dir, { recursive: true, force: true });
  return {
    wall,
    items: summary.items,
    bytes: summary.bytes,
    itemsPerSecond: summary.items / wall,
    mbPerSecond: summary.bytes / 1e6 / wall,
    firstWorkerS: since(records.map((r) => r.worker_started_at)),
    firstPredictionS: since(records.map((r) => r.first_prediction_at)),
    steadyItemsPerSecond: steadyRate(records),
    summary,
  };
}

/** Whether Debian's python3 has torch and onnx, for the seeds' PyTorch loop. */
export function hasTorch(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('/usr/bin/python3', ['-c', 'import torch, onnx'], { stdio: 'ignore' });
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
}

/** Runs the seeds' PyTorch loop (scripts/fixtures/onnx_torch.py) if Debian's torch is installed. */
export async function pytorchLoop(opts: {
  model: string;
  input: string;
  threads: number;
  batch: number;
  out: string;
}): Promise<number | undefined> {
  const script = fileURLToPath(new URL('../../scripts/fixtures/onnx_torch.py', import.meta.url));
  return new Promise((resolve) => {
    const child = spawn(
      '/usr/bin/python3',
      [
        script,
        '--model',
        opts.model,
        '--input',
        opts.input,
        '--batch-size',
        String(opts.batch),
        '--threads',
        String(opts.threads),
        '--out',
        opts.out,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(undefined));
    child.on('exit', (code) => {
      // The script's last line is a JSON summary with the end-to-end items per second.
      const m = /"items_per_s":\s*([\d.]+)[^\n]*\n?$/.exec(out.trim());
      resolve(code === 0 && m ? Number(m[1]) : undefined);
    });
  });
}

/** The median of some numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Runs each named measurement once per repetition, in turn (A B A B ...), so a machine whose speed
 * drifts (other jobs on shared cores) affects every contender alike. Returns each one's samples.
 */
export async function interleave<T>(
  repetitions: number,
  contenders: Readonly<Record<string, () => Promise<T>>>,
  onSample?: (name: string, rep: number, value: T) => void,
): Promise<Record<string, T[]>> {
  const samples: Record<string, T[]> = Object.fromEntries(Object.keys(contenders).map((k) => [k, []]));
  for (let rep = 0; rep < repetitions; rep++) {
    for (const [name, run] of Object.entries(contenders)) {
      const t0 = performance.now();
      const value = await run();
      // Progress on stderr, so a long benchmark shows it is alive; the results go to stdout.
      process.stderr.write(
        `  [${rep + 1}/${repetitions}] ${name}: ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
      );
      samples[name].push(value);
      onSample?.(name, rep, value);
    }
  }
  return samples;
}

/** Pairwise ratios a[i] / b[i] of two interleaved series: their median is the ratio to quote. */
export function ratios(a: readonly number[], b: readonly number[]): number[] {
  return a.map((x, i) => x / b[i]);
}

/** `median [min-max]` of a series. */
export function spread(xs: readonly number[], digits = 1): string {
  return `${median(xs).toFixed(digits)} [${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]`;
}

/** A line of a results table: label, the median (with its range) and, optionally, the median ratio. */
export function line(
  label: string,
  xs: readonly number[],
  unit: string,
  ratio?: readonly number[],
  to = '',
): void {
  const r = ratio ? `   ratio ${spread(ratio, 2)}x ${to}` : '';
  process.stdout.write(`  ${label.padEnd(50)} ${spread(xs).padStart(22)} ${unit}${r}\n`);
}

/** A line of a results table for a single number. */
export function row(label: string, value: number, unit: string, ratio?: { to: string; value: number }): void {
  const r = ratio ? `   ${(value / ratio.value).toFixed(2)}x ${ratio.to}` : '';
  process.stdout.write(`  ${label.padEnd(50)} ${value.toFixed(1).padStart(22)} ${unit}${r}\n`);
}

/** Prints a heading with the machine, so every output says where it was measured. */
export function heading(title: string): void {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  process.stdout.write(
    `${title}\n  machine: ${os.availableParallelism()} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}\n`,
  );
}

/** Prints what the summaries of some `cai run`s say: whole-process and map time, cold start, memory. */
export function describeRuns(
  label: string,
  runs: readonly CaiRunResult[],
  bare?: readonly Throughput[],
): void {
  const m = (f: (r: CaiRunResult) => number, digits = 2) => median(runs.map(f)).toFixed(digits);
  const bareRss = bare ? ` (bare loop ${median(bare.map((b) => b.peakRssMb)).toFixed(0)} MB)` : '';
  process.stdout.write(
    `  cai ${label}: whole process ${m((r) => r.wall)} s, map ${m((r) => r.summary.run.map_seconds)} s, ` +
      `cold start: first worker up ${m((r) => r.firstWorkerS)} s after launch, model load ${m((r) => r.summary.cold_start.mean_model_load_s)} s, ` +
      `first prediction ${m((r) => r.summary.cold_start.mean_time_to_first_prediction_s)} s after worker start = ${m((r) => r.firstPredictionS)} s after launch, ` +
      `stages read ${m((r) => r.summary.stage_seconds.read)} decode ${m((r) => r.summary.stage_seconds.decode)} inference ${m((r) => r.summary.stage_seconds.inference)} write ${m((r) => r.summary.stage_seconds.write)} s, ` +
      `peak RSS/worker ${m((r) => r.summary.peak_rss_mb, 0)} MB${bareRss}\n`,
  );
}

/** A workers x threads layout. */
export interface Layout {
  readonly workers: number;
  readonly threads: number;
}

/** The results of {@link compareToBare}, per layout, in run order. */
export interface Comparison {
  readonly layout: Layout;
  readonly bare: Throughput[];
  readonly cai: CaiRunResult[];
  /** Runs with inference on the worker's JS thread, when asked for. */
  readonly caiMain: CaiRunResult[];
}

/**
 * `cai run` end to end against the bare onnxruntime loop at each layout (same processes, threads and
 * batch size), interleaved over `reps` repetitions; prints items/s with ratios and returns the samples.
 */
export async function compareToBare(opts: {
  model: string;
  job: BenchJob;
  batch: number;
  layouts: readonly Layout[];
  reps: number;
  /** Also run cai with inference forced onto the worker's JS thread or its own (CAI_INFERENCE_THREAD). */
  forceThread?: 'main' | 'separate';
}): Promise<Comparison[]> {
  const out: Comparison[] = opts.layouts.map((layout) => ({ layout, bare: [], cai: [], caiMain: [] }));
  const contenders: Record<string, () => Promise<void>> = {};
  for (const c of out) {
    const { workers, threads } = c.layout;
    contenders[`bare ${workers}x${threads}`] = async () =>
      void c.bare.push(
        await bareLoop({ model: opts.model, job: opts.job, procs: workers, threads, batch: opts.batch }),
      );
    contenders[`cai ${workers}x${threads}`] = async () =>
      void c.cai.push(
        await caiRun({ model: opts.model, job: opts.job, concurrency: workers, threads, batch: opts.batch }),
      );
    const forced = opts.forceThread;
    if (forced) {
      contenders[`cai ${workers}x${threads} ${forced}-thread inference`] = async () =>
        void c.caiMain.push(
          await caiRun({
            model: opts.model,
            job: opts.job,
            concurrency: workers,
            threads,
            batch: opts.batch,
            env: { CAI_INFERENCE_THREAD: forced },
          }),
        );
    }
  }
  await interleave(opts.reps, contenders);
  const ips = (xs: readonly { itemsPerSecond: number }[]) => xs.map((x) => x.itemsPerSecond);
  const first = ips(out[0].bare);
  for (const c of out) {
    const { workers, threads } = c.layout;
    const bare = ips(c.bare);
    const cai = ips(c.cai);
    const name = `${workers}x${threads}`;
    line(
      `bare onnxruntime loop, ${workers} process(es) x ${threads} thread(s)`,
      bare,
      'items/s',
      c === out[0] ? undefined : ratios(bare, first),
      c === out[0] ? '' : `vs bare ${out[0].layout.workers}x${out[0].layout.threads}`,
    );
    line(
      `cai run end to end, ${workers} worker(s) x ${threads} thread(s)`,
      cai,
      'items/s',
      ratios(cai, bare),
      `vs bare ${name}`,
    );
    const map = c.cai.map((r) => r.summary.items / r.summary.run.map_seconds);
    line(
      `  cai map stage only (workers started to last record)`,
      map,
      'items/s',
      ratios(map, bare),
      `vs bare ${name}`,
    );
    if (c.caiMain.length) {
      const main = ips(c.caiMain);
      line(
        `cai run, inference forced onto ${opts.forceThread === 'main' ? "the worker's JS thread" : 'its own thread'}`,
        main,
        'items/s',
        ratios(main, bare),
        `vs bare ${name}`,
      );
      line(
        `  default placement vs forced ${opts.forceThread} thread`,
        cai,
        'items/s',
        ratios(cai, main),
        `default / ${opts.forceThread} thread`,
      );
    }
    const steady = c.cai.map((r) => r.steadyItemsPerSecond);
    line(
      `  cai steady state (after each worker's first batch)`,
      steady,
      'items/s',
      ratios(steady, bare),
      `vs bare ${name}`,
    );
  }
  for (const c of out) {
    describeRuns(`${c.layout.workers}x${c.layout.threads}`, c.cai, c.bare);
    if (c.caiMain.length)
      describeRuns(
        `${c.layout.workers}x${c.layout.threads} (forced ${opts.forceThread}-thread inference)`,
        c.caiMain,
      );
  }
  return out;
}
