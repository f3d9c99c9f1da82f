import type { Command } from 'commander';
import {
  billRecords,
  BILL_DEFAULTS,
  seedsComparison,
  type BillOptions,
  type ChildWorkflow,
} from '../../experiments/cost.js';
import { PRICES, type LambdaArch } from '../../experiments/prices.js';
import { CaiError, ErrorCodes } from '../../errors.js';
import { loadOutput } from '../../report/load.js';
import { textTable, usd } from '../../report/table.js';
import { billTable, seedsComparisonTable, seedsStyleCost, sweepCostTable } from '../../report/tables.js';

interface CostFlags {
  seeds?: boolean;
  memory: string;
  arch: string;
  ephemeral: string;
  workflow: string;
  json?: boolean;
}

function positive(name: string, text: string): number {
  const v = Number(text);
  if (!(Number.isFinite(v) && v > 0))
    throw new CaiError(ErrorCodes.option, `--${name}`, `expects a positive number, got "${text}"`);
  return v;
}

/** Flags to bill options; `billRecords` itself validates ranges and names the valid values. */
function billOptions(f: CostFlags): BillOptions {
  return {
    memoryMB: positive('memory', f.memory),
    arch: f.arch as LambdaArch,
    ephemeralMB: positive('ephemeral', f.ephemeral),
    childWorkflow: f.workflow as ChildWorkflow,
  };
}

const PRICE_LINE = `Prices: AWS ${PRICES.region} list prices published ${PRICES.publishedAsOf} (src/experiments/prices.ts).`;

/**
 * Registers `cai cost [output]`: the honest AWS bill of a finished run or sweep, and with `--seeds` (or no
 * folder) the seeds' cost table recomputed beside the bill those invocations really cost.
 * @example registerCostCommand(program); await program.parseAsync(['node', 'cai', 'cost', '--seeds']);
 */
export function registerCostCommand(
  program: Command,
  out: (text: string) => void = (t) => process.stdout.write(t),
): Command {
  return program
    .command('cost')
    .description("AWS bill of a run or sweep (Lambda, Step Functions, S3), beside the seeds' formula")
    .argument('[output]', 'output folder of `cai run` or `cai bench`')
    .option('--seeds', "print the seeds' cost table and the honest one side by side")
    .option(
      '--memory <mb>',
      'configured Lambda memory, MB (records from AWS carry their own)',
      String(BILL_DEFAULTS.memoryMB),
    )
    .option('--arch <arch>', 'Lambda architecture: x86_64 or arm64', BILL_DEFAULTS.arch)
    .option(
      '--ephemeral <mb>',
      'ephemeral storage configured, MB (512 is free)',
      String(BILL_DEFAULTS.ephemeralMB),
    )
    .option(
      '--workflow <type>',
      'Distributed Map child workflows: standard or express',
      BILL_DEFAULTS.childWorkflow,
    )
    .option('--json', 'print JSON instead of tables')
    .action(async (dir: string | undefined, flags: CostFlags) => {
      const options = billOptions(flags);
      const showSeeds = flags.seeds || !dir;
      const seeds = showSeeds ? seedsComparison(options) : undefined;
      const loaded = dir ? await loadOutput(dir) : undefined;
      if (flags.json) {
        const run =
          loaded?.kind === 'run'
            ? {
                kind: 'run',
                bill: billRecords(loaded.records, options),
                seedsFormulaUSD: seedsStyleCost(loaded.records),
              }
            : loaded
              ? {
                  kind: 'sweep',
                  runs: loaded.rows.map((r) => ({
                    config: r.config,
                    run: r.run,
                    bill: billRecords(r.records, options),
                  })),
                }
              : undefined;
        out(JSON.stringify({ prices: PRICES, options, seeds, run }, null, 2) + '\n');
        return;
      }
      const parts: string[] = [PRICE_LINE];
      if (seeds) {
        parts.push(textTable(seedsComparisonTable(seeds, options.memoryMB)));
        parts.push(
          'The seeds multiply by memory used and leave out requests, Step Functions and S3; Lambda bills the configured memory for every billed ms.',
        );
      }
      if (loaded?.kind === 'run') {
        const bill = billRecords(loaded.records, options);
        parts.push(textTable(billTable(bill, `Honest bill of ${dir} (${loaded.records.length} partitions)`)));
        parts.push(
          `Seeds' formula on the same run (memory used = peak RSS): $${usd(seedsStyleCost(loaded.records))}`,
        );
        parts.push(bill.notes.map((n) => `note: ${n}`).join('\n'));
      } else if (loaded) {
        parts.push(textTable(sweepCostTable(loaded.rows, options)));
      }
      out(parts.join('\n\n') + '\n');
    });
}
