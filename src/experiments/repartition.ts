// The partition-size axis of a sweep: one source re-partitioned at each size through `cai partition`,
// so the seeds' 25/50/75/100 MB comparison needs one dataset, not four copies made by hand.
import type { JobSpec } from '../job/spec.js';
import {
  parseByteSize,
  partitionDataset,
  type PartitionManifest,
  PARTITION_FORMATS,
} from '../formats/partition/index.js';
import { joinUri, openStore } from '../storage/open.js';
import { readJson } from '../storage/json.js';

/** One partition size of a sweep and the folder its partitions are in. */
export interface SizedInput {
  /** The size as given, e.g. `25MB`. */
  readonly size: string;
  readonly bytes: number;
  /** Folder or prefix holding `1.<ext>`, `2.<ext>`, ... and `manifest.json`. */
  readonly input: string;
  /** True when an earlier sweep's partitions of the same source and size were reused. */
  readonly reused: boolean;
  readonly partitions: number;
}

/** Options of `repartitionForSweep`. */
export interface RepartitionOptions {
  /** The job whose `input` is re-partitioned; its source options (format, preset...) apply. */
  readonly job: JobSpec;
  /** Sizes such as `25MB,50MB` (binary units, as `cai partition --size`). */
  readonly sizes: readonly string[];
  /** Folder or prefix under which `<bytes>B/` folders are made. */
  readonly into: string;
  readonly format?: (typeof PARTITION_FORMATS)[number];
  /** Called before a size is partitioned or reused. */
  readonly onSize?: (size: string, reused: boolean) => void;
}

// Stored beside the manifest: what the partitions were made from, so a later sweep can reuse them.
interface Origin {
  readonly input: string;
  readonly bytes: number;
  readonly format: string;
  readonly items: number;
}

/**
 * Re-partitions the job's input at every size (streaming, bounded memory: see `partitionDataset`) into
 * `<into>/<bytes>B/`, reusing partitions an earlier sweep made from the same input, size and format.
 * Sizes are de-duplicated; the result is in the order given.
 *
 * @example const sized = await repartitionForSweep({ job, sizes: ['25MB', '50MB'], into: 'bench/partitions' });
 */
export async function repartitionForSweep(o: RepartitionOptions): Promise<SizedInput[]> {
  const format = o.format ?? 'safetensors';
  const out: SizedInput[] = [];
  const seen = new Set<number>();
  for (const size of o.sizes) {
    const bytes = parseByteSize(size, '--partition-sizes');
    if (seen.has(bytes)) continue;
    seen.add(bytes);
    const input = joinUri(o.into, `${bytes}B`);
    const store = await openStore(input, { s3Endpoint: o.job.s3Endpoint });
    const origin: Origin = { input: o.job.input, bytes, format, items: 0 };
    let manifest: PartitionManifest | undefined;
    if ((await store.head('origin.json')) && (await store.head('manifest.json'))) {
      const old = await readJson<Origin>(store, 'origin.json');
      const m = await readJson<PartitionManifest>(store, 'manifest.json');
      if (old.input === origin.input && old.bytes === bytes && old.format === format && m.items === old.items)
        manifest = m;
    }
    o.onSize?.(size, manifest !== undefined);
    const reused = manifest !== undefined;
    if (!manifest) {
      // The origin goes first and is rewritten last: a sweep killed mid-way leaves an origin whose item
      // count does not match any manifest, so the next sweep partitions again.
      await store.put('origin.json', `${JSON.stringify({ ...origin, items: -1 })}\n`);
      manifest = await partitionDataset({
        input: o.job.input,
        output: input,
        size: bytes,
        format,
        job: o.job,
        overwrite: true,
      });
      await store.put('origin.json', `${JSON.stringify({ ...origin, items: manifest.items })}\n`);
    }
    out.push({ size, bytes, input, reused, partitions: manifest.partitions.length });
  }
  return out;
}
