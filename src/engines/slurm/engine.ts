// The Slurm engine: the driver's ready attempts become one job array (a round), records landing in the
// output settle partitions as they appear, and when an array task ends, its partitions still without a
// record are reported failed with the task's Slurm state and log. The driver (runMap) decides retries,
// which come back here and go out as a new, smaller array.
import { CaiError } from '../../errors.js';
import { readJson } from '../../storage/json.js';
import { listKeys, type Store } from '../../storage/store.js';
import type { PartitionRecord } from '../../worker/record.js';
import { outputKeys } from '../../worker/run-partition.js';
import type { Attempt, MapControl, MapEngine } from '../map.js';
import { arrayStates, cancel, queuedTasks, TERMINAL_STATES } from './commands.js';
import { resolveSlurmOptions } from '../../job/slurm-options.js';
import { taskEndedError } from './ended.js';
import { requeuePending } from './requeue.js';
import { openOutput, preflight, submitRound, taskJob, taskLog, type Round } from './rounds.js';
import { roundKeys } from './script.js';
import type { TaskFailure } from './task.js';

/** Knobs of the Slurm engine that are not part of the job. */
export interface SlurmEngineOptions {
  /** Called once a round's array is submitted (job id, tasks), e.g. to print it. */
  readonly onSubmit?: (round: Round) => void;
}

// How long a task must stay in an end state before its partitions without a record count as failed.
const ENDED_AFTER_MS = 3000;

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

/**
 * The engine that runs a job's map as Slurm job arrays. Each array task loads the model once and runs
 * its share of the partitions (`cai slurm task`), writing records and predictions to the job's output
 * exactly as a local worker does; this side only submits and watches (`squeue` and `scontrol`, then
 * `sacct` when the cluster keeps accounting). Retries, backoff and the error budget are runMap's.
 *
 * @example const result = await runMap(job, partitions, slurmEngine());
 */
export function slurmEngine(engineOptions: SlurmEngineOptions = {}): MapEngine {
  return {
    name: 'slurm',
    async run(control: MapControl): Promise<void> {
      const options = resolveSlurmOptions(control.job.slurm);
      const job = taskJob(control.job, options);
      const output = await openOutput(job);
      await preflight(job, options);
      const active: Watched[] = [];
      const launch = async (attempts: Attempt[]) => {
        const round = await submitRound(output, job, options, attempts);
        engineOptions.onSubmit?.(round);
        const open = new Map<string, { attempt: Attempt; task: number }>();
        round.attempts.forEach((list, task) => {
          for (const attempt of list) open.set(attempt.partition.id, { attempt, task });
        });
        active.push({ round, open, ended: new Set(), endingSince: new Map(), cancelledPending: false });
      };
      try {
        for (;;) {
          if (!active.length) {
            const first = control.take(1)[0] ?? (await control.next());
            if (!first) break;
            await launch([first, ...control.take()]);
            continue;
          }
          await sleep(options.pollSeconds * 1000);
          for (const w of [...active]) {
            await watch(w, output, control);
            if (w.ended.size === w.round.tasks) active.splice(active.indexOf(w), 1);
          }
          if (control.stopped) {
            // The budget is spent or the job aborted: tasks not started yet never will be.
            for (const w of active.filter((x) => !x.cancelledPending)) {
              w.cancelledPending = true;
              await cancel([w.round.jobId], ['--state=PENDING']);
            }
          } else if (control.ready > 0) await launch(control.take());
        }
      } finally {
        // Leaving early (an error, Ctrl-C): nothing of this job may keep running unwatched.
        if (active.length) await cancel(active.map((w) => w.round.jobId)).catch(() => undefined);
      }
    },
  };
}

/** One look at a round: records and failures that landed, then tasks that ended without them. */
async function watch(w: Watched, output: Store, control: MapControl): Promise<void> {
  const { round } = w;
  // States first: whatever a task wrote before it ended is in the listings that follow.
  const queued = await queuedTasks(round.jobId);
  const states = await arrayStates(round.jobId, round.tasks);
  const format = control.job.predictionsFormat;
  const records = await listKeys(output, 'results');
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
    for (const [id, open] of [...w.open]) {
      if (open.task !== task) continue;
      w.open.delete(id);
      if (control.stopped) {
        // Not run to an end because the job stopped: skipped, not failed.
        control.giveBack([open.attempt]);
        continue;
      }
      control.settle(open.attempt, { ok: false, error: taskEndedError(round.jobId, task, s, id, log), log });
    }
  }
}
