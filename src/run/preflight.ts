import { CaiError, ErrorCodes } from '../errors.js';
import type { ColumnSet } from '../formats/columns.js';
import { sourceByName } from '../formats/sources.js';
import { bindInputs, resolveColumn } from '../model/binding.js';
import { loadModel } from '../model/session.js';
import type { PlannedPartition, SkippedObject } from '../plan/plan.js';
import { decidePlan } from '../plan/resume.js';
import { missingFileError, openInput, openParent, openStore } from '../storage/open.js';
import type { Store } from '../storage/store.js';
import type { JobSpec } from '../job/spec.js';
import { checkBatchDimension, checkCarried } from '../worker/run-partition.js';

// Batches read from the first partition, at most, to find one with a decodable item (images, FITS
// and Parquet rows may fail one by one; such a batch has no rows to check).
const PEEK_BATCHES = 8;
const PEEK_ITEMS = 4;
// Partitions tried, in plan order, for one that reads: a corrupt or unreachable partition is the map's
// business (a failure within the error budget), never a reason to refuse the whole job here.
const PEEK_PARTITIONS = 3;
// Errors that say a partition's bytes cannot be read as its format, the same on every attempt (not a
// network or permission error, which may pass).
const UNREADABLE: ReadonlySet<string> = new Set([
  ErrorCodes.corrupt,
  ErrorCodes.unsupported,
  ErrorCodes.pickleGlobal,
]);

/** What the preflight reads of a partition: its first decoded rows, its item count, its carried columns. */
interface Peeked {
  readonly rows: ColumnSet;
  readonly items: number;
  readonly carries: readonly string[];
}

/** The first rows of a partition that decoded, or undefined when none of the first few did. */
async function firstRows(
  input: Store,
  partition: PlannedPartition,
  job: JobSpec,
): Promise<Peeked | undefined> {
  const stream = await sourceByName(partition.source ?? 'tensor').open(input, partition, job);
  try {
    let seen = 0;
    for await (const batch of stream.batches(PEEK_ITEMS)) {
      if (batch.rows.items > 0)
        return { rows: batch.rows, items: stream.items, carries: stream.carries ?? [] };
      if (++seen >= PEEK_BATCHES) return undefined;
    }
    return undefined;
  } finally {
    stream.release?.();
  }
}

/**
 * Everything about a job that can be known before any work starts, checked in this process before a
 * worker starts and before `job.json` or `plan.json` is written: the model loads, and the columns of
 * the first partition that reads (of the first few) fit the model's inputs (the `inputs` mapping,
 * each input's dtype and per-item shape) and hold the `label` column and every `carry` name (opening
 * the partition checks those: a tensor file's columns, the HDF5/Zarr dataset listing, the Parquet
 * schema), no carried column is named like a column the predictions already have, and the batch size
 * fits a model with a fixed batch dimension. A mistake fails here once, as a setup error, instead of once
 * per partition and attempt; and since nothing was written, the fixed job runs in the same output.
 *
 * @example await preflight(spec, inputStore, plan) // throws a CaiError naming the problem
 */
export async function preflight(
  spec: JobSpec,
  input: Store,
  plan: readonly PlannedPartition[],
): Promise<void> {
  const [modelStore, modelKey] = await openParent(spec.model, { s3Endpoint: spec.s3Endpoint });
  // One thread and no worker thread: only the inputs' names, dtypes and shapes are needed, and the
  // workers starting meanwhile want the cores.
  // On the local engine, on the job's device: a device this install cannot use fails here, before
  // anything is written. Elsewhere the device is the compute node's (a login node without a GPU submits
  // `--device cuda` jobs), so the inputs are read on the CPU and the node finds its own device.
  const model = await loadModel(await modelStore.localPath(modelKey), {
    threads: 1,
    thread: 'main',
    device: spec.engine === 'local' ? spec.device : 'cpu',
  });
  const { inputs, outputs } = model;
  await model.release();
  const unreadable: CaiError[] = [];
  for (const partition of plan.slice(0, PEEK_PARTITIONS)) {
    const source = input.describe(partition.key);
    const rows = await firstRows(input, partition, spec).catch((err: unknown) => {
      // An option that does not fit the data (preprocessing asked of a file without images) is the
      // job's mistake, the same for every partition: it stops here. Anything else is the map's.
      if (err instanceof CaiError && err.code === ErrorCodes.option) throw err;
      if (err instanceof CaiError && UNREADABLE.has(err.code)) unreadable.push(err);
      return undefined;
    });
    if (!rows) {
      // Every partition of the job was tried and none can be read (a CSV named .npy, a truncated file):
      // the run could only fail them all, so it is refused now, nothing written (unless the job
      // tolerates every partition failing).
      if (unreadable.length === plan.length && spec.toleratedFailurePercentage < 100) {
        const first = unreadable[0];
        const why = first.message.startsWith(`${first.object}: `)
          ? first.message.slice(first.object.length + 2)
          : first.message;
        throw new CaiError(
          first.code,
          first.object,
          `${why}${plan.length > 1 ? ` (and the job's ${plan.length - 1} other partition(s) do not read either)` : ''}; no partition of this job can be read, so nothing was run`,
          { cause: first },
        );
      }
      continue;
    }
    bindInputs(rows.rows, inputs, spec.inputs, source);
    if (spec.label !== undefined) resolveColumn(rows.rows, spec.label, source, 'label');
    checkCarried(rows.carries, outputs, source);
    if (spec.batchSize !== 'auto') checkBatchDimension(inputs, Math.min(spec.batchSize, rows.items), source);
    return;
  }
}

/**
 * Throws the setup error `cai run` gives when the job's model does not exist.
 * @example await checkModelExists(spec);
 */
export async function checkModelExists(spec: Pick<JobSpec, 'model' | 's3Endpoint'>): Promise<void> {
  const [modelStore, modelKey] = await openParent(spec.model, { s3Endpoint: spec.s3Endpoint });
  if (!(await modelStore.head(modelKey))) {
    // `describe` gives the absolute path (or URI) the run would read.
    throw await missingFileError(
      modelStore.describe(modelKey),
      { s3Endpoint: spec.s3Endpoint },
      {
        what: 'a model file',
        ext: '.onnx',
        flag: '--model',
        missing: 'the model does not exist; check --model',
      },
    );
  }
}

/**
 * The checks `cai run` makes before any work, made on the submitting machine for a job that another
 * machine plans and runs (`cai aws run`: the Initialize function plans it again in AWS), reading the
 * input, model and output with this machine's credentials and writing nothing: the model exists and
 * loads, an output holding another job is refused (`E_JOB_CHANGED`, naming each field), the input plans
 * (its listing, every source option) and its first partition fits the job ({@link preflight}). A
 * mistake exits 2 here instead of failing in every partition after the execution started. Resuming the
 * same job (its plan is in the output) checks no partition again, as `cai run` does.
 *
 * What only the worker's environment shows (a Lambda's memory, `/tmp`, its onnxruntime build) is not
 * checked here: docs/aws.md says what each failure looks like.
 *
 * `cai slurm run --dry-run` makes the same checks (with the model's hash in the identity, as a
 * submission from this machine plans).
 *
 * Returns the input objects a new plan leaves out (hidden files, files no source reads...), for the
 * command to name as `cai run` does; empty when resuming.
 *
 * @example const skipped = await preflightSubmission(spec, { overwrite: false });
 */
export async function preflightSubmission(
  spec: JobSpec,
  options: { readonly overwrite?: boolean; readonly hashModel?: boolean; readonly exclude?: string } = {},
): Promise<readonly SkippedObject[]> {
  await checkModelExists(spec);
  const output = await openStore(spec.output, { s3Endpoint: spec.s3Endpoint });
  const input = await openInput(spec.input, { s3Endpoint: spec.s3Endpoint });
  // As Initialize plans by default: no model hash in the identity (the stack fixes the model).
  const decided = await decidePlan(spec, output, options.overwrite ?? false, {
    hashModel: options.hashModel ?? false,
    exclude: options.exclude,
    check: (planned) => preflight(spec, input, planned),
  });
  return decided.skipped ?? [];
}
