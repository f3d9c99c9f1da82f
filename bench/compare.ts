// `cai run` against the bare onnxruntime loop, layout by layout: the image benchmarks' comparison.
import { describeRuns, interleave, line, ratios } from './print.js';
import { bareLoop, caiRun, type BenchJob, type CaiRunResult, type Throughput } from './runs.js';

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
