import { createHash } from 'node:crypto';
import { CaiError, ErrorCodes } from '../errors.js';
import type { JobSpec } from '../job/spec.js';
import { sourceByName, sourceForKey, sourceKinds } from '../formats/sources.js';
import { checkSourceOptions, planSource, type SourceKind } from '../formats/source.js';
import type { ObjectInfo, Store } from '../storage/store.js';
import { naturalCompare } from '../storage/natural-sort.js';
import { OUTPUT_KEYS } from '../storage/output-layout.js';
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

/**
 * An object of the input that planning left out, and why: nothing is skipped without being named.
 *
 * @example const s: SkippedObject = { key: 'notes.txt', reason: 'no reader for this kind of file' };
 */
export interface SkippedObject {
  readonly key: string;
  readonly reason: string;
}

/**
 * What planning makes of an input: the partitions, and every object it left out with the reason.
 *
 * @example const { partitions, skipped } = await planInput(await openStore('data'));
 */
export interface InputPlan {
  readonly partitions: PlannedPartition[];
  readonly skipped: SkippedObject[];
  readonly listing: InputListing;
}

/** The input's listing as an identity: see {@link inputListing}. */
export interface InputListing {
  readonly objects: number;
  readonly bytes: number;
  readonly sha256: string;
}

/** The objects of the input a job reads, of one source kind, in natural order. */
interface Classified {
  readonly kind: SourceKind;
  readonly objects: ObjectInfo[];
  readonly skipped: SkippedObject[];
}

function describeKinds(): string {
  return sourceKinds()
    .map((k) => k.name)
    .join(', ');
}

/**
 * Folders of the listing that hold a CAI job's output (both a job and a plan file): the output of
 * an earlier run inside the input folder is never read as input.
 */
function outputFolders(listed: readonly ObjectInfo[]): string[] {
  const keys = new Set(listed.map((o) => o.key));
  const plan = OUTPUT_KEYS.plan;
  return listed
    .filter((o) => o.key === plan || o.key.endsWith(`/${plan}`))
    .map((o) => o.key.slice(0, -plan.length))
    .filter((folder) => folder !== '' && keys.has(`${folder}${OUTPUT_KEYS.job}`));
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
  return (await planInput(input, options)).partitions;
}

async function classify(input: Store, options: PlanOptions): Promise<Classified> {
  const job = options.job ?? {};
  const forced = job.format ? sourceByName(job.format) : undefined;
  const byKind = new Map<SourceKind, ObjectInfo[]>();
  const skippedObjects: SkippedObject[] = [];
  const skipped: string[] = [];
  const listed: ObjectInfo[] = [];
  // Links that lead nowhere or back into the input are left out and named (skipped.json, the summary),
  // never followed forever nor allowed to refuse the whole job.
  const onSkip = (key: string, reason: string) => skippedObjects.push({ key, reason });
  for await (const obj of input.list(undefined, { onSkip })) listed.push(obj);
  const outputs = outputFolders(listed);
  if (options.exclude) outputs.push(options.exclude);
  for (const obj of listed) {
    const base = obj.key.slice(obj.key.lastIndexOf('/') + 1);
    if (base.startsWith('.')) {
      skippedObjects.push({ key: obj.key, reason: "hidden file (its name starts with '.')" });
      continue;
    }
    if (outputs.some((prefix) => obj.key.startsWith(prefix))) {
      skippedObjects.push({
        key: obj.key,
        reason: `inside an output folder of CAI (it holds ${OUTPUT_KEYS.job} and ${OUTPUT_KEYS.plan})`,
      });
      continue;
    }
    const kind = forced ? (forced.accepts(obj.key) ? forced : undefined) : sourceForKey(obj.key);
    if (!kind) {
      skipped.push(obj.key);
      skippedObjects.push({
        key: obj.key,
        reason: forced
          ? `not a ${forced.name} file (--format ${forced.name})`
          : 'no reader for this kind of file',
      });
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
  checkSourceOptions(kind, job, input.uri, sourceKinds());
  objects.sort((a, b) => naturalCompare(a.key, b.key));
  return { kind, objects, skipped: skippedObjects };
}

/**
 * The input's listing as a job's identity records it: the objects of the kind the job reads (hidden
 * files, files no source reads and CAI outputs left out), their total bytes, and a SHA-256 of every
 * key and size in natural order. An object added, removed, renamed or resized changes it.
 *
 * @example (await inputListing(input, { job })).objects // 130
 */
export async function inputListing(input: Store, options: PlanOptions = {}): Promise<InputListing> {
  return listingOf((await classify(input, options)).objects);
}

function listingOf(objects: readonly ObjectInfo[]): InputListing {
  const hash = createHash('sha256');
  let bytes = 0;
  for (const o of objects) {
    hash.update(`${o.key}\t${o.size}\n`);
    bytes += o.size;
  }
  return { objects: objects.length, bytes, sha256: hash.digest('hex') };
}

/**
 * {@link planPartitions}, also returning every object it skipped and why (hidden files, files no
 * source reads, partitions past `fileLimit`), for the summary and the progress to name, and the input's
 * listing ({@link inputListing}).
 *
 * @example const { skipped } = await planInput(input, { fileLimit: 4 }); // [{ key: '5.pt', reason: 'past fileLimit 4' }, ...]
 */
export async function planInput(input: Store, options: PlanOptions = {}): Promise<InputPlan> {
  const job = options.job ?? {};
  const { kind, objects, skipped: skippedObjects } = await classify(input, options);
  const listing = listingOf(objects);
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
  if (!limit) return { partitions: found, skipped: skippedObjects, listing };
  for (const p of found.slice(limit)) {
    const keys = p.rows ? [`${p.key} rows ${p.rows[0]}-${p.rows[1]}`] : (p.keys ?? [p.key]);
    for (const key of keys) skippedObjects.push({ key, reason: `past fileLimit ${limit}` });
  }
  return { partitions: found.slice(0, limit), skipped: skippedObjects, listing };
}
