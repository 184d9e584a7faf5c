/**
 * CDK app: `npm run synth` (offline) or `npx cdk deploy`. Settings come from CDK context, see
 * infra/config.ts. The model layer ships the model the engine resolves (BISEARCH_MODEL_DIR,
 * ../shared/models/use-lite, the cache, or a verified download of the production default).
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { resolveModelDirectory } from '../functions/adapters/model/model-resolution.js';
import { CONFIG_KEYS, parseStackConfig } from './config.js';
import { SearchStack } from './search-stack.js';

const app = new App();
const context = Object.fromEntries(
  CONFIG_KEYS.map((key) => [key, app.node.tryGetContext(key)]).filter(([, value]) => value !== undefined),
);
const config = parseStackConfig(context);
const model = await resolveModelDirectory(config.modelDir ? { modelDir: config.modelDir } : {});
new SearchStack(app, config.stackName, {
  config,
  modelDirectory: model.directory,
  description:
    'bisearch: serverless semantic search (S3 → SQS → encode, HTTP API on a memory-mapped usearch index, nightly reindex)',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
app.synth();
