import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { JobSpec } from '../job/spec.js';
import type { PlannedPartition } from '../formats/planned-partition.js';
import type { PartitionStream } from '../formats/source.js';
import { sourceByName } from '../formats/sources.js';
import type { Store } from '../storage/store.js';
import type { Tensor } from '../tensor/tensor.js';
import { mostConfused } from './confusion.js';
import type { ItemRef, OutputDigest, PredictionDigest } from './digest.js';
import { isImageLike, itemRgb } from './stretch.js';
import { escapeHtml } from './table.js';

/** The folder beside report.html the thumbnails are written to (emptied first on every report). */
export const GALLERY_FOLDER = 'gallery';
/** Classes whose most and least confident items the gallery shows, the most predicted first. */
export const GALLERY_MAX_CLASSES = 20;
/** Thumbnail edge, pixels. */
const THUMB = 96;

/** A group of items the gallery shows together, e.g. "class 3, most confident". */
export interface GalleryGroup {
  readonly output: string;
  readonly key: string;
  readonly title: string;
  readonly items: readonly ItemRef[];
}

/**
 * The groups of items worth looking at, per output: for class scores the most and least confident items
 * of each predicted class and, with labels, the most confident items of the commonest mistakes; for a
 * regression the lowest and highest predictions and, with labels, the largest |dz|. Vectors get none.
 *
 * @example galleryGroups(digest).map((g) => g.title)
 */
export function galleryGroups(d: PredictionDigest, pairs = 5): GalleryGroup[] {
  return d.outputs.flatMap((o: OutputDigest): GalleryGroup[] => {
    if (o.kind === 'classifier') {
      const groups: GalleryGroup[] = [];
      // Many classes: the most predicted ones only, so the page stays light (the caption says so).
      const shown = new Set(
        o.predicted
          .map((count, cls) => ({ count, cls }))
          .filter((c) => c.count > 0)
          .sort((a, b) => b.count - a.count || a.cls - b.cls)
          .slice(0, GALLERY_MAX_CLASSES)
          .map((c) => c.cls),
      );
      o.mostConfident.forEach((items, cls) => {
        if (!items.length || !shown.has(cls)) return;
        groups.push({ output: o.name, key: `most-${cls}`, title: `Class ${cls}: most confident`, items });
        groups.push({
          output: o.name,
          key: `least-${cls}`,
          title: `Class ${cls}: least confident`,
          items: o.leastConfident[cls],
        });
      });
      if (d.confusion && d.confusion.output === o.name)
        for (const m of mostConfused(d.confusion, pairs)) {
          const items = o.mistakes.get(`${m.truth},${m.predicted}`) ?? [];
          if (items.length)
            groups.push({
              output: o.name,
              key: `mistake-${m.truth}-${m.predicted}`,
              title: `True ${m.truth} taken for ${m.predicted} (${m.count} items): the most confident`,
              items,
            });
        }
      return groups;
    }
    if (o.kind === 'regression')
      return [
        { output: o.name, key: 'lowest', title: `Lowest ${o.name}`, items: o.lowest },
        { output: o.name, key: 'highest', title: `Highest ${o.name}`, items: o.highest },
        ...(o.worst.length
          ? [
              {
                output: o.name,
                key: 'worst',
                title: 'Largest errors, |dz| = |pred - true| / (1 + true)',
                items: o.worst,
              },
            ]
          : []),
      ];
    return [];
  });
}

/** Where an item's thumbnail is, relative to the report, and how its pixels were made viewable. */
interface Thumb {
  readonly file: string;
  readonly how: string;
}

const fileName = (r: ItemRef) => `${r.partition}-${r.index}`.replace(/[^A-Za-z0-9_.-]/g, '_');

/** Reads back one partition's chosen items with its own source, row ranges where it has them. */
async function readBack(
  store: Store,
  partition: PlannedPartition,
  indices: readonly number[],
  job: JobSpec,
): Promise<Map<number, { column: Tensor; row: number }>> {
  const source = sourceByName(partition.source ?? 'tensor');
  // The stored pixels, not what the model was fed: no resizing or normalisation.
  const raw = { ...job, preset: undefined, preprocess: undefined } as JobSpec;
  const found = new Map<number, { column: Tensor; row: number }>();
  const pick = async (stream: PartitionStream, at: (local: number) => number | undefined) => {
    try {
      for await (const b of stream.batches(32)) {
        const col = b.rows.columns.find(isImageLike);
        if (!col) return;
        for (let i = 0; i < b.rows.items; i++) {
          const index = at(b.indices[i]);
          if (index !== undefined) found.set(index, { column: col, row: i });
        }
        if (indices.every((x) => found.has(x))) return;
      }
    } finally {
      stream.release?.();
    }
  };
  const rowsCapable = partition.rows !== undefined || ['hdf5', 'zarr', 'parquet'].includes(source.name);
  if (rowsCapable) {
    const first = partition.rows?.[0] ?? 0;
    for (const index of indices) {
      const one: PlannedPartition = { ...partition, rows: [first + index, first + index + 1], items: 1 };
      await pick(await source.open(store, one, raw), () => index);
    }
  } else if (
    partition.keys &&
    partition.keys.length === (partition.items ?? partition.keys.length) &&
    source.name !== 'fits'
  ) {
    for (const index of indices) {
      const key = partition.keys[index];
      await pick(await source.open(store, { ...partition, key, keys: [key], items: 1 }, raw), () => index);
    }
  } else {
    // Whole-object sources (tensor files) and grouped FITS bands: read until every chosen item is seen.
    const wanted = new Set(indices);
    await pick(await source.open(store, partition, raw), (i) => (wanted.has(i) ? i : undefined));
  }
  return found;
}

/**
 * Writes a thumbnail of every item of the groups into `<dir>/gallery/` (the folder emptied first), reading
 * back only those items: image files from their own bytes, other sources through their reader with row
 * ranges. Returns the HTML of the gallery, or a sentence saying why there is none.
 *
 * @example const html = await writeGallery('out', groups, job, plan, await openStore(job.input));
 */
export async function writeGallery(
  dir: string,
  groups: readonly GalleryGroup[],
  job: JobSpec,
  plan: readonly PlannedPartition[],
  input: Store,
): Promise<{ html: string; thumbs: number; hows: string[] }> {
  const folder = path.join(dir, GALLERY_FOLDER);
  await rm(folder, { recursive: true, force: true });
  if (!groups.length) return { html: '', thumbs: 0, hows: [] };
  await mkdir(folder, { recursive: true });
  const byId = new Map(plan.map((p) => [p.id, p]));
  const wanted = new Map<string, Set<number>>();
  for (const g of groups)
    for (const r of g.items) wanted.set(r.partition, (wanted.get(r.partition) ?? new Set()).add(r.index));
  const thumbs = new Map<string, Thumb>();
  const hows = new Set<string>();
  for (const [id, set] of wanted) {
    const partition = byId.get(id);
    if (!partition) continue;
    const indices = [...set].sort((a, b) => a - b);
    if ((partition.source ?? 'tensor') === 'image') {
      for (const index of indices) {
        const key = partition.keys?.[index] ?? partition.key;
        const file = `${fileName({ partition: id, index, value: 0 })}.png`;
        await sharp(await input.get(key))
          .resize(THUMB, THUMB, { fit: 'inside' })
          .png()
          .toFile(path.join(folder, file));
        thumbs.set(`${id}#${index}`, { file, how: 'the image file, scaled down' });
      }
      hows.add('image files scaled down');
      continue;
    }
    const items = await readBack(input, partition, indices, job);
    for (const [index, { column, row }] of items) {
      const rgb = itemRgb(column, row);
      if (!rgb) continue;
      const file = `${fileName({ partition: id, index, value: 0 })}.png`;
      const scale = Math.max(1, Math.floor(THUMB / Math.max(rgb.width, rgb.height)));
      await sharp(Buffer.from(rgb.data), { raw: { width: rgb.width, height: rgb.height, channels: 3 } })
        .resize(rgb.width * scale > THUMB ? THUMB : rgb.width * scale, undefined, {
          kernel: scale > 1 ? 'nearest' : 'lanczos3',
        })
        .png()
        .toFile(path.join(folder, file));
      thumbs.set(`${id}#${index}`, { file, how: rgb.how });
      hows.add(rgb.how);
    }
  }
  if (!thumbs.size) return { html: '', thumbs: 0, hows: [] };
  const fmt = (v: number) => Number(v.toPrecision(4)).toString();
  const html = groups
    .map((g) => {
      const cells = g.items
        .map((r) => {
          const t = thumbs.get(`${r.partition}#${r.index}`);
          if (!t) return '';
          const name = r.id ?? `${r.partition} #${r.index}`;
          const said =
            r.cls !== undefined
              ? `class ${r.cls}, p ${fmt(r.value)}`
              : `${escapeHtml(g.output)} ${fmt(r.value)}`;
          const truth =
            r.label !== undefined
              ? `<br>true ${fmt(r.label)}${r.dz !== undefined ? `, |dz| ${fmt(r.dz)}` : ''}`
              : '';
          return `<figure class="thumb" data-partition="${escapeHtml(r.partition)}" data-index="${r.index}"${r.id ? ` data-id="${escapeHtml(r.id)}"` : ''}><img src="${GALLERY_FOLDER}/${escapeHtml(t.file)}" alt="${escapeHtml(name)}" title="${escapeHtml(`${name}: ${t.how}`)}" width="${THUMB}" height="${THUMB}"><figcaption><span class="id">${escapeHtml(name)}</span><br>${said}${truth}</figcaption></figure>`;
        })
        .join('');
      return cells
        ? `<div class="gallery-group" data-output="${escapeHtml(g.output)}" data-group="${escapeHtml(g.key)}"><h4>${escapeHtml(g.title)}</h4><div class="thumbs">${cells}</div></div>`
        : '';
    })
    .join('\n');
  return { html, thumbs: thumbs.size, hows: [...hows] };
}
