// `cai slurm run --detach` and `--dry-run`: plan like `runJob`, then submit the first round and the step
// that continues the chain after it (or only print the script), so nothing waits on the login session.
import { CaiError, ErrorCodes } from '../../errors.js';
import { pendingPartitions, planOrResume, type PlanHooks } from '../../plan/resume.js';
import { resolveJob, type JobSpec, type ResolvedJob } from '../../job/spec.js';
import { planPartitions, type PlannedPartition } from '../../plan/plan.js';
import { readJsonIfPresent } from '../../storage/json.js';
import { OUTPUT_KEYS } from '../../storage/output-layout.js';
import { joinUri, openInput, openParent, openStore } from '../../storage/open.js';
import { submitStep } from './chain.js';
import { cancel } from './commands.js';
import { resolveSlurmOptions, type SlurmOptions } from '../../job/slurm-options.js';
import { adoptable, assertSameJob, describeLive, E_SLURM_BUSY, liveRuns } from './owner.js';
import {
  logDirOf,
  preflight,
  readSlurmState,
  submitRound,
  taskJob,
  writeSlurmState,
  type Round,
} from './rounds.js';
import { sizeRound } from './sizing.js';
import { batchScript, roundKeys, splitTasks } from './script.js';

/** What a detached submission started (or found running). */
export interface DetachedRun {
  /** The array submitted now, if any (all pending partitions may be in adopted arrays). */
  readonly arrayJobId?: string;
  /** The step after the arrays: it resubmits failures the retry policy allows, or summarizes. */
  readonly stepJobId: string;
  readonly round: number;
  readonly tasks: number;
  /** Partitions the new array runs. */
  readonly partitions: number;
  /** Partitions that already had their record (resumed). */
  readonly resumed: number;
  /** Live arrays of this job (a watcher killed mid-run) the step waits for instead of a resubmission. */
  readonly adopted: readonly string[];
  /** Partitions those adopted arrays still hold. */
  readonly adoptedPartitions: number;
  /** A detached run of this job was live already: nothing was submitted; this says what runs. */
  readonly alreadyRunning?: string;
  /** What the round's shape is and why (sized to the cluster unless the job says). */
  readonly sizing?: string;
}

async function checkModel(spec: JobSpec): Promise<void> {
  const [store, key] = await openParent(spec.model, { s3Endpoint: spec.s3Endpoint });
  if (!(await store.head(key)))
    throw new CaiError(ErrorCodes.notFound, store.describe(key), 'the model does not exist; check --model');
}

function prepared(spec: JobSpec, partitions: number): { job: ResolvedJob; options: SlurmOptions } {
  const options = resolveSlurmOptions(spec.slurm);
  return { job: taskJob(resolveJob(spec, { partitions }), options), options };
}

/**
 * Plans (or resumes) the job, submits its pending partitions as one array and the step that runs when
 * the array has ended (it retries failures as the attached run would, then summarizes), and returns
 * their ids. Nothing is submitted when nothing is pending. `hooks` check the job before planning writes
 * anything (`withSetupUndo` in src/run/run.ts gives them and takes back what a refused submission wrote).
 *
 * @example const { arrayJobId } = await submitDetached(spec);
 */
export async function submitDetached(
  spec: JobSpec,
  overwrite = false,
  hooks: PlanHooks = {},
): Promise<DetachedRun | undefined> {
  await checkModel(spec);
  const output = await openStore(spec.output, { s3Endpoint: spec.s3Endpoint });
  const { job: probe, options } = prepared(spec, 1);
  await preflight(probe, options);
  // The run owns its arrays: what is still queued of this output decides before anything is written.
  const live = await liveRuns(output);
  assertSameJob(live, output, probe);
  if (live.steps.length) {
    const step = live.steps[live.steps.length - 1];
    return {
      stepJobId: step.jobId,
      round: step.round,
      tasks: 0,
      partitions: 0,
      resumed: 0,
      adopted: live.rounds.map((r) => r.round.jobId),
      adoptedPartitions: 0,
      alreadyRunning: describeLive(live),
    };
  }
  if (overwrite && live.rounds.length)
    throw new CaiError(
      E_SLURM_BUSY,
      output.describe('slurm/state.json'),
      `--overwrite would start over under live arrays of this job (${describeLive(live)}); stop them first with \`cai slurm cancel ${spec.output}\``,
    );
  const plan = await planOrResume(spec, output, overwrite, hooks);
  const todo = overwrite ? plan : await pendingPartitions(output, plan, spec.predictionsFormat);
  if (!todo.length) return undefined;
  const { job } = prepared(spec, todo.length || plan.length);
  const adopted = adoptable(live, new Set(todo.map((p) => p.id)));
  const held = new Set(adopted.flatMap((a) => [...a.attempts.keys()]));
  const rest = todo.filter((p) => !held.has(p.id));
  let round: Round | undefined;
  let sizing: string | undefined;
  if (rest.length) {
    const sized = await sizeRound(options, rest.length, output);
    sizing = sized.why;
    round = await submitRound(
      output,
      job,
      { ...options, throttle: sized.throttle, partitionsPerTask: sized.partitionsPerTask },
      rest.map((partition) => ({ partition, attempt: 1 })),
    );
  }
  const adoptedRounds = adopted.map((a) => a.round.round);
  const rounds = [...adoptedRounds, ...(round ? [round] : [])].sort((a, b) => a.round - b.round);
  const last = rounds[rounds.length - 1];
  // A new chain starts here (an earlier one in the same output, resumed now, is over); it takes over
  // the adopted arrays: its step waits for all of them and settles their partitions too.
  const state = await readSlurmState(output);
  await writeSlurmState(output, { ...state, detached: { firstRound: rounds[0].round, steps: [] } });
  const stepJobId = await submitStep(
    output,
    job,
    options,
    last,
    rounds.map((r) => r.jobId),
  ).catch(async (err: unknown) => {
    // Without its step the array would run with nobody to retry or summarize it: take it back, so the
    // refusal leaves nothing running (and the run's files are undone by the caller, as for the array).
    if (round) await cancel([round.jobId]).catch(() => undefined);
    throw err;
  });
  // The earlier job's summary goes once the new one is submitted: a refusal above leaves it in place.
  if (overwrite) await output.delete(OUTPUT_KEYS.summary);
  return {
    ...(round ? { arrayJobId: round.jobId } : {}),
    stepJobId,
    round: last.round,
    tasks: round?.tasks ?? 0,
    partitions: rest.length,
    resumed: plan.length - todo.length,
    adopted: adoptedRounds.map((r) => r.jobId),
    adoptedPartitions: held.size,
    ...(sizing ? { sizing } : {}),
  };
}

/**
 * The batch script `cai slurm run` would submit now, without writing or submitting anything.
 * @example process.stdout.write(await dryRunScript(spec));
 */
export async function dryRunScript(spec: JobSpec): Promise<string> {
  const output = await openStore(spec.output, { s3Endpoint: spec.s3Endpoint });
  const plan =
    (await readJsonIfPresent<PlannedPartition[]>(output, OUTPUT_KEYS.plan)) ??
    (await planPartitions(await openInput(spec.input, { s3Endpoint: spec.s3Endpoint }), { job: spec }));
  const todo = (await output.head(OUTPUT_KEYS.job))
    ? await pendingPartitions(output, plan, spec.predictionsFormat)
    : plan;
  const { job, options } = prepared(spec, todo.length || plan.length);
  const state = await readSlurmState(output);
  const round = Math.max(0, ...state.rounds.map((r) => r.round)) + 1;
  const sized = await sizeRound(options, todo.length, output);
  const shaped = { ...options, throttle: sized.throttle, partitionsPerTask: sized.partitionsPerTask };
  const tasks = splitTasks(
    todo.map((partition) => ({ partition, attempt: 1 })),
    shaped,
  );
  return batchScript(shaped, {
    tasks: Math.max(1, tasks.length),
    logDir: logDirOf(job, options),
    manifest: joinUri(job.output, roundKeys(round).manifest),
    s3Endpoint: job.s3Endpoint,
    preview: sized.why,
  });
}
