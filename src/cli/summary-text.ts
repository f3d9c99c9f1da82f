import type { JobSummary } from '../summarize/summarize.js';
import { formatBytes } from '../formats/partition/size.js';
import { OUTPUT_FOLDERS, OUTPUT_KEYS } from '../storage/output-layout.js';

const f = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** A job summary as a few human-readable lines. @example console.log(summaryText(summary)) */
export function summaryText(s: JobSummary): string {
  const r = s.run;
  const batch =
    r.batch_size === 'auto'
      ? `batch auto${r.batch_size_chosen ? ` (chose ${r.batch_size_chosen})` : ''}`
      : `batch ${r.batch_size}`;
  const lines = [
    `status:      ${s.status}${s.cancelled ? ` (${s.cancelled})` : ''}`,
    `partitions:  ${s.partitions.completed}/${s.partitions.planned} complete, ${s.partitions.failed} failed, ${s.partitions.resumed} resumed, ${s.partitions.not_started} not started`,
    ...(s.model_optimization ? [`model:       ${s.model_optimization}`] : []),
    ...(s.model_rewrites ?? []).map((line) => `model:       ${line}`),
    `items:       ${s.items}${s.failed_items ? ` (${s.failed_items} failed items)` : ''}, ${formatBytes(s.bytes)}`,
  ];
  if (s.model_rewrites_mixed) {
    const ways = Object.entries(s.model_rewrites_mixed).map(([how, n]) => `${n} with ${how}`);
    lines.push(
      `warning:     partitions were computed with different model rewrites (${ways.join(', ')}): an output resumed by another CAI version; their predictions differ in the last digits (--overwrite recomputes them alike)`,
    );
  }
  if (s.sixteen_bit_images) {
    lines.push(
      s.sixteen_bit_rule === 'scale'
        ? `warning:     ${s.sixteen_bit_images} 16-bit images were scaled to 8 bits (0-65535 to 0-255, --sixteen-bit scale)`
        : `warning:     ${s.sixteen_bit_images} 16-bit images were reduced to 8 bits as PIL's convert('RGB') does (gray clipped at 255, colour keeps the high byte); --sixteen-bit scale maps 0-65535 to 0-255 instead`,
    );
  }
  // A run that completed no partition (all resumed, or all failed) has no statistics worth zeros.
  if (r.partitions === 0) {
    lines.push(
      s.partitions.resumed === s.partitions.planned
        ? `this run:    nothing to do: every partition was complete already (--overwrite starts over)`
        : `this run:    no partition completed`,
    );
  } else {
    lines.push(
      `this run:    ${r.partitions} partitions, ${r.items} items in ${f(r.wall_seconds)} s wall (map ${f(r.map_seconds)} s): ${f(r.items_per_second, 1)} items/s; ${r.concurrency} ${r.engine === 'slurm' ? 'array task(s)' : 'worker(s)'} x ${r.threads} thread(s), ${batch}`,
      ...(r.nodes
        ? [
            `nodes:       ${Object.entries(r.nodes)
              .map(([node, n]) => `${node} ${n} partition(s)`)
              .join(', ')}`,
          ]
        : []),
      `partition:   mean ${f(r.mean_partition_seconds)} s, p50 ${f(r.p50_partition_seconds)} s, p95 ${f(r.p95_partition_seconds)} s; ${r.retries} retries`,
      `stages:      read ${f(s.stage_seconds.read)} s (waited for ${f(s.stage_seconds.read_wait ?? 0)} s), decode ${f(s.stage_seconds.decode)} s, inference ${f(s.stage_seconds.inference)} s, write ${f(s.stage_seconds.write)} s (summed over partitions)`,
      `cold start:  model load ${f(s.cold_start.mean_model_load_s, 3)} s, first prediction ${f(s.cold_start.mean_time_to_first_prediction_s, 3)} s after process start; peak RSS ${f(s.peak_rss_mb, 0)} MB`,
    );
  }
  if (s.storage) {
    const parts = Object.entries(s.storage).map(
      ([stage, t]) =>
        `${stage} ${t.requests} requests (${t.retries} retried), ${formatBytes(t.bytes)}, ${f(t.seconds)} s`,
    );
    lines.push(`storage:     ${parts.join('; ')}`);
  }
  const m = s.metrics;
  if (m?.kind === 'regression') {
    lines.push(
      `metrics:     n=${m.n} MAE ${f(m.mae, 5)} MSE ${f(m.mse, 6)} bias ${f(m.bias, 5)} NMAD ${f(m.nmad, 5)} outliers ${f(m.outlier_fraction * 100, 2)}% R2 ${f(m.r2, 5)}`,
    );
  } else if (m?.kind === 'classification') {
    lines.push(
      `metrics:     n=${m.n} accuracy ${f(m.accuracy * 100, 2)}% top-5 ${f(m.top5 * 100, 2)}%${m.not_a_class ? `; ${m.not_a_class} items have a label that is not a class of the model (left out)` : ''}`,
    );
  }
  for (const fail of s.failures) {
    lines.push(
      `failed:      partition ${fail.partition} after ${fail.attempts} attempt(s): ${fail.error.code}: ${fail.error.message}`,
    );
  }
  if (s.skipped) {
    const why = Object.entries(s.skipped.reasons).map(([reason, n]) => `${n} ${reason}`);
    lines.push(
      `skipped:     ${s.skipped.total} input object(s): ${why.join('; ')} (list in ${OUTPUT_KEYS.skipped})`,
    );
  }
  lines.push(
    `output:      ${s.output} (${[OUTPUT_KEYS.summary, OUTPUT_KEYS.resultStats, OUTPUT_KEYS.combined, `${OUTPUT_FOLDERS.predictions}/`, `${OUTPUT_FOLDERS.results}/`].join(', ')})`,
  );
  return lines.join('\n');
}
