import { type Command, InvalidArgumentError, Option } from 'commander';
import { CaiError, ErrorCodes } from '../../errors.js';
import {
  CHANNEL_ORDERS,
  ICC_POLICIES,
  IMAGE_DTYPES,
  IMAGE_LAYOUTS,
  INTERPOLATIONS,
  ORIENTATION_POLICIES,
  PRESET_NAMES,
  RESIZE_METHODS,
  SIXTEEN_BIT_RULES,
} from '../../formats/image/preprocess.js';
import { partitionDataset, PARTITION_FORMATS } from '../../formats/partition/partition.js';
import { formatBytes, parseByteSize } from '../../formats/partition/size.js';
import { JobSpecSchema, type JobSpec, type JobSpecInput } from '../../job/spec.js';

function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${flag} must be a positive integer, got "${value}"`);
    return n;
  };
}

function numbers(flag: string) {
  return (value: string): number[] => {
    const out = value.split(',').map((v) => Number(v.trim()));
    if (out.length === 0 || out.some((n) => !Number.isFinite(n))) {
      throw new InvalidArgumentError(`${flag} takes numbers separated by commas, got "${value}"`);
    }
    return out;
  };
}

/** `224` or `256x192` (width x height). */
function sizeArg(flag: string) {
  return (value: string): number | [number, number] => {
    const m = /^(\d+)(?:x(\d+))?$/i.exec(value.trim());
    if (!m || Number(m[1]) <= 0 || (m[2] !== undefined && Number(m[2]) <= 0)) {
      throw new InvalidArgumentError(
        `${flag} takes a size such as 224 or 256x192 (width x height), got "${value}"`,
      );
    }
    return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])];
  };
}

const list = (value: string): string[] =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

function byteSize(flag: string) {
  return (value: string): number => {
    try {
      return parseByteSize(value, flag);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}

/**
 * Flags for reading inputs other than tensor files (images, FITS, Parquet), shared by `cai run` and
 * `cai partition`.
 *
 * @example addSourceOptions(program.command('run'))
 */
export function addSourceOptions(cmd: Command, where: { grouping: boolean } = { grouping: true }): Command {
  // `cai partition` sizes its output with --items and --size: how a run groups input files into
  // partitions means nothing there.
  if (where.grouping)
    cmd
      .option(
        '--partition-items <n>',
        'items per partition: files of images or FITS grouped N to a partition (default: 1000), or rows of Parquet, HDF5, Zarr and FITS cutout files split into ranges of N (default: one partition per file)',
        positiveInt('--partition-items'),
      )
      .option(
        '--partition-bytes <size>',
        'bytes per partition, e.g. 64MB: files of images or FITS grouped, or Parquet, HDF5 and Zarr files split into row ranges of about this size',
        byteSize('--partition-bytes'),
      );
  return cmd
    .option(
      '--input-format <name>',
      'how to read the input: tensor, image, fits, parquet, hdf5 or zarr (default: by extension)',
    )
    .addOption(
      new Option(
        '--preset <name>',
        'image preprocessing preset (imagenet: resize 256, crop 224, ImageNet mean/std)',
      ).choices(PRESET_NAMES),
    )
    .option('--resize <n|WxH>', 'resize images: shorter side to n, or exactly W x H', sizeArg('--resize'))
    .option(
      '--center-crop <n|WxH>',
      'crop images to n x n (or W x H) around the center, after resizing',
      sizeArg('--center-crop'),
    )
    .addOption(
      new Option(
        '--interpolation <filter>',
        "resize filter, as torchvision's interpolation (default: bilinear)",
      ).choices(INTERPOLATIONS),
    )
    .addOption(
      new Option(
        '--resize-method <method>',
        "exact: full-size decode and Pillow's resampling, torchvision's pixels (default); fast: libvips shrinks while decoding",
      ).choices(RESIZE_METHODS),
    )
    .addOption(
      new Option(
        '--icc-profile <policy>',
        'embedded colour profiles: ignore (default, as PIL) or apply (convert to sRGB)',
      ).choices(ICC_POLICIES),
    )
    .addOption(
      new Option(
        '--exif-orientation <policy>',
        'EXIF orientation: ignore (default, as PIL) or apply (turn the image upright)',
      ).choices(ORIENTATION_POLICIES),
    )
    .addOption(
      new Option(
        '--sixteen-bit <rule>',
        "16-bit images to 8 bits: pil (default: PIL's convert('RGB'): gray clipped at 255, colour high byte) or scale (0-65535 to 0-255)",
      ).choices(SIXTEEN_BIT_RULES),
    )
    .option('--unscaled', 'keep 0-255 pixel values instead of dividing by 255')
    .option(
      '--mean <list>',
      'per-channel mean subtracted from pixels, e.g. 0.485,0.456,0.406',
      numbers('--mean'),
    )
    .option('--std <list>', 'per-channel standard deviation pixels are divided by', numbers('--std'))
    .addOption(
      new Option('--channels <order>', 'channel order of image rows (default: rgb)').choices(CHANNEL_ORDERS),
    )
    .addOption(new Option('--layout <layout>', 'image batch layout (default: nchw)').choices(IMAGE_LAYOUTS))
    .addOption(
      new Option('--image-dtype <dtype>', 'element type of image rows (default: float32)').choices(
        IMAGE_DTYPES,
      ),
    )
    .option(
      '--nan <policy>',
      'items with NaN: fail (default), keep, or a number to replace NaN with',
      (v) => {
        if (v === 'fail' || v === 'keep') return v;
        const n = Number(v);
        if (v.trim() === '' || !Number.isFinite(n))
          throw new InvalidArgumentError(`--nan takes fail, keep or a number, got "${v}"`);
        return n;
      },
    )
    .option('--fits-hdu <n|name>', 'FITS HDU holding the image: index (0 = primary) or EXTNAME', (v) =>
      /^\d+$/.test(v) ? Number(v) : v,
    )
    .option(
      '--fits-bands <list>',
      'one FITS file per band: these bands, in order, make one item (e.g. u,g,r,i,z)',
      list,
    )
    .option(
      '--fits-pattern <pattern>',
      'file names of one-file-per-band FITS, with {id} and {band} (default: {id}_{band}.fits)',
    )
    .option(
      '--fits-cutouts',
      'FITS files hold many cutouts: the last axis counts items (NAXIS3 of 3-D files)',
    )
    .option(
      '--id-column <name>',
      "column (Parquet) or dataset (HDF5, Zarr) whose values become the predictions' id column",
    )
    .option(
      '--carry <list>',
      'columns (Parquet) or datasets (HDF5, Zarr) copied into the predictions, one value per item: ra,dec,objid',
      list,
    )
    .option('--image-column <name>', 'Parquet column of encoded images or raw pixel arrays')
    .option(
      '--shape-column <name>',
      "Parquet column with each raw pixel array's shape (height, width, channels)",
    )
    .option(
      '--image-shape <h,w,c>',
      'shape of every raw pixel array in a Parquet image column, e.g. 256,256,3',
      numbers('--image-shape'),
    )
    .option(
      '--feature-columns <list>',
      'Parquet numeric columns to read (default: all but id, image and shape)',
      list,
    )
    .option(
      '--datasets <list>',
      'HDF5 datasets / Zarr arrays read as columns: paths (images,features) or name=path (image=/images)',
      datasetList,
    )
    .option('--group <path>', 'HDF5 / Zarr group the dataset paths are relative to, e.g. /data');
}

/** `images,features` -> a list; `image=/images,mags=/features` -> name -> path. */
function datasetList(value: string): string[] | Record<string, string> {
  const items = list(value);
  if (!items.some((i) => i.includes('='))) return items;
  const bad = items.find((i) => !/^[^=]+=[^=]+$/.test(i));
  if (bad !== undefined)
    throw new InvalidArgumentError(`--datasets takes name=path pairs or paths, got "${bad}"`);
  return Object.fromEntries(items.map((i) => i.split('=').map((s) => s.trim()) as [string, string]));
}

/**
 * Maps the flags of {@link addSourceOptions} to job fields. Image flags build a `preprocess` object,
 * which replaces the job file's.
 *
 * @example sourceOverrides({ preset: 'imagenet', fitsBands: ['g', 'r'] })
 */
export function sourceOverrides(o: Record<string, unknown>): Partial<JobSpecInput> {
  const preprocess = {
    resize: o.resize as number | [number, number] | undefined,
    centerCrop: o.centerCrop as number | [number, number] | undefined,
    scale: o.unscaled ? false : undefined,
    mean: o.mean as number[] | undefined,
    std: o.std as number[] | undefined,
    channels: o.channels as (typeof CHANNEL_ORDERS)[number] | undefined,
    layout: o.layout as (typeof IMAGE_LAYOUTS)[number] | undefined,
    dtype: o.imageDtype as (typeof IMAGE_DTYPES)[number] | undefined,
    interpolation: o.interpolation as (typeof INTERPOLATIONS)[number] | undefined,
    resizeMethod: o.resizeMethod as (typeof RESIZE_METHODS)[number] | undefined,
    iccProfile: o.iccProfile as (typeof ICC_POLICIES)[number] | undefined,
    exifOrientation: o.exifOrientation as (typeof ORIENTATION_POLICIES)[number] | undefined,
    sixteenBit: o.sixteenBit as (typeof SIXTEEN_BIT_RULES)[number] | undefined,
  };
  const given = Object.fromEntries(Object.entries(preprocess).filter(([, v]) => v !== undefined));
  return {
    format: o.inputFormat as string | undefined,
    preset: o.preset as string | undefined,
    preprocess: Object.keys(given).length ? given : undefined,
    partitionItems: o.partitionItems as number | undefined,
    partitionBytes: o.partitionBytes as number | undefined,
    nan: o.nan as JobSpecInput['nan'],
    fitsHdu: o.fitsHdu as number | string | undefined,
    fitsBands: o.fitsBands as string[] | undefined,
    fitsPattern: o.fitsPattern as string | undefined,
    fitsCutouts: o.fitsCutouts ? true : undefined,
    idColumn: o.idColumn as string | undefined,
    carry: o.carry as string[] | undefined,
    imageColumn: o.imageColumn as string | undefined,
    shapeColumn: o.shapeColumn as string | undefined,
    imageShape: o.imageShape as number[] | undefined,
    featureColumns: o.featureColumns as string[] | undefined,
    datasets: o.datasets as JobSpecInput['datasets'],
    group: o.group as string | undefined,
  };
}

/** The source fields of a job, validated by the job schema without the fields a run needs. */
function sourceJob(o: Record<string, unknown>): Partial<JobSpec> {
  const fields = Object.fromEntries(Object.entries(sourceOverrides(o)).filter(([, v]) => v !== undefined));
  if (fields.carry !== undefined) {
    throw new CaiError(
      ErrorCodes.option,
      '--carry',
      'copies columns into the predictions of `cai run`, and cai partition writes no predictions; keep the columns in the partitions (--datasets, --feature-columns) and give --carry to `cai run` over them',
    );
  }
  const schema = JobSpecSchema.pick({
    format: true,
    preset: true,
    preprocess: true,
    partitionItems: true,
    partitionBytes: true,
    nan: true,
    fitsHdu: true,
    fitsBands: true,
    fitsPattern: true,
    fitsCutouts: true,
    idColumn: true,
    carry: true,
    imageColumn: true,
    shapeColumn: true,
    imageShape: true,
    featureColumns: true,
    datasets: true,
    group: true,
  });
  const parsed = schema.safeParse(fields);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CaiError(ErrorCodes.option, issue.path.join('.') || 'options', issue.message);
  }
  const endpoint = (o.s3Endpoint as string | undefined) ?? process.env.AWS_ENDPOINT_URL_S3;
  return { ...parsed.data, ...(endpoint ? { s3Endpoint: endpoint } : {}) };
}

/**
 * `cai partition <input> <output> --size 25MB | --items 1278 [--format pt]`.
 *
 * @example registerPartitionCommand(program);
 */
export function registerPartitionCommand(program: Command): void {
  addSourceOptions(
    program
      .command('partition')
      .description(
        'split any input CAI reads into partitions of a target size or item count, plus a manifest',
      )
      .argument(
        '<input>',
        'a file (big.npy, s3://b/data.safetensors, galaxy10.h5) or a folder / S3 prefix of images, FITS, Parquet, HDF5 or tensor files, or a Zarr store',
      )
      .argument(
        '<output>',
        'folder or s3:// prefix for 1.safetensors, 2.safetensors, ... (1.pt, ... or 1.h5, ... with --format) and manifest.json',
      ),
    { grouping: false },
  )
    .option(
      '--size <size>',
      'target bytes of tensor data per partition, e.g. 25MB (1 MB = 1024 x 1024 bytes)',
      byteSize('--size'),
    )
    .option('--items <n>', 'items per partition, e.g. 1278 (wins over --size)', positiveInt('--items'))
    .addOption(
      new Option(
        '--format <format>',
        'partition file format (default: safetensors); hdf5 writes a dataset per column (float16 as float32, bool as uint8)',
      ).choices(PARTITION_FORMATS),
    )
    .option('--overwrite', 'replace the partitions of an earlier run in the output')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// URIs; also AWS_ENDPOINT_URL_S3')
    .option('-q, --quiet', 'no progress output')
    .addHelpText(
      'after',
      [
        '',
        'Partitions are named 1, 2, ... in input order; columns keep their names (a .npy is column "0") and dtypes.',
        '.npy (C order), .safetensors, HDF5 and Zarr inputs are read in ranges: memory stays near two partitions',
        'whatever the input size. .pt and .npz inputs are read one whole file at a time. Items of images, FITS',
        'or Parquet that fail to decode are left out and listed in manifest.json under "skipped".',
        '',
        'Examples:',
        '  cai partition galaxies.npy parts/ --size 25MB',
        '  cai partition s3://bucket/sdss/ s3://bucket/sdss-100MB/ --size 100MB --format pt',
        '  cai partition photos/ parts/ --items 1000 --preset imagenet',
        '  cai partition Galaxy10_DECals.h5 parts/ --items 1000 --datasets image=images,ans=ans',
        '  cai partition catalog.h5 parts/ --items 5000 --format hdf5 --datasets catalog.image,catalog.z',
      ].join('\n'),
    )
    .action(async (input: string, outputUri: string, o: Record<string, unknown>) => {
      if (o.size === undefined && o.items === undefined) {
        throw new CaiError(
          ErrorCodes.option,
          'partition',
          'give a target with --size (e.g. 25MB) or --items (e.g. 1278)',
        );
      }
      const quiet = Boolean(o.quiet);
      const manifest = await partitionDataset({
        input,
        output: outputUri,
        size: o.size as number | undefined,
        items: o.items as number | undefined,
        format: o.format as (typeof PARTITION_FORMATS)[number] | undefined,
        overwrite: Boolean(o.overwrite),
        job: sourceJob(o),
        onPartition: quiet
          ? undefined
          : (p) => process.stderr.write(`  ${p.key}: ${p.items} items, ${formatBytes(p.bytes)}\n`),
      });
      const mbps = manifest.bytes / 2 ** 20 / Math.max(1e-9, manifest.seconds);
      process.stdout.write(
        `${manifest.partitions.length} partitions of ${manifest.items_per_partition} items (${manifest.items} items, ${formatBytes(manifest.bytes)}) in ${manifest.seconds.toFixed(1)} s (${mbps.toFixed(0)} MB/s)` +
          `${manifest.skipped.length ? `; ${manifest.skipped.length} items skipped (see manifest.json)` : ''}\n`,
      );
    });
}
