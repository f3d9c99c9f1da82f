import { Duration } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import {
  CRASH_ERRORS,
  LAMBDA_ERRORS,
  LAMBDA_SERVICE_ERRORS,
  LAMBDA_THROTTLED,
  THROTTLE_ATTEMPTS,
} from './lambda-errors.js';

/** Names of the states, for tests and for reading executions. */
export const STATES = Object.freeze({
  initialize: 'Initialize',
  map: 'Inference',
  infer: 'Infer',
  summarize: 'Summarize',
  choice: 'JobSucceeded',
  done: 'Done',
  failed: 'JobFailed',
  summarizeFailed: 'SummarizeFailed',
  summarizeFallback: 'SummarizeFallback',
  tryAgain: 'TryAgain',
  nextTry: 'NextTry',
  backoff: 'Backoff',
  partitionFailed: 'PartitionFailed',
} as const);

/** The most tries a job may ask for (the job schema's `maxAttempts` limit). */
const MAX_JOB_ATTEMPTS = 20;

/** The longest wait after try n failed, seconds, indexed by n: 2 s, doubling, capped at a minute. */
const BACKOFF_SECONDS = Array.from({ length: MAX_JOB_ATTEMPTS + 1 }, (_, n) =>
  Math.min(60, Math.max(2, 2 ** n)),
);

// The Map's ItemReader and ResultWriter bring their own IAM statements for the whole bucket; these
// subclasses hand the state machine's role exactly the statements given instead (the output prefix).
class ScopedJsonItemReader extends sfn.S3JsonItemReader {
  constructor(
    props: sfn.S3FileItemReaderProps,
    private readonly statements: iam.PolicyStatement[],
  ) {
    super(props);
  }
  override providePolicyStatements(): iam.PolicyStatement[] {
    return this.statements;
  }
}

class ScopedResultWriter extends sfn.ResultWriterV2 {
  constructor(
    props: sfn.ResultWriterV2Props,
    private readonly statements: iam.PolicyStatement[],
  ) {
    super(props);
  }
  override providePolicyStatements(): iam.PolicyStatement[] {
    return this.statements;
  }
}

/** What the definition is built from. */
export interface DefinitionParts {
  readonly initialize: lambda.IFunction;
  readonly inference: lambda.IFunction;
  readonly summarize: lambda.IFunction;
  readonly outputBucket: s3.IBucket;
  /** Statements letting Step Functions read the manifest and write the Map's results. */
  readonly readManifest: iam.PolicyStatement[];
  readonly writeResults: iam.PolicyStatement[];
  readonly itemsPerBatch: number;
  readonly crashAttempts: number;
}

function invoke(
  scope: Construct,
  id: string,
  fn: lambda.IFunction,
  payload: Record<string, unknown>,
  resultPath?: string,
) {
  const task = new tasks.LambdaInvoke(scope, id, {
    lambdaFunction: fn,
    payload: sfn.TaskInput.fromObject(payload),
    payloadResponseOnly: true,
    retryOnServiceExceptions: false,
    resultPath,
  });
  // Throttling slows the run instead of failing partitions: an account's concurrency (often 10 on a new
  // account) below the Map's MaxConcurrency throttles most invocations, for as long as the run lasts.
  // Capped backoff with full jitter keeps the waiting children spread out; about 100 minutes in all.
  task.addRetry({
    errors: [LAMBDA_THROTTLED],
    interval: Duration.seconds(1),
    backoffRate: 2,
    maxAttempts: THROTTLE_ATTEMPTS,
    maxDelay: Duration.seconds(60),
    jitterStrategy: sfn.JitterType.FULL,
  });
  // Transient Lambda faults: back off with jitter so that a thousand Map children do not retry in lockstep.
  task.addRetry({
    errors: [...LAMBDA_SERVICE_ERRORS],
    interval: Duration.seconds(2),
    backoffRate: 2,
    maxAttempts: 6,
    maxDelay: Duration.seconds(60),
    jitterStrategy: sfn.JitterType.FULL,
  });
  return task;
}

/**
 * CAI's state machine: Initialize (plan, manifest) -> a Distributed Map over the manifest whose children
 * invoke the inference function (a Retry rides out Lambda throttling and service errors; a Catch loop
 * that counts attempts tries again on the worker's retryable failures while the job allows, and on
 * crashes and timeouts up to crashAttempts), with the job's concurrency and tolerated failure count,
 * results exported to S3 -> Summarize, which also runs when the Map failed -> succeed or fail on the
 * summary's status.
 *
 * @example const definition = buildDefinition(stack, parts); new sfn.StateMachine(stack, 'Jobs', { definitionBody: sfn.DefinitionBody.fromChainable(definition) });
 */
export function buildDefinition(scope: Construct, parts: DefinitionParts): sfn.IChainable {
  const init = invoke(
    scope,
    STATES.initialize,
    parts.initialize,
    {
      input: sfn.JsonPath.objectAt('$'),
      executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
      executionStartTime: sfn.JsonPath.stringAt('$$.Execution.StartTime'),
    },
    '$.init',
  );

  const batched = parts.itemsPerBatch > 1;
  // The attempt is counted in the child's own data, not read from `$$.State.RetryCount`: that count
  // includes the throttling and service-error retries, in which the function never ran, so a partition
  // throttled ten times would be recorded as its tenth attempt and have spent the job's maxAttempts.
  const tryAt = batched ? '$.BatchInput.try' : '$.try';
  const attemptAt = `${tryAt}.attempt`;
  const infer = invoke(
    scope,
    STATES.infer,
    parts.inference,
    batched
      ? {
          items: sfn.JsonPath.listAt('$.Items'),
          task: sfn.JsonPath.objectAt('$.BatchInput.task'),
          attempt: sfn.JsonPath.numberAt(attemptAt),
        }
      : {
          partition: sfn.JsonPath.objectAt('$.partition'),
          task: sfn.JsonPath.objectAt('$.task'),
          attempt: sfn.JsonPath.numberAt(attemptAt),
        },
  );
  // A failed try comes back here: another try after a jittered, capped backoff while the error allows
  // one (the handler stops asking for retries once the job's maxAttempts are spent; MAX_JOB_ATTEMPTS
  // only bounds it), else the child fails with the try's own error and cause, as an uncaught error would.
  const crashes = parts.crashAttempts > 1 ? Object.keys(CRASH_ERRORS) : [];
  const giveUp = new sfn.Fail(scope, STATES.partitionFailed, {
    errorPath: sfn.JsonPath.stringAt('$.failure.Error'),
    causePath: sfn.JsonPath.stringAt('$.failure.Cause'),
  });
  const nextTry = new sfn.Pass(scope, STATES.nextTry, {
    parameters: {
      'attempt.$': `States.MathAdd(${attemptAt}, 1)`,
      // Full jitter: 1 s up to BACKOFF_SECONDS[attempt], so a thousand children do not retry in lockstep.
      'wait.$': `States.MathRandom(1, States.ArrayGetItem(States.Array(${BACKOFF_SECONDS.join(', ')}), ${attemptAt}))`,
    },
    resultPath: tryAt,
  });
  nextTry
    .next(new sfn.Wait(scope, STATES.backoff, { time: sfn.WaitTime.secondsPath(`${tryAt}.wait`) }))
    .next(infer);
  const again = new sfn.Choice(scope, STATES.tryAgain)
    .when(
      sfn.Condition.and(
        sfn.Condition.stringEquals('$.failure.Error', LAMBDA_ERRORS.retryable),
        sfn.Condition.numberLessThan(attemptAt, MAX_JOB_ATTEMPTS),
      ),
      nextTry,
    )
    .otherwise(giveUp);
  if (crashes.length) {
    again.when(
      sfn.Condition.and(
        sfn.Condition.or(...crashes.map((e) => sfn.Condition.stringEquals('$.failure.Error', e))),
        sfn.Condition.numberLessThan(attemptAt, parts.crashAttempts),
      ),
      nextTry,
    );
  }
  infer.addCatch(again, { errors: [LAMBDA_ERRORS.retryable, ...crashes], resultPath: '$.failure' });

  const map = new sfn.DistributedMap(scope, STATES.map, {
    itemReader: new ScopedJsonItemReader(
      { bucket: parts.outputBucket, key: sfn.JsonPath.stringAt('$.init.manifest.key') },
      parts.readManifest,
    ),
    ...(batched
      ? {
          itemBatcher: new sfn.ItemBatcher({
            maxItemsPerBatch: parts.itemsPerBatch,
            // aws-cdk-lib renders BatchInput verbatim (no `.$` suffixing as for ItemSelector), so a
            // JsonPath token here would reach the children as the literal string "$.init.task".
            batchInput: { 'task.$': '$.init.task', try: { attempt: 1 } },
          }),
        }
      : {
          itemSelector: {
            partition: sfn.JsonPath.objectAt('$$.Map.Item.Value'),
            task: sfn.JsonPath.objectAt('$.init.task'),
            try: { attempt: 1 },
          },
        }),
    maxConcurrencyPath: sfn.JsonPath.stringAt('$.init.maxConcurrency'),
    // A count, not the percentage: Step Functions takes only integer percentages, and the count is the
    // budget every engine applies (toleratedFailures). Failures in this run are all the job's failures:
    // partitions finished by earlier runs are not in the manifest.
    toleratedFailureCountPath: sfn.JsonPath.stringAt('$.init.toleratedFailureCount'),
    resultWriterV2: new ScopedResultWriter(
      { bucket: parts.outputBucket, prefix: sfn.JsonPath.stringAt('$.init.resultWriter.prefix') },
      parts.writeResults,
    ),
    mapExecutionType: sfn.StateMachineType.STANDARD,
    label: STATES.map,
    resultPath: '$.map',
  });
  map.itemProcessor(infer);

  const summarize = invoke(
    scope,
    STATES.summarize,
    parts.summarize,
    {
      state: sfn.JsonPath.objectAt('$'),
      executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
      executionStartTime: sfn.JsonPath.stringAt('$$.Execution.StartTime'),
    },
    '$.summary',
  );
  map.addCatch(summarize, { errors: ['States.ALL'], resultPath: '$.mapError' });
  // Summarize failing fails the execution with its own error and cause, instead of a bare Lambda
  // failure in the history. A handler that throws (a damaged record it names) has written a failed
  // summary itself; one that died where no code runs (timed out, out of memory) has not, so the same
  // function is invoked once more with the error, to write only the failed summary: the output never
  // keeps an earlier run's summary.json beside this run's predictions.
  const summarizeFailed = new sfn.Fail(scope, STATES.summarizeFailed, {
    error: 'CaiSummarizeFailed',
    causePath: sfn.JsonPath.stringAt('$.summarizeError.Cause'),
  });
  const fallback = invoke(
    scope,
    STATES.summarizeFallback,
    parts.summarize,
    {
      state: sfn.JsonPath.objectAt('$'),
      executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
      executionStartTime: sfn.JsonPath.stringAt('$$.Execution.StartTime'),
      summarizeError: sfn.JsonPath.objectAt('$.summarizeError'),
    },
    '$.fallback',
  );
  fallback.addCatch(summarizeFailed, { errors: ['States.ALL'], resultPath: '$.fallbackError' });
  fallback.next(summarizeFailed);
  const crashed = Object.keys(CRASH_ERRORS);
  summarize.addCatch(fallback, { errors: crashed, resultPath: '$.summarizeError' });
  summarize.addCatch(summarizeFailed, { errors: ['States.ALL'], resultPath: '$.summarizeError' });

  const verdict = new sfn.Choice(scope, STATES.choice)
    .when(sfn.Condition.stringEquals('$.summary.status', 'succeeded'), new sfn.Succeed(scope, STATES.done))
    .otherwise(new sfn.Fail(scope, STATES.failed, { error: 'CaiJobFailed', causePath: '$.summary.message' }));

  return init.next(map).next(summarize).next(verdict);
}
