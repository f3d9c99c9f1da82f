// The Slurm client commands CAI runs (sbatch, scontrol, squeue, scancel, sinfo, sacct) and the parsing
// of what they print. Accounting (sacct) is used only when a job is no longer known to the controller.
import { execFile } from 'node:child_process';
import { CaiError } from '../../errors.js';

/** Error code of a scheduler that is missing, unreachable or refuses a job. */
export const E_SLURM = 'E_SLURM';

/** Array task states after which a task will not run again (Snakemake's failure list plus success). */
export const TERMINAL_STATES: ReadonlySet<string> = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'TIMEOUT',
  'OUT_OF_MEMORY',
  'NODE_FAIL',
  'BOOT_FAIL',
  'DEADLINE',
  'PREEMPTED',
  'REVOKED',
  // The controller no longer knows the task and no accounting says how it ended.
  'UNKNOWN',
]);

/** Runs a Slurm command; a missing command or a refusal becomes a CaiError quoting Slurm's own message. */
export function slurm(cmd: string, args: readonly string[], stdin?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, [...args], { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return reject(
          new CaiError(
            E_SLURM,
            cmd,
            `${cmd} is not on PATH: run this on a login node of a Slurm cluster (or load its module, e.g. \`module load slurm\`)`,
          ),
        );
      const said = (stderr || stdout || err.message).trim().replace(/\s+/g, ' ');
      reject(new CaiError(E_SLURM, `${cmd} ${args.join(' ')}`.slice(0, 200), `Slurm said: ${said}`));
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}

/**
 * Checks that a controller answers, before anything is submitted.
 * @example await checkCluster(); // throws E_SLURM naming what to do
 */
export async function checkCluster(): Promise<{ nodes: number; hosts: ReadonlySet<string> }> {
  let out: string;
  try {
    out = await slurm('sinfo', ['-h', '-N', '-o', '%N|%n']);
  } catch (err) {
    if (err instanceof CaiError && err.message.includes('not on PATH')) {
      throw new CaiError(
        E_SLURM,
        'sbatch',
        'the Slurm commands (sbatch, sinfo) are not on PATH: run this on a login node of a Slurm cluster',
      );
    }
    throw new CaiError(
      E_SLURM,
      'slurm',
      `no Slurm controller answered (${(err as Error).message}); check that you are on a login node and SLURM_CONF`,
    );
  }
  const lines = out.split('\n').filter(Boolean);
  return {
    nodes: new Set(lines.map((l) => l.split('|')[0])).size,
    // Each node's host (NodeHostname): several slurmd may share one machine.
    hosts: new Set(lines.map((l) => l.split('|')[1] ?? l.split('|')[0])),
  };
}

/**
 * Submits a batch script (given on stdin, so it need not be on a shared path) and returns the job id.
 * @example const id = await submit(script, ['--dependency=afterany:12']);
 */
export async function submit(script: string, args: readonly string[] = []): Promise<string> {
  const out = await slurm('sbatch', ['--parsable', ...args], script);
  // `--parsable` prints `id` or `id;cluster`.
  const id = out.trim().split(';')[0];
  if (!/^\d+$/.test(id)) throw new CaiError(E_SLURM, 'sbatch', `unexpected answer "${out.trim()}"`);
  return id;
}

/** Expands an array index list such as `0-3%2`, `4,6-9:2` or `7`. @example expandIndices('0-2%1') // [0, 1, 2] */
export function expandIndices(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split('%')[0].split(',')) {
    const m = /^(\d+)(?:-(\d+)(?::(\d+))?)?$/.exec(part.trim());
    if (!m) continue;
    const [from, to, step] = [Number(m[1]), Number(m[2] ?? m[1]), Number(m[3] ?? 1)];
    for (let i = from; i <= to; i += step) out.push(i);
  }
  return out;
}

/** One array task as the scheduler sees it. */
export interface TaskState {
  readonly state: string;
  readonly reason?: string;
  /** How many times the controller has requeued the task (scontrol's `Restarts=`), when it knows. */
  readonly restarts?: number;
}

/** Parses `scontrol -o show job <array>`: one line per task (pending ones grouped), into task -> state. */
export function parseScontrol(text: string): Map<number, TaskState> {
  const tasks = new Map<number, TaskState>();
  for (const line of text.split('\n')) {
    const field = (name: string) => new RegExp(`(?:^|\\s)${name}=(\\S*)`).exec(line)?.[1];
    const ids = field('ArrayTaskId');
    const state = field('JobState');
    if (ids === undefined || !state) continue;
    const reason = field('Reason');
    const restarts = Number(field('Restarts') ?? NaN);
    for (const i of expandIndices(ids))
      tasks.set(i, {
        state,
        ...(reason && reason !== 'None' ? { reason } : {}),
        ...(Number.isInteger(restarts) ? { restarts } : {}),
      });
  }
  return tasks;
}

/** Parses `sacct -n -P -X -o JobID,State` lines (`12_3|CANCELLED by 0`) into task -> state. */
export function parseSacct(text: string, jobId: string): Map<number, TaskState> {
  const tasks = new Map<number, TaskState>();
  for (const line of text.split('\n')) {
    const [id, state] = line.split('|');
    const m = new RegExp(`^${jobId}_(\\[?[\\d,%:-]+\\]?)$`).exec(id ?? '');
    if (!m || !state) continue;
    for (const i of expandIndices(m[1].replace(/[[\]]/g, ''))) tasks.set(i, { state: state.split(' ')[0] });
  }
  return tasks;
}

/**
 * The tasks of an array the queue still holds (pending, running, completing, being requeued): none of
 * them has ended, whatever state the controller shows for a finished run.
 *
 * @example (await queuedTasks('12')).has(3)
 */
export async function queuedTasks(jobId: string): Promise<Set<number>> {
  let out = '';
  try {
    out = await slurm('squeue', ['-h', '-r', '-j', jobId, '-o', '%K']);
  } catch (err) {
    if (!(err instanceof CaiError && /Invalid job id/i.test(err.message))) throw err;
  }
  return new Set(out.split('\n').flatMap((l) => expandIndices(l.trim())));
}

let sacctWorks: boolean | undefined;

/**
 * The state of every task of an array: from the controller while it remembers the job, then from
 * accounting when the cluster has it; tasks neither knows are `UNKNOWN`.
 *
 * @example (await arrayStates('12', 4)).get(3)?.state // 'CANCELLED'
 */
export async function arrayStates(jobId: string, tasks: number): Promise<Map<number, TaskState>> {
  let states = new Map<number, TaskState>();
  try {
    states = parseScontrol(await slurm('scontrol', ['-o', 'show', 'job', jobId]));
  } catch (err) {
    if (!(err instanceof CaiError && /Invalid job id/i.test(err.message))) throw err;
  }
  if (states.size < tasks && sacctWorks !== false) {
    try {
      const fromSacct = parseSacct(
        await slurm('sacct', ['-n', '-P', '-X', '-j', jobId, '-o', 'JobID,State']),
        jobId,
      );
      for (const [i, s] of fromSacct) if (!states.has(i)) states.set(i, s);
      sacctWorks = true;
    } catch {
      // No accounting on this cluster (common for users): never required.
      sacctWorks = false;
    }
  }
  // The tasks an array had not started yet share one record; once it is cancelled, that record has no
  // real index (4294967294) and its state is theirs.
  const rest = [...states].find(([i]) => i >= tasks)?.[1];
  const known = new Map<number, TaskState>();
  for (let i = 0; i < tasks; i++) known.set(i, states.get(i) ?? rest ?? { state: 'UNKNOWN' });
  return known;
}

/** Cancels jobs (or array elements `12_3`); ones already gone are not an error. @example await cancel(['12']) */
export async function cancel(ids: readonly string[], args: readonly string[] = []): Promise<void> {
  if (!ids.length) return;
  await slurm('scancel', [...args, ...ids]).catch((err: unknown) => {
    if (!(err instanceof CaiError && /Invalid job id|already completing|completed/i.test(err.message)))
      throw err;
  });
}
