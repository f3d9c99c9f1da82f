// Synthesis of CAI's stack, offline: resources, parameters, least-privilege IAM, the Distributed Map's
// fields, and a definition that asl-validator accepts.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { before, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { LAMBDA_BASE_IMAGE, synthesize, type Synthesized } from '../../src/engines/aws/app.js';
import type { LambdaBundles } from '../../src/engines/aws/bundle.js';
import { ENV } from '../../src/engines/aws/config.js';
import { CRASH_ERRORS, LAMBDA_SERVICE_ERRORS } from '../../src/engines/aws/lambda-errors.js';
import { isAllowed } from '../helpers/aws-offline/iam.js';
import {
  loadSynthesizedTemplate,
  type PolicyStatementJson,
  type SynthesizedTemplate,
} from '../helpers/aws-offline/template.js';
import { parseStackParams } from '../../src/engines/aws/params.js';
import { CaiStack, LAMBDA_RUNTIME } from '../../src/engines/aws/stack.js';
import { STATES } from '../../src/engines/aws/state-machine.js';
import { DEPLOYMENT, synthTest, testBundles } from './fixture.js';

interface AslResult {
  isValid: boolean;
  errorsText(separator?: string): string;
}
// asl-validator is CommonJS without type declarations.
const validateAsl = createRequire(import.meta.url)('asl-validator') as (definition: unknown) => AslResult;

type Json = Record<string, unknown>;
type States = Record<string, Json>;

let bundles: LambdaBundles;
let plain: Synthesized;
let batched: Synthesized;
let plainTemplate: SynthesizedTemplate;
let batchedTemplate: SynthesizedTemplate;

before(async () => {
  bundles = await testBundles();
  plain = await synthTest();
  batched = await synthTest({
    stackName: 'CaiBatched',
    itemsPerBatch: 4,
    crashAttempts: 2,
    memoryMb: 3008,
    timeoutSeconds: 120,
    ephemeralStorageMb: 2048,
    maxConcurrency: 7,
  });
  plainTemplate = await loadSynthesizedTemplate(plain.templateFile);
  batchedTemplate = await loadSynthesizedTemplate(batched.templateFile);
});

const templateOf = async (s: Synthesized) =>
  Template.fromJSON(JSON.parse(await fs.readFile(s.templateFile, 'utf8')) as Json);

const fnByHandler = (t: SynthesizedTemplate, handler: string) => {
  const f = [...t.functions.values()].find((x) => x.handler === handler);
  assert.ok(f, `a function with handler ${handler}`);
  return f;
};

const mapState = (t: SynthesizedTemplate): Json => (t.stateMachine.definition.States as States)[STATES.map];
const inferState = (t: SynthesizedTemplate): Json =>
  ((mapState(t).ItemProcessor as Json).States as States)[STATES.infer];

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

const list = (v: string | readonly string[]) => (typeof v === 'string' ? [v] : [...v]);

test('three functions on a current runtime with their own log groups, one standard state machine', async () => {
  const t = await templateOf(plain);
  t.resourceCountIs('AWS::Lambda::Function', 3);
  t.resourceCountIs('AWS::StepFunctions::StateMachine', 1);
  // One per function, one for the state machine's execution log.
  t.resourceCountIs('AWS::Logs::LogGroup', 4);
  // One role per function and one for the state machine; no bucket is created (they are the user's).
  t.resourceCountIs('AWS::IAM::Role', 4);
  t.resourceCountIs('AWS::S3::Bucket', 0);
  t.hasResource('AWS::Logs::LogGroup', {
    Properties: { RetentionInDays: 14 },
    DeletionPolicy: 'Delete',
    UpdateReplacePolicy: 'Delete',
  });
  t.hasResourceProperties('AWS::StepFunctions::StateMachine', {
    StateMachineType: 'STANDARD',
    // Failed states logged, without their inputs and outputs (job specs).
    LoggingConfiguration: { Level: 'ERROR', IncludeExecutionData: false },
  });
  // nodejs20.x was deprecated on 2026-04-30 and 22.x goes on 2027-04-30; 24.x is the current one.
  assert.equal(LAMBDA_RUNTIME.name, 'nodejs24.x');
  const fns = t.findResources('AWS::Lambda::Function');
  for (const [id, r] of Object.entries(fns)) {
    const p = (r as { Properties: Json }).Properties;
    assert.equal(p.Runtime, LAMBDA_RUNTIME.name, id);
    assert.ok(Number(/^nodejs(\d+)\.x$/.exec(String(p.Runtime))?.[1]) >= 24, `${id}: ${String(p.Runtime)}`);
    // Each function logs to its own log group of the stack.
    assert.deepEqual(Object.keys((p.LoggingConfig as { LogGroup: Json }).LogGroup), ['Ref']);
  }
  assert.deepEqual([...plainTemplate.functions.values()].map((f) => f.handler).sort(), [
    'index.handler',
    'index.initialize',
    'index.summarize',
  ]);
  // The stack's outputs are what `cai aws run` reads.
  const outputs = t.toJSON().Outputs as Record<string, { Value: unknown }>;
  assert.equal(outputs.DataUri.Value, DEPLOYMENT.data);
  assert.equal(outputs.ModelUri.Value, DEPLOYMENT.model);
  assert.equal(outputs.InferenceMemoryMb.Value, '10240');
  assert.ok(outputs.StateMachineArn);
  // The most Lambdas at once, which Initialize enforces from its environment: `cai aws run` refuses a
  // job asking more before starting an execution.
  assert.equal(outputs.MaxConcurrency.Value, '1000');
  const batchedOutputs = (await templateOf(batched)).toJSON().Outputs as Record<string, { Value: unknown }>;
  assert.equal(batchedOutputs.MaxConcurrency.Value, '7');
  for (const [template, max] of [
    [plainTemplate, '1000'],
    [batchedTemplate, '7'],
  ] as const) {
    for (const handler of ['index.initialize', 'index.handler'])
      assert.equal(fnByHandler(template, handler).environment[ENV.maxConcurrency], max);
  }
});

test('memory, timeout, /tmp and architecture flow into the functions and their environment', async () => {
  const d = fnByHandler(plainTemplate, 'index.handler');
  assert.equal(d.memoryMb, 10_240);
  assert.equal(d.timeoutSeconds, 900);
  assert.equal(d.architecture, 'x86_64');
  assert.equal(d.environment[ENV.inferenceMemoryMb], '10240');
  assert.equal(d.environment[ENV.model], DEPLOYMENT.model);
  assert.equal(d.environment.ORT_DISABLE_TELEMETRY, '1', "onnxruntime's telemetry off");

  const b = fnByHandler(batchedTemplate, 'index.handler');
  assert.equal(b.memoryMb, 3008);
  assert.equal(b.timeoutSeconds, 120);
  assert.equal(b.environment[ENV.inferenceMemoryMb], '3008');
  assert.equal(b.environment[ENV.crashAttempts], '2');
  (await templateOf(batched)).hasResourceProperties('AWS::Lambda::Function', {
    Handler: 'index.handler',
    EphemeralStorage: { Size: 2048 },
  });

  const arm = await synthTest({ architecture: 'arm64', memoryMb: 1769 }).catch((e: Error) => e);
  assert.ok(arm instanceof Error, 'x86_64 packages must not go into an arm64 stack');
  assert.match(arm.message, /built for x86_64, the stack is arm64/);
  const armStack = new CaiStack(new App(), 'CaiArm', {
    params: parseStackParams({ ...DEPLOYMENT, architecture: 'arm64', memoryMb: 1769 }),
    bundles: { ...bundles, architecture: 'arm64' },
  });
  const fns = Template.fromStack(armStack).findResources('AWS::Lambda::Function');
  assert.equal(Object.keys(fns).length, 3);
  for (const r of Object.values(fns)) {
    assert.deepEqual((r as { Properties: Json }).Properties.Architectures, ['arm64']);
  }
});

/** Every statement of every policy in the template, intrinsics resolved, with the role it belongs to. */
function allStatements(t: SynthesizedTemplate): { owner: string; s: PolicyStatementJson }[] {
  return [
    ...[...t.functions.values()].flatMap((f) => f.policy.map((s) => ({ owner: f.logicalId, s }))),
    ...t.stateMachine.policy.map((s) => ({ owner: t.stateMachine.logicalId, s })),
  ];
}

const LOG_DELIVERY_ACTIONS = new Set([
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
]);

test('IAM: nothing broader than the data, model and output prefixes; listing conditioned on them', () => {
  const data = 'arn:aws:s3:::cai-data/galaxies/*';
  const model = 'arn:aws:s3:::cai-data/models/astromae.onnx';
  const out = 'arn:aws:s3:::cai-out/runs/*';
  const statements = allStatements(plainTemplate);
  assert.ok(statements.length > 10);
  for (const { owner, s } of statements) {
    assert.equal(s.Effect, 'Allow');
    for (const a of list(s.Action)) assert.ok(!a.includes('*'), `${owner}: wildcard action ${a}`);
    // CloudWatch Logs' delivery actions take no resource ARNs: AWS documents "*" as their only
    // resource, and the state machine needs them to log. Nothing else may have "*".
    const logDelivery = list(s.Action).every((a) => LOG_DELIVERY_ACTIONS.has(a));
    for (const r of list(s.Resource))
      if (!logDelivery) assert.notEqual(r, '*', `${owner}: Resource "*" for ${String(s.Action)}`);
    const s3Actions = list(s.Action).filter((a) => a.startsWith('s3:'));
    if (!s3Actions.length) continue;
    for (const r of list(s.Resource)) {
      if (s3Actions.includes('s3:ListBucket')) {
        assert.deepEqual(s3Actions, ['s3:ListBucket'], `${owner}: listing apart from object actions`);
        assert.ok(['arn:aws:s3:::cai-data', 'arn:aws:s3:::cai-out'].includes(r), r);
        const prefixes = list(s.Condition?.StringLike?.['s3:prefix'] ?? []);
        assert.deepEqual(prefixes, [r.endsWith('cai-data') ? 'galaxies/*' : 'runs/*'], `${owner}: ${r}`);
      } else {
        const deletesSummary =
          r === 'arn:aws:s3:::cai-out/runs/*summary.json' && s3Actions.join() === 's3:DeleteObject';
        assert.ok(
          r === data || r === model || r === out || deletesSummary,
          `${owner}: ${s3Actions.join(',')} on ${r}`,
        );
        if (r === data || r === model) assert.deepEqual(s3Actions, ['s3:GetObject'], `${owner} reads only`);
      }
    }
  }

  const fn = (h: string) => fnByHandler(plainTemplate, h).policy;
  const [inference, initialize, summarize] = [
    fn('index.handler'),
    fn('index.initialize'),
    fn('index.summarize'),
  ];
  const obj = (bucket: string, key: string) => `arn:aws:s3:::${bucket}/${key}`;
  // What each function's code does is allowed...
  assert.ok(isAllowed(inference, 's3:GetObject', obj('cai-data', 'galaxies/good/1.pt')));
  assert.ok(isAllowed(inference, 's3:GetObject', obj('cai-data', 'models/astromae.onnx')));
  assert.ok(isAllowed(inference, 's3:PutObject', obj('cai-out', 'runs/job/predictions/1.jsonl')));
  assert.ok(
    isAllowed(initialize, 's3:ListBucket', 'arn:aws:s3:::cai-data', { 's3:prefix': 'galaxies/good/' }),
  );
  assert.ok(isAllowed(initialize, 's3:DeleteObject', obj('cai-out', 'runs/job/summary.json')));
  assert.ok(isAllowed(summarize, 's3:PutObject', obj('cai-out', 'runs/job/summary.json')));
  // ...and nothing next to it: a sibling prefix that merely starts the same, another model, the data
  // written to, the whole bucket listed, any deletion but the summary's.
  assert.ok(!isAllowed(inference, 's3:GetObject', obj('cai-data', 'galaxies-private/1.pt')));
  assert.ok(!isAllowed(inference, 's3:GetObject', obj('cai-data', 'models/other.onnx')));
  assert.ok(!isAllowed(inference, 's3:PutObject', obj('cai-data', 'galaxies/1.pt')));
  assert.ok(!isAllowed(inference, 's3:PutObject', obj('cai-out', 'elsewhere/1.jsonl')));
  assert.ok(!isAllowed(inference, 's3:DeleteObject', obj('cai-out', 'runs/job/predictions/1.jsonl')));
  assert.ok(!isAllowed(initialize, 's3:ListBucket', 'arn:aws:s3:::cai-data', { 's3:prefix': '' }));
  assert.ok(!isAllowed(initialize, 's3:ListBucket', 'arn:aws:s3:::cai-data'));
  assert.ok(!isAllowed(initialize, 's3:DeleteObject', obj('cai-out', 'runs/job/predictions/1.jsonl')));
  // Planning row ranges reads Parquet footers and FITS headers: the data prefix, and nothing beside it.
  assert.ok(isAllowed(initialize, 's3:GetObject', obj('cai-data', 'galaxies/good/1.parquet')));
  assert.ok(!isAllowed(initialize, 's3:GetObject', obj('cai-data', 'models/astromae.onnx')));
  assert.ok(!isAllowed(initialize, 's3:PutObject', obj('cai-data', 'galaxies/good/1.parquet')));
  assert.ok(!isAllowed(summarize, 's3:GetObject', obj('cai-data', 'galaxies/good/1.pt')));
  assert.ok(!isAllowed(summarize, 's3:ListBucket', 'arn:aws:s3:::cai-data', { 's3:prefix': 'galaxies/' }));
});

test('the state machine may invoke only its own functions and start only its own Map children', () => {
  const sm = plainTemplate.stateMachine;
  const own = new Set([...plainTemplate.functions.keys()]);
  const actions = new Set<string>();
  for (const s of sm.policy) {
    for (const a of list(s.Action)) actions.add(a);
    if (list(s.Action).includes('lambda:InvokeFunction')) {
      for (const r of list(s.Resource)) assert.ok(own.has(r.replace(/:\*$/, '')), `invokes ${r}`);
    }
    if (list(s.Action).some((a) => a.startsWith('states:'))) {
      for (const r of list(s.Resource)) {
        assert.ok(
          r === sm.arn || r.startsWith(`${sm.arn.replace(':stateMachine:', ':execution:')}`),
          `states on ${r}`,
        );
      }
    }
  }
  assert.deepEqual([...actions].filter((a) => !a.startsWith('s3:') && !LOG_DELIVERY_ACTIONS.has(a)).sort(), [
    'lambda:InvokeFunction',
    'states:DescribeExecution',
    'states:RedriveExecution',
    'states:StartExecution',
    'states:StopExecution',
  ]);
  for (const arn of own) assert.ok(isAllowed(sm.policy, 'lambda:InvokeFunction', arn), arn);
  assert.ok(
    !isAllowed(sm.policy, 'lambda:InvokeFunction', 'arn:aws:lambda:us-east-1:123456789012:function:Other'),
  );
});

test('the Distributed Map: manifest reader, concurrency and failure budget from Initialize, retries, results to S3', () => {
  const map = mapState(plainTemplate);
  assert.equal(map.Type, 'Map');
  assert.deepEqual((map.ItemProcessor as Json).ProcessorConfig, {
    Mode: 'DISTRIBUTED',
    ExecutionType: 'STANDARD',
  });
  assert.deepEqual(map.ItemReader, {
    Resource: 'arn:aws:states:::s3:getObject',
    ReaderConfig: { InputType: 'JSON' },
    Parameters: { Bucket: 'cai-out', 'Key.$': '$.init.manifest.key' },
  });
  assert.equal(map.MaxConcurrencyPath, '$.init.maxConcurrency');
  // A count: Step Functions' percentage path takes integers only (a 2.5% budget would fail the Map).
  assert.equal(map.ToleratedFailureCountPath, '$.init.toleratedFailureCount');
  assert.equal(map.ToleratedFailurePercentagePath, undefined);
  // resultWriterV2 survived synthesis (DESIGN.md pitfall 5).
  assert.deepEqual(map.ResultWriter, {
    Resource: 'arn:aws:states:::s3:putObject',
    Parameters: { Bucket: 'cai-out', 'Prefix.$': '$.init.resultWriter.prefix' },
  });
  assert.equal(map.ItemBatcher, undefined, 'no ItemBatcher with one partition per invocation');
  assert.deepEqual(map.ItemSelector, {
    'partition.$': '$$.Map.Item.Value',
    'task.$': '$.init.task',
    try: { attempt: 1 },
  });
  assert.deepEqual(map.Catch, [
    { ErrorEquals: ['States.ALL'], ResultPath: '$.mapError', Next: STATES.summarize },
  ]);
  // Summarize killed where no handler code runs goes to its fallback (which writes the failed summary);
  // any other error has written it already and fails the execution.
  const top = plainTemplate.stateMachine.definition.States as States;
  assert.deepEqual(top[STATES.summarize].Catch, [
    {
      ErrorEquals: Object.keys(CRASH_ERRORS),
      ResultPath: '$.summarizeError',
      Next: STATES.summarizeFallback,
    },
    { ErrorEquals: ['States.ALL'], ResultPath: '$.summarizeError', Next: STATES.summarizeFailed },
  ]);
  assert.equal(top[STATES.summarizeFallback].Next, STATES.summarizeFailed);
  assert.equal((top[STATES.summarizeFallback].Parameters as Json)['summarizeError.$'], '$.summarizeError');

  const infer = inferState(plainTemplate);
  assert.equal(infer.Resource, fnByHandler(plainTemplate, 'index.handler').arn);
  assert.deepEqual(infer.Parameters, {
    'partition.$': '$.partition',
    'task.$': '$.task',
    'attempt.$': '$.try.attempt',
  });
  const retries = infer.Retry as Json[];
  // Throttling has a Retry of its own, first, long enough to ride out an account concurrency of 10
  // under a MaxConcurrency of 1,000 (about 100 minutes of capped, jittered waits).
  const throttled = retries[0];
  assert.deepEqual(throttled.ErrorEquals, ['Lambda.TooManyRequestsException']);
  assert.ok(Number(throttled.MaxAttempts) >= 100 && Number(throttled.MaxDelaySeconds) <= 60);
  assert.equal(throttled.JitterStrategy, 'FULL');
  const service = retries.find((r) => (r.ErrorEquals as string[]).includes('Lambda.ServiceException'));
  assert.ok(service, 'a Retry for Lambda faults');
  assert.deepEqual(service.ErrorEquals, [...LAMBDA_SERVICE_ERRORS]);
  assert.ok(Number(service.BackoffRate) > 1 && Number(service.MaxAttempts) >= 3);
  assert.equal(service.JitterStrategy, 'FULL');
  assert.ok(Number(service.MaxDelaySeconds) > 0);
  // The Retry is for failures in which the function never ran: tries are counted by a Catch loop.
  assert.ok(!JSON.stringify(retries).includes('CaiRetryableError'));
  assert.ok(!JSON.stringify(retries).includes('Sandbox.Timedout'));
  const [caught] = infer.Catch as Json[];
  assert.equal(caught.ResultPath, '$.failure');
  // Unhandled errors (timeouts, out of memory) may arrive as Lambda.Unknown; no Task sets TimeoutSeconds,
  // so States.Timeout cannot occur and is not listed.
  assert.deepEqual(caught.ErrorEquals, ['CaiRetryableError', ...Object.keys(CRASH_ERRORS)]);
  assert.ok(!JSON.stringify(infer).includes('States.Timeout'));
  const child = (mapState(plainTemplate).ItemProcessor as Json).States as States;
  const choices = child[caught.Next as string].Choices as Json[];
  assert.deepEqual(
    choices.map((c) => (c.And as Json[])[1]),
    [
      { Variable: '$.try.attempt', NumericLessThan: 20 },
      { Variable: '$.try.attempt', NumericLessThan: 3 },
    ],
    'retryable errors up to the schema limit (the handler applies maxAttempts), crashes up to crashAttempts 3',
  );
  assert.deepEqual(child[STATES.partitionFailed], {
    Type: 'Fail',
    ErrorPath: '$.failure.Error',
    CausePath: '$.failure.Cause',
  });
  // Initialize and Summarize (and its fallback) ride out throttling and faults the same way.
  const states = plainTemplate.stateMachine.definition.States as States;
  for (const name of [STATES.initialize, STATES.summarize, STATES.summarizeFallback]) {
    for (const error of ['Lambda.ServiceException', 'Lambda.TooManyRequestsException'])
      assert.ok((states[name].Retry as Json[]).some((r) => (r.ErrorEquals as string[]).includes(error)));
  }
});

test('with itemsPerBatch > 1 an ItemBatcher whose BatchInput is a JSONPath (task.$), not a literal', () => {
  const map = mapState(batchedTemplate);
  assert.deepEqual(map.ItemBatcher, {
    MaxItemsPerBatch: 4,
    BatchInput: { 'task.$': '$.init.task', try: { attempt: 1 } },
  });
  assert.equal(map.ItemSelector, undefined);
  assert.deepEqual(inferState(batchedTemplate).Parameters, {
    'items.$': '$.Items',
    'task.$': '$.BatchInput.task',
    'attempt.$': '$.BatchInput.try.attempt',
  });
  const child = (map.ItemProcessor as Json).States as States;
  assert.deepEqual(child[STATES.nextTry].ResultPath, '$.BatchInput.try');
  assert.deepEqual(
    (child[STATES.tryAgain].Choices as Json[]).map((c) => (c.And as Json[])[1]),
    [
      { Variable: '$.BatchInput.try.attempt', NumericLessThan: 20 },
      { Variable: '$.BatchInput.try.attempt', NumericLessThan: 2 },
    ],
    'crashAttempts 2',
  );
  // With one crash attempt there is no crash retry at all.
  const once = new CaiStack(new App(), 'CaiOnce', {
    params: parseStackParams({ ...DEPLOYMENT, crashAttempts: 1 }),
    bundles,
  });
  const text = JSON.stringify(Template.fromStack(once).toJSON());
  assert.ok(text.includes('CaiRetryableError'));
  assert.equal(
    text.split('Sandbox.Timedout').length - 1,
    1,
    "crash errors only in Summarize's Catch (to its fallback), none in the partitions' Catch",
  );
});

test('the ResultWriter is kept even in an app that does not set the resultWriterV2 flag', () => {
  const app = new App(); // no context: the stack itself must turn the flag on
  const stack = new CaiStack(app, 'CaiBare', { params: parseStackParams(DEPLOYMENT), bundles });
  const t = Template.fromStack(stack);
  t.hasResourceProperties('AWS::StepFunctions::StateMachine', {
    DefinitionString: { 'Fn::Join': ['', Match.arrayWith([Match.stringLikeRegexp('"ResultWriter":\\{')])] },
  });
});

test('the synthesized definitions pass asl-validator, which does reject a broken one', () => {
  for (const t of [plainTemplate, batchedTemplate]) {
    const result = validateAsl(structuredClone(t.stateMachine.definition));
    assert.ok(result.isValid, result.errorsText('\n'));
  }
  const broken = structuredClone(plainTemplate.stateMachine.definition) as { States: States };
  broken.States[STATES.initialize].Next = 'Nowhere';
  assert.equal(validateAsl(broken).isValid, false);
});

test('--packaging image: a container image function built at deploy, synthesized without Docker', async (t) => {
  const dir = await fs.mkdtemp(path.join(path.dirname(plain.assemblyDir), 'image-'));
  // Any attempt to run Docker during synthesis would fail loudly.
  const saved = { CDK_DOCKER: process.env.CDK_DOCKER, PATH: process.env.PATH };
  process.env.CDK_DOCKER = '/nonexistent/docker';
  process.env.PATH = '/nonexistent';
  t.after(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const s = await synthesize({ ...DEPLOYMENT, packaging: 'image', memoryMb: 4096 }, dir, { bundles });
  const template = await templateOf(s);
  template.resourceCountIs('AWS::Lambda::Function', 3);
  template.hasResourceProperties('AWS::Lambda::Function', {
    PackageType: 'Image',
    Code: { ImageUri: Match.anyValue() },
    ImageConfig: { Command: ['index.handler'] },
    MemorySize: 4096,
    Architectures: ['x86_64'],
    Runtime: Match.absent(),
    Handler: Match.absent(),
  });
  // Initialize and Summarize stay small zips.
  assert.equal(
    Object.keys(
      template.findResources('AWS::Lambda::Function', { Properties: { Runtime: LAMBDA_RUNTIME.name } }),
    ).length,
    2,
  );
  const assets = JSON.parse(
    await fs.readFile(path.join(s.assemblyDir, `${s.params.stackName}.assets.json`), 'utf8'),
  ) as {
    dockerImages: Record<string, { source: { directory: string; platform?: string } }>;
  };
  const images = Object.values(assets.dockerImages);
  assert.equal(images.length, 1);
  assert.equal(images[0].source.platform, 'linux/amd64');
  const context = path.join(s.assemblyDir, images[0].source.directory);
  const dockerfile = await fs.readFile(path.join(context, 'Dockerfile'), 'utf8');
  assert.equal(LAMBDA_BASE_IMAGE, 'public.ecr.aws/lambda/nodejs:24', 'the same Node.js as the zip runtime');
  assert.match(dockerfile, /^FROM public\.ecr\.aws\/lambda\/nodejs:24$/m);
  assert.match(dockerfile, /^CMD \["index\.handler"\]$/m);
  // The image gets exactly the files of the zip package (which bundle.test.ts runs), nothing else.
  assert.match(dockerfile, /^COPY \. \$\{LAMBDA_TASK_ROOT\}\/$/m);
  assert.deepEqual(
    (await fs.readFile(path.join(context, '.dockerignore'), 'utf8')).split('\n').filter(Boolean).sort(),
    ['.dockerignore', 'Dockerfile'],
  );
  const files = await filesUnder(bundles.inference.dir);
  assert.ok(files.includes('index.mjs') && files.includes('onnxruntime/libonnxruntime.so.1'));
  assert.deepEqual(await filesUnder(context), [...files, '.dockerignore', 'Dockerfile'].sort());
  for (const f of files) {
    assert.deepEqual(
      await fs.readFile(path.join(context, f)),
      await fs.readFile(path.join(bundles.inference.dir, f)),
      f,
    );
  }
  // The offline executor finds the image function's handler through its command.
  const loaded = await loadSynthesizedTemplate(s.templateFile);
  const image = [...loaded.functions.values()].find((f) => f.runtime === 'image');
  assert.equal(image?.handler, 'index.handler');
});
