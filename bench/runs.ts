// What the benchmarks run and time as whole processes: `cai run`, and the baselines CAI is measured
// against (a bare onnxruntime loop over tensors already in memory, reading the files raw, the seeds'
// PyTorch loop).
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { JobSpecInput } from '../src/job/spec.js';
import type { JobSummary } from '../src/summarize/summarize.js';
import type { PartitionRecord } from '../src/worker/record.js';

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
