import { CaiError, ErrorCodes } from '../errors.js';
import type { SweepConfig } from './sweep-rows.js';

/**
 * How much of an input one configuration runs: the first K partitions, the first partitions that hold a
 * GB amount (2^30 bytes, as the seeds' "12.6 GB"), or all of them.
 * @example const sizes: DataSize[] = [{ partitions: 2 }, { gb: 1 }, { all: true }];
 */
export type DataSize = { readonly partitions: number } | { readonly gb: number } | { readonly all: true };

/**
 * One configuration of a sweep before it runs: which input, how many partitions, which batch size, and
 * the folder name its runs get (`<label>-run<k>`).
 * @example planSweep(inputs, [{ partitions: 2 }], [32], 'local').configs[0].label // 'p25MB-n2-b32'
 */
export interface PlannedConfig {
  readonly config: SweepConfig;
  readonly input: string;
  readonly label: string;
}

/**
 * An input as the sweep sees it: its URI and the bytes of each planned partition, in plan order.
 * @example const info: SweepInput = { input: 'parts25/', partitionBytes: [26214400, 26214400] };
 */
export interface SweepInput {
  readonly input: string;
  readonly partitionBytes: readonly number[];
}

const GB = 2 ** 30;
const MB = 2 ** 20;

/**
 * How many of an input's first partitions make up a data size, and whether the input was too small for
 * it. A GB amount takes the fewest partitions whose bytes reach it (1 GB of 25 MB partitions: 41).
 * @example partitionsForDataSize([10, 10, 10], { gb: 15 / 2 ** 30 }) // { count: 2, clamped: false }
 */
export function partitionsForDataSize(
  partitionBytes: readonly number[],
  size: DataSize,
): { count: number; clamped: boolean } {
  const n = partitionBytes.length;
  if ('all' in size) return { count: n, clamped: false };
  if ('partitions' in size) return { count: Math.min(size.partitions, n), clamped: size.partitions > n };
  const target = size.gb * GB;
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += partitionBytes[k];
    // Relative slack so a size written from rounded GB still lands on its partition count.
    if (sum >= target * (1 - 1e-9)) return { count: k + 1, clamped: false };
  }
  return { count: n, clamped: true };
}

function describeSize(size: DataSize): string {
  if ('all' in size) return 'all';
  return 'partitions' in size ? `${size.partitions} partitions` : `${size.gb} GB`;
}

/**
 * The configurations of a sweep, input by input, data size by data size, batch size by batch size. Each
 * input is labelled by its mean partition size in MB (2 decimals); data sizes that come to the same
 * partition count are run once. Warnings say which sizes were clamped or merged.
 * @example const { configs } = planSweep([{ input: 'p/', partitionBytes: [1e6, 1e6] }], [{ all: true }], [32, 64], 'local');
 */
export function planSweep(
  inputs: readonly SweepInput[],
  dataSizes: readonly DataSize[],
  batchSizes: readonly number[],
  engine: string,
): { configs: PlannedConfig[]; warnings: string[] } {
  const configs: PlannedConfig[] = [];
  const warnings: string[] = [];
  const byMB = new Map<number, string>();
  for (const { input, partitionBytes } of inputs) {
    if (partitionBytes.length === 0)
      throw new CaiError(ErrorCodes.notFound, input, 'has no partitions to sweep over; check the input');
    const total = partitionBytes.reduce((s, b) => s + b, 0);
    const partitionMB = Number((total / partitionBytes.length / MB).toFixed(2));
    const other = byMB.get(partitionMB);
    if (other !== undefined)
      throw new CaiError(
        ErrorCodes.option,
        input,
        `has the same mean partition size (${partitionMB} MB) as ${other}; a sweep tells inputs apart by partition size, so give folders partitioned at different sizes`,
      );
    byMB.set(partitionMB, input);
    const counts: number[] = [];
    for (const size of dataSizes) {
      const { count, clamped } = partitionsForDataSize(partitionBytes, size);
      if (clamped)
        warnings.push(
          `${input}: asked for ${describeSize(size)} but it holds ${partitionBytes.length} partitions (${(total / GB).toPrecision(4)} GB); using all of them`,
        );
      if (counts.includes(count)) {
        warnings.push(
          `${input}: ${describeSize(size)} is ${count} partitions, already in the sweep; run once`,
        );
        continue;
      }
      counts.push(count);
    }
    counts.sort((a, b) => a - b);
    for (const count of counts) {
      const bytes = partitionBytes.slice(0, count).reduce((s, b) => s + b, 0);
      for (const batchSize of batchSizes) {
        configs.push({
          input,
          label: `p${partitionMB}MB-n${count}-b${batchSize}`,
          config: {
            dataGB: Number((bytes / GB).toPrecision(4)),
            partitionMB,
            batchSize,
            partitions: count,
            engine,
          },
        });
      }
    }
  }
  return { configs, warnings };
}

/**
 * The order of the runs: repeat 1 of every configuration, then repeat 2, and so on, each repeat starting
 * at a different configuration. A fixed order would hand the first configuration the cold page cache
 * every time and the last one whatever drift the machine has; interleaving and rotating spreads both.
 * @example sweepSchedule(['a', 'b'], 2) // [['a', 1], ['b', 1], ['b', 2], ['a', 2]]
 */
export function sweepSchedule<T>(configs: readonly T[], runs: number): [T, number][] {
  const n = configs.length;
  const order: [T, number][] = [];
  for (let run = 1; run <= runs; run++) {
    const offset = Math.floor(((run - 1) * n) / runs);
    for (let i = 0; i < n; i++) order.push([configs[(i + offset) % n], run]);
  }
  return order;
}
