import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Lambda's limit on a function's code plus all its layers, unzipped (bytes). */
export const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

/** Newest symbol versions Amazon Linux 2023 (the nodejs22.x runtime) provides. */
export const AMAZON_LINUX_2023 = { glibc: '2.34', glibcxx: '3.4.29' } as const;

export type LambdaArchitecture = 'x86_64' | 'arm64';

const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Files of each runtime package the native layer ships, per target (`{arch}` is `x64` or
 * `arm64`). Everything else (other platforms' binaries, sources, install scripts) stays out.
 */
const LAYER_PACKAGES: Record<string, string[]> = {
  'onnxruntime-node': ['package.json', 'LICENSE', 'dist', 'bin/napi-v6/linux/{arch}'],
  'onnxruntime-common': ['package.json', 'LICENSE', 'dist'],
  usearch: ['package.json', 'LICENSE', 'javascript/dist', 'prebuilds/linux-{arch}'],
  'node-gyp-build': ['.'],
  bindings: ['.'],
  'file-uri-to-path': ['.'],
};

/** What a layer build produced and checked. */
export interface NativeLayerReport {
  readonly directory: string;
  readonly architecture: LambdaArchitecture;
  readonly bytes: number;
  /** Native files and the newest GLIBC / GLIBCXX version each requires. */
  readonly binaries: Array<{ path: string; glibc?: string; glibcxx?: string }>;
}

/** usearch and what it loads its binary with: all the reindex build task needs. */
export const USEARCH_PACKAGES = ['usearch', 'node-gyp-build', 'bindings', 'file-uri-to-path'] as const;

/**
 * Assemble the native runtime layer (`nodejs/node_modules/…`: onnxruntime-node and usearch with
 * only the Linux binaries of `architecture`; `packages` keeps only those named) from the project's pinned, installed versions, and
 * check it: no binary may need GLIBC/GLIBCXX symbols newer than Amazon Linux 2023 provides.
 * Throws, naming the offending file, when the check fails.
 */
export function buildNativeLayer(
  architecture: LambdaArchitecture,
  outputDirectory: string,
  projectRoot = PROJECT_ROOT,
  packages: readonly string[] = Object.keys(LAYER_PACKAGES),
): NativeLayerReport {
  const arch = architecture === 'arm64' ? 'arm64' : 'x64';
  rmSync(outputDirectory, { recursive: true, force: true });
  const modules = join(outputDirectory, 'nodejs', 'node_modules');
  for (const [name, entries] of Object.entries(LAYER_PACKAGES)) {
    if (!packages.includes(name)) continue;
    const source = join(projectRoot, 'node_modules', name);
    if (!existsSync(source)) throw new Error(`native layer: ${name} is not installed (run npm ci)`);
    for (const entry of entries) {
      const from = join(source, entry.replace('{arch}', arch));
      if (!existsSync(from)) {
        if (entry === 'LICENSE') continue;
        throw new Error(
          `native layer: ${relative(projectRoot, from)} is missing; is ${name} built for linux-${arch}?`,
        );
      }
      const to = join(modules, name, entry.replace('{arch}', arch));
      mkdirSync(dirname(to), { recursive: true });
      cpSync(from, to, { recursive: true, dereference: true });
    }
  }
  const binaries = assertBinariesFitAmazonLinux(outputDirectory);
  return { directory: outputDirectory, architecture, bytes: directorySize(outputDirectory), binaries };
}

/**
 * Check every native binary under `directory` against Amazon Linux 2023's GLIBC/GLIBCXX; throws
 * naming each offending file. Returns what each binary requires.
 */
export function assertBinariesFitAmazonLinux(directory: string): NativeLayerReport['binaries'] {
  const binaries = findNativeBinaries(directory).map((path) => ({
    path: relative(directory, path),
    ...requiredSymbolVersions(path),
  }));
  const violations = binaries.filter(
    (binary) =>
      (binary.glibc && compareVersions(binary.glibc, AMAZON_LINUX_2023.glibc) > 0) ||
      (binary.glibcxx && compareVersions(binary.glibcxx, AMAZON_LINUX_2023.glibcxx) > 0),
  );
  if (violations.length > 0) {
    throw new Error(
      `native layer: binaries need newer system libraries than Amazon Linux 2023 (GLIBC ${AMAZON_LINUX_2023.glibc}, GLIBCXX ${AMAZON_LINUX_2023.glibcxx}): ${violations
        .map((binary) => `${binary.path} (GLIBC ${binary.glibc ?? '-'}, GLIBCXX ${binary.glibcxx ?? '-'})`)
        .join(', ')}`,
    );
  }
  return binaries;
}

/** ELF shared objects and Node addons under a directory. */
export function findNativeBinaries(directory: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) found.push(...findNativeBinaries(path));
    else if (/\.(node|so)(\.\d+)*$/.test(entry.name)) found.push(path);
  }
  return found;
}

/**
 * Newest `GLIBC_x.y` and `GLIBCXX_3.4.z` version names an ELF file references. The names of
 * required symbol versions are stored as strings in the dynamic string table, so scanning the
 * file finds them without binutils.
 */
export function requiredSymbolVersions(path: string): { glibc?: string; glibcxx?: string } {
  const text = readFileSync(path).toString('latin1');
  const newest = (pattern: RegExp) => {
    let best: string | undefined;
    for (const match of text.matchAll(pattern)) {
      const version = match[1] as string;
      if (!best || compareVersions(version, best) > 0) best = version;
    }
    return best;
  };
  const glibc = newest(/GLIBC_(\d+\.\d+(?:\.\d+)?)\0/g);
  const glibcxx = newest(/GLIBCXX_(\d+\.\d+(?:\.\d+)?)\0/g);
  return { ...(glibc ? { glibc } : {}), ...(glibcxx ? { glibcxx } : {}) };
}

/** Compare dotted version strings numerically. */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i += 1) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** Bytes of all files under a directory (what Lambda counts as unzipped size). */
export function directorySize(directory: string): number {
  let total = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    total += entry.isDirectory() ? directorySize(path) : statSync(path).size;
  }
  return total;
}

/** Throws when function code plus layers exceed Lambda's 250 MB unzipped limit. */
export function assertWithinLambdaLimit(parts: Record<string, number>): void {
  const total = Object.values(parts).reduce((sum, bytes) => sum + bytes, 0);
  if (total > LAMBDA_UNZIPPED_LIMIT_BYTES) {
    const detail = Object.entries(parts)
      .map(([name, bytes]) => `${name} ${(bytes / 1024 / 1024).toFixed(1)} MB`)
      .join(' + ');
    throw new Error(
      `function and layers are ${(total / 1024 / 1024).toFixed(1)} MB unzipped (${detail}); Lambda allows 250 MB`,
    );
  }
}
