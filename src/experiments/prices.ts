/**
 * AWS list prices CAI's cost model uses: one dated object, so a price change is a one-line diff and every
 * bill can say which prices it used. Region us-east-1, on-demand, no free tier, first pricing tier only
 * (Lambda's cheaper tiers start after 6 billion GB-s a month; Express duration after 1,000 GB-hours).
 *
 * Sources (list prices, unchanged since the dates in `notes`; checked against the public pricing pages
 * when this file was written, not fetched live, so re-check them before quoting a bill):
 * - https://aws.amazon.com/lambda/pricing/
 * - https://aws.amazon.com/step-functions/pricing/
 * - https://aws.amazon.com/s3/pricing/ (S3 Standard; transfer from S3 to Lambda in one region is free)
 *
 * @example
 * import { PRICES } from './prices.js';
 * const dollars = 1000 * 10 * 1.2345 * PRICES.lambda.gbSecond.x86_64;
 */
export const PRICES = Object.freeze({
  region: 'us-east-1',
  /** When these prices were recorded here. */
  recorded: '2026-11-25',
  /** The date of the published price lists they come from. */
  publishedAsOf: '2025-08-01',
  sources: Object.freeze([
    'https://aws.amazon.com/lambda/pricing/',
    'https://aws.amazon.com/step-functions/pricing/',
    'https://aws.amazon.com/s3/pricing/',
  ]),
  lambda: Object.freeze({
    /** Dollars per GB-second of configured memory x billed duration (1 ms granularity). */
    gbSecond: Object.freeze({ x86_64: 0.0000166667, arm64: 0.0000133334 }),
    /** Dollars per request ($0.20 per million). */
    request: 0.2 / 1_000_000,
    /** Dollars per GB-second of ephemeral storage configured above the free 512 MB. */
    ephemeralGbSecond: 0.0000000309,
    freeEphemeralMB: 512,
    billingGranularityMs: 1,
  }),
  stepFunctions: Object.freeze({
    /** Standard workflows: dollars per state transition ($0.025 per 1,000). */
    standardTransition: 0.025 / 1000,
    /** Express workflows: dollars per execution started ($1.00 per million). */
    expressRequest: 1 / 1_000_000,
    /** Express duration, first tier ($0.06 per GB-hour): dollars per GB-second. */
    expressGbSecond: 0.06 / 3600,
    /** Express memory is billed in 64 MB chunks (50 MB + definition + payload rounds up to 64 MB). */
    expressMemoryChunkMB: 64,
    /** Express duration is rounded up to 100 ms. */
    expressGranularityMs: 100,
  }),
  s3: Object.freeze({
    /** GET and other reads: $0.0004 per 1,000. */
    get: 0.0004 / 1000,
    /** PUT, COPY, POST, LIST: $0.005 per 1,000. */
    put: 0.005 / 1000,
    list: 0.005 / 1000,
  }),
  /** The single rate the seeds' cost table multiplies by (the x86_64 GB-second price, rounded). */
  seedsGbSecond: 0.00001667,
  notes: Object.freeze([
    'Lambda x86_64 and request prices unchanged since 1 ms billing (December 2020); arm64 since September 2021.',
    'Since 1 August 2025 Lambda bills the INIT phase of every on-demand function (container images always were).',
    'Step Functions Distributed Map: one parent state transition per child workflow execution started.',
  ]),
} as const);

/**
 * Lambda instruction set architectures, with their GB-second price in `PRICES`.
 * @example const arch: LambdaArch = 'arm64'; PRICES.lambda.gbSecond[arch]
 */
export type LambdaArch = keyof typeof PRICES.lambda.gbSecond;

/**
 * The architectures `PRICES` knows, for option validation and error messages.
 * @example LAMBDA_ARCHS.includes('arm64') // true
 */
export const LAMBDA_ARCHS: readonly LambdaArch[] = Object.freeze(['x86_64', 'arm64'] as const);
