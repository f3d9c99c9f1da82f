import { CfnOutput, Duration, RemovalPolicy, Size, Stack, type StackProps } from 'aws-cdk-lib';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { STEPFUNCTIONS_USE_DISTRIBUTED_MAP_RESULT_WRITER_V2 } from 'aws-cdk-lib/cx-api';
import type { Construct } from 'constructs';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { LambdaBundles } from './bundle.js';
import { handlerEnvironment } from './config.js';
import { acknowledgeNagFindings } from './nag-acknowledgements.js';
import { bucketAndPrefix, type StackParams } from './params.js';
import { STACK_OUTPUTS } from './stack-outputs.js';
import { buildDefinition } from './state-machine.js';

/** The Lambda runtime of every function: a current one (nodejs20.x is deprecated). */
export const LAMBDA_RUNTIME = lambda.Runtime.NODEJS_24_X;

/** What the stack is made from. */
export interface CaiStackProps extends StackProps {
  readonly params: StackParams;
  /** The Lambda packages, built by `buildLambdaBundles`. */
  readonly bundles: LambdaBundles;
  /** With `packaging: 'image'`: a folder with a Dockerfile and the inference package, built at deploy. */
  readonly imageContext?: string;
}

const objectsUnder = (bucket: s3.IBucket, prefix: string) =>
  bucket.arnForObjects(prefix ? `${prefix}/*` : '*');

// Listing limited to a prefix: the condition keeps a function from even seeing other keys' names.
function listUnder(bucket: s3.IBucket, prefix: string): iam.PolicyStatement {
  return new iam.PolicyStatement({
    actions: ['s3:ListBucket'],
    resources: [bucket.bucketArn],
    ...(prefix ? { conditions: { StringLike: { 's3:prefix': [`${prefix}/*`] } } } : {}),
  });
}

/**
 * CAI on AWS as infrastructure as code: three functions (Initialize, Inference, Summarize) with roles
 * that read only the data prefix and the model and write only the output prefix, their log groups
 * (deleted with the stack), and the state machine (Initialize -> Distributed Map -> Summarize) whose role
 * may invoke only these functions and touch only the output prefix.
 *
 * @example new CaiStack(app, 'Cai', { params, bundles });
 */
export class CaiStack extends Stack {
  readonly stateMachine: sfn.StateMachine;
  readonly functions: {
    readonly initialize: lambda.IFunction;
    readonly inference: lambda.IFunction;
    readonly summarize: lambda.IFunction;
  };

  constructor(scope: Construct, id: string, props: CaiStackProps) {
    super(scope, id, props);
    // Without it the Map's ResultWriter is silently dropped from the definition (DESIGN.md pitfall 5).
    this.node.setContext(STEPFUNCTIONS_USE_DISTRIBUTED_MAP_RESULT_WRITER_V2, true);
    const { params, bundles } = props;
    if (params.packaging === 'image' && !props.imageContext) {
      throw new CaiError(
        ErrorCodes.option,
        'packaging',
        '"image" needs the folder with the Dockerfile (imageContext); synthesize() makes it',
      );
    }
    const data = bucketAndPrefix(params.data);
    const out = bucketAndPrefix(params.output);
    const model = bucketAndPrefix(params.model);
    const dataBucket = s3.Bucket.fromBucketName(this, 'DataBucket', data.bucket);
    const outputBucket =
      out.bucket === data.bucket ? dataBucket : s3.Bucket.fromBucketName(this, 'OutputBucket', out.bucket);
    const modelBucket = [data.bucket, out.bucket].includes(model.bucket)
      ? model.bucket === data.bucket
        ? dataBucket
        : outputBucket
      : s3.Bucket.fromBucketName(this, 'ModelBucket', model.bucket);

    const readOutput = new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: [objectsUnder(outputBucket, out.prefix)],
    });
    const writeOutput = new iam.PolicyStatement({
      actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
      resources: [objectsUnder(outputBucket, out.prefix)],
    });
    const readData = new iam.PolicyStatement({
      actions: ['s3:GetObject'],
      resources: [objectsUnder(dataBucket, data.prefix)],
    });
    const environment = handlerEnvironment(params);
    const architecture =
      params.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64;

    // Every log group of the stack: two weeks of logs, deleted with the stack.
    const logGroup = (id: string) =>
      new logs.LogGroup(this, id, {
        retention: logs.RetentionDays.TWO_WEEKS,
        removalPolicy: RemovalPolicy.DESTROY,
      });

    const makeFunction = (
      name: string,
      statements: iam.PolicyStatement[],
      settings: Omit<
        lambda.FunctionProps,
        'role' | 'logGroup' | 'environment' | 'runtime' | 'handler' | 'code'
      > & {
        handler: string;
        code: lambda.Code;
      },
      image?: lambda.DockerImageCode,
    ): lambda.Function => {
      const functionLogs = logGroup(`${name}Logs`);
      const role = new iam.Role(this, `${name}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `CAI ${name}: the job's prefixes and its own log group, nothing else`,
      });
      role.addToPolicy(
        new iam.PolicyStatement({
          actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
          resources: [functionLogs.logGroupArn],
        }),
      );
      for (const s of statements) role.addToPolicy(s);
      const common = { role, logGroup: functionLogs, environment, description: `CAI ${name}` };
      if (image) {
        const { handler: _h, code: _c, ...rest } = settings;
        return new lambda.DockerImageFunction(this, `${name}Function`, { ...rest, ...common, code: image });
      }
      return new lambda.Function(this, `${name}Function`, {
        ...settings,
        ...common,
        runtime: LAMBDA_RUNTIME,
      });
    };

    const controlCode = lambda.Code.fromAsset(bundles.control.zip);
    const initialize = makeFunction(
      'Initialize',
      [
        listUnder(dataBucket, data.prefix),
        // Planning row ranges (Parquet with partitionItems/partitionBytes, FITS cutout files) reads
        // footers and headers of the data.
        readData,
        listUnder(outputBucket, out.prefix),
        readOutput,
        writeOutput,
        new iam.PolicyStatement({
          actions: ['s3:DeleteObject'],
          resources: [outputBucket.arnForObjects(`${out.prefix ? `${out.prefix}/` : ''}*summary.json`)],
        }),
      ],
      {
        handler: 'index.initialize',
        code: controlCode,
        memorySize: 1024,
        timeout: Duration.minutes(5),
        architecture,
      },
    );
    const inference = makeFunction(
      'Inference',
      [
        readData,
        new iam.PolicyStatement({
          actions: ['s3:GetObject'],
          resources: [modelBucket.arnForObjects(model.prefix)],
        }),
        listUnder(outputBucket, out.prefix),
        readOutput,
        writeOutput,
      ],
      {
        handler: 'index.handler',
        code: lambda.Code.fromAsset(bundles.inference.zip),
        memorySize: params.memoryMb,
        timeout: Duration.seconds(params.timeoutSeconds),
        ephemeralStorageSize: Size.mebibytes(params.ephemeralStorageMb),
        architecture,
      },
      props.imageContext && params.packaging === 'image'
        ? lambda.DockerImageCode.fromImageAsset(props.imageContext, {
            platform: params.architecture === 'arm64' ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64,
            // Also the Dockerfile's CMD; in the template it tells the offline executor which handler runs.
            cmd: ['index.handler'],
          })
        : undefined,
    );
    const summarize = makeFunction(
      'Summarize',
      [listUnder(outputBucket, out.prefix), readOutput, writeOutput],
      {
        handler: 'index.summarize',
        code: controlCode,
        memorySize: 2048,
        timeout: Duration.minutes(15),
        architecture,
      },
    );
    this.functions = { initialize, inference, summarize };

    const mapObjects = objectsUnder(outputBucket, out.prefix);
    const definition = buildDefinition(this, {
      initialize,
      inference,
      summarize,
      outputBucket,
      readManifest: [new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: [mapObjects] })],
      writeResults: [
        new iam.PolicyStatement({
          actions: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
          resources: [mapObjects],
        }),
      ],
      itemsPerBatch: params.itemsPerBatch,
      crashAttempts: params.crashAttempts,
    });
    // Failed states and executions go to CloudWatch Logs (ERROR level, without the states' inputs and
    // outputs, which hold job specs): why a Map run stopped is there without opening the console's
    // execution history. Log delivery's actions take no resource ARNs, so CDK grants them on "*".
    this.stateMachine = new sfn.StateMachine(this, 'Jobs', {
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: 'CAI: Initialize -> Distributed Map of inference Lambdas -> Summarize',
      logs: { destination: logGroup('JobsLogs'), level: sfn.LogLevel.ERROR, includeExecutionData: false },
    });

    acknowledgeNagFindings({
      stack: this,
      functions: [initialize, inference, summarize],
      stateMachine: this.stateMachine,
      data,
      output: out,
    });

    new CfnOutput(this, STACK_OUTPUTS.stateMachineArn, { value: this.stateMachine.stateMachineArn });
    new CfnOutput(this, STACK_OUTPUTS.data, { value: params.data });
    new CfnOutput(this, STACK_OUTPUTS.output, { value: params.output });
    new CfnOutput(this, STACK_OUTPUTS.model, { value: params.model });
    new CfnOutput(this, STACK_OUTPUTS.memoryMb, { value: String(params.memoryMb) });
    new CfnOutput(this, STACK_OUTPUTS.maxConcurrency, { value: String(params.maxConcurrency) });
  }
}
