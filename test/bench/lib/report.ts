/**
 * Turns a bench result into a markdown summary with SVG charts (rendered by Vega-Lite, no
 * browser needed) and checks the targets of the benchmark issue against the figures.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { I8_RESCORE_FACTOR } from '../../../functions/adapters/index/snapshot-files.js';
import type { BenchResults } from '../run-bench.js';
import type { FiltersResults } from '../sections/filters.js';
import type { PeerLatency, PeersResults } from '../sections/peers.js';

async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

/** One target of the issue: what it asks, what was measured, and whether it holds. */
export interface TargetCheck {
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | null;
}

const fixed = (value: number | null | undefined, digits = 2) =>
  value === null || value === undefined || !Number.isFinite(value) ? 'n/a' : value.toFixed(digits);

/**
 * A markdown table and the lines that follow it, or nothing when it has no rows (a run of some
 * parts, `--scale-parts`, leaves the others' tables empty).
 */
function table(header: string, rows: string[], after: string[] = []): string[] {
  if (rows.length === 0) return [];
  const separator = `|${'---|'.repeat(header.split('|').length - 2)}`;
  return [header, separator, ...rows, '', ...after.flatMap((line) => [line, ''])];
}

export function checkTargets(results: BenchResults): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const scale = results.scale;
  if (scale) {
    const at32 = scale.announce.find((row) => row.encoders === 32);
    if (at32)
      checks.push({
        target: `≥ 500 documents/s announced by 32 concurrent encoders with ${scale.latencyMs} ms modelled latency, 0 conflict failures`,
        measured: `${fixed(at32.perSecond, 0)}/s on dynalite, ${at32.failures} failures (projected on DynamoDB: ${fixed(at32.projectedAwsPerSecond, 0)}/s)`,
        met: at32.failures === 0 && at32.perSecond >= 500,
      });
    const largest = scale.catchUp.at(-1);
    if (largest)
      checks.push({
        target: `query Init ≤ 10 s with a ${largest.backlog}-document backlog`,
        measured: `${fixed(largest.initMs / 1000, 2)} s (${largest.appliedAtInit} applied at Init; all after ${fixed(largest.catchUpSeconds, 1)} s, during requests)`,
        met: largest.initMs <= 10_000,
      });
    const largestDelta = scale.deltaSearch.at(-1);
    if (largestDelta)
      checks.push({
        target: `a large delta is searched by ANN: flat latency as it grows (${largestDelta.chunks} chunks)`,
        measured: `${fixed(largestDelta.annMs)} ms ANN vs ${fixed(largestDelta.exactMs)} ms brute force, recall@10 ${fixed(largestDelta.recallAt10, 3)}`,
        met: largestDelta.annMs < largestDelta.exactMs && largestDelta.recallAt10 >= 0.95,
      });
    const largestRebuild = scale.rebuild?.filter((row) => row.incremental).at(-1);
    if (largestRebuild)
      checks.push({
        target: `incremental reindex after 1% changes ≤ 10% of a full rebuild's time (${largestRebuild.chunks} chunks)`,
        measured: `${fixed(largestRebuild.incremental.ratioToFull)}× (Snapshot ${fixed(largestRebuild.incremental.snapshotSeconds, 1)} s vs ${fixed(largestRebuild.snapshotSeconds, 1)} s, Build ${fixed(largestRebuild.incremental.buildSeconds, 1)} s vs ${fixed(largestRebuild.buildSeconds, 1)} s; graph ${largestRebuild.incremental.graph})`,
        met: largestRebuild.incremental.ratioToFull <= 0.1,
      });
    const largestWriter = scale.writer?.at(-1);
    if (largestWriter)
      checks.push({
        target: `incremental Build after 1% changes ≤ 10% of a full Build (the snapshot writer alone, ${largestWriter.chunks} chunks)`,
        measured: `${fixed(largestWriter.ratioToFull)}× (${fixed(largestWriter.incrementalSeconds, 1)} s vs ${fixed(largestWriter.fullSeconds, 1)} s; graph ${largestWriter.graph}, held-out recall@10 ${fixed(largestWriter.heldOutRecall, 3)})`,
        met: largestWriter.ratioToFull <= 0.1,
      });
    if (scale.queryDuringLoad) {
      const { idleMs, duringLoadMs } = scale.queryDuringLoad;
      checks.push({
        target: 'query p99 during a bulk load ≤ 2× the idle p99',
        measured: `${fixed(duringLoadMs.p99)} ms during vs ${fixed(idleMs.p99)} ms idle (${fixed(duringLoadMs.p99 / idleMs.p99)}×)`,
        met: duringLoadMs.p99 <= 2 * idleMs.p99,
      });
    }
  }
  const filters = results.filters;
  const largestFiltered = filters?.sizes.at(-1);
  if (largestFiltered) {
    const defaults = largestFiltered.filtered.filter((row) => row.target !== 'documents');
    const worst = defaults.reduce((a, b) => (b.p99OverUnfiltered > a.p99OverUnfiltered ? b : a));
    const bySelectivity = [...new Set(defaults.map((row) => row.selectivity))]
      .map((selectivity) => {
        const rows = defaults.filter((row) => row.selectivity === selectivity);
        return `${selectivity * 100}% ${fixed(Math.max(...rows.map((row) => row.p99OverUnfiltered)))}×`;
      })
      .join(', ');
    checks.push({
      target: `filtered dense p99 at ${largestFiltered.chunks} chunks ≤ 2× unfiltered at 0.1%, 1%, 10%, 50% (worst operator)`,
      measured: `${bySelectivity} (unfiltered p99 ${fixed(largestFiltered.unfiltered.p99)} ms; worst ${worst.operator} ${worst.selectivity * 100}% ${fixed(worst.ms.p99)} ms)`,
      met: worst.p99OverUnfiltered <= 2,
    });
    const lowest = Math.min(...defaults.map((row) => row.recallAt10));
    checks.push({
      target: `filtered dense recall@10 at ${largestFiltered.chunks} chunks against exact filtered search`,
      measured: `lowest ${fixed(lowest, 3)} (unfiltered ${fixed(largestFiltered.unfilteredRecallAt10, 3)})`,
      met: null,
    });
  }
  const ann = results.ann;
  if (ann) {
    const at95 = ann.atEqualRecall.find((row) => row.recallTarget === 0.95);
    for (const library of ['usearch f32', 'usearch f16', 'usearch i8 + f32 re-rank']) {
      const ratio = at95?.usearchOverHnswlib[library] ?? null;
      checks.push({
        target: `${library} at least as fast as hnswlib-node at recall@10 ≥ 0.95`,
        measured: `${fixed(ratio)}× hnswlib QPS (${fixed(at95?.qps[library], 0)} vs ${fixed(at95?.qps['hnswlib-node'], 0)} QPS, ${ann.vectors} vectors)${library === 'usearch f16' ? `; with the cos metric snapshots used before: ${fixed(at95?.usearchOverHnswlib['usearch f16 cos (before)'])}×` : ''}`,
        met: ratio === null ? null : ratio >= 1,
      });
    }
    const at128 = (library: string) =>
      ann.curve.find((point) => point.library === library && point.ef === 128);
    const raw = at128('usearch i8');
    const cast = at128('usearch i8 (usearch cast)');
    const reranked = at128('usearch i8 + f32 re-rank');
    checks.push({
      target: 'i8 recall@10 ≥ 0.97 of exact (default ef 128)',
      measured: `${fixed(reranked?.recallAt10, 3)} as snapshots answer (i8 HNSW, ${I8_RESCORE_FACTOR}× over-fetch, float32 re-rank); i8 HNSW alone ${fixed(raw?.recallAt10, 3)}, with usearch's own cast ${fixed(cast?.recallAt10, 3)}`,
      met: reranked ? reranked.recallAt10 >= 0.97 : null,
    });
  }
  const hybrid100k = results.queryPath?.find(
    (row) => row.chunks >= 100_000 && row.chunks < 1_000_000 && row.mode === 'hybrid',
  );
  if (hybrid100k) {
    const { p50, p99 } = hybrid100k.stagesMs.totalWithoutEmbed;
    checks.push({
      target: `warm hybrid query at ${hybrid100k.chunks} chunks, excluding embedding: p50 ≤ 2 ms, p99 ≤ 10 ms`,
      measured: `p50 ${fixed(p50)} ms, p99 ${fixed(p99)} ms`,
      met: p50 <= 2 && p99 <= 10,
    });
  }
  const largest = Math.max(...(results.coldStart ?? []).map((row) => row.chunks));
  const view = results.coldStart?.find(
    (row) => row.chunks === largest && row.indexMode === 'view' && !row.verified,
  );
  const load = results.coldStart?.find((row) => row.chunks === largest && row.indexMode === 'load');
  if (view && load) {
    checks.push({
      target: `cold start to first answer, ${largest} chunks on local disk, view(): ≤ 1.5 s (and ratio to load())`,
      measured: `view ${fixed(view.medianMs.firstAnswerMs, 0)} ms, load ${fixed(load.medianMs.firstAnswerMs, 0)} ms (load / view ${fixed(load.medianMs.firstAnswerMs / view.medianMs.firstAnswerMs)}×); model loaded at ${fixed(view.medianMs.modelMs, 0)} ms; snapshot open at ${fixed(view.medianMs.snapshotMs, 0)} ms with view, ${fixed(load.medianMs.snapshotMs, 0)} ms with load`,
      met: view.medianMs.firstAnswerMs <= 1_500,
    });
  }
  for (const download of results.download ?? []) {
    checks.push({
      target: `parallel ranged download ≥ 2× single GET (local S3 emulator, ${download.serverProcesses} server process(es), ${download.perConnectionMiBps ? `each connection limited to ${download.perConnectionMiBps} MiB/s as S3 limits it` : 'loopback unlimited'})`,
      measured: `${fixed(download.ratio)}× (${fixed(download.rangedMiBPerSecond, 0)} vs ${fixed(download.singleGetMiBPerSecond, 0)} MiB/s)`,
      met: download.ratio >= 2,
    });
  }
  const embedding = results.embedding;
  if (embedding) {
    for (const row of embedding.overhead) {
      checks.push({
        target: `embedding path adds ≤ 10% over the bare onnxruntime session (${row.model})`,
        measured: `${fixed(row.overhead * 100, 1)}% (${fixed(row.bisearchMs, 1)} vs ${fixed(row.rawSessionMs, 1)} ms for ${row.passages} passages; tokenising alone ${fixed(row.tokenizeMs, 1)} ms, ${fixed(row.tokenizeFirstSightMs, 1)} ms with every word new; from token ids on ${fixed(row.overheadWithoutTokenizing * 100, 1)}%)`,
        met: row.overhead <= 0.1,
      });
    }
    if ('ratio' in embedding.transformers) {
      checks.push({
        target: 'no slower than @huggingface/transformers on the same model (tiny-bert)',
        measured: `transformers.js takes ${fixed(embedding.transformers.ratio)}× bisearch's time (max |Δ| ${embedding.transformers.maxAbsDifference.toExponential(1)})`,
        met: embedding.transformers.ratio >= 1,
      });
    }
  }
  const peers = results.peers;
  if (peers) {
    for (const peer of ['LanceDB', 'Orama'] as const) {
      const pick = (figure: string) =>
        peers.ratios.filter((row) => row.peer === peer && row.figure === figure);
      const list = (figure: string) =>
        pick(figure)
          .map((row) => `${fixed(row.ratio)}×${row.chunks ? ` at ${row.chunks}` : ''}`)
          .join(', ') || 'n/a';
      checks.push({
        target: `peers: bisearch ÷ ${peer}, same vectors and texts (latency: below 1 = bisearch faster; nDCG: above 1 = bisearch better)`,
        measured: `hybrid p50 ${list('hybrid p50')}; dense p50 at recall@10 ${peers.recallTarget} ${list(`dense p50 at recall@10 ${peers.recallTarget}`)}; full-text p50 ${list('full-text p50')}; nDCG@10 full-text ${list('nDCG@10 full-text (SciFact)')}, hybrid ${list('nDCG@10 hybrid (SciFact)')}`,
        met: null,
      });
    }
  }
  return checks;
}

const latencyCell = (latency: PeerLatency | undefined) =>
  latency ? `${fixed(latency.p50, 2)} / ${fixed(latency.p99, 2)}` : 'n/a';

/** The "Peers" section: LanceDB and Orama beside bisearch (tables, ratios and a recall–latency chart). */
async function peersReport(
  peers: PeersResults,
  chart: (name: string, spec: TopLevelSpec) => Promise<string>,
): Promise<string[]> {
  const lines: string[] = [];
  // Published figures may merge runs (e.g. 10k and 100k with relevance in one, 1M in another).
  const runs = (peers.measured ?? [])
    .map(
      (run) =>
        `${run.createdAt}, commit ${run.commit} (${[...run.chunks.map((size) => `${size}`), ...(run.relevance ? ['relevance'] : [])].join(', ')})`,
    )
    .join('; ');
  lines.push(
    '## Peers: LanceDB and Orama on the same vectors, texts and queries (k = 10)',
    '',
    `${runs ? `Measured ${runs} (\`npm run bench -- --only peers\`). ` : ''}Versions: ${Object.entries(
      peers.versions,
    )
      .map(([name, version]) => `${name} ${version}`)
      .join(
        ', ',
      )}. ${peers.queries} SciFact queries with their use-lite vectors computed once (no system embeds). Every query runs alone from one JavaScript thread; "CPU ms" is the process's CPU time per query (all threads): LanceDB's Rust runtime may spread one query over both cores, bisearch and Orama answer on the calling thread. Chunks are derived as for the other sections, each its own document, with four boolean filter columns (0.1%, 1%, 10%, 50% of rows).`,
    '',
    `Dense latency at equal recall@10 = ${peers.recallTarget} (against exact search), read off each system's curve over its own knob as the ANN section does (1/latency interpolated on a log scale between the settings around the target). Full-text, hybrid and filtered queries use the cheapest setting that reaches the target. Each kind of query is timed over all queries, or over the first ones answered within 30 s (at least 100) for a slow system. Orama scores every vector (brute force): exact whenever its similarity threshold keeps 10 rows.`,
    '',
    '| chunks | system | build s | on disk MiB | dense p50 / p99 ms at recall 0.95 | setting used | full-text p50 / p99 ms | hybrid p50 / p99 ms | hybrid CPU ms | queries timed (full-text / hybrid) | exact dense |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...peers.sizes.map(
      (row) =>
        `| ${row.chunks} | ${row.system} | ${fixed(row.build.seconds, 1)} | ${fixed(row.build.bytes / 2 ** 20, 1)} | ${fixed(row.denseAtRecall.p50, 2)} / ${fixed(row.denseAtRecall.p99, 2)} | ${row.queryingSetting} | ${latencyCell(row.text)} | ${latencyCell(row.hybrid)} | ${fixed(row.hybrid.cpuMsPerQuery, 2)} | ${row.text.queries} / ${row.hybrid.queries} | ${row.exactDense ? 'yes (brute force)' : 'no (ANN)'} |`,
    ),
    '',
    ...peers.sizes.map(
      (row) => `- ${row.system} build (${row.chunks}): ${row.build.what}. ${row.notes.join(' ')}`,
    ),
    '',
    '### Dense recall@10 and latency per setting',
    '',
    '| chunks | system | setting | recall@10 | p50 ms | p99 ms | CPU ms / query |',
    '|---|---|---|---|---|---|---|',
    ...peers.sizes.flatMap((row) =>
      row.denseCurve.map(
        (point) =>
          `| ${row.chunks} | ${row.system} | ${point.setting} | ${fixed(point.recallAt10, 4)} | ${fixed(point.p50, 3)} | ${fixed(point.p99, 3)} | ${fixed(point.cpuMsPerQuery, 3)} |`,
      ),
    ),
    '',
    '### Filtered dense search (recall@10 against exact search over the matching rows; p99 ms)',
    '',
    '| chunks | selectivity | matching rows | bisearch recall / p99 | LanceDB recall / p99 | Orama recall / p99 |',
    '|---|---|---|---|---|---|',
  );
  for (const chunks of [...new Set(peers.sizes.map((row) => row.chunks))]) {
    const of = (system: string) => peers.sizes.find((row) => row.chunks === chunks && row.system === system);
    for (const filter of of('bisearch')?.filtered ?? []) {
      const cell = (system: string) => {
        const match = of(system)?.filtered.find((row) => row.selectivity === filter.selectivity);
        return match ? `${fixed(match.recallAt10, 3)} / ${fixed(match.p99, 2)}` : 'n/a';
      };
      lines.push(
        `| ${chunks} | ${filter.selectivity * 100}% | ${filter.matchingRows} | ${cell('bisearch')} | ${cell('LanceDB')} | ${cell('Orama')} |`,
      );
    }
  }
  lines.push(
    '',
    '### Cold open to first answer, and resident memory (a fresh process each; medians)',
    '',
    "Milliseconds since process start; the first answer is a hybrid query. No model is loaded (query vectors are precomputed), so these are the index's own open cost. Memory is read after the first answer and after 1,000 more queries: hybrid for up to 180 s, then dense (Orama at 100k answers a hybrid query in seconds); the last column says how many were hybrid. From S3: bisearch downloads the snapshot with parallel ranged GETs (sha256-verified) and `view()`s it; LanceDB opens the table on the emulator through its S3 storage options (`aws_endpoint`, `allow_http`).",
    '',
    '| chunks | system | from | runs | open ms | first answer ms | RSS after open MiB | RSS after queries MiB | queries (hybrid) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...peers.coldOpen.map(
      (row) =>
        `| ${row.chunks} | ${row.system} | ${row.from} | ${row.runs} | ${fixed(row.openMs, 0)} | ${fixed(row.firstAnswerMs, 0)} | ${fixed(row.rssAfterOpenMiB, 0)} | ${fixed(row.rssAfterQueriesMiB, 0)} | ${row.queriesForMemory}${row.hybridQueriesForMemory === undefined ? '' : ` (${row.hybridQueriesForMemory})`} |`,
    ),
    '',
    ...peers.coldOpen
      .filter((row) => row.error)
      .map((row) => `- ${row.system} ${row.chunks} from ${row.from} failed: \`${row.error}\``),
    '',
    `### Relevance on SciFact (${peers.relevance.queries} test queries, ${peers.relevance.chunks} real windowed chunks, same vectors; bisearch's qrels and metric code)`,
    '',
    '| system | full-text nDCG@10 | hybrid nDCG@10 | dense nDCG@10 | how |',
    '|---|---|---|---|---|',
  );
  for (const system of ['bisearch', 'LanceDB', 'Orama']) {
    const rows = peers.relevance.rows.filter((row) => row.system === system);
    const cell = (mode: string) => fixed(rows.find((row) => row.mode === mode)?.ndcgAt10, 4);
    lines.push(
      `| ${system} | ${cell('full-text')} | ${cell('hybrid')} | ${cell('dense')} | ${rows[0]?.how ?? ''} |`,
    );
  }
  lines.push(
    '',
    '### Ratios, bisearch ÷ peer',
    '',
    'Latency, time, size and memory: below 1 means bisearch is faster or smaller. nDCG: above 1 means bisearch ranks better.',
    '',
    '| figure | chunks | ÷ LanceDB | ÷ Orama |',
    '|---|---|---|---|',
  );
  const keys = [...new Set(peers.ratios.map((row) => `${row.figure}\u0000${row.chunks ?? ''}`))];
  for (const key of keys) {
    const [figure, chunks] = key.split('\u0000') as [string, string];
    const cell = (peer: string) =>
      fixed(
        peers.ratios.find(
          (row) => row.figure === figure && String(row.chunks ?? '') === chunks && row.peer === peer,
        )?.ratio,
      );
    lines.push(`| ${figure} | ${chunks || 'SciFact'} | ${cell('LanceDB')} | ${cell('Orama')} |`);
  }
  lines.push('', ...peers.skipped.map((skip) => `- Not measured: ${skip.what}: ${skip.why}`), '');
  const file = await chart('peers-dense-recall-latency', {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Dense recall@10 vs p50 latency per setting (one query at a time), ms',
    data: {
      values: peers.sizes.flatMap((row) =>
        row.denseCurve.map((point) => ({
          corpus: `${row.chunks.toLocaleString('en')} chunks`,
          system: row.system,
          setting: point.setting,
          recallAt10: point.recallAt10,
          p50: point.p50,
        })),
      ),
    },
    facet: { column: { field: 'corpus', type: 'nominal', title: null } },
    spec: {
      width: 300,
      height: 240,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'recallAt10', type: 'quantitative', scale: { zero: false }, title: 'recall@10' },
            y: { field: 'p50', type: 'quantitative', scale: { type: 'log' }, title: 'p50 ms' },
            color: { field: 'system', type: 'nominal' },
          },
        },
      ],
    },
  });
  const bars = await chart('peers-latency', {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Warm p50 latency by query kind (dense at recall@10 0.95), ms',
    data: {
      values: peers.sizes.flatMap((row) =>
        [
          { kind: 'dense', ms: row.denseAtRecall.p50 },
          { kind: 'full-text', ms: row.text.p50 },
          { kind: 'hybrid', ms: row.hybrid.p50 },
        ]
          .filter((bar) => bar.ms !== null)
          .map((bar) => ({
            ...bar,
            system: row.system,
            corpus: `${row.chunks.toLocaleString('en')} chunks`,
          })),
      ),
    },
    facet: { column: { field: 'corpus', type: 'nominal', title: null } },
    spec: {
      width: 240,
      height: 160,
      mark: 'bar',
      encoding: {
        x: { field: 'kind', type: 'nominal', title: null },
        xOffset: { field: 'system' },
        y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'p50 ms' },
        color: { field: 'system', type: 'nominal' },
      },
    },
  });
  lines.push(`![peers dense recall vs latency](${file})`, '', `![peers latency by query kind](${bars})`, '');
  return lines;
}

function filtersReport(filters: FiltersResults): string[] {
  const measured = filters.measured;
  const limits = Object.entries(filters.exactFilterLimits ?? {})
    .map(([size, limit]) => `${limit} at ${size}`)
    .join(', ');
  return [
    `## Filtered dense search (${filters.dimensions}-d synthetic clustered vectors, f16 HNSW, ${filters.queries} queries, k = 10)`,
    '',
    `${measured ? `Measured ${measured.createdAt}, commit ${measured.commit} (\`npm run bench -- --only filters\`). ` : ''}Engine time without embedding (the real snapshot, metadata index and SearchEngine); every operator at a selectivity selects the same rows, and recall@10 is against brute force over those rows. Up to \`exactFilterLimit\` matching rows (${limits}) are scored exactly ("exact"); above that HNSW candidates (1.3 × 100 ÷ selectivity, doubled while fewer than 100 pass; with \`filteredDenseTarget: 'documents'\` max(100, 1.3 × 10 ÷ selectivity), and 10 rows suffice) are tested against the filter's bitmap ("hnsw").`,
    '',
    '| chunks | filter | selectivity | matching rows | path | p50 ms | p99 ms | p99 ÷ unfiltered | recall@10 |',
    '|---|---|---|---|---|---|---|---|---|',
    ...filters.sizes.flatMap((size) => [
      `| ${size.chunks} | none | 100% | ${size.chunks} | hnsw | ${fixed(size.unfiltered.p50)} | ${fixed(size.unfiltered.p99)} | 1.00 | ${fixed(size.unfilteredRecallAt10, 3)} |`,
      ...size.filtered.map(
        (row) =>
          `| ${size.chunks} | ${row.operator}${row.target === 'documents' ? ' (target documents)' : ''} | ${row.selectivity * 100}% | ${row.matchingRows} | ${row.path} | ${fixed(row.ms.p50)} | ${fixed(row.ms.p99)} | ${fixed(row.p99OverUnfiltered)} | ${fixed(row.recallAt10, 3)} |`,
      ),
    ]),
    '',
  ];
}

/** Write the markdown summary and its charts next to each other; returns the markdown path. */
export async function writeReport(
  results: BenchResults,
  markdownPath: string,
  chartPrefix: string,
): Promise<string> {
  const lines: string[] = [];
  const chart = async (name: string, spec: TopLevelSpec) => {
    const file = `${chartPrefix}${name}.svg`;
    writeFileSync(join(markdownPath, '..', file), await renderSvg(spec));
    return file;
  };
  const { machine, settings } = results;
  lines.push(
    `# bisearch benchmark${settings.quick ? ' (quick)' : ''}`,
    '',
    `Measured ${results.createdAt} on ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.platform}, commit ${machine.commit}. Reproduce: \`npm run bench${settings.quick ? ' -- --quick' : ''}\`.`,
    '',
    `Model ${settings.model}; base corpus: ${settings.baseChunks} real SciFact chunks (windowed) and ${settings.queries} real SciFact queries; larger corpora derived from them (test/bench/lib/derived-corpus.ts: \`normalise(a + 0.3·b + ε)\`, ‖ε‖ ≈ 0.15, texts copied). HNSW M ${settings.hnsw.connectivity}, ef_construction ${settings.hnsw.expansionAdd}, ef ${settings.hnsw.expansionSearch} unless stated. Shared, noisy machine: percentiles over many queries, ratios measured side by side.`,
    '',
    '## Targets',
    '',
    '| target | measured | met |',
    '|---|---|---|',
    ...checkTargets(results).map(
      (check) =>
        `| ${check.target} | ${check.measured} | ${check.met === null ? 'n/a' : check.met ? 'yes' : '**no**'} |`,
    ),
    '',
  );

  if (results.filters) lines.push(...filtersReport(results.filters));
  if (results.queryPath?.length) {
    lines.push(
      '## Warm query path (in process, k = 10)',
      '',
      'Milliseconds per stage as the engine reports them (`timingsMs`); "engine" is everything but the query embedding.',
      '',
      '| chunks | mode | stage | p50 | p95 | p99 |',
      '|---|---|---|---|---|---|',
    );
    for (const row of results.queryPath) {
      for (const stage of [
        'embed',
        'dense',
        'lexical',
        'fusion',
        'hydrate',
        'totalWithoutEmbed',
        'total',
      ] as const) {
        if (row.mode === 'dense' && (stage === 'lexical' || stage === 'fusion')) continue;
        const { p50, p95, p99 } = row.stagesMs[stage];
        const label = stage === 'totalWithoutEmbed' ? '**engine (no embed)**' : stage;
        lines.push(
          `| ${row.chunks} | ${row.mode} | ${label} | ${fixed(p50, 3)} | ${fixed(p95, 3)} | ${fixed(p99, 3)} |`,
        );
      }
    }
    const data = results.queryPath.flatMap((row) =>
      (['dense', 'lexical', 'fusion', 'hydrate', 'totalWithoutEmbed'] as const)
        .filter((stage) => row.mode === 'hybrid' || (stage !== 'lexical' && stage !== 'fusion'))
        .flatMap((stage) =>
          (['p50', 'p95', 'p99'] as const).map((p) => ({
            corpus: `${row.chunks.toLocaleString('en')} chunks, ${row.mode}`,
            order: row.chunks * 10 + (row.mode === 'hybrid' ? 0 : 1),
            stage: stage === 'totalWithoutEmbed' ? 'engine total' : stage,
            percentile: p,
            ms: row.stagesMs[stage][p],
          })),
        ),
    );
    const file = await chart('query-latency', {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: 'Warm query latency per stage (excluding query embedding), ms',
      data: { values: data },
      facet: { row: { field: 'corpus', type: 'nominal', title: null, sort: { field: 'order', op: 'min' } } },
      resolve: { scale: { y: 'independent' } },
      spec: {
        width: 420,
        height: 110,
        mark: 'bar',
        encoding: {
          y: { field: 'stage', type: 'nominal', title: null },
          yOffset: { field: 'percentile' },
          x: { field: 'ms', type: 'quantitative', scale: { type: 'symlog' } },
          color: { field: 'percentile', type: 'nominal' },
        },
      },
    });
    lines.push('', `![query latency per stage](${file})`, '');
  }

  if (results.ann) {
    const ann = results.ann;
    lines.push(
      `## ANN peers (${ann.vectors} vectors × ${ann.dimensions} dims, ${ann.queries} queries, k = 10, one search thread)`,
      '',
      '| library | build s | build threads | index MiB |',
      '|---|---|---|---|',
      ...ann.builds.map(
        (build) =>
          `| ${build.library} | ${fixed(build.buildSeconds, 1)} | ${build.threads} | ${fixed(build.indexBytes / 2 ** 20, 1)} |`,
      ),
      '',
      '| library | ef | recall@10 | QPS |',
      '|---|---|---|---|',
      ...ann.curve.map(
        (point) =>
          `| ${point.library} | ${point.ef} | ${fixed(point.recallAt10, 4)} | ${fixed(point.qps, 0)} |`,
      ),
      ...ann.exact.map(
        (row) => `| ${row.library} | exact | ${fixed(row.recallAt10, 4)} | ${fixed(row.qps, 0)} |`,
      ),
      '',
      'QPS at a recall@10, read off each curve (log QPS interpolated between the two expansions around it), and usearch / hnswlib-node at that recall:',
      '',
      '| recall | usearch f32 | usearch f16 | usearch i8 + re-rank | hnswlib-node | f32 / hnswlib | f16 / hnswlib | i8 + re-rank / hnswlib |',
      '|---|---|---|---|---|---|---|---|',
      ...ann.atEqualRecall.map(
        (row) =>
          `| ${row.recallTarget} | ${fixed(row.qps['usearch f32'], 0)} | ${fixed(row.qps['usearch f16'], 0)} | ${fixed(row.qps['usearch i8 + f32 re-rank'], 0)} | ${fixed(row.qps['hnswlib-node'], 0)} | ${fixed(row.usearchOverHnswlib['usearch f32'])} | ${fixed(row.usearchOverHnswlib['usearch f16'])} | ${fixed(row.usearchOverHnswlib['usearch i8 + f32 re-rank'])} |`,
      ),
      '',
      ...Object.entries(ann.unavailable).map(([library, why]) => `- ${library}: ${why}`),
      '',
      `Distance kernels (float32 inner product of ${ann.dimensions}-d rows, brute force over ${ann.distanceKernels[0]?.rows ?? 'n/a'} cache-resident rows, one thread): what one f32 distance costs once the row is in cache. Where usearch f32 is slower than hnswlib-node on the HNSW curve above, its arithmetic is not the cause: the difference is memory access (usearch reaches rows through a pointer table and does not prefetch them during search; hnswlib stores rows beside their links and prefetches the next one; f16 halves the bytes fetched).`,
      '',
      '| kernel | ns per distance |',
      '|---|---|',
      ...ann.distanceKernels.map(
        (kernel) => `| ${kernel.library} | ${fixed(kernel.nanosecondsPerDistance, 1)} |`,
      ),
    );
    const file = await chart('ann-recall-qps', {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: `Recall@10 vs QPS (${ann.vectors} vectors, one thread; labels: ef)`,
      width: 480,
      height: 300,
      data: { values: ann.curve },
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'recallAt10', type: 'quantitative', scale: { zero: false }, title: 'recall@10' },
            y: { field: 'qps', type: 'quantitative', scale: { type: 'log' }, title: 'queries / s' },
            color: { field: 'library', type: 'nominal' },
          },
        },
        {
          mark: { type: 'text', dy: -8, fontSize: 9 },
          encoding: {
            x: { field: 'recallAt10', type: 'quantitative' },
            y: { field: 'qps', type: 'quantitative', scale: { type: 'log' } },
            text: { field: 'ef' },
            color: { field: 'library', type: 'nominal' },
          },
        },
      ],
    });
    lines.push('', `![recall–QPS curve](${file})`, '');
  }

  if (results.coldStart?.length) {
    lines.push(
      '## Cold start (new process → first answer, snapshot already on local disk)',
      '',
      'Milliseconds since process start (medians). The model loads while the snapshot opens, as `SearchRuntime.start` does, so "model loaded" and "snapshot open" are when each of the two finished and "engine ready" comes after both. "+ sha256" re-hashes every file on open, as the runtime does for a copy it finds already on disk (a download is hashed as it arrives).',
      '',
      '| chunks | index | imports | model loaded | snapshot open | engine ready | first answer | wall (spawn → report) |',
      '|---|---|---|---|---|---|---|---|',
      ...results.coldStart.map(
        (row) =>
          `| ${row.chunks} | ${row.indexMode}()${row.verified ? ' + sha256' : ''} | ${fixed(row.medianMs.importsMs, 0)} | ${fixed(row.medianMs.modelMs, 0)} | ${fixed(row.medianMs.snapshotMs, 0)} | ${fixed(row.medianMs.engineMs, 0)} | ${fixed(row.medianMs.firstAnswerMs, 0)} | ${fixed(row.medianMs.wallMs, 0)} |`,
      ),
      '',
    );
  }
  if (results.download?.length) {
    lines.push(
      '## Snapshot download (local S3 emulator: s3rver in processes of its own, loopback)',
      '',
      '| server processes | per-connection limit | snapshot MiB | runs | ranged GETs MiB/s | one GET per file MiB/s | ratio |',
      '|---|---|---|---|---|---|---|',
      ...results.download.map(
        (download) =>
          `| ${download.serverProcesses} | ${download.perConnectionMiBps ? `${download.perConnectionMiBps} MiB/s` : 'none (loopback)'} | ${fixed(download.snapshotBytes / 2 ** 20, 0)} | ${download.runs} | ${fixed(download.rangedMiBPerSecond, 0)} | ${fixed(download.singleGetMiBPerSecond, 0)} | **${fixed(download.ratio)}×** |`,
      ),
      '',
      `Ranged: ${results.download[0]?.rangedSettings.partMiB} MiB parts, ${results.download[0]?.rangedSettings.concurrency} in flight (IndexBucket.downloadSnapshot, what the query Lambda runs). Both paths compute each file's sha256 as it arrives (the ranged one checks it against the manifest). Medians of alternating runs. On loopback both paths are bound by the same per-byte work (receiving, hashing, writing, and the emulator serving) on the two shared cores; a limit per connection, as S3 has, is what parallel ranges overcome.`,
      '',
    );
  }
  if (results.memory?.length) {
    lines.push(
      '## Memory of the query process (after answering the queries)',
      '',
      '| chunks | dtype | index | RSS MiB | JS heap MiB | external MiB |',
      '|---|---|---|---|---|---|',
      ...results.memory.map(
        (row) =>
          `| ${row.chunks} | ${row.dtype} | ${row.indexMode}() | ${fixed(row.rssMiB, 0)} | ${fixed(row.heapUsedMiB, 0)} | ${fixed(row.externalMiB, 0)} |`,
      ),
      '',
    );
  }
  if (results.embedding) {
    const embedding = results.embedding;
    lines.push(
      `## Embedding (${embedding.model})`,
      '',
      `Session creation: OnnxEmbedder.load ${fixed(embedding.sessionCreateMs.embedderLoad, 0)} ms (tokenizer, session, probe run), bare InferenceSession.create ${fixed(embedding.sessionCreateMs.rawSession, 0)} ms. Single query: p50 ${fixed(embedding.singleQueryMs.p50)} ms, p95 ${fixed(embedding.singleQueryMs.p95)} ms, p99 ${fixed(embedding.singleQueryMs.p99)} ms.`,
      '',
      '| batch size | intra-op threads | passages / s |',
      '|---|---|---|',
      ...embedding.throughput.map(
        (row) => `| ${row.batchSize} | ${row.threads} | ${fixed(row.passagesPerSecond, 1)} |`,
      ),
      '',
      `Length-sorted batches (bisearch) ${fixed(embedding.lengthSorted.sortedPerSecond, 1)} passages/s against naive batches in input order ${fixed(embedding.lengthSorted.naivePerSecond, 1)}: ${fixed(embedding.lengthSorted.speedup)}× (batch ${embedding.lengthSorted.batchSize}).`,
      '',
      '| model | passages | bisearch ms | bare session ms | overhead | tokenising alone ms (words remembered) | tokenising, every word new ms | overhead from token ids on |',
      '|---|---|---|---|---|---|---|---|',
      ...embedding.overhead.map(
        (row) =>
          `| ${row.model} | ${row.passages} | ${fixed(row.bisearchMs, 1)} | ${fixed(row.rawSessionMs, 1)} | ${fixed(row.overhead * 100, 1)}% | ${fixed(row.tokenizeMs, 1)} | ${fixed(row.tokenizeFirstSightMs, 1)} | ${fixed(row.overheadWithoutTokenizing * 100, 1)}% |`,
      ),
      '',
      'All on the embedder\'s own session, interleaved. The bare session is fed token ids prepared beforehand, so the overhead is tokenising (@huggingface/tokenizers, JavaScript) plus building the input tensors, reading the output and pooling; "from token ids on" is bisearch\'s path without the tokenising. The tokenizer remembers the pieces of words it has split (exact, bounded; `functions/adapters/model/model-tokenizer.ts`), and the measured passages repeat, so the path runs with every word remembered; "every word new" is a tokenizer that has seen none of them.',
      '',
    );
    const transformers = embedding.transformers;
    lines.push(
      'ratio' in transformers
        ? `tiny-bert, ${transformers.passages} passages in batches of 32: bisearch ${fixed(transformers.bisearchMs, 1)} ms, @huggingface/transformers ${fixed(transformers.transformersMs, 1)} ms (${fixed(transformers.ratio)}×); single query ${fixed(transformers.singleQueryMs.bisearch, 2)} vs ${fixed(transformers.singleQueryMs.transformers, 2)} ms; largest difference between their vectors ${transformers.maxAbsDifference.toExponential(1)}.`
        : `@huggingface/transformers: ${transformers.unavailable}`,
      '',
    );
    const file = await chart('embedding-throughput', {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: `${embedding.model}: passages / s by batch size and threads`,
      width: 360,
      height: 220,
      data: { values: embedding.throughput.map((row) => ({ ...row, threads: `${row.threads} thread(s)` })) },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'batchSize', type: 'quantitative', scale: { type: 'log', base: 2 }, title: 'batch size' },
        y: { field: 'passagesPerSecond', type: 'quantitative', title: 'passages / s' },
        color: { field: 'threads', type: 'nominal' },
      },
    });
    lines.push(`![embedding throughput](${file})`, '');
  }
  if (results.peers) {
    lines.push(...(await peersReport(results.peers, chart)));
  }
  if (results.snapshotBuilds?.length) {
    lines.push(
      '## Snapshot builds (writeSnapshot: HNSW on all cores, BM25 segment, chunk records, sha256 of every file)',
      '',
      '| chunks | dtype | build s | |',
      '|---|---|---|---|',
      ...results.snapshotBuilds.map(
        (build) =>
          `| ${build.chunks} | ${build.dtype} | ${fixed(build.buildSeconds, 1)} | ${build.reused ? 'built by an earlier run, reused' : 'built in this run'} |`,
      ),
      '',
    );
  }
  if (results.freshness) {
    const {
      uploadToSearchableMs: ms,
      uploadToIndexedMs: indexed,
      documents,
      pollIntervalMs,
    } = results.freshness;
    lines.push(
      '## Freshness (local stack: PUT /documents → S3 event → SQS → encode → delta → searchable)',
      '',
      `${documents} documents one at a time, polled every ${pollIntervalMs} ms.`,
      '',
      '| from PUT to | p50 ms | p95 ms | p99 ms |',
      '|---|---|---|---|',
      `| indexed (GET /documents says so) | ${fixed(indexed.p50, 0)} | ${fixed(indexed.p95, 0)} | ${fixed(indexed.p99, 0)} |`,
      `| searchable | ${fixed(ms.p50, 0)} | ${fixed(ms.p95, 0)} | ${fixed(ms.p99, 0)} (max ${fixed(ms.max, 0)}) |`,
      '',
      'Between the two is the query runtime reading the change log: a search first reads it when it was last read more than `BISEARCH_MAX_STALENESS_MS` (2 s) ago, and the local stack also reads it with every index-pointer check (1 s). Each document is put right after the previous one became searchable, just after a read, so it waits about a whole period (the worst phase; uploads at random moments wait half a period on average).',
      '',
    );
  }
  if (results.scale) {
    const scale = results.scale;
    const scaleLines = [
      `## Scale: change log, catch-up and bulk loads (dynalite, ${scale.latencyMs} ms modelled latency per DynamoDB call)`,
      '',
      "Synthetic one-chunk documents (no embedding). dynalite is one process (for the announcements, a process of its own, as DynamoDB is a service apart from the encoders; elsewhere the bench's): at high concurrency it, not the modelled latency, bounds the measured rate; the projection counts the calls each path makes on DynamoDB.",
      '',
      ...table(
        '| delta chunks | exact ms | ANN ms | ANN recall@10 |',
        scale.deltaSearch.map(
          (row) =>
            `| ${row.chunks} | ${fixed(row.exactMs)} | ${fixed(row.annMs)} | ${fixed(row.recallAt10, 3)} |`,
        ),
      ),
      ...table(
        '| encoders | announcements | per second | failures | projected on DynamoDB /s |',
        scale.announce.map(
          (row) =>
            `| ${row.encoders} | ${row.announcements} | ${fixed(row.perSecond, 0)} | ${row.failures} | ${fixed(row.projectedAwsPerSecond, 0)} |`,
        ),
      ),
      ...table(
        '| backlog (documents) | Init ms | applied at Init | all applied after s | documents/s | projected on DynamoDB s |',
        scale.catchUp.map(
          (row) =>
            `| ${row.backlog} | ${fixed(row.initMs, 0)} | ${row.appliedAtInit} | ${fixed(row.catchUpSeconds, 1)} | ${fixed(row.documentsPerSecond, 0)} | ${fixed(row.projectedAwsSeconds, 1)} |`,
        ),
      ),
      ...table(
        '| full rebuild (chunks) | Snapshot s | Build s | Snapshot peak RSS MiB | Build peak RSS MiB | Build /tmp MiB | Snapshot projected on DynamoDB s |',
        (scale.rebuild ?? []).map(
          (row) =>
            `| ${row.chunks} | ${fixed(row.snapshotSeconds, 1)} | ${fixed(row.buildSeconds, 1)} | ${fixed(row.snapshotPeakRssMib, 0)} | ${fixed(row.buildPeakRssMib, 0)} | ${fixed(row.buildTmpBytes / 2 ** 20, 0)} | ${fixed(row.projectedAwsSnapshotSeconds, 1)} |`,
        ),
        [
          `Peak RSS is the bench process's own high-water mark during the step (its baseline, ${fixed(scale.rebuild?.[0]?.baselineRssMib, 0)} MiB, included). The export streams to and from S3, so the build's only local disk is the snapshot it writes.`,
        ],
      ),
      ...table(
        '| incremental after 1% changes (chunks) | changed documents | Snapshot s | Build s | graph | of which reading the base from local S3 s | Build peak RSS MiB | ÷ full (Snapshot + Build) | Snapshot projected on DynamoDB s |',
        (scale.rebuild ?? [])
          .filter((row) => row.incremental)
          .map(
            (row) =>
              `| ${row.chunks} | ${row.incremental.changedDocuments} | ${fixed(row.incremental.snapshotSeconds, 1)} | ${fixed(row.incremental.buildSeconds, 1)} | ${row.incremental.graph} | ${fixed(row.incremental.baseReadSeconds, 1)} | ${fixed(row.incremental.buildPeakRssMib, 0)} | ${fixed(row.incremental.ratioToFull, 2)} | ${fixed(row.incremental.projectedAwsSnapshotSeconds, 1)} |`,
          ),
      ),
      ...table(
        '| Build, the snapshot writer alone (chunks, 512-d) | full s | of which tuning s | ef | incremental s (1% changed) | of which recall s | ef | graph | held-out recall@10 | ÷ full | snapshot MiB | peak RSS full / incremental MiB |',
        (scale.writer ?? []).map(
          (row) =>
            `| ${row.chunks} | ${fixed(row.fullSeconds, 1)} | ${fixed(row.fullTuningSeconds, 1)} | ${row.fullExpansionSearch} | ${fixed(row.incrementalSeconds, 1)} | ${fixed(row.incrementalRecallSeconds, 1)} | ${row.incrementalExpansionSearch} | ${row.graph} | ${fixed(row.heldOutRecall, 3)} | ${fixed(row.ratioToFull, 2)} | ${fixed(row.snapshotBytes / 2 ** 20, 0)} | ${fixed(row.fullPeakRssMib, 0)} / ${fixed(row.incrementalPeakRssMib, 0)} |`,
        ),
      ),
      scale.queryDuringLoad
        ? `Lexical query latency, idle: p50 ${fixed(scale.queryDuringLoad.idleMs.p50)} ms, p99 ${fixed(scale.queryDuringLoad.idleMs.p99)} ms; during a load of ${scale.queryDuringLoad.loadDocuments} documents by 32 writers (${fixed(scale.queryDuringLoad.loadPerSecond, 0)}/s): p50 ${fixed(scale.queryDuringLoad.duringLoadMs.p50)} ms, p99 ${fixed(scale.queryDuringLoad.duringLoadMs.p99)} ms over ${scale.queryDuringLoad.queries} queries.`
        : 'Query latency during a bulk load: not measured in this run.',
      '',
      `Not measured yet: ${scale.notMeasured.join('; ')}.`,
      '',
    ];
    lines.push(...scaleLines);
  }
  writeFileSync(markdownPath, `${lines.join('\n')}\n`);
  return markdownPath;
}
