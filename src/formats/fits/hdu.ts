// Finding the image HDU of a FITS file and checking that its data unit is really there, reading headers
// block by block so a multi-gigabyte file of cutouts is never read whole.
import { CaiError, ErrorCodes } from '../../errors.js';
import { BLOCK, intCard, parseHeader, realCard, type FitsHeader } from './header.js';

/** BITPIX values of the standard: unsigned 8-bit, signed 16/32/64-bit integers, IEEE 32/64-bit floats. */
export const BITPIX = Object.freeze([8, 16, 32, 64, -32, -64] as const);

/** An image HDU located in a file: what its data unit holds and where. */
export interface ImageHdu {
  /** 0 for the primary HDU, then extensions in file order. */
  readonly index: number;
  readonly extname?: string;
  readonly bitpix: (typeof BITPIX)[number];
  /** NAXIS1, NAXIS2, ... (NAXIS1 varies fastest: the image width). */
  readonly axes: readonly number[];
  readonly bscale: number;
  readonly bzero: number;
  readonly blank?: number;
  /** Byte offset of the data unit. */
  readonly dataStart: number;
  /** Bytes of data (without the padding to 2880). */
  readonly dataBytes: number;
}

/** Reads bytes `[start, end)` of the file (fewer when it ends first). */
export type RangeReader = (start: number, end: number) => Promise<Uint8Array>;

/** Which HDU holds the image: an index (0 = primary), an EXTNAME, or the first with image data. */
export type HduSelector = number | string | undefined;

async function readHeader(
  read: RangeReader,
  offset: number,
  size: number,
  source: string,
): Promise<FitsHeader> {
  let blocks = 2;
  while (true) {
    const end = Math.min(size, offset + blocks * BLOCK);
    const bytes = await read(offset, end);
    const header = parseHeader(bytes, 0, source);
    if (header) return { cards: header.cards, end: offset + header.end };
    if (end >= size || bytes.length < end - offset) {
      throw new CaiError(
        ErrorCodes.corrupt,
        source,
        `ends inside the header that starts at byte ${offset} (no END card in the last ${bytes.length} bytes); it is truncated or not a FITS file`,
      );
    }
    blocks *= 4;
  }
}

function describe(h: FitsHeader): string {
  const kind = h.cards.get('XTENSION');
  const name = h.cards.get('EXTNAME');
  return `${typeof kind === 'string' ? kind.trim() : 'PRIMARY'}${typeof name === 'string' ? ` "${name}"` : ''}`;
}

/**
 * Walks the HDUs of a FITS file (reading only headers) and returns the image HDU chosen by `select`:
 * the first HDU with image data when it is undefined. The chosen data unit must fit inside the file:
 * a header whose NAXISn x BITPIX promise more bytes than the file holds is an `E_CORRUPT` error that
 * names the file and both sizes. Tile-compressed images (fpack) and random groups are refused clearly.
 *
 * @example const hdu = await findImageHdu((s, e) => store.getRange(key, s, e), size, undefined, key);
 */
export async function findImageHdu(
  read: RangeReader,
  size: number,
  select: HduSelector,
  source: string,
): Promise<ImageHdu> {
  const seen: string[] = [];
  let compressed = false;
  for (let offset = 0, index = 0; offset < size; index++) {
    const h = await readHeader(read, offset, size, source);
    const xtension = h.cards.get('XTENSION');
    const isImage = index === 0 ? h.cards.get('SIMPLE') === true : String(xtension).trim() === 'IMAGE';
    const bitpix = intCard(h, 'BITPIX', source);
    const naxis = intCard(h, 'NAXIS', source);
    // The standard allows NAXIS 0-999 and non-negative sizes; anything else is damage, checked before
    // it sizes an array.
    if (naxis < 0 || naxis > 999) throw badCount(source, index, 'NAXIS', naxis);
    const axes = Array.from({ length: naxis }, (_, i) => intCard(h, `NAXIS${i + 1}`, source));
    const pcount = index === 0 ? 0 : intCard(h, 'PCOUNT', source, 0);
    const gcount = index === 0 ? 1 : intCard(h, 'GCOUNT', source, 1);
    axes.forEach((a, i) => {
      if (a < 0) throw badCount(source, index, `NAXIS${i + 1}`, a);
    });
    if (pcount < 0) throw badCount(source, index, 'PCOUNT', pcount);
    if (gcount < 0) throw badCount(source, index, 'GCOUNT', gcount);
    const groups = index === 0 && h.cards.get('GROUPS') === true;
    const elements = naxis === 0 ? 0 : (groups ? axes.slice(1) : axes).reduce((a, b) => a * b, 1);
    const dataBytes = naxis === 0 ? 0 : (Math.abs(bitpix) / 8) * gcount * (pcount + elements);
    const extname = h.cards.get('EXTNAME');
    const name = typeof extname === 'string' ? extname.trim() : undefined;
    if (h.cards.get('ZIMAGE') === true) compressed = true;
    seen.push(`${index}: ${describe(h)} [${axes.join(' x ')}]`);
    const wanted =
      select === undefined
        ? isImage && naxis > 0 && !groups
        : typeof select === 'number'
          ? select === index
          : name !== undefined && name.toUpperCase() === select.toUpperCase();
    if (h.end + dataBytes > size) {
      throw new CaiError(
        ErrorCodes.corrupt,
        source,
        `HDU ${index}'s header promises ${dataBytes} data bytes (NAXIS ${axes.join(' x ')}, BITPIX ${bitpix}) from byte ${h.end}, but the file ends at byte ${size}, ${h.end + dataBytes - size} bytes short; the file is truncated or its header lies about the data size: write it again`,
      );
    }
    if (wanted) {
      if (!isImage || groups || naxis === 0) {
        const what = groups ? ' (random groups)' : naxis === 0 ? ' with no data (NAXIS = 0)' : '';
        throw new CaiError(
          ErrorCodes.unsupported,
          source,
          `HDU ${index} is ${describe(h)}${what}, not an image; choose an image HDU with fitsHdu (HDUs: ${seen.join('; ')})`,
        );
      }
      if (!(BITPIX as readonly number[]).includes(bitpix)) {
        throw new CaiError(
          ErrorCodes.corrupt,
          source,
          `HDU ${index} has BITPIX ${bitpix}; FITS allows only ${BITPIX.join(', ')}`,
        );
      }
      const blank = h.cards.get('BLANK');
      return {
        index,
        extname: name,
        bitpix: bitpix as ImageHdu['bitpix'],
        axes,
        bscale: realCard(h, 'BSCALE', 1),
        bzero: realCard(h, 'BZERO', 0),
        blank: typeof blank === 'number' && bitpix > 0 ? blank : undefined,
        dataStart: h.end,
        dataBytes,
      };
    }
    offset = h.end + Math.ceil(dataBytes / BLOCK) * BLOCK;
  }
  const which =
    select === undefined
      ? 'no HDU with image data'
      : `no HDU ${typeof select === 'number' ? select : `named "${select}"`}`;
  throw new CaiError(
    compressed ? ErrorCodes.unsupported : ErrorCodes.notFound,
    source,
    `has ${which} (HDUs: ${seen.join('; ') || 'none'})${compressed ? '; it holds a tile-compressed image (fpack): decompress it with funpack first' : '; choose one with fitsHdu'}`,
  );
}

function badCount(source: string, index: number, keyword: string, value: number): CaiError {
  return new CaiError(
    ErrorCodes.corrupt,
    source,
    `HDU ${index} has ${keyword} = ${value}, outside what FITS allows; the header is damaged: write the file again`,
  );
}
