import {
  billRecords,
  seedsFormulaCost,
  type Bill,
  type BillOptions,
  type SeedsComparisonRow,
} from '../experiments/cost.js';
import type { PartitionRecord } from '../worker/record.js';
import type { EstimateChoice, Projection } from '../experiments/estimate.js';
import {
  configKey,
  formatNumber,
  mean,
  RESULT_STATS_COLUMNS,
  type ResultStatsRow,
  type SweepRow,
} from '../experiments/sweep-rows.js';
import { num, usd, type Table } from './table.js';
import { OUTPUT_KEYS } from '../storage/output-layout.js';

/**
 * A bill as a table: one line per charge, and the total.
 * @example console.log(textTable(billTable(billRecords(records))));
 */
export function billTable(bill: Bill, title?: string): Table {
  return {
    title,
    columns: ['Charge', 'Quantity', 'Unit', 'Unit price ($)', 'Cost ($)'],
    leftAlign: [0, 2],
    rows: [
      ...bill.lines.map((l) => [
        l.item,
        num(l.quantity, 6),
        l.unit,
        String(Number(l.unitUSD.toPrecision(6))),
        usd(l.usd),
      ]),
      ['Total', '', '', '', usd(bill.totalUSD)],
    ],
  };
}

/**
 * The seeds' cost table recomputed with their formula, beside the honest bill of the same invocations.
 * @example console.log(textTable(seedsComparisonTable(seedsComparison())));
 */
export function seedsComparisonTable(rows: readonly SeedsComparisonRow[], memoryMB = 10240): Table {
  return {
    title: `Seeds' formula (requests x duration x memory used x $0.00001667) vs the honest bill at ${memoryMB} MB configured`,
    columns: [
      'Partition',
      'Requests',
      'Duration (s)',
      'Memory used (GB)',
      'Seeds ($)',
      'Seeds formula ($)',
      'Lambda GB-s',
      'Lambda ($)',
      'Step Functions ($)',
      'S3 ($)',
      'Honest total ($)',
    ],
    rows: rows.map((r) => {
      const part = (prefix: string) =>
        r.honest.lines.filter((l) => l.item.startsWith(prefix)).reduce((s, l) => s + l.usd, 0);
      return [
        `${r.partitionMB}MB`,
        String(r.requests),
        String(r.durationS),
        r.memoryGB.toFixed(1),
        r.publishedUSD.toFixed(2),
        r.seedsUSD.toFixed(2),
        num(r.honest.mapGbSeconds, 6),
        usd(part('Lambda')),
        usd(part('Step Functions')),
        usd(part('S3')),
        usd(r.honest.totalUSD),
      ];
    }),
  };
}

/**
 * Projections as a table: one row per (data, partition, memory).
 * @example console.log(textTable(projectionTable(estimateGrid(cal).projections)));
 */
export function projectionTable(projections: readonly Projection[], title?: string): Table {
  return {
    title,
    columns: [
      'Data (GB)',
      'Partition (MB)',
      'Memory (MB)',
      'Partitions',
      'Items/s per Lambda',
      'Partition (s)',
      'Waves',
      'Map (s)',
      'Total (s)',
      'Cost ($)',
      'Feasible',
    ],
    leftAlign: [10],
    rows: projections.map((p) => [
      num(p.dataGB),
      num(p.partitionMB),
      String(p.memoryMB),
      String(p.partitions),
      num(p.itemsPerSecondPerLambda),
      num(p.partitionS),
      String(p.waves),
      num(p.mapS),
      num(p.totalS),
      usd(p.costUSD),
      p.feasible ? 'yes' : `no: ${p.reasons.join('; ')}`,
    ]),
  };
}

/**
 * The cheapest and fastest choice per data size.
 * @example console.log(textTable(choicesTable(estimateGrid(cal).choices)));
 */
export function choicesTable(choices: readonly EstimateChoice[]): Table {
  const d = (p: Projection | undefined) =>
    p
      ? [`${num(p.partitionMB)} MB @ ${p.memoryMB} MB`, num(p.totalS), usd(p.costUSD)]
      : ['none feasible', '', ''];
  return {
    title: 'Cheapest and fastest (partition size, memory) per data size',
    columns: ['Data (GB)', 'Cheapest', 'Time (s)', 'Cost ($)', 'Fastest', 'Time (s)', 'Cost ($)'],
    leftAlign: [1, 4],
    rows: choices.map((c) => [num(c.dataGB), ...d(c.cheapest), ...d(c.fastest)]),
  };
}

/**
 * `result_stats.csv` rows as a table (every column, numbers as in the CSV).
 * @example htmlTable(resultStatsTable(resultStatsRows(rows)))
 */
export function resultStatsTable(rows: readonly ResultStatsRow[]): Table {
  return {
    title: OUTPUT_KEYS.resultStats,
    columns: [...RESULT_STATS_COLUMNS],
    leftAlign: [2, 12],
    rows: rows.map((r) =>
      RESULT_STATS_COLUMNS.map((c) =>
        typeof r[c] === 'number' ? formatNumber(r[c] as number) : String(r[c]),
      ),
    ),
  };
}

/**
 * The seeds' formula applied to a run: requests x mean duration x memory *used* (peak RSS) x $0.00001667.
 * @example roundCents(seedsStyleCost(records))
 */
export function seedsStyleCost(records: readonly PartitionRecord[]): number {
  const peakGB = Math.max(0, ...records.map((r) => r['total_cpu_memory (MB)'])) / 1024;
  return seedsFormulaCost(records.length, mean(records.map((r) => r.timings.total)), peakGB);
}

/**
 * Cost per sweep configuration: the seeds' formula and the honest bill on both architectures, mean over runs.
 * @example htmlTable(sweepCostTable(rows, { memoryMB: 10240 }))
 */
export function sweepCostTable(rows: readonly SweepRow[], options: BillOptions): Table {
  const groups = new Map<string, SweepRow[]>();
  for (const r of rows) groups.set(configKey(r.config), [...(groups.get(configKey(r.config)) ?? []), r]);
  return {
    title: `Cost per configuration (mean over runs; records billed as on Lambda at ${options.memoryMB ?? 10240} MB)`,
    columns: [
      'Partition (MB)',
      'Data (GB)',
      'Batch',
      'Engine',
      'Runs',
      "Seeds' formula ($)",
      'Honest x86_64 ($)',
      'Honest arm64 ($)',
    ],
    leftAlign: [3],
    rows: [...groups.values()].map((g) => {
      const c = g[0].config;
      const m = (f: (r: SweepRow) => number) => usd(mean(g.map(f)));
      return [
        num(c.partitionMB),
        num(c.dataGB),
        String(c.batchSize),
        c.engine,
        String(g.length),
        m((r) => seedsStyleCost(r.records)),
        m((r) => billRecords(r.records, { ...options, arch: 'x86_64' }).totalUSD),
        m((r) => billRecords(r.records, { ...options, arch: 'arm64' }).totalUSD),
      ];
    }),
  };
}
