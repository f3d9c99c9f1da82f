import type { StorageStats } from '../storage/s3-stats.js';
import type { StageSpans } from './spans.js';

/**
 * Wall-clock seconds spent in each stage of one partition. `inference` is the sum over batches; with
 * overlap (reading the next batch while the model runs) the stages can add up to more than `total`.
 */
export interface StageTimings {
  /**
   * Wall clock of the partition's read. A read prefetched during the previous partition's inference
   * overlaps it, and its completion can wait for a busy worker: then it counts here in full although it
   * cost the worker little; `read_wait` is what it did cost.
   */
  readonly read: number;
  /**
   * Seconds the worker stood waiting for the partition to open (for tensor files, its whole read) before
   * its first batch: near zero when it was prefetched. Absent in records older than this field.
   */
  readonly read_wait?: number;
  readonly decode: number;
  readonly inference: number;
  readonly write: number;
  readonly total: number;
}

/** Facts about the Lambda invocation that ran a partition, for honest billing. */
export interface LambdaInfo {
  readonly memory_mb: number;
  readonly billed_duration_ms: number;
  readonly cold_start: boolean;
  readonly architecture: string;
  readonly request_id: string;
}

/**
 * The execution record of one partition, written to `<output>/results/<partition>.json`. Fields the
 * seeds' CAI record also has keep its names (`batch_size`, `num_batches`, `sample_persec`,
 * `throughput_bps`, `data_path`, `result_path`, `device`...), with honest values: times are wall clock,
 * memory is the process's peak resident set.
 *
 * @example
 * const rec: PartitionRecord = JSON.parse(await out.get('results/1.json'));
 * console.log(rec.sample_persec);
 */
export interface PartitionRecord {
  readonly status: 'ok';
  /** Partition id, e.g. `1` for `1.pt`. */
  readonly partition: string;
  /** Where the partition was read from. */
  readonly data_path: string;
  /** Where its predictions were written. */
  readonly result_path: string;
  /** Size of the predictions file as written: resume redoes a partition whose file differs. */
  readonly predictions_bytes?: number;
  /** 1 for the first try. */
  readonly attempt: number;
  readonly items: number;
  /** Items that could not be decoded and have an error row instead of a prediction. */
  readonly failed_items: number;
  /**
   * Images with 16 bits per sample, reduced to 8 by the job's `preprocess.sixteenBit` rule (default PIL's);
   * absent when none.
   */
  readonly sixteen_bit_images?: number;
  /**
   * What the worker changed in the model's graph when it loaded it (`ModelSession.rewrites`, e.g. its
   * output sigmoids computed as 1/(1+exp(-x))); absent when it ran the graph as it is.
   */
  readonly model_rewrites?: readonly string[];
  /** Bytes of the partition's source objects. */
  readonly bytes: number;
  readonly batch_size: number;
  readonly num_batches: number;
  readonly device: string;
  readonly threads: number;
  /** Wall-clock seconds per stage. */
  readonly timings: StageTimings;
  /**
   * When each stage ran, seconds from `started_at` (absent in records older than this field): the
   * report's timeline draws them as they overlapped.
   */
  readonly spans?: StageSpans;
  /** The seeds' per-batch figure, here wall-clock inference seconds divided by batches. */
  readonly 'execution_time (seconds/batch)': number;
  /** CPU seconds (user + system) the worker process used for this partition. */
  readonly 'total_cpu_time (seconds)': number;
  /** Peak resident set of the worker process so far, in MB (not an allocation sum). */
  readonly 'total_cpu_memory (MB)': number;
  /** Items per wall-clock second over the whole partition. */
  readonly sample_persec: number;
  /** Source bytes per wall-clock second over the whole partition. */
  readonly throughput_bps: number;
  /** Seconds the worker spent loading the model and creating its session (0 when warm). */
  readonly model_load_s: number;
  /** Whether this was the first partition of its worker process (it paid the model load). */
  readonly cold: boolean;
  /** Seconds from the worker process's start to its first prediction (cold partitions only). */
  readonly time_to_first_prediction_s?: number;
  /**
   * When the worker process started and when its first prediction came back (cold partitions only), as
   * wall-clock times, so time to first prediction can be counted from the job's own start.
   */
  readonly worker_started_at?: string;
  readonly first_prediction_at?: string;
  /** Worker process id and host, to tell workers apart. */
  readonly worker: {
    readonly pid: number;
    readonly host: string;
    /** On a Slurm cluster: the array job, the array task and the node that ran the partition. */
    readonly slurm?: { readonly job_id: string; readonly array_task_id: number; readonly node: string };
  };
  readonly started_at: string;
  readonly finished_at: string;
  /** Object storage traffic per stage, when the data or output is remote. */
  readonly storage?: Readonly<Record<string, StorageStats>>;
  /** Set when the partition ran on AWS Lambda. */
  readonly lambda?: LambdaInfo;
  /** Set when the batch size was chosen by measurement (`--batch-size auto`). */
  readonly batch_size_auto?: {
    readonly chosen: number;
    readonly seconds_per_item: Readonly<Record<string, number>>;
  };
}

/** A partition that did not produce a record after every attempt. */
export interface PartitionFailure {
  readonly status: 'failed';
  readonly partition: string;
  readonly data_path: string;
  readonly attempts: number;
  readonly error: { readonly code: string; readonly message: string };
  /** Where the engine kept the last attempt's own output (a Slurm array task's log), when it has one. */
  readonly log?: string;
}

/** The outcome of one partition: partial failure is data (design rule 7). */
export type PartitionOutcome = PartitionRecord | PartitionFailure;
