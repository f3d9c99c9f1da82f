// cdk-nag's AwsSolutions and Serverless rule packs, run offline on the synthesized stack: it passes, with
// each acknowledged finding justified in src/engines/aws/nag-acknowledgements.ts, and a wildcard
// added anywhere else still fails the check.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { App, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { parseStackParams, type StackParamsInput } from '../../src/engines/aws/params.js';
import { CaiStack } from '../../src/engines/aws/stack.js';
import { DEPLOYMENT, testBundles } from './fixture.js';

async function nag(params: Partial<StackParamsInput>, change?: (stack: CaiStack) => void): Promise<string> {
  const outdir = await mkdtemp(path.join(os.tmpdir(), 'cai-nag-'));
  try {
    const app = new App({ outdir });
    const stack = new CaiStack(app, 'Cai', {
      params: parseStackParams({ ...DEPLOYMENT, ...params }),
      bundles: await testBundles(),
    });
    change?.(stack);
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
    try {
      app.synth();
      return '';
    } catch (err) {
      return String(err);
    }
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}

test('the stack passes the AwsSolutions and Serverless packs (prefixes, whole-bucket output, batches)', async () => {
  assert.equal(await nag({}), '');
  assert.equal(await nag({ output: 's3://cai-out', wholeBucketOutput: true, itemsPerBatch: 4 }), '');
});

test('a wildcard the stack does not justify fails the check', async () => {
  const failed = await nag({}, (stack) => {
    (stack.functions.inference.role as iam.Role).addToPolicy(
      new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['arn:aws:s3:::cai-data/*'] }),
    );
  });
  assert.match(failed, /Validation failed/);
});
