/**
 * The native packages (onnxruntime-node, usearch), loaded with `require` rather than `import`.
 *
 * On Lambda they live in the native layer under `/opt/nodejs/node_modules`, outside the
 * function's own `node_modules`, and the bundles keep them external. An ES `import` of a bare
 * specifier never consults NODE_PATH (Node documents this for ESM resolution), so it fails
 * there; `createRequire(import.meta.url)` resolves through the CommonJS algorithm, which searches
 * NODE_PATH (Lambda sets it to include `/opt/nodejs/node_modules`). Both packages ship CommonJS
 * entry points. Types come from `import type`, which emits nothing.
 */
import { createRequire } from 'node:module';
import type * as Usearch from 'usearch';

const require = createRequire(import.meta.url);

/**
 * usearch, as its CommonJS entry point exports it (`Index`, `MetricKind`, …). onnxruntime-node
 * is loaded the same way in model/onnxruntime.ts: a module of its own, so that code without a
 * model (the reindex steps, the Fargate build task, whose image ships usearch only) never loads it.
 */
export const usearch = require('usearch') as typeof Usearch;
