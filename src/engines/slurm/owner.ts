// Who owns the arrays of an output. A Slurm run is not a process: its arrays run on whatever happens to
// the shell that submitted them (kill -9, a closed laptop, a dropped ssh session), and a detached chain
// has no process at all on the login node. So before anything is submitted, every way in (the watched
// command, `--detach`, a rerun) reads `slurm/state.json` and asks the queue (squeue: never accounting)
// which of the arrays and steps listed there are still alive. Live arrays of the same job (the same
// identity, src/job/identity.ts) are adopted; live arrays of another job refuse the run.
import { CaiError } from '../../errors.js';
import { describeChanges, identityChanges, jobIdentity, type IdentityChange } from '../../job/identity.js';
import type { ResolvedJob } from '../../job/spec.js';
import { readJsonIfPresent } from '../../storage/json.js';
import type { Store } from '../../storage/store.js';
import type { Attempt } from '../map.js';
import { queuedTasks, slurm } from './commands.js';
import { readSlurmState, type ChainStep, type RoundState, type SlurmState } from './rounds.js';
import { roundKeys, type TaskManifest } from './script.js';

/** A round some of whose array tasks the queue still holds. */
export interface LiveRound {
  readonly round: RoundState;
  readonly manifest: TaskManifest;
  /** The array tasks still queued (pending, running, being requeued). */
  readonly queued: ReadonlySet<number>;
}

/** What is alive of the Slurm runs recorded in an output. */
export interface LiveRuns {
  readonly state: SlurmState;
  readonly rounds: readonly LiveRound[];
  /** A detached chain's steps still queued: the chain owns its arrays and will decide their retries. */
  readonly steps: readonly ChainStep[];
}

/** Error code of an output whose live arrays belong to another job. */
export const E_SLURM_BUSY = 'E_SLURM_BUSY';

/**
 * How the job that arrays run (their manifest's job) differs from `job`: the identity fields of
 * src/job/identity.ts, the one notion of "the same job" (free fields such as the batch size, workers,
 * scheduler options and retry policy may differ: arrays of the same job are adopted whatever they say).
 * The model's bytes and the input's listing are compared with `job.json` when the run plans.
 *
 * @example jobChanges(manifest.job, taskJob(job, options)) // [] for a rerun with another --batch-size
 */
export function jobChanges(running: ResolvedJob, job: ResolvedJob): IdentityChange[] {
  return identityChanges(jobIdentity(running), jobIdentity(job));
}

/**
 * The arrays and detached steps recorded in `output` that the queue still holds. Only `squeue` is
 * asked; an unreachable controller throws (nothing can be decided safely without it).
 *
 * @example const live = await liveRuns(output); if (live.steps.length) ...
 */
export async function liveRuns(output: Store): Promise<LiveRuns> {
  const state = await readSlurmState(output);
  const rounds: LiveRound[] = [];
  for (const round of state.rounds) {
    const queued = await queuedTasks(round.jobId);
    if (!queued.size) continue;
    const manifest = await readJsonIfPresent<TaskManifest>(output, roundKeys(round.round).manifest);
    if (manifest) rounds.push({ round, manifest, queued });
  }
  const steps: ChainStep[] = [];
  for (const step of state.detached?.steps ?? []) if (await stepQueued(step.jobId)) steps.push(step);
  return { state, rounds, steps };
}

// A step is a plain job: squeue -r prints no array index for it.
async function stepQueued(jobId: string): Promise<boolean> {
  const out = await slurm('squeue', ['-h', '-j', jobId, '-o', '%i']).catch((err: unknown) => {
    if (err instanceof CaiError && /Invalid job id/i.test(err.message)) return '';
    throw err;
  });
  return out.trim().length > 0;
}

/**
 * Refuses (exit 2) an output whose live arrays run another job (another identity), naming them, each
 * field that differs (as the array's job has it -> as this run has it) and the way out.
 * @example assertSameJob(live, output, job);
 */
export function assertSameJob(live: LiveRuns, output: Store, job: ResolvedJob): void {
  const foreign = live.rounds
    .map((r) => ({ r, changes: jobChanges(r.manifest.job, job) }))
    .filter(({ changes }) => changes.length);
  if (!foreign.length) return;
  const arrays = foreign
    .map(
      ({ r, changes }) => `${r.round.jobId} (round ${r.round.round}: ${describeChanges(changes).join('; ')})`,
    )
    .join(', ');
  throw new CaiError(
    E_SLURM_BUSY,
    output.describe('slurm/state.json'),
    `Slurm arrays of another job are still running into this output: ${arrays}; wait for them to end, or stop them with \`cai slurm cancel ${job.output}\`, or use another --output`,
  );
}

/**
 * The attempts of live rounds to adopt for the partitions in `pending`: each pending partition's latest
 * live round whose task holding it is still queued. Returned per round, with the manifest's attempt
 * numbers (the try that is running is that one, not a new first try).
 *
 * @example const adopted = adoptable(live, new Set(['1', '2']));
 */
export function adoptable(
  live: LiveRuns,
  pending: ReadonlySet<string>,
): { round: LiveRound; attempts: Map<string, { attempt: Attempt; task: number }> }[] {
  const owner = new Map<string, { round: LiveRound; attempt: Attempt; task: number }>();
  for (const round of [...live.rounds].sort((a, b) => a.round.round - b.round.round))
    round.manifest.tasks.forEach((attempts, task) => {
      for (const attempt of attempts) {
        const id = attempt.partition.id;
        if (!pending.has(id)) continue;
        // A later round holds the partition's later try: the earlier one ended for it.
        owner.delete(id);
        if (round.queued.has(task)) owner.set(id, { round, attempt, task });
      }
    });
  const byRound = new Map<LiveRound, Map<string, { attempt: Attempt; task: number }>>();
  for (const [id, { round, attempt, task }] of owner) {
    const m = byRound.get(round) ?? new Map<string, { attempt: Attempt; task: number }>();
    m.set(id, { attempt, task });
    byRound.set(round, m);
  }
  return [...byRound].map(([round, attempts]) => ({ round, attempts }));
}

/** The live arrays and steps in one phrase, for messages. @example describeLive(live) // 'array(s) 12 (round 1)' */
export function describeLive(live: LiveRuns): string {
  const arrays = live.rounds.map((r) => `${r.round.jobId} (round ${r.round.round})`).join(', ');
  const steps = live.steps.map((s) => s.jobId).join(', ');
  return [arrays && `array(s) ${arrays}`, steps && `step(s) ${steps}`].filter(Boolean).join('; ');
}
