// A detached run as a chain: round N's array, then a step (`cai slurm continue`, a one-CPU job that
// depends on the array) that reads what the round left, applies the job's retry policy and error
// budget (the same functions as the watching submitter's driver), and either submits round N+1 with
// another step after it, or writes the summary. Nothing waits on a login session.
import { CaiError } from '../../errors.js';
import type { PlannedPartition } from '../../plan/plan.js';
import { inputObjectPath } from '../../storage/open.js';
import { readJson, readJsonIfPresent } from '../../storage/json.js';
import { listKeys, type Store } from '../../storage/store.js';
import { OUTPUT_FOLDERS, OUTPUT_KEYS } from '../../storage/output-layout.js';
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
  /** Partitions left without a record because the user cancelled their array task: not retried. */
  readonly cancelled?: readonly string[];
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
  alsoAfter: readonly string[] = [],
): Promise<string> {
  const jobId = await submit(
    stepScript(options, {
      output: job.output,
      round: round.round,
      arrayJobId: [round.jobId, ...alsoAfter.filter((id) => id !== round.jobId)].join(':'),
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
  const plan = await readJsonIfPresent<PlannedPartition[]>(output, OUTPUT_KEYS.plan);
  if (!submitted || !manifest || !plan)
    throw new CaiError(
      E_SLURM,
      output.describe(OUTPUT_FOLDERS.slurm),
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
  const manifests = new Map<number, TaskManifest>([[round, manifest]]);
  for (const r of chain)
    if (!manifests.has(r.round)) {
      const m = await readJsonIfPresent<TaskManifest>(output, roundKeys(r.round).manifest);
      if (m) manifests.set(r.round, m);
    }
  // The rounds no step has decided yet: this one, and those a detached run adopted from a watcher
  // that was killed (their arrays ended before this step started). A partition's latest try wins.
  const outcomes = new Map<number, RoundOutcome>();
  for (const r of chain.filter((x) => x.round < round)) {
    const o = await readJsonIfPresent<RoundOutcome>(output, roundKeys(r.round).outcome);
    if (o) outcomes.set(r.round, o);
  }
  const lastDecided = Math.max(firstRound - 1, ...outcomes.keys());
  const latest = new Map<string, { r: RoundState; task: number; attempt: Attempt }>();
  for (const r of chain.filter((x) => x.round > lastDecided))
    manifests.get(r.round)?.tasks.forEach((attempts, task) => {
      for (const attempt of attempts) latest.set(attempt.partition.id, { r, task, attempt });
    });

  // Listed once: the rounds have ended, so nothing lands here meanwhile.
  const recorded = await listKeys(output, OUTPUT_FOLDERS.results);
  const recordKey = (id: string) => outputKeys(id, job.predictionsFormat).record;
  const statesOf = new Map<number, Awaited<ReturnType<typeof arrayStates>>>();
  const failedOf = new Map<number, Set<string>>();
  const failed: { attempt: Attempt; failure: PartitionFailure; init: boolean }[] = [];
  const cancelled: string[] = [];
  let cancelledBy = '';
  for (const { r, task, attempt } of latest.values()) {
    const { partition } = attempt;
    if (recorded.has(recordKey(partition.id))) continue;
    if (!statesOf.has(r.round)) statesOf.set(r.round, await arrayStates(r.jobId, r.tasks));
    if (!failedOf.has(r.round)) failedOf.set(r.round, await listKeys(output, roundKeys(r.round).failed));
    const log = taskLog(r, task);
    const failureKey = `${roundKeys(r.round).failed}/${partition.id}.json`;
    const wrote = failedOf.get(r.round)?.has(failureKey)
      ? await readJson<TaskFailure>(output, failureKey)
      : undefined;
    const s = statesOf.get(r.round)?.get(task) ?? { state: 'UNKNOWN' };
    if (!wrote && s.state === 'CANCELLED') {
      // The user's scancel (a step never cancels; `cai slurm cancel` stops the steps first).
      cancelled.push(partition.id);
      cancelledBy ||= `array task ${r.jobId}_${task} was cancelled (scancel); its partitions were not retried: run the same command again to resume`;
      continue;
    }
    const error = wrote
      ? { code: wrote.code, message: wrote.message }
      : taskEndedError(r.jobId, task, s, partition.id, log);
    failed.push({
      attempt,
      init: Boolean(wrote?.init),
      failure: {
        status: 'failed',
        partition: partition.id,
        data_path: inputObjectPath(job.input, partition.key),
        attempts: attempt.attempt,
        error,
        log,
      },
    });
  }

  const earlier: PartitionFailure[] = [...outcomes.values()].flatMap((o) => o.failures);
  const total = new Set([...manifests.values()].flatMap((m) => m.tasks.flat().map((a) => a.partition.id)))
    .size;
  // A model that cannot load fails every partition alike: the chain stops, as the attached run does;
  // and a user's cancel is their word: nothing is retried.
  const stop = failed.some((f) => f.init) || cancelled.length > 0;
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
    ...(cancelled.length ? { cancelled } : {}),
  };
  await output.put(roundKeys(round).outcome, `${JSON.stringify(outcome, null, 2)}\n`);

  if (retry.length) {
    // Grouped into tasks as the chain's first round was.
    const first = chain[0];
    const next = await submitRound(
      output,
      job,
      {
        ...options,
        throttle: first.throttle ?? options.throttle,
        partitionsPerTask:
          first.partitionsPerTask ??
          Math.max(1, ...(manifests.get(first.round)?.tasks.map((t) => t.length) ?? [1])),
      },
      retry.map((f) => ({ partition: f.attempt.partition, attempt: f.attempt.attempt + 1 })),
    );
    return { next, stepJobId: await submitStep(output, job, options, next) };
  }

  const records: PartitionRecord[] = [];
  const seen = new Set<string>();
  let retries = 0;
  for (const r of chain) {
    for (const a of manifests.get(r.round)?.tasks.flat() ?? []) {
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
    partitions: total,
    ...(cancelledBy ? { cancelled: cancelledBy } : {}),
  });
  return { summary };
}
