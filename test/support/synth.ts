import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { parseStackConfig } from '../../infra/config.js';
import type { CloudFormationTemplate } from '../../infra/local/state-machine-definition.js';
import { SearchStack } from '../../infra/search-stack.js';
import { USE_LITE_DIR } from './shared-fixtures.js';

/** Raw CloudFormation JSON, inspected by assertions rather than types. */
// biome-ignore lint/suspicious/noExplicitAny: raw template JSON is checked by assertions
type RawJson = any;

export interface SynthesizedStack {
  readonly stack: SearchStack;
  readonly template: Template;
  readonly json: CloudFormationTemplate & {
    Resources: Record<string, { Type: string; Properties?: RawJson; Metadata?: RawJson }>;
  };
  readonly outdir: string;
}

/**
 * Synthesize the bisearch stack as `cdk synth` would (same config parsing, layers built for real,
 * cdk-nag AwsSolutions checks on). Lambda bundling is skipped unless `bundle` is set, to keep
 * most tests fast; the template is the same apart from asset hashes.
 */
export function synthesizeStack(
  context: Record<string, unknown> = {},
  options: { bundle?: boolean; nag?: boolean } = {},
): SynthesizedStack {
  const outdir = mkdtempSync(join(tmpdir(), 'bisearch-cdk-'));
  const app = new App({
    outdir,
    context: {
      // What the CDK CLI sets: resource paths and asset locations in the template metadata.
      'aws:cdk:enable-path-metadata': true,
      'aws:cdk:enable-asset-metadata': true,
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
    },
  });
  const stack = new SearchStack(app, 'Test', {
    config: parseStackConfig(context),
    modelDirectory: USE_LITE_DIR,
    removalPolicy: RemovalPolicy.RETAIN,
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  if (options.nag ?? true) Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const assembly = app.synth();
  const json = assembly.getStackByName(stack.stackName).template;
  return { stack, template: Template.fromJSON(json), json, outdir };
}
