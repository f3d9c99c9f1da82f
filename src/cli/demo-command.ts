import type { Command } from 'commander';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import type { JobSpec } from '../job/spec.js';
import { makeDemo, DEMO_DEFAULTS } from '../demo/demo.js';
import { runJob } from '../run/run.js';
import { Progress } from './progress.js';
import { summaryText } from './summary-text.js';

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidArgumentError(`must be a positive integer, got "${value}"`);
  return n;
}

/**
 * What to try after the demo, on its own files (paths as typed from here), on stderr: `--json` keeps
 * stdout the summary alone.
 * @example process.stderr.write(nextSteps(demo.job));
 */
export function nextSteps(job: JobSpec): string {
  const here = (p: string) => path.relative(process.cwd(), p) || '.';
  const [data, model, out] = [here(job.input), here(job.model), here(job.output)];
  const inputs = Object.entries(job.inputs ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const label = job.label === undefined ? '' : ` --label ${job.label}`;
  return [
    'next:',
    `  cai report ${out}                          # report.html: metrics, figures, a gallery`,
    `  cai predictions ${out} --to all.parquet    # every prediction in one file (or .csv, .jsonl)`,
    `  cai run --input ${data} --model ${model} --output my-out --inputs ${inputs}${label}`,
    '                                   # the same job by hand; `cai run --help` lists every option',
    '',
  ].join('\n');
}

/** `cai demo`: makes the embedded dataset and model, runs the job, prints the summary. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'make a synthetic SDSS-like dataset in CAI partitions and an AstroMAE-shaped model (no network), run the job, print the summary',
    )
    .option('-d, --dir <dir>', 'folder for data/, model/ and out/', 'cai-demo')
    .option('--partitions <n>', 'partitions to make', count, DEMO_DEFAULTS.partitions)
    .option('--items <n>', 'galaxies per partition', count, DEMO_DEFAULTS.itemsPerPartition)
    .option('-c, --concurrency <n>', 'worker processes (default: one per core)', count)
    .option('-t, --threads <n>', 'onnxruntime threads per worker (default: cores / workers)', count)
    .option('--json', 'print the summary as JSON')
    .action(
      async (o: {
        dir: string;
        partitions: number;
        items: number;
        concurrency?: number;
        threads?: number;
        json?: boolean;
      }) => {
        process.stderr.write(
          `making the demo in ${o.dir}: ${o.partitions} partitions x ${o.items} galaxies, AstroMAE-shaped model\n`,
        );
        const demo = await makeDemo({
          dir: o.dir,
          partitions: o.partitions,
          itemsPerPartition: o.items,
          onPartition: (written, total) => process.stderr.write(`  made partition ${written} of ${total}\n`),
        });
        const progress = new Progress();
        const summary = await runJob(
          { ...demo.job, concurrency: o.concurrency, threads: o.threads },
          {
            overwrite: true,
            onPlan: ({ partitions, todo, pending }) => progress.begin(todo, partitions.length, pending),
            onEvent: (e) => progress.event(e),
          },
        ).finally(() => progress.end());
        process.stdout.write(o.json ? `${JSON.stringify(summary, null, 2)}\n` : `${summaryText(summary)}\n`);
        if (summary.status !== 'succeeded') process.exitCode = 1;
        else process.stderr.write(nextSteps(demo.job));
      },
    );
}
