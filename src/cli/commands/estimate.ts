import type { Command } from 'commander';
import type { ChildWorkflow } from '../../experiments/cost.js';
import {
  calibrationFromRate,
  calibrationFromRecords,
  type Calibration,
} from '../../experiments/calibration.js';
import {
  DEFAULT_GRID,
  ESTIMATE_DEFAULTS,
  estimateGrid,
  parseDataSizes,
  type EstimateOptions,
} from '../../experiments/estimate.js';
import type { LambdaArch } from '../../experiments/prices.js';
import { CaiError, ErrorCodes } from '../../errors.js';
import { loadOutput } from '../../report/load.js';
import { num, textTable } from '../../report/table.js';
import { choicesTable, projectionTable } from '../../report/tables.js';

interface EstimateFlags {
  calibration?: string;
  itemsPerSecond?: string;
  threads: string;
  bytesPerItem?: string;
  modelLoad: string;
  data: string;
  partition: string;
  memory: string;
  concurrency: string;
  arch: string;
  workflow: string;
  coldStart: string;
  s3Mbps: string;
  speedRatio: string;
  parallelFraction: string;
  all?: boolean;
  json?: boolean;
}

function number(name: string, text: string, min = 0): number {
  const v = Number(text);
  if (!(Number.isFinite(v) && v >= min))
    throw new CaiError(ErrorCodes.option, `--${name}`, `expects a number of at least ${min}, got "${text}"`);
  return v;
}

function list(name: string, text: string): number[] {
  return text.split(',').map((t) => number(name, t.trim().replace(/MB$/i, ''), 1));
}

async function calibrate(f: EstimateFlags): Promise<Calibration> {
  if (f.calibration) {
    const out = await loadOutput(f.calibration);
    const records = out.kind === 'run' ? out.records : out.rows.flatMap((r) => r.records);
    const cal = calibrationFromRecords(records, f.calibration);
    return out.kind === 'sweep'
      ? {
          ...cal,
          warnings: [
            ...cal.warnings,
            'calibrated from every run of a sweep: mixed batch sizes and data sizes',
          ],
        }
      : cal;
  }
  if (f.itemsPerSecond && f.bytesPerItem) {
    return calibrationFromRate({
      itemsPerSecond: number('items-per-second', f.itemsPerSecond),
      threads: number('threads', f.threads, 1),
      bytesPerItem: number('bytes-per-item', f.bytesPerItem),
      modelLoadS: number('model-load', f.modelLoad),
      source: 'command-line rate',
    });
  }
  throw new CaiError(
    ErrorCodes.option,
    '--calibration',
    'give the output folder of a short local run (`cai run ... --concurrency 1`), or --items-per-second and --bytes-per-item',
  );
}

function estimateOptions(f: EstimateFlags): EstimateOptions {
  return {
    ...ESTIMATE_DEFAULTS,
    concurrency: number('concurrency', f.concurrency, 1),
    arch: f.arch as LambdaArch,
    childWorkflow: f.workflow as ChildWorkflow,
    coldStartS: number('cold-start', f.coldStart),
    s3MBps: number('s3-mbps', f.s3Mbps),
    lambdaSpeedRatio: number('speed-ratio', f.speedRatio),
    parallelFraction: number('parallel-fraction', f.parallelFraction),
  };
}

/**
 * Registers `cai estimate`: projects wall time and cost on Lambda for 1 GB to 1 TB from a local calibration,
 * over partition sizes and memory settings, and names the cheapest and the fastest pair.
 * @example registerEstimateCommand(program); await program.parseAsync(['node', 'cai', 'estimate', '--calibration', 'cai-out']);
 */
export function registerEstimateCommand(
  program: Command,
  out: (text: string) => void = (t) => process.stdout.write(t),
): Command {
  const d = ESTIMATE_DEFAULTS;
  return program
    .command('estimate')
    .description('project wall time and cost of a job on Lambda from a short local calibration run')
    .option('--calibration <output>', 'output folder of a local run (best with one worker)')
    .option('--items-per-second <n>', 'instead of --calibration: items/s of one worker')
    .option('--threads <n>', 'threads that worker used', '1')
    .option('--bytes-per-item <n>', 'instead of --calibration: bytes of one item in a partition')
    .option('--model-load <s>', 'seconds to load the model (with --items-per-second)', '0')
    .option('--data <sizes>', 'data sizes, binary units', '1GB,10GB,100GB,1TB')
    .option('--partition <mb>', 'partition sizes, MB', DEFAULT_GRID.partitionMB.join(','))
    .option('--memory <mb>', 'Lambda memory settings, MB', DEFAULT_GRID.memoryMB.join(','))
    .option(
      '--concurrency <n>',
      'concurrent Lambdas (quota 1,000 by default; Distributed Map up to 10,000)',
      String(d.concurrency),
    )
    .option('--arch <arch>', 'x86_64 or arm64', d.arch)
    .option('--workflow <type>', 'Distributed Map child workflows: standard or express', d.childWorkflow)
    .option('--cold-start <s>', 'Lambda init before the model loads, s', String(d.coldStartS))
    .option('--s3-mbps <n>', 'S3 download bandwidth of one Lambda, MB/s', String(d.s3MBps))
    .option(
      '--speed-ratio <x>',
      'speed of a Lambda vCPU relative to a core of this machine',
      String(d.lambdaSpeedRatio),
    )
    .option(
      '--parallel-fraction <p>',
      'Amdahl parallel fraction of the per-item work',
      String(d.parallelFraction),
    )
    .option('--all', 'print every projection, not only those at the largest memory')
    .option('--json', 'print JSON instead of tables')
    .action(async (flags: EstimateFlags) => {
      const cal = await calibrate(flags);
      const options = estimateOptions(flags);
      const grid = {
        dataGB: parseDataSizes(flags.data),
        partitionMB: list('partition', flags.partition),
        memoryMB: list('memory', flags.memory),
      };
      const { projections, choices } = estimateGrid(cal, grid, options);
      if (flags.json) {
        const slim = projections.map(({ bill: _bill, ...p }) => p);
        out(JSON.stringify({ calibration: cal, options, grid, projections: slim, choices }, null, 2) + '\n');
        return;
      }
      const top = Math.max(...grid.memoryMB);
      const shown = flags.all ? projections : projections.filter((p) => p.memoryMB === top);
      const parts = [
        `Calibration (${cal.source}): ${num(1 / cal.secondsPerItem)} items/s with ${cal.threads} thread${cal.threads === 1 ? '' : 's'}, ${num(cal.bytesPerItem)} bytes/item, model load ${num(cal.modelLoadS)} s.`,
        ...cal.warnings.map((w) => `warning: ${w}`),
        `Assumptions: vCPUs = memory / 1769 MB (at most 6), Amdahl p = ${options.parallelFraction}, Lambda vCPU = ${options.lambdaSpeedRatio} x a local core, S3 ${options.s3MBps} MB/s per Lambda, cold start ${options.coldStartS} s + model load, ${options.concurrency} concurrent Lambdas scaling 1,000 per 10 s, ${options.childWorkflow} child workflows, ${options.arch}.`,
        textTable(
          projectionTable(
            shown,
            flags.all ? 'Every projection' : `Projections at ${top} MB (--all for every memory setting)`,
          ),
        ),
        textTable(choicesTable(choices)),
      ];
      out(parts.join('\n\n') + '\n');
    });
}
