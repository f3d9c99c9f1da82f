import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import { zipSync, type Zippable } from 'fflate';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { Architecture, Packaging } from './params.js';

/** Lambda's limit on a function's unzipped code, bytes (250 MB). */
export const LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024;

/** The folder, next to the bundle, holding onnxruntime-node's native files. */
export const ORT_FOLDER = 'onnxruntime';

/** One Lambda deployment package. */
export interface LambdaBundle {
  /**
   * The unzipped package: `index.mjs` and, for inference, `onnxruntime/` and sharp's binaries under
   * `node_modules/@img/` (when installed for the architecture).
   */
  readonly dir: string;
  /** The deployment zip, made from `dir`. */
  readonly zip: string;
  readonly unzippedBytes: number;
  readonly zippedBytes: number;
}

/** The two packages of the stack: control (Initialize and Summarize) and inference. */
export interface LambdaBundles {
  readonly control: LambdaBundle;
  readonly inference: LambdaBundle;
  readonly architecture: Architecture;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// ESM bundles of CommonJS packages need `require` for Node's built-ins, and onnxruntime-node finds its
// native binding by a path relative to its own file, which bundling breaks: the binding is required from
// the folder next to the bundle instead.
const BANNER = [
  "import { createRequire as __caiCreateRequire } from 'node:module';",
  "import { fileURLToPath as __caiFileURLToPath } from 'node:url';",
  'const require = __caiCreateRequire(import.meta.url);',
  `const __caiOrtBinding = __caiFileURLToPath(new URL('./${ORT_FOLDER}/onnxruntime_binding.node', import.meta.url));`,
].join('\n');

const ortBindingPlugin: Plugin = {
  name: 'cai-onnxruntime-binding',
  setup(b) {
    b.onLoad({ filter: /onnxruntime-node[\\/]dist[\\/]binding\.js$/ }, async (args) => {
      const source = await fs.readFile(args.path, 'utf8');
      const rewritten = source.replace(
        /require\(`\.\.\/bin\/napi-v\d+\/[^`]*onnxruntime_binding\.node`\)/,
        'require(__caiOrtBinding)',
      );
      if (rewritten === source) {
        throw new Error(
          `${args.path}: onnxruntime-node no longer loads its binding the way CAI's bundler expects; update src/engines/aws/bundle.ts`,
        );
      }
      return { contents: rewritten, loader: 'js' };
    });
  },
};

/** Where onnxruntime-node keeps the Linux binaries for an architecture. */
export function ortLinuxBinaries(architecture: Architecture): string {
  const pkg = path.dirname(require.resolve('onnxruntime-node/package.json'));
  const napi = (require('onnxruntime-node/package.json') as { binary: { napi_versions: number[] } }).binary
    .napi_versions[0];
  return path.join(pkg, 'bin', `napi-v${napi}`, 'linux', architecture === 'x86_64' ? 'x64' : 'arm64');
}

/** The folders of sharp's prebuilt binaries for Linux on an architecture, when they are installed. */
export function sharpLinuxPackages(
  architecture: Architecture,
): { binding: string; libvips: string } | undefined {
  const arch = architecture === 'x86_64' ? 'x64' : 'arm64';
  try {
    // Resolved from sharp's own folder, as sharp resolves them at run time.
    const fromSharp = createRequire(require.resolve('sharp'));
    return {
      binding: path.dirname(fromSharp.resolve(`@img/sharp-linux-${arch}/package`)),
      libvips: path.dirname(fromSharp.resolve(`@img/sharp-libvips-linux-${arch}/package`)),
    };
  } catch {
    return undefined;
  }
}

/** lz4-napi's JavaScript and its prebuilt binary for Linux (glibc) on an architecture, when installed. */
export function lz4LinuxPackages(
  architecture: Architecture,
): { wrapper: string; binding: string } | undefined {
  const arch = architecture === 'x86_64' ? 'x64' : 'arm64';
  try {
    // Resolved by their main files: neither package exports its package.json.
    const main = require.resolve('lz4-napi');
    return {
      wrapper: path.dirname(main),
      binding: path.dirname(createRequire(main).resolve(`@antoniomuso/lz4-napi-linux-${arch}-gnu`)),
    };
  } catch {
    return undefined;
  }
}

// sharp loads its native binding when it is imported, and CAI's image decoder imports it eagerly: a
// package without sharp's binaries gets this stand-in, which loads and fails only when an image is decoded.
function sharpStubPlugin(reason: string): Plugin {
  return {
    name: 'cai-sharp-stub',
    setup(b) {
      b.onResolve({ filter: /^sharp$/ }, () => ({ path: 'sharp', namespace: 'cai-sharp-stub' }));
      b.onLoad({ filter: /.*/, namespace: 'cai-sharp-stub' }, () => ({
        resolveDir: here,
        loader: 'js',
        contents: [
          "import { CaiError, ErrorCodes } from '../../errors.js';",
          'function sharp() {',
          `  throw new CaiError(ErrorCodes.unsupported, 'sharp', ${JSON.stringify(reason)});`,
          '}',
          'sharp.cache = () => {};',
          'sharp.concurrency = () => 0;',
          'export default sharp;',
        ].join('\n'),
      }));
    },
  };
}

/** How a package gets sharp: its binaries next to the bundle, or a stand-in that says why not. */
type SharpPackaging = { readonly external: true } | { readonly stub: string };

async function bundleEntry(
  entry: string,
  dir: string,
  sharp: SharpPackaging,
  outName = 'index.mjs',
): Promise<void> {
  if (outName === 'index.mjs') {
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true });
  }
  const result = await build({
    entryPoints: [entry],
    outfile: path.join(dir, outName),
    bundle: true,
    platform: 'node',
    target: 'node22',
    format: 'esm',
    banner: { js: BANNER },
    // sharp's JavaScript is bundled; its binding (`@img/sharp-linux-*`) is required at run time from the
    // package's node_modules, where the binding's rpath finds libvips next to it.
    external: 'external' in sharp ? ['@img/sharp-*'] : [],
    plugins: [ortBindingPlugin, ...('stub' in sharp ? [sharpStubPlugin(sharp.stub)] : [])],
    minify: true,
    keepNames: true,
    legalComments: 'eof',
    logLevel: 'silent',
  });
  if (result.errors.length) {
    throw new CaiError(ErrorCodes.unsupported, entry, result.errors.map((e) => e.text).join('; '));
  }
}

async function filesOf(dir: string, base = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(path.join(dir, base), { withFileTypes: true })) {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesOf(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
}

// A fixed timestamp and Unix permissions (Lambda needs files readable by all) make the zip depend only on
// the files' contents, so an unchanged bundle keeps its asset hash and is not uploaded again.
async function zipFolder(dir: string, zip: string): Promise<{ unzipped: number; zipped: number }> {
  const entries: Zippable = {};
  let unzipped = 0;
  for (const rel of await filesOf(dir)) {
    const data = await fs.readFile(path.join(dir, rel));
    unzipped += data.byteLength;
    entries[rel] = [
      data,
      { level: 6, mtime: new Date('2020-01-01T00:00:00Z'), os: 3, attrs: 0o100644 << 16 },
    ];
  }
  const bytes = zipSync(entries);
  await fs.writeFile(zip, bytes);
  return { unzipped, zipped: bytes.byteLength };
}

async function pack(dir: string, limit = true): Promise<LambdaBundle> {
  const zip = `${dir}.zip`;
  const { unzipped, zipped } = await zipFolder(dir, zip);
  if (limit && unzipped > LAMBDA_UNZIPPED_LIMIT) {
    throw new CaiError(
      ErrorCodes.unsupported,
      dir,
      `the package is ${(unzipped / 2 ** 20).toFixed(1)} MiB unzipped, over Lambda's 250 MiB; deploy with --packaging image`,
    );
  }
  return { dir, zip, unzippedBytes: unzipped, zippedBytes: zipped };
}

/**
 * Builds the stack's Lambda packages into `outDir`: `control/` (Initialize and Summarize, no native
 * code) and `inference/` (the worker with onnxruntime-node's and sharp's Linux binaries for
 * `architecture` next to the bundle), each a folder and a deterministic zip. Throws if a zip package would exceed Lambda's 250 MB.
 *
 * @example const { inference } = await buildLambdaBundles({ outDir: 'cdk.out/bundles', architecture: 'arm64' });
 */
export async function buildLambdaBundles(options: {
  outDir: string;
  architecture: Architecture;
  /** With `image` the inference package goes into a container image (up to 10 GB): no 250 MB check. */
  packaging?: Packaging;
}): Promise<LambdaBundles> {
  const control = path.join(options.outDir, 'control');
  const inference = path.join(options.outDir, `inference-${options.architecture}`);
  await bundleEntry(path.join(here, 'lambda', 'control-entry.js'), control, {
    stub: 'Initialize and Summarize do not decode images',
  });
  // HDF5 objects in S3 are read by byte ranges on a worker thread of their own (src/formats/hdf5/
  // remote-file.ts), started from `h5-thread.js` beside the bundle: Initialize plans with it too.
  const h5Thread = path.join(here, '..', '..', 'formats', 'hdf5', 'h5-thread.js');
  const noImages = { stub: 'the HDF5 reading thread does not decode images' };
  await bundleEntry(h5Thread, control, noImages, 'h5-thread.js');
  // Zarr chunks are decoded on threads started from `codec-thread.js` (src/formats/codecs/pool.ts).
  const codecThread = path.join(here, '..', '..', 'formats', 'codecs', 'codec-thread.js');
  const noImagesHere = { stub: 'the chunk-decoding thread does not decode images' };
  await bundleEntry(codecThread, control, noImagesHere, 'codec-thread.js');
  await fs.writeFile(path.join(control, 'package.json'), '{ "type": "module" }\n');
  const sharp = sharpLinuxPackages(options.architecture);
  const arch = options.architecture === 'x86_64' ? 'x64' : 'arm64';
  await bundleEntry(
    path.join(here, 'lambda', 'inference-entry.js'),
    inference,
    sharp
      ? { external: true }
      : {
          stub: `image sources need sharp's linux-${arch} binaries, which were not installed when this package was built: run \`npm install --os=linux --cpu=${arch} --libc=glibc sharp\` and deploy again`,
        },
  );
  // The model runs on a worker thread of its own (src/model/threaded-session.ts), started from the
  // file `inference-thread.js` beside the bundle: an ESM file, hence the package.json.
  await bundleEntry(
    path.join(here, '..', '..', 'model', 'inference-thread.js'),
    inference,
    { stub: 'the inference thread does not decode images' },
    'inference-thread.js',
  );
  await bundleEntry(h5Thread, inference, noImages, 'h5-thread.js');
  await bundleEntry(codecThread, inference, noImagesHere, 'codec-thread.js');
  await fs.writeFile(path.join(inference, 'package.json'), '{ "type": "module" }\n');
  // lz4-napi (native LZ4 for Zarr's Blosc and LZ4 chunks) is loaded at run time from node_modules beside
  // the bundle; without its binary for the architecture the decoders fall back to numcodecs' WebAssembly.
  const lz4 = lz4LinuxPackages(options.architecture);
  if (lz4) {
    for (const [from, to] of [
      [lz4.wrapper, 'lz4-napi'],
      [lz4.binding, path.join('@antoniomuso', path.basename(lz4.binding))],
    ]) {
      await fs.cp(from, path.join(inference, 'node_modules', to), {
        recursive: true,
        filter: (f) => !/\.(md|d\.ts)$/.test(f),
      });
    }
  }
  const ort = ortLinuxBinaries(options.architecture);
  await fs.mkdir(path.join(inference, ORT_FOLDER));
  for (const f of ['onnxruntime_binding.node', 'libonnxruntime.so.1']) {
    await fs.copyFile(path.join(ort, f), path.join(inference, ORT_FOLDER, f));
  }
  if (sharp) {
    for (const from of [sharp.binding, sharp.libvips]) {
      await fs.cp(from, path.join(inference, 'node_modules', '@img', path.basename(from)), {
        recursive: true,
        // Headers are for compiling against libvips, not for running.
        filter: (f) => !path.relative(from, f).split(path.sep).includes('include'),
      });
    }
  }
  const [c, i] = await Promise.all([pack(control), pack(inference, options.packaging !== 'image')]);
  return { control: c, inference: i, architecture: options.architecture };
}
