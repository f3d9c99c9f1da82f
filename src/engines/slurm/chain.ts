// A detached run as a chain: round N's array, then a step (`cai slurm continue`, a one-CPU job that
// depends on the array) that reads what the round left, applies the job's retry policy and error
// budget (the same functions as the watching submitter's driver), and either submits round N+1 with
// another step after it, or writes the summary. Nothing waits on a login session.
import { CaiError } from '../../errors.js';
import type { PlannedPartition } from '../../plan/plan.js';
import { readJson, readJsonIfPresent } from '../../storage/json.js';
import { listKeys, type Store } from '../../storage/store.js';
import type { JobSummary } from '../../summarize/summarize.js';
import type { PartitionFailure, PartitionRecord } from '../../worker/record.js';
import { outputKeys } from '../../worker/run-partition.js';
import type { Attempt } from '../map.js';
import { budgetExceeded } from '../../job/budget.js';
import { shouldRetry } from '../policy.js';
import { arrayStates, E_SLURM, submit } from './commands.js';
import { taskEndedError } from './ended.js';
import { summarizeChain } from './finish.js';
import { resolveSlurmOptions, type SlurmOptions } from '../../job/slurm-options.js';
import { readSlurmState, submitRound, taskLog, writeSlurmState, type RoundState } from './rounds.js';
import { roundKeys, stepScript, type TaskManifest } from './script.js';
import type { TaskFailure } from './task.js';

/** What a chain step decided for its round (`slurm/round-N/outcome.json`). */
export interface RoundOutcome {
  /** Partitions that failed for good in this round (no retry left, permanent, or the budget spent). */
  readonly failures: readonly PartitionFailure[];
  /** Partitions resubmitted as the next round. */
  readonly retried: readonly string[];
}

/** What a step did: submitted the next round and its step, or wrote the summary. */
export type StepResult =
  { readonly next: RoundState; readonly stepJobId: string } | { readonly summary: JobSummary };

/**
 * Submits the step that runs once round `round`'s array has ended, and records it in the state.
 * @example const stepJobId = await submitStep(output, job, options, round);
 */
export async function submitStep(
  output: Store,
  job: TaskManifest['job'],
  options: SlurmOptions,
  round: RoundState,
): Promise<string> {
  const jobId = await submit(
    stepScript(options, {
      output: job.output,
      round: round.round,
      arrayJobId: round.jobId,
      logDir: round.logDir,
      s3Endpoint: job.s3Endpoint,
    }),
  );
  const state = await readSlurmState(output);
  const detached = state.detached ?? { firstRound: round.round, steps: [] };
  await writeSlurmState(output, {
    ...state,
    detached: { ...detached, steps: [...detached.steps, { round: round.round, jobId }] },
  });
  return jobId;
}

/**
 * The step after round `round` of a detached run: settles the round's attempts from the records,
 * the failures its tasks wrote and the tasks' Slurm end states; retries what the job's policy allows
 * (`maxAttempts`, permanent errors, the error budget) as the next round, or summarizes the whole chain.
 *
 * @example const result = await continueChain(output, 1);
 */
export async function continueChain(output: Store, round: number): Promise<StepResult> {
  const state = await readSlurmState(output);
  const submitted = state.rounds.find((r) => r.round === round);
  const manifest = await readJsonIfPresent<TaskManifest>(output, roundKeys(round).manifest);
  const plan = await readJsonIfPresent<PlannedPartition[]>(output, 'plan.json');
  if (!submitted || !manifest || !plan)
    throw new CaiError(
      E_SLURM,
      output.describe('slurm'),
      `no round ${round} to continue (state.json, round-${round}/tasks.json, plan.json are missing): was the output moved or deleted?`,
    );
  const firstRound = state.detached?.firstRound ?? round;
  const chain = state.rounds.filter((r) => r.round >= firstRound && r.round <= round);
  const later = state.rounds.find((r) => r.round > round);
  const { job } = manifest;
  const options = resolveSlurmOptions(job.slurm);
  // A step run twice (requeued) must not submit its next round twice.
  const decided = await readJsonIfPresent<RoundOutcome>(output, roundKeys(round).outcome);
  if (decided && later) {
    const step = state.detached?.steps.find((s) => s.round === later.round);
    if (step) return { next: later, stepJobId: step.jobId };
  }

  const states = await arrayStates(submitted.jobId, submitted.tasks);
  // Listed once: the round has ended, so nothing lands here meanwhile.
  const recorded = await listKeys(output, 'results');
  const failedKeys = await listKeys(output, roundKeys(round).failed);
  const recordKey = (id: string) => outputKeys(id, job.predictionsFormat).record;
  const failed: { attempt: Attempt; failure: PartitionFailure; init: boolean }[] = [];
  for (const [task, attempts] of manifest.tasks.entries()) {
    const log = taskLog(submitted, task);
    for (const attempt of attempts) {
      const { partition } = attempt;
      if (recorded.has(recordKey(partition.id))) continue;
      const failureKey = `${roundKeys(round).failed}/${partition.id}.json`;
      const wrote = failedKeys.has(failureKey) ? await readJson<TaskFailure>(output, failureKey) : undefined;
      const s = states.get(task) ?? { state: 'UNKNOWN' };
      const error = wrote
        ? { code: wrote.code, message: wrote.message }
        : taskEndedError(submitted.jobId, task, s, partition.id, log);
      failed.push({
        attempt,
        init: Boolean(wrote?.init),
        failure: {
          status: 'failed',
          partition: partition.id,
          data_path: partition.key,
          attempts: attempt.attempt,
          error,
          log,
        },
      });
    }
  }

  const earlier: PartitionFailure[] = [];
  for (const r of chain.filter((x) => x.round < round))
    earlier.push(
      ...((await readJsonIfPresent<RoundOutcome>(output, roundKeys(r.round).outcome))?.failures ?? []),
    );
  const total = chain[0].partitions;
  // A model that cannot load fails every partition alike: the chain stops, as the attached run does.
  const stop = failed.some((f) => f.init);
  let retry = stop
    ? []
    : failed.filter((f) => shouldRetry(f.failure.error, f.attempt.attempt, job.maxAttempts));
  let final = failed.filter((f) => !retry.includes(f));
  if (budgetExceeded(earlier.length + final.length, total, job.toleratedFailurePercentage)) {
    // The budget is spent: nothing new starts, so the retries this round would have had end here.
    final = failed;
    retry = [];
  }
  const outcome: RoundOutcome = {
    failures: final.map((f) => f.failure),
    retried: retry.map((f) => f.attempt.partition.id),
  };
  await output.put(roundKeys(round).outcome, `${JSON.stringify(outcome, null, 2)}\n`);

  if (retry.length) {
    const next = await submitRound(
      output,
      job,
      options,
      retry.map((f) => ({ partition: f.attempt.partition, attempt: f.attempt.attempt + 1 })),
    );
    return { next, stepJobId: await submitStep(output, job, options, next) };
  }

  const records: PartitionRecord[] = [];
  const seen = new Set<string>();
  let retries = 0;
  for (const r of chain) {
    const m =
      r.round === round
        ? manifest
        : await readJsonIfPresent<TaskManifest>(output, roundKeys(r.round).manifest);
    for (const a of m?.tasks.flat() ?? []) {
      // Round 2 on holds only retries: each attempt past the first is one.
      if (a.attempt > 1) retries++;
      seen.add(a.partition.id);
    }
  }
  for (const id of seen)
    if (recorded.has(recordKey(id))) records.push(await readJson<PartitionRecord>(output, recordKey(id)));
  const summary = await summarizeChain(output, {
    job,
    rounds: chain,
    plan,
    records,
    failures: [...earlier, ...outcome.failures],
    retries,
  });
  return { summary };
}
