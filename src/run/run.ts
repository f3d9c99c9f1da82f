import { promises as fs } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { EngineEvent } from '../engines/events.js';
import type { MapResult } from '../summarize/map-result.js';
import { runMap } from '../engines/map.js';
import { checkEngineFields } from '../engines/fields.js';
import { engineFor } from '../engines/registry.js';
import { beforeWork, CaiError, ErrorCodes, duringWork } from '../errors.js';
import { describeOptimization, readOptimization } from '../model/optimization.js';
import type { PlannedPartition } from '../plan/plan.js';
import { openInput, openParent, openStore } from '../storage/open.js';
import { listKeys, type Store } from '../storage/store.js';
import { OUTPUT_FOLDERS, OUTPUT_KEYS, removeSetupWrites, SETUP_WRITES } from '../storage/output-layout.js';
import { summarize, type JobSummary } from '../summarize/summarize.js';
import { skippedSummary, type SkippedSummary } from '../plan/skipped.js';
import { watchSignals, removeTemporaryFiles } from './interrupt.js';
import { acquireLock } from './lock.js';
import { checkModelExists, preflight } from './preflight.js';
import { pendingPartitions, planOrResume, removeStaleOutputs, type PlanHooks } from '../plan/resume.js';
import { parseJobSpec, resolveJob, type JobSpec, type JobSpecInput, type ResolvedJob } from '../job/spec.js';

/** Hooks and knobs for one run of a job. */
export interface RunOptions {
  /** Called for every engine event (progress). */
  readonly onEvent?: (event: EngineEvent) => void;
  /** Called once the plan is known, before any work starts. */
  readonly onPlan?: (plan: {
    partitions: readonly PlannedPartition[];
    todo: number;
    job: ResolvedJob;
    /** The partitions this run will process (the plan without those already complete). */
    pending: readonly PlannedPartition[];
    /** Input objects planning left out, and why (see `skipped.json`). */
    skipped?: SkippedSummary;
  }) => void;
  /** Base delay of retry backoff, ms (tests make it small). */
  readonly retryBaseMs?: number;
  /** Start over: ignore the outputs of an earlier run in the same output location. */
  readonly overwrite?: boolean;
}

const isRemote = (uri: string) => /^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !uri.startsWith('file://');
const localPath = (uri: string) => path.resolve(uri.startsWith('file://') ? new URL(uri).pathname : uri);

/**
 * The output's key prefix inside the input, when the output lies inside it (`data/` and `data/out/`):
 * its predictions must never be planned as partitions of a later run.
 *
 * @example outputInside('data', 'data/out') // 'out/'
 */
export function outputInside(input: string, output: string): string | undefined {
  let rel: string;
  if (isRemote(input) || isRemote(output)) {
    const a = input.replace(/\/*$/, '/');
    if (!output.startsWith(a)) return undefined;
    rel = output.slice(a.length);
  } else {
    rel = path.relative(localPath(input), localPath(output)).split(path.sep).join('/');
    if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  }
  rel = rel.replace(/\/*$/, '');
  return rel ? `${rel}/` : undefined;
}

/**
 * Runs one job and returns its summary: `runJob` for the local engine; the AWS engine plugs its own in.
 * @example const runner: JobRunner = (spec, o) => runJob(spec, o);
 */
export type JobRunner = (spec: JobSpec, options: RunOptions) => Promise<JobSummary>;

/**
 * Runs a whole job: plan (Initialize, written to `plan.json` before any work), map the partitions that
 * are not complete yet on the job's engine, then Summarize. Running the same job again resumes: only
 * partitions without a record are processed. The job is plain data, validated here (unknown fields and
 * wrong values are one `E_OPTION` error naming each), with defaults filled in as `parseJobSpec` does.
 *
 * @example
 * const summary = await runJob({ input: 'parts', model: 'm.onnx', output: 'out', inputs: { image: 0 } });
 * if (summary.status === 'failed') process.exitCode = 1;
 */
export async function runJob(job: JobSpecInput, options: RunOptions = {}): Promise<JobSummary> {
  const spec = parseJobSpec(job);
  const startedAt = new Date();
  const t0 = performance.now();
  // A missing model should fail before any planning or worker start-up, not after.
  await checkModelExists(spec);
  return withSetupUndo(spec, async (output, hooks) => {
    // Ctrl-C / SIGTERM stop the workers cleanly (see interrupt.ts).
    const watch = watchSignals(output);
    try {
      const work = runLocked(spec, options, output, hooks, startedAt, t0);
      // After an interrupt the abandoned work may still fail (its workers are gone): nobody awaits it.
      work.catch(() => undefined);
      return await Promise.race([work, watch.interrupted]).catch((err: unknown) => {
        // Killing the workers fails the work too; the interrupt is what happened.
        if (watch.signalled) return watch.interrupted;
        throw err;
      });
    } finally {
      watch.dispose();
    }
  });
}

/**
 * Runs `body`, which plans (or resumes) the job into its output and starts its work, holding the
 * output's lock, with what every way of starting a job needs: planning hooks that check the job before
 * anything is written (the preflight of preflight.ts, the engine's own, the output inside the input left
 * out), and a setup error (exit 2) taken back: what the run wrote is removed, a folder it created goes,
 * an earlier run's files stay as they were. `runJob` and `cai slurm run --detach` start jobs through it.
 *
 * @example await withSetupUndo(spec, (output, hooks) => submitDetached(spec, false, hooks));
 */
export async function withSetupUndo<T>(
  spec: JobSpec,
  body: (output: Store, hooks: PlanHooks) => Promise<T>,
): Promise<T> {
  // A field the job's engine does not use is refused before anything, never dropped (engines/fields.ts).
  checkEngineFields(spec);
  const output = await openStore(spec.output, { s3Endpoint: spec.s3Endpoint });
  // A local output folder this run creates (for its lock) and leaves empty, because a setup error
  // stopped it before anything was written, is removed again: a mistake leaves nothing behind.
  const createdFolder =
    !isRemote(spec.output) && !(await fs.stat(localPath(spec.output)).catch(() => undefined))
      ? localPath(spec.output)
      : undefined;
  // One live run per output (see lock.ts).
  const lock = await acquireLock(output);
  try {
    // What the output held before this run: a setup error (exit 2) takes back what the run added.
    const before = await setupSnapshot(output);
    const input = await openInput(spec.input, { s3Endpoint: spec.s3Endpoint });
    const hooks: PlanHooks = {
      exclude: outputInside(spec.input, spec.output),
      check: async (planned) => {
        await preflight(spec, input, planned);
        const job = resolveJob(spec, { partitions: planned.length });
        await (await engineFor(job)).preflight?.(job);
      },
    };
    return await body(output, hooks).catch(async (err: unknown) => {
      // A setup error found after planning (an engine's refusal) is undone; with nothing of the run left
      // and no partition done, it is the setup error (exit 2) it would have been before planning.
      if (isSetupError(err) && (await undoSetup(output, spec.output, before))) throw beforeWork(err);
      throw err;
    });
  } finally {
    await lock.release().catch(() => undefined);
    // rmdir removes only an empty folder: never anything a run wrote.
    if (createdFolder) await fs.rmdir(createdFolder).catch(() => undefined);
  }
}

/**
 * Whether an error stopped a run at its setup, as exit code 2 reports it: every CAI error but a spent
 * error budget (the job ran) and an interrupt.
 */
function isSetupError(err: unknown): boolean {
  // Work that goes on elsewhere (unwatched Slurm arrays), or that ran and failed, keeps its files.
  const ran: readonly string[] = [
    ErrorCodes.budget,
    ErrorCodes.interrupted,
    ErrorCodes.unreachable,
    ErrorCodes.schedulerLost,
    ErrorCodes.unwatched,
    ErrorCodes.cancelled,
  ];
  return err instanceof CaiError && !ran.includes(err.code);
}

/** What an output held before a run, as far as undoing a failed setup needs it. */
interface SetupSnapshot {
  /** Whether the output held a job. */
  readonly job: boolean;
  /** Keys of the engine folders. */
  readonly keys: ReadonlySet<string>;
  /** When the run began, ms since the epoch: a record written since is this run's. */
  readonly at: number;
}

async function engineKeys(output: Store): Promise<Set<string>> {
  const keys = new Set<string>();
  for (const folder of SETUP_WRITES.folders) for (const key of await listKeys(output, folder)) keys.add(key);
  return keys;
}

async function setupSnapshot(output: Store): Promise<SetupSnapshot> {
  const at = Date.now();
  return { job: Boolean(await output.head(OUTPUT_KEYS.job)), keys: await engineKeys(output), at };
}

/** Whether a record was written since `at` (or cannot be told apart from one: a listing without times). */
async function recordSince(output: Store, at: number): Promise<boolean> {
  for await (const o of output.list(OUTPUT_FOLDERS.results)) {
    if (o.modified === undefined) return true;
    // S3 lists whole seconds: a record of this run may show a time up to a second before it began.
    const since = o.modified % 1000 === 0 ? Math.floor(at / 1000) * 1000 : at;
    if (o.modified >= since) return true;
  }
  return false;
}

/**
 * Takes back what a run that failed at its setup wrote (the engine's refusal after planning: sbatch,
 * a worker that cannot start), so that exit 2 leaves nothing behind; folders it left empty go too. In an
 * output that held no job, that is every file a run writes before its first record; in one that held a
 * job, the engine files this run added, unless it wrote a record (then the work began: its rounds stay).
 * Returns whether the run was undone (no partition of it completed).
 */
async function undoSetup(output: Store, uri: string, before: SetupSnapshot): Promise<boolean> {
  let removed: string[];
  if (!before.job) {
    removed = await removeSetupWrites(output).catch(() => []);
    // Nothing removed: a record or predictions file was there, so the work began.
    if (!removed.length) return false;
  } else {
    if (await recordSince(output, before.at).catch(() => true)) return false;
    const now = await engineKeys(output).catch(() => new Set<string>());
    const added = [...now].filter((k) => !before.keys.has(k));
    for (const key of added) await output.delete(key).catch(() => undefined);
    removed = added;
  }
  if (!removed.length || isRemote(uri)) return true;
  const root = localPath(uri);
  const prune = async (dir: string): Promise<void> => {
    const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await prune(path.join(dir, e.name));
    if (dir !== root) await fs.rmdir(dir).catch(() => undefined);
  };
  for (const folder of SETUP_WRITES.folders) await prune(path.join(root, folder));
  return true;
}

async function runLocked(
  spec: JobSpec,
  options: RunOptions,
  output: Store,
  hooks: PlanHooks,
  startedAt: Date,
  t0: number,
): Promise<JobSummary> {
  const plan = await planOrResume(spec, output, options.overwrite ?? false, hooks);
  // From here on the job is running (its plan is written): whatever fails now, the job ran and failed
  // (exit 1), as opposed to the setup errors above (exit 2).
  try {
    return await mapAndSummarize(spec, options, output, plan, startedAt, t0);
  } catch (err) {
    throw duringWork(err);
  }
}

async function mapAndSummarize(
  spec: JobSpec,
  options: RunOptions,
  output: Store,
  plan: PlannedPartition[],
  startedAt: Date,
  t0: number,
): Promise<JobSummary> {
  if (options.overwrite) await output.delete(OUTPUT_KEYS.summary);
  if (options.overwrite) await removeStaleOutputs(output, plan, spec.predictionsFormat);
  const todo = options.overwrite ? plan : await pendingPartitions(output, plan, spec.predictionsFormat);
  const job = resolveJob(spec, { partitions: todo.length || plan.length });
  const skipped = options.onPlan ? await skippedSummary(output) : undefined;
  options.onPlan?.({ partitions: plan, todo: todo.length, job, pending: todo, skipped });
  const tMap = performance.now();
  let map: MapResult;
  if (todo.length === 0) map = { records: [], failures: [], retries: 0, skipped: 0 };
  else
    map = await runMap(job, todo, await engineFor(job), {
      onEvent: options.onEvent,
      retryBaseMs: options.retryBaseMs,
    });
  // A local worker killed while it wrote (a crash, the OOM killer) left its temporary file.
  if (job.engine === 'local') await removeTemporaryFiles(output, true);
  const mapSeconds = (performance.now() - tMap) / 1000;
  const optimization = await modelOptimization(spec);
  return summarize({
    output,
    plan,
    format: job.predictionsFormat,
    map,
    resumed: plan.length - todo.length,
    startedAt,
    // A function, asked by Summarize at its end: the wall time includes summarizing.
    wallSeconds: () => (performance.now() - t0) / 1000,
    mapSeconds,
    job: {
      input: job.input,
      model: job.model,
      output: job.output,
      engine: job.engine,
      batchSize: job.batchSize,
      concurrency: job.concurrency,
      threads: job.threads,
      toleratedFailurePercentage: job.toleratedFailurePercentage,
      sixteenBit: job.preprocess?.sixteenBit,
      optimization,
    },
  });
}

/** The optimization `cai optimize` recorded in the job's model, as one line, or undefined. */
async function modelOptimization(spec: JobSpec): Promise<string | undefined> {
  const [store, key] = await openParent(spec.model, { s3Endpoint: spec.s3Endpoint });
  const record = await readOptimization(await store.localPath(key));
  return record && describeOptimization(record);
}
