// The error of a partition whose array task ended (failed, cancelled, timed out, lost its node) before
// the partition had a record: the same for the watching submitter and a detached chain's step.
import { ErrorCodes } from '../../errors.js';
import type { TaskState } from './commands.js';

/**
 * The attempt's error for partition `partition` of task `task` of array `jobId`, naming the Slurm state
 * and the task's log.
 *
 * @example taskEndedError('12', 3, { state: 'CANCELLED' }, '7', '/scratch/out/slurm/logs/12_3.out')
 */
export function taskEndedError(
  jobId: string,
  task: number,
  s: TaskState,
  partition: string,
  log: string,
): { code: string; message: string } {
  const why = s.reason ? ` (${s.reason})` : '';
  return {
    code: s.state === 'TIMEOUT' ? ErrorCodes.timeout : ErrorCodes.workerCrash,
    message: `Slurm array task ${jobId}_${task} ended ${s.state}${why} before partition ${partition} had a record; see its log ${log}`,
  };
}
