// Whether an array task that looks ended is in fact on its way back to the queue. When slurmstepd kills
// a run to requeue it (`scontrol requeue`, preemption with PreemptMode=REQUEUE), it writes a notice into
// the task's log at once, while the controller counts the requeue (`Restarts=`) only once it has
// processed it: a busy controller can show the killed run as ended, out of the queue, for seconds.
import { readFile } from 'node:fs/promises';
import type { TaskState } from './commands.js';

// What slurmstepd prints when it kills a run that will be requeued, e.g.
// `slurmstepd-n1: error: *** JOB 12 ON n1 CANCELLED AT 2026-12-03T15:06:07 DUE TO JOB REQUEUE ***`.
const REQUEUE_NOTICE = /\*\*\* JOB \d+ ON \S+ CANCELLED AT \S+ DUE TO (?:JOB REQUEUE|PREEMPTION) \*\*\*/g;

/** How many runs of a task were killed to be requeued, from its log; 0 when the log cannot be read. */
export async function requeueNotices(log: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(log, 'utf8');
  } catch {
    return 0;
  }
  return text.match(REQUEUE_NOTICE)?.length ?? 0;
}

/**
 * Whether a task in an end state is still due to come back: its log says more runs were killed for a
 * requeue than the controller has requeued so far. Once the controller catches up (its `Restarts=`
 * reaches the notices), the task is pending again or its end is real (e.g. cancelled while pending).
 *
 * @example if (await requeuePending(state, '/scratch/out/slurm/logs/12_3.out')) continue;
 */
export async function requeuePending(state: TaskState, log: string): Promise<boolean> {
  // Accounting, or no record at all: the controller has let the task go, requeues included.
  if (state.restarts === undefined) return false;
  return (await requeueNotices(log)) > state.restarts;
}
