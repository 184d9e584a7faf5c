/**
 * `bisearch`: ingest, search, reindex, status and eval against the local stack (`npm start`) by
 * default, or against a deployed stack with `--stack <name>` (through its CloudFormation outputs).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { type BisearchClient, createBisearchClient, type SearchRequest } from 'bisearch/client';
import { SingleBar } from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { connectionFromEnvironment, s3Client } from '../../functions/adapters/aws/aws-clients.js';
import { DOCUMENTS_PREFIX } from '../../functions/adapters/aws/document-bucket.js';
import { MAX_ID_SEGMENT_BYTES, objectKeyProblem } from '../../functions/core/document-ids.js';
import {
  CSV_COLUMNS_METADATA_KEY,
  csvSidecarName,
  parseCsvColumns,
  SUPPORTED_EXTENSIONS,
} from '../../functions/core/documents.js';
import { MAX_RESULTS } from '../../functions/core/search-engine.js';
import { addFilterClause, type CliFilter, mergeFilterJson } from './cli-filters.js';
import { runEvalCommand } from './eval-command.js';
import { type LocalStackInfo, type LocalStatus, STACK_FILE } from './local-stack.js';
import { annRecallLine } from './status-lines.js';

/** A parsed JSON answer of the HTTP API (checked at run time, printed as is). */
// biome-ignore lint/suspicious/noExplicitAny: answers are read field by field and printed
type Json = any;

/** Where commands go: the local stack or a deployed one. */
interface Target {
  readonly kind: 'local' | 'aws';
  /** HTTP API base URL. */
  readonly url: string;
  readonly documentsBucket: string;
  readonly s3: S3Client;
  /**
   * The HTTP API through the typed client (`bisearch/client`, generated from `GET /openapi.json`),
   * SigV4-signed for a deployed (IAM-authorised) API: the CLI cannot drift from the API.
   */
  readonly api: BisearchClient;
  /** Start a reindex: `full` forces a full rebuild, `buildOn` where Build and Validate run. */
  reindex(wait: boolean, full: boolean, buildOn?: 'lambda' | 'fargate'): Promise<unknown>;
  status(): Promise<unknown>;
  /** The local stack's own control routes (`/_local/…`, no part of the HTTP API); local only. */
  local?(path: string, init?: { method?: string; body?: unknown }): Promise<{ status: number; body: Json }>;
}

class CliError extends Error {}

/** The message of an API error answer, or of the HTTP status when the answer has none. */
function apiFailure(
  what: string,
  response: Response,
  error: { error?: { code?: string; message?: string } } | undefined,
): CliError {
  return new CliError(`${error?.error?.code ?? response.status}: ${error?.error?.message ?? what}`);
}

async function localTarget(dataDirectory: string): Promise<Target> {
  const file = join(dataDirectory, STACK_FILE);
  if (!existsSync(file))
    throw new CliError(`no local stack is running for ${dataDirectory} (start one with: npm start)`);
  const info = JSON.parse(readFileSync(file, 'utf8')) as LocalStackInfo;
  const unreachable = () =>
    new CliError(`the local stack at ${info.url} does not answer (is npm start still running?)`);
  const local = async (path: string, init: { method?: string; body?: unknown } = {}) => {
    let response: Response;
    try {
      response = await fetch(`${info.url}${path}`, {
        method: init.method ?? 'GET',
        ...(init.body === undefined
          ? {}
          : { body: JSON.stringify(init.body), headers: { 'content-type': 'application/json' } }),
      });
    } catch {
      throw unreachable();
    }
    return { status: response.status, body: await response.json() };
  };
  return {
    kind: 'local',
    url: info.url,
    documentsBucket: info.environment.DOCUMENTS_BUCKET as string,
    s3: s3Client(connectionFromEnvironment(info.environment)),
    api: createBisearchClient({
      baseUrl: info.url,
      fetch: async (request) => {
        try {
          return await fetch(request);
        } catch {
          throw unreachable();
        }
      },
    }),
    local,
    reindex: async (wait, full, buildOn) => {
      const query = [wait ? 'wait=1' : '', full ? 'full=1' : '', buildOn ? `buildOn=${buildOn}` : '']
        .filter(Boolean)
        .join('&');
      return (await local(`/_local/reindex${query ? `?${query}` : ''}`, { method: 'POST' })).body;
    },
    status: async () => (await local('/_local/status')).body,
  };
}

/** A deployed stack, found by name through CloudFormation. Thin by design: it cannot be tested here. */
async function awsTarget(stackName: string): Promise<Target> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  const { SFNClient, StartExecutionCommand } = await import('@aws-sdk/client-sfn');
  const described = await new CloudFormationClient({}).send(
    new DescribeStacksCommand({ StackName: stackName }),
  );
  const outputs = described.Stacks?.[0]?.Outputs ?? [];
  const output = (prefix: string) => {
    const value = outputs.find((candidate) => candidate.OutputKey?.startsWith(prefix))?.OutputValue;
    if (!value) throw new CliError(`stack ${stackName} has no ${prefix} output; is it a bisearch stack?`);
    return value;
  };
  const url = output('QueryApiUrl').replace(/\/$/, '');
  // Region from the execute-api host name, credentials from the default provider chain.
  const api = createBisearchClient({ baseUrl: url, signing: true });
  return {
    kind: 'aws',
    url,
    documentsBucket: output('DocumentsBucketName'),
    s3: new S3Client({}),
    api,
    reindex: async (_wait, full, buildOn) => {
      const started = await new SFNClient({}).send(
        new StartExecutionCommand({
          stateMachineArn: output('ReindexStateMachineArn'),
          input: JSON.stringify({
            trigger: 'cli',
            ...(full ? { full: true } : {}),
            ...(buildOn ? { buildOn } : {}),
          }),
        }),
      );
      return { started: true, executionArn: started.executionArn };
    },
    status: async () => {
      const { data, error, response } = await api.GET('/health');
      if (!data) throw apiFailure('health failed', response, error);
      return data;
    },
  };
}

/**
 * Files to upload: the given files, and every file under the given directories. Each key is
 * `docs/` + the file's path relative to `root` (the current directory unless `--root` says
 * otherwise), so a file keeps its key, and its document id, however it is named on the command
 * line: ingesting a folder and later one of its subfolders updates the same documents.
 */
function collectFiles(paths: string[], root: string): Array<{ path: string; key: string }> {
  const files: Array<{ path: string; key: string }> = [];
  const keyOf = (path: string) => {
    const relativePath = relative(root, path);
    if (relativePath.startsWith('..') || isAbsolute(relativePath))
      throw new CliError(
        `${path} is outside ${root}; document ids are paths relative to the root: run from a folder above it or pass --root <dir>`,
      );
    return `${DOCUMENTS_PREFIX}${relativePath.split(sep).join('/')}`;
  };
  for (const given of paths) {
    const absolute = resolve(given);
    if (!existsSync(absolute)) throw new CliError(`${given} does not exist`);
    if (statSync(absolute).isFile()) {
      files.push({ path: absolute, key: keyOf(absolute) });
      continue;
    }
    const walk = (directory: string) => {
      for (const entry of readdirSync(directory, { withFileTypes: true })) {
        if (entry.name.startsWith('.')) continue;
        const path = join(directory, entry.name);
        if (entry.isDirectory()) walk(path);
        else files.push({ path, key: keyOf(path) });
      }
    };
    walk(absolute);
  }
  return files;
}

const positiveSeconds = (value: string) => {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0)
    throw new InvalidArgumentError('expected a number of seconds above 0');
  return number;
};

const positiveInteger = (value: string) => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > MAX_RESULTS)
    throw new InvalidArgumentError(`expected an integer from 1 to ${MAX_RESULTS}`);
  return number;
};

/** `key=value` filters; repeating a key means any of the values. */
function collectFilter(value: string, previous: CliFilter): CliFilter {
  try {
    return addFilterClause(value, previous);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function collectFilterJson(value: string, previous: CliFilter): CliFilter {
  try {
    return mergeFilterJson(value, previous);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

const program = new Command('bisearch')
  .description(
    'bisearch: semantic search. Talks to the local stack (npm start) unless --stack names a deployed one.',
  )
  .option('--data-dir <dir>', 'local stack data directory', process.env.BISEARCH_DATA_DIR ?? '.bisearch')
  .option('--stack <name>', 'a deployed bisearch stack (CloudFormation stack name)')
  .showHelpAfterError();

const target = (): Promise<Target> => {
  const options = program.opts<{ dataDir: string; stack?: string }>();
  return options.stack ? awsTarget(options.stack) : localTarget(resolve(options.dataDir));
};

program
  .command('ingest')
  .description(
    'upload documents (.txt .md .html .json .jsonl .csv .pdf .docx; directories recursively) for indexing',
  )
  .argument('<paths...>', 'files or directories')
  .option('--root <dir>', 'document ids are paths relative to this folder (default: the current one)')
  .option('--wait', 'wait until every uploaded document is processed and report failures')
  .option('--timeout <seconds>', 'how long --wait waits', positiveSeconds, 300)
  .action(async (paths: string[], options: { wait?: boolean; root?: string; timeout: number }) => {
    const destination = await target();
    // A CSV's column roles sidecar is read with its CSV (below), never uploaded as a document.
    const files = collectFiles(paths, resolve(options.root ?? '.')).filter(
      (file) => !file.path.toLowerCase().endsWith(csvSidecarName('.csv')),
    );
    const unsupported = files.filter(
      (file) => !SUPPORTED_EXTENSIONS.some((extension) => file.path.toLowerCase().endsWith(extension)),
    );
    const unsafe = files
      .filter((file) => !unsupported.includes(file))
      .flatMap((file) => {
        const problem = objectKeyProblem(file.key, MAX_ID_SEGMENT_BYTES);
        return problem ? [{ path: file.path, reason: `its key ${problem}` }] : [];
      });
    const accepted = files.filter(
      (file) => !unsupported.includes(file) && !unsafe.some((bad) => bad.path === file.path),
    );
    const failed: Array<{ path: string; reason: string }> = [...unsafe];
    const uploaded: Array<{ key: string; etag: string; path: string }> = [];
    const bar = process.stderr.isTTY
      ? new SingleBar({ format: 'uploading [{bar}] {value}/{total} files', stream: process.stderr })
      : undefined;
    bar?.start(accepted.length, 0);
    let done = 0;
    for (const file of accepted) {
      try {
        const metadata = csvColumnsMetadata(file.path);
        const put = await destination.s3.send(
          new PutObjectCommand({
            Bucket: destination.documentsBucket,
            Key: file.key,
            Body: readFileSync(file.path),
            ...(metadata ? { Metadata: metadata } : {}),
          }),
        );
        uploaded.push({ key: file.key, etag: put.ETag ?? '', path: file.path });
      } catch (error) {
        failed.push({ path: file.path, reason: (error as Error).message });
      }
      done += 1;
      bar?.update(done);
    }
    bar?.stop();
    process.stdout.write(
      `uploaded ${uploaded.length}, skipped ${unsupported.length} (unsupported type), failed ${failed.length}\n`,
    );
    for (const file of unsupported) process.stdout.write(`  skipped ${file.path}\n`);
    for (const file of failed) process.stdout.write(`  failed ${file.path}: ${file.reason}\n`);
    if (options.wait && destination.local && uploaded.length > 0) {
      await waitForUploads(destination, uploaded, options.timeout);
    }
    if (failed.length > 0) process.exitCode = 1;
  });

/** What `POST /_local/ingest-status` answers. */
type IngestStatus = {
  objects: Array<{
    key: string;
    processed: boolean;
    documents: Array<{ docId: string; status: string; error?: { message: string } }>;
    failures: Array<{ line?: number; docId?: string; code: string; message: string }>;
    failureCount: number;
  }>;
};

/**
 * Wait for these very objects (their ETags), not for an empty queue: an S3 notification can still
 * be on its way when the queue looks empty. Shows progress, names what never got processed.
 */
async function waitForUploads(
  destination: Target,
  uploaded: Array<{ key: string; etag: string; path: string }>,
  timeoutSeconds: number,
): Promise<void> {
  const deadline = Date.now() + timeoutSeconds * 1000;
  const objects = uploaded.map(({ key, etag }) => ({ key, etag }));
  let answer: IngestStatus;
  let shown = -1;
  const local = destination.local;
  if (!local) throw new CliError('--wait needs the local stack');
  for (;;) {
    const response = await local('/_local/ingest-status', {
      method: 'POST',
      body: { objects },
    });
    if (response.status !== 200)
      throw new CliError(
        `the local stack answered ${response.status}: ${response.body?.error?.message ?? ''}`,
      );
    answer = response.body as IngestStatus;
    const processed = answer.objects.filter((object) => object.processed).length;
    if (processed !== shown) {
      process.stderr.write(`waiting: ${processed} of ${answer.objects.length} uploads processed\n`);
      shown = processed;
    }
    if (processed === answer.objects.length) break;
    if (Date.now() > deadline) {
      const pending = answer.objects.filter((object) => !object.processed);
      process.stdout.write(
        `not processed within ${timeoutSeconds} s (${pending.length} of ${answer.objects.length}):\n`,
      );
      for (const object of pending)
        process.stdout.write(
          `  ${uploaded.find((file) => file.key === object.key)?.path ?? object.key} (${object.key})\n`,
        );
      throw new CliError(
        'some uploads were not processed in time (see bisearch status; --timeout waits longer)',
      );
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 250));
  }
  const documents = answer.objects.flatMap((object) => object.documents);
  const rejected = documents.filter((document) => document.status === 'failed');
  const lineFailures = answer.objects.flatMap((object) =>
    object.failures.map((failure) => ({ key: object.key, ...failure })),
  );
  const unreported = answer.objects.reduce(
    (sum, object) =>
      sum +
      Math.max(
        0,
        object.failureCount -
          object.failures.length -
          object.documents.filter((d) => d.status === 'failed').length,
      ),
    0,
  );
  const failedCount = rejected.length + lineFailures.length + unreported;
  process.stdout.write(
    `processed: ${documents.length - rejected.length} documents indexed, ${failedCount} failed\n`,
  );
  for (const document of rejected)
    process.stdout.write(`  failed ${document.docId}: ${document.error?.message ?? 'unknown reason'}\n`);
  for (const failure of lineFailures)
    process.stdout.write(`  failed ${failure.docId ? `${failure.docId}: ` : ''}${failure.message}\n`);
  if (unreported > 0) process.stdout.write(`  … and ${unreported} more failures not listed\n`);
  if (failedCount > 0) process.exitCode = 1;
}

program
  .command('search')
  .description('search the index')
  .argument('<query>', 'what to look for')
  .option('-k, --k <number>', 'results to return (1-100)', positiveInteger, 10)
  .addOption(
    new Option('-m, --mode <mode>', 'retrieval mode')
      .choices(['hybrid', 'dense', 'lexical'])
      .default('hybrid'),
  )
  .option(
    '-f, --filter <key=value>',
    'metadata filter: key=value (repeat a key for any-of), key!=value, key>=v, key>v, key<=v, key<v (numbers or ISO dates); level=2 is a number, public=true a boolean, level=\'"2"\' a string',
    collectFilter,
    {},
  )
  .option(
    '--filter-json <object>',
    'metadata filter as a JSON object in the API\'s language, e.g. \'{"level": {"gte": 2}, "lang": {"ne": "de"}}\' (merged over --filter)',
    collectFilterJson,
    {},
  )
  .option('--rerank', 'rerank with the configured cross-encoder')
  .option('--json', 'print the raw JSON answer')
  .action(
    async (
      query: string,
      options: {
        k: number;
        mode: string;
        filter: CliFilter;
        filterJson: CliFilter;
        rerank?: boolean;
        json?: boolean;
      },
    ) => {
      const destination = await target();
      const filter = { ...options.filter, ...options.filterJson };
      const { data, error, response } = await destination.api.POST('/search', {
        body: {
          query,
          k: options.k,
          mode: options.mode as 'hybrid' | 'dense' | 'lexical',
          // Validated by the same schema as the API (cli-filters); the generated type lists are mutable.
          ...(Object.keys(filter).length > 0 ? { filter: filter as SearchRequest['filter'] } : {}),
          ...(options.rerank ? { rerank: true } : {}),
        },
      });
      if (!data) throw apiFailure('search failed', response, error);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
        return;
      }
      const { results, index, timingsMs } = data;
      results.forEach((result, rank) => {
        const text = String(result.text).replace(/\s+/g, ' ');
        const snippet = text.length > 160 ? `${text.slice(0, 160)}…` : text;
        process.stdout.write(
          `${rank + 1}. ${result.title ?? result.docId}  [${result.docId}${pagesLabel(result.metadata)}]  ${result.score.toFixed(3)}\n   ${snippet}\n`,
        );
      });
      if (results.length === 0) process.stdout.write('no results\n');
      process.stdout.write(
        `(${results.length} results, index ${index.version ?? 'none'} + ${index.deltaSize} in delta, ${timingsMs.total.toFixed(0)} ms)\n`,
      );
    },
  );

program
  .command('reindex')
  .description(
    'build a new index version and swap it in: from the current one plus the documents changed since, or from every stored chunk',
  )
  .option('--wait', 'wait for the result')
  .option('--full', 'rebuild from every stored chunk, not from the current version')
  .addOption(
    new Option(
      '--build-on <compute>',
      'where Build and Validate run (default: chosen by size; Fargate past what a Lambda holds with 2× margin)',
    ).choices(['lambda', 'fargate']),
  )
  .action(async (options: { wait?: boolean; full?: boolean; buildOn?: 'lambda' | 'fargate' }) => {
    const result = (await (
      await target()
    ).reindex(Boolean(options.wait), Boolean(options.full), options.buildOn)) as {
      status?: string;
      executionName?: string;
      output?: {
        version?: string;
        mode?: string;
        changedDocuments?: number;
        fullReason?: string;
        buildCompute?: string;
      };
      error?: { message: string };
    };
    if (!options.wait) {
      process.stdout.write('reindex started\n');
      return;
    }
    if (result.status === 'SUCCEEDED')
      process.stdout.write(
        `reindex ${result.executionName} succeeded: version ${result.output?.version} (${
          result.output?.mode === 'incremental'
            ? `incremental, ${result.output.changedDocuments} changed document${result.output.changedDocuments === 1 ? '' : 's'}`
            : `full${result.output?.fullReason ? `: ${result.output.fullReason}` : ''}`
        }${result.output?.buildCompute === 'fargate' ? '; built on the Fargate task' : ''})\n`,
      );
    else
      throw new CliError(
        `reindex ${result.executionName ?? ''} failed: ${result.error?.message ?? 'unknown error'}`,
      );
  });

program
  .command('status')
  .description('index version, vectors, delta, documents, queues, last reindex, freshness')
  .option('--json', 'print JSON')
  .action(async (options: { json?: boolean }) => {
    const destination = await target();
    const status = (await destination.status()) as LocalStatus;
    if (options.json || destination.kind === 'aws') {
      process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      return;
    }
    const lines = [
      `url            ${destination.url}`,
      `index          ${status.index.version ?? 'none yet'} (${status.index.vectors} vectors, built ${status.index.builtAt ?? '-'})`,
      `ann recall     ${annRecallLine(status.index)}`,
      `delta          ${status.index.deltaSize} chunks since the index (change log at ${status.freshness.sequence})`,
      `freshness lag  ${status.freshness.lagMs < 0 ? 'n/a' : `${status.freshness.lagMs} ms`}`,
      `documents      ${status.documents.indexed} indexed, ${status.documents.failed} failed, ${status.documents.deleted} deleted`,
      `pending        ${status.ingestQueue.waiting} uploads waiting, ${status.ingestQueue.inFlight} being processed; dead letters ${status.deadLetters}`,
      `last reindex   ${status.lastReindex ? `${status.lastReindex.outcome} at ${status.lastReindex.at}${status.lastReindex.outcome === 'failed' ? ` (${status.lastReindex.detail})` : ''}` : 'never'}${status.reindexRunning ? ' (one running now)' : ''}`,
      // Lambda's limits as the local runner enforces them: peak use against each function's size.
      ...Object.entries(status.functions ?? {}).map(
        ([name, fn]) =>
          `function       ${name}: memory ${fn.peakMemoryMb}/${fn.memoryMb} MB, /tmp ${fn.peakStorageMb}/${fn.ephemeralStorageMb} MB, ${fn.invocations} invocations, ${fn.inits} inits${fn.timeouts + fn.outOfMemory + fn.outOfStorage + fn.crashes + fn.initTimeouts > 0 ? `; ${fn.initTimeouts} init timeouts, ${fn.timeouts} timeouts, ${fn.outOfMemory} out of memory, ${fn.outOfStorage} out of /tmp, ${fn.crashes} crashes` : ''}`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  });

program
  .command('documents')
  .description('list indexed, failed and deleted documents (GET /documents, page by page)')
  .option('--status <status>', 'only documents in this state: indexed, failed or deleted')
  .option('--page-size <n>', 'documents per request (1–1000)', '500')
  .option('--json', 'print one JSON array')
  .action(async (options: { status?: string; pageSize: string; json?: boolean }) => {
    if (options.status && !['indexed', 'failed', 'deleted'].includes(options.status))
      throw new CliError(`--status must be indexed, failed or deleted, not ${options.status}`);
    const destination = await target();
    const all: unknown[] = [];
    let cursor: string | undefined;
    do {
      const { data, error, response } = await destination.api.GET('/documents', {
        params: {
          query: {
            limit: Number(options.pageSize),
            ...(options.status ? { status: options.status as 'indexed' | 'failed' | 'deleted' } : {}),
            ...(cursor ? { cursor } : {}),
          },
        },
      });
      if (!data) throw apiFailure('listing failed', response, error);
      for (const document of data.documents) {
        if (options.json) all.push(document);
        else
          process.stdout.write(
            `${document.status.padEnd(8)} ${String(document.chunks).padStart(5)} chunks  ${document.updatedAt}  ${document.docId}${document.error ? `  (${document.error.code}: ${document.error.message})` : ''}\n`,
          );
      }
      cursor = data.nextCursor;
    } while (cursor);
    if (options.json) process.stdout.write(`${JSON.stringify(all, null, 2)}\n`);
  });

program
  .command('eval')
  .description('retrieval quality on a BEIR dataset (same as npm run eval; --help for options)')
  .allowUnknownOption()
  .helpOption(false)
  .argument('[options...]')
  .action(async (args: string[]) => {
    await runEvalCommand(args);
  });

// `bisearch documents | head`: a reader that has seen enough closes the pipe, and the next write
// fails with EPIPE. That ends the output, as in any Unix tool; it is no error of ours.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

program.parseAsync(process.argv).catch((error: Error) => {
  process.stderr.write(
    `bisearch: ${error instanceof CliError ? error.message : (error.stack ?? error.message)}\n`,
  );
  process.exit(1);
});

/**
 * The S3 metadata carrying a CSV file's column roles, from the sidecar `<file>.csv.bisearch.json`
 * beside it (validated here, so a bad sidecar fails its upload with the reason). JSON with
 * non-ASCII characters escaped: S3 metadata travels in HTTP headers.
 */
function csvColumnsMetadata(path: string): Record<string, string> | undefined {
  if (!path.toLowerCase().endsWith('.csv')) return undefined;
  const sidecar = csvSidecarName(path);
  if (!existsSync(sidecar)) return undefined;
  const columns = parseCsvColumns(sidecar, readFileSync(sidecar, 'utf8'));
  const ascii = JSON.stringify(columns).replace(
    /[\u007f-\uffff]/g,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return { [CSV_COLUMNS_METADATA_KEY]: ascii };
}

/** `, p. 4` or `, pp. 8–9` for a chunk of a paged document (PDF), else nothing. */
function pagesLabel(metadata: { page?: unknown; pageEnd?: unknown } | undefined): string {
  if (typeof metadata?.page !== 'number') return '';
  const last = typeof metadata.pageEnd === 'number' ? metadata.pageEnd : metadata.page;
  return last === metadata.page ? `, p. ${metadata.page}` : `, pp. ${metadata.page}–${last}`;
}
