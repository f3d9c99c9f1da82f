// A round: one job array over the attempts ready at one moment. Its manifest and batch script are
// written into the output before it is submitted, and `slurm/state.json` lists every round's job id so
// that `cai slurm status` and `cai slurm cancel` work later from any login node.
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { ResolvedJob } from '../../job/spec.js';
import { joinUri, openStore, uriScheme } from '../../storage/open.js';
import { readJsonIfPresent } from '../../storage/json.js';
import type { Store } from '../../storage/store.js';
import { SLURM_KEYS } from '../../storage/output-layout.js';
import type { Attempt } from '../map.js';
import { checkCluster, E_SLURM, submit } from './commands.js';
import type { SlurmOptions } from '../../job/slurm-options.js';
import { batchScript, roundKeys, splitTasks, type TaskManifest } from './script.js';

/** What `slurm/state.json` remembers of one submitted round. */
export interface RoundState {
  readonly round: number;
  readonly jobId: string;
  readonly tasks: number;
  readonly partitions: number;
  readonly logDir: string;
  readonly submittedAt: string;
  /** The round's shape, so that retries are grouped alike (absent in states written before). */
  readonly throttle?: number;
  readonly partitionsPerTask?: number;
}

/** A detached run's step: the job that runs after round `round`'s array (`cai slurm continue`). */
export interface ChainStep {
  readonly round: number;
  readonly jobId: string;
}

/** `slurm/state.json`: every round of the job in this output, and a detached run's chain. */
export interface SlurmState {
  readonly rounds: RoundState[];
  /** A detached run: its first round and the steps after each of its rounds. */
  detached?: { readonly firstRound: number; readonly steps: readonly ChainStep[] };
  /** The Summarize job of a detached run submitted before chains (kept for `status` and `cancel`). */
  summarizeJobId?: string;
}

/** A submitted round, with the attempts of each array task. */
export interface Round extends RoundState {
  readonly attempts: readonly (readonly Attempt[])[];
  readonly manifestUri: string;
}

const STATE_KEY = SLURM_KEYS.state;

/** The rounds submitted so far for the job in `output`. @example (await readSlurmState(out)).rounds.length */
export async function readSlurmState(output: Store): Promise<SlurmState> {
  return (await readJsonIfPresent<SlurmState>(output, STATE_KEY)) ?? { rounds: [] };
}

/** Saves the state (one submitter writes it at a time). */
export async function writeSlurmState(output: Store, state: SlurmState): Promise<void> {
  await output.put(STATE_KEY, `${JSON.stringify(state, null, 2)}\n`);
}

const isPath = (uri: string) => uriScheme(uri) === 'file';
const absolute = (uri: string) =>
  isPath(uri) ? path.resolve(uri.startsWith('file://') ? new URL(uri).pathname : uri) : uri;

/**
 * The job as every array task runs it: absolute paths (a task's working folder is not the
 * submitter's), one worker per task and the task's CPUs as onnxruntime threads.
 *
 * @example taskJob(job, options).threads === options.cpusPerTask
 */
export function taskJob(job: ResolvedJob, options: SlurmOptions): ResolvedJob {
  return {
    ...job,
    input: absolute(job.input),
    model: absolute(job.model),
    output: absolute(job.output),
    concurrency: 1,
    threads: options.cpusPerTask,
  };
}

/**
 * The log of array task `task` of a round, as the batch script names it (`--output=<logDir>/%A_%a.out`).
 * @example taskLog(round, 3) // '/scratch/out/slurm/logs/12_3.out'
 */
export function taskLog(round: Pick<RoundState, 'logDir' | 'jobId'>, task: number): string {
  return `${round.logDir}/${round.jobId}_${task}.out`;
}

/** Where the tasks' logs go: a path every node can write. */
export function logDirOf(job: ResolvedJob, options: SlurmOptions): string {
  if (options.logDir) return path.resolve(options.logDir);
  if (isPath(job.output)) return path.join(absolute(job.output), SLURM_KEYS.logs);
  throw new CaiError(
    ErrorCodes.option,
    'slurm.logDir',
    `the output ${job.output} is not a path the nodes can write Slurm logs to; set slurm.logDir (--log-dir) to a folder on a shared filesystem`,
  );
}

// Folders that are private to each machine: a node cannot see what the login node put there.
const NODE_LOCAL = ['/tmp', '/var/tmp', '/dev/shm', '/run'];

/**
 * Checks, before anything is submitted, that a cluster answers and that every node can see the job's
 * files: a path under /tmp is each node's own when the cluster has more than one.
 *
 * @example await preflight(taskJob(job, options), options);
 */
export async function preflight(job: ResolvedJob, options: SlurmOptions): Promise<void> {
  const { nodes, hosts } = await checkCluster();
  // One node, or nodes that all are this very machine (several slurmd on one host): they see its disk.
  const here = os.hostname().split('.')[0];
  if (nodes <= 1 || [...hosts].every((h) => h.split('.')[0] === here)) return;
  const where: [string, string][] = [
    ['input', job.input],
    ['model', job.model],
    ['output', job.output],
    ['slurm.logDir', logDirOf(job, options)],
  ];
  for (const [field, uri] of where) {
    if (!isPath(uri)) continue;
    const p = absolute(uri);
    if (NODE_LOCAL.some((d) => p === d || p.startsWith(`${d}/`)))
      throw new CaiError(
        ErrorCodes.option,
        field,
        `${p} is on this machine's local disk, which the cluster's ${nodes} nodes cannot see; put it on a shared filesystem (home, /scratch, /project) or use s3://`,
      );
  }
}

/**
 * Writes a round's manifest and batch script into the output, then submits it as one job array.
 * Returns the round with its job id; a refusal by `sbatch` throws with Slurm's own message.
 *
 * @example const round = await submitRound(output, job, options, attempts);
 */
export async function submitRound(
  output: Store,
  job: ResolvedJob,
  options: SlurmOptions,
  attempts: readonly Attempt[],
): Promise<Round> {
  const state = await readSlurmState(output);
  const round = Math.max(0, ...state.rounds.map((r) => r.round)) + 1;
  const keys = roundKeys(round);
  const tasks = splitTasks(attempts, options);
  const logDir = logDirOf(job, options);
  const manifestUri = joinUri(job.output, keys.manifest);
  const manifest: TaskManifest = { version: 1, round, job, tasks };
  const script = batchScript(options, {
    tasks: tasks.length,
    logDir,
    manifest: manifestUri,
    s3Endpoint: job.s3Endpoint,
  });
  await output.put(keys.manifest, `${JSON.stringify(manifest)}\n`);
  await output.put(keys.script, script);
  // Slurm opens the log file but does not make its folder.
  await mkdir(logDir, { recursive: true });
  let jobId: string;
  try {
    jobId = await submit(script);
  } catch (err) {
    if (err instanceof CaiError && err.code === E_SLURM)
      throw new CaiError(
        E_SLURM,
        'sbatch',
        `the cluster refused the job array (${err.message}); check --partition, --account, --qos, --time, --mem and --gres against \`sinfo\` and \`sacctmgr show assoc user=$USER\`; \`cai slurm run --dry-run\` with the same flags prints the batch script`,
      );
    throw err;
  }
  const submitted: RoundState = {
    round,
    jobId,
    tasks: tasks.length,
    partitions: attempts.length,
    logDir,
    submittedAt: new Date().toISOString(),
    ...(options.throttle ? { throttle: options.throttle } : {}),
    partitionsPerTask: Math.max(...tasks.map((t) => t.length)),
  };
  await writeSlurmState(output, { ...state, rounds: [...state.rounds, submitted] });
  return { ...submitted, attempts: tasks, manifestUri };
}

/** Opens the output store of a job. */
export function openOutput(job: Pick<ResolvedJob, 'output' | 's3Endpoint'>): Promise<Store> {
  return openStore(job.output, { s3Endpoint: job.s3Endpoint });
}
