import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../errors.js';
import { allocateBytes, sized } from './buffer-pool.js';
import { TEMPORARY_PREFIX } from './output-layout.js';
import type { CreateResult, GetOptions, ListOptions, ObjectInfo, Store } from './store.js';

/**
 * The name of a temporary file for an atomic write of `target`: hidden, in the same folder (so the rename
 * stays on one file system), short (a 250-character name must not overflow with a suffix), and of a
 * form no user file has by accident. Only CAI's own output folders treat this exact form as temporary
 * (an interrupted run's leftovers, removed); listings of any folder show every file, so an input file of
 * any name is data, or is named among the skipped objects.
 *
 * @example temporaryPath('/out/predictions/1.parquet') // '/out/predictions/.cai-tmp-4242-9f2c1a0b3e4d5f60'
 */
export function temporaryPath(target: string): string {
  return path.join(
    path.dirname(target),
    `${TEMPORARY_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`,
  );
}

const TEMPORARY = new RegExp(`^${TEMPORARY_PREFIX.replace('.', '\\.')}\\d+-[0-9a-f]{16}$`);

/** Whether a file name is one of {@link temporaryPath}'s. @example isTemporary('1.tmp-3.pt') // false */
export function isTemporary(name: string): boolean {
  return TEMPORARY.test(name);
}

/**
 * Whether a name is a temporary file of a process of this host that is gone (killed while it wrote):
 * safe to remove. This process's own files and those of running processes are not.
 * @example isDeadTemporary('.cai-tmp-1-9f2c1a0b3e4d5f60') // false: pid 1 is running
 */
export function isDeadTemporary(name: string): boolean {
  if (!isTemporary(name)) return false;
  const pid = Number(name.slice(TEMPORARY_PREFIX.length).split('-')[0]);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    // EPERM: the process exists but is another user's.
    return (err as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

// File-system errors that are the user's to fix, each with what to do.
const FILE_ERRORS: Readonly<Record<string, { code: string; message: string }>> = Object.freeze({
  ELOOP: {
    code: ErrorCodes.option,
    message: 'is a symbolic link loop (a link that leads back to itself); remove or fix the link',
  },
  ENAMETOOLONG: {
    code: ErrorCodes.option,
    message: 'has a name too long for the file system (255 bytes a name); rename it or use a shorter path',
  },
  ENOSPC: {
    code: ErrorCodes.storage,
    message:
      'cannot be written: the disk is full; free space (or choose another --output) and run the same job again to resume',
  },
  EDQUOT: {
    code: ErrorCodes.storage,
    message: 'cannot be written: the disk quota is exceeded; free space and run the same job again to resume',
  },
  EROFS: {
    code: ErrorCodes.storage,
    message: 'cannot be written: the file system is read-only; choose another --output',
  },
});

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

  async *list(prefix = '', options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    const start = path.join(this.root, prefix);
    const stat = await fs.stat(start).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw this.wrap(err, prefix);
    });
    if (!stat) {
      if (prefix === '') {
        // `s3:/bucket/x` or `s3:bucket/x` is read as a local path: say how a URI is written.
        const scheme = /(?:^|\/)([a-z][a-z0-9+.-]*):(?!\/\/)/i.exec(this.root)?.[1];
        const uri = scheme ? ` (a URI is written ${scheme}://bucket/prefix, with two slashes)` : '';
        throw new CaiError(ErrorCodes.notFound, this.root, `directory does not exist; check the path${uri}`);
      }
      return;
    }
    if (stat.isFile()) {
      yield { key: prefix, size: stat.size, modified: stat.mtimeMs };
      return;
    }
    // Symbolic links are followed: a linked partition file or folder is data like any other. The real
    // paths of the folders being walked are kept, so a link back into one of them is a loop, not walked
    // forever; a loop and a link whose target is gone are reported to `onSkip` (the planner names them
    // in a warning and skipped.json), or refused with their name when nobody listens.
    const walk = async function* (
      this: FileStore,
      dir: string,
      rel: string,
      ancestors: ReadonlySet<string>,
    ): AsyncIterable<ObjectInfo> {
      const entries = await fs.readdir(dir, { withFileTypes: true });
      for (const e of entries) {
        const childRel = rel ? `${rel}/${e.name}` : e.name;
        const abs = path.join(dir, e.name);
        let isDir = e.isDirectory();
        let isFile = e.isFile();
        let target: { size: number; mtimeMs: number } | undefined;
        if (e.isSymbolicLink()) {
          let unreadable: string | undefined;
          const linked = await fs.stat(abs).catch(async (err: NodeJS.ErrnoException) => {
            if (options.onSkip && err.code === 'ENOENT')
              unreadable = `a broken symbolic link to ${await fs.readlink(abs).catch(() => '?')} (its target does not exist)`;
            else if (options.onSkip && err.code === 'ELOOP')
              unreadable = 'a symbolic link loop (a link that leads back to itself); not followed';
            else throw this.wrap(err, childRel);
            return undefined;
          });
          if (!linked) {
            options.onSkip?.(childRel, unreadable ?? 'an unreadable symbolic link');
            continue;
          }
          isDir = linked.isDirectory();
          isFile = linked.isFile();
          target = linked;
        }
        if (isDir) {
          const real = await fs.realpath(abs);
          if (ancestors.has(real)) {
            if (options.onSkip) {
              options.onSkip(
                childRel,
                `a symbolic link loop: it leads back to ${real}, a folder that contains it; not followed`,
              );
              continue;
            }
            throw new CaiError(
              ErrorCodes.option,
              abs,
              `is a symbolic link to ${real}, a folder that contains it: a loop; remove the link or point it elsewhere`,
            );
          }
          yield* walk.call(this, abs, childRel, new Set([...ancestors, real]));
        } else if (isFile) {
          target ??= await fs.stat(abs);
          yield { key: childRel, size: target.size, modified: target.mtimeMs };
        }
      }
    };
    const real = await fs.realpath(start);
    yield* walk.call(this, start, prefix.replace(/\/+$/, ''), new Set([real]));
  }

  async get(key: string, options?: GetOptions): Promise<Uint8Array> {
    const bytes = await this.read(key, 0, undefined, options?.into);
    const expected = options?.expectedSize;
    if (expected !== undefined && bytes.byteLength !== expected) {
      throw new CaiError(
        ErrorCodes.corrupt,
        this.describe(key),
        `holds ${bytes.byteLength} bytes where the job's plan has ${expected}: it changed since the job was planned; run with --overwrite to plan again`,
      );
    }
    return bytes;
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
    const tmp = temporaryPath(target);
    try {
      await writeTemporary(tmp, target, body);
      await fs.rename(tmp, target);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw this.wrap(err, key);
    }
  }

  /**
   * The whole object written to a temporary file, then hard-linked to its name: `link` fails when the
   * name exists, so of two writers exactly one creates it, and readers never see it half written.
   */
  async putIfAbsent(key: string, body: Uint8Array | string): Promise<CreateResult> {
    const target = this.describe(key);
    const tmp = temporaryPath(target);
    try {
      await writeTemporary(tmp, target, body);
      const linked = await fs.link(tmp, target).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST') return false;
          throw err;
        },
      );
      return linked ? 'created' : 'exists';
    } catch (err) {
      throw this.wrap(err, key);
    } finally {
      await fs.rm(tmp, { force: true });
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
    const known = code === undefined ? undefined : FILE_ERRORS[code];
    if (known) return new CaiError(known.code, this.describe(key), known.message, { cause: err });
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

/**
 * Writes `body` to the temporary file `tmp` beside `target`. The folder usually exists (a worker writes
 * partition after partition into it): it is created only when the write says it is missing, not before
 * every write.
 */
async function writeTemporary(tmp: string, target: string, body: Uint8Array | string): Promise<void> {
  await fs.writeFile(tmp, body).catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.writeFile(tmp, body);
  });
}
