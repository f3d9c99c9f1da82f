// `cai aws` through the real CLI in a child process: synth needs no account, and without credentials or
// a deployed stack every command says what to run. No request leaves this machine: the environment has
// no credentials, no profiles and no instance metadata, and AWS endpoints point at a loopback fake.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runCli } from '../helpers/s3-cli.js';
import { DEPLOYMENT } from './fixture.js';

let home: string;
let baseEnv: Record<string, string>;

before(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'cai-aws-cli-'));
  const empty = path.join(home, 'empty');
  await fs.writeFile(empty, '');
  // Built from nothing, so no AWS_* variable of this machine leaks in.
  baseEnv = {
    PATH: path.dirname(process.execPath),
    HOME: home,
    CI: 'true',
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: empty,
    AWS_SHARED_CREDENTIALS_FILE: empty,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
});
after(async () => {
  if (home) await fs.rm(home, { recursive: true, force: true });
});

// Asynchronous, so that the fake AWS endpoint in this process can answer meanwhile.
async function cai(args: string[], env: Record<string, string> = {}) {
  const r = await runCli(args, { env: { ...baseEnv, ...env }, cwd: home });
  return { ...r, seconds: r.ms / 1000 };
}

const stackFlags = ['--data', DEPLOYMENT.data, '--output', DEPLOYMENT.output, '--model', DEPLOYMENT.model];

test('cai aws synth writes the template and packages with no account, no Docker on PATH', async () => {
  const out = path.join(home, 'synth');
  const params = path.join(home, 'params.json');
  await fs.writeFile(params, JSON.stringify({ ...DEPLOYMENT, memoryMb: 2048, stackName: 'CaiFromFile' }));
  const r = await cai(['aws', 'synth', '--out', out, '--params', params, '--memory', '3008']);
  assert.equal(r.code, 0, r.stderr);
  const templateFile = path.join(out, 'assembly', 'CaiFromFile.template.json');
  assert.ok(r.stdout.includes(templateFile), r.stdout);
  assert.match(r.stdout, /inference package \(x86_64\): [\d.]+ MiB zipped, [\d.]+ MiB unzipped/);
  const template = JSON.parse(await fs.readFile(templateFile, 'utf8')) as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
    Outputs: Record<string, { Value: unknown }>;
  };
  const fns = Object.values(template.Resources).filter((x) => x.Type === 'AWS::Lambda::Function');
  assert.equal(fns.length, 3);
  // The flag wins over the file.
  assert.equal(fns.find((f) => f.Properties.Handler === 'index.handler')?.Properties.MemorySize, 3008);
  assert.equal(template.Outputs.DataUri.Value, DEPLOYMENT.data);
  const assets = (await fs.readdir(path.join(out, 'assembly'))).filter((f) => /^asset\..*\.zip$/.test(f));
  assert.equal(assets.length, 2, 'the control and inference zips');
});

test('cai aws synth with a missing or bad parameter is a usage error naming it', async () => {
  const missing = await cai(['aws', 'synth', '--out', path.join(home, 'bad'), '--data', DEPLOYMENT.data]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /"output" is required/);
  assert.match(missing.stderr, /"model" is required/);
  const arch = await cai(['aws', 'synth', ...stackFlags, '--architecture', 'sparc']);
  assert.equal(arch.code, 2);
  assert.match(arch.stderr, /Allowed choices are x86_64, arm64/);
});

test('without a region or credentials, run, status, deploy, destroy and bootstrap say what to do, quickly', async () => {
  const noRegion = await cai(['aws', 'run']);
  assert.equal(noRegion.code, 2);
  assert.match(noRegion.stderr, /AWS region: not set; pass --region or set AWS_REGION/);

  const region = { AWS_REGION: 'eu-west-1' };
  const deployOut = path.join(home, 'deploy-out');
  const commands = [
    ['aws', 'run'],
    ['aws', 'status', 'arn:aws:states:eu-west-1:123456789012:execution:Cai:x'],
    ['aws', 'deploy', ...stackFlags, '--out', deployOut],
    ['aws', 'destroy'],
    ['aws', 'bootstrap'],
  ];
  for (const args of commands) {
    const r = await cai(args, region);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /AWS credentials: none found; run `aws configure`/, args.join(' '));
    assert.ok(r.seconds < 20, `${args.join(' ')} took ${r.seconds} s`);
  }
  // deploy stopped before building anything.
  await assert.rejects(fs.stat(deployOut));
  // The region of an execution comes from its ARN.
  const status = await cai(['aws', 'status', 'arn:aws:states:eu-west-1:123456789012:execution:Cai:x']);
  assert.match(status.stderr, /AWS credentials: none found/);
});

/** A loopback stand-in for CloudFormation (query protocol) and Step Functions (JSON protocol). */
async function fakeAws(): Promise<{
  env: Record<string, string>;
  requests: string[];
  close(): Promise<void>;
}> {
  const requests: string[] = [];
  const deleted = new Set<string>();
  const body = async (req: IncomingMessage) => {
    let text = '';
    for await (const chunk of req) text += (chunk as Buffer).toString();
    return text;
  };
  const server: Server = createServer((req, res) => {
    void body(req).then((text) => {
      const target = req.headers['x-amz-target'];
      if (typeof target === 'string') {
        requests.push(target);
        const { executionArn } = JSON.parse(text) as { executionArn?: string };
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(
          JSON.stringify({
            __type: 'com.amazonaws.swf.service.v2.model#ExecutionDoesNotExist',
            message: `Execution Does Not Exist: '${executionArn}'`,
          }),
        );
        return;
      }
      const form = new URLSearchParams(text);
      const stack = form.get('StackName') ?? '';
      const action = form.get('Action');
      requests.push(`${action} ${stack}`);
      const ns = 'http://cloudformation.amazonaws.com/doc/2010-05-15/';
      if (action === 'DeleteStack') {
        deleted.add(stack);
        res.writeHead(200, { 'content-type': 'text/xml' });
        res.end(
          `<DeleteStackResponse xmlns="${ns}"><ResponseMetadata><RequestId>r3</RequestId></ResponseMetadata></DeleteStackResponse>`,
        );
        return;
      }
      // NotCai exists but was not made by `cai aws deploy`; OldCai was (by a CAI that did not yet output
      // MaxConcurrency), until it is deleted; NewCai was, with a maximum of 4 Lambdas at once.
      const byCai = [
        ['StateMachineArn', `arn:aws:states:eu-west-1:123456789012:stateMachine:${stack}`],
        ['DataUri', DEPLOYMENT.data],
        ['OutputUri', DEPLOYMENT.output],
        ['ModelUri', DEPLOYMENT.model],
        ['InferenceMemoryMb', '10240'],
      ];
      const outputs =
        stack === 'NotCai'
          ? [['Other', 'x']]
          : stack === 'OldCai' && !deleted.has(stack)
            ? byCai
            : stack === 'NewCai'
              ? [...byCai, ['MaxConcurrency', '4']]
              : undefined;
      res.writeHead(outputs ? 200 : 400, { 'content-type': 'text/xml' });
      const members = (outputs ?? [])
        .map(([k, v]) => `<member><OutputKey>${k}</OutputKey><OutputValue>${v}</OutputValue></member>`)
        .join('');
      res.end(
        outputs
          ? `<DescribeStacksResponse xmlns="${ns}"><DescribeStacksResult><Stacks><member><StackName>${stack}</StackName><StackId>arn:aws:cloudformation:eu-west-1:123456789012:stack/${stack}/1</StackId><StackStatus>CREATE_COMPLETE</StackStatus><CreationTime>2026-01-01T00:00:00Z</CreationTime><Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult><ResponseMetadata><RequestId>r1</RequestId></ResponseMetadata></DescribeStacksResponse>`
          : `<ErrorResponse xmlns="${ns}"><Error><Type>Sender</Type><Code>ValidationError</Code><Message>Stack with id ${stack} does not exist</Message></Error><RequestId>r2</RequestId></ErrorResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    // Credentials (fake) and a region, with the SDK's CloudFormation and Step Functions sent here.
    env: {
      AWS_REGION: 'eu-west-1',
      AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
      AWS_SECRET_ACCESS_KEY: 'not-a-secret',
      AWS_ENDPOINT_URL_CLOUDFORMATION: endpoint,
      AWS_ENDPOINT_URL_SFN: endpoint,
    },
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

test('with credentials but no deployed stack, run and status name the command to run', async () => {
  // Setup errors, found before any work: exit 2 (1 is only for a job whose error budget is spent).
  const aws = await fakeAws();
  try {
    const { env } = aws;
    const job = path.join(home, 'job.json');
    await fs.writeFile(job, JSON.stringify({ output: `${DEPLOYMENT.output}/run1`, batchSize: 64 }));
    const run = await cai(['aws', 'run', job], env);
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /stack Cai: not deployed in eu-west-1; run `cai aws deploy --data s3:\/\/\.\.\./,
    );
    assert.deepEqual(aws.requests, ['DescribeStacks Cai']);

    const other = await cai(['aws', 'run', job, '--stack-name', 'Mine'], env);
    assert.match(other.stderr, /stack Mine: not deployed in eu-west-1/);

    const foreign = await cai(['aws', 'run', job, '--stack-name', 'NotCai'], env);
    assert.equal(foreign.code, 2);
    assert.match(
      foreign.stderr,
      /stack NotCai: has no output StateMachineArn; it was not deployed by `cai aws deploy`/,
    );

    // The stack's MaxConcurrency output, read through CloudFormation: more is refused before anything.
    const over = await cai(['aws', 'run', job, '--stack-name', 'NewCai', '--concurrency', '5'], env);
    assert.equal(over.code, 2, over.stderr);
    assert.match(
      over.stderr,
      /concurrency: the job asks for 5 Lambdas at once, above the stack's maximum of 4/,
    );
    assert.ok(!aws.requests.some((r) => r.startsWith('AWSStepFunctions.Start')), aws.requests.join(', '));

    const arn = 'arn:aws:states:eu-west-1:123456789012:execution:Cai:gone';
    const status = await cai(['aws', 'status', arn], env);
    assert.equal(status.code, 2, status.stderr);
    assert.match(
      status.stderr,
      /Execution Does Not Exist: 'arn:aws:states:eu-west-1:123456789012:execution:Cai:gone'/,
    );
    assert.match(status.stderr, /pass the execution ARN that `cai aws run` printed/);
    assert.ok(aws.requests.includes('AWSStepFunctions.DescribeExecution'), aws.requests.join(', '));
  } finally {
    await aws.close();
  }
});

test('cai aws destroy deletes a stack cai aws deploy made through CloudFormation, and no other', async () => {
  const aws = await fakeAws();
  try {
    const { env } = aws;
    const foreign = await cai(['aws', 'destroy', '--stack-name', 'NotCai'], env);
    assert.equal(foreign.code, 2, foreign.stderr);
    assert.match(foreign.stderr, /stack NotCai: has no output StateMachineArn/);
    const missing = await cai(['aws', 'destroy', '--stack-name', 'Gone'], env);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /stack Gone: not deployed in eu-west-1/);
    assert.ok(!aws.requests.some((r) => r.startsWith('DeleteStack')), aws.requests.join(', '));

    const ok = await cai(['aws', 'destroy', '--stack-name', 'OldCai'], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /deleted OldCai/);
    // Deleted, then waited for until CloudFormation no longer knows it; nothing was synthesized.
    assert.deepEqual(aws.requests.slice(-3), [
      'DescribeStacks OldCai',
      'DeleteStack OldCai',
      'DescribeStacks OldCai',
    ]);
    assert.ok(ok.seconds < 20, `took ${ok.seconds} s`);
  } finally {
    await aws.close();
  }
});
