// A model session held by a worker thread, so the thread that reads and decodes batches is never
// blocked by inference (onnxruntime-node's `run` computes on the JS thread that calls it).
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CaiError, ErrorCodes } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ModelSession, ModelValueInfo, SessionOptions } from './model-session.js';

/** Messages to the inference thread. */
export type ToInferenceThread =
  | { readonly type: 'run'; readonly id: number; readonly feeds: Record<string, Tensor> }
  | { readonly type: 'release' };

/** Messages from the inference thread. */
export type FromInferenceThread =
  | {
      readonly type: 'ready';
      readonly inputs: readonly ModelValueInfo[];
      readonly outputs: readonly ModelValueInfo[];
      readonly rewrites: readonly string[];
    }
  | { readonly type: 'load-failed'; readonly error: ThreadError }
  | { readonly type: 'result'; readonly id: number; readonly outputs: Record<string, Tensor> }
  | { readonly type: 'failed'; readonly id: number; readonly error: ThreadError }
  | { readonly type: 'released' };

interface ThreadError {
  readonly code: string;
  readonly object: string;
  readonly message: string;
}

const ENTRY = fileURLToPath(new URL('./inference-thread.js', import.meta.url));

/**
 * The feeds as the thread will receive them: a tensor whose data spans its whole buffer is moved when
 * the caller allows it (zero-copy; the caller's array is detached), any other is copied once, since
 * posting a view would copy its whole underlying buffer (a whole partition file, say).
 */
function outgoing(
  feeds: Readonly<Record<string, Tensor>>,
  move: boolean,
): { feeds: Record<string, Tensor>; transfer: ArrayBuffer[] } {
  const out: Record<string, Tensor> = {};
  const transfer: ArrayBuffer[] = [];
  for (const [name, t] of Object.entries(feeds)) {
    const whole = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength;
    const data = whole ? t.data : t.data.slice();
    if ((move || !whole) && data.buffer instanceof ArrayBuffer && !transfer.includes(data.buffer)) {
      transfer.push(data.buffer);
    }
    out[name] = { ...t, data } as Tensor;
  }
  return { feeds: out, transfer };
}

/**
 * Loads the model in a worker thread of this process and returns a session whose `run` posts each
 * batch there. Used through `loadModel(path, { thread: 'separate' })`.
 *
 * @example const model = await loadModelInThread('resnet50.onnx', { threads: 2, moveFeeds: true });
 */
export async function loadModelInThread(modelPath: string, options: SessionOptions): Promise<ModelSession> {
  const worker = new Worker(ENTRY, { workerData: { modelPath, options: { ...options, thread: 'main' } } });
  const pending = new Map<
    number,
    { resolve: (o: Record<string, Tensor>) => void; reject: (e: Error) => void }
  >();
  let released: (() => void) | undefined;
  let nextId = 0;
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  const info = await new Promise<{
    inputs: readonly ModelValueInfo[];
    outputs: readonly ModelValueInfo[];
    rewrites: readonly string[];
  }>((resolve, reject) => {
    worker.on('message', (m: FromInferenceThread) => {
      if (m.type === 'ready') resolve(m);
      else if (m.type === 'load-failed') reject(new CaiError(m.error.code, m.error.object, m.error.message));
      else if (m.type === 'result') {
        pending.get(m.id)?.resolve(m.outputs);
        pending.delete(m.id);
      } else if (m.type === 'failed') {
        pending.get(m.id)?.reject(new CaiError(m.error.code, m.error.object, m.error.message));
        pending.delete(m.id);
      } else if (m.type === 'released') released?.();
      if (pending.size === 0) worker.unref();
    });
    worker.on('error', (err) => {
      reject(err);
      failAll(err);
    });
    worker.on('exit', (code) => {
      const err = new CaiError(ErrorCodes.model, modelPath, `the inference thread exited with code ${code}`);
      reject(err);
      failAll(err);
    });
  });
  worker.unref();
  return {
    inputs: info.inputs,
    outputs: info.outputs,
    rewrites: info.rewrites,
    run(feeds) {
      const id = nextId++;
      const message = outgoing(feeds, options.moveFeeds ?? false);
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.ref();
        worker.postMessage(
          { type: 'run', id, feeds: message.feeds } satisfies ToInferenceThread,
          message.transfer,
        );
      });
    },
    async release() {
      const done = new Promise<void>((resolve) => (released = resolve));
      worker.ref();
      worker.postMessage({ type: 'release' } satisfies ToInferenceThread);
      await done;
      // Idle now: ending the thread cannot interrupt a run (DESIGN.md pitfall 2).
      await worker.terminate();
    },
  };
}
