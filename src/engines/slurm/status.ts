// `cai slurm status` and `cai slurm cancel`: from an output (its slurm/state.json lists every round) or
// a job id, on any login node, while or after the submitter watches.
import type { PlannedPartition } from '../../plan/plan.js';
import { readJsonIfPresent } from '../../storage/json.js';
import { OUTPUT_FOLDERS, OUTPUT_KEYS } from '../../storage/output-layout.js';
import { openStore } from '../../storage/open.js';
import { arrayStates, cancel, parseScontrol, slurm, TERMINAL_STATES } from './commands.js';
import { readSlurmState } from './rounds.js';

/** What `cai slurm status` reports. */
export interface SlurmStatus {
  /** Planned partitions and those with a record, when the target was an output. */
  readonly partitions?: { readonly planned: number; readonly done: number };
  readonly rounds: readonly {
    readonly round?: number;
    readonly jobId: string;
    /** Array tasks by state, e.g. `{ COMPLETED: 3, RUNNING: 1 }`. */
    readonly tasks: Readonly<Record<string, number>>;
    /** Whether some task of the round has not ended yet. */
    readonly running?: boolean;
  }[];
  /** A detached run's steps: the job after each round that retries or summarizes. */
  readonly steps?: readonly { readonly round: number; readonly jobId: string; readonly state: string }[];
  /** The Summarize job of a detached run submitted before chains. */
  readonly summarize?: { readonly jobId: string; readonly state: string };
  /** Whether a job summary has been written. */
  readonly summarized?: boolean;
}

const isJobId = (target: string) => /^\d+(_\d+)?$/.test(target);

function countStates(states: Map<number, { state: string }>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { state } of states.values()) counts[state] = (counts[state] ?? 0) + 1;
  return counts;
}

/**
 * The state of a job's arrays (and, for an output, how many partitions have a record).
 * @example const status = await slurmStatus('/scratch/out'); // or slurmStatus('1234')
 */
export async function slurmStatus(target: string, s3Endpoint?: string): Promise<SlurmStatus> {
  if (isJobId(target)) {
    const states = parseScontrol(await slurm('scontrol', ['-o', 'show', 'job', target]));
    return { rounds: [{ jobId: target, tasks: countStates(states) }] };
  }
  const output = await openStore(target, { s3Endpoint });
  const state = await readSlurmState(output);
  const plan = (await readJsonIfPresent<PlannedPartition[]>(output, OUTPUT_KEYS.plan)) ?? [];
  let done = 0;
  for await (const o of output.list(OUTPUT_FOLDERS.results)) if (o.key.endsWith('.json')) done++;
  const rounds = [];
  for (const r of state.rounds) {
    const states = await arrayStates(r.jobId, r.tasks);
    const running = [...states.values()].some((t) => !TERMINAL_STATES.has(t.state));
    rounds.push({ round: r.round, jobId: r.jobId, tasks: countStates(states), running });
  }
  const steps = [];
  for (const step of state.detached?.steps ?? [])
    steps.push({ ...step, state: await arrayStatesOfJob(step.jobId) });
  let summarize: SlurmStatus['summarize'];
  if (state.summarizeJobId) {
    const s = await arrayStatesOfJob(state.summarizeJobId);
    summarize = { jobId: state.summarizeJobId, state: s };
  }
  return {
    partitions: { planned: plan.length, done },
    rounds,
    ...(steps.length ? { steps } : {}),
    ...(summarize ? { summarize } : {}),
    summarized: Boolean(await output.head(OUTPUT_KEYS.summary)),
  };
}

async function arrayStatesOfJob(jobId: string): Promise<string> {
  try {
    const out = await slurm('scontrol', ['-o', 'show', 'job', jobId]);
    return /JobState=(\S+)/.exec(out)?.[1] ?? 'UNKNOWN';
  } catch {
    return 'UNKNOWN';
  }
}

/**
 * Cancels a job id, or every array (and a detached run's steps) of the job in an output.
 * @example const ids = await slurmCancel('/scratch/out');
 */
export async function slurmCancel(target: string, s3Endpoint?: string): Promise<string[]> {
  if (isJobId(target)) {
    await cancel([target]);
    return [target];
  }
  const state = await readSlurmState(await openStore(target, { s3Endpoint }));
  // Steps first: a step left running could submit another round after its array is cancelled.
  const ids = [
    ...(state.detached?.steps.map((s) => s.jobId) ?? []),
    ...(state.summarizeJobId ? [state.summarizeJobId] : []),
    ...state.rounds.map((r) => r.jobId),
  ];
  await cancel(ids);
  return ids;
}

/** One line per round for people. @example statusText(await slurmStatus(out)) */
export function statusText(status: SlurmStatus): string {
  const lines: string[] = [];
  if (status.partitions)
    lines.push(`partitions: ${status.partitions.done}/${status.partitions.planned} have a record`);
  for (const r of status.rounds) {
    const tasks = Object.entries(r.tasks)
      .map(([s, n]) => `${n} ${s}`)
      .join(', ');
    lines.push(
      `${r.round ? `round ${r.round}: ` : ''}array ${r.jobId}: ${tasks || 'no tasks known'}${r.running ? ' (running)' : ''}`,
    );
  }
  for (const s of status.steps ?? [])
    lines.push(`step after round ${s.round}: job ${s.jobId}: ${s.state} (retries or summarizes)`);
  if (status.summarize) lines.push(`summarize job ${status.summarize.jobId}: ${status.summarize.state}`);
  if (status.summarized !== undefined)
    lines.push(status.summarized ? 'summary.json written' : 'not summarized yet');
  return lines.join('\n');
}
