import { promises as fs } from 'node:fs';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../errors.js';
import { parseJobSpec, type JobSpec, type JobSpecInput } from './spec.js';

/**
 * Reads an optional JSON job file (its relative paths taken from the file's folder) and lays the
 * overrides over it (CLI flags win over the file), without
 * validating or filling defaults: what `cai aws run` sends on, so that the stack decides what the job
 * leaves open.
 *
 * @example await mergeJobInput('job.json', { batchSize: 256 }) // { input: ..., batchSize: 256 }
 */
export async function mergeJobInput(
  file: string | undefined,
  overrides: Partial<JobSpecInput> = {},
): Promise<Partial<JobSpecInput>> {
  let base: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch {
      throw new CaiError(
        ErrorCodes.notFound,
        file,
        'job file does not exist or cannot be read; check the path',
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new CaiError(ErrorCodes.option, file, `job file is not valid JSON (${(err as Error).message})`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new CaiError(ErrorCodes.option, file, 'job file must hold one JSON object of job fields');
    }
    base = parsed as Record<string, unknown>;
    // A job file's paths mean the same wherever `cai` runs from: relative to the file's folder.
    absolutePaths(base, path.dirname(path.resolve(file)));
  }
  const merged: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = v;
  // A flag's path is taken from the working folder. Both become absolute and normalized, so that the
  // same folder is the same job however it is spelled (`parts`, `parts/`, `./parts`, from another
  // folder through `../`): the output's job.json compares these strings when a run resumes.
  absolutePaths(merged, process.cwd());
  return merged as Partial<JobSpecInput>;
}

/** Makes the local paths of `input`, `model` and `output` absolute from `dir` (URIs such as s3:// stay). */
function absolutePaths(fields: Record<string, unknown>, dir: string): void {
  for (const field of ['input', 'model', 'output']) {
    const v = fields[field];
    if (typeof v === 'string' && v !== '' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(v))
      fields[field] = path.resolve(dir, v);
  }
}

/**
 * Loads a job from an optional JSON file and overrides (CLI flags win over the file), then validates
 * the merged result.
 *
 * @example await loadJob('job.json', { batchSize: 256 })
 */
export async function loadJob(
  file: string | undefined,
  overrides: Partial<JobSpecInput> = {},
): Promise<JobSpec> {
  return parseJobSpec(await mergeJobInput(file, overrides), file ?? 'job');
}

/**
 * Parses the `--inputs` flag: `image=0,magnitude=1` or `image=images,magnitude=mags` (model input =
 * column position or name).
 *
 * @example parseInputMapping('image=0,magnitude=1') // { image: 0, magnitude: 1 }
 */
export function parseInputMapping(text: string): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) {
      throw new CaiError(
        ErrorCodes.option,
        '--inputs',
        `"${part}" is not of the form input=column; write e.g. --inputs image=0,magnitude=1`,
      );
    }
    out[part.slice(0, eq).trim()] = parseColumnRef(part.slice(eq + 1).trim());
  }
  return out;
}

/** A column reference from text: digits are a position, anything else a name. @example parseColumnRef('2') // 2 */
export function parseColumnRef(text: string): string | number {
  return /^\d+$/.test(text) ? Number(text) : text;
}
