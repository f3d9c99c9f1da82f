// CAI's public API: named exports only. See README.md for the command line.
// Loading the library registers the built-in remote stores (s3://).
import './storage/register.js';
export { CaiError, ErrorCodes, describeError } from './errors.js';
export { DTYPES, allocate, bytesPerElement, type DType, type TypedArray } from './tensor/dtype.js';
export { cast, numel, sliceRows, tensor, type Tensor } from './tensor/tensor.js';
export { columnSet, sliceColumns, type ColumnSet } from './formats/columns.js';
export type { TensorFormat } from './formats/format.js';
export { decodeTensorFile, formatForKey, TENSOR_FORMATS } from './formats/registry.js';
export { encodePtDataset } from './formats/writers/pt-writer.js';
export { encodeSafetensors } from './formats/writers/safetensors-writer.js';
export {
  encodePredictions,
  PREDICTION_EXTENSIONS,
  type PredictionFormat,
} from './formats/predictions/writers.js';
export type { PredictionColumn, PredictionTable } from './formats/predictions/table.js';
export {
  readPredictions,
  predictionFiles,
  type PredictionFiles,
  type PredictionRows,
} from './summarize/read-predictions.js';
export { mergePredictions, type MergeResult } from './summarize/merge-predictions.js';
export {
  JobSpecSchema,
  parseJobSpec,
  resolveJob,
  JOB_FIELDS,
  type JobSpec,
  type JobSpecInput,
  type ResolvedJob,
} from './job/spec.js';
export { loadJob, parseInputMapping } from './job/load.js';
export { runJob, type RunOptions } from './run/run.js';
export { planPartitions, partitionId, type PlannedPartition } from './plan/plan.js';
export { naturalCompare } from './storage/natural-sort.js';
export { FileStore } from './storage/file-store.js';
export { openStore, openParent, registerStore, type StoreOptions } from './storage/open.js';
export type { ObjectInfo, Store } from './storage/store.js';
export { loadModel, type ModelSession, type ModelValueInfo } from './model/session.js';
export { bindInputs, type InputBinding } from './model/binding.js';
export { buildAstroMAE, ASTROMAE_DEFAULTS } from './model/zoo/astromae.js';
export { createWorkerContext, type WorkerContext } from './worker/context.js';
export { runPartition, outputKeys, type PartitionTask } from './worker/run-partition.js';
export type { PartitionRecord, PartitionFailure, PartitionOutcome, StageTimings } from './worker/record.js';
export { runLocalMap, localEngine, type LocalEngineOptions } from './engines/local/engine.js';
export { slurmEngine, type SlurmEngineOptions } from './engines/slurm/engine.js';
export { SlurmOptionsSchema, type SlurmOptions, type SlurmOptionsInput } from './job/slurm-options.js';
export {
  runMap,
  type Attempt,
  type AttemptResult,
  type MapControl,
  type MapEngine,
  type MapOptions,
} from './engines/map.js';
export { engineFor, registerEngine, type EngineFactory } from './engines/registry.js';
export { PERMANENT_ERRORS } from './engines/policy.js';
export { budgetExceeded, toleratedFailures } from './job/budget.js';
export type { EngineEvent } from './engines/events.js';
export type { MapResult } from './summarize/map-result.js';
export { summarize, resultStatsCsv, type JobSummary, type RunStats } from './summarize/summarize.js';
export { regressionMetrics, classificationMetrics, type Metrics } from './summarize/metrics.js';
export { makeDemo, type Demo, type DemoOptions } from './demo/demo.js';
