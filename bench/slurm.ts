// The same job on the local engine and on a one-node Slurm cluster started here (2 CPUs, as the local
// pool's 2 workers), interleaved: wall-time ratios, the time from submission to the first record, and
// the scheduler's cost per array task, from which docs/slurm.md derives its partitions-per-task rule.
// Needs root and slurm-wlm + munge (like the tests).
//
//   node dist/bench/slurm.js [--partitions 8] [--items 60] [--reps 2]
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { makeDemo } from '../src/demo/demo.js';
import { resolveSlurmOptions } from '../src/job/slurm-options.js';
import type { SlurmState } from '../src/engines/slurm/rounds.js';
import { runJob } from '../src/run/run.js';
import type { JobSpec } from '../src/job/spec.js';
import type { PartitionRecord } from '../src/worker/record.js';
import { slurmUnavailable, startSlurmCluster } from '../test/helpers/slurm-cluster.js';

const { values } = parseArgs({
  options: {
    partitions: { type: 'string', default: '8' },
    items: { type: 'string', default: '60' },
    reps: { type: 'string', default: '2' },
  },
});
const P = Number(values.partitions);
const reps = Number(values.reps);
const why = await slurmUnavailable();
if (why) {
  process.stderr.write(`bench/slurm: ${why}\n`);
  process.exit(1);
}

const work = await mkdtemp(path.join(os.tmpdir(), 'cai-bench-slurm-'));
const cluster = await startSlurmCluster({ cpus: 2, nodes: 1 });
interface Run {
  wall: number;
  firstRecord: number;
  partitionSeconds: number;
  tasks: number;
}
try {
  const demo = await makeDemo({
    dir: path.join(work, 'demo'),
    partitions: P,
    itemsPerPartition: Number(values.items),
  });
  const variants: { name: string; spec: Partial<JobSpec> }[] = [
    { name: 'local (2 workers)', spec: { engine: 'local', concurrency: 2, threads: 1 } },
    ...[1, P / 2].map((ppt) => ({
      name: `slurm, ${ppt} partition(s)/task`,
      spec: {
        engine: 'slurm' as const,
        slurm: resolveSlurmOptions({ throttle: 2, partitionsPerTask: ppt, pollSeconds: 0.25 }),
      },
    })),
  ];
  const runs = new Map<string, Run[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < reps; r++) {
    for (const v of variants) {
      const output = path.join(work, `out-${r}-${variants.indexOf(v)}`);
      const t0 = performance.now();
      const startedAt = Date.now();
      const summary = await runJob({ ...demo.job, output, ...v.spec }, {});
      const wall = (performance.now() - t0) / 1000;
      if (summary.status !== 'succeeded') throw new Error(`${v.name}: ${JSON.stringify(summary.failures)}`);
      const records = JSON.parse(
        await readFile(path.join(output, 'combined_data.json'), 'utf8'),
      ) as PartitionRecord[];
      // From the moment the work was handed over (the array submitted, or the job started locally).
      let from = startedAt;
      let tasks = 2;
      if (v.spec.engine === 'slurm') {
        const state = JSON.parse(
          await readFile(path.join(output, 'slurm', 'state.json'), 'utf8'),
        ) as SlurmState;
        from = Date.parse(state.rounds[0].submittedAt);
        tasks = state.rounds[0].tasks;
      }
      const firstWritten = Math.min(...records.map((x) => Date.parse(x.finished_at)));
      runs.get(v.name)?.push({
        wall,
        firstRecord: (firstWritten - from) / 1000,
        partitionSeconds: records.reduce((a, x) => a + x.timings.total, 0) / records.length,
        tasks,
      });
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median((runs.get(variants[0].name) ?? []).map((x) => x.wall));
  process.stdout.write(`${P} partitions x ${values.items} items, ${reps} interleaved repetitions, medians\n`);
  for (const v of variants) {
    const rs = runs.get(v.name) ?? [];
    process.stdout.write(
      `${v.name.padEnd(28)} wall ${median(rs.map((x) => x.wall)).toFixed(1)} s (x${(median(rs.map((x) => x.wall)) / base).toFixed(2)} local)` +
        ` | hand-over -> first record ${median(rs.map((x) => x.firstRecord)).toFixed(1)} s` +
        ` | ${rs[0]?.tasks} tasks | partition ${median(rs.map((x) => x.partitionSeconds)).toFixed(2)} s\n`,
    );
  }
  // Each task more costs its fixed overhead on one of the throttle's 2 slots.
  const [, many, few] = variants.map((v) => runs.get(v.name) ?? []);
  const perTask =
    ((median(many.map((x) => x.wall)) - median(few.map((x) => x.wall))) * 2) / (many[0].tasks - few[0].tasks);
  process.stdout.write(
    `scheduler + start-up cost per array task: ${perTask.toFixed(2)} s (${(perTask / median(many.map((x) => x.partitionSeconds))).toFixed(1)} partitions' worth)\n`,
  );
} finally {
  await cluster.stop();
  await rm(work, { recursive: true, force: true });
}
