// `cai optimize`: a model saved with onnxruntime's graph optimizations and, with int8, its heavy
// operators quantized, then measured against the fp32 model on held-out items of the user's own input.
// The report is always written next to the model; a model over the stated tolerance is written under
// another name (`.rejected.onnx`) so nothing mistakes it for an accepted one.
import { readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { CaiError, ErrorCodes } from '../errors.js';
import type { JobSpec } from '../job/spec.js';
import { OPTIMIZATION_KEY, type OptimizationRecord } from '../model/optimization.js';
import { decodeModel, encodeModel, setMetadata, type ModelProto } from '../model/quantize/onnx-graph.js';
import { inputConvs, type HeavyNode } from '../model/quantize/quantize.js';
import type { CalibrationMethod, RangeCollector } from '../model/quantize/ranges.js';
import { loadModel, onnxruntimeVersion, type ModelSession } from '../model/session.js';
import { missingFileError, openParent } from '../storage/open.js';
import { compareModels, type Comparison } from './compare.js';
import {
  collectChannelMax,
  collectRanges,
  finalModel,
  heavyOrFail,
  int8Graph,
  optimizeBytes,
  prepareModel,
  SAVED_LEVEL,
  type Feeds,
  type Int8Options,
} from './int8.js';
import { readItems, type ItemBatches } from './items.js';

/** Defaults of `cai optimize`, chosen by measurement on our 2-core AVX-512 VNNI machine (docs/performance.md). */
export const OPTIMIZE_DEFAULTS = Object.freeze({
  calibrationItems: 256,
  heldOutItems: 256,
  batchSize: 16,
  method: 'minmax' as CalibrationMethod,
  keepFp32: 0,
  tolerance: 0.05,
  minAgreement: 0.99,
  /**
   * SmoothQuant's alpha for the dynamically quantized MatMuls (0: none). 0.8 was the more accurate of
   * 0.5 and 0.8 on both the random-weight and the trained AstroMAE-shaped model (docs/performance.md).
   */
  smoothAlpha: 0.8,
  /** Operators with fewer weights gain nothing from int8 and only add quantization error. */
  minWeights: 4096,
});

/** What to optimize and how. */
export interface OptimizeRequest {
  readonly model: string;
  readonly output: string;
  readonly int8: boolean;
  /** The input items come from (`--calibrate`), with its source and mapping fields. */
  readonly job?: JobSpec;
  readonly calibrationItems?: number;
  readonly heldOutItems?: number;
  readonly method?: CalibrationMethod;
  /** Most heavy operators kept in fp32, the most costly first, to get within the tolerance. */
  readonly keepFp32?: number;
  /** Largest RMS difference as a share of the fp32 predictions' standard deviation. */
  readonly tolerance?: number;
  /** Smallest argmax agreement for class scores. */
  readonly minAgreement?: number;
  /** Leave Conv in fp32 (quantize only MatMul/Gemm). */
  readonly noConv?: boolean;
  /** Leave MatMul/Gemm in fp32 (quantize only Conv). */
  readonly noMatmul?: boolean;
  /**
   * SmoothQuant's migration strength for the MatMuls' inputs, in [0, 1]; 0 turns smoothing off.
   * Default {@link OPTIMIZE_DEFAULTS}.smoothAlpha.
   */
  readonly smoothAlpha?: number;
  /**
   * Quantize also the Convs that read a model input (directly or after elementwise operators); by
   * default they stay fp32 ({@link inputConvs}).
   */
  readonly quantizeInputConvs?: boolean;
  readonly threads?: number;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

/** The accuracy report, written as JSON next to the model. */
export interface OptimizeReport {
  readonly model: string;
  /** Where the optimized model was written (the `.rejected.onnx` name when over tolerance). */
  readonly optimized: string;
  readonly accepted: boolean;
  readonly optimization: OptimizationRecord;
  readonly tolerance: { readonly relative_error: number; readonly argmax_agreement: number };
  readonly calibration_items: number;
  /** Held-out comparison; absent when no input was given (graph optimizations only). */
  readonly comparison?: Comparison;
  /** Per-layer cost: each heavy operator quantized alone, its relative error (with --keep-fp32). */
  readonly sensitivity?: readonly {
    readonly name: string;
    readonly op: string;
    readonly relative_error: number;
  }[];
  /** Why the model was refused, when it was. */
  readonly exceeded?: readonly string[];
}

/** `m.int8.onnx` -> `m.int8.accuracy.json`. @example reportPath('out/m.onnx') */
export function reportPath(output: string): string {
  return `${output.replace(/\.onnx$/i, '')}.accuracy.json`;
}

/** `m.int8.onnx` -> `m.int8.rejected.onnx`. @example rejectedPath('out/m.onnx') */
export function rejectedPath(output: string): string {
  return `${output.replace(/\.onnx$/i, '')}.rejected.onnx`;
}

function exceeded(c: Comparison | undefined, tolerance: number, minAgreement: number): string[] {
  if (!c) return [];
  const out: string[] = [];
  for (const o of c.outputs) {
    if (!(o.relative_error <= tolerance))
      out.push(
        `${o.name}: error ${(o.relative_error * 100).toFixed(2)}% of the fp32 std > ${(tolerance * 100).toFixed(2)}%`,
      );
    if (o.argmax_agreement !== undefined && o.argmax_agreement < minAgreement)
      out.push(
        `${o.name}: argmax agreement ${(o.argmax_agreement * 100).toFixed(2)}% < ${(minAgreement * 100).toFixed(2)}%`,
      );
  }
  return out;
}

async function withSessions<T>(
  a: string | Uint8Array,
  b: Uint8Array,
  threads: number,
  fn: (a: ModelSession, b: ModelSession) => Promise<T>,
): Promise<T> {
  const sa = await loadModel(a, { threads, thread: 'main' });
  try {
    const sb = await loadModel(b, { threads, thread: 'main' });
    try {
      return await fn(sa, sb);
    } finally {
      await sb.release();
    }
  } finally {
    await sa.release();
  }
}

/** RMS difference over the fp32 outputs' standard deviation, the worst output. */
function relativeError(ref: readonly Float32Array[], got: readonly Float32Array[]): number {
  let worst = 0;
  ref.forEach((a, k) => {
    const b = got[k];
    let mean = 0;
    for (const v of a) mean += v / a.length;
    let variance = 0;
    let sq = 0;
    for (let i = 0; i < a.length; i++) {
      variance += (a[i] - mean) ** 2;
      sq += (a[i] - b[i]) ** 2;
    }
    const e = variance > 0 ? Math.sqrt(sq / variance) : sq === 0 ? 0 : Infinity;
    if (!(e <= worst)) worst = e;
  });
  return worst;
}

/** Every output of a session over the batches, concatenated per output (float). */
async function outputsOf(session: ModelSession, batches: readonly Feeds[]): Promise<Float32Array[]> {
  const parts: number[][] = session.outputs.map(() => []);
  for (const feeds of batches) {
    const out = await session.run(feeds);
    session.outputs.forEach((o, k) => {
      for (const v of Array.from(out[o.name].data as ArrayLike<number>)) parts[k].push(Number(v));
    });
  }
  return parts.map((p) => Float32Array.from(p));
}

/**
 * Optimizes a model file and writes it, with its accuracy report next to it.
 *
 * @example const r = await optimizeModel({ model: 'm.onnx', output: 'm.int8.onnx', int8: true, job });
 */
export async function optimizeModel(req: OptimizeRequest): Promise<OptimizeReport> {
  const log = req.log ?? (() => undefined);
  const threads = req.threads ?? os.availableParallelism();
  const tolerance = req.tolerance ?? OPTIMIZE_DEFAULTS.tolerance;
  const minAgreement = req.minAgreement ?? OPTIMIZE_DEFAULTS.minAgreement;
  const method = req.method ?? OPTIMIZE_DEFAULTS.method;
  const calibrationItems = req.calibrationItems ?? OPTIMIZE_DEFAULTS.calibrationItems;
  const heldOutItems = req.heldOutItems ?? OPTIMIZE_DEFAULTS.heldOutItems;
  const [modelStore, modelKey] = await openParent(req.model, { s3Endpoint: req.job?.s3Endpoint });
  if (!(await modelStore.head(modelKey)))
    throw await missingFileError(
      req.model,
      { s3Endpoint: req.job?.s3Endpoint },
      {
        what: 'a model file',
        ext: '.onnx',
        flag: 'cai optimize',
        missing: 'the model does not exist; check the path',
      },
    );
  const modelPath = await modelStore.localPath(modelKey);
  const bytes = new Uint8Array(await readFile(modelPath));
  if (req.int8 && !req.job) {
    throw new CaiError(
      ErrorCodes.option,
      '--int8',
      'needs --calibrate <input>: Conv ranges are calibrated, and the accuracy measured, on your own items',
    );
  }
  const base = { tool: 'cai optimize', level: SAVED_LEVEL, onnxruntime: onnxruntimeVersion() };
  const restriction = `saved at onnxruntime graph-optimization level "${SAVED_LEVEL}": no CPU-specific layouts (level "all" adds those when a worker loads it); may hold onnxruntime contrib operators (com.microsoft), so it needs onnxruntime ${onnxruntimeVersion()} or later, CPU provider`;

  let record: OptimizationRecord;
  let finalBytes: Uint8Array;
  let comparison: Comparison | undefined;
  let sensitivity: OptimizeReport['sensitivity'];
  let calItems = 0;
  if (!req.int8) {
    log(`optimizing the graph (onnxruntime level ${SAVED_LEVEL})`);
    record = { ...base, restriction };
    const m = decodeModel(await optimizeBytes(bytes, SAVED_LEVEL), req.model);
    setMetadata(m, OPTIMIZATION_KEY, JSON.stringify(record));
    finalBytes = encodeModel(m);
    if (req.job) {
      const probe = await loadModel(bytes, { threads: 1, thread: 'main' });
      const inputs = probe.inputs;
      await probe.release();
      const items = await readItems(
        req.job,
        inputs,
        0,
        calibrationItems + heldOutItems,
        OPTIMIZE_DEFAULTS.batchSize,
      );
      comparison = await withSessions(bytes, finalBytes, threads, (a, b) =>
        compareModels(a, b, items.heldOut),
      );
    }
  } else {
    const job = req.job as JobSpec;
    log('preparing the fp32 graph (onnxruntime level basic: BatchNorm folded, constants folded)');
    const model = await prepareModel(bytes, req.model);
    const all = heavyOrFail(model, req.model);
    const raw = new Set(req.quantizeInputConvs ? [] : inputConvs(model));
    const heavy = all.filter(
      (h) =>
        h.weights >= OPTIMIZE_DEFAULTS.minWeights &&
        !raw.has(h.name) &&
        !(req.noConv && h.kind === 'static') &&
        !(req.noMatmul && h.kind === 'dynamic'),
    );
    if (heavy.length === 0) {
      throw new CaiError(
        ErrorCodes.unsupported,
        req.model,
        `its ${all.length} MatMul/Gemm/Conv operator(s) all have fewer than ${OPTIMIZE_DEFAULTS.minWeights} weights${req.noConv ? ' (or are Conv, left fp32 by --no-conv)' : ''}${req.noMatmul ? ' (or are MatMul/Gemm, left fp32 by --no-matmul)' : ''}${raw.size ? ` (or are Convs reading a model input, left fp32 unless --int8-input-convs)` : ''}: int8 would add error and save nothing; run without --int8`,
      );
    }
    const probe = await loadModel(bytes, { threads: 1, thread: 'main' });
    const inputs = probe.inputs;
    await probe.release();
    log(`reading ${calibrationItems} calibration + ${heldOutItems} held-out items from ${job.input}`);
    const items = await readItems(job, inputs, calibrationItems, heldOutItems, OPTIMIZE_DEFAULTS.batchSize);
    calItems = items.calibration.items;
    const convs = new Set(heavy.filter((h) => h.kind === 'static').map((h) => h.name));
    log(`calibrating ${convs.size} Conv(s) on ${calItems} items (${method})`);
    const ranges = await collectRanges(model, convs, items.calibration.batches, threads);
    const alpha = req.smoothAlpha ?? OPTIMIZE_DEFAULTS.smoothAlpha;
    if (!(alpha >= 0 && alpha <= 1))
      throw new CaiError(ErrorCodes.option, '--smooth-alpha', `must be between 0 and 1, got ${alpha}`);
    const matmulNames = new Set(heavy.filter((h) => h.kind === 'dynamic').map((h) => h.name));
    const smoothing = alpha > 0 && !req.noMatmul && matmulNames.size > 0;
    if (smoothing) log(`measuring the MatMuls' input channels for SmoothQuant (alpha ${alpha})`);
    const channelMax = smoothing
      ? await collectChannelMax(model, matmulNames, items.calibration.batches, threads)
      : undefined;
    const options: Int8Options = {
      matmul: !req.noMatmul,
      conv: !req.noConv,
      weightType: 'int8',
      perChannel: true,
      method,
      keepFp32: new Set(),
      smooth: channelMax ? { alpha, channelMax } : undefined,
    };
    const make = async (keep: ReadonlySet<string>) => {
      const kept = heavy.filter((h) => keep.has(h.name));
      const rec: OptimizationRecord = {
        ...base,
        restriction,
        int8: {
          dynamic_matmul: req.noMatmul
            ? 0
            : heavy.filter((h) => h.kind === 'dynamic' && !keep.has(h.name)).length,
          static_conv: req.noConv ? 0 : heavy.filter((h) => h.kind === 'static' && !keep.has(h.name)).length,
          weights: 'int8 symmetric, per output channel',
          activations:
            'uint8: MatMul/Gemm inputs quantized per batch (DynamicQuantizeMatMul), Conv inputs and outputs at calibrated ranges (QDQ)',
          calibration: convs.size || channelMax ? { method, items: calItems } : undefined,
          smoothing:
            channelMax && !req.noMatmul && heavy.some((h) => h.kind === 'dynamic' && !keep.has(h.name))
              ? { method: 'SmoothQuant', alpha }
              : undefined,
          kept_fp32: [
            ...kept.map((h) => h.name),
            ...all.filter((h) => !heavy.includes(h)).map((h) => h.name),
          ],
        },
      };
      const out = await finalModel(int8Graph(model, heavy, ranges, { ...options, keepFp32: keep }), rec);
      return { rec, out };
    };
    log(`quantizing ${heavy.length} operator(s) and saving at level ${SAVED_LEVEL}`);
    let built = await make(new Set());
    log(`measuring on ${items.heldOut.items} held-out items`);
    comparison = await withSessions(bytes, built.out, threads, (a, b) => compareModels(a, b, items.heldOut));
    const matmuls = heavy.filter((h) => h.kind === 'dynamic').map((h) => h.name);
    if (
      exceeded(comparison, tolerance, minAgreement).length &&
      !req.noConv &&
      matmuls.length &&
      matmuls.length < heavy.length
    ) {
      // Dynamic MatMul scales each batch's activations by one range; calibrated Conv does not, and on
      // models like the AstroMAE-shaped one it is most of the error (docs/performance.md): try Conv alone.
      log('over the tolerance: trying Conv only, MatMul/Gemm in fp32');
      const convOnly = await make(new Set(matmuls));
      const c = await withSessions(bytes, convOnly.out, threads, (a, b) =>
        compareModels(a, b, items.heldOut),
      );
      if (!exceeded(c, tolerance, minAgreement).length) {
        log('Conv only is within the tolerance: MatMul/Gemm kept in fp32');
        built = convOnly;
        comparison = c;
      }
    }
    const limit = req.keepFp32 ?? OPTIMIZE_DEFAULTS.keepFp32;
    if (limit > 0 && exceeded(comparison, tolerance, minAgreement).length) {
      sensitivity = await measureSensitivity(
        bytes,
        model,
        heavy,
        ranges,
        options,
        items.calibration,
        threads,
        log,
      );
      const keep = new Set<string>();
      for (const s of sensitivity.slice(0, limit)) {
        keep.add(s.name);
        log(`keeping ${s.name} in fp32 (alone it costs ${(s.relative_error * 100).toFixed(2)}%)`);
        built = await make(keep);
        comparison = await withSessions(bytes, built.out, threads, (a, b) =>
          compareModels(a, b, items.heldOut),
        );
        if (!exceeded(comparison, tolerance, minAgreement).length) break;
      }
    }
    record = built.rec;
    finalBytes = built.out;
  }

  const problems = exceeded(comparison, tolerance, minAgreement);
  const accepted = problems.length === 0;
  const target = accepted ? req.output : rejectedPath(req.output);
  // The other name must not keep a model from an earlier run that this report does not describe.
  await rm(accepted ? rejectedPath(req.output) : req.output, { force: true });
  await writeFile(target, finalBytes);
  const report: OptimizeReport = {
    model: req.model,
    optimized: target,
    accepted,
    optimization: record,
    tolerance: { relative_error: tolerance, argmax_agreement: minAgreement },
    calibration_items: calItems,
    comparison,
    sensitivity,
    exceeded: problems.length ? problems : undefined,
  };
  await writeFile(reportPath(req.output), `${JSON.stringify(report, null, 2)}\n`);
  return report;
}

/** Each heavy operator quantized alone, on up to 32 calibration items: its error, the worst first. */
async function measureSensitivity(
  bytes: Uint8Array,
  model: ModelProto,
  heavy: readonly HeavyNode[],
  ranges: RangeCollector,
  options: Int8Options,
  calibration: ItemBatches,
  threads: number,
  log: (line: string) => void,
): Promise<{ name: string; op: string; relative_error: number }[]> {
  const batches: Feeds[] = [];
  let n = 0;
  for (const f of calibration.batches) {
    if (n >= 32) break;
    batches.push(f);
    n += Object.values(f)[0].shape[0];
  }
  log(`measuring each of ${heavy.length} operator(s) quantized alone on ${n} calibration items`);
  const fp32 = await loadModel(bytes, { threads, thread: 'main' });
  const ref = await outputsOf(fp32, batches).finally(() => fp32.release());
  const out: { name: string; op: string; relative_error: number }[] = [];
  {
    for (const h of heavy) {
      const others = new Set(heavy.filter((x) => x !== h).map((x) => x.name));
      const q = await loadModel(
        encodeModel(int8Graph(model, heavy, ranges, { ...options, keepFp32: others })),
        {
          threads,
          thread: 'main',
        },
      );
      try {
        out.push({
          name: h.name,
          op: h.opType,
          relative_error: relativeError(ref, await outputsOf(q, batches)),
        });
      } finally {
        await q.release();
      }
    }
  }
  return out.sort((a, b) => b.relative_error - a.relative_error);
}
