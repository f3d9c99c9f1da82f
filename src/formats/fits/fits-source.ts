import { CaiError, ErrorCodes } from '../../errors.js';
import { partitionId, type PlannedPartition } from '../planned-partition.js';
import type { ObjectInfo, Store } from '../../storage/store.js';
import { groupItems } from '../partition/group-objects.js';
import { openObjectItems } from '../partition/object-items.js';
import type { StoreSourceKind } from '../source.js';
import { bandPattern, DEFAULT_BAND_PATTERN, groupBands, itemsFromKeys, type BandPattern } from './bands.js';
import { cutoutLayout, openCutouts } from './cutouts.js';
import { readBandGroup, readFitsItem, type FitsJobFields } from './items.js';

/** Name endings read as FITS (lower case). */
export const FITS_SUFFIXES = Object.freeze(['.fits', '.fit', '.fts', '.fits.gz', '.fit.gz', '.fts.gz']);

/** Whether a key names a FITS file. @example isFitsKey('cutouts/1.fits.gz') // true */
export function isFitsKey(key: string): boolean {
  const k = key.toLowerCase();
  return FITS_SUFFIXES.some((s) => k.endsWith(s));
}

function patternOf(job: FitsJobFields): BandPattern | undefined {
  if (job.fitsCutouts && (job.fitsBands || job.fitsPattern)) {
    throw new CaiError(
      ErrorCodes.option,
      'fitsCutouts',
      'one-file-per-band inputs (--fits-bands) hold one cutout per file; --fits-cutouts reads files of many cutouts: use one of them',
    );
  }
  if (job.fitsCutouts && job.partitionBytes !== undefined) {
    throw new CaiError(
      ErrorCodes.option,
      'partitionBytes',
      'files of cutouts (--fits-cutouts) are split by --partition-items; --partition-bytes does not apply to them',
    );
  }
  if (!job.fitsBands && !job.fitsPattern) return undefined;
  if (!job.fitsBands) {
    throw new CaiError(
      ErrorCodes.option,
      'fitsPattern',
      'needs the band names in order, e.g. --fits-bands u,g,r,i,z',
    );
  }
  return bandPattern(job.fitsPattern ?? DEFAULT_BAND_PATTERN, job.fitsBands);
}

/** Partitions of one cutout file: the whole file, or row ranges of `partitionItems` cutouts. */
function cutoutPartitions(o: ObjectInfo, items: number, job: FitsJobFields): PlannedPartition[] {
  const per = job.partitionItems ?? items;
  if (per >= items) return [{ id: partitionId(o.key), key: o.key, bytes: o.size, items }];
  const out: PlannedPartition[] = [];
  for (let start = 0; start < items; start += per) {
    const end = Math.min(items, start + per);
    const bytes = Math.round((o.size * (end - start)) / items);
    out.push({
      id: `${partitionId(o.key)}__${start}-${end}`,
      key: o.key,
      bytes,
      items: end - start,
      rows: [start, end],
    });
  }
  return out;
}

function planFits(objects: readonly ObjectInfo[], job: FitsJobFields): PlannedPartition[] {
  const pattern = patternOf(job);
  if (pattern) return groupItems(groupBands(objects, pattern), job);
  if (job.fitsCutouts) return objects.map((o) => ({ id: partitionId(o.key), key: o.key, bytes: o.size }));
  return groupItems(
    objects.map((o) => ({ keys: [o.key], bytes: o.size })),
    job,
  );
}

/**
 * FITS inputs, three ways: (1) a folder of files, each one item (a 2-D image -> [1, H, W], a cube ->
 * [NAXIS3, H, W]), grouped into partitions of `partitionItems` like images; (2) one file per band
 * (`fitsBands` + `fitsPattern`), each id's bands stacked into one [bands, H, W] item; (3) with
 * `fitsCutouts`, files of many cutouts, each file a partition whose items are its cutouts, read in
 * ranges. A bad file is a failed item in (1) and (2) and fails its partition in (3).
 *
 * @example await runJob(parseJobSpec({ input: 'cubes/', model: 'm.onnx', output: 'out', format: 'fits' }))
 */
export const fitsFiles: StoreSourceKind<FitsJobFields> = Object.freeze({
  name: 'fits',
  options: [
    'fitsHdu',
    'fitsBands',
    'fitsPattern',
    'fitsCutouts',
    'partitionItems',
    'partitionBytes',
  ] as const,
  accepts: isFitsKey,
  plan: planFits,
  /** Like `plan`, but reads cutout files' headers to split them into row ranges of `partitionItems`. */
  async planWithStore(
    store: Store,
    objects: readonly ObjectInfo[],
    job: FitsJobFields,
  ): Promise<PlannedPartition[]> {
    if (!job.fitsCutouts || patternOf(job)) return planFits(objects, job);
    const out: PlannedPartition[] = [];
    for (const o of objects) {
      const layout = await cutoutLayout(store, o.key, o.size, job);
      out.push(...cutoutPartitions(o, layout.items, job));
    }
    return out;
  },
  async open(store: Store, partition: PlannedPartition, job: FitsJobFields) {
    const pattern = patternOf(job);
    if (job.fitsCutouts && !pattern) {
      const size = (await store.head(partition.key))?.size;
      if (size === undefined) {
        throw new CaiError(
          ErrorCodes.notFound,
          store.describe(partition.key),
          'does not exist; plan the job again',
        );
      }
      return openCutouts(store, partition.key, size, job, partition.rows);
    }
    const keys = partition.keys ?? [partition.key];
    const items = pattern ? itemsFromKeys(keys, pattern) : keys.map((k) => ({ id: k, keys: [k] }));
    return openObjectItems(store, items, {
      column: 'image',
      decode: async (bytes, item) => {
        const sources = item.keys.map((k) => store.describe(k));
        if (!pattern) return readFitsItem(bytes[0], sources[0], job);
        const missing = pattern.bands.filter((b) => !item.keys.some((k) => pattern.match(k)?.band === b));
        if (missing.length) {
          throw new CaiError(
            ErrorCodes.notFound,
            item.id,
            `lacks band${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (no ${missing.map((b) => pattern.keyFor(item.id, b)).join(', ')}); every item needs all of ${pattern.bands.join(', ')}`,
          );
        }
        return readBandGroup(bytes, sources, job);
      },
    });
  },
});
