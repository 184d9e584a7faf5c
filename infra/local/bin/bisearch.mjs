#!/usr/bin/env node
// The `bisearch` command: runs the TypeScript CLI through tsx (a project dependency), so no
// build step is needed. See infra/local/cli.ts.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { register } = await import('tsx/esm/api');
register();
await import('../cli.ts');
