// A sweep, then its report. The sweep (src/experiments) measures and the report renders what it
// measured, so the step that does both lives here, above both.
import type { BillOptions } from '../experiments/cost.js';
import { runSweep, sweepFolder, type SweepOptions, type SweepResult } from '../experiments/sweep.js';
import { writeReport, type ReportResult } from './report.js';

/**
 * Options of `runSweepWithReport`: the sweep's, and how to report it.
 * @example await runSweepWithReport({ job, output: 'bench-out', batchSizes: [32, 512], bill: { memoryMB: 3008 } });
 */
export interface SweepReportOptions extends SweepOptions {
  /** How `report.html` bills the records. */
  readonly bill?: BillOptions;
  /** Write figures and `report.html` at the end (default true). */
  readonly report?: boolean;
}

/**
 * What `runSweepWithReport` did and wrote: the sweep's result, the report's files and its warnings.
 * @example const { files } = await runSweepWithReport(options); console.log(files.report?.html);
 */
export interface SweepReportResult extends SweepResult {
  readonly files: SweepResult['files'] & { readonly report?: ReportResult };
}

/**
 * Runs a sweep (`runSweep`), then writes its figures and `report.html` into the sweep's folder, as
 * `cai bench` does; the report's warnings follow the sweep's.
 * @example const { rows, files } = await runSweepWithReport({ job, output: 'bench-out', runs: 3 });
 */
export async function runSweepWithReport(o: SweepReportOptions): Promise<SweepReportResult> {
  const result = await runSweep(o);
  const report = (o.report ?? true) ? await writeReport(sweepFolder(o.output), o.bill ?? {}) : undefined;
  return {
    ...result,
    warnings: [...result.warnings, ...(report?.warnings ?? [])],
    files: { ...result.files, report },
  };
}
