// The Slurm engine: the driver's ready attempts become one job array (a round), records landing in the
// output settle partitions as they appear, and when an array task ends, its partitions still without a
// record are reported failed with the task's Slurm state and log. The driver (runMap) decides retries,
// which come back here and go out as a new, smaller array.
//
// The run owns its arrays, not this process: before submitting, it asks the queue which arrays listed
// in slurm/state.json still live (owner.ts). Those of this job are adopted (watched and settled, not
// submitted again), a live detached chain is followed, and another job's live arrays refuse the run.
import { CaiError } from '../../errors.js';
import { readJson, readJsonIfPresent } from '../../storage/json.js';
import { listKeys, type Store } from '../../storage/store.js';
import { OUTPUT_FOLDERS } from '../../storage/output-layout.js';
import type { ResolvedJob } from '../../job/spec.js';
import type { PartitionRecord } from '../../worker/record.js';
import { outputKeys } from '../../worker/run-partition.js';
import type { Attempt, MapControl, MapEngine } from '../map.js';
import { arrayStates, cancel, E_SLURM, queuedTasks, TERMINAL_STATES } from './commands.js';
import { resolveSlurmOptions, type SlurmOptions } from '../../job/slurm-options.js';
import { taskEndedError } from './ended.js';
import { adoptable, assertSameJob, describeLive, liveRuns } from './owner.js';
import { requeuePending } from './requeue.js';
import {
  openOutput,
  preflight,
  readSlurmState,
  submitRound,
  taskJob,
  taskLog,
  type Round,
} from './rounds.js';
import { roundKeys } from './script.js';
import { sizeRound, type Sizing } from './sizing.js';
import type { TaskFailure } from './task.js';
import type { RoundOutcome } from './chain.js';

/** Knobs of the Slurm engine that are not part of the job. */
export interface SlurmEngineOptions {
  /** Called once a round's array is submitted (job id, tasks), e.g. to print it. */
  readonly onSubmit?: (round: Round) => void;
  /** Called with one line for people: what was adopted or chosen, a controller outage. */
  readonly onNote?: (text: string) => void;
}

/** Error code of a watch that gave up on an unreachable controller: the arrays run on (exit 3). */
export const E_UNWATCHED = 'E_UNWATCHED';

// How long a task must stay in an end state before its partitions without a record count as failed.
const ENDED_AFTER_MS = 3000;
// The longest pause between two tries of an unreachable controller.
const OUTAGE_BACKOFF_MAX_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A round being watched: which attempts are still open, which tasks have ended. */
interface Watched {
  readonly round: Round;
  readonly open: Map<string, { attempt: Attempt; task: number }>;
  readonly ended: Set<number>;
  /** When each task was first seen in an end state. */
  readonly endingSince: Map<number, number>;
  cancelledPending: boolean;
}

// What a controller that does not answer looks like to the client commands.
const OUTAGE =
  /Unable to contact slurm controller|Socket timed out|Connection refused|Zero Bytes were transmitted|Communication connection failure|Slurm backup controller in standby/i;

const isOutage = (err: unknown) =>
  err instanceof CaiError && err.code === E_SLURM && OUTAGE.test(err.message);

/**
 * The engine that runs a job's map as Slurm job arrays. Each array task loads the model once and runs
 * its share of the partitions (`cai slurm task`), writing records and predictions to the job's output
 * exactly as a local worker does; this side only submits and watches (`squeue` and `scontrol`, then
 * `sacct` when the cluster keeps accounting). Retries, backoff and the error budget are runMap's.
 *
 * @example const result = await runMap(job, partitions, slurmEngine());
 */
export function slurmEngine(engineOptions: SlurmEngineOptions = {}): MapEngine {
  const note = engineOptions.onNote ?? (() => undefined);
  return {
    name: 'slurm',
    // The controller answers and no array of another job runs into the output: asked before planning
    // writes job.json, so such a refusal leaves an earlier run's files as they were.
    async preflight(spec: ResolvedJob): Promise<void> {
      const options = resolveSlurmOptions(spec.slurm);
      const job = taskJob(spec, options);
      await preflight(job, options);
      const output = await openOutput(job);
      assertSameJob(await liveRuns(output), output, job);
    },
    async run(control: MapControl): Promise<void> {
      const options = resolveSlurmOptions(control.job.slurm);
      const job = taskJob(control.job, options);
      const output = await openOutput(job);
      await preflight(job, options);
      let live = await liveRuns(output);
      assertSameJob(live, output, job);
      if (live.steps.length) {
        note(
          `a detached run of this job is live (${describeLive(live)}): following it instead of submitting again`,
        );
        await followChain(output, control, options);
        live = await liveRuns(output);
      }

      const active: Watched[] = [];
      let sizing: Sizing | undefined;
      const watchRound = (round: Round, open: Watched['open']) =>
        active.push({ round, open, ended: new Set(), endingSince: new Map(), cancelledPending: false });
      const launch = async (attempts: Attempt[]) => {
        // Retry rounds are grouped as the first round was (its partitions per task, its throttle).
        if (!sizing) {
          sizing = await sizeRound(options, attempts.length, output);
          note(sizing.why);
        }
        const round = await submitRound(
          output,
          job,
          { ...options, throttle: sizing.throttle, partitionsPerTask: sizing.partitionsPerTask },
          attempts,
        );
        engineOptions.onSubmit?.(round);
        const open = new Map<string, { attempt: Attempt; task: number }>();
        round.attempts.forEach((list, task) => {
          for (const attempt of list) open.set(attempt.partition.id, { attempt, task });
        });
        watchRound(round, open);
      };

      // Arrays of this job still queued (a watcher killed mid-run, a rerun): watch them, do not resubmit.
      const ready = control.take();
      for (const { round, attempts } of adoptable(live, new Set(ready.map((a) => a.partition.id)))) {
        const tasks = new Set([...attempts.values()].map((a) => a.task));
        note(
          `adopted array ${round.round.jobId} (round ${round.round.round}): ${tasks.size} of its task(s) still queued hold ${attempts.size} partition(s) without a record; watching them instead of submitting again`,
        );
        const per = Math.max(...round.manifest.tasks.map((t) => t.length));
        sizing ??= {
          throttle: round.round.throttle ?? options.throttle ?? round.round.tasks,
          partitionsPerTask: per,
          why: '',
        };
        watchRound(
          {
            ...round.round,
            attempts: round.manifest.tasks,
            manifestUri: roundKeys(round.round.round).manifest,
          },
          attempts,
        );
      }
      const adopted = new Set(active.flatMap((w) => [...w.open.keys()]));
      const rest = ready.filter((a) => !adopted.has(a.partition.id));
      let unwatched = false;
      try {
        if (rest.length) await launch(rest);
        let downSince: number | undefined;
        let backoffMs = options.pollSeconds * 1000;
        for (;;) {
          if (!active.length) {
            const first = control.take(1)[0] ?? (await control.next());
            if (!first) break;
            // Retries of one round's failures come back at jittered times: they go out together.
            while (
              control.waiting > 0 &&
              control.ready + 1 < (sizing?.partitionsPerTask ?? 1) &&
              !control.stopped
            )
              await sleep(100);
            if (control.stopped) {
              control.giveBack([first]);
              continue;
            }
            await launch([first, ...control.take()]);
            continue;
          }
          await sleep(downSince === undefined ? options.pollSeconds * 1000 : backoffMs);
          try {
            for (const w of [...active]) {
              await watch(w, output, control);
              // Every partition of the round is settled: its tasks are ending on their own, and the
              // job need not wait for them to leave the queue.
              if (w.ended.size === w.round.tasks || !w.open.size) active.splice(active.indexOf(w), 1);
            }
            if (control.stopped) {
              // The budget is spent, the user cancelled, or the job aborted: tasks not started yet
              // never will be; those running are waited for (their records or failures still count).
              for (const w of active.filter((x) => !x.cancelledPending)) {
                w.cancelledPending = true;
                await cancel([w.round.jobId], ['--state=PENDING']);
              }
            } else if (
              control.ready > 0 &&
              (control.waiting === 0 || control.ready >= (sizing?.partitionsPerTask ?? 1))
            )
              await launch(control.take());
            if (downSince !== undefined)
              note(
                `the Slurm controller answers again after ${((Date.now() - downSince) / 1000).toFixed(0)} s`,
              );
            downSince = undefined;
            backoffMs = options.pollSeconds * 1000;
          } catch (err) {
            if (!isOutage(err)) throw err;
            const now = Date.now();
            if (downSince === undefined) {
              downSince = now;
              note(
                `the Slurm controller does not answer (${(err as Error).message}); the arrays run on, still watching for up to ${options.controllerTimeoutSeconds} s (slurm.controllerTimeoutSeconds, --controller-timeout)`,
              );
            }
            if (now - downSince >= options.controllerTimeoutSeconds * 1000) {
              unwatched = true;
              const arrays = active.map((w) => w.round.jobId).join(', ');
              throw new CaiError(
                E_UNWATCHED,
                arrays,
                `the Slurm controller has not answered for ${options.controllerTimeoutSeconds} s; array(s) ${arrays} run on unwatched. Run the same command again once \`squeue\` answers: it adopts them (or stop them with \`cai slurm cancel ${job.output}\`)`,
              );
            }
            backoffMs = Math.min(OUTAGE_BACKOFF_MAX_MS, backoffMs * 2);
          }
        }
      } finally {
        // Leaving early (an error, Ctrl-C): nothing of this job may keep running unwatched, unless the
        // controller is gone (then nothing can be cancelled, and rerunning adopts the arrays).
        if (active.length && !unwatched)
          await cancel(active.map((w) => w.round.jobId)).catch(() => undefined);
      }
    },
  };
}

/**
 * Waits for a live detached chain of the same job to end, then settles the attempts from what it left:
 * records, and the final failures its steps decided (with the try they reached, so a partition out of
 * tries is not tried again). Partitions it left without either go out as this run's own round.
 */
async function followChain(output: Store, control: MapControl, options: SlurmOptions): Promise<void> {
  for (;;) {
    const live = await liveRuns(output);
    if (!live.steps.length && !live.rounds.length) break;
    await sleep(Math.max(1000, options.pollSeconds * 1000));
  }
  const state = await readSlurmState(output);
  const failures = new Map<string, RoundOutcome['failures'][number]>();
  for (const r of state.rounds)
    for (const f of (await readJsonIfPresent<RoundOutcome>(output, roundKeys(r.round).outcome))?.failures ??
      [])
      failures.set(f.partition, f);
  const records = await listKeys(output, OUTPUT_FOLDERS.results);
  const back: Attempt[] = [];
  for (const attempt of control.take()) {
    const key = outputKeys(attempt.partition.id, control.job.predictionsFormat).record;
    const failed = failures.get(attempt.partition.id);
    if (records.has(key))
      control.settle(attempt, { ok: true, record: await readJson<PartitionRecord>(output, key) });
    else if (failed)
      control.settle(
        { partition: attempt.partition, attempt: failed.attempts },
        { ok: false, error: failed.error, ...(failed.log ? { log: failed.log } : {}) },
      );
    else back.push(attempt);
  }
  control.giveBack(back);
}

/** One look at a round: records and failures that landed, then tasks that ended without them. */
async function watch(w: Watched, output: Store, control: MapControl): Promise<void> {
  const { round } = w;
  // States first: whatever a task wrote before it ended is in the listings that follow.
  const queued = await queuedTasks(round.jobId);
  const states = await arrayStates(round.jobId, round.tasks);
  const format = control.job.predictionsFormat;
  const records = await listKeys(output, OUTPUT_FOLDERS.results);
  const failedKey = roundKeys(round.round).failed;
  const failed = await listKeys(output, failedKey);
  for (const [id, { attempt, task }] of [...w.open]) {
    const recordKey = outputKeys(id, format).record;
    const failureKey = `${failedKey}/${id}.json`;
    const log = taskLog(round, task);
    if (records.has(recordKey)) {
      w.open.delete(id);
      control.settle(attempt, { ok: true, record: await readJson<PartitionRecord>(output, recordKey) });
    } else if (failed.has(failureKey)) {
      w.open.delete(id);
      const f = await readJson<TaskFailure>(output, failureKey);
      if (f.init) {
        control.giveBack([attempt]);
        control.abort(new CaiError(f.code, control.job.model, `${f.message} (array task log: ${log})`));
      } else control.settle(attempt, { ok: false, error: { code: f.code, message: f.message }, log });
    }
  }
  const now = Date.now();
  for (const [task, s] of states) {
    if (w.ended.has(task)) continue;
    if (queued.has(task) || !TERMINAL_STATES.has(s.state)) {
      w.endingSince.delete(task);
      continue;
    }
    // A task being requeued (preempted, `scontrol requeue`) shows its killed run's end state in
    // scontrol while squeue still holds it, and a busy controller may show it out of the queue, ended,
    // until it has processed the requeue: slurmstepd's notice in the task's log says the run was killed
    // to be requeued, and the controller's restart count says whether that requeue has happened yet.
    const log = taskLog(round, task);
    if (await requeuePending(s, log)) {
      w.endingSince.delete(task);
      continue;
    }
    // The queue can also let a task go for a moment between two states: an end must last a little.
    const since = w.endingSince.get(task) ?? now;
    w.endingSince.set(task, since);
    if (now - since < ENDED_AFTER_MS) continue;
    w.ended.add(task);
    const mine = [...w.open].filter(([, open]) => open.task === task);
    // CANCELLED that this run did not ask for (it cancels only pending tasks once it stops, and a
    // requeue or preemption is told apart above; time limits, node failures end otherwise): the user's
    // `scancel`, or `cai slurm cancel` from another shell. Their word ends the run, without retries.
    if (s.state === 'CANCELLED' && !w.cancelledPending && !control.stopped && mine.length)
      control.cancel(
        `array task ${round.jobId}_${task} was cancelled outside this run (scancel); its partitions were not retried: run the same command again to resume`,
      );
    for (const [id, open] of mine) {
      w.open.delete(id);
      if (s.state === 'CANCELLED' && control.stopped) {
        // Cancelled before it ran them (by the user, or by this run once it stopped): not started.
        control.giveBack([open.attempt]);
        continue;
      }
      // A try that ran and ended without its record failed, whether or not the job is stopping: its
      // partition's own attempts and error say so (the driver retries nothing once stopped).
      control.settle(open.attempt, { ok: false, error: taskEndedError(round.jobId, task, s, id, log), log });
    }
  }
}
