// A JPEG's size read from its frame header in JS. sharp's metadata() costs about half a millisecond of
// the main thread per call, as much as the JS part of preprocessing, and a JPEG needs only these bytes.

/**
 * Width, height, sample precision and component count from the first SOF marker of a baseline, progressive or lossless JPEG, or
 * `undefined` when the bytes are not a JPEG this simple walk understands (sharp's metadata() is then
 * asked instead).
 *
 * @example jpegSize(await readFile('cat.jpg')) // { width: 500, height: 375 }
 */
export function jpegSize(
  bytes: Uint8Array,
): { width: number; height: number; precision: number; components: number } | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1];
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    // Markers without a length: TEM, RSTn, SOI, EOI.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd9)) {
      i += 2;
      continue;
    }
    const length = (bytes[i + 2] << 8) | bytes[i + 3];
    if (length < 2) return undefined;
    // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width follow the length.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 10 > bytes.length) return undefined;
      const precision = bytes[i + 4];
      const height = (bytes[i + 5] << 8) | bytes[i + 6];
      const width = (bytes[i + 7] << 8) | bytes[i + 8];
      const components = bytes[i + 9];
      return width > 0 && height > 0 ? { width, height, precision, components } : undefined;
    }
    if (marker === 0xda) return undefined; // scan data before any frame header
    i += 2 + length;
  }
  return undefined;
}
