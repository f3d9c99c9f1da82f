import { Option, type Command } from 'commander';
import { checkSweepOptions, fastestBatchSizes, type SweepEvent } from '../../experiments/sweep.js';
import type { DataSize } from '../../experiments/sweep-plan.js';
import { parseDataSizes } from '../../experiments/estimate.js';
import { awsJobRunner, type AwsRunnerOptions } from '../../experiments/aws-runner.js';
import { repartitionForSweep } from '../../experiments/repartition.js';
import { CaiError, ErrorCodes } from '../../errors.js';
import { joinUri } from '../../storage/open.js';
import { loadJob } from '../../job/load.js';
import { ENGINES } from '../../job/spec.js';
import type { SweepRow } from '../../experiments/sweep-rows.js';
import { runSweepWithReport, type SweepReportResult } from '../../report/sweep-report.js';
import { num, textTable, type Table } from '../../report/table.js';
import { addJobOptions, jobOverrides } from '../run-command.js';

interface BenchFlags extends Record<string, unknown> {
  input?: string;
  inputDirs?: string;
  partitionSizes?: string;
  partitionsOutput?: string;
  partitions?: string;
  data?: string;
  batchSizes?: string;
  runs: string;
  engine?: string;
  runsOutput?: string;
  warmup?: boolean;
  memory: string;
  report: boolean;
  json?: boolean;
  quiet?: boolean;
  stackName?: string;
  region?: string;
  profile?: string;
}

function list(text: string): string[] {
  return text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
}

function positiveInts(flag: string, text: string): number[] {
  const values = list(text).map(Number);
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1))
    throw new CaiError(
      ErrorCodes.option,
      flag,
      `expects positive integers separated by commas, got "${text}"`,
    );
  return values;
}

/**
 * Data sizes from `--partitions 1,2,all` (first K partitions) and `--data 1GB,2GB,all` (GB, or MB/TB
 * with a unit); undefined when neither flag is given (the sweep then runs all partitions).
 * @example benchDataSizes('4', '1GB,all') // [{ partitions: 4 }, { gb: 1 }, { all: true }]
 */
export function benchDataSizes(partitions?: string, data?: string): DataSize[] | undefined {
  const sizes: DataSize[] = [];
  for (const p of list(partitions ?? ''))
    sizes.push(p === 'all' ? { all: true } : { partitions: positiveInts('--partitions', p)[0] });
  for (const d of list(data ?? '')) {
    if (d === 'all') sizes.push({ all: true });
    else {
      const [gb] = parseDataSizes(d);
      if (!(gb > 0)) throw new CaiError(ErrorCodes.option, '--data', `expects sizes above zero, got "${d}"`);
      sizes.push({ gb });
    }
  }
  return sizes.length ? sizes : undefined;
}

const LIVE_COLUMNS = [
  '#',
  'config',
  'run',
  'items',
  'items/s',
  'map (s)',
  'wall (s)',
  'p95 part (s)',
  'peak RSS (MB)',
];

/** Prints the runs as they finish, as rows of a fixed-width table sized from the plan. */
function liveTable(out: (t: string) => void) {
  let widths: number[] = [];
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ') + '\n';
  return (e: SweepEvent) => {
    if (e.type === 'plan') {
      const label = Math.max(...e.configs.map((c) => c.label.length));
      widths = [String(e.total).length * 2 + 1, label, 3, 7, 7, 7, 7, 7, 7].map((w, i) =>
        Math.max(w, LIVE_COLUMNS[i].length),
      );
      out(
        `${e.configs.length} configurations x ${e.runs} run${e.runs === 1 ? '' : 's'} = ${e.total} jobs, interleaved\n` +
          e.warnings.map((w) => `warning: ${w}\n`).join('') +
          line(LIVE_COLUMNS) +
          widths.map((w) => '-'.repeat(w)).join('  ') +
          '\n',
      );
    } else if (e.type === 'warmup') out(`warm-up run of ${e.planned.label} (not recorded)\n`);
    else if (e.type === 'failed')
      out(
        `${e.index + 1}/${e.total} ${e.failure.label} run ${e.failure.run}: FAILED, ${e.failure.message}\n`,
      );
    else if (e.type === 'row') {
      const r = e.row;
      out(
        line([
          `${e.index + 1}/${e.total}`,
          e.planned.label,
          String(r.run),
          String(r.items),
          num(r.itemsPerSecond),
          r.mapSeconds.toFixed(2),
          r.wallSeconds.toFixed(2),
          r.p95PartitionSeconds.toFixed(2),
          r.peakRssMB.toFixed(0),
        ]),
      );
    }
  };
}

/**
 * The final summary of a sweep: per partition size and data size, mean items/s of each batch size, the
 * fastest batch size, and the one with the least model time per item (seed 002).
 * @example console.log(textTable(fastestTable(result.rows)));
 */
export function fastestTable(rows: readonly SweepRow[]): Table {
  const comparisons = fastestBatchSizes(rows);
  const sizes = [...new Set(rows.map((r) => r.config.batchSize))].sort((a, b) => a - b);
  return {
    title: 'Fastest batch size per data size (mean over runs; items/s over the map wall clock)',
    leftAlign: [],
    columns: [
      'Partition (MB)',
      'Data (GB)',
      'Partitions',
      ...sizes.map((b) => `b${b} items/s`),
      'Fastest batch',
      'Least model ms/item',
    ],
    rows: comparisons.map((c) => {
      const at = (b: number) => c.batches.find((x) => x.batchSize === b);
      const low = at(c.lowestMsPerItem);
      return [
        num(c.partitionMB),
        num(c.dataGB),
        String(c.partitions),
        ...sizes.map((b) => (at(b) ? num(at(b)!.itemsPerSecond) : '')),
        String(c.fastest),
        low ? `b${low.batchSize}: ${num(low.msPerItem, 3)}` : '',
      ];
    }),
  };
}

function finalText(result: SweepReportResult): string {
  const parts = [textTable(fastestTable(result.rows))];
  const f = result.files;
  parts.push(
    [
      `wrote ${f.sweep} (${result.rows.length} runs of ${result.configs.length} configurations), ${f.resultStats}, ${f.bench}`,
      ...(f.report ? [`report ${f.report.html} (${f.report.figures.length} figures under figures/)`] : []),
      ...result.failed.map((x) => `failed: ${x.label} run ${x.run}: ${x.message} (${x.dir})`),
      ...result.warnings.map((w) => `warning: ${w}`),
    ].join('\n'),
  );
  return parts.join('\n\n') + '\n';
}

/**
 * Registers `cai bench [job]`: a sweep over data sizes, batch sizes and partition sizes, repeated, on an
 * engine; writes `sweep.json`, `result_stats.csv`, the five figures and `report.html` into `--output`.
 * `out` receives what it prints; `exit` the exit code when some run failed (1).
 * @example registerBenchCommand(program); await program.parseAsync(['node', 'cai', 'bench', '-i', 'parts', '-m', 'm.onnx', '-o', 'b', '--batch-sizes', '32,512']);
 */
export function registerBenchCommand(
  program: Command,
  out: (text: string) => void = (t) => process.stdout.write(t),
  exit: (code: number) => void = (code) => {
    process.exitCode = code;
  },
  aws: Pick<AwsRunnerOptions, 'connect' | 'pollMs'> = {},
): Command {
  return addJobOptions(
    program
      .command('bench')
      .description(
        "the seeds' experiments in one command: run a job over data sizes x batch sizes x partition sizes, repeated, and report",
      )
      .argument('[job]', 'job file (JSON); flags override its fields'),
  )
    .option(
      '--input-dirs <uris>',
      'folders or s3:// prefixes holding the same data at different partition sizes, comma-separated (instead of --input); each is labelled by its mean partition MB',
    )
    .option(
      '--partition-sizes <sizes>',
      're-partition --input at these sizes with `cai partition` (e.g. 25MB,50MB,75MB,100MB) and sweep over each',
    )
    .option(
      '--partitions-output <uri>',
      'where --partition-sizes writes (default: <output>/partitions); partitions of the same input and size are reused',
    )
    .option('--partitions <list>', 'data sizes as the first K partitions, e.g. 1,2,4,all')
    .option(
      '--data <sizes>',
      'data sizes in GB (or MB/TB), turned into the first partitions that hold them, e.g. 1GB,2GB,12.6GB,all',
    )
    .option('--batch-sizes <list>', 'batch sizes to compare, e.g. 32,64,128,256,512 (default: --batch-size)')
    .option('--runs <n>', 'repeats of every configuration, interleaved', '3')
    .addOption(new Option('--engine <engine>', 'engine that runs each job (default: local)').choices(ENGINES))
    .option('--runs-output <uri>', "where the runs' job outputs go (default: <output>/runs)")
    .option('--stack-name <name>', 'with --engine aws: the deployed CloudFormation stack (default: Cai)')
    .option('--region <region>', 'with --engine aws: AWS region (default: AWS_REGION or your profile)')
    .option('--profile <name>', 'with --engine aws: AWS profile (default: AWS_PROFILE or default)')
    .option('--warmup', 'run the first configuration once, unrecorded, before the timed runs')
    .option('--memory <mb>', 'Lambda memory the report bills local records at, MB', '10240')
    .option('--no-report', 'skip the figures and report.html')
    .option('--json', 'print the sweep (without records) as JSON instead of tables')
    .option('-q, --quiet', 'no table while the runs go')
    .addHelpText(
      'after',
      `
Each configuration x run is a whole job (overwrite) in <output>/runs/<config>-run<k>/, config named
p<partition MB>MB-n<partitions>-b<batch>. Runs are interleaved: run 1 of every configuration, then
run 2..., each repeat starting at another configuration, so drift and a cold cache do not favour one.
Writes bench.json (what ran), sweep.json (one row per run, with its records), result_stats.csv (the
seeds' columns plus wall clock, items/s, p50/p95 partition time, peak RSS; a mean row per
configuration), figures/*.svg|png and report.html. \`cai report <output>\` redraws them.

Partition sizes: --partition-sizes 25MB,50MB re-partitions --input (any source \`cai partition\` reads)
into <output>/partitions/<bytes>B/ once and reuses it in later sweeps; or give --input-dirs folders
already partitioned at different sizes. --engine aws runs every job on the deployed stack (\`cai aws
run\`); give --runs-output an s3:// prefix under the stack's output prefix.

Exit codes: 0 every run succeeded, 1 some run failed (left out of sweep.json), 2 usage error.

Example (the seeds' batch sweep on 1 and 2 GB):
  cai bench --input parts/ --model astromae.onnx --output bench/ --inputs image=0,magnitude=1 \\
    --data 1GB,2GB --batch-sizes 32,64,128,256,512 --runs 3`,
    )
    .action(async (file: string | undefined, flags: BenchFlags) => {
      const runs = positiveInts('--runs', flags.runs)[0];
      const memoryMB = Number(flags.memory);
      if (!(Number.isFinite(memoryMB) && memoryMB > 0))
        throw new CaiError(ErrorCodes.option, '--memory', `expects a number of MB, got "${flags.memory}"`);
      if (flags.input && flags.inputDirs)
        throw new CaiError(
          ErrorCodes.option,
          '--input-dirs',
          'give either --input (one folder) or --input-dirs (one folder per partition size), not both',
        );
      if (flags.partitionSizes && flags.inputDirs)
        throw new CaiError(
          ErrorCodes.option,
          '--partition-sizes',
          're-partitions --input; give either it or --input-dirs (folders already partitioned), not both',
        );
      let inputs = flags.inputDirs ? list(flags.inputDirs) : undefined;
      const overrides = jobOverrides(flags);
      let job = await loadJob(file, {
        ...overrides,
        // The job schema wants one input; with --input-dirs the first stands for it.
        input: overrides.input ?? inputs?.[0],
        engine: flags.engine as (typeof ENGINES)[number] | undefined,
      });
      const dataSizes = benchDataSizes(flags.partitions, flags.data);
      const batchSizes = flags.batchSizes ? positiveInts('--batch-sizes', flags.batchSizes) : undefined;
      const live = flags.quiet || flags.json ? undefined : liveTable(out);
      if (flags.partitionSizes) {
        // Refuse a sweep that cannot run before minutes of re-partitioning, not after.
        checkSweepOptions({ job, output: job.output, dataSizes, batchSizes, runs });
        const sized = await repartitionForSweep({
          job,
          sizes: list(flags.partitionSizes),
          into: flags.partitionsOutput ?? joinUri(job.output, 'partitions'),
          onSize: (size, reused) =>
            flags.quiet || flags.json
              ? undefined
              : out(`${reused ? 'reusing' : 'partitioning'} ${job.input} at ${size}\n`),
        });
        inputs = sized.map((s) => s.input);
        // The partitions are tensor files whatever the source was (images, FITS, Parquet...).
        job = { ...job, input: inputs[0], format: 'tensor' };
      }
      const result = await runSweepWithReport({
        job,
        output: job.output,
        inputs,
        dataSizes,
        batchSizes,
        runs,
        runsOutput: flags.runsOutput,
        warmup: Boolean(flags.warmup),
        bill: { memoryMB },
        report: flags.report,
        onProgress: live,
        runner:
          job.engine === 'aws'
            ? awsJobRunner({
                ...aws,
                session: {
                  stackName: flags.stackName ?? 'Cai',
                  region: flags.region,
                  profile: flags.profile,
                },
              })
            : undefined,
      });
      if (flags.json) {
        const rows = result.rows.map(({ records: _records, ...r }) => r);
        out(
          JSON.stringify(
            { ...result, rows, fastest: fastestBatchSizes(result.rows), files: { ...result.files } },
            null,
            2,
          ) + '\n',
        );
      } else out((live ? '\n' : '') + finalText(result));
      if (result.failed.length > 0) exit(1);
    });
}
