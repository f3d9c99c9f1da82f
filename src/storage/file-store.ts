import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../errors.js';
import { allocateBytes, sized } from './buffer-pool.js';
import type { GetOptions, ObjectInfo, Store } from './store.js';

/**
 * A {@link Store} over a local directory. `put` writes a temporary file beside the target and renames
 * it, so a crash never leaves a half-written object under the final name.
 *
 * @example const out = new FileStore('/data/run1'); await out.put('plan.json', '{}');
 */
export class FileStore implements Store {
  readonly uri: string;
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.uri = this.root;
  }

  describe(key: string): string {
    return key === '' ? this.root : path.join(this.root, key);
  }

  async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    const start = path.join(this.root, prefix);
    const stat = await fs.stat(start).catch(() => undefined);
    if (!stat) {
      if (prefix === '') {
        throw new CaiError(ErrorCodes.notFound, this.root, 'directory does not exist; check the path');
      }
      return;
    }
    if (stat.isFile()) {
      yield { key: prefix, size: stat.size };
      return;
    }
    const walk = async function* (dir: string, rel: string): AsyncIterable<ObjectInfo> {
      const entries = await fs.readdir(dir, { withFileTypes: true });
      for (const e of entries) {
        const childRel = rel ? `${rel}/${e.name}` : e.name;
        const abs = path.join(dir, e.name);
        if (e.isDirectory()) yield* walk(abs, childRel);
        else if (e.isFile() && !e.name.includes('.tmp-')) {
          const st = await fs.stat(abs);
          yield { key: childRel, size: st.size };
        }
      }
    };
    yield* walk(start, prefix.replace(/\/+$/, ''));
  }

  async get(key: string, options?: GetOptions): Promise<Uint8Array> {
    return this.read(key, 0, undefined, options?.into);
  }

  async getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    return this.read(key, start, end);
  }

  // One positioned read into a buffer of the right size (fs.readFile reads 512 KiB at a time, a thread
  // pool round trip each): by default fresh bytes tensors can view at the file's own alignment, or the
  // caller's (a worker's pooled buffer).
  private async read(
    key: string,
    start: number,
    end?: number,
    into: (size: number) => Uint8Array = allocateBytes,
  ): Promise<Uint8Array> {
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(this.describe(key), 'r');
      const stop = end ?? (await handle.stat()).size;
      const out = sized(into, Math.max(0, stop - start), this.describe(key));
      let done = 0;
      while (done < out.length) {
        const { bytesRead } = await handle.read(out, done, out.length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === out.length ? out : out.subarray(0, done);
    } catch (err) {
      throw this.wrap(err, key);
    } finally {
      await handle?.close();
    }
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const target = this.describe(key);
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      // The folder usually exists (a worker writes partition after partition into it): create it only
      // when the write says it is missing, not before every write.
      await fs.writeFile(tmp, body).catch(async (err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.writeFile(tmp, body);
      });
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw this.wrap(err, key);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const st = await fs.stat(this.describe(key)).catch(() => undefined);
    return st?.isFile() ? { key, size: st.size } : undefined;
  }

  async delete(key: string): Promise<void> {
    await fs.rm(this.describe(key), { force: true });
  }

  async localPath(key: string): Promise<string> {
    const p = this.describe(key);
    if (!(await this.head(key)))
      throw new CaiError(ErrorCodes.notFound, p, 'file does not exist; check the path');
    return p;
  }

  private wrap(err: unknown, key: string): unknown {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      return new CaiError(ErrorCodes.notFound, this.describe(key), 'file does not exist; check the path', {
        cause: err,
      });
    }
    if (code === 'EACCES' || code === 'EPERM') {
      return new CaiError(
        ErrorCodes.notFound,
        this.describe(key),
        'permission denied; check file permissions',
        {
          cause: err,
        },
      );
    }
    return err;
  }
}
