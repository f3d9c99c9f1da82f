// Memory on long runs: `cai run` over many small partitions on the local engine (5,000 by default), with
// the resident set of every worker process (and of the coordinating `cai run` process) sampled from
// /proc while the run goes on, against the partitions done so far (the records in results/). Prints
// each process's RSS at the start and the end of the steady part (after the first 5% of partitions,
// once the model is loaded and the buffers are allocated) and the least-squares slope of RSS against
// partitions done, in MB per 1,000 partitions: flat memory is a slope within the sampling noise.
//
//   node dist/bench/soak.js [--partitions 5000] [--items 8] [--workers 2] [--every-ms 100]
//
// The default of 8 items (20 KB each) per partition keeps the data at 0.8 GB: what is measured is memory
// per partition (records, buffers, handles), which does not need large partitions.
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { buildTrivial } from '../src/model/zoo/trivial.js';
import type { JobSpecInput } from '../src/job/spec.js';
import type { JobSummary } from '../src/summarize/summarize.js';
import { cachedModel, makeCaiPartitions } from './datasets.js';
import { heading } from './print.js';

const { values } = parseArgs({
  options: {
    partitions: { type: 'string', default: '5000' },
    items: { type: 'string', default: '8' },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    'every-ms': { type: 'string', default: '100' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-soak') },
  },
});
const partitions = Number(values.partitions);
const items = Number(values.items);
const workers = Number(values.workers);
const everyMs = Number(values['every-ms']);
const dir = values.dir as string;
const data = path.join(dir, `data-${items}`);
const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

process.stderr.write(`making ${partitions} partitions of ${items} items in ${data}...\n`);
await makeCaiPartitions(data, partitions, items);
const model = await cachedModel(path.join(dir, 'trivial-image.onnx'), () =>
  buildTrivial({ inputName: 'image', shape: ['N', 5, 32, 32] }),
);

/** Resident set of a process in MB, from /proc (undefined once it is gone). */
async function rssMb(pid: number): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => undefined);
  const kb = status && /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  return kb ? Number(kb) / 1024 : undefined;
}

/** The live children of a process (the local engine's workers are direct children of `cai run`). */
async function childrenOf(pid: number): Promise<number[]> {
  const kids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // Fields after the command name (which may hold spaces, inside parentheses): state, ppid, ...
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) kids.push(Number(entry));
  }
  return kids;
}

/** Least-squares slope of y against x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

heading(
  `Soak: trivial model, ${partitions} .pt partitions x ${items} items, ${workers} worker(s) x 1 thread, RSS sampled every ${everyMs} ms`,
);
const work = await mkdtemp(path.join(os.tmpdir(), 'cai-soak-run-'));
const output = path.join(work, 'out');
const spec: JobSpecInput = {
  input: data,
  model,
  output,
  fileLimit: partitions,
  inputs: { image: 0 },
  batchSize: items,
  concurrency: workers,
  threads: 1,
};
const jobFile = path.join(work, 'job.json');
await writeFile(jobFile, JSON.stringify(spec));
const t0 = performance.now();
const child = spawn(process.execPath, [CLI, 'run', jobFile, '--quiet'], {
  stdio: ['ignore', 'ignore', 'pipe'],
  env: { ...process.env, ORT_DISABLE_TELEMETRY: '1' },
});
let log = '';
child.stderr.on('data', (d: Buffer) => (log += d.toString()));
const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
let running = true;
void exited.then(() => (running = false));

/** Samples per process: partitions done when sampled, and its RSS. */
const samples = new Map<number, { done: number; rss: number }[]>();
const coordinator = child.pid ?? 0;
while (running) {
  const done = (await readdir(path.join(output, 'results')).catch(() => [] as string[])).length;
  for (const pid of [coordinator, ...(await childrenOf(coordinator))]) {
    const rss = await rssMb(pid);
    if (rss !== undefined) samples.set(pid, [...(samples.get(pid) ?? []), { done, rss }]);
  }
  await new Promise((r) => setTimeout(r, everyMs));
}
const code = await exited;
const wall = (performance.now() - t0) / 1000;
if (code !== 0) throw new Error(`cai run exited ${code}:\n${log}`);
const summary = JSON.parse(await readFile(path.join(output, 'summary.json'), 'utf8')) as JobSummary;
await rm(work, { recursive: true, force: true });

process.stdout.write(
  `  ${summary.partitions.completed} partitions in ${wall.toFixed(0)} s (${(summary.partitions.completed / wall).toFixed(1)} partitions/s)\n`,
);
const warm = Math.round(partitions * 0.05);
for (const [pid, all] of samples) {
  const steady = all.filter((s) => s.done >= warm);
  if (steady.length < 3) continue;
  const who = pid === coordinator ? 'cai run (coordinator)' : `worker ${pid}`;
  const first = steady[0];
  const last = steady[steady.length - 1];
  const perK =
    slope(
      steady.map((s) => s.done),
      steady.map((s) => s.rss),
    ) * 1000;
  const rss = steady.map((s) => s.rss);
  // The second half alone: a heap still settling inflates the whole run's slope; a leak does not settle.
  const late = steady.filter((s) => s.done >= (warm + partitions) / 2);
  const lateK =
    late.length >= 3
      ? slope(
          late.map((s) => s.done),
          late.map((s) => s.rss),
        ) * 1000
      : NaN;
  process.stdout.write(
    `  ${who.padEnd(24)} RSS ${first.rss.toFixed(1)} MB at partition ${first.done} -> ${last.rss.toFixed(1)} MB at ${last.done} (min ${Math.min(...rss).toFixed(1)}, max ${Math.max(...rss).toFixed(1)}; ${steady.length} samples); slope ${perK.toFixed(2)} MB per 1,000 partitions (${((perK / first.rss) * 100).toFixed(2)}% of start), second half ${lateK.toFixed(2)}; end/start ${(last.rss / first.rss).toFixed(3)}x\n`,
  );
}
