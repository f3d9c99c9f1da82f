import { CaiError, ErrorCodes } from '../errors.js';
import type { Calibration } from './calibration.js';
import { priceUsage, usageForPartitions, type Bill, type ChildWorkflow } from './cost.js';
import { LAMBDA_ARCHS, type LambdaArch } from './prices.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/**
 * How a projection models Lambda and Step Functions. Every number is an assumption, stated here once.
 * @example projectJob(cal, { dataGB: 100, partitionMB: 50, memoryMB: 10240 }, { ...ESTIMATE_DEFAULTS, concurrency: 3000 })
 */
export interface EstimateOptions {
  /** Concurrent Lambdas: the account quota (1,000 by default), at most 10,000 for a Distributed Map. */
  readonly concurrency: number;
  readonly arch: LambdaArch;
  readonly childWorkflow: ChildWorkflow;
  /** Speed of one Lambda vCPU relative to one core of the calibration machine. */
  readonly lambdaSpeedRatio: number;
  /** Amdahl parallel fraction of the per-item work: how well it uses more cores. */
  readonly parallelFraction: number;
  /** Lambda runtime / container init before the model loads, seconds. */
  readonly coldStartS: number;
  /** S3 download bandwidth of one Lambda, MB/s. */
  readonly s3MBps: number;
  /** Latency of one small S3 PUT (predictions, record), seconds. */
  readonly putS: number;
  /** Distributed Map start-up: reading the item list and creating the Map Run, seconds. */
  readonly mapOverheadS: number;
  /** New concurrent Lambdas per 10 seconds (1,000 per function since November 2023). */
  readonly scalingPer10s: number;
  /** Summarize reads every record: seconds per read, and reads in flight at once. */
  readonly summarizeReadS: number;
  readonly summarizeParallelism: number;
  /** Memory a partition needs, as a multiple of its size (raw bytes plus decoded tensors). */
  readonly memoryPerPartitionByte: number;
  /** Lambda's 15-minute limit, seconds. */
  readonly lambdaTimeoutS: number;
}

/**
 * Default assumptions of `cai estimate`. vCPUs follow memory (1,769 MB = 1 vCPU, proportional up to 6);
 * a Lambda's S3 GET is taken at ~90 MB/s; cold starts pay runtime init plus the calibrated model load.
 * @example projectJob(cal, { dataGB: 12.6, partitionMB: 25, memoryMB: 10240 }, ESTIMATE_DEFAULTS)
 */
export const ESTIMATE_DEFAULTS: EstimateOptions = Object.freeze({
  concurrency: 1000,
  arch: 'x86_64',
  childWorkflow: 'standard',
  lambdaSpeedRatio: 1,
  parallelFraction: 0.9,
  coldStartS: 3,
  s3MBps: 90,
  putS: 0.05,
  mapOverheadS: 2,
  scalingPer10s: 1000,
  summarizeReadS: 0.03,
  summarizeParallelism: 32,
  memoryPerPartitionByte: 2,
  lambdaTimeoutS: 900,
});

/**
 * The CPU share a Lambda memory setting buys: 1 vCPU per 1,769 MB, proportional, at most 6 (10,240 MB
 * gives 5.79 vCPUs' worth of time although `nproc` shows 6).
 * @example lambdaVcpus(10240) // 5.79
 */
export function lambdaVcpus(memoryMB: number): number {
  return Math.min(6, memoryMB / 1769);
}

/**
 * Amdahl speed-up of `cores` over one core with parallel fraction `p`; below one core, a throttled share.
 * @example speedup(2, 0.9) // 1.82
 */
export function speedup(cores: number, p: number): number {
  return cores <= 1 ? cores : 1 / (1 - p + p / cores);
}

/**
 * One projected job.
 * @example const p = projectJob(cal, { dataGB: 12.6, partitionMB: 25, memoryMB: 10240 }); p.mapS
 */
export interface Projection {
  readonly dataGB: number;
  readonly partitionMB: number;
  readonly memoryMB: number;
  readonly partitions: number;
  readonly itemsPerPartition: number;
  readonly vcpus: number;
  readonly itemsPerSecondPerLambda: number;
  /** Per partition: S3 download, compute, output writes; and the extra seconds of a cold one. */
  readonly transferS: number;
  readonly computeS: number;
  readonly writeS: number;
  readonly partitionS: number;
  readonly coldS: number;
  /** Lambdas running at once, and partitions each of them runs one after the other (rounded up). */
  readonly lambdas: number;
  readonly waves: number;
  readonly mapS: number;
  readonly initializeS: number;
  readonly summarizeS: number;
  readonly totalS: number;
  readonly costUSD: number;
  readonly bill: Bill;
  readonly feasible: boolean;
  readonly reasons: readonly string[];
}

function checkOptions(o: EstimateOptions): void {
  if (!(o.concurrency >= 1 && o.concurrency <= 10000))
    throw new CaiError(
      ErrorCodes.option,
      'concurrency',
      `must be 1 to 10,000 (the Distributed Map limit), got ${o.concurrency}`,
    );
  if (!LAMBDA_ARCHS.includes(o.arch))
    throw new CaiError(
      ErrorCodes.option,
      'arch',
      `unknown architecture "${o.arch}"; use ${LAMBDA_ARCHS.join(' or ')}`,
    );
  if (!(o.parallelFraction >= 0 && o.parallelFraction <= 1))
    throw new CaiError(
      ErrorCodes.option,
      'parallel-fraction',
      `must be between 0 and 1, got ${o.parallelFraction}`,
    );
  for (const k of ['lambdaSpeedRatio', 's3MBps', 'scalingPer10s', 'summarizeParallelism'] as const)
    if (!(o[k] > 0)) throw new CaiError(ErrorCodes.option, k, `must be positive, got ${o[k]}`);
}

/**
 * Seconds until `partitions` equal tasks finish on `lambdas` workers that come up `rate` per 10 s, each
 * paying `cold` once before its first task: the smallest T at which the finished count reaches the total.
 */
function makespan(partitions: number, lambdas: number, rate: number, cold: number, task: number): number {
  const done = (t: number) => {
    let n = 0;
    for (let k = 0; k * rate < lambdas; k++) {
      const free = t - 10 * k - cold;
      if (free >= task) n += Math.min(rate, lambdas - k * rate) * Math.floor(free / task + 1e-9);
    }
    return n;
  };
  let hi = 10 * Math.ceil(lambdas / rate) + cold + task * Math.ceil(partitions / lambdas) + task;
  let lo = 0;
  for (let i = 0; i < 60 && hi - lo > 1e-4; i++) {
    const mid = (lo + hi) / 2;
    if (done(mid) >= partitions) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * Projects wall time and cost of one job on Lambda + Step Functions from a calibration: partitions of
 * `partitionMB` (items from bytes per item), each a Lambda of `memoryMB` whose speed is the calibrated
 * per-core rate scaled by its vCPUs; at most `concurrency` at once, coming up 1,000 per 10 s; each new
 * Lambda pays a cold start; the slowest of N partitions is allowed cv x sqrt(2 ln N) over the mean.
 * @example projectJob(cal, { dataGB: 12.6, partitionMB: 25, memoryMB: 10240 }).totalS
 */
export function projectJob(
  cal: Calibration,
  job: { readonly dataGB: number; readonly partitionMB: number; readonly memoryMB: number },
  options: EstimateOptions = ESTIMATE_DEFAULTS,
): Projection {
  checkOptions(options);
  const o = options;
  if (!(job.dataGB > 0 && job.partitionMB > 0))
    throw new CaiError(ErrorCodes.option, 'data', 'data and partition sizes must be positive');
  if (!(job.memoryMB >= 128 && job.memoryMB <= 10240))
    throw new CaiError(
      ErrorCodes.option,
      'memory',
      `Lambda memory must be 128 to 10240 MB, got ${job.memoryMB}`,
    );
  const partitionBytes = job.partitionMB * MiB;
  const partitions = Math.ceil((job.dataGB * GiB) / partitionBytes - 1e-9);
  const itemsPerPartition = Math.max(1, Math.floor(partitionBytes / cal.bytesPerItem));
  const vcpus = lambdaVcpus(job.memoryMB);
  const perCoreRate = 1 / cal.secondsPerItem / speedup(cal.threads, o.parallelFraction);
  const rate = perCoreRate * o.lambdaSpeedRatio * speedup(vcpus, o.parallelFraction);
  const transferS = job.partitionMB / o.s3MBps;
  const computeS = itemsPerPartition / rate;
  const writeS = 2 * o.putS;
  const partitionS = transferS + computeS + writeS;
  const coldS = o.coldStartS + cal.modelLoadS;
  const lambdas = Math.min(partitions, o.concurrency);
  const waves = Math.ceil(partitions / lambdas);
  const straggler = cal.partitionCv * Math.sqrt(2 * Math.log(Math.max(1, lambdas))) * computeS;
  const mapS = o.mapOverheadS + makespan(partitions, lambdas, o.scalingPer10s, coldS, partitionS) + straggler;
  const initializeS = o.coldStartS + 0.1 * Math.ceil(partitions / 1000);
  const summarizeS = o.coldStartS + (partitions * o.summarizeReadS) / o.summarizeParallelism;
  const reasons: string[] = [];
  const needMB =
    Math.max(128, cal.peakRssMB - cal.partitionMB * o.memoryPerPartitionByte) +
    job.partitionMB * o.memoryPerPartitionByte;
  if (needMB > job.memoryMB) reasons.push(`needs ~${Math.ceil(needMB)} MB of memory`);
  if (partitionS + coldS > o.lambdaTimeoutS)
    reasons.push(
      `a partition takes ${Math.round(partitionS + coldS)} s, over Lambda's ${o.lambdaTimeoutS} s limit`,
    );
  if (o.childWorkflow === 'express' && partitionS + coldS > 300)
    reasons.push('a partition takes over the 5 minutes an Express child may run');
  const usage = usageForPartitions(
    { partitions, billedMs: partitionS * 1000, coldMs: coldS * 1000, coldCount: lambdas },
    {
      memoryMB: job.memoryMB,
      arch: o.arch,
      childWorkflow: o.childWorkflow,
      initializeMs: initializeS * 1000,
      summarizeMs: summarizeS * 1000,
    },
  );
  const bill = priceUsage(usage, [`projection from ${cal.source}`]);
  return {
    ...job,
    partitions,
    itemsPerPartition,
    vcpus,
    itemsPerSecondPerLambda: rate,
    transferS,
    computeS,
    writeS,
    partitionS,
    coldS,
    lambdas,
    waves,
    mapS,
    initializeS,
    summarizeS,
    totalS: initializeS + mapS + summarizeS,
    costUSD: bill.totalUSD,
    bill,
    feasible: reasons.length === 0,
    reasons,
  };
}

/**
 * The grid `cai estimate` explores: data sizes, partition sizes and memory settings.
 * @example estimateGrid(cal, { dataGB: [1, 1024], partitionMB: [25, 100], memoryMB: [3538, 10240] })
 */
export interface EstimateGrid {
  readonly dataGB: readonly number[];
  readonly partitionMB: readonly number[];
  readonly memoryMB: readonly number[];
}

/**
 * Default grid: 1 GB to 1 TB, the seeds' partition sizes and more, whole vCPUs of memory up to 10 GB.
 * @example estimateGrid(cal, { ...DEFAULT_GRID, dataGB: [12.6] })
 */
export const DEFAULT_GRID: EstimateGrid = Object.freeze({
  dataGB: Object.freeze([1, 10, 100, 1024]),
  partitionMB: Object.freeze([25, 50, 75, 100, 250, 500]),
  memoryMB: Object.freeze([1769, 3538, 5307, 7076, 8845, 10240]),
});

/**
 * The cheapest and the fastest feasible (partition size, memory) pair for one data size.
 * @example const { cheapest, fastest } = estimateGrid(cal).choices[0];
 */
export interface EstimateChoice {
  readonly dataGB: number;
  readonly cheapest?: Projection;
  readonly fastest?: Projection;
}

/**
 * Projects every (data size, partition size, memory) of a grid and names, per data size, the cheapest
 * feasible pair (ties go to the faster) and the fastest (ties go to the cheaper).
 * @example const { choices } = estimateGrid(cal, DEFAULT_GRID); choices[0].cheapest?.partitionMB
 */
export function estimateGrid(
  cal: Calibration,
  grid: EstimateGrid = DEFAULT_GRID,
  options: EstimateOptions = ESTIMATE_DEFAULTS,
): { projections: Projection[]; choices: EstimateChoice[] } {
  const projections: Projection[] = [];
  const choices: EstimateChoice[] = [];
  for (const dataGB of grid.dataGB) {
    const here: Projection[] = [];
    for (const partitionMB of grid.partitionMB)
      for (const memoryMB of grid.memoryMB)
        here.push(projectJob(cal, { dataGB, partitionMB, memoryMB }, options));
    projections.push(...here);
    const ok = here.filter((p) => p.feasible);
    const by = (a: (p: Projection) => number, b: (p: Projection) => number) =>
      [...ok].sort((x, y) => a(x) - a(y) || b(x) - b(y))[0];
    choices.push({
      dataGB,
      cheapest: by(
        (p) => round(p.costUSD, 6),
        (p) => p.totalS,
      ),
      fastest: by(
        (p) => round(p.totalS, 2),
        (p) => p.costUSD,
      ),
    });
  }
  return { projections, choices };
}

function round(v: number, digits: number): number {
  return Number(v.toFixed(digits));
}

/**
 * Parses sizes such as `1GB,10GB,100GB,1TB` (binary units: 1 TB = 1024 GB) into GB.
 * @example parseDataSizes('512MB,1TB') // [0.5, 1024]
 */
export function parseDataSizes(text: string): number[] {
  return text.split(',').map((part) => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(MB|GB|TB)?\s*$/i.exec(part);
    if (!m)
      throw new CaiError(ErrorCodes.option, 'data', `cannot read "${part}"; write sizes like 1GB,10GB,1TB`);
    const unit = (m[2] ?? 'GB').toUpperCase();
    return Number(m[1]) * (unit === 'TB' ? 1024 : unit === 'MB' ? 1 / 1024 : 1);
  });
}
