// An S3 endpoint on loopback that keeps objects in memory, for the scale benchmark. s3rver (the
// server every other test uses) keeps each object as three files and, for every listing page, reads
// and stats the whole bucket directory: about 360 PUTs and 580 GETs a second on this machine and
// quadratic listings, so seeding 300,000 objects or listing 100,000 keys takes longer than the run it
// should measure. This one answers the requests CAI's S3Store sends (path-style ListObjectsV2, Get
// with Range and If-Match, Head, Put, Delete, HeadBucket and multipart uploads), in S3's wire format,
// after a configurable delay that stands for S3's first-byte latency. It runs in a child process, as
// S3 does not share the caller's CPU. test/storage/memory-s3.test.ts runs the Store contract against
// it, the same suite s3rver and the file store pass.
//
// Every .js file under dist/test is also run as a test file by `node --test`: the child's entry point
// does nothing unless started by startMemoryS3 (an IPC channel and the marker argument).
import { fork } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { stopChild, useS3TestCredentials } from './s3-server.js';

/** A running in-memory S3 endpoint. */
export interface MemoryS3 {
  /** `http://127.0.0.1:<port>`, for `StoreOptions.s3Endpoint`. */
  readonly endpoint: string;
  /** Requests answered so far. */
  requests(): Promise<number>;
  /** Requests received so far by kind: LIST, GET, HEAD, PUT (multipart parts included), POST, DELETE. */
  requestsByKind(): Promise<Record<string, number>>;
  /** CPU seconds (user + system) the server's process has used so far: what S3 would spend, not CAI. */
  cpuSeconds(): Promise<number>;
  /** Stores objects directly (no HTTP, no delay): seeding large fixtures. */
  seed(objects: ReadonlyArray<readonly [bucket: string, key: string, body: Uint8Array]>): Promise<void>;
  stop(): Promise<void>;
}

const CHILD_FLAG = '--cai-memory-s3-child';

type ToChild = { id: number; seed: Array<[string, string, string]> } | { id: number; requests: true };
type FromChild =
  { port: number } | { id: number; count?: number; kinds?: Record<string, number>; cpu?: number };

interface StoredObject {
  readonly body: Buffer;
  readonly etag: string;
  readonly modified: Date;
}

/**
 * One bucket: objects by key, and the keys in order. New keys go to a short unsorted tail that each
 * listing also scans, merged into the sorted keys every {@link TAIL} keys: inserting each key in
 * place moved the whole array (O(n) a PUT, quadratic over a 100,000-partition map, in this server's
 * CPU on the machine the benchmark measures).
 */
class Bucket {
  readonly objects = new Map<string, StoredObject>();
  private sorted: string[] = [];
  private tail: string[] = [];

  set(key: string, body: Buffer): StoredObject {
    const object = { body, etag: `"${createHash('md5').update(body).digest('hex')}"`, modified: new Date() };
    if (!this.objects.has(key)) {
      this.tail.push(key);
      if (this.tail.length > TAIL) this.merge();
    }
    this.objects.set(key, object);
    return object;
  }

  delete(key: string): void {
    if (!this.objects.delete(key)) return;
    const t = this.tail.indexOf(key);
    if (t >= 0) this.tail.splice(t, 1);
    else this.sorted.splice(lowerBound(this.sorted, key), 1);
  }

  private merge(): void {
    const tail = this.tail.sort();
    const out = new Array<string>(this.sorted.length + tail.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < this.sorted.length && j < tail.length)
      out[k++] = this.sorted[i] < tail[j] ? this.sorted[i++] : tail[j++];
    while (i < this.sorted.length) out[k++] = this.sorted[i++];
    while (j < tail.length) out[k++] = tail[j++];
    this.sorted = out;
    this.tail = [];
  }

  /** Keys after `after` that start with `prefix`, in S3's (UTF-8 byte) order, at most `max`. */
  page(prefix: string, after: string, max: number): { keys: string[]; truncated: boolean } {
    // Code-unit order equals UTF-8 byte order for the keys CAI writes (no surrogate pairs).
    const from = after > prefix ? after : prefix;
    const wanted = (k: string) => k.startsWith(prefix) && (k > from || (k === from && from !== after));
    const keys = this.sorted;
    const out: string[] = [];
    for (let i = lowerBound(keys, from); i < keys.length && out.length <= max; i++) {
      if (!keys[i].startsWith(prefix)) break;
      if (wanted(keys[i])) out.push(keys[i]);
    }
    for (const k of this.tail) if (wanted(k)) out.push(k);
    out.sort();
    return { keys: out.slice(0, max), truncated: out.length > max };
  }
}

/** New keys a bucket keeps unsorted before merging them into its sorted keys. */
const TAIL = 1024;

function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const xmlEscape = (s: string) =>
  s.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] ?? c,
  );

function sendError(res: http.ServerResponse, status: number, code: string, head = false): void {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(
    head
      ? undefined
      : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`,
  );
}

function sendXml(res: http.ServerResponse, xml: string): void {
  res.writeHead(200, { 'content-type': 'application/xml' });
  res.end(`<?xml version="1.0" encoding="UTF-8"?>${xml}`);
}

async function body(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The server itself, in the child process. */
async function serve(
  buckets: readonly string[],
  latencyMs: number,
): Promise<{
  port: number;
  requests(): number;
  kinds(): Record<string, number>;
  seed(bucket: string, key: string, body: Buffer): void;
}> {
  const store = new Map(buckets.map((b) => [b, new Bucket()]));
  const uploads = new Map<string, { bucket: string; key: string; parts: Map<number, Buffer> }>();
  let count = 0;
  const kinds: Record<string, number> = {};

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const [bucketName, ...rest] = url.pathname.slice(1).split('/');
    const key = decodeURIComponent(rest.join('/'));
    const bucket = store.get(decodeURIComponent(bucketName));
    const q = url.searchParams;
    const method = req.method ?? 'GET';
    if (!bucket) return sendError(res, 404, 'NoSuchBucket', method === 'HEAD');

    if (key === '') {
      if (method === 'HEAD') return void res.writeHead(200).end();
      if (method !== 'GET' || q.get('list-type') !== '2') return sendError(res, 501, 'NotImplemented');
      const prefix = q.get('prefix') ?? '';
      const token = q.get('continuation-token');
      const after = token ? Buffer.from(token, 'base64url').toString('utf8') : (q.get('start-after') ?? '');
      const max = Math.min(1000, Number(q.get('max-keys') ?? 1000));
      const { keys, truncated } = bucket.page(prefix, after, max);
      const contents = keys
        .map((k) => {
          const o = bucket.objects.get(k) as StoredObject;
          return `<Contents><Key>${xmlEscape(k)}</Key><LastModified>${o.modified.toISOString()}</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Size>${o.body.byteLength}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
        })
        .join('');
      const next = truncated
        ? `<NextContinuationToken>${Buffer.from(keys[keys.length - 1], 'utf8').toString('base64url')}</NextContinuationToken>`
        : '';
      return sendXml(
        res,
        `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${bucketName}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${keys.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${next}${contents}</ListBucketResult>`,
      );
    }

    if (method === 'POST' && q.has('uploads')) {
      const id = randomUUID();
      uploads.set(id, { bucket: bucketName, key, parts: new Map() });
      return sendXml(
        res,
        `<InitiateMultipartUploadResult><Bucket>${bucketName}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
      );
    }
    const uploadId = q.get('uploadId');
    if (uploadId !== null) {
      const upload = uploads.get(uploadId);
      if (!upload) return sendError(res, 404, 'NoSuchUpload');
      if (method === 'PUT') {
        const part = await body(req);
        upload.parts.set(Number(q.get('partNumber')), part);
        res.writeHead(200, { etag: `"${createHash('md5').update(part).digest('hex')}"` });
        return void res.end();
      }
      if (method === 'DELETE') {
        uploads.delete(uploadId);
        return void res.writeHead(204).end();
      }
      await body(req);
      const parts = [...upload.parts.entries()].sort(([a], [b]) => a - b).map(([, p]) => p);
      const o = bucket.set(key, Buffer.concat(parts));
      uploads.delete(uploadId);
      return sendXml(
        res,
        `<CompleteMultipartUploadResult><Bucket>${bucketName}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${xmlEscape(o.etag)}</ETag></CompleteMultipartUploadResult>`,
      );
    }

    if (method === 'PUT') {
      const bytes = await body(req);
      if (req.headers['if-none-match'] === '*' && bucket.objects.has(key))
        return sendError(res, 412, 'PreconditionFailed');
      const o = bucket.set(key, bytes);
      res.writeHead(200, { etag: o.etag });
      return void res.end();
    }
    if (method === 'DELETE') {
      bucket.delete(key);
      return void res.writeHead(204).end();
    }
    const o = bucket.objects.get(key);
    if (!o) return sendError(res, 404, 'NoSuchKey', method === 'HEAD');
    const headers = {
      etag: o.etag,
      'last-modified': o.modified.toUTCString(),
      'content-type': 'application/octet-stream',
      'accept-ranges': 'bytes',
    };
    if (method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': o.body.byteLength });
      return void res.end();
    }
    const ifMatch = req.headers['if-match'];
    if (ifMatch && ifMatch !== o.etag) return sendError(res, 412, 'PreconditionFailed');
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      if (start >= o.body.byteLength) return sendError(res, 416, 'InvalidRange');
      const end = Math.min(range[2] === '' ? Infinity : Number(range[2]), o.body.byteLength - 1);
      res.writeHead(206, {
        ...headers,
        'content-length': end - start + 1,
        'content-range': `bytes ${start}-${end}/${o.body.byteLength}`,
      });
      return void res.end(o.body.subarray(start, end + 1));
    }
    res.writeHead(200, { ...headers, 'content-length': o.body.byteLength });
    res.end(o.body);
  }

  const server = http.createServer((req, res) => {
    count++;
    const method = req.method ?? 'GET';
    // A GET of the bucket itself (path-style, no key) is a listing.
    const path = (req.url ?? '/').split('?')[0];
    const kind = method === 'GET' && path.slice(1).split('/').filter(Boolean).length <= 1 ? 'LIST' : method;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
    setTimeout(() => {
      handle(req, res).catch(() => res.destroy());
    }, latencyMs);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests: () => count,
    kinds: () => ({ ...kinds }),
    seed(bucketName, key, bytes) {
      const bucket = store.get(bucketName);
      if (!bucket) throw new Error(`no bucket ${bucketName}`);
      bucket.set(key, bytes);
    },
  };
}

/**
 * Starts an in-memory S3 endpoint on 127.0.0.1 in a child process with `buckets`, answering each
 * request after `latencyMs`, and sets the test credentials for the SDK. The child exits with stop()
 * or with this process.
 *
 * @example
 * const s3 = await startMemoryS3(['data'], 20);
 * try { new S3Store('s3://data/x', { s3Endpoint: s3.endpoint }) ... } finally { await s3.stop(); }
 */
export async function startMemoryS3(buckets: readonly string[], latencyMs = 0): Promise<MemoryS3> {
  useS3TestCredentials();
  const child = fork(fileURLToPath(import.meta.url), [CHILD_FLAG, buckets.join(','), String(latencyMs)], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  // The child must not keep this process alive, except while an answer from it is awaited.
  child.unref();
  type Answer = { count?: number; kinds?: Record<string, number>; cpu?: number };
  const waiting = new Map<number, (m: Answer) => void>();
  let nextId = 0;
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the in-memory S3 exited with code ${code}`)));
    child.on('message', (m: FromChild) => {
      if ('port' in m) resolve(m.port);
      else waiting.get(m.id)?.(m);
      if (waiting.size === 0) child.channel?.unref();
    });
  });
  const ask = (message: Omit<ToChild, 'id'>) =>
    new Promise<Answer>((resolve) => {
      const id = nextId++;
      child.channel?.ref();
      waiting.set(id, (m) => {
        waiting.delete(id);
        resolve(m);
      });
      child.send({ ...message, id });
    });
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests: async () => (await ask({ requests: true })).count ?? 0,
    requestsByKind: async () => (await ask({ requests: true })).kinds ?? {},
    cpuSeconds: async () => (await ask({ requests: true })).cpu ?? 0,
    async seed(objects) {
      // In messages of ~1,000 objects: IPC is JSON, so bodies travel as base64.
      for (let i = 0; i < objects.length; i += 1000) {
        const batch = objects
          .slice(i, i + 1000)
          .map(([b, k, body]): [string, string, string] => [b, k, Buffer.from(body).toString('base64')]);
        await ask({ seed: batch });
      }
    },
    stop: () => (stopped ??= stopChild(child)),
  };
}

if (process.send && process.argv.includes(CHILD_FLAG)) {
  const [bucketList, latency] = process.argv.slice(process.argv.indexOf(CHILD_FLAG) + 1);
  process.on('disconnect', () => process.exit(0));
  void serve(bucketList ? bucketList.split(',') : [], Number(latency)).then((s) => {
    process.on('message', (m: ToChild) => {
      if ('seed' in m) {
        for (const [b, k, body] of m.seed) s.seed(b, k, Buffer.from(body, 'base64'));
        process.send?.({ id: m.id });
      } else {
        const { user, system } = process.cpuUsage();
        process.send?.({ id: m.id, count: s.requests(), kinds: s.kinds(), cpu: (user + system) / 1e6 });
      }
    });
    process.send?.({ port: s.port });
  });
}
