// Shared pieces of the benchmark scripts: datasets in CAI's layout, a bare onnxruntime loop to compare
// against, and printing. Benchmarks print numbers; they are never timed tests.
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeGalaxies } from '../src/demo/galaxies.js';
import { encodePtDataset } from '../src/formats/writers/pt-writer.js';
import { naturalCompare } from '../src/plan/natural-sort.js';

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
  const have = new Set(await readdir(dir));
  for (let p = 1; p <= count; p++) {
    if (have.has(`${p}.pt`)) continue;
    const g = makeGalaxies(items, firstSeed + p);
    const z = { dtype: 'float32' as const, shape: [items], data: new Float32Array(items).fill(0.1) };
    await writeFile(path.join(dir, `${p}.pt`), encodePtDataset([g.images, g.magnitudes, z], String(p)));
  }
}

/** Partition files of a folder in natural order. */
export async function partitionFiles(dir: string, ext = '.pt'): Promise<string[]> {
  return (await readdir(dir))
    .filter((f) => f.endsWith(ext))
    .sort(naturalCompare)
    .map((f) => path.join(dir, f));
}

/** What a bare-loop child prints: items and the seconds its loop took. */
export interface LoopResult {
  readonly items: number;
  readonly seconds: number;
}

const BARE = fileURLToPath(new URL('./bare-ort.js', import.meta.url));

/**
 * Runs the bare onnxruntime loop in `procs` processes, each over its share of the files (tensors decoded
 * into memory before the clock starts), and returns items per second over the slowest process.
 */
export async function bareLoop(opts: {
  model: string;
  files: string[];
  procs: number;
  threads: number;
  batch: number;
}): Promise<number> {
  const shares = Array.from({ length: opts.procs }, (_, i) =>
    opts.files.filter((_, j) => j % opts.procs === i),
  );
  const results = await Promise.all(
    shares.map(
      (files) =>
        new Promise<LoopResult>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [BARE, opts.model, String(opts.threads), String(opts.batch), ...files],
            {
              stdio: ['ignore', 'pipe', 'inherit'],
            },
          );
          let out = '';
          child.stdout.on('data', (d: Buffer) => (out += d.toString()));
          child.on('exit', (code) =>
            code === 0
              ? resolve(JSON.parse(out) as LoopResult)
              : reject(new Error(`bare loop exited ${code}`)),
          );
        }),
    ),
  );
  const items = results.reduce((a, r) => a + r.items, 0);
  return items / Math.max(...results.map((r) => r.seconds));
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

/** A line of a results table. */
export function row(label: string, value: number, unit: string, ratio?: { to: string; value: number }): void {
  const r = ratio ? `   ${(value / ratio.value).toFixed(2)}x ${ratio.to}` : '';
  process.stdout.write(`  ${label.padEnd(44)} ${value.toFixed(1).padStart(9)} ${unit}${r}\n`);
}

/** Reads a file's bytes (used for raw-read baselines). */
export async function readAll(files: string[]): Promise<number> {
  let bytes = 0;
  for (const f of files) bytes += (await readFile(f)).byteLength;
  return bytes;
}
