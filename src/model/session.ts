// The only module that imports onnxruntime-node (design rule 4): everything else sees CAI tensors.
import * as ort from 'onnxruntime-node';
import { CaiError, ErrorCodes } from '../errors.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DTYPES, type DType, type TypedArray } from '../tensor/dtype.js';
import { exactOutputs, mentionsSigmoid, rewriteNotes } from './exact-outputs.js';
import type { Tensor } from '../tensor/tensor.js';

// onnxruntime-node 1.30's Linux library writes a device id under ~/.cache/Microsoft and uploads usage
// telemetry over HTTPS from the first session on; CAI fetches nothing the user did not ask for. The
// variable is read when the first session is created, so setting it here (after the import) is in time.
process.env.ORT_DISABLE_TELEMETRY ??= '1';

import type { ModelSession, ModelValueInfo, OptimizationLevel, SessionOptions } from './model-session.js';

export type { ModelSession, ModelValueInfo, OptimizationLevel, SessionOptions };

function info(meta: ort.InferenceSession.ValueMetadata): ModelValueInfo {
  if (!meta.isTensor) return { name: meta.name, dtype: 'non-tensor', shape: [] };
  return {
    name: meta.name,
    dtype: meta.type,
    shape: meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' ? d : -1)),
  };
}

function toOrt(t: Tensor): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data, [...t.shape]);
}

function fromOrt(name: string, value: ort.OnnxValue): Tensor {
  const t = value as ort.Tensor;
  if (!(DTYPES as readonly string[]).includes(t.type)) {
    throw new CaiError(
      ErrorCodes.model,
      name,
      `output type ${t.type} is not supported; CAI writes numeric outputs`,
    );
  }
  const dtype = t.type as DType;
  // float16 outputs may come as Float16Array on newer runtimes; CAI keeps half floats as raw bits.
  const raw = t.data as unknown as TypedArray;
  const data =
    dtype === 'float16' && !(raw instanceof Uint16Array)
      ? new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2)
      : raw;
  return { dtype, shape: [...t.dims], data } as unknown as Tensor;
}

/** The one-line answer to `--device cuda` on an install without the CUDA provider. */
function noCuda(cause?: unknown): CaiError {
  const why = cause ? ` (${(cause as Error).message.split('\n')[0]})` : '';
  return new CaiError(
    ErrorCodes.setup,
    'device cuda',
    `this onnxruntime-node install cannot run on CUDA${why}; install the CUDA build with \`ONNXRUNTIME_NODE_INSTALL=cuda12 npm install onnxruntime-node\` on a machine with CUDA 12 and cuDNN 9, or use --device cpu`,
    { cause },
  );
}

/**
 * Creates the session: graph optimizations on (`options.graphOptimization`, default all), a memory arena, `threads` intra-op threads and one
 * inter-op thread (CAI runs one batch at a time per process and parallelizes across processes), on this
 * thread or, with `thread: 'separate'`, on a worker thread of its own.
 *
 * @example const model = await loadModel('/models/astromae.onnx', { threads: 1, thread: 'separate' });
 */
export async function loadModel(model: string | Uint8Array, options: SessionOptions): Promise<ModelSession> {
  const modelPath = typeof model === 'string' ? model : 'model bytes';
  if (options.thread === 'separate' && typeof model === 'string') {
    const { loadModelInThread } = await import('./threaded-session.js');
    return loadModelInThread(modelPath, options);
  }
  const device = options.device ?? 'cpu';
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: options.graphOptimization ?? 'all',
    executionMode: 'sequential',
    enableCpuMemArena: true,
    enableMemPattern: true,
    executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
  };
  if (device === 'cuda' && !ort.listSupportedBackends().some((b) => b.name === 'cuda')) throw noCuda();
  // A CUDA provider that cannot load is reported once, as the CaiError below, not also as onnxruntime's
  // own log lines (its environment's level, read when the first session is created).
  if (device === 'cuda') ort.env.logLevel = 'fatal';
  let session: ort.InferenceSession;
  let rewrites: string[];
  try {
    const prepared = await prepareGraph(model, options.exactSigmoidOutputs ?? true);
    rewrites = prepared.rewrites;
    session = await createSession(prepared.model, { ...sessionOptions, ...prepared.options });
  } catch (err) {
    if (err instanceof CaiError) throw err;
    // onnxruntime-node lists CUDA as a backend on Linux x64 whether or not its install fetched the CUDA
    // provider; without it (or without CUDA's libraries) creating a session fails naming the provider.
    if (device === 'cuda' && /cuda|providers_shared|libcu/i.test((err as Error).message)) throw noCuda(err);
    throw new CaiError(
      ErrorCodes.model,
      modelPath,
      `cannot load the model (${(err as Error).message.split('\n')[0]}); check that it is a valid ONNX file`,
      { cause: err },
    );
  }
  const inputs = session.inputMetadata.map(info);
  const outputs = session.outputMetadata.map(info);
  return {
    inputs,
    outputs,
    rewrites,
    async run(feeds) {
      const ortFeeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
      const result = await session.run(ortFeeds);
      const out: Record<string, Tensor> = {};
      for (const o of outputs) {
        out[o.name] = fromOrt(o.name, result[o.name]);
      }
      return out;
    },
    async release() {
      await session.release();
    },
  };
}

/**
 * Runs onnxruntime's graph optimizations on a model once, at `level`, and saves the optimized graph to
 * `outputPath` (session option `optimizedModelFilePath`), so that workers load a ready graph. Level `all`
 * adds layouts for this CPU's vector width (NCHWc blocks): a graph saved there may not run, or run
 * well, on another CPU; `extended` stops before them.
 *
 * @example await saveOptimizedModel(bytes, 'model.opt.onnx', 'extended');
 */
export async function saveOptimizedModel(
  model: string | Uint8Array,
  outputPath: string,
  level: OptimizationLevel,
): Promise<void> {
  const options: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: level,
    optimizedModelFilePath: outputPath,
    executionProviders: ['cpu'],
  };
  let session: ort.InferenceSession;
  try {
    // The rewrite is saved with the graph: workers loading the optimized model compute the same values.
    const prepared = await prepareGraph(model, true);
    session = await createSession(prepared.model, { ...options, ...prepared.options });
  } catch (err) {
    if (err instanceof CaiError) throw err;
    throw new CaiError(
      ErrorCodes.model,
      typeof model === 'string' ? model : 'model',
      `onnxruntime cannot load the model to optimize it (${(err as Error).message.split('\n')[0]})`,
      { cause: err },
    );
  }
  await session.release();
}

/** The onnxruntime version this process runs. @example onnxruntimeVersion() // '1.30.0' */
export function onnxruntimeVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

/**
 * The model as onnxruntime should load it: with float32 Sigmoid, Log(Sigmoid) and HardSigmoid nodes that
 * feed outputs computed as PyTorch does (exact-outputs.ts) when `exact`, else unchanged. A rewritten model is passed as bytes; its
 * external data files, if any, are then found next to the original file (onnxruntime's
 * `session.model_external_initializers_file_folder_path`).
 */
async function prepareGraph(
  model: string | Uint8Array,
  exact: boolean,
): Promise<{
  model: string | Uint8Array;
  options: ort.InferenceSession.SessionOptions;
  rewrites: string[];
}> {
  if (!exact) return { model, options: {}, rewrites: [] };
  // A file that cannot be read is onnxruntime's to report, as for any model it cannot load.
  const bytes =
    typeof model !== 'string'
      ? model
      : (await mentionsSigmoid(model).catch(() => false))
        ? await readFile(model).catch(() => undefined)
        : undefined;
  const rewrite = bytes && exactOutputs(bytes, typeof model === 'string' ? model : 'model bytes');
  if (!rewrite) return { model, options: {}, rewrites: [] };
  const options: ort.InferenceSession.SessionOptions =
    rewrite.externalData && typeof model === 'string'
      ? {
          extra: {
            session: { model_external_initializers_file_folder_path: path.dirname(path.resolve(model)) },
          },
        }
      : {};
  return {
    model: rewrite.bytes ?? model,
    options: rewrite.bytes ? options : {},
    rewrites: rewriteNotes(rewrite),
  };
}

/** A session from a model file's path or its bytes (onnxruntime's overloads take one or the other). */
function createSession(
  model: string | Uint8Array,
  options: ort.InferenceSession.SessionOptions,
): Promise<ort.InferenceSession> {
  return typeof model === 'string'
    ? ort.InferenceSession.create(model, options)
    : ort.InferenceSession.create(model, options);
}
