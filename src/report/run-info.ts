import onnxProto from 'onnx-proto';
import type { PlannedPartition } from '../formats/planned-partition.js';
import { DEFAULT_PARTITION_TIMEOUT_SECONDS, type JobSpec } from '../job/spec.js';
import { openParent } from '../storage/open.js';
import type { PartitionRecord } from '../worker/record.js';
import { laneOf } from './timeline.js';
import { escapeHtml, htmlTable, num, type Table } from './table.js';

// onnx-proto is CommonJS: under ESM only its default export (module.exports) is reliable.
const { onnx } = onnxProto;

/** One model input or output as the ONNX file declares it. */
export interface ModelPort {
  readonly name: string;
  readonly dtype: string;
  /** Dimensions: sizes, or symbolic names such as `N` for the batch. */
  readonly shape: readonly (number | string)[];
}

const DTYPES: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  16: 'bfloat16',
};

/**
 * The inputs and outputs an ONNX model declares (names, element types, shapes), read from the file with
 * onnx-proto: no session, so a report needs no onnxruntime.
 *
 * @example const { inputs, outputs } = await modelPorts('model.onnx');
 */
export async function modelPorts(uri: string): Promise<{ inputs: ModelPort[]; outputs: ModelPort[] }> {
  const [store, key] = await openParent(uri);
  const model = onnx.ModelProto.decode(await store.get(key));
  const graph = model.graph;
  const initializers = new Set((graph?.initializer ?? []).map((t) => t.name));
  const port = (v: onnxProto.onnx.IValueInfoProto): ModelPort => ({
    name: v.name ?? '',
    dtype: DTYPES[v.type?.tensorType?.elemType ?? 0] ?? `type ${v.type?.tensorType?.elemType ?? '?'}`,
    shape: (v.type?.tensorType?.shape?.dim ?? []).map((d) =>
      d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? Number(d.dimValue) : '?',
    ),
  });
  return {
    inputs: (graph?.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map(port),
    outputs: (graph?.output ?? []).map(port),
  };
}

const shapeText = (s: readonly (number | string)[]) => `[${s.join(', ')}]`;

const value = (v: unknown): string =>
  v === undefined
    ? ''
    : typeof v === 'string'
      ? v
      : JSON.stringify(v).replace(/,/g, ', ').replace(/:/g, ': ');

/**
 * "What was run", readable: the input and how it was read (kind, datasets or columns, preprocessing),
 * which column fed which model input, the model's inputs and outputs with shapes, the predictions, and
 * the engine with where it placed the work (hosts and processes, Slurm jobs and nodes, Lambda memory).
 *
 * @example const html = await runInfoSection(job, plan, records);
 */
export async function runInfoSection(
  job: JobSpec | undefined,
  plan: readonly PlannedPartition[],
  records: readonly PartitionRecord[],
): Promise<string> {
  if (!job) return '<p>No job.json in this folder: the job as run is unknown.</p>';
  const kinds = [...new Set(plan.map((p) => p.source ?? 'tensor'))];
  const items = plan.reduce((s, p) => s + (p.items ?? 0), 0);
  const readRows: [string, string][] = [
    ['Input', job.input],
    [
      'Input kind',
      `${kinds.join(', ') || 'unknown'}${job.format ? ' (format given)' : ' (by file extension)'}`,
    ],
    [
      'Partitions',
      `${num(plan.length)}${items ? `, ${num(items)} items planned` : ''}${job.fileLimit ? ` (first ${job.fileLimit}: fileLimit)` : ''}`,
    ],
  ];
  const optional: [string, unknown][] = [
    ['Datasets', job.datasets],
    ['Group', job.group],
    ['Id column', job.idColumn],
    ['Image column', job.imageColumn],
    ['Image shape', job.imageShape],
    ['Feature columns', job.featureColumns],
    ['FITS HDU', job.fitsHdu],
    ['FITS bands', job.fitsBands],
    ['FITS file pattern', job.fitsPattern],
    ['FITS cutouts along the last axis', job.fitsCutouts],
    ['Preprocessing preset', job.preset],
    ['Preprocessing steps', job.preprocess],
    [
      'Partition size',
      job.partitionItems
        ? `${job.partitionItems} items`
        : job.partitionBytes
          ? `${job.partitionBytes} bytes`
          : undefined,
    ],
    ['NaN in an item', job.nan],
  ];
  for (const [k, v] of optional) if (v !== undefined) readRows.push([k, value(v)]);
  if (job.preset === undefined && job.preprocess === undefined)
    readRows.push(['Preprocessing', 'none: values as stored, cast to the model input type']);
  const input: Table = {
    title: 'How the data was read',
    columns: ['Field', 'Value'],
    rows: readRows,
    leftAlign: [0, 1],
  };

  let ports: { inputs: ModelPort[]; outputs: ModelPort[] } | undefined;
  let portError = '';
  try {
    ports = await modelPorts(job.model);
  } catch (err) {
    portError = (err as Error).message;
  }
  const mapping = job.inputs ?? {};
  const modelRows: string[][] = [
    ...(ports?.inputs ?? []).map((p, i) => [
      'input',
      p.name,
      p.dtype,
      shapeText(p.shape),
      mapping[p.name] !== undefined ? `column ${value(mapping[p.name])}` : `column ${i} (by position)`,
    ]),
    ...(ports?.outputs ?? []).map((p) => [
      'output',
      p.name,
      p.dtype,
      shapeText(p.shape),
      `predictions column "${p.name}"`,
    ]),
  ];
  if (job.label !== undefined)
    modelRows.push(['label', 'label', '', '', `column ${value(job.label)}, written as "label"`]);
  const model: Table = {
    title: `Model ${job.model}`,
    columns: ['Port', 'Name', 'Type', 'Shape', 'Bound to'],
    rows: modelRows,
    leftAlign: [0, 1, 2, 3, 4],
  };

  const lanes = [...new Set(records.map(laneOf))];
  const hosts = [...new Set(records.map((r) => r.worker.host))];
  const lambda = records.find((r) => r.lambda)?.lambda;
  const slurmJobs = [...new Set(records.flatMap((r) => (r.worker.slurm ? [r.worker.slurm.job_id] : [])))];
  const nodes = [...new Set(records.flatMap((r) => (r.worker.slurm?.node ? [r.worker.slurm.node] : [])))];
  const engineRows: [string, string][] = [
    ['Engine', job.engine],
    [
      'Batch size',
      String(job.batchSize) +
        (records[0] && job.batchSize === 'auto' ? ` (chose ${records[0].batch_size})` : ''),
    ],
    ['Workers x threads', `${job.concurrency ?? 'auto'} x ${job.threads ?? 'auto'}`],
    ['Device', job.device],
    [
      'Placement',
      `${lanes.length} worker${lanes.length === 1 ? '' : 's'} on ${hosts.length} host${hosts.length === 1 ? '' : 's'} (${hosts.slice(0, 4).join(', ')}${hosts.length > 4 ? ', ...' : ''})`,
    ],
    ['Tries per partition', triesText(job)],
    ['Predictions', `${job.predictionsFormat} files in predictions/`],
  ];
  if (slurmJobs.length)
    engineRows.push([
      'Slurm',
      `job${slurmJobs.length > 1 ? 's' : ''} ${slurmJobs.join(', ')}; node${nodes.length === 1 ? '' : 's'} ${nodes.join(', ') || 'unknown'}`,
    ]);
  if (job.slurm) engineRows.push(['Slurm options', value(job.slurm)]);
  if (lambda) engineRows.push(['Lambda', `${lambda.memory_mb} MB, ${lambda.architecture}`]);
  const engine: Table = {
    title: 'Where it ran',
    columns: ['Field', 'Value'],
    rows: engineRows,
    leftAlign: [0, 1],
  };
  return `<div class="run-info">${htmlTable(input)}${ports ? htmlTable(model) : `<p>Model ${escapeHtml(job.model)}: not readable here (${escapeHtml(portError)}).</p>${htmlTable(model)}`}${htmlTable(engine)}</div>`;
}

/** Tries per partition and, on the local engine, each one's limit (Slurm's --time and the Lambda's timeout bound the others). */
function triesText(job: Pick<JobSpec, 'maxAttempts' | 'partitionTimeoutSeconds' | 'engine'>): string {
  if (job.engine !== 'local') return String(job.maxAttempts);
  return `${job.maxAttempts}, ${job.partitionTimeoutSeconds ?? DEFAULT_PARTITION_TIMEOUT_SECONDS} s each`;
}
