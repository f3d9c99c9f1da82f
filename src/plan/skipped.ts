// What planning left out, as the summary names it: `skipped.json` (written beside `plan.json`) holds every
// skipped object; the summary gives the count by reason and the first keys.
import { OUTPUT_KEYS } from '../storage/output-layout.js';
import type { Store } from '../storage/store.js';
import type { SkippedObject } from './plan.js';
import { readJsonIfPresent } from '../storage/json.js';

/** Keys the summary lists (all of them are in `skipped.json`). */
const LISTED = 20;

/**
 * The summary's account of skipped input objects.
 *
 * @example { total: 2, reasons: { 'no reader for this kind of file': 2 }, keys: ['a.txt', 'b.csv'] }
 */
export interface SkippedSummary {
  readonly total: number;
  readonly reasons: Readonly<Record<string, number>>;
  /** The first skipped keys, each with its reason. */
  readonly keys: readonly SkippedObject[];
}

/**
 * Reads `skipped.json` from a job's output and summarizes it; undefined when nothing was skipped (or
 * the job was planned before skipped objects were recorded).
 *
 * @example const skipped = await skippedSummary(output); if (skipped) console.log(skipped.total);
 */
export async function skippedSummary(output: Store): Promise<SkippedSummary | undefined> {
  const list = await readJsonIfPresent<SkippedObject[]>(output, OUTPUT_KEYS.skipped, {
    remedy: 'run the job with --overwrite to plan it again',
  });
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const reasons: Record<string, number> = {};
  for (const s of list) reasons[s.reason] = (reasons[s.reason] ?? 0) + 1;
  return { total: list.length, reasons, keys: list.slice(0, LISTED) };
}
