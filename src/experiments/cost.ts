import { CaiError, ErrorCodes } from '../errors.js';
import type { PartitionRecord } from '../worker/record.js';
import { LAMBDA_ARCHS, PRICES, type LambdaArch } from './prices.js';

/**
 * One row of the seeds' cost table (seed 004), as published.
 * @example const row: SeedsCostRow = SEEDS_COST_TABLE[0]; // 25 MB, 517 requests
 */
export interface SeedsCostRow {
  readonly partitionMB: number;
  readonly requests: number;
  readonly durationS: number;
  /** Memory the seeds multiplied by: memory *used*, not the 10 GB the Lambdas were configured with. */
  readonly memoryGB: number;
  /** The dollars the seeds printed. */
  readonly publishedUSD: number;
}

/**
 * The seeds' cost table (seed 004). Seed 001 has the same rows except 100 MB: 26.9 s, $0.41 (`SEEDS_COST_VARIANT`).
 * @example SEEDS_COST_TABLE.map((r) => seedsFormulaCost(r.requests, r.durationS, r.memoryGB));
 */
export const SEEDS_COST_TABLE: readonly SeedsCostRow[] = Object.freeze([
  { partitionMB: 25, requests: 517, durationS: 6.55, memoryGB: 2.8, publishedUSD: 0.16 },
  { partitionMB: 50, requests: 259, durationS: 11.8, memoryGB: 4.0, publishedUSD: 0.2 },
  { partitionMB: 75, requests: 173, durationS: 17.6, memoryGB: 5.9, publishedUSD: 0.3 },
  { partitionMB: 100, requests: 130, durationS: 25, memoryGB: 7.0, publishedUSD: 0.38 },
]);

/**
 * Seed 001's 100 MB row, which differs from seed 004's.
 * @example seedsFormulaCost(SEEDS_COST_VARIANT.requests, SEEDS_COST_VARIANT.durationS, 7) // ~0.408
 */
export const SEEDS_COST_VARIANT: SeedsCostRow = Object.freeze({
  partitionMB: 100,
  requests: 130,
  durationS: 26.9,
  memoryGB: 7.0,
  publishedUSD: 0.41,
});

/**
 * The seeds' formula, unrounded: requests x duration (s) x memory (GB) x $0.00001667.
 * @example roundCents(seedsFormulaCost(517, 6.55, 2.8)) // 0.16
 */
export function seedsFormulaCost(requests: number, durationS: number, memoryGB: number): number {
  return requests * durationS * memoryGB * PRICES.seedsGbSecond;
}

/**
 * Rounds dollars to cents the way the seeds' table prints them.
 * @example roundCents(0.15806) // 0.16
 */
export function roundCents(dollars: number): number {
  return Math.round(dollars * 100) / 100;
}

/**
 * A group of identical Lambda invocations: how many, billed ms each, configured memory, architecture.
 * @example const g: InvocationGroup = { count: 517, billedMs: 6550, memoryMB: 10240, arch: 'x86_64' };
 */
export interface InvocationGroup {
  readonly count: number;
  readonly billedMs: number;
  readonly memoryMB: number;
  readonly arch: LambdaArch;
}

/**
 * Step Functions workflow type of the Distributed Map's child executions.
 * @example billRecords(records, { childWorkflow: 'express' satisfies ChildWorkflow })
 */
export type ChildWorkflow = 'standard' | 'express';

/**
 * Everything a job asks AWS to bill, before prices: Lambda invocations, Step Functions work and S3 requests.
 * @example const bill = priceUsage(usageForPartitions({ partitions: 517, billedMs: 6550 }));
 */
export interface JobUsage {
  /** The map's inference invocations. */
  readonly map: readonly InvocationGroup[];
  /** Initialize and Summarize invocations. */
  readonly orchestration: readonly InvocationGroup[];
  /** Ephemeral storage configured on the map Lambdas (512 MB is free). */
  readonly ephemeralMB: number;
  readonly childWorkflow: ChildWorkflow;
  /** Child workflow executions the Distributed Map starts (one per partition, or per batch with ItemBatcher). */
  readonly childExecutions: number;
  /** States each child execution runs (the inference Task: 1), plus {@link TRANSITIONS_PER_RETRY} a retry. */
  readonly childTransitions: number;
  /** Seconds each child execution lasts (Express duration), one entry per child. */
  readonly childSeconds: readonly number[];
  /** Parent state transitions besides the per-child ones: Initialize, Map, Summarize. */
  readonly parentTransitions: number;
  readonly s3: { readonly get: number; readonly put: number; readonly list: number };
}

/**
 * State transitions a retried try adds to a child execution: the Choice that decides another try, the
 * Pass that counts it, the Wait of its backoff and the inference Task again (CAI's state machine counts
 * tries in the child's data, not with a Retry, so that throttled invocations are not counted as tries).
 */
export const TRANSITIONS_PER_RETRY = 4;

/**
 * One line of a bill: what, how much of it, at what price.
 * @example bill.lines.map((l: BillLine) => `${l.item}: $${l.usd}`)
 */
export interface BillLine {
  readonly item: string;
  readonly quantity: number;
  readonly unit: string;
  readonly unitUSD: number;
  readonly usd: number;
}

/**
 * A priced bill, with the notes that say what was assumed.
 * @example console.log(bill.totalUSD.toFixed(4), bill.notes.join('\n'));
 */
export interface Bill {
  readonly lines: readonly BillLine[];
  readonly totalUSD: number;
  /** Lambda GB-seconds of the map invocations. */
  readonly mapGbSeconds: number;
  readonly invocations: number;
  readonly notes: readonly string[];
  readonly prices: { readonly region: string; readonly publishedAsOf: string };
}

const MB_PER_GB = 1024;

function line(item: string, quantity: number, unit: string, unitUSD: number): BillLine {
  return { item, quantity, unit, unitUSD, usd: quantity * unitUSD };
}

function gbSeconds(groups: readonly InvocationGroup[], arch?: LambdaArch): number {
  return groups
    .filter((g) => arch === undefined || g.arch === arch)
    .reduce((s, g) => s + (g.count * g.billedMs * g.memoryMB) / MB_PER_GB / 1000, 0);
}

/**
 * Prices a job's usage with `PRICES`: Lambda GB-seconds per architecture, requests, ephemeral storage,
 * Step Functions (Standard transitions or Express requests and duration) and S3 requests.
 * @example priceUsage(usageForPartitions({ partitions: 1000, billedMs: 1235 })).totalUSD
 */
export function priceUsage(usage: JobUsage, notes: readonly string[] = []): Bill {
  const lines: BillLine[] = [];
  for (const arch of LAMBDA_ARCHS) {
    const gbs = gbSeconds(usage.map, arch);
    if (gbs > 0) lines.push(line(`Lambda compute, map (${arch})`, gbs, 'GB-s', PRICES.lambda.gbSecond[arch]));
    const orch = gbSeconds(usage.orchestration, arch);
    if (orch > 0)
      lines.push(
        line(`Lambda compute, Initialize + Summarize (${arch})`, orch, 'GB-s', PRICES.lambda.gbSecond[arch]),
      );
  }
  const invocations = [...usage.map, ...usage.orchestration].reduce((s, g) => s + g.count, 0);
  lines.push(line('Lambda requests', invocations, 'requests', PRICES.lambda.request));
  const extraGB = Math.max(0, usage.ephemeralMB - PRICES.lambda.freeEphemeralMB) / MB_PER_GB;
  if (extraGB > 0) {
    const seconds = usage.map.reduce((s, g) => s + (g.count * g.billedMs) / 1000, 0);
    lines.push(
      line(
        'Lambda ephemeral storage above 512 MB',
        extraGB * seconds,
        'GB-s',
        PRICES.lambda.ephemeralGbSecond,
      ),
    );
  }
  const sf = PRICES.stepFunctions;
  if (usage.childWorkflow === 'standard') {
    const transitions = usage.parentTransitions + usage.childExecutions + usage.childTransitions;
    lines.push(
      line('Step Functions Standard transitions', transitions, 'transitions', sf.standardTransition),
    );
  } else {
    const parent = usage.parentTransitions + usage.childExecutions;
    lines.push(
      line('Step Functions Standard transitions (parent)', parent, 'transitions', sf.standardTransition),
    );
    lines.push(
      line('Step Functions Express child executions', usage.childExecutions, 'requests', sf.expressRequest),
    );
    const chunkGB = sf.expressMemoryChunkMB / MB_PER_GB;
    const step = sf.expressGranularityMs;
    const seconds = usage.childSeconds.reduce((s, c) => s + (Math.ceil((c * 1000) / step) * step) / 1000, 0);
    lines.push(
      line('Step Functions Express duration (64 MB)', seconds * chunkGB, 'GB-s', sf.expressGbSecond),
    );
  }
  lines.push(line('S3 GET requests', usage.s3.get, 'requests', PRICES.s3.get));
  lines.push(line('S3 PUT requests', usage.s3.put, 'requests', PRICES.s3.put));
  lines.push(line('S3 LIST requests', usage.s3.list, 'requests', PRICES.s3.list));
  return {
    lines,
    totalUSD: lines.reduce((s, l) => s + l.usd, 0),
    mapGbSeconds: gbSeconds(usage.map),
    invocations,
    notes: [...notes],
    prices: { region: PRICES.region, publishedAsOf: PRICES.publishedAsOf },
  };
}

/**
 * Options for an honest bill.
 * @example billRecords(records, { memoryMB: 10240, arch: 'arm64' })
 */
export interface BillOptions {
  /** Configured memory of the map Lambdas when a record does not say (MB, default 10240). */
  readonly memoryMB?: number;
  /** Architecture when a record does not say (default x86_64). */
  readonly arch?: LambdaArch;
  /** Ephemeral storage configured on the map Lambdas (MB, default 512: free). */
  readonly ephemeralMB?: number;
  /** Child workflow type of the Distributed Map (default standard). */
  readonly childWorkflow?: ChildWorkflow;
  /** Billed ms of the Initialize and Summarize Lambdas (default 0: not measured, not billed). */
  readonly initializeMs?: number;
  readonly summarizeMs?: number;
  /** Memory of the Initialize and Summarize Lambdas (MB, default 1024). */
  readonly orchestrationMemoryMB?: number;
}

/**
 * Frozen defaults of `BillOptions`: the seeds' Lambdas were configured with 10 GB.
 * @example BILL_DEFAULTS.memoryMB // 10240
 */
export const BILL_DEFAULTS = Object.freeze({
  memoryMB: 10240,
  arch: 'x86_64' as LambdaArch,
  ephemeralMB: 512,
  childWorkflow: 'standard' as ChildWorkflow,
  initializeMs: 0,
  summarizeMs: 0,
  orchestrationMemoryMB: 1024,
});

function resolve(options: BillOptions): Required<BillOptions> {
  const o = { ...BILL_DEFAULTS, ...stripUndefined(options) };
  if (!(o.memoryMB >= 128 && o.memoryMB <= 10240))
    throw new CaiError(
      ErrorCodes.option,
      'memory',
      `Lambda memory must be 128 to 10240 MB, got ${o.memoryMB}`,
    );
  if (!LAMBDA_ARCHS.includes(o.arch))
    throw new CaiError(
      ErrorCodes.option,
      'arch',
      `unknown architecture "${o.arch}"; use ${LAMBDA_ARCHS.join(' or ')}`,
    );
  if (o.childWorkflow !== 'standard' && o.childWorkflow !== 'express')
    throw new CaiError(
      ErrorCodes.option,
      'workflow',
      `unknown workflow "${String(o.childWorkflow)}"; use standard or express`,
    );
  return o;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** S3 requests of a CAI job besides what records say: Initialize lists and writes the plan, Summarize reads every record and writes 3 files. */
function orchestrationS3(partitions: number): { get: number; put: number; list: number } {
  return { get: partitions, put: 1 + 3, list: Math.max(1, Math.ceil(partitions / 1000)) };
}

function orchestrationGroups(o: Required<BillOptions>): InvocationGroup[] {
  const groups: InvocationGroup[] = [];
  for (const ms of [o.initializeMs, o.summarizeMs])
    if (ms > 0)
      groups.push({ count: 1, billedMs: Math.ceil(ms), memoryMB: o.orchestrationMemoryMB, arch: o.arch });
  return groups;
}

/**
 * The usage of `partitions` identical map invocations of `billedMs` each: the shape of the seeds' table,
 * and of a projection. Each partition reads its object once and writes predictions and a record.
 * @example priceUsage(usageForPartitions({ partitions: 517, billedMs: 6550 })).totalUSD // ~0.59
 */
export function usageForPartitions(
  job: {
    readonly partitions: number;
    readonly billedMs: number;
    readonly coldMs?: number;
    readonly coldCount?: number;
  },
  options: BillOptions = {},
): JobUsage {
  const o = resolve(options);
  const billedMs = Math.ceil(job.billedMs);
  const cold = Math.min(job.coldCount ?? 0, job.partitions);
  const map: InvocationGroup[] = [
    { count: job.partitions - cold, billedMs, memoryMB: o.memoryMB, arch: o.arch },
    {
      count: cold,
      billedMs: Math.ceil(job.billedMs + (job.coldMs ?? 0)),
      memoryMB: o.memoryMB,
      arch: o.arch,
    },
  ].filter((g) => g.count > 0);
  const orch = orchestrationS3(job.partitions);
  return {
    map,
    orchestration: orchestrationGroups(o),
    ephemeralMB: o.ephemeralMB,
    childWorkflow: o.childWorkflow,
    childExecutions: job.partitions,
    childTransitions: job.partitions,
    childSeconds: map.flatMap((g) => Array<number>(g.count).fill(g.billedMs / 1000)),
    parentTransitions: 3,
    s3: { get: job.partitions + orch.get, put: 2 * job.partitions + orch.put, list: orch.list },
  };
}

function isArch(a: string): a is LambdaArch {
  return (LAMBDA_ARCHS as readonly string[]).includes(a);
}

/**
 * Storage stage names that are writes or listings; every other stage's (`read`, `model`) requests are
 * billed as GETs. `requests` counts retries too, as S3 bills them.
 */
function s3Kind(stage: string): 'get' | 'put' | 'list' {
  const s = stage.toLowerCase();
  if (s.includes('list')) return 'list';
  if (['write', 'put', 'upload', 'output'].some((w) => s.includes(w))) return 'put';
  return 'get';
}

/**
 * The honest bill of a finished run from its records: each invocation's billed duration (1 ms steps) at its
 * configured memory and architecture. Records without `lambda` (local engine) are billed for their wall
 * time, plus the model load when cold, as if on Lambda at `memoryMB` - and the bill's notes say so.
 * @example const bill = billRecords(JSON.parse(readFileSync('out/combined_data.json', 'utf8')));
 */
export function billRecords(records: readonly PartitionRecord[], options: BillOptions = {}): Bill {
  const o = resolve(options);
  const notes: string[] = [];
  const groups = new Map<string, InvocationGroup>();
  const add = (billedMs: number, memoryMB: number, arch: LambdaArch) => {
    const key = `${billedMs}|${memoryMB}|${arch}`;
    const g = groups.get(key);
    groups.set(key, { count: (g?.count ?? 0) + 1, billedMs, memoryMB, arch });
  };
  let local = 0;
  let badArch = 0;
  let retries = 0;
  const s3 = { get: 0, put: 0, list: 0 };
  const childSeconds: number[] = [];
  for (const r of records) {
    retries += Math.max(0, r.attempt - 1);
    if (r.lambda) {
      const arch = isArch(r.lambda.architecture) ? r.lambda.architecture : o.arch;
      if (arch !== r.lambda.architecture) badArch++;
      add(Math.ceil(r.lambda.billed_duration_ms), r.lambda.memory_mb, arch);
      childSeconds.push(r.lambda.billed_duration_ms / 1000);
    } else {
      local++;
      const seconds = r.timings.total + (r.cold ? r.model_load_s : 0);
      add(Math.ceil(seconds * 1000), o.memoryMB, o.arch);
      childSeconds.push(seconds);
    }
    if (r.storage && Object.keys(r.storage).length > 0) {
      for (const [stage, st] of Object.entries(r.storage)) s3[s3Kind(stage)] += st.requests;
    } else {
      s3.get += 1;
      s3.put += 2;
    }
  }
  if (local > 0)
    notes.push(
      `${local} of ${records.length} records come from a non-Lambda engine: their wall time (plus model load when cold) is billed as if on Lambda at ${o.memoryMB} MB ${o.arch}; a Lambda's vCPU speed differs from this machine's.`,
    );
  if (local > 0 && records.some((r) => !r.storage))
    notes.push(
      'Records without storage stats are billed 1 S3 GET (the partition) and 2 PUTs (predictions, record) each.',
    );
  if (badArch > 0) notes.push(`${badArch} records name an unknown architecture; billed as ${o.arch}.`);
  if (retries > 0)
    notes.push(
      `${retries} earlier attempts were retried: their requests and transitions are billed, their durations are not recorded.`,
    );
  if (o.initializeMs === 0 && o.summarizeMs === 0)
    notes.push('Initialize and Summarize Lambdas are not billed (their durations are not in the records).');
  const orch = orchestrationS3(records.length);
  const map = [...groups.values()];
  if (retries > 0) map.push({ count: retries, billedMs: 0, memoryMB: o.memoryMB, arch: o.arch });
  const usage: JobUsage = {
    map,
    orchestration: orchestrationGroups(o),
    ephemeralMB: o.ephemeralMB,
    childWorkflow: o.childWorkflow,
    childExecutions: records.length,
    childTransitions: records.length + retries * TRANSITIONS_PER_RETRY,
    childSeconds,
    parentTransitions: 3,
    s3: { get: s3.get + orch.get, put: s3.put + orch.put, list: s3.list + orch.list },
  };
  return priceUsage(usage, notes);
}

/**
 * A seeds' table row side by side with what those invocations really cost: configured memory (10 GB by
 * default), billed duration, requests, Step Functions and S3.
 * @example seedsComparison().map((r) => [r.partitionMB, r.seedsUSD, r.honest.totalUSD])
 */
export interface SeedsComparisonRow extends SeedsCostRow {
  /** The seeds' formula recomputed, rounded to cents. */
  readonly seedsUSD: number;
  readonly seedsUnroundedUSD: number;
  readonly honest: Bill;
}

/**
 * The seeds' cost table recomputed with their formula, next to the honest bill of the same invocations.
 * @example for (const r of seedsComparison()) console.log(r.partitionMB, r.seedsUSD, r.honest.totalUSD);
 */
export function seedsComparison(options: BillOptions = {}, rows = SEEDS_COST_TABLE): SeedsComparisonRow[] {
  return rows.map((row) => {
    const unrounded = seedsFormulaCost(row.requests, row.durationS, row.memoryGB);
    const usage = usageForPartitions({ partitions: row.requests, billedMs: row.durationS * 1000 }, options);
    const o = resolve(options);
    return {
      ...row,
      seedsUnroundedUSD: unrounded,
      seedsUSD: roundCents(unrounded),
      honest: priceUsage(usage, [
        `${row.requests} invocations x ${row.durationS} s billed at the configured ${o.memoryMB} MB (${o.arch}), not the ${row.memoryGB} GB used.`,
        "The seeds' measured durations leave out cold-start init, which Lambda bills too; the real bill was higher still.",
      ]),
    };
  });
}
