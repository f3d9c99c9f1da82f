import type { Command } from 'commander';
import { CaiError, ErrorCodes } from '../../errors.js';
import { writeReport } from '../../report/report.js';
import { textTable } from '../../report/table.js';

/**
 * Registers `cai report <output>`: writes `report.html` (figures inline, tables, cost) and
 * `figures/*.svg|png` into the output folder of a finished run or sweep.
 * @example registerReportCommand(program); await program.parseAsync(['node', 'cai', 'report', 'cai-out']);
 */
export function registerReportCommand(
  program: Command,
  out: (text: string) => void = (t) => process.stdout.write(t),
): Command {
  return program
    .command('report')
    .description('write report.html with figures and tables for a finished run or sweep')
    .argument('<output>', 'output of `cai run` or `cai bench`: a folder or an s3:// prefix')
    .option(
      '--to <folder>',
      'folder to write the report into (default: the output folder; for s3:// outputs, <name>-report here)',
    )
    .option('--memory <mb>', 'Lambda memory to bill local records at, MB', '10240')
    .option('--s3-endpoint <url>', 'S3-compatible endpoint for s3:// URIs; also AWS_ENDPOINT_URL_S3')
    .option('--json', 'print what was written as JSON')
    .action(
      async (dir: string, flags: { memory: string; json?: boolean; to?: string; s3Endpoint?: string }) => {
        const memoryMB = Number(flags.memory);
        if (!Number.isFinite(memoryMB))
          throw new CaiError(ErrorCodes.option, '--memory', `expects a number of MB, got "${flags.memory}"`);
        const result = await writeReport(dir, {
          memoryMB,
          to: flags.to,
          s3Endpoint: flags.s3Endpoint ?? process.env.AWS_ENDPOINT_URL_S3,
        });
        if (flags.json) {
          out(JSON.stringify(result, null, 2) + '\n');
          return;
        }
        const lines = [
          ...result.headline.flatMap((t) => [textTable(t), '']),
          `wrote ${result.html}`,
          ...result.figures.map((f) => `  ${f.id}: ${f.marks} points, ${f.svg}, ${f.png}`),
          ...result.warnings.map((w) => `warning: ${w}`),
        ];
        out(lines.join('\n') + '\n');
      },
    );
}
