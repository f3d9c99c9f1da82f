import type { TopLevelSpec } from 'vega-lite';
import type { PartitionRecord } from '../worker/record.js';
import type { Figure } from './figures.js';
import { shortNames } from './short-names.js';
import { num, type Table } from './table.js';

const CONFIG = {
  font: 'DejaVu Sans, Verdana, sans-serif',
  background: 'white',
  view: { stroke: '#ccc' },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
} as const;

/** A partition that failed for good, as far as the report knows when. */
export interface TimelineFailure {
  readonly partition: string;
  readonly attempts: number;
  readonly code: string;
  /** When its last attempt ended, when the engine wrote it down. */
  readonly finished_at?: string;
}

/** Stages drawn inside a partition's bar, each on its own row of the bar, in this order. */
export const TIMELINE_STAGES = ['open', 'load', 'inference', 'write'] as const;

const STAGE_TITLES: Record<(typeof TIMELINE_STAGES)[number], string> = {
  open: 'waiting to open',
  load: 'reading + decoding batches',
  inference: 'inference',
  write: 'writing predictions',
};

/** The lane a record ran in: a Slurm array task, a Lambda sandbox or a worker process. */
export function laneOf(r: PartitionRecord): string {
  const s = r.worker.slurm;
  if (s) return `task ${s.job_id}_${s.array_task_id} on ${s.node || r.worker.host}`;
  if (r.lambda) return `Lambda ${r.worker.host}`;
  return `${r.worker.host} pid ${r.worker.pid}`;
}

/** One partition's bar as the timeline draws it, in seconds from the run's start. */
export interface TimelineBar {
  readonly partition: string;
  readonly lane: string;
  readonly start: number;
  readonly end: number;
  readonly attempt: number;
}

/**
 * The run's timeline: one row per worker (process, Slurm task or Lambda sandbox), each partition a bar from
 * its start to its end, and inside it the intervals each stage really ran (from the records' `spans`), so
 * overlapping stages show as overlapping, idle gaps and stragglers as gaps and long bars. A partition that
 * took more than one try is outlined in red and says which try; partitions that failed for good are red
 * marks on a row of their own at the time their last try ended.
 *
 * @example const { figure, bars } = timelineFigure(records, new Date(summary.run.started_at), []);
 */
export function timelineFigure(
  records: readonly PartitionRecord[],
  runStart: Date | undefined,
  failures: readonly TimelineFailure[],
): { figure: Figure; bars: TimelineBar[]; lanes: Table } | undefined {
  if (!records.length) return undefined;
  const t0 = Math.min(
    ...records.map((r) => Date.parse(r.started_at)),
    ...(runStart ? [runStart.getTime()] : []),
  );
  const sec = (iso: string) => (Date.parse(iso) - t0) / 1000;
  const laneNames = [...new Set(records.map(laneOf))].sort((a, b) =>
    a.localeCompare(b, undefined, { numeric: true }),
  );
  // Lane names are short already unless they are long: only then drop what they share.
  const short = laneNames.some((l) => l.length > 22) ? shortNames(laneNames) : { names: laneNames };
  const laneLabel = new Map(laneNames.map((l, i) => [l, short.names[i]]));
  const partNames = shortNames(records.map((r) => r.partition));
  const partLabel = new Map(records.map((r, i) => [r.partition, partNames.names[i]]));
  const bars: TimelineBar[] = records.map((r) => ({
    partition: r.partition,
    lane: laneLabel.get(laneOf(r)) as string,
    start: sec(r.started_at),
    end: sec(r.finished_at),
    attempt: r.attempt,
  }));
  const laneIndex = new Map(laneNames.map((l, i) => [laneLabel.get(l) as string, i]));
  const lanesShown = [
    ...laneLabel.values(),
    ...(failures.some((f) => f.finished_at) ? ['failed partitions'] : []),
  ];
  const failedLane = lanesShown.length - 1;
  // Each lane is one unit of y: the partition's bar fills most of it, each stage a thin row inside.
  const laneHeight = Math.max(10, Math.min(64, Math.floor(1400 / lanesShown.length)));
  const withStages = laneHeight >= 30;
  const barValues = bars.map((b) => ({
    partition: partLabel.get(b.partition) as string,
    'partition id': b.partition,
    worker: b.lane,
    'start (s)': Number(b.start.toFixed(3)),
    'end (s)': Number(b.end.toFixed(3)),
    try: b.attempt,
    retried: b.attempt > 1 ? `retried (try ${b.attempt})` : 'first try',
    top: (laneIndex.get(b.lane) as number) + 0.06,
    bottom: (laneIndex.get(b.lane) as number) + 0.94,
  }));
  const spanValues = withStages
    ? records.flatMap((r) => {
        const begin = sec(r.started_at);
        const lane = laneIndex.get(laneLabel.get(laneOf(r)) as string) as number;
        return TIMELINE_STAGES.flatMap((stage, k) =>
          (r.spans?.[stage] ?? []).map(([s, e]) => ({
            partition: partLabel.get(r.partition) as string,
            stage: STAGE_TITLES[stage],
            'from (s)': Number((begin + s).toFixed(3)),
            'to (s)': Number((begin + Math.max(e, s + 0.0005)).toFixed(3)),
            top: lane + 0.14 + 0.19 * k,
            bottom: lane + 0.14 + 0.19 * k + 0.15,
          })),
        );
      })
    : [];
  // A worker's start and model load, before its first partition: time the timeline would show as idle.
  const startValues = records
    .filter((r) => r.cold && r.worker_started_at)
    .map((r) => {
      const lane = laneIndex.get(laneLabel.get(laneOf(r)) as string) as number;
      return {
        worker: laneLabel.get(laneOf(r)) as string,
        'from (s)': Number(Math.max(0, sec(r.worker_started_at as string)).toFixed(3)),
        'to (s)': Number(sec(r.started_at).toFixed(3)),
        'model load (s)': Number(r.model_load_s.toFixed(3)),
        top: lane + 0.3,
        bottom: lane + 0.7,
      };
    })
    .filter((v) => v['to (s)'] > v['from (s)']);
  const failed = failures
    .filter((f) => f.finished_at)
    .map((f) => ({
      partition: f.partition,
      'at (s)': Number(sec(f.finished_at as string).toFixed(3)),
      error: `${f.code} after ${f.attempts} ${f.attempts === 1 ? 'try' : 'tries'}`,
      mid: failedLane + 0.5,
    }));
  const end = Math.max(...bars.map((b) => b.end), ...failed.map((f) => f['at (s)']));
  const x = {
    type: 'quantitative',
    title: 'Seconds since the run started',
    scale: { domain: [0, end], nice: false },
  };
  const yScale = { domain: [0, lanesShown.length], reverse: true, nice: false, zero: false };
  const y = {
    type: 'quantitative',
    title: 'Worker',
    scale: yScale,
    axis: {
      values: lanesShown.map((_, i) => i + 0.5),
      labelExpr: `${JSON.stringify(lanesShown)}[floor(datum.value)]`,
      grid: false,
      ticks: false,
      labelLimit: 220,
    },
  };
  const stageOrder = TIMELINE_STAGES.map((st) => STAGE_TITLES[st]);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 760,
    height: laneHeight * lanesShown.length,
    config: CONFIG,
    layer: [
      {
        data: { values: barValues },
        mark: { type: 'rect', fill: '#eeeeee', strokeWidth: 1.5 },
        encoding: {
          y: { ...y, field: 'top' },
          y2: { field: 'bottom' },
          x: { ...x, field: 'start (s)' },
          x2: { field: 'end (s)' },
          stroke: {
            field: 'retried',
            type: 'nominal',
            title: 'Partition',
            scale: {
              domain: ['first try', ...new Set(barValues.filter((b) => b.try > 1).map((b) => b.retried))],
              range: ['#888888', '#d62728', '#d62728', '#d62728', '#d62728', '#d62728'],
            },
          },
          tooltip: [
            { field: 'partition id', type: 'nominal' },
            { field: 'worker', type: 'nominal' },
            { field: 'start (s)', type: 'quantitative' },
            { field: 'end (s)', type: 'quantitative' },
            { field: 'try', type: 'quantitative' },
          ],
        },
      },
      ...(startValues.length
        ? [
            {
              data: { values: startValues },
              mark: { type: 'rect', fill: '#fdd9b5', stroke: '#e6a96b', strokeDash: [3, 2] },
              encoding: {
                y: { field: 'top', type: 'quantitative', scale: yScale },
                y2: { field: 'bottom' },
                x: { ...x, field: 'from (s)' },
                x2: { field: 'to (s)' },
                tooltip: [
                  { field: 'worker', type: 'nominal' },
                  { field: 'from (s)', type: 'quantitative' },
                  { field: 'to (s)', type: 'quantitative' },
                  { field: 'model load (s)', type: 'quantitative' },
                ],
              },
            },
          ]
        : []),
      ...(spanValues.length
        ? [
            {
              data: { values: spanValues },
              mark: { type: 'rect' },
              encoding: {
                y: { field: 'top', type: 'quantitative', scale: yScale },
                y2: { field: 'bottom' },
                x: { ...x, field: 'from (s)' },
                x2: { field: 'to (s)' },
                color: {
                  field: 'stage',
                  type: 'nominal',
                  title: 'Stage',
                  sort: stageOrder,
                  scale: { domain: stageOrder },
                },
                tooltip: [
                  { field: 'partition', type: 'nominal' },
                  { field: 'stage', type: 'nominal' },
                  { field: 'from (s)', type: 'quantitative' },
                  { field: 'to (s)', type: 'quantitative' },
                ],
              },
            },
          ]
        : []),
      ...(failed.length
        ? [
            {
              data: { values: failed },
              mark: { type: 'point', shape: 'cross', color: '#d62728', size: 120, filled: true },
              encoding: {
                y: { field: 'mid', type: 'quantitative', scale: yScale },
                x: { ...x, field: 'at (s)' },
                tooltip: [
                  { field: 'partition', type: 'nominal' },
                  { field: 'error', type: 'nominal' },
                  { field: 'at (s)', type: 'quantitative' },
                ],
              },
            },
          ]
        : []),
    ],
  };
  // Busy share per lane: the union of its bars over the run's length.
  const laneRows = laneNames.map((l) => {
    const mine = bars.filter((b) => b.lane === laneLabel.get(l)).sort((a, b) => a.start - b.start);
    let busy = 0;
    let reach = -Infinity;
    for (const b of mine) {
      busy += Math.max(0, b.end - Math.max(b.start, reach));
      reach = Math.max(reach, b.end);
    }
    const retried = mine.filter((b) => b.attempt > 1).length;
    return [
      laneLabel.get(l) === l ? l : `${laneLabel.get(l)} (${l})`,
      String(mine.length),
      num(busy, 3),
      end > 0 ? `${((100 * busy) / end).toFixed(0)}%` : 'n/a',
      String(retried),
    ];
  });
  const noSpans = records.filter((r) => !r.spans).length;
  return {
    bars,
    lanes: {
      title: 'Workers',
      columns: ['Worker', 'Partitions', 'Busy (s)', 'Busy share of the run', 'Retried partitions'],
      rows: laneRows,
      leftAlign: [0],
    },
    figure: {
      id: 'timeline',
      title: 'Where the time went: each worker over the run',
      caption: `Each grey bar is one partition on the worker that ran it, from its start to its end (${num(records.length)} partitions, ${laneNames.length} workers, ${num(end, 3)} s). A dashed orange box before a worker's first partition is its start (process start and model load). The coloured bars inside the grey ones show when each stage ran, each stage on its own thin row inside the bar (top to bottom: waiting to open, reading and decoding batches, inference, writing), so stages that overlapped (the next batch read while the model runs) show overlapping. A red outline marks a partition that needed more than one try (earlier tries are not recorded)${failed.length ? '; a red cross, a partition that failed for good, when its last try ended' : ''}.${noSpans ? ` ${noSpans} records predate stage times and show no stages.` : ''}`,
      spec: spec as unknown as TopLevelSpec,
      marks: barValues.length + spanValues.length + startValues.length,
      markType: 'rect',
    },
  };
}

/**
 * Each partition's stage times side by side, beside its wall time (not stacked: stages overlap, so their
 * sum can exceed the wall time, and a stacked bar would say the partition took that long). Above 60
 * partitions, one bar per stage with the sum over every partition, beside the summed wall time.
 *
 * @example stageFigure(records).spec
 */
export function stageFigure(records: readonly PartitionRecord[]): Figure {
  const order = [...records].sort((a, b) =>
    a.partition.localeCompare(b.partition, undefined, { numeric: true }),
  );
  const short = shortNames(order.map((r) => r.partition));
  const stages = [
    ['read (waited)', (r: PartitionRecord) => r.timings.read_wait ?? r.timings.read],
    ['decode', (r: PartitionRecord) => r.timings.decode],
    ['inference', (r: PartitionRecord) => r.timings.inference],
    ['write', (r: PartitionRecord) => r.timings.write],
    ['wall (whole partition)', (r: PartitionRecord) => r.timings.total],
  ] as const;
  const names = stages.map((s) => s[0]);
  const color = {
    field: 'stage',
    type: 'nominal',
    title: 'Stage',
    sort: names,
    scale: { domain: names, range: ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#888888'] },
  } as const;
  if (order.length > 60) {
    const values = stages.map(([stage, f]) => ({
      stage,
      seconds: Number(order.reduce((s, r) => s + f(r), 0).toFixed(3)),
    }));
    return {
      id: 'partition_time',
      title: 'Time per stage, summed over partitions',
      caption: `Seconds of each stage summed over the ${num(order.length)} partitions, beside their summed wall time. Stages overlap within a partition (the next batch is read while the model runs), so they can add up to more than the wall time.`,
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        width: 420,
        height: 220,
        config: CONFIG,
        data: { values },
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'stage', type: 'nominal', sort: names, title: 'Stage' },
          y: { field: 'seconds', type: 'quantitative', title: 'Seconds' },
          color,
        },
      } as TopLevelSpec,
      marks: values.length,
      markType: 'rect',
    };
  }
  const values = order.flatMap((r, i) =>
    stages.map(([stage, f]) => ({ partition: short.names[i], stage, seconds: Number(f(r).toFixed(4)) })),
  );
  return {
    id: 'partition_time',
    title: 'Time per partition, by stage',
    caption: `Wall-clock seconds of each stage of each partition, side by side with the partition's whole wall time (grey), not stacked: stages overlap (the next batch is read while the model runs), so they can add up to more than the wall time. Reading is the time the worker waited for it: a partition read ahead during the previous one costs only what was left.${short.prefix || short.suffix ? ` Partition names drop their common ${[short.prefix && `prefix "${short.prefix}"`, short.suffix && `suffix "${short.suffix}"`].filter(Boolean).join(' and ')}.` : ''}`,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      width: Math.min(860, Math.max(300, 60 * order.length)),
      height: 240,
      config: CONFIG,
      data: { values },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        x: {
          field: 'partition',
          type: 'ordinal',
          sort: short.names,
          title: 'Partition',
          axis: { labelAngle: order.length > 8 ? -45 : 0 },
        },
        xOffset: { field: 'stage', sort: names },
        y: { field: 'seconds', type: 'quantitative', title: 'Seconds' },
        color,
      },
    } as TopLevelSpec,
    marks: values.length,
    markType: 'rect',
  };
}
