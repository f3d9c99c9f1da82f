// The user's own items for `cai optimize`: read from `--calibrate <input>` with the job's source and
// mapping flags, exactly as `cai run` reads them, and split into calibration batches and a held-out
// sample (disjoint: the accuracy is never measured on the items the ranges came from).
import { CaiError, ErrorCodes } from '../errors.js';
import { sourceByName } from '../formats/sources.js';
import type { JobSpec } from '../job/spec.js';
import { bindInputs, feedsFor, resolveColumn, type InputBinding } from '../model/binding.js';
import type { ModelValueInfo } from '../model/session.js';
import { planPartitions } from '../plan/plan.js';
import { openStore } from '../storage/open.js';
import { elementAsNumber, sliceRows, type Tensor } from '../tensor/tensor.js';
import type { Feeds } from './int8.js';

/** Batches of model inputs, with the label of each item when the job names one. */
export interface ItemBatches {
  readonly batches: Feeds[];
  readonly labels?: number[];
  readonly items: number;
}

/** Calibration and held-out items. */
export interface SplitItems {
  readonly calibration: ItemBatches;
  readonly heldOut: ItemBatches;
}

const copy = (t: Tensor): Tensor => ({ ...t, shape: [...t.shape], data: t.data.slice() }) as Tensor;

/**
 * Reads the first `calibration + heldOut` items of the job's input in plan order, in batches of
 * `batchSize`: the first `calibration` items calibrate, the next `heldOut` measure the accuracy. With
 * fewer items, the split keeps their ratio (at least one each). No item at all, or one, is an error.
 *
 * @example const { calibration, heldOut } = await readItems(job, model.inputs, 256, 256, 16);
 */
export async function readItems(
  job: JobSpec,
  inputs: readonly ModelValueInfo[],
  calibration: number,
  heldOut: number,
  batchSize: number,
): Promise<SplitItems> {
  const store = await openStore(job.input, { s3Endpoint: job.s3Endpoint });
  const plan = await planPartitions(store, { job, fileLimit: job.fileLimit });
  const want = calibration + heldOut;
  const rows: { feeds: Record<string, Tensor>; labels?: number[] }[] = [];
  let count = 0;
  for (const partition of plan) {
    if (count >= want) break;
    const source = store.describe(partition.key);
    const stream = await sourceByName(partition.source ?? 'tensor').open(store, partition, job);
    let bindings: InputBinding[] | undefined;
    let label: number | undefined;
    try {
      for await (const b of stream.batches(batchSize)) {
        if (b.rows.items === 0) continue;
        bindings ??= bindInputs(b.rows, inputs, job.inputs, source);
        if (job.label !== undefined) label ??= resolveColumn(b.rows, job.label, source, 'label');
        const take = Math.min(b.rows.items, want - count);
        const feeds = Object.fromEntries(
          Object.entries(feedsFor(b.rows, bindings)).map(([k, t]) => [k, copy(sliceRows(t, 0, take))]),
        );
        const labels =
          label === undefined
            ? undefined
            : Array.from({ length: take }, (_, i) => {
                const col = b.rows.columns[label as number];
                const width = col.shape.slice(1).reduce((a, d) => a * d, 1);
                return elementAsNumber(col, i * width);
              });
        rows.push({ feeds, labels });
        count += take;
        if (count >= want) break;
      }
    } finally {
      stream.release?.();
    }
  }
  if (count < 2) {
    throw new CaiError(
      ErrorCodes.option,
      job.input,
      count === 0
        ? 'has no items to calibrate on; --calibrate needs the input the model will run on (at least 2 items: one to calibrate, one held out)'
        : 'has only 1 item; --calibrate needs at least 2 (one to calibrate, one held out)',
    );
  }
  const calItems = count >= want ? calibration : Math.max(1, Math.round((count * calibration) / want));
  return { calibration: group(rows, 0, calItems), heldOut: group(rows, calItems, count) };
}

/** Items [start, end) of the row batches, re-batched along the same boundaries. */
function group(
  rows: readonly { feeds: Record<string, Tensor>; labels?: number[] }[],
  start: number,
  end: number,
): ItemBatches {
  const batches: Feeds[] = [];
  const labels: number[] = [];
  let at = 0;
  let withLabels = true;
  for (const r of rows) {
    const n = Object.values(r.feeds)[0].shape[0];
    const lo = Math.max(start, at) - at;
    const hi = Math.min(end, at + n) - at;
    if (hi > lo) {
      batches.push(Object.fromEntries(Object.entries(r.feeds).map(([k, t]) => [k, sliceRows(t, lo, hi)])));
      if (r.labels) labels.push(...r.labels.slice(lo, hi));
      else withLabels = false;
    }
    at += n;
  }
  return { batches, labels: withLabels && labels.length ? labels : undefined, items: end - start };
}
