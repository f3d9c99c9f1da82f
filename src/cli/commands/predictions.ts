import type { Command } from 'commander';
import { mergePredictions } from '../../summarize/merge-predictions.js';
import { openStore } from '../../storage/open.js';

/**
 * `cai predictions <output> --to all.parquet`: one file of every prediction of a job, for pandas,
 * pyarrow, DuckDB or a spreadsheet.
 *
 * @example registerPredictionsCommand(program)
 */
export function registerPredictionsCommand(program: Command): void {
  program
    .command('predictions')
    .description("merge a job's per-partition predictions into one Parquet, CSV or JSONL file, in plan order")
    .argument('<output>', 'the output folder or s3:// prefix of a cai run')
    .requiredOption('--to <file>', 'the merged file, by extension: all.parquet, all.csv or all.jsonl')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// URIs; also AWS_ENDPOINT_URL_S3')
    .addHelpText(
      'after',
      '\nOne partition is in memory at a time (a Parquet row group each). Columns: partition, index, id\n(when the source has ids), one per model output, label (with --label), error (empty but for failed items).\n\nExample:\n  cai predictions out/ --to all.parquet',
    )
    .action(async (output: string, o: { to: string; s3Endpoint?: string }) => {
      const store = await openStore(output, { s3Endpoint: o.s3Endpoint ?? process.env.AWS_ENDPOINT_URL_S3 });
      const r = await mergePredictions(store, o.to);
      process.stdout.write(
        `${o.to}: ${r.rows} rows from ${r.partitions} partitions; columns ${r.columns.join(', ')}\n`,
      );
    });
}
