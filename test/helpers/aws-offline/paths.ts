// The JSONPath subset of Amazon States Language that CAI's definition uses: `$`, `$$` and dotted or
// bracketed member and index steps. Anything else is refused, so the offline executor never guesses.

/** A Step Functions error: its name (`States.Runtime`, `CaiRetryableError`...) and cause. */
export class StatesError extends Error {
  /** The error name Retry and Catch match. */
  readonly error: string;
  override readonly cause: string;

  constructor(error: string, cause: string) {
    super(`${error}: ${cause}`);
    this.name = error;
    this.error = error;
    this.cause = cause;
  }
}

type Step = string | number;

function parsePath(path: string): { root: '$' | '$$'; steps: Step[] } {
  const m = /^(\$\$?)(.*)$/.exec(path);
  if (!m) throw new StatesError('States.Runtime', `"${path}" is not a path`);
  const steps: Step[] = [];
  const re = /\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]|\['([^']*)'\]/y;
  const rest = m[2];
  let at = 0;
  while (at < rest.length) {
    re.lastIndex = at;
    const s = re.exec(rest);
    if (!s)
      throw new StatesError('States.Runtime', `the offline executor does not support the path "${path}"`);
    steps.push(s[1] ?? (s[2] !== undefined ? Number(s[2]) : s[3]));
    at = re.lastIndex;
  }
  return { root: m[1] as '$' | '$$', steps };
}

/**
 * The value a path selects in the state's data (`$...`) or the context object (`$$...`). A missing
 * member is a `States.Runtime` error, as on Step Functions.
 *
 * @example readPath('$.init.manifest.key', data, context)
 */
export function readPath(path: string, data: unknown, context: unknown): unknown {
  const { root, steps } = parsePath(path);
  let value: unknown = root === '$$' ? context : data;
  for (const step of steps) {
    if (value === null || typeof value !== 'object' || !(step in (value as object))) {
      throw new StatesError('States.Runtime', `The JSONPath '${path}' could not be found in the input`);
    }
    value = (value as Record<string | number, unknown>)[step];
  }
  return value;
}

/**
 * Evaluates a payload template (Parameters, ItemSelector, BatchInput, ResultSelector): fields ending in
 * `.$` take the value of their path, others are copied, objects and arrays are walked.
 *
 * @example evaluateTemplate({ 'key.$': '$.k', bucket: 'b' }, { k: 'x' }, {}) // { key: 'x', bucket: 'b' }
 */
export function evaluateTemplate(template: unknown, data: unknown, context: unknown): unknown {
  if (Array.isArray(template)) return template.map((t) => evaluateTemplate(t, data, context));
  if (template === null || typeof template !== 'object') return template;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(template)) {
    if (key.endsWith('.$')) {
      if (typeof value !== 'string' || !value.startsWith('$')) {
        throw new StatesError(
          'States.Runtime',
          `the offline executor does not support "${key}": ${JSON.stringify(value)}`,
        );
      }
      out[key.slice(0, -2)] = readPath(value, data, context);
    } else out[key] = evaluateTemplate(value, data, context);
  }
  return out;
}

/**
 * ResultPath: puts `result` into a copy of `input` at `path` (`$` replaces it, `null` keeps the input).
 *
 * @example applyResultPath('$.init', { job }, result) // { job, init: result }
 */
export function applyResultPath(path: string | null | undefined, input: unknown, result: unknown): unknown {
  if (path === null) return input;
  if (path === undefined || path === '$') return result;
  const { root, steps } = parsePath(path);
  if (root !== '$') throw new StatesError('States.Runtime', `ResultPath "${path}" must start with $`);
  const copy = structuredClone(input) as Record<string | number, unknown>;
  if (copy === null || typeof copy !== 'object') {
    throw new StatesError('States.Runtime', `cannot apply ResultPath "${path}" to a non-object input`);
  }
  let at: Record<string | number, unknown> = copy;
  for (const step of steps.slice(0, -1)) {
    if (at[step] === undefined || at[step] === null || typeof at[step] !== 'object') at[step] = {};
    at = at[step] as Record<string | number, unknown>;
  }
  at[steps[steps.length - 1]] = result;
  return copy;
}
