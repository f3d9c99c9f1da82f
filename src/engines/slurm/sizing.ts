// How many array tasks a round has and how many run at once, when the job does not say. The rule is
// docs/slurm.md's ("Choosing partitions per task"): no fewer tasks than can run at once, so no slot sits
// idle, and as few as that, so each task loads the model once for as large a share as possible; a task
// must also fit its --time with room to spare.
import type { SlurmOptions } from '../../job/slurm-options.js';
import { readJsonIfPresent } from '../../storage/json.js';
import { listKeys, type Store } from '../../storage/store.js';
import { OUTPUT_FOLDERS } from '../../storage/output-layout.js';
import type { PartitionRecord } from '../../worker/record.js';
import { slurm } from './commands.js';

/** What the partition's nodes offer (sinfo). */
export interface ClusterSlots {
  /** The Slurm partition read (the cluster's default when the job names none). */
  readonly partition: string;
  readonly nodes: number;
  readonly cpus: number;
  /** Array tasks of `cpusPerTask` CPUs that fit on the nodes at once. */
  readonly slots: number;
}

/** The shape of a round: at most `throttle` tasks at once, `partitionsPerTask` partitions each. */
export interface Sizing {
  readonly throttle: number;
  readonly partitionsPerTask: number;
  /** One line saying what was chosen and why. */
  readonly why: string;
}

/** The throttle when nothing better is known (sinfo printed nothing usable). */
export const FALLBACK_THROTTLE = 100;

/**
 * Reads the nodes and CPUs of a partition (`sinfo -N`), and how many tasks of `cpusPerTask` fit at once.
 * @example (await clusterSlots('debug', 1)).slots // 4 on two nodes of 2 CPUs
 */
export async function clusterSlots(
  partition: string | undefined,
  cpusPerTask: number,
): Promise<ClusterSlots> {
  const out = await slurm('sinfo', ['-h', '-N', '-o', '%N|%c|%P', ...(partition ? ['-p', partition] : [])]);
  const nodes = new Map<string, number>();
  let name = partition ?? '';
  for (const line of out.split('\n')) {
    const [node, cpus, part] = line.trim().split('|');
    if (!node || !part) continue;
    // Without a partition: the default one (sinfo marks it with *).
    if (!partition && !part.endsWith('*')) continue;
    name = part.replace(/\*$/, '');
    nodes.set(node, Number(cpus) || 0);
  }
  const cpus = [...nodes.values()].reduce((a, b) => a + b, 0);
  const slots = [...nodes.values()].reduce((a, c) => a + Math.floor(c / cpusPerTask), 0);
  return { partition: name || '(default)', nodes: nodes.size, cpus, slots };
}

/** Seconds of a Slurm time limit (`30`, `10:00`, `1:00:00`, `1-12`, `1-12:30`), or undefined. */
export function slurmTimeSeconds(time: string | undefined): number | undefined {
  if (!time || /^(UNLIMITED|INFINITE)$/i.test(time)) return undefined;
  const [days, rest] = time.includes('-') ? time.split('-') : ['0', time];
  const parts = rest.split(':').map(Number);
  const d = Number(days) * 86400;
  if (time.includes('-')) {
    const [h = 0, m = 0, s = 0] = parts;
    return d + h * 3600 + m * 60 + s;
  }
  if (parts.length === 1) return parts[0] * 60;
  if (parts.length === 2) return parts[0] * 60 + parts[1];
  return parts[0] * 3600 + parts[1] * 60 + parts[2];
}

/**
 * The round's shape for `partitions` partitions: the job's `throttle`/`partitionsPerTask` when given
 * (flags win), else the cluster's slots with one task per slot, each task's share capped at half its
 * `--time` when the seconds a partition takes are known (an earlier run's records).
 *
 * @example chooseSizing(93, options, { partition: 'debug', nodes: 1, cpus: 2, slots: 2 }).partitionsPerTask // 47
 */
export function chooseSizing(
  partitions: number,
  options: Pick<SlurmOptions, 'throttle' | 'partitionsPerTask' | 'time' | 'cpusPerTask'>,
  cluster: ClusterSlots | undefined,
  secondsPerPartition?: number,
): Sizing {
  const n = Math.max(1, partitions);
  if (options.partitionsPerTask !== undefined || options.throttle !== undefined) {
    const throttle = options.throttle ?? cluster?.slots ?? FALLBACK_THROTTLE;
    const per = options.partitionsPerTask ?? Math.ceil(n / Math.max(1, throttle));
    return {
      throttle: Math.max(1, throttle),
      partitionsPerTask: per,
      why: `as the job says: ${Math.ceil(n / per)} task(s) of up to ${per} partition(s), at most ${throttle} at once`,
    };
  }
  if (!cluster || cluster.slots < 1) {
    const per = Math.ceil(n / FALLBACK_THROTTLE);
    return {
      throttle: FALLBACK_THROTTLE,
      partitionsPerTask: per,
      why: `sinfo showed no node that fits --cpus-per-task ${options.cpusPerTask}: ${Math.ceil(n / per)} task(s) of up to ${per} partition(s), at most ${FALLBACK_THROTTLE} at once (set --throttle/--partitions-per-task)`,
    };
  }
  const throttle = cluster.slots;
  let per = Math.ceil(n / throttle);
  const limit = slurmTimeSeconds(options.time);
  let capped = '';
  if (limit && secondsPerPartition && secondsPerPartition > 0) {
    const fit = Math.max(1, Math.floor((limit * 0.5) / secondsPerPartition));
    if (fit < per) {
      per = fit;
      capped = `, capped so a task takes at most half its --time ${options.time} at ${secondsPerPartition.toFixed(1)} s a partition`;
    }
  }
  const tasks = Math.ceil(n / per);
  return {
    throttle,
    partitionsPerTask: per,
    why: `sized to the cluster: partition ${cluster.partition} has ${cluster.nodes} node(s), ${cluster.cpus} CPU(s), room for ${throttle} task(s) of ${options.cpusPerTask} CPU(s) at once: ${tasks} task(s) of up to ${per} partition(s), one model load each${capped} (--throttle/--partitions-per-task choose otherwise)`,
  };
}

/**
 * The mean seconds a partition took in this output's records so far (an earlier run), if any.
 * @example await secondsPerPartition(output) // 4.2
 */
export async function secondsPerPartition(output: Store): Promise<number | undefined> {
  const keys = [...(await listKeys(output, OUTPUT_FOLDERS.results))]
    .filter((k) => k.endsWith('.json'))
    .slice(0, 20);
  const seconds: number[] = [];
  for (const key of keys) {
    const r = await readJsonIfPresent<PartitionRecord>(output, key).catch(() => undefined);
    if (r?.timings?.total) seconds.push(r.timings.total);
  }
  return seconds.length ? seconds.reduce((a, b) => a + b, 0) / seconds.length : undefined;
}

/**
 * The shape of a job's first round on this cluster: `chooseSizing` with the partition's slots.
 * @example const sizing = await sizeRound(options, attempts.length, output);
 */
export async function sizeRound(options: SlurmOptions, partitions: number, output: Store): Promise<Sizing> {
  const cluster =
    options.throttle !== undefined && options.partitionsPerTask !== undefined
      ? undefined
      : await clusterSlots(options.partition, options.cpusPerTask).catch(() => undefined);
  return chooseSizing(partitions, options, cluster, await secondsPerPartition(output));
}
