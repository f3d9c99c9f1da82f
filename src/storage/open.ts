import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../errors.js';
import { FileStore } from './file-store.js';
import { SingleObjectStore } from './single-object-store.js';
import type { Store } from './store.js';

/** Options for opening remote stores (S3 endpoint and the like). */
export interface StoreOptions {
  /** An S3-compatible endpoint such as `http://127.0.0.1:9000`; also read from `AWS_ENDPOINT_URL_S3`. */
  readonly s3Endpoint?: string;
}

type Opener = (uri: string, options: StoreOptions) => Promise<Store>;
const openers = new Map<string, Opener>();

/**
 * Registers how to open URIs of a scheme (e.g. `s3`). Built-in stores register themselves.
 * @example registerStore('s3', async (uri, o) => new S3Store(uri, o));
 */
export function registerStore(scheme: string, opener: Opener): void {
  openers.set(scheme, opener);
}

/** The scheme of a URI (`s3`, `file`), or `file` for a plain path. */
export function uriScheme(uri: string): string {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri);
  return m ? m[1].toLowerCase() : 'file';
}

/**
 * A child of a folder path or URI: `path.join` for a plain path, one `/` for a URI (`s3://b/p`, `file://`).
 * @example joinUri('s3://b/out/', 'runs') // 's3://b/out/runs'
 */
export function joinUri(base: string, name: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(base)
    ? `${base.replace(/\/+$/, '')}/${name}`
    : path.join(base, name);
}

/**
 * Where a planned key of a job's input is, as the input's store ({@link openInput}) describes it, without
 * a request: the absolute path or the URI. A record's and a failure's `data_path`. A one-file input
 * lists its file under its own name, so that key is the input itself.
 *
 * @example inputObjectPath('s3://b/parts', 'sdss/12.pt') // 's3://b/parts/sdss/12.pt'
 */
export function inputObjectPath(input: string, key: string): string {
  if (uriScheme(input) === 'file') {
    const root = path.resolve(input.startsWith('file://') ? new URL(input).pathname : input);
    const file = statSync(root, { throwIfNoEntry: false })?.isFile();
    return file && path.basename(root) === key ? root : path.join(root, key);
  }
  const root = input.replace(/\/+$/, '');
  const name = root.slice(root.lastIndexOf('/') + 1);
  return !input.endsWith('/') && name === key ? root : `${root}/${key}`;
}

/**
 * Opens the store rooted at a URI: a path or `file://` URI gives a {@link FileStore}; other schemes
 * use what was registered for them.
 *
 * @example const input = await openStore('./data');
 */
export async function openStore(uri: string, options: StoreOptions = {}): Promise<Store> {
  const scheme = uriScheme(uri);
  if (scheme === 'file') return new FileStore(uri.startsWith('file://') ? new URL(uri).pathname : uri);
  const opener = openers.get(scheme);
  if (!opener) {
    throw new CaiError(
      ErrorCodes.unsupported,
      uri,
      `no store for "${scheme}://" URIs; use a local path${openers.size ? ` or one of ${[...openers.keys()].map((s) => `${s}://`).join(', ')}` : ''}`,
    );
  }
  return opener(uri, options);
}

/**
 * Splits a URI naming one object into the store of its folder and its key.
 * @example await openParent('s3://b/models/astromae.onnx') // [store at s3://b/models, 'astromae.onnx']
 */
export async function openParent(uri: string, options: StoreOptions = {}): Promise<[Store, string]> {
  const scheme = uriScheme(uri);
  if (scheme === 'file') {
    const p = uri.startsWith('file://') ? new URL(uri).pathname : uri;
    return [new FileStore(path.dirname(path.resolve(p))), path.basename(p)];
  }
  const cut = uri.lastIndexOf('/');
  // `s3://bucket` or `s3://bucket/` names a bucket, not an object: its "folder" would be `s3:/`.
  if (cut < `${scheme}://`.length || cut === uri.length - 1) {
    throw new CaiError(
      ErrorCodes.option,
      uri,
      `names a bucket or folder, not one object; give the object's full URI, e.g. ${scheme}://bucket/models/astromae.onnx`,
    );
  }
  return [await openStore(uri.slice(0, cut), options), uri.slice(cut + 1)];
}

/**
 * Opens a job's input: a folder or prefix of partitions ({@link openStore}), or one file of a dataset
 * format (`Galaxy10_DECals.h5`, `catalog.parquet`, `s3://b/cube.fits`), seen as a folder holding only
 * it. A remote URI is asked for as an object only when its last segment has an extension (a Zarr store
 * such as `galaxy.zarr` is a prefix and lists as one), so a prefix costs no extra request.
 *
 * @example const input = await openInput('Galaxy10_DECals.h5'); // lists one object, 'Galaxy10_DECals.h5'
 */
export async function openInput(uri: string, options: StoreOptions = {}): Promise<Store> {
  if (!uri.endsWith('/')) {
    if (uriScheme(uri) === 'file') {
      const p = uri.startsWith('file://') ? new URL(uri).pathname : uri;
      const info = await stat(p).catch(() => undefined);
      if (info?.isFile()) {
        const [parent, key] = await openParent(uri, options);
        return new SingleObjectStore(parent, { key, size: info.size, modified: info.mtimeMs });
      }
    } else if (/\.[a-z0-9]{1,16}$/i.test(uri.slice(uri.lastIndexOf('/') + 1))) {
      const [parent, key] = await openParent(uri, options);
      const info = await parent.head(key).catch(() => undefined);
      if (info) return new SingleObjectStore(parent, info);
    }
  }
  return openStore(uri, options);
}

/**
 * The error for a file that `head` did not find at `uri`: a folder or prefix there is the commonest
 * mistake (`--model model/`), so it says so and names the files in it that end with `ext`; otherwise
 * `E_NOT_FOUND` with `missing`.
 *
 * @example throw await missingFileError('model/', {}, { what: 'a model file', ext: '.onnx', flag: '--model', missing: 'the model does not exist; check --model' })
 */
export async function missingFileError(
  uri: string,
  options: StoreOptions,
  hint: { what: string; ext: string; flag: string; missing: string },
): Promise<CaiError> {
  const keys: string[] = [];
  try {
    for await (const o of (await openStore(uri, options)).list()) {
      keys.push(o.key);
      if (keys.length >= 100) break;
    }
  } catch {
    // Not a folder either: the file is simply missing.
  }
  if (keys.length === 0) return new CaiError(ErrorCodes.notFound, uri, hint.missing);
  const matching = keys.filter((k) => k.endsWith(hint.ext)).slice(0, 5);
  return new CaiError(
    ErrorCodes.option,
    uri,
    `is a folder, not ${hint.what}; give ${hint.flag} the ${hint.ext} file${matching.length ? ` (in it: ${matching.join(', ')})` : ''}`,
  );
}
