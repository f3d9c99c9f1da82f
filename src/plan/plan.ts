import { CaiError, ErrorCodes } from '../errors.js';
import type { JobSpec } from '../job/spec.js';
import { sourceByName, sourceForKey, sourceKinds } from '../formats/sources.js';
import { planSource, type SourceKind } from '../formats/source.js';
import type { ObjectInfo, Store } from '../storage/store.js';
import { naturalCompare } from './natural-sort.js';
import { partitionId, type PlannedPartition } from '../formats/planned-partition.js';

// The planned partition is what sources produce and workers read; it lives beside the sources so that
// they need not import the planner that calls them.
export { partitionId, type PlannedPartition };

/** What planning needs of the job. */
export type PlanOptions = Partial<Pick<JobSpec, 'fileLimit'>> & {
  readonly job?: Partial<JobSpec> & { format?: string };
  /** Keys under this prefix are never planned (the job's output, when it lies inside the input). */
  readonly exclude?: string;
};

function describeKinds(): string {
  return sourceKinds()
    .map((k) => k.name)
    .join(', ');
}

/**
 * Folders of the listing that hold a CAI job's output (both `job.json` and `plan.json`): the output of
 * an earlier run inside the input folder is never read as input.
 */
function outputFolders(listed: readonly ObjectInfo[]): string[] {
  const keys = new Set(listed.map((o) => o.key));
  return listed
    .filter((o) => o.key === 'plan.json' || o.key.endsWith('/plan.json'))
    .map((o) => o.key.slice(0, -'plan.json'.length))
    .filter((folder) => folder !== '' && keys.has(`${folder}job.json`));
}

/**
 * Initialize: lists every object under the input (all pages of the listing), keeps those a source can
 * read, in natural order (`2.pt` before `10.pt`), lets the source group them into partitions (or split
 * big objects into row ranges: Parquet with `partitionItems`, FITS cutout files), and keeps
 * the first `fileLimit` partitions. An input that mixes kinds of files must name one with `format`.
 *
 * @example const partitions = await planPartitions(await openStore('data'), { fileLimit: 4 });
 */
export async function planPartitions(input: Store, options: PlanOptions = {}): Promise<PlannedPartition[]> {
  const job = options.job ?? {};
  const forced = job.format ? sourceByName(job.format) : undefined;
  const byKind = new Map<SourceKind, ObjectInfo[]>();
  const skipped: string[] = [];
  const listed: ObjectInfo[] = [];
  for await (const obj of input.list()) listed.push(obj);
  const outputs = outputFolders(listed);
  if (options.exclude) outputs.push(options.exclude);
  for (const obj of listed) {
    const base = obj.key.slice(obj.key.lastIndexOf('/') + 1);
    if (base.startsWith('.')) continue;
    if (outputs.some((prefix) => obj.key.startsWith(prefix))) continue;
    const kind = forced ? (forced.accepts(obj.key) ? forced : undefined) : sourceForKey(obj.key);
    if (!kind) {
      skipped.push(obj.key);
      continue;
    }
    const list = byKind.get(kind) ?? [];
    list.push(obj);
    byKind.set(kind, list);
  }
  if (byKind.size === 0) {
    const seen = skipped.length
      ? ` (found ${skipped.slice(0, 3).join(', ')}${skipped.length > 3 ? ', ...' : ''})`
      : '';
    throw new CaiError(
      ErrorCodes.notFound,
      input.uri,
      `no partition files to read${seen}; CAI reads .pt, .pth, .npy, .npz and .safetensors partitions${sourceKinds().length > 1 ? ` and the inputs of the formats ${describeKinds()}` : ''}`,
    );
  }
  if (byKind.size > 1) {
    const kinds = [...byKind.entries()].map(([k, objs]) => `${objs.length} ${k.name} (e.g. ${objs[0].key})`);
    throw new CaiError(
      ErrorCodes.option,
      input.uri,
      `the input mixes kinds of files: ${kinds.join(', ')}; choose one with --input-format (the job field "format")`,
    );
  }
  const [[kind, objects]] = [...byKind.entries()];
  objects.sort((a, b) => naturalCompare(a.key, b.key));
  const grouped = await planSource(kind, input, objects, job as JobSpec);
  const found = grouped.map((p) => (kind.name === 'tensor' ? p : { ...p, source: kind.name }));
  const ids = new Map<string, string>();
  for (const p of found) {
    const other = ids.get(p.id);
    if (other) {
      throw new CaiError(
        ErrorCodes.option,
        input.uri,
        `"${other}" and "${p.key}" would both be partition "${p.id}"; keep one file per partition name`,
      );
    }
    ids.set(p.id, p.key);
  }
  const limit = options.fileLimit ?? job.fileLimit;
  return limit ? found.slice(0, limit) : found;
}
