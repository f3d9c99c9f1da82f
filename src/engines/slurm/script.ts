// The batch script of one round: what runs on the user's allocation, written to the output beside its
// task manifest and printed by `cai slurm run --dry-run`, so it can be read before anything is submitted.
import { fileURLToPath } from 'node:url';
import type { ResolvedJob } from '../../job/spec.js';
import type { Attempt } from '../map.js';
import type { SlurmOptions } from '../../job/slurm-options.js';
import { SLURM_KEYS } from '../../storage/output-layout.js';

/** What one round's array tasks run: task `i` runs `tasks[i]` in order, in one process. */
export interface TaskManifest {
  readonly version: 1;
  readonly round: number;
  /** The job as every task runs it: one worker per task, threads = cpusPerTask. */
  readonly job: ResolvedJob;
  readonly tasks: readonly (readonly Attempt[])[];
}

/** Where a round keeps its files, relative to the job's output. */
export function roundKeys(round: number): {
  dir: string;
  manifest: string;
  script: string;
  failed: string;
  outcome: string;
} {
  const dir = SLURM_KEYS.round(round);
  return {
    dir,
    manifest: `${dir}/tasks.json`,
    script: `${dir}/job.sbatch`,
    failed: `${dir}/failed`,
    // A detached chain's decision for the round: its final failures and the attempts it resubmitted.
    outcome: `${dir}/outcome.json`,
  };
}

/** The CLI entry a compute node runs: this very install's. */
export const CLI_ENTRY = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

/** Quotes a word for bash. @example shellQuote("it's") // 'it'\''s' */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/**
 * Splits partitions into array tasks: `partitionsPerTask` each when given, else as many tasks as the
 * throttle lets run at once (each then loads the model once for its share).
 *
 * @example splitTasks(attempts, { throttle: 2 }).length // 2
 */
export function splitTasks(
  attempts: readonly Attempt[],
  options: Pick<SlurmOptions, 'throttle' | 'partitionsPerTask'>,
): Attempt[][] {
  const per = options.partitionsPerTask ?? Math.ceil(attempts.length / Math.max(1, options.throttle ?? 100));
  const tasks: Attempt[][] = [];
  for (let i = 0; i < attempts.length; i += per) tasks.push(attempts.slice(i, i + per));
  return tasks;
}

/** The sbatch options of a round, one `#SBATCH` line each. */
export function sbatchOptions(options: SlurmOptions, round: { tasks: number; logDir: string }): string[] {
  const args = [
    `--job-name=${options.jobName}`,
    `--array=0-${round.tasks - 1}%${Math.min(options.throttle ?? round.tasks, round.tasks)}`,
    `--output=${round.logDir}/%A_%a.out`,
    // A requeued task appends to its log instead of wiping what its first run printed.
    '--open-mode=append',
    '--ntasks=1',
    `--cpus-per-task=${options.cpusPerTask}`,
  ];
  if (options.partition) args.push(`--partition=${options.partition}`);
  if (options.account) args.push(`--account=${options.account}`);
  if (options.qos) args.push(`--qos=${options.qos}`);
  if (options.time) args.push(`--time=${options.time}`);
  if (options.mem) args.push(`--mem=${options.mem}`);
  if (options.gres) args.push(`--gres=${options.gres}`);
  return [...args, ...options.sbatchArgs];
}

/**
 * The batch script of one round: `#SBATCH` options, the user's setup lines, then this install's CLI
 * running the task's share of the manifest (`cai slurm task <manifest> $SLURM_ARRAY_TASK_ID`).
 *
 * @example batchScript(options, { tasks: 4, logDir: '/scratch/out/slurm/logs', manifest: '/scratch/out/slurm/round-1/tasks.json' })
 */
export function batchScript(
  options: SlurmOptions,
  round: { tasks: number; logDir: string; manifest: string; s3Endpoint?: string; preview?: string },
): string {
  const lines = [
    '#!/bin/bash',
    ...(round.preview === undefined
      ? []
      : [
          '# PREVIEW printed by `cai slurm run --dry-run`: the tasks.json named below is written only when',
          '# `cai slurm run` (without --dry-run) submits the job; submitting this file with sbatch fails.',
          `# ${round.preview}`,
        ]),
    '# Written by `cai slurm run`: one array task runs its share of the partitions in tasks.json,',
    '# loading the model once. A partition whose record exists is skipped, so a requeued task',
    '# never writes a prediction twice.',
    ...sbatchOptions(options, round).map((a) => `#SBATCH ${a}`),
    'set -eo pipefail',
  ];
  if (options.setup.length) lines.push('', '# setup', ...options.setup);
  lines.push('', 'export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-1}"', 'export ORT_DISABLE_TELEMETRY=1');
  if (round.s3Endpoint) lines.push(`export AWS_ENDPOINT_URL_S3=${shellQuote(round.s3Endpoint)}`);
  lines.push(
    // The Node that submitted (same install path on every node); setup lines may export CAI_NODE.
    `NODE="\${CAI_NODE:-${shellQuote(process.execPath)}}"`,
    `exec "$NODE" ${shellQuote(CLI_ENTRY)} slurm task ${shellQuote(round.manifest)} "$SLURM_ARRAY_TASK_ID"`,
    '',
  );
  return lines.join('\n');
}

/**
 * The batch script of a detached run's next step: one CPU, after round `round`'s array has ended
 * however it ended; it resubmits what the retry policy allows or writes the summary (`cai slurm continue`).
 *
 * @example stepScript(options, { output: '/scratch/out', round: 1, arrayJobId: '12', logDir })
 */
export function stepScript(
  options: SlurmOptions,
  run: { output: string; round: number; arrayJobId: string; logDir: string; s3Endpoint?: string },
): string {
  const args = [
    `--job-name=${options.jobName}-continue`,
    `--dependency=afterany:${run.arrayJobId}`,
    `--output=${run.logDir}/continue_%j.out`,
    '--ntasks=1',
    '--cpus-per-task=1',
  ];
  if (options.partition) args.push(`--partition=${options.partition}`);
  if (options.account) args.push(`--account=${options.account}`);
  if (options.qos) args.push(`--qos=${options.qos}`);
  const lines = ['#!/bin/bash', ...args.map((a) => `#SBATCH ${a}`), 'set -eo pipefail', ...options.setup];
  if (run.s3Endpoint) lines.push(`export AWS_ENDPOINT_URL_S3=${shellQuote(run.s3Endpoint)}`);
  lines.push(
    `NODE="\${CAI_NODE:-${shellQuote(process.execPath)}}"`,
    `exec "$NODE" ${shellQuote(CLI_ENTRY)} slurm continue ${shellQuote(run.output)} --round ${run.round}`,
    '',
  );
  return lines.join('\n');
}
