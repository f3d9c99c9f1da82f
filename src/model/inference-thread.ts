// Entry point of the thread that holds a model session for `loadModel(..., { thread: 'separate' })`.
// onnxruntime-node's `run` computes on the calling JS thread and blocks it for the whole batch, so a
// worker that must read and decode the next batch meanwhile keeps the session here, one thread away.
import { parentPort, workerData } from 'node:worker_threads';
import { CaiError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { loadModel, type SessionOptions } from './session.js';
import type { FromInferenceThread, ToInferenceThread } from './threaded-session.js';

const port = parentPort;
if (!port) throw new Error('inference-thread.js runs as a worker thread');
const { modelPath, options } = workerData as { modelPath: string; options: SessionOptions };

const describe = (err: unknown): { code: string; object: string; message: string } =>
  err instanceof CaiError
    ? { code: err.code, object: err.object, message: err.message.slice(err.object.length + 2) }
    : { code: 'E_MODEL', object: modelPath, message: err instanceof Error ? err.message : String(err) };

const post = (message: FromInferenceThread, transfer: ArrayBuffer[] = []) =>
  port.postMessage(message, transfer);

try {
  const model = await loadModel(modelPath, { ...options, thread: 'main' });
  post({ type: 'ready', inputs: model.inputs, outputs: model.outputs, rewrites: model.rewrites });
  port.on('message', (message: ToInferenceThread) => {
    if (message.type === 'release') {
      void model.release().then(() => post({ type: 'released' }));
      return;
    }
    // Batches arrive one at a time per worker; each is answered before the next is read.
    void model.run(message.feeds).then(
      (outputs: Record<string, Tensor>) => post({ type: 'result', id: message.id, outputs }),
      (err: unknown) => post({ type: 'failed', id: message.id, error: describe(err) }),
    );
  });
} catch (err) {
  post({ type: 'load-failed', error: describe(err) });
}
