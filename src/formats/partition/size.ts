import { CaiError, ErrorCodes } from '../../errors.js';

const UNITS: Readonly<Record<string, number>> = Object.freeze({
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
});

/**
 * Parses a byte size such as `25MB`, `1.5GiB` or `4096`. Units are binary (1 MB = 1024 x 1024 bytes),
 * the way CAI's 25 MB partitions were counted (1278 items of 20,524 bytes = 25.0 MiB).
 *
 * @example parseByteSize('25MB', '--size') // 26214400
 */
export function parseByteSize(text: string, option: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  const value = m && unit !== undefined ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new CaiError(
      ErrorCodes.option,
      option,
      `"${text}" is not a size; write a number of bytes with an optional unit, e.g. 25MB, 512KB or 1GB`,
    );
  }
  return value;
}

/** A byte count for messages. @example formatBytes(26214400) // '25.0 MB' */
export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} B`;
}
