import { applyResultPath, evaluateTemplate, readPath, StatesError } from './paths.js';

/** Step Functions' limit on the data a state passes on, bytes. */
export const STATE_DATA_LIMIT = 256 * 1024;

/** The context object (`$$`) of one execution. */
export interface ContextObject {
  readonly Execution: {
    readonly Id: string;
    readonly Name: string;
    readonly StartTime: string;
    readonly Input: unknown;
  };
  readonly StateMachine: { readonly Id: string; readonly Name: string };
  State?: { readonly Name: string; readonly EnteredTime: string; readonly RetryCount: number };
  Map?: { readonly Item: { readonly Index: number; readonly Value: unknown } };
}

/** A state of the definition, as parsed JSON. */
export type StateJson = Readonly<Record<string, unknown>> & { readonly Type: string };
/** A definition or an ItemProcessor: where to start and the states. */
export interface StatesJson {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, StateJson>>;
}

/** What the interpreter asks of the outside world. */
export interface InterpreterServices {
  /** Invokes a Lambda function synchronously; throws a {@link StatesError} named as Step Functions names it. */
  invokeLambda(functionArn: string, payload: unknown): Promise<unknown>;
  /** Runs a Map state in DISTRIBUTED mode on its effective input; returns its result. */
  runDistributedMap(name: string, state: StateJson, input: unknown, context: ContextObject): Promise<unknown>;
  /** Waits a retry interval (already scaled by the caller's time scale). */
  sleep(ms: number): Promise<void>;
  random(): number;
  /** Retry intervals are multiplied by this (1 = real time). */
  readonly waitScale: number;
  onState?(event: {
    name: string;
    type: string;
    phase: 'entered' | 'retry' | 'caught' | 'exited';
    detail?: string;
  }): void;
}

// The fields each state type may carry in CAI's subset; any other field is refused, so a change in what
// the stack emits cannot silently go unexecuted.
const FIELDS: Readonly<Record<string, readonly string[]>> = {
  Task: [
    'Resource',
    'Parameters',
    'ResultSelector',
    'ResultPath',
    'OutputPath',
    'InputPath',
    'Retry',
    'Catch',
    'TimeoutSeconds',
  ],
  Map: [
    'ItemProcessor',
    'ItemReader',
    'ItemSelector',
    'ItemBatcher',
    'MaxConcurrency',
    'MaxConcurrencyPath',
    'ToleratedFailurePercentage',
    'ToleratedFailurePercentagePath',
    'ToleratedFailureCount',
    'ToleratedFailureCountPath',
    'ResultWriter',
    'ResultSelector',
    'ResultPath',
    'OutputPath',
    'InputPath',
    'Label',
    'Retry',
    'Catch',
  ],
  Choice: ['Choices', 'Default', 'InputPath', 'OutputPath'],
  Succeed: ['InputPath', 'OutputPath'],
  Fail: ['Error', 'Cause', 'ErrorPath', 'CausePath'],
  Pass: ['Parameters', 'Result', 'ResultPath', 'OutputPath', 'InputPath'],
  Wait: ['Seconds', 'SecondsPath', 'InputPath', 'OutputPath'],
};
const COMMON = ['Type', 'Next', 'End', 'Comment', 'QueryLanguage'];

function checkFields(name: string, state: StateJson): void {
  const allowed = FIELDS[state.Type];
  if (!allowed)
    throw new StatesError(
      'States.Runtime',
      `state "${name}": the offline executor does not run ${state.Type} states`,
    );
  for (const f of Object.keys(state)) {
    if (!allowed.includes(f) && !COMMON.includes(f)) {
      throw new StatesError(
        'States.Runtime',
        `state "${name}": the offline executor does not implement the field ${f}`,
      );
    }
  }
  if (state.QueryLanguage !== undefined && state.QueryLanguage !== 'JSONPath') {
    throw new StatesError('States.Runtime', `state "${name}": only JSONPath states run offline`);
  }
}

interface Retrier {
  readonly ErrorEquals: readonly string[];
  readonly IntervalSeconds?: number;
  readonly MaxAttempts?: number;
  readonly BackoffRate?: number;
  readonly MaxDelaySeconds?: number;
  readonly JitterStrategy?: 'FULL' | 'NONE';
}
interface Catcher {
  readonly ErrorEquals: readonly string[];
  readonly Next: string;
  readonly ResultPath?: string | null;
}

// States.ALL matches every error but the terminal ones; States.TaskFailed every error but a timeout.
function matches(names: readonly string[], error: string, type: string): boolean {
  if (error === 'States.Runtime' || error === 'States.DataLimitExceeded') return false;
  return names.some(
    (n) =>
      n === error ||
      n === 'States.ALL' ||
      (n === 'States.TaskFailed' && type === 'Task' && error !== 'States.Timeout'),
  );
}

function toStatesError(err: unknown): StatesError {
  if (err instanceof StatesError) return err;
  return new StatesError('States.Runtime', err instanceof Error ? err.message : String(err));
}

function evaluateChoice(rule: Record<string, unknown>, data: unknown, context: ContextObject): boolean {
  if (Array.isArray(rule.And))
    return (rule.And as Record<string, unknown>[]).every((r) => evaluateChoice(r, data, context));
  if (Array.isArray(rule.Or))
    return (rule.Or as Record<string, unknown>[]).some((r) => evaluateChoice(r, data, context));
  if (rule.Not) return !evaluateChoice(rule.Not as Record<string, unknown>, data, context);
  const variable = String(rule.Variable);
  if ('IsPresent' in rule) {
    try {
      readPath(variable, data, context);
      return rule.IsPresent === true;
    } catch {
      return rule.IsPresent === false;
    }
  }
  const value = readPath(variable, data, context);
  if ('StringEquals' in rule) return value === rule.StringEquals;
  if ('NumericEquals' in rule) return value === rule.NumericEquals;
  const numeric = (bound: unknown, test: (v: number, b: number) => boolean) =>
    typeof value === 'number' && typeof bound === 'number' && test(value, bound);
  if ('NumericLessThan' in rule) return numeric(rule.NumericLessThan, (v, b) => v < b);
  if ('NumericLessThanEquals' in rule) return numeric(rule.NumericLessThanEquals, (v, b) => v <= b);
  if ('NumericGreaterThan' in rule) return numeric(rule.NumericGreaterThan, (v, b) => v > b);
  if ('NumericGreaterThanEquals' in rule) return numeric(rule.NumericGreaterThanEquals, (v, b) => v >= b);
  if ('BooleanEquals' in rule) return value === rule.BooleanEquals;
  throw new StatesError(
    'States.Runtime',
    `the offline executor does not implement the choice rule ${JSON.stringify(rule)}`,
  );
}

async function runTask(
  state: StateJson,
  input: unknown,
  context: ContextObject,
  services: InterpreterServices,
): Promise<unknown> {
  const resource = String(state.Resource);
  if (!/^arn:aws[\w-]*:lambda:[^:]+:\d+:function:[^:]+$/.test(resource)) {
    throw new StatesError(
      'States.Runtime',
      `the offline executor only invokes Lambda function ARNs, not ${resource}`,
    );
  }
  const payload = state.Parameters === undefined ? input : evaluateTemplate(state.Parameters, input, context);
  const call = services.invokeLambda(resource, payload);
  if (typeof state.TimeoutSeconds !== 'number') return call;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StatesError('States.Timeout', 'The task timed out')),
      (state.TimeoutSeconds as number) * 1000,
    );
  });
  try {
    return await Promise.race([call, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs states from `StartAt` to a terminal state and returns the final output, or throws the
 * {@link StatesError} the execution fails with. Task, Map, Choice, Pass, Wait, Succeed and Fail states;
 * input and output processing (InputPath, Parameters with intrinsic functions, ResultSelector,
 * ResultPath, OutputPath), Retry (per-retrier attempts, backoff, MaxDelaySeconds, full
 * jitter, `$$.State.RetryCount`) and Catch follow the Amazon States Language; data over 256 KiB fails
 * with `States.DataLimitExceeded`.
 *
 * @example const output = await runStates(definition, input, context, services);
 */
export async function runStates(
  machine: StatesJson,
  input: unknown,
  context: ContextObject,
  services: InterpreterServices,
): Promise<unknown> {
  let name: string | undefined = machine.StartAt;
  let data = input;
  while (name !== undefined) {
    const state: StateJson | undefined = machine.States[name];
    if (!state) throw new StatesError('States.Runtime', `no state named "${name}"`);
    checkFields(name, state);
    services.onState?.({ name, type: state.Type, phase: 'entered' });
    const raw = data;
    const effective: unknown =
      state.InputPath === undefined
        ? raw
        : state.InputPath === null
          ? {}
          : readPath(String(state.InputPath), raw, context);

    if (state.Type === 'Fail') {
      const error = state.ErrorPath
        ? String(readPath(String(state.ErrorPath), raw, context))
        : String(state.Error ?? 'States.Fail');
      const cause = state.CausePath
        ? String(readPath(String(state.CausePath), raw, context))
        : String(state.Cause ?? '');
      throw new StatesError(error, cause);
    }
    if (state.Type === 'Succeed' || state.Type === 'Choice') {
      let next: string | undefined;
      if (state.Type === 'Choice') {
        const hit: Record<string, unknown> | undefined = (state.Choices as Record<string, unknown>[]).find(
          (c) => evaluateChoice(c, effective, context),
        );
        next = (hit?.Next as string | undefined) ?? (state.Default as string | undefined);
        if (next === undefined)
          throw new StatesError('States.NoChoiceMatched', `no choice of "${name}" matched`);
      }
      data =
        state.OutputPath === undefined ? effective : readPath(String(state.OutputPath), effective, context);
      services.onState?.({ name, type: state.Type, phase: 'exited' });
      name = next;
      continue;
    }

    if (state.Type === 'Pass' || state.Type === 'Wait') {
      let placed: unknown = effective;
      if (state.Type === 'Pass') {
        context.State = { Name: name, EnteredTime: new Date().toISOString(), RetryCount: 0 };
        const result =
          state.Parameters !== undefined
            ? evaluateTemplate(state.Parameters, effective, context, services.random)
            : 'Result' in state
              ? state.Result
              : effective;
        delete context.State;
        placed = applyResultPath(state.ResultPath as string | null | undefined, raw, result);
      } else {
        const seconds = state.SecondsPath
          ? readPath(String(state.SecondsPath), effective, context)
          : state.Seconds;
        if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0) {
          throw new StatesError(
            'States.Runtime',
            `state "${name}": ${JSON.stringify(seconds)} is not a wait in seconds`,
          );
        }
        await services.sleep(seconds * 1000 * services.waitScale);
      }
      data = state.OutputPath === undefined ? placed : readPath(String(state.OutputPath), placed, context);
      services.onState?.({ name, type: state.Type, phase: 'exited' });
      name = state.End === true ? undefined : (state.Next as string | undefined);
      continue;
    }

    const retriers = (state.Retry ?? []) as Retrier[];
    const attempts = retriers.map(() => 0);
    let retryCount = 0;
    let next = state.End === true ? undefined : (state.Next as string | undefined);
    const entered = new Date().toISOString();
    for (;;) {
      context.State = { Name: name, EnteredTime: entered, RetryCount: retryCount };
      try {
        const result =
          state.Type === 'Task'
            ? await runTask(state, effective, context, services)
            : await services.runDistributedMap(name, state, effective, context);
        const selected =
          state.ResultSelector === undefined
            ? result
            : evaluateTemplate(state.ResultSelector, result, context);
        const placed = applyResultPath(state.ResultPath as string | null | undefined, raw, selected);
        data = state.OutputPath === undefined ? placed : readPath(String(state.OutputPath), placed, context);
        break;
      } catch (thrown) {
        const err = toStatesError(thrown);
        const index = retriers.findIndex((r) => matches(r.ErrorEquals, err.error, state.Type));
        const retrier = retriers[index];
        if (retrier && attempts[index] < (retrier.MaxAttempts ?? 3)) {
          let seconds = (retrier.IntervalSeconds ?? 1) * (retrier.BackoffRate ?? 2) ** attempts[index];
          if (retrier.MaxDelaySeconds !== undefined) seconds = Math.min(seconds, retrier.MaxDelaySeconds);
          if (retrier.JitterStrategy === 'FULL') seconds *= services.random();
          attempts[index]++;
          retryCount++;
          services.onState?.({ name, type: state.Type, phase: 'retry', detail: err.error });
          await services.sleep(seconds * 1000 * services.waitScale);
          continue;
        }
        const catcher = ((state.Catch ?? []) as Catcher[]).find((c) =>
          matches(c.ErrorEquals, err.error, state.Type),
        );
        if (!catcher) throw err;
        services.onState?.({ name, type: state.Type, phase: 'caught', detail: err.error });
        data = applyResultPath(catcher.ResultPath === undefined ? '$' : catcher.ResultPath, raw, {
          Error: err.error,
          Cause: err.cause,
        });
        next = catcher.Next;
        break;
      }
    }
    delete context.State;
    if (Buffer.byteLength(JSON.stringify(data) ?? '') > STATE_DATA_LIMIT) {
      throw new StatesError('States.DataLimitExceeded', `the output of state "${name}" is over 256 KiB`);
    }
    services.onState?.({ name, type: state.Type, phase: 'exited' });
    name = next;
  }
  return data;
}
