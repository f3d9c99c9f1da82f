// The data that flows between the states of CAI's state machine. Payloads stay small (Step Functions
// caps a state's data at 256 KiB): lists of partitions travel through S3, never through the states.
import type { JobSpecInput, ResolvedJob } from '../../job/spec.js';
import type { PlannedPartition } from '../../plan/plan.js';
import type { PartitionRecord } from '../../worker/record.js';

/** The execution input `cai aws run` starts the state machine with. */
export interface ExecutionInput {
  /** The job as the user wrote it (file and flags merged, not yet defaulted), validated by Initialize. */
  readonly job: JobSpecInput;
  /** Ignore the outputs of earlier runs in the same output location. */
  readonly overwrite?: boolean;
}

/** What every inference invocation of one execution shares (the ItemSelector or BatchInput). */
export interface MapTask {
  readonly job: ResolvedJob;
  readonly overwrite: boolean;
  /** The execution's start, ISO 8601: with `overwrite`, only records newer than this count as done. */
  readonly startedAt: string;
}

/** Initialize's event: the execution input plus the execution's name and start time. */
export interface InitializeEvent {
  readonly input: ExecutionInput;
  readonly executionName: string;
  readonly executionStartTime: string;
}

/** Initialize's result, kept at `$.init` for the Map and Summarize. */
export interface InitializeResult {
  /** The JSON array of partitions still to do, read by the Distributed Map's ItemReader. */
  readonly manifest: { readonly bucket: string; readonly key: string };
  /** Where the Map's ResultWriter writes (bucket key prefix, no trailing `/`). */
  readonly resultWriter: { readonly bucket: string; readonly prefix: string };
  /** This execution's folder under the job's output (`aws-runs/<execution>/`), relative to it. */
  readonly runFolder: string;
  readonly maxConcurrency: number;
  readonly toleratedFailurePercentage: number;
  /**
   * Failed partitions the Map tolerates: `toleratedFailures(planned, toleratedFailurePercentage)`, an
   * integer, as Step Functions' ToleratedFailureCountPath needs (its percentage path takes integers only,
   * and a job's budget may be 2.5%).
   */
  readonly toleratedFailureCount: number;
  readonly task: MapTask;
  readonly planned: number;
  readonly todo: number;
  readonly resumed: number;
  /** When Initialize handed over to the Map, ISO 8601. */
  readonly mapStartedAt: string;
}

/** One inference invocation's event: one partition, or a batch from the ItemBatcher. */
export interface InferenceEvent {
  readonly task: MapTask;
  readonly partition?: PlannedPartition;
  readonly items?: readonly PlannedPartition[];
  /**
   * Which try of these partitions this is, 1 for the first: counted by the child workflow itself, so
   * throttled invocations (in which the function never ran) are not counted.
   */
  readonly attempt: number;
}

/**
 * How many bytes of records (as JSON) one inference invocation returns at most: a child's output must stay
 * under Step Functions' 256 KiB, whatever the batch size. Records past it are left out of the result (and
 * read from the output by Summarize).
 */
export const RESULT_RECORD_BYTES = 128 * 1024;

/**
 * What an inference invocation returns: the Map's per-item output, which its ResultWriter exports, so
 * Summarize reads this run's records from a few large result files instead of one GET per partition.
 */
export interface InferenceResult {
  readonly partitions: readonly {
    readonly id: string;
    readonly status: 'ok' | 'skipped';
    readonly items: number;
    readonly seconds: number;
    /**
     * The partition's record exactly as written to `results/<id>.json` (`ok` only, while the result stays
     * within {@link RESULT_RECORD_BYTES}). Summarize takes it in place of the object only when the
     * listing shows the object with the size of this record's JSON; otherwise it reads the object.
     */
    readonly record?: PartitionRecord;
  }[];
}

/** The Distributed Map's output with a ResultWriter. */
export interface MapOutput {
  readonly MapRunArn: string;
  readonly ResultWriterDetails?: { readonly Bucket: string; readonly Key: string };
}

/** Summarize's event: the whole state (the Map's output, or its error when it failed). */
export interface SummarizeEvent {
  readonly state: {
    readonly init: InitializeResult;
    readonly map?: MapOutput;
    readonly mapError?: { readonly Error: string; readonly Cause?: string };
  };
  readonly executionName: string;
  readonly executionStartTime: string;
  /**
   * Set on the second invocation, when the first one died before it could write anything (a timeout,
   * out of memory): Step Functions' error for it. That invocation only writes the failed summary.
   */
  readonly summarizeError?: { readonly Error: string; readonly Cause?: string };
}

/** Summarize's result: what the Choice state and `cai aws run` need. */
export interface SummarizeResult {
  readonly status: 'succeeded' | 'failed';
  readonly planned: number;
  readonly completed: number;
  readonly failed: number;
  readonly notStarted: number;
  /** `s3://.../summary.json`. */
  readonly summary: string;
  /** One line for the execution's failure cause. */
  readonly message: string;
}

/** The minimal Lambda context CAI's handlers use (the Node.js runtime passes more). */
export interface LambdaContext {
  readonly awsRequestId: string;
  readonly functionName: string;
  /** The function's memory, MB, as the runtime gives it (a string). */
  readonly memoryLimitInMB: string;
  getRemainingTimeInMillis(): number;
}
