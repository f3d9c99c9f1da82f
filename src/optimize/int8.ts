// The steps of `cai optimize` over a model and batches already in memory: onnxruntime's basic
// (hardware-independent) optimizations first (BatchNorm folded into Conv, constants folded), then the
// heavy operators found, activation ranges calibrated, the quantized graph made, and onnxruntime's
// extended optimizations saved (QDQ groups fused into QLinearConv, DynamicQuantizeMatMul kept).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../errors.js';
import {
  decodeModel,
  encodeModel,
  nameNodes,
  setMetadata,
  type ModelProto,
} from '../model/quantize/onnx-graph.js';
import {
  calibrationTensors,
  heavyNodes,
  quantizeModel,
  withOutputs,
  type HeavyNode,
} from '../model/quantize/quantize.js';
import { RangeCollector, type CalibrationMethod, type Range } from '../model/quantize/ranges.js';
import { ChannelMax, smoothModel, smoothTensors } from '../model/quantize/smooth.js';
import type { WeightType } from '../model/quantize/weights.js';
import { OPTIMIZATION_KEY, type OptimizationRecord } from '../model/optimization.js';
import { loadModel, saveOptimizedModel, type OptimizationLevel } from '../model/session.js';
import type { Tensor } from '../tensor/tensor.js';

/** One batch of model inputs, by input name. */
export type Feeds = Readonly<Record<string, Tensor>>;

/** The level `cai optimize` saves at: everything but the CPU-specific layouts of `all`. */
export const SAVED_LEVEL: OptimizationLevel = 'extended';

/** How the heavy operators are quantized. */
export interface Int8Options {
  /** Quantize MatMul/Gemm with constant weights dynamically. */
  readonly matmul: boolean;
  /** Quantize Conv statically (needs calibration batches). */
  readonly conv: boolean;
  readonly weightType: WeightType;
  readonly perChannel: boolean;
  readonly method: CalibrationMethod;
  /** Node names left in fp32. */
  readonly keepFp32: ReadonlySet<string>;
  /**
   * SmoothQuant's migration strength alpha for the quantized MatMuls' inputs (with `channelMax` from
   * {@link collectChannelMax}); absent: no smoothing.
   */
  readonly smooth?: { readonly alpha: number; readonly channelMax: ChannelMax };
}

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-optimize-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs onnxruntime's optimizations at `level` on model bytes and returns the saved graph's bytes. */
export async function optimizeBytes(bytes: Uint8Array, level: OptimizationLevel): Promise<Uint8Array> {
  return withTempDir(async (dir) => {
    const out = path.join(dir, 'optimized.onnx');
    await saveOptimizedModel(bytes, out, level);
    return new Uint8Array(await readFile(out));
  });
}

/**
 * The fp32 model after onnxruntime's basic optimizations, every node named: what is calibrated and
 * quantized (the same graph a worker would run before the CPU-specific steps).
 */
export async function prepareModel(bytes: Uint8Array, source: string): Promise<ModelProto> {
  decodeModel(bytes, source);
  const model = decodeModel(await optimizeBytes(bytes, 'basic'), source);
  nameNodes(model);
  return model;
}

/** The heavy operators of a prepared model; an error naming what was looked for when there is none. */
export function heavyOrFail(model: ModelProto, source: string): HeavyNode[] {
  const heavy = heavyNodes(model);
  if (heavy.length === 0) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      'has no operator int8 quantization speeds up (MatMul or Gemm with a constant weight, Conv); run `cai optimize` without --int8 to save only the graph optimizations',
    );
  }
  return heavy;
}

/**
 * Activation ranges of the Convs' inputs and outputs over the calibration batches, in order (the same
 * batches give the same ranges).
 */
export async function collectRanges(
  model: ModelProto,
  convs: ReadonlySet<string>,
  batches: readonly Feeds[],
  threads: number,
): Promise<RangeCollector> {
  const collector = new RangeCollector();
  const tensors = calibrationTensors(model, convs);
  if (tensors.length === 0) return collector;
  const session = await loadModel(encodeModel(withOutputs(model, tensors)), { threads, thread: 'main' });
  try {
    const wanted = new Set(tensors);
    for (const feeds of batches) {
      for (const [name, t] of Object.entries(feeds))
        if (wanted.has(name)) collector.add(name, t.data as ArrayLike<number>);
      const out = await session.run(feeds);
      for (const name of tensors) {
        const t = out[name];
        if (t) collector.add(name, t.data as ArrayLike<number>);
      }
    }
  } finally {
    await session.release();
  }
  return collector;
}

/**
 * Per-channel absolute maxima of the inputs of these MatMuls over the calibration batches, for
 * SmoothQuant (the same batches give the same maxima).
 */
export async function collectChannelMax(
  model: ModelProto,
  matmuls: ReadonlySet<string>,
  batches: readonly Feeds[],
  threads: number,
): Promise<ChannelMax> {
  const channels = new ChannelMax();
  const tensors = smoothTensors(model, matmuls);
  if (tensors.length === 0) return channels;
  const session = await loadModel(encodeModel(withOutputs(model, tensors)), { threads, thread: 'main' });
  try {
    for (const feeds of batches) {
      const out = await session.run(feeds);
      for (const name of tensors) {
        const t = out[name] ?? feeds[name];
        if (t) channels.add(name, t.data as ArrayLike<number>, t.shape[t.shape.length - 1]);
      }
    }
  } finally {
    await session.release();
  }
  return channels;
}

/** The quantized graph of a prepared model (before onnxruntime's extended optimizations). */
export function int8Graph(
  model: ModelProto,
  heavy: readonly HeavyNode[],
  ranges: RangeCollector | undefined,
  o: Int8Options,
): ModelProto {
  const pick = (kind: HeavyNode['kind']) =>
    new Set(heavy.filter((h) => h.kind === kind && !o.keepFp32.has(h.name)).map((h) => h.name));
  const dynamic = o.matmul ? pick('dynamic') : new Set<string>();
  const convs = o.conv && ranges ? pick('static') : new Set<string>();
  const rangeMap = new Map<string, Range>();
  if (ranges) for (const name of ranges.names()) rangeMap.set(name, ranges.range(name, o.method));
  const smoothed = o.smooth ? smoothModel(model, dynamic, o.smooth.channelMax, o.smooth.alpha) : model;
  return quantizeModel(smoothed, {
    dynamic,
    static: convs,
    ranges: rangeMap,
    weightType: o.weightType,
    perChannel: o.perChannel,
  });
}

/** Saves a graph at {@link SAVED_LEVEL} with the optimization recorded in its metadata; returns the bytes. */
export async function finalModel(
  graph: ModelProto,
  record: OptimizationRecord | Readonly<Record<string, unknown>>,
): Promise<Uint8Array> {
  const optimized = decodeModel(await optimizeBytes(encodeModel(graph), SAVED_LEVEL), 'optimized model');
  setMetadata(optimized, OPTIMIZATION_KEY, JSON.stringify(record));
  return encodeModel(optimized);
}
