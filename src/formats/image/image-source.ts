import type { PlannedPartition } from '../planned-partition.js';
import { extensionOf } from '../registry.js';
import { groupItems } from '../partition/group-objects.js';
import { checkRow, openObjectItems } from '../partition/object-items.js';
import type { SourceKind } from '../source.js';
import type { PartitionStream, ReadStats } from '../source.js';
import { decodeImage, toRow, type DecodeNotes } from './decode.js';
import { resolvePreprocess, rowShape, type PreprocessOptions } from './preprocess.js';

/** File extensions read as images (lower case, with the dot). */
export const IMAGE_EXTENSIONS = Object.freeze([
  '.jpg',
  '.jpeg',
  '.jpe',
  '.jfif',
  '.png',
  '.webp',
  '.tif',
  '.tiff',
  '.gif',
]);

/** The job fields the image source reads. */
export interface ImageJobFields {
  readonly preset?: string;
  readonly preprocess?: PreprocessOptions;
  readonly partitionItems?: number;
  readonly partitionBytes?: number;
}

/**
 * A folder (or S3 prefix) of images, one item per file, id = key. Planning groups consecutive files
 * into partitions of `partitionItems` (default 1000) or `partitionBytes` without copying anything;
 * opening reads nothing until a batch is asked for. A file that does not decode is a failed item.
 *
 * @example const stream = await imageFiles.open(store, { id: '1', key: 'a.jpg', bytes: 0, keys: ['a.jpg'] }, job);
 */
export const imageFiles: SourceKind = Object.freeze<SourceKind>({
  name: 'image',
  options: ['preset', 'preprocess', 'partitionItems', 'partitionBytes'],
  accepts: (key: string) => IMAGE_EXTENSIONS.includes(extensionOf(key)),
  plan: (objects, job): PlannedPartition[] =>
    groupItems(
      objects.map((o) => ({ keys: [o.key], bytes: o.size })),
      job as ImageJobFields,
    ),
  async open(store, partition, job) {
    const p = resolvePreprocess(job as ImageJobFields);
    const keys = partition.keys ?? [partition.key];
    const notes: DecodeNotes = { sixteenBit: 0 };
    const stream = openObjectItems(
      store,
      keys.map((k) => ({ id: k, keys: [k] })),
      {
        column: 'image',
        shape: rowShape(p),
        decode: async ([bytes], item) => {
          const source = store.describe(item.keys[0]);
          return checkRow(toRow(await decodeImage(bytes, p, source, notes), p), source);
        },
      },
    );
    return withNotes(stream, notes);
  },
});

/**
 * A stream whose stats also count what decoding noticed (16-bit images), for the partition's record.
 *
 * @example return withNotes(openObjectItems(store, items, options), notes);
 */
export function withNotes(stream: PartitionStream, notes: DecodeNotes): PartitionStream {
  return {
    ...stream,
    batches: (n) => stream.batches(n),
    stats: (): ReadStats => ({
      ...stream.stats(),
      ...(notes.sixteenBit ? { sixteen_bit_images: notes.sixteenBit } : {}),
    }),
  };
}
