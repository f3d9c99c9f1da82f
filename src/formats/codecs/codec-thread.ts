// A chunk-decoding thread (pool.ts starts them): decodes the chunks it is sent and sends the bytes back,
// moving buffers both ways instead of copying them.
import { parentPort } from 'node:worker_threads';
import { decodeBytes } from './decode.js';
import type { DecodeReply, DecodeRequest } from './pool.js';

const port = parentPort;
if (!port) throw new Error('codec-thread.js runs as a worker thread started by src/formats/codecs/pool.ts');

port.on('message', (req: DecodeRequest) => {
  decodeBytes(req.codec, req.bytes).then(
    (out) => {
      const whole = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : out.slice();
      port.postMessage({ id: req.id, out: whole } satisfies DecodeReply, [whole.buffer as ArrayBuffer]);
    },
    (err: unknown) => {
      const error = err instanceof Error ? err.message : String(err);
      port.postMessage({ id: req.id, error } satisfies DecodeReply);
    },
  );
});
