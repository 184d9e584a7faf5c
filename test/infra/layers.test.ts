import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModelLayer } from '../../layers/model-layer.js';
import {
  AMAZON_LINUX_2023,
  assertBinariesFitAmazonLinux,
  assertWithinLambdaLimit,
  buildNativeLayer,
  compareVersions,
  findNativeBinaries,
} from '../../layers/native-layer.js';
import {
  TINY_BERT_CROSS_ENCODER_DIR as CROSS_ENCODER_DIR,
  USE_LITE_DIR,
} from '../support/shared-fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'bisearch-layers-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('native layer', () => {
  it.each(['x86_64', 'arm64'] as const)(
    'ships only the Linux %s binaries, within Amazon Linux 2023 symbol versions',
    (architecture) => {
      const report = buildNativeLayer(architecture, join(work, architecture));
      const arch = architecture === 'arm64' ? 'arm64' : 'x64';
      const binaries = findNativeBinaries(report.directory).map((path) =>
        path.slice(report.directory.length),
      );
      expect(binaries.length).toBe(3);
      for (const binary of binaries) expect(binary).toMatch(new RegExp(`linux[-/]${arch}/`));
      for (const binary of report.binaries) {
        expect(compareVersions(binary.glibc ?? '0', AMAZON_LINUX_2023.glibc)).toBeLessThanOrEqual(0);
        expect(compareVersions(binary.glibcxx ?? '0', AMAZON_LINUX_2023.glibcxx)).toBeLessThanOrEqual(0);
      }
      expect(report.bytes).toBeLessThan(100 * 1024 * 1024);
      expect(readdirSync(join(report.directory, 'nodejs', 'node_modules')).sort()).toEqual(
        [
          'bindings',
          'file-uri-to-path',
          'node-gyp-build',
          'onnxruntime-common',
          'onnxruntime-node',
          'usearch',
        ].sort(),
      );
    },
  );

  it('is self-contained: a process outside the project loads onnxruntime-node and usearch from it (this machine is x86_64)', () => {
    const layer = join(work, 'x86_64', 'nodejs', 'node_modules');
    const script = `
      const ort = require(${JSON.stringify(join(layer, 'onnxruntime-node'))});
      const usearch = require(${JSON.stringify(join(layer, 'usearch'))});
      const index = new usearch.Index({ dimensions: 4, metric: 'cos', quantization: 'f32', connectivity: 8, expansion_add: 16, expansion_search: 16, multi: false });
      index.add(1n, new Float32Array([1, 0, 0, 0]));
      console.log(JSON.stringify({ ort: typeof ort.InferenceSession.create, size: index.size() }));`;
    const output = execFileSync(process.execPath, ['-e', script], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '' },
    }).toString();
    expect(JSON.parse(output)).toEqual({ ort: 'function', size: 1 });
  });

  it('refuses a binary that needs a newer GLIBC or GLIBCXX than Amazon Linux 2023 provides', () => {
    const directory = join(work, 'too-new');
    mkdirSync(directory, { recursive: true });
    writeFileSync(join(directory, 'ok.so'), Buffer.from('\x7fELF...GLIBC_2.28\0GLIBCXX_3.4.21\0', 'latin1'));
    expect(() => assertBinariesFitAmazonLinux(directory)).not.toThrow();
    writeFileSync(
      join(directory, 'libnew.so.1'),
      Buffer.from('\x7fELF...GLIBC_2.17\0GLIBC_2.38\0GLIBCXX_3.4.30\0', 'latin1'),
    );
    expect(() => assertBinariesFitAmazonLinux(directory)).toThrow(
      /libnew\.so\.1 \(GLIBC 2\.38, GLIBCXX 3\.4\.30\)/,
    );
  });

  it('refuses function code plus layers above 250 MB unzipped', () => {
    expect(() => assertWithinLambdaLimit({ code: 10e6, native: 100e6 })).not.toThrow();
    expect(() => assertWithinLambdaLimit({ code: 30e6, native: 200e6, model: 50e6 })).toThrow(
      /Lambda allows 250 MB/,
    );
  });
});

describe('model layer', () => {
  it('stages only the files the engine reads under model/ (mounted at /opt/model)', () => {
    const { directory } = buildModelLayer(USE_LITE_DIR, join(work, 'model'));
    expect(readdirSync(join(directory, 'model')).sort()).toEqual(
      [
        'LICENSE',
        'bisearch-model.json',
        'config.json',
        'model.onnx',
        'special_tokens_map.json',
        'tokenizer.json',
        'tokenizer_config.json',
      ].sort(),
    );
    // The layer folder is always `model`: the readable name travels in a file of its own.
    expect(JSON.parse(readFileSync(join(directory, 'model', 'bisearch-model.json'), 'utf8'))).toEqual({
      name: 'use-lite',
    });
    expect(() => buildModelLayer(work, join(work, 'not-a-model'))).toThrow(/not a model directory/);
  });

  it('stages a cross-encoder under reranker/ (mounted at /opt/reranker)', () => {
    const { directory, name } = buildModelLayer(CROSS_ENCODER_DIR, join(work, 'reranker'), {
      folder: 'reranker',
    });
    expect(name).toBe('tiny-bert-cross-encoder');
    expect(readdirSync(join(directory, 'reranker'))).toContain('model.onnx');
  });
});
