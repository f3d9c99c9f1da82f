import { Command, InvalidArgumentError, Option } from 'commander';
import { parseColumnRef, parseInputMapping } from '../../job/load.js';
import { parseJobSpec } from '../../job/spec.js';
import { describeOptimization } from '../../model/optimization.js';
import { CALIBRATION_METHODS, type CalibrationMethod } from '../../model/quantize/ranges.js';
import {
  OPTIMIZE_DEFAULTS,
  optimizeModel,
  reportPath,
  type OptimizeReport,
} from '../../optimize/optimize.js';
import { addSourceOptions, sourceOverrides } from './partition.js';

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}"`);
    return n;
  };
}

function share(name: string) {
  return (value: string): number => {
    const n = Number(value.endsWith('%') ? Number(value.slice(0, -1)) / 100 : value);
    if (!Number.isFinite(n) || n < 0 || n > 1)
      throw new InvalidArgumentError(
        `${name} must be a share from 0 to 1 (or a percentage like 5%), got "${value}"`,
      );
    return n;
  };
}

const f = (n: number | undefined, digits = 4) =>
  n === undefined || !Number.isFinite(n) ? 'n/a' : n.toPrecision(digits);
const pct = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n) ? 'n/a' : `${(n * 100).toFixed(2)}%`;

/** The accuracy report as the table `cai optimize` prints. @example reportText(report) */
export function reportText(r: OptimizeReport): string {
  const lines = [`optimization: ${describeOptimization(r.optimization)}`];
  const c = r.comparison;
  if (!c) {
    lines.push('accuracy:     not measured (give --calibrate <input> to compare with fp32 on your items)');
  } else {
    lines.push(
      `held out:     ${c.items} items; fp32 ${f(c.ms_per_item.fp32, 3)} ms/item, optimized ${f(c.ms_per_item.optimized, 3)} ms/item (${c.ms_per_item.speedup.toFixed(2)}x, one run: indicative)`,
      '',
      '| output | max abs diff | mean abs diff | RMS diff | fp32 std | error (RMS / std) | argmax agreement |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...c.outputs.map(
        (o) =>
          `| ${o.name} | ${f(o.max_abs_diff)} | ${f(o.mean_abs_diff)} | ${f(o.rms_diff)} | ${f(o.fp32_std)} | ${pct(o.relative_error)} | ${o.argmax_agreement === undefined ? '-' : pct(o.argmax_agreement)} |`,
      ),
    );
    const m = c.metrics;
    if (m?.fp32.kind === 'regression' && m.optimized.kind === 'regression') {
      lines.push(
        '',
        '| metric (held out, with labels) | fp32 | optimized |',
        '| --- | --- | --- |',
        `| MAE | ${f(m.fp32.mae)} | ${f(m.optimized.mae)} |`,
        `| NMAD | ${f(m.fp32.nmad)} | ${f(m.optimized.nmad)} |`,
        `| bias | ${f(m.fp32.bias)} | ${f(m.optimized.bias)} |`,
        `| outlier fraction | ${pct(m.fp32.outlier_fraction)} | ${pct(m.optimized.outlier_fraction)} |`,
      );
    } else if (m?.fp32.kind === 'classification' && m.optimized.kind === 'classification') {
      lines.push(
        '',
        '| metric (held out, with labels) | fp32 | optimized |',
        '| --- | --- | --- |',
        `| accuracy | ${pct(m.fp32.accuracy)} | ${pct(m.optimized.accuracy)} |`,
        `| top-5 | ${pct(m.fp32.top5)} | ${pct(m.optimized.top5)} |`,
      );
    }
  }
  if (r.sensitivity?.length) {
    const worst = r.sensitivity.slice(0, 5).map((s) => `${s.name} ${pct(s.relative_error)}`);
    lines.push('', `most costly alone: ${worst.join(', ')}`);
  }
  lines.push(
    '',
    `tolerance:    error <= ${pct(r.tolerance.relative_error)} of the fp32 std, argmax agreement >= ${pct(r.tolerance.argmax_agreement)}`,
  );
  if (r.accepted) lines.push(`written:      ${r.optimized} (report ${reportPath(r.optimized)})`);
  else
    lines.push(
      `REFUSED:      ${(r.exceeded ?? []).join('; ')}`,
      `written:      ${r.optimized} (under another name; report next to it). Try --keep-fp32 <n>, --no-conv, --no-matmul, more --calibration-items, or a looser --tolerance`,
    );
  return lines.join('\n');
}

/** `cai optimize <model.onnx> -o <out.onnx> [--int8] [--calibrate <input> ...]`. */
export function registerOptimizeCommand(program: Command): void {
  const cmd = program
    .command('optimize')
    .description(
      "save onnxruntime's graph optimizations into the model and, with --int8, quantize its MatMul/Gemm and Conv; the accuracy is measured against fp32 on your own items",
    )
    .argument('<model>', 'the fp32 ONNX model')
    .requiredOption(
      '-o, --output <file>',
      'where the optimized model goes (its report: <name>.accuracy.json)',
    )
    .option('--int8', 'quantize: MatMul/Gemm dynamically (int8 weights), Conv statically (calibrated QDQ)')
    .option('--calibrate <input>', 'folder or s3:// prefix of your input, read as `cai run --input` reads it')
    .option(
      '--inputs <mapping>',
      'model input = column, as in cai run: image=0,magnitude=1',
      parseInputMapping,
    )
    .option(
      '--label <column>',
      'column with the true value: the job metrics, fp32 vs optimized',
      parseColumnRef,
    )
    .option('--file-limit <k>', 'read only the first K partitions', positiveInt('--file-limit'))
    .option(
      '--calibration-items <n>',
      `items the Conv ranges are calibrated on (default: ${OPTIMIZE_DEFAULTS.calibrationItems})`,
      positiveInt('--calibration-items'),
    )
    .option(
      '--held-out-items <n>',
      `further items the accuracy is measured on (default: ${OPTIMIZE_DEFAULTS.heldOutItems})`,
      positiveInt('--held-out-items'),
    )
    .addOption(
      new Option(
        '--calibration-method <method>',
        'how Conv activation ranges are taken (default: minmax)',
      ).choices(CALIBRATION_METHODS),
    )
    .option(
      '--keep-fp32 <n>',
      'when over tolerance, keep up to n of the operators whose quantization costs most (measured one by one) in fp32',
      positiveInt('--keep-fp32'),
    )
    .option('--no-conv', 'leave Conv in fp32 (quantize only MatMul/Gemm)')
    .option('--no-matmul', 'leave MatMul/Gemm in fp32 (quantize only Conv)')
    .option(
      '--smooth-alpha <share>',
      `SmoothQuant strength for the MatMuls' inputs: per-channel scales calibrated on the items move activation outliers into the weights (0: off; default: ${OPTIMIZE_DEFAULTS.smoothAlpha})`,
      share('--smooth-alpha'),
    )
    .option(
      '--int8-input-convs',
      'quantize also the Convs that read a model input (directly or after elementwise ops); fp32 by default: raw data rarely fits 256 levels',
    )
    .option(
      '--tolerance <share>',
      `largest error (RMS difference / fp32 std) per output (default: ${OPTIMIZE_DEFAULTS.tolerance})`,
      share('--tolerance'),
    )
    .option(
      '--min-agreement <share>',
      `smallest argmax agreement for class scores (default: ${OPTIMIZE_DEFAULTS.minAgreement})`,
      share('--min-agreement'),
    )
    .option('-t, --threads <n>', 'onnxruntime threads (default: all cores)', positiveInt('--threads'))
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// URIs')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      '\nExit codes: 0 written, 1 over tolerance (written as <name>.rejected.onnx, report beside it), 2 usage error.\n\nExample:\n  cai optimize astromae.onnx -o astromae.int8.onnx --int8 --calibrate parts/ --inputs image=0,magnitude=1 --label 2',
    );
  addSourceOptions(cmd).action(async (model: string, o: Record<string, unknown>) => {
    const job =
      o.calibrate === undefined
        ? undefined
        : parseJobSpec(
            {
              input: o.calibrate,
              model,
              output: String(o.output),
              inputs: o.inputs,
              label: o.label,
              fileLimit: o.fileLimit,
              s3Endpoint: (o.s3Endpoint as string | undefined) ?? process.env.AWS_ENDPOINT_URL_S3,
              ...Object.fromEntries(Object.entries(sourceOverrides(o)).filter(([, v]) => v !== undefined)),
            },
            '--calibrate',
          );
    const report = await optimizeModel({
      model,
      output: String(o.output),
      int8: Boolean(o.int8),
      job,
      calibrationItems: o.calibrationItems as number | undefined,
      heldOutItems: o.heldOutItems as number | undefined,
      method: o.calibrationMethod as CalibrationMethod | undefined,
      keepFp32: o.keepFp32 as number | undefined,
      noConv: o.conv === false,
      noMatmul: o.matmul === false,
      smoothAlpha: o.smoothAlpha as number | undefined,
      quantizeInputConvs: o.int8InputConvs === true,
      tolerance: o.tolerance as number | undefined,
      minAgreement: o.minAgreement as number | undefined,
      threads: o.threads as number | undefined,
      log: o.json ? undefined : (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : `${reportText(report)}\n`);
    if (!report.accepted) process.exitCode = 1;
  });
}
