// The JSONPath subset of Amazon States Language that CAI's definition uses: `$`, `$$` and dotted or
// bracketed member and index steps; and its intrinsic functions (`States.MathAdd`, `States.MathRandom`,
// `States.Array`, `States.ArrayGetItem`), nested, with paths, numbers and quoted strings as arguments.
// Anything else is refused, so the offline executor never guesses.

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
 * `.$` take the value of their path or intrinsic call, others are copied, objects and arrays are walked.
 *
 * @example evaluateTemplate({ 'key.$': '$.k', bucket: 'b' }, { k: 'x' }, {}) // { key: 'x', bucket: 'b' }
 */
export function evaluateTemplate(
  template: unknown,
  data: unknown,
  context: unknown,
  random: () => number = Math.random,
): unknown {
  if (Array.isArray(template)) return template.map((t) => evaluateTemplate(t, data, context, random));
  if (template === null || typeof template !== 'object') return template;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(template)) {
    if (key.endsWith('.$')) {
      if (typeof value === 'string' && value.startsWith('States.')) {
        out[key.slice(0, -2)] = evaluateIntrinsic(value, data, context, random);
        continue;
      }
      if (typeof value !== 'string' || !value.startsWith('$')) {
        throw new StatesError(
          'States.Runtime',
          `the offline executor does not support "${key}": ${JSON.stringify(value)}`,
        );
      }
      out[key.slice(0, -2)] = readPath(value, data, context);
    } else out[key] = evaluateTemplate(value, data, context, random);
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

type Value = unknown;

const fail = (text: string, why: string): never => {
  throw new StatesError('States.Runtime', `intrinsic ${text}: ${why}`);
};

const integer = (text: string, v: Value): number =>
  typeof v === 'number' && Number.isInteger(v) ? v : fail(text, `${JSON.stringify(v)} is not an integer`);

const FUNCTIONS: Readonly<Record<string, (args: Value[], text: string, random: () => number) => Value>> = {
  'States.Array': (args) => args,
  'States.ArrayGetItem': ([array, index], text) => {
    if (!Array.isArray(array)) fail(text, 'the first argument is not an array');
    const i = integer(text, index);
    return i >= 0 && i < (array as Value[]).length
      ? (array as Value[])[i]
      : fail(text, `index ${i} is out of range`);
  },
  'States.MathAdd': ([a, b], text) => integer(text, a) + integer(text, b),
  // Step Functions: a random integer from start (inclusive) to end (exclusive).
  'States.MathRandom': ([start, end], text, random) => {
    const lo = integer(text, start);
    const hi = integer(text, end);
    return hi <= lo ? fail(text, 'end must be above start') : lo + Math.floor(random() * (hi - lo));
  },
};

/**
 * Evaluates one intrinsic call against the state's data and the context object.
 *
 * @example evaluateIntrinsic('States.MathAdd($.try.attempt, 1)', { try: { attempt: 1 } }, {}) // 2
 */
export function evaluateIntrinsic(
  text: string,
  data: unknown,
  context: unknown,
  random: () => number = Math.random,
): Value {
  let at = 0;
  const space = () => {
    while (text[at] === ' ') at++;
  };
  const argument = (): Value => {
    space();
    if (text.startsWith('States.', at)) return call();
    if (text[at] === "'") {
      const end = text.indexOf("'", at + 1);
      if (end < 0) fail(text, 'an unclosed string');
      const s = text.slice(at + 1, end);
      at = end + 1;
      return s;
    }
    const m = /^(\$\$?[^,)\s]*|-?\d+(?:\.\d+)?)/.exec(text.slice(at));
    if (!m) return fail(text, `cannot read an argument at ${at}`);
    at += m[1].length;
    return m[1].startsWith('$') ? readPath(m[1], data, context) : Number(m[1]);
  };
  const call = (): Value => {
    const m = /^States\.[A-Za-z]+/.exec(text.slice(at));
    if (!m) return fail(text, `not a function at ${at}`);
    const fn = FUNCTIONS[m[0]] ?? fail(text, `the offline executor does not implement ${m[0]}`);
    at += m[0].length;
    space();
    if (text[at++] !== '(') fail(text, `( expected after ${m[0]}`);
    const args: Value[] = [];
    space();
    if (text[at] === ')') at++;
    else {
      for (;;) {
        args.push(argument());
        space();
        const c = text[at++];
        if (c === ')') break;
        if (c !== ',') fail(text, `, or ) expected at ${at - 1}`);
      }
    }
    return fn(args, text, random);
  };
  const value = call();
  space();
  if (at !== text.length) fail(text, `unexpected text at ${at}`);
  return value;
}
