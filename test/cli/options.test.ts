// No flag of `cai run`, `cai slurm run` or `cai aws run` is silently dropped. Every flag commander
// defines for these commands either is one of the command's own (declared with what it does) or reaches
// job fields, found by parsing: the command's own mapping from parsed flags to the job is given a
// sentinel for that flag and the fields it changes are read. Each such field must be honoured by the
// command's engine (src/engines/fields.ts, where every job field is classified for every engine), or
// else hidden from the help and refused by the engine's check before any work, naming the flag.
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { test } from 'node:test';
import { Command, type Option } from 'commander';
import { AWS_RUN_FLAGS, registerAwsCommand } from '../../src/cli/commands/aws.js';
import { registerSlurmCommand, SLURM_RUN_FLAGS, slurmJobOverrides } from '../../src/cli/commands/slurm.js';
import { jobOverrides, registerRunCommand, RUN_FLAGS } from '../../src/cli/run-command.js';
import { checkEngineFields, ENGINE_FIELDS, type EngineName } from '../../src/engines/fields.js';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { JOB_FIELDS, parseJobSpec, type JobSpec, type JobSpecInput } from '../../src/job/spec.js';

interface CommandUnderTest {
  readonly path: string;
  readonly engine: EngineName;
  readonly command: Command;
  /** The command's own mapping from parsed flags to job fields (what its action sends on). */
  readonly toJob: (o: Record<string, unknown>) => Partial<JobSpecInput>;
  /** Its flags that are not job fields. */
  readonly own: Readonly<Record<string, string>>;
}

function commands(): CommandUnderTest[] {
  const program = new Command();
  registerRunCommand(program);
  registerSlurmCommand(program);
  registerAwsCommand(program);
  const find = (...names: string[]) => {
    let cmd: Command | undefined = program;
    for (const name of names) cmd = cmd?.commands.find((c) => c.name() === name);
    assert.ok(cmd, names.join(' '));
    return cmd;
  };
  return [
    { path: 'cai run', engine: 'local', command: find('run'), toJob: jobOverrides, own: RUN_FLAGS },
    {
      path: 'cai slurm run',
      engine: 'slurm',
      command: find('slurm', 'run'),
      toJob: slurmJobOverrides,
      own: SLURM_RUN_FLAGS,
    },
    {
      path: 'cai aws run',
      engine: 'aws',
      command: find('aws', 'run'),
      toJob: jobOverrides,
      own: AWS_RUN_FLAGS,
    },
  ];
}

/** Dotted paths whose values differ between two jobs (one level into object fields: preprocess, slurm). */
function changedFields(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const [x, y] = [a[key], b[key]];
    if (isDeepStrictEqual(x, y)) continue;
    const nested = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    if ((nested(x) || x === undefined) && (nested(y) || y === undefined) && (nested(x) || nested(y))) {
      const inner = changedFields((x ?? {}) as Record<string, unknown>, (y ?? {}) as Record<string, unknown>);
      if (inner.length && !isSentinel(y)) {
        out.push(...inner.map((k) => `${key}.${k}`));
        continue;
      }
    }
    out.push(key);
  }
  return out;
}

const isSentinel = (v: unknown) => typeof v === 'object' && v !== null && 'sentinel' in v;

/** The job fields a flag sets, by the command's own mapping. */
function fieldsOf(cmd: CommandUnderTest, option: Option): string[] {
  const attr = option.attributeName();
  const base = cmd.toJob({}) as Record<string, unknown>;
  const given = cmd.toJob({ [attr]: { sentinel: attr } }) as Record<string, unknown>;
  return changedFields(base, given);
}

const baseJob = (): JobSpec => parseJobSpec({ input: 'in', model: 'm.onnx', output: 'out' });

for (const cmd of commands()) {
  test(`${cmd.path}: every flag is its own or reaches a job field its engine honours or refuses`, () => {
    const dropped: string[] = [];
    const offeredButRefused: string[] = [];
    const notRefused: string[] = [];
    for (const option of cmd.command.options) {
      const attr = option.attributeName();
      if (attr in cmd.own) continue;
      const fields = fieldsOf(cmd, option);
      if (!fields.length) {
        dropped.push(option.flags);
        continue;
      }
      for (const dotted of fields) {
        const field = dotted.split('.')[0] as keyof JobSpec;
        assert.ok(JOB_FIELDS.includes(field), `${option.flags} sets "${dotted}", not a job field`);
        const use = ENGINE_FIELDS[cmd.engine][field];
        if (use === 'honoured') continue;
        if (!option.hidden) offeredButRefused.push(`${option.flags} (${field})`);
        // Set to a value no `unless` accepts, the engine's check must refuse it, naming the flag.
        const job = { ...baseJob(), engine: cmd.engine, [field]: { sentinel: attr } } as JobSpec;
        try {
          checkEngineFields(job);
          notRefused.push(`${option.flags} (${field})`);
        } catch (err) {
          assert.ok(err instanceof CaiError && err.code === ErrorCodes.option, String(err));
          assert.ok(err.message.includes(option.long ?? ''), `${err.message} names ${option.long}`);
        }
      }
    }
    assert.deepEqual(dropped, [], `${cmd.path}: flags that reach no job field and are not the command's own`);
    assert.deepEqual(offeredButRefused, [], `${cmd.path}: flags in the help whose field the engine refuses`);
    assert.deepEqual(notRefused, [], `${cmd.path}: flags the engine neither honours nor refuses`);
    // Every declared own flag is a flag of the command (no stale entry hides a dropped one).
    const attrs = new Set(cmd.command.options.map((o) => o.attributeName()));
    assert.deepEqual(
      Object.keys(cmd.own).filter((k) => !attrs.has(k)),
      [],
    );
  });
}

test('every job field is classified for every engine, and a refused field set in a job file is refused too', () => {
  for (const [engine, table] of Object.entries(ENGINE_FIELDS)) {
    assert.deepEqual(Object.keys(table).sort(), [...JOB_FIELDS].sort(), engine);
  }
  // Left unset, nothing is refused: the defaults of every engine pass.
  for (const engine of ['local', 'slurm', 'aws'] as const)
    assert.doesNotThrow(() => checkEngineFields({ ...baseJob(), engine }));
  // As a job file gives them (no flag involved): each refusal names the field and what to use.
  const slurm = parseJobSpec({
    input: 'in',
    model: 'm.onnx',
    output: 'out',
    engine: 'slurm',
    concurrency: 4,
    threads: 2,
    partitionTimeoutSeconds: 60,
  });
  assert.throws(
    () => checkEngineFields(slurm),
    (err: unknown) => {
      assert.ok(err instanceof CaiError && err.code === ErrorCodes.option);
      assert.match(
        err.message,
        /concurrency \(--concurrency\) 4 does not apply to the slurm engine: .*--throttle/,
      );
      assert.match(err.message, /threads \(--threads\) 2 .*--cpus-per-task/);
      assert.match(err.message, /partitionTimeoutSeconds \(--partition-timeout\) 60 .*--time/);
      return true;
    },
  );
  // Threads equal to the CPUs per task are what Slurm does: honoured.
  assert.doesNotThrow(() =>
    checkEngineFields(
      parseJobSpec({
        ...slurm,
        concurrency: undefined,
        partitionTimeoutSeconds: undefined,
        threads: 3,
        slurm: { cpusPerTask: 3 },
      }),
    ),
  );
  const aws = parseJobSpec({
    input: 'in',
    model: 'm.onnx',
    output: 'out',
    engine: 'aws',
    device: 'cuda',
    slurm: {},
  });
  assert.throws(() => checkEngineFields(aws), /device \(--device\) "cuda" .*CPU only.*; slurm \(/);
  assert.doesNotThrow(() => checkEngineFields({ ...aws, device: 'cpu', slurm: undefined }));
  const local = parseJobSpec({ input: 'in', model: 'm.onnx', output: 'out', slurm: { partition: 'debug' } });
  assert.throws(
    () => checkEngineFields(local),
    /slurm .* does not apply to the local engine: .*cai slurm run/,
  );
});
